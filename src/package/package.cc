// open_package: bare model files, model folders, and .aimod archives extracted into a
// content-addressed cache. The hostile-archive rules live in archive_extract.cc.
#include "kapsl/package.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "package/archive_extract.h"
#include "package/sha256.h"
#include "core/strings.h"
#include "kapsl/error.h"

namespace kapsl {
namespace fs = std::filesystem;
namespace {

constexpr const char* kTreeDir = "package";   // the extracted tree inside a cache entry
constexpr const char* kMarkerFile = "sha256";  // written last: the entry is complete

fs::path cache_root(const PackageOptions& options) {
  if (!options.cache_dir.empty()) return options.cache_dir;
  std::string env = internal::env_or_empty("KAPSL_MODEL_CACHE_DIR");
  if (!env.empty()) return env;
  return fs::temp_directory_path() / "kapsl-package-cache";
}

bool entry_complete(const fs::path& entry, const std::string& sha) {
  std::ifstream in(entry / kMarkerFile);
  std::string stored;
  return in && std::getline(in, stored) && stored == sha;
}

// A directory name no other thread or process uses.
fs::path private_temp_dir(const fs::path& root, const std::string& sha) {
  static std::atomic<uint64_t> counter{0};
  return root / (".tmp-" + sha.substr(0, 16) + "-" + std::to_string(::getpid()) + "-" +
                 std::to_string(counter.fetch_add(1)));
}

// Extracts into a private directory and renames it into place. Returns true if this call
// created the entry, false if another loader did first.
bool extract_to_cache(const fs::path& archive, const fs::path& entry, const std::string& sha,
                      const PackageOptions& options) {
  std::error_code ec;
  fs::create_directories(entry.parent_path(), ec);
  if (ec) throw Error::model_load("cannot create package cache " + entry.parent_path().string(), ec.message());
  fs::path temp = private_temp_dir(entry.parent_path(), sha);
  try {
    fs::create_directories(temp / kTreeDir);
    internal::extract_archive(archive, temp / kTreeDir, sha, options);
    std::ofstream(temp / kMarkerFile) << sha << "\n";
  } catch (...) {
    fs::remove_all(temp, ec);
    throw;
  }
  // rename(2) of a directory onto an existing non-empty one fails, so exactly one loader
  // wins; the others drop their copy and use the winner's.
  if (::rename(temp.c_str(), entry.c_str()) == 0) return true;
  int err = errno;
  fs::remove_all(temp, ec);
  if (entry_complete(entry, sha)) return false;
  throw Error::model_load("cannot move extracted package into " + entry.string(), std::strerror(err));
}

// Reads `dir`/metadata.json, refusing one larger than max_manifest_bytes; `shown` names
// the package in messages.
Manifest read_package_manifest(const fs::path& dir, const std::string& shown, const PackageOptions& options) {
  fs::path path = dir / "metadata.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error::invalid_input(shown + ": metadata.json", "missing at the package root");
  }
  uint64_t size = fs::file_size(path, ec);
  if (ec || size > options.max_manifest_bytes) {
    throw Error::invalid_input(shown + ": metadata.json",
                               "larger than max_manifest_bytes (" + std::to_string(options.max_manifest_bytes) + ")");
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(size, '\0');
  in.read(text.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) throw Error::model_load("cannot read " + path.string());
  return parse_manifest(text, shown + ": metadata.json");
}

fs::path resolve_model_file(const fs::path& tree, const Manifest& m, const std::string& shown) {
  std::error_code ec;
  fs::path real_tree = fs::canonical(tree, ec);
  fs::path model = fs::weakly_canonical(tree / m.model_file, ec);
  if (ec || !internal::path_within(model, real_tree)) {
    throw Error::invalid_input(shown + ": model_file \"" + m.model_file + "\"", "resolves outside the package");
  }
  if (!fs::exists(model, ec)) {
    throw Error::invalid_input(shown + ": model_file \"" + m.model_file + "\"", "not in the package");
  }
  if (!fs::is_regular_file(model, ec)) {
    throw Error::invalid_input(shown + ": model_file \"" + m.model_file + "\"", "is not a regular file");
  }
  return model;
}

Package open_archive(const fs::path& path, const PackageOptions& options) {
  Package p;
  p.kind = PackageKind::kArchive;
  p.name = path.stem().string();
  p.source = path;
  p.content_sha256 = sha256_file(path);
  fs::path entry = cache_root(options) / p.content_sha256;
  p.reused_extraction = entry_complete(entry, p.content_sha256) ||
                        !extract_to_cache(path, entry, p.content_sha256, options);
  p.root = entry / kTreeDir;
  p.manifest = read_package_manifest(p.root, path.string(), options);
  p.model_path = resolve_model_file(p.root, p.manifest, path.string());
  return p;
}

Package open_folder(const fs::path& path, const PackageOptions& options) {
  Package p;
  p.kind = PackageKind::kFolder;
  p.source = fs::canonical(path);
  p.name = p.source.filename().string();
  p.root = p.source;
  p.manifest = read_package_manifest(p.root, path.string(), options);
  p.model_path = resolve_model_file(p.root, p.manifest, path.string());
  return p;
}

}  // namespace

fs::path resolve_in_package(const Package& package, std::string_view relative, std::string_view field) {
  const std::string shown = std::string(field) + " \"" + std::string(relative) + "\"";
  const fs::path p(relative);
  bool escapes = relative.empty() || p.is_absolute() || p.has_root_name() || p.has_root_directory();
  for (const auto& part : p) escapes = escapes || part == "..";
  if (escapes) throw Error::invalid_input(shown, "expected a path inside the model's folder, without \"..\"");
  std::error_code ec;
  const fs::path root = fs::canonical(package.root, ec);
  const fs::path file = fs::weakly_canonical(package.root / p, ec);
  if (ec || !internal::path_within(file, root)) throw Error::invalid_input(shown, "resolves outside the model's folder");
  if (!fs::is_regular_file(file, ec)) throw Error::invalid_input(shown, "is not a file in the model's folder");
  return file;
}

std::string sha256_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error::not_found("no such file", path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error::model_load("cannot open " + path.string(), std::strerror(errno));
  internal::Sha256 sha;
  std::vector<char> buf(1 << 16);  // as fast as 1 MiB for large files, cheap for small ones
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    sha.update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  if (!in.eof()) throw Error::model_load("cannot read " + path.string(), std::strerror(errno));
  return sha.finish_hex();
}

Package open_package(const fs::path& path, const PackageOptions& options) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error::not_found("no such model or package", path.string());
  if (fs::is_directory(path, ec)) return open_folder(path, options);
  std::string ext = internal::to_lower(path.extension().string());
  if (ext == ".aimod") return open_archive(fs::absolute(path), options);
  if (!fs::is_regular_file(path, ec)) throw Error::invalid_input(path.string(), "is not a regular file");
  Package p;
  p.kind = PackageKind::kModelFile;
  p.source = fs::absolute(path);
  p.name = path.stem().string();
  p.manifest = synthesize_manifest(path);
  p.model_path = p.source;
  p.root = p.source.parent_path();
  return p;
}

}  // namespace kapsl
