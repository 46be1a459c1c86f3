// Runs a fuzz target over files and folders of inputs without libFuzzer: how every build
// that is not the fuzz preset (gcc, ASan, TSan) checks that the targets build and that the
// seeds and past crashes pass. Usage: fuzz_NAME_replay PATH...
// Exit status: 0 when every input ran (a crash ends the process as it would under libFuzzer).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);
extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) __attribute__((weak));

namespace {

void run_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}

}  // namespace

int main(int argc, char** argv) {
  if (LLVMFuzzerInitialize != nullptr) LLVMFuzzerInitialize(&argc, &argv);
  size_t n = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path arg = argv[i];
    if (!std::filesystem::exists(arg)) {
      std::fprintf(stderr, "no such input: %s\n", argv[i]);
      return 2;
    }
    if (std::filesystem::is_directory(arg)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(arg)) {
        if (e.is_regular_file()) run_file(e.path()), ++n;
      }
    } else {
      run_file(arg), ++n;
    }
  }
  std::printf("%zu inputs ran\n", n);
  return n > 0 ? 0 : 1;
}
