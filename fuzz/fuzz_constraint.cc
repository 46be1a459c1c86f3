// Output constraints as a client sends them, through a vocab-only GGUF engine up to the
// sampler (no decoding): a JSON schema (json_schema, response_format), a GBNF grammar
// (llama-server's `grammar`), or a tool's parameters schema rendered by the chat template
// into a tool-call grammar. The first byte of the input picks which (modulo 3); the rest
// is the text. This reaches common's JSON Schema converter and chat formats, and
// llama.cpp's grammar parser.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz_util.h"
#include "kapsl/gguf_engine.h"

namespace {

kapsl::GgufEngine& engine() {
  static const std::unique_ptr<kapsl::GgufEngine> e = [] {
    kapsl::GgufOptions o;
    o.vocab_only = true;
    return kapsl::GgufEngine::load(KAPSL_FUZZ_VOCAB, o);
  }();
  return *e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  kapsl::GenerateRequest request;
  request.prompt = std::string("Answer:");
  switch (data[0] % 3) {
    case 0: request.options.json_schema = text; break;
    case 1: request.options.grammar = text; break;
    default: {
      kapsl::ChatPrompt chat;
      chat.messages = {{"user", "Call it."}};
      chat.tools = {{"f", "a tool", text}};
      chat.tool_choice = kapsl::ToolChoice::kRequired;
      request.prompt = chat;
    }
  }
  kapsl::fuzz::expect_clean([&] { engine().prompt_tokens(request); });
  return 0;
}
