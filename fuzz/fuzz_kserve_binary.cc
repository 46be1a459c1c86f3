// KServe v2 requests with Triton's binary tensor data extension: a JSON header of
// Inference-Header-Content-Length bytes, then each input's raw bytes. The fuzz input is
// that header's value (4 bytes, little-endian) followed by the body. A value with its top
// bit set is used as it is — a length that lies — and any other is taken modulo the body
// size plus one, so that most inputs split the body somewhere inside it.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_util.h"
#include "server/kserve_tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const uint32_t declared = uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 | uint32_t{data[3]} << 24;
  const std::string_view body(reinterpret_cast<const char*>(data + 4), size - 4);
  const size_t header_length = (declared & 0x80000000u) != 0 ? declared : declared % (body.size() + 1);
  kapsl::fuzz::expect_clean([&] {
    const auto request = kapsl::server::parse_infer_request(body, header_length);
    kapsl::server::encode_infer_response("model", "1", request, request.inputs);
  });
  return 0;
}
