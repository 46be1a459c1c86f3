// NumPy .npy files as `kapsl run --input NAME=FILE.npy` reads them. What parses must also
// survive a round trip: written back with npy_serialize and read again, it is the same
// tensor (else the process aborts and libFuzzer keeps the input).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fuzz_util.h"
#include "npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  kapsl::fuzz::expect_clean([&] {
    const kapsl::Tensor tensor = kapsl::cli::npy_parse(bytes);
    if (!(kapsl::cli::npy_parse(kapsl::cli::npy_serialize(tensor)) == tensor)) {
      std::fprintf(stderr, "npy round trip changed the tensor\n");
      std::abort();
    }
  });
  return 0;
}
