// KServe v2 JSON inference requests — the body of POST /v2/models/NAME/infer — through the
// streaming parser, then the response encoder over what it parsed (an identity model's
// answer), so that whatever the parser accepts the encoder can write.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "fuzz_util.h"
#include "server/kserve_tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  kapsl::fuzz::expect_clean([&] {
    const auto request = kapsl::server::parse_infer_request(body, std::nullopt);
    kapsl::server::encode_infer_response("model", "1", request, request.inputs);
  });
  return 0;
}
