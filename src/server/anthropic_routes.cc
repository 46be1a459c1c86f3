// Anthropic's Messages API: POST /v1/messages, whole or streamed with its named events
// (message_start, content_block_start / _delta / _stop, message_delta, message_stop; a
// failure is an "error" event), for every model whose engine generates text. Replies are
// text and tool_use blocks (streamed as input_json_delta pieces), ending with stop_reason
// "tool_use" when the model called a tool; a reasoning model's reasoning is not returned.
// What else the API offers (thinking, server tools, images) is refused with 400 naming the
// field (parse_anthropic_body). The generation path is generation_route.h.
#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "server/generation_route.h"

namespace kapsl {

using json = nlohmann::json;

namespace {

using server::Generation;
using server::reply_text;
using server::sse;

const char* stop_reason(const GenerateResult& r) {
  if (r.usage.finish_reason == FinishReason::kLength) return "max_tokens";
  return r.message && !r.message->tool_calls.empty() ? "tool_use" : "end_turn";
}

// A tool call's arguments as the object Anthropic's "input" is; text that is not an
// object (a reply cut by max_tokens) is given as {}.
json tool_input(const ToolCall& c) {
  json input = json::parse(c.arguments, nullptr, false);
  return input.is_object() ? input : json::object();
}

json tool_use_block(const ToolCall& c, json input) {
  return {{"type", "tool_use"}, {"id", c.id}, {"name", c.name}, {"input", std::move(input)}};
}

// The reply's blocks: its text (if any, or if there is nothing else), then its tool calls.
json content_blocks(const GenerateResult& r) {
  json blocks = json::array();
  const std::vector<ToolCall> none;
  const std::vector<ToolCall>& calls = r.message ? r.message->tool_calls : none;
  if (!reply_text(r).empty() || calls.empty()) blocks.push_back({{"type", "text"}, {"text", reply_text(r)}});
  for (const ToolCall& c : calls) blocks.push_back(tool_use_block(c, tool_input(c)));
  return blocks;
}

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

// Blocks open as the reply needs them: text first, then each tool call (its input streamed
// as input_json_delta pieces); each closes when the next opens.
class AnthropicStream final : public server::StreamFormat {
 public:
  explicit AnthropicStream(const Generation& g) : g_(g) {
    prompt_.prompt_tokens = g.prompt_tokens;
  }
  std::string start() override {
    return sse({{"type", "message_start"}, {"message", message(g_, json::array(), nullptr, prompt_)}}, "message_start");
  }
  std::string delta(const std::string& text) override {
    std::string frames = open_text();
    const json d = {{"type", "text_delta"}, {"text", text}};
    return frames + block_event("content_block_delta", {{"delta", d}});
  }
  std::string chat_delta(const ChatDelta& d) override {
    std::string frames = d.content.empty() ? "" : delta(d.content);
    if (d.tool_call_index < 0) return frames;
    if (!open_ || d.tool_call_index != open_call_) {
      frames += open_block(tool_use_block(d.tool_call, json::object()));
      open_call_ = d.tool_call_index;
    }
    if (!d.tool_call.arguments.empty()) {
      const json piece = {{"type", "input_json_delta"}, {"partial_json", d.tool_call.arguments}};
      frames += block_event("content_block_delta", {{"delta", piece}});
    }
    return frames;
  }
  std::string finish(const std::vector<GenerateResult>& replies) override {
    const GenerateResult& r = replies.front();
    std::string frames = index_ < 0 ? open_text() : "";  // a reply of nothing is one empty text block
    frames += close_block();
    const json d = {{"stop_reason", stop_reason(r)}, {"stop_sequence", nullptr}};
    frames += sse({{"type", "message_delta"}, {"delta", d}, {"usage", {{"output_tokens", r.usage.completion_tokens}}}},
                  "message_delta");
    return frames + sse({{"type", "message_stop"}}, "message_stop");
  }
  std::string error(const Error& e) override { return sse(error_body(e), "error"); }

 private:
  std::string open_text() {
    if (open_ && open_call_ < 0) return "";
    open_call_ = -1;
    return open_block({{"type", "text"}, {"text", ""}});
  }
  std::string open_block(json block) {
    std::string frames = close_block();
    ++index_;
    open_ = true;
    return frames + block_event("content_block_start", {{"content_block", std::move(block)}});
  }
  std::string close_block() {
    if (!open_) return "";
    open_ = false;
    return block_event("content_block_stop", json::object());
  }
  std::string block_event(const char* type, json fields) const {
    fields["type"] = type;
    fields["index"] = index_;
    return sse(fields, type);
  }

  Generation g_;
  GenerationUsage prompt_;  // what message_start reports: the prompt's tokens
  int index_ = -1;          // the last block opened
  bool open_ = false;       // and whether it is still open
  int32_t open_call_ = -1;  // the tool call whose block is open, or -1 for text
};

server::GenerationApi messages_api() {
  return {[](const json& body, std::string_view raw) { return server::parse_anthropic_body(body, raw); }, "msg_",
          [](const Generation& g, const server::GenerationBody&) { return std::make_unique<AnthropicStream>(g); },
          [](const Generation& g, const std::vector<GenerateResult>& replies) {
            const GenerateResult& r = replies.front();
            return message(g, content_blocks(r), stop_reason(r), r.usage);
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
