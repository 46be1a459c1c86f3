// OpenAI's Responses API: POST /v1/responses, whole or streamed with its typed events
// (response.created, response.output_item.added, response.content_part.added,
// response.output_text.delta / .done, response.content_part.done,
// response.function_call_arguments.delta / .done, response.output_item.done,
// response.completed; a failure is response.failed), for every model whose engine
// generates text. The output is the reply's message item (its text, if any, or if there is
// nothing else) and a function_call item per tool call. Nothing is stored: what else the
// API offers (built-in tools, previous_response_id, reasoning) is refused with 400 naming
// the field (parse_responses_body). The generation path is generation_route.h.
#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "server/generation_route.h"

namespace kapsl {

using json = nlohmann::json;

namespace {

using server::Generation;
using server::reply_text;

json usage(const GenerationUsage& u) {
  return {{"input_tokens", u.prompt_tokens},
          {"output_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"input_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}},
          {"output_tokens_details", {{"reasoning_tokens", 0}}}};
}

json text_part(const std::string& text) { return {{"type", "output_text"}, {"text", text}, {"annotations", json::array()}}; }

// The response's request id: g.id is "resp_" + it.
std::string request_id(const Generation& g) { return g.id.substr(5); }

// The assistant's message item; `text` null while it is being written.
json message_item(const Generation& g, const std::optional<std::string>& text) {
  return {{"type", "message"},
          {"id", "msg_" + request_id(g)},
          {"status", text ? "completed" : "in_progress"},
          {"role", "assistant"},
          {"content", text ? json::array({text_part(*text)}) : json::array()}};
}

// Tool call `index` of the reply; `done`: its arguments are complete.
json function_call_item(const Generation& g, size_t index, const ToolCall& c, bool done) {
  return {{"type", "function_call"},
          {"id", "fc_" + request_id(g) + "_" + std::to_string(index)},
          {"call_id", c.id},
          {"name", c.name},
          {"arguments", c.arguments},
          {"status", done ? "completed" : "in_progress"}};
}

const ChatPrompt* chat_of(const Generation& g) { return std::get_if<ChatPrompt>(&g.request.prompt); }

// The request's tools, as the response echoes them.
json tools_json(const Generation& g) {
  json tools = json::array();
  if (const ChatPrompt* chat = chat_of(g)) {
    for (const ToolDefinition& t : chat->tools) {
      tools.push_back({{"type", "function"},
                       {"name", t.name},
                       {"description", t.description},
                       {"parameters", t.parameters.empty() ? json(nullptr) : json::parse(t.parameters, nullptr, false)},
                       {"strict", false}});
    }
  }
  return tools;
}

json output_json(const Generation& g, const GenerateResult& r) {
  json output = json::array();
  const std::vector<ToolCall> none;
  const std::vector<ToolCall>& calls = r.message ? r.message->tool_calls : none;
  if (!reply_text(r).empty() || calls.empty()) output.push_back(message_item(g, reply_text(r)));
  for (size_t i = 0; i < calls.size(); ++i) output.push_back(function_call_item(g, i, calls[i], true));
  return output;
}

// The response object; `result` null while the generation runs.
json response(const Generation& g, const GenerateResult* result, const char* status) {
  const ChatPrompt* chat = chat_of(g);
  const char* tool_choice = !chat || chat->tool_choice == ToolChoice::kAuto ? "auto"
                            : chat->tool_choice == ToolChoice::kNone        ? "none"
                                                                            : "required";
  json r = {{"id", g.id},
            {"object", "response"},
            {"created_at", g.created},
            {"status", status},
            {"model", g.model},
            {"output", result ? output_json(g, *result) : json::array()},
            {"usage", result ? usage(result->usage) : json(nullptr)},
            {"error", nullptr},
            {"incomplete_details", nullptr},
            {"parallel_tool_calls", chat && chat->parallel_tool_calls},
            {"tool_choice", tool_choice},
            {"tools", tools_json(g)},
            {"store", false}};
  if (result && result->usage.finish_reason == FinishReason::kLength) {
    r["status"] = "incomplete";
    r["incomplete_details"] = {{"reason", "max_output_tokens"}};
  }
  return r;
}

// Items open as the reply needs them — the message for text, then an item per tool call —
// and each closes when the next opens.
class ResponsesStream final : public server::StreamFormat {
 public:
  explicit ResponsesStream(const Generation& g) : g_(g) {}
  // (Each event in its own statement: the order of operands of + is unspecified, and the
  // sequence numbers must follow the events.)
  std::string start() override {
    std::string frames = event("response.created", {{"response", response(g_, nullptr, "in_progress")}});
    frames += event("response.in_progress", {{"response", response(g_, nullptr, "in_progress")}});
    return frames;
  }
  std::string delta(const std::string& text) override {
    std::string frames = open_message();
    text_ += text;
    frames += event("response.output_text.delta", part_fields({{"delta", text}, {"logprobs", json::array()}}));
    return frames;
  }
  std::string chat_delta(const ChatDelta& d) override {
    std::string frames = d.content.empty() ? "" : delta(d.content);
    if (d.tool_call_index < 0) return frames;
    if (open_ != Open::kCall || d.tool_call_index != call_index_) {
      frames += close();
      call_index_ = d.tool_call_index;
      call_ = d.tool_call;
      call_.arguments.clear();
      open_ = Open::kCall;
      ++output_index_;
      frames += event("response.output_item.added", {{"output_index", output_index_}, {"item", call_item(false)}});
    }
    if (!d.tool_call.arguments.empty()) {
      call_.arguments += d.tool_call.arguments;
      frames += event("response.function_call_arguments.delta", call_fields({{"delta", d.tool_call.arguments}}));
    }
    return frames;
  }
  std::string finish(const std::vector<GenerateResult>& replies) override {
    std::string frames = output_index_ < 0 ? open_message() : "";  // a reply of nothing is an empty message
    frames += close();
    const json done = response(g_, &replies.front(), "completed");
    frames += event(done["status"] == "completed" ? "response.completed" : "response.incomplete", {{"response", done}});
    return frames;
  }
  std::string error(const Error& e) override {
    json failed = response(g_, nullptr, "failed");
    failed["error"] = {{"code", e.code() == ErrorCode::kTimeout ? "timeout" : "server_error"}, {"message", e.message()}};
    return event("response.failed", {{"response", failed}});
  }

 private:
  enum class Open { kNone, kMessage, kCall };

  std::string open_message() {
    if (open_ == Open::kMessage) return "";
    std::string frames = close();
    open_ = Open::kMessage;
    ++output_index_;
    frames += event("response.output_item.added", {{"output_index", output_index_}, {"item", message_item(g_, std::nullopt)}});
    frames += event("response.content_part.added", part_fields({{"part", text_part("")}}));
    return frames;
  }
  // Ends the open item, if any.
  std::string close() {
    std::string frames;
    if (open_ == Open::kMessage) {
      frames += event("response.output_text.done", part_fields({{"text", text_}, {"logprobs", json::array()}}));
      frames += event("response.content_part.done", part_fields({{"part", text_part(text_)}}));
      frames += event("response.output_item.done", {{"output_index", output_index_}, {"item", message_item(g_, text_)}});
    } else if (open_ == Open::kCall) {
      frames += event("response.function_call_arguments.done", call_fields({{"arguments", call_.arguments}}));
      frames += event("response.output_item.done", {{"output_index", output_index_}, {"item", call_item(true)}});
    }
    open_ = Open::kNone;
    return frames;
  }
  json call_item(bool done) const { return function_call_item(g_, static_cast<size_t>(call_index_), call_, done); }
  // An event: its type, sequence number and fields.
  std::string event(const char* type, json fields) {
    fields["type"] = type;
    fields["sequence_number"] = sequence_++;
    return server::sse(fields, type);
  }
  // The fields that place a content-part event: the message item, its content part 0.
  json part_fields(json fields) const {
    fields["item_id"] = message_item(g_, std::nullopt)["id"];
    fields["output_index"] = output_index_;
    fields["content_index"] = 0;
    return fields;
  }
  json call_fields(json fields) const {
    fields["item_id"] = call_item(false)["id"];
    fields["output_index"] = output_index_;
    return fields;
  }

  Generation g_;
  int64_t sequence_ = 0;
  int output_index_ = -1;  // the last item opened
  Open open_ = Open::kNone;
  std::string text_;        // the message's text so far
  int32_t call_index_ = -1;  // the open tool call
  ToolCall call_;            // its id, name and arguments so far
};

server::GenerationApi responses_api() {
  return {[](const json& body, std::string_view raw) { return server::parse_responses_body(body, raw); }, "resp_",
          [](const Generation& g, const server::GenerationBody&) { return std::make_unique<ResponsesStream>(g); },
          [](const Generation& g, const std::vector<GenerateResult>& replies) {
            return response(g, &replies.front(), "completed");
          }};
}

}  // namespace

void Server::Impl::register_responses_routes() {
  http.Post("/v1/responses", [this, api = responses_api()](const httplib::Request& req, httplib::Response& res,
                                                           const httplib::ContentReader& reader) {
    guarded(res, server::ApiStyle::kOpenAi, [&] { server::serve_generation(*this, req, res, reader, api); });
  });
}

}  // namespace kapsl
