// Package: a model ready to load — its name, its manifest and the path of its model file —
// opened from any of the three sources kapsl takes: a bare model file, a folder holding a
// metadata.json, or an .aimod archive (a gzip-compressed tar with metadata.json at its root).
//
// Archives are read with libarchive and extracted into a cache directory named by the
// SHA-256 of the archive's bytes, so a changed package never reuses a stale extraction and
// an unchanged one is extracted once. Extraction is hostile-input safe: entries with
// absolute paths or "..", links (symbolic or hard) that resolve outside the package,
// device/fifo entries, duplicate entries, more than max_entries entries or more than
// max_total_bytes of content are refused with an error naming the entry. Each extraction
// goes to a private temporary directory that is renamed into place in one step, so
// concurrent opens of one package (threads or processes) never see a half-written tree:
// the first rename wins and the others reuse its result.
//
// Ownership: Package is a plain value; the extracted files belong to the cache and stay
// after the Package is gone (delete the cache directory to reclaim them).
// Thread-safety: safe for concurrent use without external synchronization (open_package
// may run on several threads, even for the same file).
#ifndef KAPSL_PACKAGE_H_
#define KAPSL_PACKAGE_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "kapsl/manifest.h"

namespace kapsl {

struct PackageOptions {
  // --- Behaviour
  // Where archives are extracted; "" = KAPSL_MODEL_CACHE_DIR, else
  // <system temp>/kapsl-package-cache.
  std::string cache_dir;
  // --- Limits against hostile archives
  uint64_t max_total_bytes = uint64_t{64} << 30;  // content bytes over all entries (64 GiB)
  uint64_t max_entries = 10000;                    // entries of any type
  uint64_t max_manifest_bytes = uint64_t{1} << 20;  // size of metadata.json (1 MiB)
};

enum class PackageKind { kModelFile, kFolder, kArchive };

struct Package {
  std::string name;                  // the folder's name, or the file's stem ("resnet" for resnet.aimod)
  PackageKind kind = PackageKind::kModelFile;
  Manifest manifest;                 // read from metadata.json, or synthesised for a model file
  std::filesystem::path source;      // what was opened, absolute
  std::filesystem::path model_path;  // absolute path of the model file
  // Where paths in the manifest resolve (sidecar files: tokenizers, labels): the folder,
  // the extracted archive, or a model file's own folder.
  std::filesystem::path root;
  std::string content_sha256;        // hex SHA-256 of the archive; "" otherwise
  bool reused_extraction = false;    // true if the cache already held this archive
};

// Opens `path`: an .aimod archive (by extension, any case) is verified, extracted (or
// found in the cache) and its manifest read; a folder's metadata.json is read (its
// model_file must resolve inside the folder); any other file gets synthesize_manifest()
// with no format (the BackendFactory picks the backend by extension). Returns the package
// with an absolute model_path to a regular file.
// Throws: Error(kNotFound) if `path` does not exist; Error(kInvalidInput) for a folder
// without metadata.json, a hostile archive (naming the entry and the rule), a missing,
// oversized or invalid metadata.json (as parse_manifest), or a model_file that is missing,
// leaves its package, or is not a regular file; Error(kResourceExhausted) when an archive
// exceeds max_entries or max_total_bytes; Error(kModelLoad) when the archive is corrupt or
// truncated or the cache cannot be written. A failed open leaves no partial directory in
// the cache.
Package open_package(const std::filesystem::path& path, const PackageOptions& options = {});

// The absolute path of `relative` — a file a manifest names besides the model, such as a
// tokenizer vocabulary — inside package.root. Throws Error(kInvalidInput) naming `field`
// if it is absolute, contains "..", resolves outside the package (through a link), or is
// not a regular file.
std::filesystem::path resolve_in_package(const Package& package, std::string_view relative, std::string_view field);

// Hex SHA-256 of the file's bytes. Throws Error(kNotFound) / Error(kModelLoad) if it cannot
// be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace kapsl

#endif  // KAPSL_PACKAGE_H_
