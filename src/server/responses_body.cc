// OpenAI Responses request bodies (/v1/responses), read as a chat: message, function_call
// and function_call_output items, function tools, tool_choice and text.format. See
// parse_responses_body.
#include <string>
#include <vector>

#include "kapsl/error.h"
#include "server/body_fields.h"
#include "server/openai_params.h"

namespace kapsl::server {

using json = nlohmann::json;

namespace {

// An earlier function call of the model: part of the assistant message before it, if that
// message is the last one.
void add_function_call(const json& item, std::vector<ChatMessage>* messages) {
  ToolCall call;
  call.id = string_field(item, "call_id", "input[] function_call");
  call.name = string_field(item, "name", "input[] function_call");
  call.arguments = string_field(item, "arguments", "input[] function_call");
  if (messages->empty() || messages->back().role != "assistant") messages->push_back(text_message("assistant", ""));
  messages->back().tool_calls.push_back(std::move(call));
}

void add_function_output(const json& item, std::vector<ChatMessage>* messages) {
  ChatMessage m = text_message("tool", content_text(item.value("output", json()), "input[].output",
                                                    {"input_text", "output_text"}));
  m.tool_call_id = string_field(item, "call_id", "input[] function_call_output");
  for (auto earlier = messages->rbegin(); earlier != messages->rend() && m.tool_name.empty(); ++earlier) {
    for (const ToolCall& c : earlier->tool_calls) {
      if (c.id == m.tool_call_id) m.tool_name = c.name;
    }
  }
  messages->push_back(std::move(m));
}

void add_item(const json& item, std::vector<ChatMessage>* messages) {
  const json type = item.is_object() ? item.value("type", json("message")) : json();
  if (type == "function_call") return add_function_call(item, messages);
  if (type == "function_call_output") return add_function_output(item, messages);
  const json role = item.is_object() ? item.value("role", json()) : json();
  if (type != "message" || (role != "user" && role != "assistant" && role != "system" && role != "developer")) {
    throw Error::invalid_input(
        "'input': only messages (roles user, assistant, system, developer), function_call and function_call_output "
        "items are supported",
        "got " + item.dump().substr(0, 64));
  }
  const std::string r = role == "developer" ? "system" : role.get<std::string>();
  messages->push_back(
      text_message(r, content_text(item.value("content", json()), "input[].content", {"input_text", "output_text"})));
}

// tools: [{"type": "function", "name", "description", "parameters", "strict"}];
// tool_choice: "auto" | "none" | "required" | {"type": "function", "name"}.
void parse_function_tools(const json& body, std::string_view raw, ChatPrompt* chat) {
  if (const auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxTools) bad("tools", "an array of at most 128 tools", *it);
    const std::vector<std::string> as_sent = tool_schemas_as_sent(raw, {"parameters"});
    for (const json& t : *it) {
      if (!t.is_object() || t.value("type", json()) != "function") {
        bad("tools[]", "a function tool {\"type\": \"function\", \"name\", \"parameters\"} (built-in tools are not "
                       "supported)", t);
      }
      add_tool(chat, t, "parameters", "tools[]", as_sent);
    }
  }
  chat->parallel_tool_calls = flag(body, "parallel_tool_calls", true);
  const auto choice = body.find("tool_choice");
  if (choice == body.end() || choice->is_null() || *choice == "auto") return;
  if (*choice == "none") chat->tool_choice = ToolChoice::kNone;
  else if (*choice == "required") chat->tool_choice = ToolChoice::kRequired;
  else if (choice->is_object() && choice->value("type", json()) == "function") require_tool(chat, choice->value("name", json()), "tool_choice.name");
  else bad("tool_choice", "\"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\"}", *choice);
  check_tool_choice(*chat);
}

// text.format: {"type": "text"}, {"type": "json_object"} or {"type": "json_schema",
// "name", "schema", "strict"}.
void parse_text_format(const json& body, std::string_view raw, GenerationOptions* o) {
  const auto text = body.find("text");
  if (text == body.end() || text->is_null()) return;
  if (!text->is_object()) bad("text", "an object with a 'format'", *text);
  only_fields(*text, {"format", "verbosity"}, "OpenAI Responses 'text'");
  const json format = text->value("format", json{{"type", "text"}});
  const json type = format.is_object() ? format.value("type", json()) : json();
  if (type == "text") return;
  if (type == "json_object") {
    o->json_schema = R"({"type":"object"})";
    return;
  }
  if (type != "json_schema") bad("text.format", "{\"type\": \"text\" | \"json_object\" | \"json_schema\"}", format);
  const json schema = format.value("schema", json());
  if (!schema.is_object()) bad("text.format.schema", "a JSON Schema object", schema);
  const std::string as_sent = object_as_sent(raw, {"text", "format", "schema"});  // keys in the client's order
  o->json_schema = schema.empty() ? R"({"type":"object"})" : as_sent.empty() ? schema.dump() : as_sent;
}

}  // namespace

GenerationBody parse_responses_body(const json& body, std::string_view raw) {
  only_fields(body, {"model", "input", "instructions", "max_output_tokens", "temperature", "top_p", "stream", "store",
              "metadata", "user", "truncation", "text", "tools", "tool_choice", "parallel_tool_calls",
              "previous_response_id", "reasoning", "include", "top_logprobs"},
       "OpenAI Responses");
  refuse(body, "truncation", {"disabled"});
  for (const char* field : {"previous_response_id", "reasoning", "top_logprobs"}) refuse(body, field);
  refuse(body, "include", {json::array()});
  GenerationBody out;
  out.model = model_field(body);
  out.sampling = renamed_sampling(body, {{"max_output_tokens", "max_tokens"}, {"temperature", "temperature"},
                                         {"top_p", "top_p"}, {"stream", "stream"}});
  parse_text_format(body, raw, &out.sampling.options);
  std::vector<ChatMessage> messages;
  if (const auto it = body.find("instructions"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) bad("instructions", "a string", *it);
    messages.push_back(text_message("system", it->get<std::string>()));
  }
  const auto input = body.find("input");
  if (input == body.end() || input->is_null()) throw Error::invalid_input("'input' is required");
  if (input->is_string()) {
    messages.push_back(text_message("user", input->get<std::string>()));
  } else if (input->is_array() && !input->empty()) {
    for (const json& item : *input) add_item(item, &messages);
  } else {
    bad("input", "a string or a non-empty array of messages", *input);
  }
  ChatPrompt chat = chat_of(std::move(messages));
  parse_function_tools(body, raw, &chat);
  out.input = std::move(chat);
  return out;
}

}  // namespace kapsl::server
