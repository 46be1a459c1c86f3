// GGUF files as kapsl checks them before llama.cpp reads them (validate_gguf_file): header
// counts against the file size, then ggml's own gguf parser on the key-value and tensor
// tables, then every tensor's data inside the file. Each input is written to a scratch file.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "gguf/gguf_validate.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = kapsl::fuzz::write_scratch("model.gguf", data, size);
  kapsl::fuzz::expect_clean([&] { kapsl::gguf::validate_gguf_file(path.string()); });
  return 0;
}
