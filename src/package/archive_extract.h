// Safe extraction of an .aimod archive (gzip-compressed or plain tar) with libarchive.
#ifndef KAPSL_SRC_PACKAGE_ARCHIVE_EXTRACT_H_
#define KAPSL_SRC_PACKAGE_ARCHIVE_EXTRACT_H_

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "kapsl/package.h"

namespace kapsl::internal {

// The entry name as a clean relative path ("a/b"): "." parts and repeated slashes dropped.
// Returns nullopt for the root itself ("./"). Throws Error(kInvalidInput) naming the entry
// for an absolute path or a ".." part.
std::optional<std::string> safe_entry_path(std::string_view name);

// Whether `path` is `root` or inside it; both must be absolute and lexically normal.
bool path_within(const std::filesystem::path& path, const std::filesystem::path& root);

// Extracts `archive` into the existing empty directory `dest`, enforcing the rules of
// package.h (no escaping paths or links, no devices, no duplicates, options' limits), and
// checks that the bytes read hash to `expected_sha256` (the file did not change since it was
// hashed). Throws Error(kInvalidInput) for a hostile entry, Error(kResourceExhausted) for a
// limit, Error(kModelLoad) for a corrupt archive or an I/O failure. `dest` may hold a partial
// tree after a throw; the caller removes it.
void extract_archive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                     const std::string& expected_sha256, const PackageOptions& options);

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_PACKAGE_ARCHIVE_EXTRACT_H_
