// OpenAI-compatible request bodies as the routes read them: the bounded JSON parser, then
// the body of /v1/completions, /v1/chat/completions or /v1/embeddings, a KServe request's
// sampling parameters, an Anthropic Messages body, an OpenAI Responses body, a rerank body
// or llama-server's /infill body. The first byte of the input picks which (modulo 8); the
// rest is the body (also given as the raw text the tool schemas are read from in the
// client's key order).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_util.h"
#include "server/openai_params.h"
#include "server/rerank_body.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  kapsl::fuzz::expect_clean([&] {
    const nlohmann::json doc = kapsl::server::parse_object(body);
    switch (data[0] % 8) {
      case 0: kapsl::server::parse_generation_body(doc, /*chat=*/false); break;
      case 1: kapsl::server::parse_generation_body(doc, /*chat=*/true, body); break;
      case 2: kapsl::server::parse_embeddings_body(doc); break;
      case 3: kapsl::server::parse_sampling(doc, /*kserve=*/true); break;
      case 4: kapsl::server::parse_anthropic_body(doc, body); break;
      case 5: kapsl::server::parse_responses_body(doc, body); break;
      case 6: kapsl::server::parse_rerank_body(doc); break;
      default: kapsl::server::parse_infill_body(doc); break;
    }
  });
  return 0;
}
