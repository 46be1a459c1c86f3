// Package: a model ready to load — its manifest and the path of its model file — opened
// from an .aimod archive (a gzip-compressed tar with metadata.json at its root) or from a
// bare .onnx / .gguf file.
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

struct Package {
  Manifest manifest;
  std::filesystem::path model_path;  // absolute path of the model file
  std::filesystem::path root;        // the extracted package directory; "" for a bare file
  std::string content_sha256;        // hex SHA-256 of the archive; "" for a bare file
  bool reused_extraction = false;    // true if the cache already held this archive
};

// Opens `path`: an .aimod archive (by extension, any case) is verified, extracted (or
// found in the cache) and its manifest read; a .onnx / .gguf file gets
// synthesize_manifest(). Returns the package with an absolute model_path to a regular file.
// Throws: Error(kNotFound) if `path` does not exist; Error(kInvalidInput) for any other
// extension, a hostile archive (naming the entry and the rule), a missing or invalid
// metadata.json (as parse_manifest), or a model_file that is missing from the archive or is
// not a regular file; Error(kResourceExhausted) when an archive exceeds max_entries or
// max_total_bytes; Error(kModelLoad) when the archive is corrupt or truncated or the cache
// cannot be written. A failed open leaves no partial directory in the cache.
Package open_package(const std::filesystem::path& path, const PackageOptions& options = {});

// Hex SHA-256 of the file's bytes. Throws Error(kNotFound) / Error(kModelLoad) if it cannot
// be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace kapsl

#endif  // KAPSL_PACKAGE_H_
