// Hostile-input-safe extraction with libarchive. Every entry name is made a clean relative
// path before anything is created; nothing is ever written through a link; links must
// resolve inside the package without passing through another link (checked once every link
// is known, so the order of entries does not matter); content is counted as it is written.
#include "package/archive_extract.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "package/sha256.h"
#include "core/strings.h"
#include "kapsl/error.h"

namespace kapsl::internal {
namespace fs = std::filesystem;
namespace {

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};
using ArchivePtr = std::unique_ptr<archive, ArchiveReadFree>;

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// Feeds libarchive from the file and hashes every byte it reads, so the extracted tree is
// known to come from the bytes the cache key was computed from.
struct Source {
  std::ifstream in;
  std::vector<char> buf = std::vector<char>(1 << 16);
  Sha256 sha;
};

la_ssize_t read_source(archive* a, void* client, const void** buffer) noexcept {
  auto* s = static_cast<Source*>(client);
  try {
    s->in.read(s->buf.data(), static_cast<std::streamsize>(s->buf.size()));
    size_t n = static_cast<size_t>(s->in.gcount());
    if (n == 0 && !s->in.eof()) {
      archive_set_error(a, EIO, "read failed");
      return -1;
    }
    s->sha.update(std::string_view(s->buf.data(), n));
    *buffer = s->buf.data();
    return static_cast<la_ssize_t>(n);
  } catch (...) {
    archive_set_error(a, ENOMEM, "read failed");
    return -1;
  }
}

class Extractor {
 public:
  Extractor(archive* a, fs::path dest, std::string name, const PackageOptions& options)
      : a_(a), dest_(std::move(dest)), name_(std::move(name)), options_(options) {}

  void run() {
    archive_entry* entry = nullptr;
    int rc;
    while ((rc = archive_read_next_header(a_, &entry)) == ARCHIVE_OK || rc == ARCHIVE_WARN) {
      if (++entries_ > options_.max_entries) {
        throw Error::resource_exhausted(name_ + ": too many entries",
                                        "more than max_entries (" + std::to_string(options_.max_entries) + ")");
      }
      extract_entry(entry);
    }
    if (rc != ARCHIVE_EOF) corrupt();
    check_symlinks();
  }

 private:
  [[noreturn]] void hostile(const std::string& entry, const std::string& why) const {
    throw Error::invalid_input(name_ + ": entry \"" + entry + "\"", why);
  }
  [[noreturn]] void corrupt() const {
    const char* why = archive_error_string(a_);
    throw Error::model_load(name_ + ": corrupt or truncated package", why ? why : "unknown libarchive error");
  }

  void extract_entry(archive_entry* entry) {
    const char* raw = archive_entry_pathname(entry);
    if (raw == nullptr) hostile("?", "its name cannot be decoded");
    std::optional<std::string> rel = safe_entry_path(raw);
    if (!rel) return;  // the root directory itself
    if (!names_.insert(*rel).second) hostile(*rel, "appears twice in the package");
    check_parents(*rel);
    if (const char* target = archive_entry_hardlink(entry)) return make_hardlink(*rel, target);
    switch (archive_entry_filetype(entry)) {
      case AE_IFDIR: return make_directory(*rel);
      case AE_IFREG: return write_regular(entry, *rel);
      case AE_IFLNK: return make_symlink(entry, *rel);
      default: hostile(*rel, "is a device, fifo or socket; only files, directories and links are allowed");
    }
  }

  // Parents are created here, and none may be a link: writing through one could land
  // anywhere the link points.
  void check_parents(const std::string& rel) {
    std::string prefix;
    std::vector<std::string> parts = split(rel, '/');
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      prefix += (i ? "/" : "") + parts[i];
      if (symlinks_.count(prefix)) hostile(rel, "would be written through the link \"" + prefix + "\"");
      if (regular_.count(prefix)) hostile(rel, "is inside \"" + prefix + "\", which is a file");
    }
    std::error_code ec;
    fs::create_directories((dest_ / rel).parent_path(), ec);
    if (ec) hostile(rel, "cannot create its directory: " + ec.message());
  }

  void make_directory(const std::string& rel) {
    std::error_code ec;
    fs::create_directory(dest_ / rel, ec);
    if (ec || !fs::is_directory(fs::symlink_status(dest_ / rel))) hostile(rel, "conflicts with another entry");
  }

  void write_regular(archive_entry* entry, const std::string& rel) {
    if (archive_entry_size_is_set(entry) && archive_entry_size(entry) > 0 &&
        static_cast<uint64_t>(archive_entry_size(entry)) > options_.max_total_bytes - total_bytes_) {
      too_big(rel);
    }
    Fd fd(::open((dest_ / rel).c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
    if (fd.get() < 0) hostile(rel, std::string("cannot be created: ") + std::strerror(errno));
    char buf[1 << 16];
    while (true) {
      la_ssize_t n = archive_read_data(a_, buf, sizeof buf);
      if (n == 0) break;
      if (n < 0) corrupt();
      total_bytes_ += static_cast<uint64_t>(n);
      if (total_bytes_ > options_.max_total_bytes) too_big(rel);
      if (::write(fd.get(), buf, static_cast<size_t>(n)) != n) {
        throw Error::model_load(name_ + ": cannot write " + (dest_ / rel).string(), std::strerror(errno));
      }
    }
    regular_.insert(rel);
  }

  [[noreturn]] void too_big(const std::string& rel) const {
    throw Error::resource_exhausted(name_ + ": entry \"" + rel + "\" exceeds the size limit",
                                    "content over max_total_bytes (" + std::to_string(options_.max_total_bytes) + ")");
  }

  void make_hardlink(const std::string& rel, const char* raw_target) {
    std::optional<std::string> target = safe_entry_path(raw_target);
    if (!target || !regular_.count(*target)) {
      hostile(rel, "is a hard link to \"" + std::string(raw_target) + "\", which is not a file earlier in the package");
    }
    std::error_code ec;
    fs::create_hard_link(dest_ / *target, dest_ / rel, ec);
    if (ec) hostile(rel, "hard link cannot be created: " + ec.message());
    regular_.insert(rel);
  }

  void make_symlink(archive_entry* entry, const std::string& rel) {
    const char* target = archive_entry_symlink(entry);
    if (target == nullptr || *target == '\0') hostile(rel, "is a link without a target");
    if (target[0] == '/') hostile(rel, "is a link to the absolute path \"" + std::string(target) + "\"");
    std::error_code ec;
    fs::create_symlink(target, dest_ / rel, ec);
    if (ec) hostile(rel, "link cannot be created: " + ec.message());
    symlinks_[rel] = target;
  }

  // Walks each link's target from the link's directory: leaving the root, or passing
  // through another link (whose own target could be "." and make a later ".." escape),
  // is refused.
  void check_symlinks() const {
    for (const auto& [rel, target] : symlinks_) {
      std::vector<std::string> stack = split(rel, '/');
      stack.pop_back();
      std::vector<std::string> parts = split(target, '/');
      for (size_t i = 0; i < parts.size(); ++i) {
        const std::string& part = parts[i];
        if (part.empty() || part == ".") continue;
        if (part == "..") {
          if (stack.empty()) hostile(rel, "is a link to \"" + target + "\", outside the package");
          stack.pop_back();
          continue;
        }
        stack.push_back(part);
        std::string walked = join(stack);
        if (i + 1 < parts.size() && symlinks_.count(walked)) {
          hostile(rel, "is a link to \"" + target + "\" through the link \"" + walked + "\"");
        }
      }
    }
  }

  static std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) out += (i ? "/" : "") + parts[i];
    return out;
  }

  archive* a_;
  fs::path dest_;
  std::string name_;
  const PackageOptions& options_;
  uint64_t entries_ = 0;
  uint64_t total_bytes_ = 0;
  std::set<std::string> names_;
  std::set<std::string> regular_;
  std::map<std::string, std::string> symlinks_;  // entry -> target
};

}  // namespace

std::optional<std::string> safe_entry_path(std::string_view name) {
  if (!name.empty() && name.front() == '/') {
    throw Error::invalid_input("entry \"" + std::string(name) + "\"", "has an absolute path");
  }
  std::string out;
  for (const std::string& part : split(name, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") throw Error::invalid_input("entry \"" + std::string(name) + "\"", "has a \"..\" path component");
    out += (out.empty() ? "" : "/") + part;
  }
  if (out.empty()) return std::nullopt;
  return out;
}

bool path_within(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty() && std::next(r) == root.end()) break;  // trailing separator
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

void extract_archive(const fs::path& archive_path, const fs::path& dest, const std::string& expected_sha256,
                     const PackageOptions& options) {
  const std::string name = archive_path.string();
  Source source;
  source.in.open(archive_path, std::ios::binary);
  if (!source.in) throw Error::model_load("cannot open " + name, std::strerror(errno));
  ArchivePtr a(archive_read_new());
  if (!a) throw std::bad_alloc();
  archive_read_support_filter_gzip(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open(a.get(), &source, nullptr, read_source, nullptr) != ARCHIVE_OK) {
    const char* why = archive_error_string(a.get());
    throw Error::model_load(name + ": not a gzip-compressed tar package", why ? why : "unknown format");
  }
  Extractor(a.get(), dest, name, options).run();
  // Hash whatever libarchive did not need (tar padding) so the digest covers the file.
  const void* ignored = nullptr;
  while (read_source(a.get(), &source, &ignored) > 0) {
  }
  if (source.sha.finish_hex() != expected_sha256) {
    throw Error::model_load(name + ": the package changed while it was being read", "try again");
  }
}

}  // namespace kapsl::internal
