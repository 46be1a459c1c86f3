#include "fuzz_util.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <spdlog/spdlog.h>

#include "core/backend_log.h"

namespace kapsl::fuzz {
namespace {

std::filesystem::path make_scratch_dir() {
  std::error_code ec;
  const std::filesystem::path base =
      std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : std::filesystem::temp_directory_path();
  auto dir = base / ("kapsl-fuzz-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace

void quiet_logs() {
  spdlog::set_level(spdlog::level::off);
  internal::backend_logger().set_level(spdlog::level::off);
}

void report(const kapsl::Error* refused) {
  static const bool verbose = std::getenv("KAPSL_FUZZ_VERBOSE") != nullptr;
  if (!verbose) return;
  if (refused == nullptr) std::fprintf(stderr, "accepted\n");
  else std::fprintf(stderr, "refused: %s\n", refused->what());
}

const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = make_scratch_dir();
  static const int registered = std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });
  (void)registered;
  return dir;
}

std::filesystem::path write_scratch(std::string_view name, const uint8_t* data, size_t size) {
  const auto path = scratch_dir() / std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) std::abort();  // the harness, not the parser, failed: stop loudly
  return path;
}

}  // namespace kapsl::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kapsl::fuzz::quiet_logs();
  return 0;
}
