// Anthropic Messages request bodies (/v1/messages), read as a chat: text, tool_use and
// tool_result blocks, client tools and tool_choice. See parse_anthropic_body.
#include <string>
#include <vector>

#include "kapsl/error.h"
#include "server/body_fields.h"
#include "server/openai_params.h"

namespace kapsl::server {

using json = nlohmann::json;

namespace {

// The name of the tool call `id` among the assistant's earlier calls, or "".
std::string called_tool(const std::vector<ChatMessage>& messages, const std::string& id) {
  for (auto m = messages.rbegin(); m != messages.rend(); ++m) {
    for (const ToolCall& c : m->tool_calls) {
      if (c.id == id) return c.name;
    }
  }
  return "";
}

ToolCall tool_use(const json& block) {
  ToolCall call;
  call.id = string_field(block, "id", "tool_use");
  call.name = string_field(block, "name", "tool_use");
  const json input = block.value("input", json::object());
  if (!input.is_object()) bad("tool_use.input", "an object", input);
  call.arguments = input.dump();
  return call;
}

ChatMessage tool_result(const json& block, const std::vector<ChatMessage>& earlier) {
  ChatMessage m;
  m.role = "tool";
  m.tool_call_id = string_field(block, "tool_use_id", "tool_result");
  m.tool_name = called_tool(earlier, m.tool_call_id);
  if (const auto c = block.find("content"); c != block.end() && !c->is_null()) {
    m.content = content_text(*c, "tool_result.content", {"text"});
  }
  return m;
}

// One message: text blocks joined; an assistant's tool_use blocks become its tool calls; a
// user's tool_result blocks become tool messages, before the user's text.
void add_message(const json& m, std::vector<ChatMessage>* out) {
  const json role = m.is_object() ? m.value("role", json()) : json();
  if (role != "user" && role != "assistant") bad("messages[].role", "\"user\" or \"assistant\"", role);
  ChatMessage message = text_message(role.get<std::string>(), "");
  const json content = m.value("content", json());
  if (!content.is_array()) {
    message.content = content_text(content, "messages[].content", {"text"});
    out->push_back(std::move(message));
    return;
  }
  std::vector<ChatMessage> results;
  for (const json& block : content) {
    const json type = block.is_object() ? block.value("type", json()) : json();
    if (type == "tool_use" && role == "assistant") {
      message.tool_calls.push_back(tool_use(block));
    } else if (type == "tool_result" && role == "user") {
      results.push_back(tool_result(block, *out));
    } else {
      message.content += content_text(json::array({block}), "messages[].content", {"text"});
    }
  }
  out->insert(out->end(), results.begin(), results.end());
  if (results.empty() || !message.content.empty()) out->push_back(std::move(message));
}

// tools: [{"name", "description", "input_schema"}] (client tools; "type" absent or "custom").
// tool_choice: {"type": "auto" | "any" | "tool" (with "name") | "none",
// "disable_parallel_tool_use"}.
void parse_anthropic_tools(const json& body, std::string_view raw, ChatPrompt* chat) {
  if (const auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxTools) bad("tools", "an array of at most 128 tools", *it);
    const std::vector<std::string> as_sent = tool_schemas_as_sent(raw, {"input_schema"});
    for (const json& t : *it) {
      if (!t.is_object() || (t.contains("type") && t["type"] != "custom")) {
        bad("tools[]", "a client tool {\"name\", \"description\", \"input_schema\"} (server tools are not supported)", t);
      }
      add_tool(chat, t, "input_schema", "tools[]", as_sent);
    }
  }
  chat->parallel_tool_calls = true;
  const auto choice = body.find("tool_choice");
  if (choice == body.end() || choice->is_null()) return;
  const json type = choice->is_object() ? choice->value("type", json()) : json();
  if (type == "any") chat->tool_choice = ToolChoice::kRequired;
  else if (type == "none") chat->tool_choice = ToolChoice::kNone;
  else if (type == "tool") require_tool(chat, choice->value("name", json()), "tool_choice.name");
  else if (type != "auto") bad("tool_choice", "{\"type\": \"auto\" | \"any\" | \"tool\" | \"none\"}", *choice);
  chat->parallel_tool_calls = !flag(*choice, "disable_parallel_tool_use");
  check_tool_choice(*chat);
}

}  // namespace

GenerationBody parse_anthropic_body(const json& body, std::string_view raw) {
  only_fields(body, {"model", "max_tokens", "messages", "system", "stop_sequences", "temperature", "top_p", "top_k", "stream",
              "metadata", "tools", "tool_choice", "thinking"},
       "Anthropic Messages");
  refuse(body, "thinking");
  GenerationBody out;
  out.model = model_field(body);
  if (!body.contains("max_tokens")) throw Error::invalid_input("'max_tokens' is required");
  out.sampling = renamed_sampling(body, {{"max_tokens", "max_tokens"}, {"stop_sequences", "stop"}, {"temperature", "temperature"},
                                         {"top_p", "top_p"}, {"top_k", "top_k"}, {"stream", "stream"}});
  std::vector<ChatMessage> messages;
  if (const auto it = body.find("system"); it != body.end() && !it->is_null()) {
    messages.push_back(text_message("system", content_text(*it, "system", {"text"})));
  }
  const auto list = body.find("messages");
  if (list == body.end() || !list->is_array() || list->empty()) {
    throw Error::invalid_input("'messages' is required", "expected a non-empty array of messages");
  }
  for (const json& m : *list) add_message(m, &messages);
  ChatPrompt chat = chat_of(std::move(messages));
  parse_anthropic_tools(body, raw, &chat);
  out.input = std::move(chat);
  return out;
}

}  // namespace kapsl::server
