// OpenAI's Responses API: POST /v1/responses, whole or streamed with its typed events
// (response.created, response.output_item.added, response.content_part.added,
// response.output_text.delta / .done, response.content_part.done,
// response.output_item.done, response.completed; a failure is response.failed), for every
// model whose engine generates text. Text only, nothing stored: what else the API offers
// (tools, previous_response_id, reasoning, structured output) is refused with 400 naming
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

// The assistant's message item; `text` null while it is being written.
json message_item(const Generation& g, const std::optional<std::string>& text) {
  return {{"type", "message"},
          {"id", "msg_" + g.id.substr(5)},  // g.id is "resp_" + the request id
          {"status", text ? "completed" : "in_progress"},
          {"role", "assistant"},
          {"content", text ? json::array({text_part(*text)}) : json::array()}};
}

// The response object; `result` null while the generation runs.
json response(const Generation& g, const GenerateResult* result, const char* status) {
  json r = {{"id", g.id},
            {"object", "response"},
            {"created_at", g.created},
            {"status", status},
            {"model", g.model},
            {"output", result ? json::array({message_item(g, reply_text(*result))}) : json::array()},
            {"usage", result ? usage(result->usage) : json(nullptr)},
            {"error", nullptr},
            {"incomplete_details", nullptr},
            {"parallel_tool_calls", false},
            {"tool_choice", "none"},
            {"tools", json::array()},
            {"store", false}};
  if (result && result->usage.finish_reason == FinishReason::kLength) {
    r["status"] = "incomplete";
    r["incomplete_details"] = {{"reason", "max_output_tokens"}};
  }
  return r;
}

class ResponsesStream final : public server::StreamFormat {
 public:
  explicit ResponsesStream(const Generation& g) : g_(g), item_id_(message_item(g, std::nullopt)["id"]) {}
  // (Each event in its own statement: the order of operands of + is unspecified, and the
  // sequence numbers must follow the events.)
  std::string start() override {
    std::string frames = event("response.created", {{"response", response(g_, nullptr, "in_progress")}});
    frames += event("response.in_progress", {{"response", response(g_, nullptr, "in_progress")}});
    frames += event("response.output_item.added", {{"output_index", 0}, {"item", message_item(g_, std::nullopt)}});
    frames += event("response.content_part.added", part_fields({{"part", text_part("")}}));
    return frames;
  }
  std::string delta(const std::string& text) override {
    return event("response.output_text.delta", part_fields({{"delta", text}, {"logprobs", json::array()}}));
  }
  std::string finish(const std::vector<GenerateResult>& replies) override {
    const GenerateResult& r = replies.front();
    const json done = response(g_, &r, "completed");
    std::string frames = event("response.output_text.done", part_fields({{"text", reply_text(r)}, {"logprobs", json::array()}}));
    frames += event("response.content_part.done", part_fields({{"part", text_part(reply_text(r))}}));
    frames += event("response.output_item.done", {{"output_index", 0}, {"item", message_item(g_, reply_text(r))}});
    frames += event(done["status"] == "completed" ? "response.completed" : "response.incomplete", {{"response", done}});
    return frames;
  }
  std::string error(const Error& e) override {
    json failed = response(g_, nullptr, "failed");
    failed["error"] = {{"code", e.code() == ErrorCode::kTimeout ? "timeout" : "server_error"}, {"message", e.message()}};
    return event("response.failed", {{"response", failed}});
  }

 private:
  // An event: its type, sequence number and fields.
  std::string event(const char* type, json fields) {
    fields["type"] = type;
    fields["sequence_number"] = sequence_++;
    return server::sse(fields, type);
  }
  // The fields that place a content-part event: the item, output 0, content part 0.
  json part_fields(json fields) const {
    fields["item_id"] = item_id_;
    fields["output_index"] = 0;
    fields["content_index"] = 0;
    return fields;
  }

  Generation g_;
  std::string item_id_;
  int64_t sequence_ = 0;
};

server::GenerationApi responses_api() {
  return {[](const json& body, std::string_view) { return server::parse_responses_body(body); }, "resp_",
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
