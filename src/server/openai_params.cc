#include "server/openai_params.h"

#include <algorithm>
#include <limits>
#include <span>

#include "core/json_fields.h"
#include "server/body_fields.h"
#include "kapsl/error.h"

namespace kapsl::server {

using json = nlohmann::json;

void bad(const std::string& field, const std::string& expected, const json& got) {
  throw Error::invalid_input("'" + field + "'", "expected " + expected + ", got " + internal::describe_json(got));
}

namespace {

// The sampling fields both generation routes (and KServe parameters) take.
constexpr std::string_view kSamplingFields[] = {
    "temperature", "top_p",     "top_k",      "min_p",      "presence_penalty", "frequency_penalty",
    "repeat_penalty", "seed",   "stop",       "logit_bias", "ignore_eos",       "max_tokens",
    "max_completion_tokens", "json_schema", "grammar",
    // llama-server's extensions
    "typical_p", "top_n_sigma", "xtc_probability", "xtc_threshold", "dynatemp_range", "dynatemp_exponent", "mirostat",
    "mirostat_tau", "mirostat_eta", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n",
    "dry_sequence_breakers", "repeat_last_n", "n_predict", "cache_prompt"};
// Fields of the OpenAI requests that kapsl reads, refuses with a message of its own, or
// takes and ignores (they change nothing in the answer): "user", "store", "metadata".
constexpr std::string_view kOpenAiFields[] = {"model", "stream", "stream_options", "n",       "best_of",
                                              "echo",  "logprobs", "top_logprobs", "suffix",  "tools",
                                              "functions", "tool_choice", "function_call", "response_format",
                                              "parallel_tool_calls", "user", "store", "metadata"};

// A token id: an integer in [0, 2^31) (an unsigned above 2^63 reads as negative: refused).
bool is_token(const json& v) {
  return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= std::numeric_limits<int32_t>::max();
}

bool listed(std::string_view key, std::span<const std::string_view> fields) {
  return std::find(fields.begin(), fields.end(), key) != fields.end();
}

std::optional<double> number(const json& body, const char* field, double lo, double hi) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number() || it->get<double>() < lo || it->get<double>() > hi) {
    bad(field, "a number in [" + json(lo).dump() + ", " + json(hi).dump() + "]", *it);
  }
  return it->get<double>();
}

std::optional<int64_t> integer(const json& body, const char* field, int64_t lo, int64_t hi) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi)) ||
      it->get<int64_t>() < lo || it->get<int64_t>() > hi) {
    bad(field, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", *it);
  }
  return it->get<int64_t>();
}


void refuse_unsupported(const json& body) {
  if (integer(body, "best_of", 1, 1).value_or(1) != 1) bad("best_of", "1", body["best_of"]);
  if (const auto it = body.find("echo"); it != body.end() && !it->is_null() && *it != json(false)) {
    throw Error::invalid_input("'echo' is not supported by this server");
  }
  for (const char* field : {"suffix", "functions", "function_call"}) {
    const auto it = body.find(field);
    if (it != body.end() && !it->is_null()) {
      throw Error::invalid_input(std::string("'") + field + "' is not supported by this server");
    }
  }
}

// llama-server's json_schema (a schema object, or its text) and grammar (GBNF).
void parse_constraint(const json& body, GenerationOptions* o) {
  if (const auto it = body.find("json_schema"); it != body.end() && !it->is_null()) {
    if (it->is_object()) o->json_schema = it->empty() ? R"({"type":"object"})" : it->dump();
    else if (it->is_string() && !it->get<std::string>().empty()) o->json_schema = it->get<std::string>();
    else bad("json_schema", "a JSON Schema object (or its JSON text)", *it);
  }
  if (const auto it = body.find("grammar"); it != body.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>().empty()) bad("grammar", "a GBNF grammar (a string)", *it);
    o->grammar = it->get<std::string>();
  }
  if (!o->json_schema.empty() && !o->grammar.empty()) {
    throw Error::invalid_input("'json_schema' and 'grammar' exclude each other");
  }
}

// llama-server's sampling extensions. cache_prompt is taken and changes nothing: a slot
// always keeps the prefix it shares with the last prompt.
void parse_llama_sampling(const json& body, GenerationOptions* o) {
  if (auto v = number(body, "typical_p", 0, 1)) {
    if (*v <= 0) bad("typical_p", "a number in (0, 1]", body["typical_p"]);
    o->typical_p = static_cast<float>(*v);
  }
  if (auto v = number(body, "top_n_sigma", -1, 100)) o->top_n_sigma = static_cast<float>(*v);
  if (auto v = number(body, "xtc_probability", 0, 1)) o->xtc_probability = static_cast<float>(*v);
  if (auto v = number(body, "xtc_threshold", 0, 1)) o->xtc_threshold = static_cast<float>(*v);
  if (auto v = number(body, "dynatemp_range", 0, 10)) o->dynatemp_range = static_cast<float>(*v);
  if (auto v = number(body, "dynatemp_exponent", -100, 100)) o->dynatemp_exponent = static_cast<float>(*v);
  if (auto v = integer(body, "mirostat", 0, 2)) o->mirostat = static_cast<int32_t>(*v);
  if (auto v = number(body, "mirostat_tau", 0, 100)) o->mirostat_tau = static_cast<float>(*v);
  if (auto v = number(body, "mirostat_eta", 0, 10)) o->mirostat_eta = static_cast<float>(*v);
  if (auto v = number(body, "dry_multiplier", 0, 100)) o->dry_multiplier = static_cast<float>(*v);
  if (auto v = number(body, "dry_base", 1, 100)) o->dry_base = static_cast<float>(*v);
  if (auto v = integer(body, "dry_allowed_length", 0, 1 << 20)) o->dry_allowed_length = static_cast<int32_t>(*v);
  if (auto v = integer(body, "dry_penalty_last_n", -1, 1 << 24)) o->dry_penalty_last_n = static_cast<int32_t>(*v);
  if (auto v = integer(body, "repeat_last_n", -1, 1 << 24)) o->penalty_last_n = static_cast<int32_t>(*v);
  if (const auto it = body.find("dry_sequence_breakers"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > 32) bad("dry_sequence_breakers", "an array of at most 32 strings", *it);
    o->dry_sequence_breakers.clear();
    for (const json& b : *it) {
      if (!b.is_string() || b.get<std::string>().empty() || b.get<std::string>().size() > 64) {
        bad("dry_sequence_breakers[]", "strings of 1 to 64 bytes", b);
      }
      o->dry_sequence_breakers.push_back(b.get<std::string>());
    }
  }
  flag(body, "cache_prompt", true);  // checked for its type only
}

std::vector<std::string> parse_stop(const json& body) {
  const auto it = body.find("stop");
  if (it == body.end() || it->is_null()) return {};
  if (it->is_string()) return {it->get<std::string>()};
  if (!it->is_array() || it->size() > 16) bad("stop", "a string or an array of at most 16 strings", *it);
  std::vector<std::string> out;
  for (const auto& s : *it) {
    if (!s.is_string() || s.get<std::string>().empty()) bad("stop", "non-empty strings", s);
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::vector<std::pair<int32_t, float>> parse_logit_bias(const json& body) {
  const auto it = body.find("logit_bias");
  if (it == body.end() || it->is_null()) return {};
  if (!it->is_object()) bad("logit_bias", "an object of token id -> bias", *it);
  std::vector<std::pair<int32_t, float>> out;
  for (const auto& [key, value] : it->items()) {
    size_t used = 0;
    int64_t id = -1;
    try {
      id = std::stoll(key, &used);
    } catch (const std::exception&) {
    }
    if (used != key.size() || id < 0 || id > std::numeric_limits<int32_t>::max()) bad("logit_bias", "token id keys", key);
    if (!value.is_number() || value.get<double>() < -100 || value.get<double>() > 100) {
      bad("logit_bias", "biases in [-100, 100]", value);
    }
    out.emplace_back(static_cast<int32_t>(id), value.get<float>());
  }
  return out;
}

}  // namespace

json parse_object(const std::string& body) {
  json doc = internal::parse_json_document(body, "the request body", kMaxJsonDepth, kMaxJsonValues);
  if (!doc.is_object()) throw Error::invalid_input("the request body must be a JSON object");
  return doc;
}

bool flag(const json& body, const char* field, bool fallback) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad(field, "true or false", *it);
  return it->get<bool>();
}

void only_fields(const json& body, std::initializer_list<std::string_view> known, std::string_view api) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      throw Error::invalid_input("unknown field '" + key.substr(0, 64) + "'",
                                 std::string(api) + ": see docs/server.md for the fields this server takes");
    }
  }
}

void check_fields(const json& body, std::initializer_list<std::string_view> route_fields) {
  for (const auto& [key, value] : body.items()) {
    if (listed(key, kSamplingFields) || listed(key, kOpenAiFields) ||
        std::find(route_fields.begin(), route_fields.end(), key) != route_fields.end()) {
      continue;
    }
    std::string shown = key.substr(0, 64);
    throw Error::invalid_input("unknown field '" + shown + "'", "see docs/server.md for the fields this server takes");
  }
}

std::string model_field(const json& body) {
  const auto it = body.find("model");
  if (it == body.end() || !it->is_string() || it->get<std::string>().empty()) {
    throw Error::invalid_input("'model' is required", "expected a model name");
  }
  return it->get<std::string>();
}

SamplingRequest parse_sampling(const json& body, bool kserve) {
  if (kserve) {
    for (const auto& [key, value] : body.items()) {
      if (!listed(key, kSamplingFields)) throw Error::invalid_input("unknown parameter '" + key.substr(0, 64) + "'");
    }
  }
  refuse_unsupported(body);
  SamplingRequest r;
  GenerationOptions& o = r.options;
  if (auto v = number(body, "temperature", 0, 2)) o.temperature = static_cast<float>(*v);
  if (auto v = number(body, "top_p", 0, 1)) o.top_p = static_cast<float>(*v);
  if (auto v = integer(body, "top_k", 0, 1 << 20)) o.top_k = static_cast<int32_t>(*v);
  if (auto v = number(body, "min_p", 0, 1)) o.min_p = static_cast<float>(*v);
  if (auto v = number(body, "presence_penalty", -2, 2)) o.presence_penalty = static_cast<float>(*v);
  if (auto v = number(body, "frequency_penalty", -2, 2)) o.frequency_penalty = static_cast<float>(*v);
  if (auto v = number(body, "repeat_penalty", 0, 10)) o.repetition_penalty = static_cast<float>(*v);
  if (auto v = integer(body, "seed", std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max())) {
    o.seed = static_cast<uint32_t>(*v);  // OpenAI seeds are 64-bit; llama.cpp takes 32 bits
  }
  parse_llama_sampling(body, &o);
  o.stop = parse_stop(body);
  o.logit_bias = parse_logit_bias(body);
  parse_constraint(body, &o);
  o.ignore_eos = flag(body, "ignore_eos");
  const char* max_field = body.contains("max_completion_tokens") ? "max_completion_tokens"
                          : body.contains("max_tokens")          ? "max_tokens"
                                                                 : "n_predict";  // llama-server's name
  if (auto v = integer(body, max_field, 1, std::numeric_limits<uint32_t>::max())) r.max_tokens = static_cast<uint32_t>(*v);
  r.n = static_cast<uint32_t>(integer(body, "n", 1, 128).value_or(1));
  r.stream = flag(body, "stream");
  if (const auto so = body.find("stream_options"); so != body.end() && so->is_object()) {
    r.include_usage = flag(*so, "include_usage");
  }
  return r;
}

CompletionPrompt parse_completion_prompt(const json& body) {
  const auto it = body.find("prompt");
  if (it == body.end()) throw Error::invalid_input("'prompt' is required");
  if (it->is_string()) return it->get<std::string>();
  const json* p = &*it;
  if (p->is_array() && p->size() == 1 && ((*p)[0].is_string() || (*p)[0].is_array())) p = &(*p)[0];
  if (p->is_string()) return p->get<std::string>();
  if (p->is_array() && !p->empty() && std::all_of(p->begin(), p->end(), is_token)) {
    std::vector<int32_t> tokens;
    for (const auto& t : *p) tokens.push_back(static_cast<int32_t>(t.get<int64_t>()));
    return tokens;
  }
  bad("prompt", "a string, or an array of token ids (one prompt per request)", *it);
}

namespace {

// A message's content: a string, an array of text parts, or null.
std::string message_content(const json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string text;
  if (content.is_array()) {
    for (const auto& part : content) {
      // (Compared as JSON: a "type" that is not a string must not throw; found by fuzzing.)
      if (!part.is_object() || part.find("type") == part.end() || part["type"] != "text" || !part.contains("text") ||
          !part["text"].is_string()) {
        bad("messages[].content", "a string or an array of {\"type\": \"text\", \"text\": ...} parts", part);
      }
      text += part["text"].get<std::string>();
    }
  } else if (!content.is_null()) {
    bad("messages[].content", "a string or an array of text parts", content);
  }
  return text;
}

}  // namespace

std::string string_field(const json& object, const char* field, const std::string& where) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_string()) bad(where + "." + field, "a string", it == object.end() ? json() : *it);
  return it->get<std::string>();
}

namespace {

// An assistant message's tool_calls: [{"id", "type": "function", "function": {"name", "arguments"}}].
std::vector<ToolCall> parse_tool_calls(const json& calls) {
  if (!calls.is_array()) bad("messages[].tool_calls", "an array of tool calls", calls);
  std::vector<ToolCall> out;
  for (const auto& c : calls) {
    if (!c.is_object() || c.value("type", json("function")) != "function" || !c.contains("function") ||
        !c["function"].is_object()) {
      bad("messages[].tool_calls[]", "{\"type\": \"function\", \"function\": {\"name\", \"arguments\"}}", c);
    }
    const json& fn = c["function"];
    ToolCall call;
    call.id = c.contains("id") ? string_field(c, "id", "messages[].tool_calls[]") : "";
    call.name = string_field(fn, "name", "messages[].tool_calls[].function");
    const json args = fn.value("arguments", json("{}"));
    call.arguments = args.is_string() ? args.get<std::string>() : args.dump();  // some clients send an object
    out.push_back(std::move(call));
  }
  return out;
}

}  // namespace

std::vector<ChatMessage> parse_messages(const json& body) {
  const auto it = body.find("messages");
  if (it == body.end() || !it->is_array() || it->empty()) {
    throw Error::invalid_input("'messages' is required", "expected a non-empty array of messages");
  }
  std::vector<ChatMessage> out;
  for (const auto& m : *it) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) bad("messages", "objects with a 'role'", m);
    ChatMessage message;
    message.role = m["role"].get<std::string>();
    message.content = message_content(m.value("content", json(nullptr)));
    if (const auto calls = m.find("tool_calls"); calls != m.end() && !calls->is_null()) {
      if (message.role != "assistant") bad("messages[].tool_calls", "only on assistant messages", message.role);
      message.tool_calls = parse_tool_calls(*calls);
    }
    if (message.role == "tool") {
      message.tool_call_id = string_field(m, "tool_call_id", "messages[]");
      if (const auto name = m.find("name"); name != m.end() && name->is_string()) message.tool_name = *name;
    }
    out.push_back(std::move(message));
  }
  return out;
}

void parse_response_format(const json& body, GenerationOptions* o, std::string_view raw) {
  const auto it = body.find("response_format");
  if (it == body.end() || it->is_null()) return;
  const json type = it->is_object() ? it->value("type", json()) : json();
  if (type == "text") return;
  if (type != "json_object" && type != "json_schema") {
    bad("response_format", "{\"type\": \"text\" | \"json_object\" | \"json_schema\"}", *it);
  }
  if (!o->json_schema.empty() || !o->grammar.empty()) {
    throw Error::invalid_input("'response_format' excludes 'json_schema' and 'grammar'");
  }
  json schema = json::object();
  std::string as_sent;
  if (type == "json_object") {
    schema = it->value("schema", json::object());  // llama-server's extension
    as_sent = object_as_sent(raw, {"response_format", "schema"});
  } else {
    const json spec = it->value("json_schema", json());
    if (!spec.is_object()) bad("response_format.json_schema", "an object with a 'schema'", spec);
    schema = spec.value("schema", json::object());
    as_sent = object_as_sent(raw, {"response_format", "json_schema", "schema"});
  }
  if (!schema.is_object()) bad("response_format schema", "a JSON Schema object", schema);
  o->json_schema = schema.empty() ? R"({"type":"object"})" : as_sent.empty() ? schema.dump() : as_sent;
}

namespace {

// The body's field `top_key` parsed from its text with key order kept, or null. Only that
// field is kept, and at most 4096 keys of it: an ordered object finds its keys by a linear
// search, so a larger one would cost its square.
nlohmann::ordered_json ordered_field(std::string_view raw, const char* top_key) {
  using ordered = nlohmann::ordered_json;
  constexpr int kMaxKeys = 4096;
  int keys = 0;
  bool inside = false;
  const auto keep = [&](int depth, ordered::parse_event_t event, ordered& parsed) {
    if (depth == 1 && event == ordered::parse_event_t::key) inside = parsed == top_key;
    if (depth >= 1 && !inside) return false;
    if (event == ordered::parse_event_t::key && ++keys > kMaxKeys) throw std::length_error("too many keys");
    return true;
  };
  if (raw.empty()) return nullptr;
  try {
    ordered doc = ordered::parse(raw, keep);
    return doc.is_object() && doc.contains(top_key) ? std::move(doc[top_key]) : ordered();
  } catch (const std::exception&) {
    return nullptr;
  }
}

// The object at `path` (keys) under `at`, dumped, or "" if there is none.
std::string dump_at(const nlohmann::ordered_json& at, std::span<const char* const> path) {
  const nlohmann::ordered_json* node = &at;
  for (const char* key : path) {
    if (!node->is_object() || !node->contains(key)) return "";
    node = &(*node)[key];
  }
  return node->is_object() ? node->dump() : "";
}

}  // namespace

std::vector<std::string> tool_schemas_as_sent(std::string_view raw, std::initializer_list<const char*> path) {
  const nlohmann::ordered_json tools = ordered_field(raw, "tools");
  std::vector<std::string> out;
  if (!tools.is_array()) return out;
  for (const auto& tool : tools) out.push_back(dump_at(tool, std::span<const char* const>(path.begin(), path.end())));
  return out;
}

std::string object_as_sent(std::string_view raw, std::initializer_list<const char*> path) {
  if (path.size() == 0) return "";
  const std::span<const char* const> keys(path.begin(), path.end());
  return dump_at(ordered_field(raw, keys.front()), keys.subspan(1));
}

void add_tool(ChatPrompt* chat, const json& tool, const char* schema_key, const std::string& where,
              const std::vector<std::string>& as_sent) {
  ToolDefinition t;
  t.name = string_field(tool, "name", where);
  if (t.name.empty()) bad(where + ".name", "a non-empty string", tool["name"]);
  if (const auto d = tool.find("description"); d != tool.end() && !d->is_null()) {
    t.description = string_field(tool, "description", where);
  }
  if (const auto p = tool.find(schema_key); p != tool.end() && !p->is_null()) {
    if (!p->is_object()) bad(where + "." + schema_key, "a JSON Schema object", *p);
    const size_t i = chat->tools.size();
    t.parameters = i < as_sent.size() && !as_sent[i].empty() ? as_sent[i] : p->dump();
  }
  chat->tools.push_back(std::move(t));
}

void require_tool(ChatPrompt* chat, const json& name, const std::string& field) {
  if (!name.is_string()) bad(field, "the name of a tool", name);
  std::erase_if(chat->tools, [&](const ToolDefinition& t) { return t.name != name.get<std::string>(); });
  if (chat->tools.empty()) bad(field, "the name of one of the tools", name);
  chat->tool_choice = ToolChoice::kRequired;
}

void parse_tools(const json& body, ChatPrompt* chat, std::string_view raw) {
  if (const auto it = body.find("tools"); it != body.end() && !it->is_null()) {
    if (!it->is_array() || it->size() > kMaxTools) bad("tools", "an array of at most 128 tools", *it);
    const std::vector<std::string> as_sent = tool_schemas_as_sent(raw, {"function", "parameters"});
    for (const auto& t : *it) {
      if (!t.is_object() || t.value("type", json()) != "function" || !t.contains("function") ||
          !t["function"].is_object()) {
        bad("tools[]", "{\"type\": \"function\", \"function\": {\"name\", \"description\", \"parameters\"}}", t);
      }
      add_tool(chat, t["function"], "parameters", "tools[].function", as_sent);
    }
  }
  chat->parallel_tool_calls = flag(body, "parallel_tool_calls", true);
  const auto choice = body.find("tool_choice");
  if (choice == body.end() || choice->is_null() || *choice == "auto") return;
  if (*choice == "none") {
    chat->tool_choice = ToolChoice::kNone;
  } else if (*choice == "required") {
    chat->tool_choice = ToolChoice::kRequired;
  } else if (choice->is_object() && choice->value("type", json()) == "function" && choice->contains("function") &&
             (*choice)["function"].is_object()) {
    require_tool(chat, (*choice)["function"].value("name", json()), "tool_choice.function.name");
  } else {
    bad("tool_choice", "\"auto\", \"none\", \"required\" or {\"type\": \"function\", \"function\": {\"name\"}}",
        *choice);
  }
  check_tool_choice(*chat);
}

void check_tool_choice(const ChatPrompt& chat) {
  if (chat.tools.empty() && chat.tool_choice == ToolChoice::kRequired) {
    throw Error::invalid_input("'tool_choice' requires a tool call, but there are no 'tools'");
  }
}

namespace {

bool is_token_array(const json& v) { return v.is_array() && std::all_of(v.begin(), v.end(), is_token); }

std::vector<int32_t> tokens_of(const json& v) {
  std::vector<int32_t> out;
  for (const auto& t : v) out.push_back(static_cast<int32_t>(t.get<int64_t>()));
  return out;
}

}  // namespace

std::vector<EmbeddingInput> parse_embedding_input(const json& body) {
  const auto it = body.find("input");
  if (it == body.end()) throw Error::invalid_input("'input' is required");
  std::vector<EmbeddingInput> inputs;
  const auto all = [&it](auto pred) { return it->is_array() && !it->empty() && std::all_of(it->begin(), it->end(), pred); };
  if (it->is_string()) {
    inputs.emplace_back(it->get<std::string>());
  } else if (all([](const json& v) { return v.is_string(); })) {
    for (const auto& v : *it) inputs.emplace_back(v.get<std::string>());
  } else if (all(is_token)) {
    inputs.emplace_back(tokens_of(*it));
  } else if (all(is_token_array)) {
    for (const auto& v : *it) inputs.emplace_back(tokens_of(v));
  } else {
    bad("input", "a string, an array of strings, an array of token ids or an array of token-id arrays", *it);
  }
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool empty = std::visit([](const auto& v) { return v.empty(); }, inputs[i]);
    if (empty) throw Error::invalid_input("'input[" + std::to_string(i) + "]' is empty");
  }
  if (inputs.size() > 2048) throw Error::invalid_input("'input' holds more than 2048 inputs");
  return inputs;
}

namespace {

// Chat: `logprobs` (a bool) and `top_logprobs` (0 to 20, with logprobs). Legacy
// completions: `logprobs`, the number of top tokens (0 to 5) or null.
void parse_logprobs(const json& body, bool chat, GenerationOptions* o) {
  if (!chat) {
    if (body.contains("top_logprobs")) throw Error::invalid_input("'top_logprobs' is a chat completions field");
    if (const auto it = body.find("logprobs"); it != body.end() && *it != json(false)) {
      const auto top = integer(body, "logprobs", 0, 5);
      o->logprobs = top.has_value();
      o->top_logprobs = static_cast<uint32_t>(top.value_or(0));
    }
    return;
  }
  o->logprobs = flag(body, "logprobs");
  const auto top = integer(body, "top_logprobs", 0, GenerationOptions::kMaxTopLogprobs);
  if (top && *top > 0 && !o->logprobs) throw Error::invalid_input("'top_logprobs' needs 'logprobs': true");
  o->top_logprobs = static_cast<uint32_t>(top.value_or(0));
}

}  // namespace

GenerationBody parse_generation_body(const json& body, bool chat, std::string_view raw) {
  GenerationBody out;
  out.model = model_field(body);
  if (chat) check_fields(body, {"messages", "chat_template"});
  else check_fields(body, {"prompt"});
  out.sampling = parse_sampling(body);
  if (const auto s = body.find("json_schema"); s != body.end() && s->is_object() && !s->empty()) {
    if (std::string as_sent = object_as_sent(raw, {"json_schema"}); !as_sent.empty()) {
      out.sampling.options.json_schema = std::move(as_sent);  // the output's keys in the client's order
    }
  }
  parse_logprobs(body, chat, &out.sampling.options);
  if (!chat) {
    for (const char* field : {"tools", "tool_choice", "parallel_tool_calls", "response_format"}) {
      if (const auto it = body.find(field); it != body.end() && !it->is_null()) {
        throw Error::invalid_input(std::string("'") + field + "' is a chat completions field",
                                   "completions take 'json_schema' or 'grammar'");
      }
    }
    out.input = parse_completion_prompt(body);
    return out;
  }
  parse_response_format(body, &out.sampling.options, raw);
  ChatPrompt prompt;
  prompt.messages = parse_messages(body);
  parse_tools(body, &prompt, raw);
  if (!prompt.tools.empty() && prompt.tool_choice != ToolChoice::kNone && !out.sampling.options.grammar.empty()) {
    throw Error::invalid_input("'grammar' cannot be combined with 'tools'");  // as llama-server
  }
  if (const auto t = body.find("chat_template"); t != body.end() && !t->is_null()) {
    if (!t->is_string()) bad("chat_template", "a string", *t);
    prompt.chat_template = t->get<std::string>();
  }
  out.input = std::move(prompt);
  return out;
}

ChatMessage text_message(std::string role, std::string content) {
  ChatMessage m;
  m.role = std::move(role);
  m.content = std::move(content);
  return m;
}

ChatPrompt chat_of(std::vector<ChatMessage> messages) {
  ChatPrompt chat;
  chat.messages = std::move(messages);
  return chat;
}

// Refuses `field` when present and not null (nor one of `harmless`).
void refuse(const json& body, const char* field, std::initializer_list<json> harmless) {
  const auto it = body.find(field);
  if (it == body.end() || it->is_null()) return;
  for (const json& h : harmless) {
    if (*it == h) return;
  }
  throw Error::invalid_input(std::string("'") + field + "' is not supported by this server");
}

// The text of a content that is a string or an array of blocks whose type is one of
// `text_types` (each with a string "text").
std::string content_text(const json& content, const std::string& field, std::initializer_list<std::string_view> text_types) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) bad(field, "a string or an array of text blocks", content);
  std::string text;
  for (const json& block : content) {
    const json type = block.is_object() ? block.value("type", json()) : json();
    const bool is_text = type.is_string() && std::find(text_types.begin(), text_types.end(),
                                                       type.get<std::string>()) != text_types.end();
    if (!is_text) {
      throw Error::invalid_input("'" + field + "': content of type " + type.dump().substr(0, 32) + " is not supported",
                                 "only text");
    }
    if (!block.contains("text") || !block["text"].is_string()) bad(field, "text blocks with a string 'text'", block);
    text += block["text"].get<std::string>();
  }
  return text;
}

// The sampling options of a body whose fields are renamed from OpenAI's (`renames`: theirs,
// ours), read by parse_sampling.
SamplingRequest renamed_sampling(const json& body, std::initializer_list<std::pair<const char*, const char*>> renames) {
  json sampling = json::object();
  for (const auto& [theirs, ours] : renames) {
    if (const auto it = body.find(theirs); it != body.end() && !it->is_null()) sampling[ours] = *it;
  }
  return parse_sampling(sampling);
}

EmbeddingsBody parse_embeddings_body(const json& body) {
  EmbeddingsBody out;
  out.model = model_field(body);
  for (const auto& [key, value] : body.items()) {
    if (key != "model" && key != "input" && key != "encoding_format" && key != "dimensions" && key != "user") {
      throw Error::invalid_input("unknown field '" + key.substr(0, 64) + "'", "see docs/server.md");
    }
  }
  out.inputs = parse_embedding_input(body);
  if (const auto f = body.find("encoding_format"); f != body.end() && !f->is_null()) {
    if (*f != "float" && *f != "base64") bad("encoding_format", "\"float\" or \"base64\"", *f);
    out.base64 = *f == "base64";
  }
  out.dimensions = integer(body, "dimensions", 1, std::numeric_limits<int32_t>::max());
  return out;
}

}  // namespace kapsl::server
