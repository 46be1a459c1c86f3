// .aimod packages (gzip-compressed tar archives) as open_package extracts them: libarchive
// reading, every entry checked (escaping paths and links, devices, duplicates, limits), the
// manifest read from the extraction. Each input is written to a scratch file and extracted
// into a scratch cache, which is emptied after every run.
#include <cstddef>
#include <cstdint>
#include <filesystem>

#include "fuzz_util.h"
#include "kapsl/package.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto archive = kapsl::fuzz::write_scratch("package.aimod", data, size);
  kapsl::PackageOptions options;
  options.cache_dir = (kapsl::fuzz::scratch_dir() / "cache").string();
  options.max_total_bytes = 16u << 20;  // an input of a few KiB may inflate; keep runs short
  options.max_entries = 256;
  kapsl::fuzz::expect_clean([&] { kapsl::open_package(archive, options); });
  std::filesystem::remove_all(options.cache_dir);
  return 0;
}
