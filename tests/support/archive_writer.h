// Writes test archives (gzip-compressed pax tar) with libarchive, including the hostile
// shapes a real tar would refuse to create: "../" names, absolute names, links anywhere.
#ifndef KAPSL_TESTS_SUPPORT_ARCHIVE_WRITER_H_
#define KAPSL_TESTS_SUPPORT_ARCHIVE_WRITER_H_

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace kapsl::testing {

struct TarEntry {
  enum class Type { kFile, kDir, kSymlink, kHardlink, kFifo };
  std::string name;
  Type type = Type::kFile;
  std::string content;  // kFile
  std::string target;   // kSymlink, kHardlink
};

inline TarEntry file(std::string name, std::string content) { return {std::move(name), TarEntry::Type::kFile, std::move(content), {}}; }
inline TarEntry dir(std::string name) { return {std::move(name), TarEntry::Type::kDir, {}, {}}; }
inline TarEntry symlink(std::string name, std::string target) { return {std::move(name), TarEntry::Type::kSymlink, {}, std::move(target)}; }
inline TarEntry hardlink(std::string name, std::string target) { return {std::move(name), TarEntry::Type::kHardlink, {}, std::move(target)}; }
inline TarEntry fifo(std::string name) { return {std::move(name), TarEntry::Type::kFifo, {}, {}}; }

inline void write_archive(const std::filesystem::path& path, const std::vector<TarEntry>& entries, bool gzip = true) {
  struct WriteFree {
    void operator()(archive* a) const { archive_write_free(a); }
  };
  struct EntryFree {
    void operator()(archive_entry* e) const { archive_entry_free(e); }
  };
  std::unique_ptr<archive, WriteFree> a(archive_write_new());
  if (gzip) archive_write_add_filter_gzip(a.get());
  archive_write_set_format_pax_restricted(a.get());
  ASSERT_EQ(archive_write_open_filename(a.get(), path.c_str()), ARCHIVE_OK);
  for (const TarEntry& t : entries) {
    std::unique_ptr<archive_entry, EntryFree> e(archive_entry_new());
    archive_entry_set_pathname(e.get(), t.name.c_str());
    archive_entry_set_perm(e.get(), 0644);
    switch (t.type) {
      case TarEntry::Type::kFile:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_size(e.get(), static_cast<la_int64_t>(t.content.size()));
        break;
      case TarEntry::Type::kDir: archive_entry_set_filetype(e.get(), AE_IFDIR); break;
      case TarEntry::Type::kSymlink:
        archive_entry_set_filetype(e.get(), AE_IFLNK);
        archive_entry_set_symlink(e.get(), t.target.c_str());
        break;
      case TarEntry::Type::kHardlink:
        archive_entry_set_filetype(e.get(), AE_IFREG);
        archive_entry_set_hardlink(e.get(), t.target.c_str());
        break;
      case TarEntry::Type::kFifo: archive_entry_set_filetype(e.get(), AE_IFIFO); break;
    }
    ASSERT_EQ(archive_write_header(a.get(), e.get()), ARCHIVE_OK) << archive_error_string(a.get());
    if (!t.content.empty()) {
      ASSERT_EQ(archive_write_data(a.get(), t.content.data(), t.content.size()),
                static_cast<la_ssize_t>(t.content.size()));
    }
  }
  ASSERT_EQ(archive_write_close(a.get()), ARCHIVE_OK);
}

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_SUPPORT_ARCHIVE_WRITER_H_
