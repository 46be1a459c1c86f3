// Anthropic's Messages API: POST /v1/messages, whole or streamed with its named events
// (message_start, content_block_start / _delta / _stop, message_delta, message_stop; a
// failure is an "error" event), for every model whose engine generates text. Text only:
// what else the API offers (tools, thinking, images) is refused with 400 naming the field
// (parse_anthropic_body). The generation path is generation_route.h.
#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "server/generation_route.h"

namespace kapsl {

using json = nlohmann::json;

namespace {

using server::Generation;
using server::reply_text;
using server::sse;

const char* stop_reason(FinishReason reason) { return reason == FinishReason::kLength ? "max_tokens" : "end_turn"; }

json usage(const GenerationUsage& u) { return {{"input_tokens", u.prompt_tokens}, {"output_tokens", u.completion_tokens}}; }

json message(const Generation& g, json content, const char* reason, const GenerationUsage& u) {
  return {{"id", g.id},
          {"type", "message"},
          {"role", "assistant"},
          {"model", g.model},
          {"content", std::move(content)},
          {"stop_reason", reason ? json(reason) : json(nullptr)},
          {"stop_sequence", nullptr},
          {"usage", usage(u)}};
}

json error_body(const Error& e) {
  const int status = server::status_for(e.code(), server::ApiStyle::kOpenAi);
  const char* type = status == 429 || status == 503 ? "overloaded_error"
                     : status >= 500                ? "api_error"
                                                    : "invalid_request_error";
  return {{"type", "error"}, {"error", {{"type", type}, {"message", e.message()}}}};
}

class AnthropicStream final : public server::StreamFormat {
 public:
  explicit AnthropicStream(const Generation& g) : g_(g) {
    prompt_.prompt_tokens = g.prompt_tokens;
  }
  std::string start() override {
    const json block = {{"type", "text"}, {"text", ""}};
    return sse({{"type", "message_start"}, {"message", message(g_, json::array(), nullptr, prompt_)}}, "message_start") +
           sse({{"type", "content_block_start"}, {"index", 0}, {"content_block", block}}, "content_block_start");
  }
  std::string delta(const std::string& text) override {
    const json d = {{"type", "text_delta"}, {"text", text}};
    return sse({{"type", "content_block_delta"}, {"index", 0}, {"delta", d}}, "content_block_delta");
  }
  std::string finish(const std::vector<GenerateResult>& replies) override {
    const GenerateResult& r = replies.front();
    const json d = {{"stop_reason", stop_reason(r.usage.finish_reason)}, {"stop_sequence", nullptr}};
    return sse({{"type", "content_block_stop"}, {"index", 0}}, "content_block_stop") +
           sse({{"type", "message_delta"}, {"delta", d}, {"usage", {{"output_tokens", r.usage.completion_tokens}}}},
               "message_delta") +
           sse({{"type", "message_stop"}}, "message_stop");
  }
  std::string error(const Error& e) override { return sse(error_body(e), "error"); }

 private:
  Generation g_;
  GenerationUsage prompt_;  // what message_start reports: the prompt's tokens
};

server::GenerationApi messages_api() {
  return {[](const json& body, std::string_view) { return server::parse_anthropic_body(body); }, "msg_",
          [](const Generation& g, const server::GenerationBody&) { return std::make_unique<AnthropicStream>(g); },
          [](const Generation& g, const std::vector<GenerateResult>& replies) {
            const GenerateResult& r = replies.front();
            const json content = json::array({{{"type", "text"}, {"text", reply_text(r)}}});
            return message(g, content, stop_reason(r.usage.finish_reason), r.usage);
          }};
}

}  // namespace

void Server::Impl::register_anthropic_routes() {
  http.Post("/v1/messages", [this, api = messages_api()](const httplib::Request& req, httplib::Response& res,
                                                         const httplib::ContentReader& reader) {
    guarded(res, server::ApiStyle::kOpenAi, [&] { server::serve_generation(*this, req, res, reader, api); });
  });
}

}  // namespace kapsl
