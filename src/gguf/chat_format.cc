// ChatTemplates, ReplyParser and json_schema_to_gbnf over llama.cpp's `common` library.
// See chat_format.h for why only this file (and constrained_sampler.cc) include `common`.
#include "gguf/chat_format.h"

#include <exception>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <llama-common/chat.h>
#include <llama-common/json-schema-to-grammar.h>
#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

// As llama-server: reasoning goes to reasoning_content, in streams too.
constexpr common_reasoning_format kReasoningFormat = COMMON_REASONING_FORMAT_DEEPSEEK;

common_chat_msg to_common(const ChatMessage& m) {
  common_chat_msg out;
  out.role = m.role;
  out.content = m.content;
  out.reasoning_content = m.reasoning_content;
  for (const ToolCall& c : m.tool_calls) out.tool_calls.push_back({c.name, c.arguments, c.id});
  out.tool_call_id = m.tool_call_id;
  out.tool_name = m.tool_name;
  return out;
}

ChatMessage from_common(const common_chat_msg& m) {
  ChatMessage out;
  out.role = "assistant";
  out.content = m.content;
  out.reasoning_content = m.reasoning_content;
  for (const auto& c : m.tool_calls) out.tool_calls.push_back({c.id, c.name, c.arguments});
  return out;
}

GrammarTrigger to_trigger(const common_grammar_trigger& t) {
  GrammarTrigger out;
  switch (t.type) {
    case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: out.kind = GrammarTrigger::Kind::kToken; break;
    case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: out.kind = GrammarTrigger::Kind::kWord; break;
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: out.kind = GrammarTrigger::Kind::kPattern; break;
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: out.kind = GrammarTrigger::Kind::kPatternFull; break;
  }
  out.value = t.value;
  out.token = t.token;
  return out;
}

common_chat_tool_choice to_common(ToolChoice c) {
  switch (c) {
    case ToolChoice::kNone: return COMMON_CHAT_TOOL_CHOICE_NONE;
    case ToolChoice::kRequired: return COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    case ToolChoice::kAuto: break;
  }
  return COMMON_CHAT_TOOL_CHOICE_AUTO;
}

std::string new_tool_call_id(std::mt19937_64& rng) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return id;
}

// Parses the reply with the template's format; deltas go out as OpenAI's streams want
// them: a tool call is announced (index, id, whole name) once its arguments start, and
// then only its arguments grow. Text a later parse takes back (it turned out to be markup)
// is never retracted: it was held back by the partial parse in the first place.
class CommonReplyParser final : public ReplyParser {
 public:
  explicit CommonReplyParser(common_chat_parser_params params)
      : params_(std::move(params)), rng_(std::random_device{}()) {}

  std::vector<ChatDelta> push(std::string_view text) override {
    text_ += text;
    if (!parse(true)) return {};
    return deltas(false);
  }

  ChatMessage finish(std::vector<ChatDelta>* flushed) override {
    // A reply cut by max_tokens may not parse as final: keep what parses as partial.
    if (!parse(false) && !parse(true)) {
      msg_ = common_chat_msg();
      msg_.content = text_;
    }
    std::vector<ChatDelta> rest = deltas(true);
    if (flushed != nullptr) *flushed = std::move(rest);
    return from_common(msg_);
  }

 private:
  bool parse(bool partial) {
    try {
      common_chat_msg m = common_chat_parse(text_, partial, params_);
      while (ids_.size() < m.tool_calls.size()) ids_.push_back(new_tool_call_id(rng_));
      for (size_t i = 0; i < m.tool_calls.size(); ++i) {
        if (m.tool_calls[i].id.empty()) m.tool_calls[i].id = ids_[i];
      }
      msg_ = std::move(m);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }

  static void grow(const std::string& now, std::string* sent, std::string* delta) {
    if (now.size() <= sent->size() || now.compare(0, sent->size(), *sent) != 0) return;
    *delta = now.substr(sent->size());
    *sent = now;
  }

  std::vector<ChatDelta> deltas(bool final) {
    std::vector<ChatDelta> out;
    ChatDelta text;
    grow(msg_.reasoning_content, &sent_reasoning_, &text.reasoning_content);
    grow(msg_.content, &sent_content_, &text.content);
    if (!text.content.empty() || !text.reasoning_content.empty()) out.push_back(std::move(text));
    for (size_t i = 0; i < msg_.tool_calls.size(); ++i) {
      const common_chat_tool_call& call = msg_.tool_calls[i];
      ChatDelta d;
      d.tool_call_index = static_cast<int32_t>(i);
      if (i == sent_args_.size()) {
        if (call.name.empty() || (call.arguments.empty() && !final)) break;  // not yet announced, nor the rest
        d.tool_call = {call.id, call.name, call.arguments};
        sent_args_.push_back(call.arguments);
      } else {
        grow(call.arguments, &sent_args_[i], &d.tool_call.arguments);
        if (d.tool_call.arguments.empty()) continue;
      }
      out.push_back(std::move(d));
    }
    return out;
  }

  const common_chat_parser_params params_;
  std::mt19937_64 rng_;
  std::string text_;
  common_chat_msg msg_;
  std::vector<std::string> ids_;
  std::string sent_content_;
  std::string sent_reasoning_;
  std::vector<std::string> sent_args_;  // per announced tool call
};

class CommonChatTemplates final : public ChatTemplates {
 public:
  explicit CommonChatTemplates(common_chat_templates_ptr tmpls) : tmpls_(std::move(tmpls)) {}

  RenderedChat render(const ChatPrompt& chat, const GenerationOptions& options,
                      bool add_assistant_prompt) const override {
    common_chat_templates_inputs in;
    for (const ChatMessage& m : chat.messages) in.messages.push_back(to_common(m));
    for (const ToolDefinition& t : chat.tools) in.tools.push_back({t.name, t.description, t.parameters});
    in.tool_choice = to_common(chat.tool_choice);
    in.parallel_tool_calls = chat.parallel_tool_calls;
    in.json_schema = options.json_schema;
    in.grammar = options.grammar;
    in.add_generation_prompt = add_assistant_prompt;
    in.reasoning_format = kReasoningFormat;
    common_chat_params p;
    try {
      p = common_chat_templates_apply(tmpls_.get(), in);
    } catch (const std::exception& e) {
      throw Error::invalid_input("the chat template cannot render these messages", e.what());
    }
    RenderedChat out;
    out.prompt = std::move(p.prompt);
    out.constraint.grammar = std::move(p.grammar);
    out.constraint.lazy = p.grammar_lazy;
    for (const auto& t : p.grammar_triggers) out.constraint.triggers.push_back(to_trigger(t));
    out.constraint.generation_prompt = p.generation_prompt;
    out.constraint.from_template = options.grammar.empty();
    out.preserved_tokens = std::move(p.preserved_tokens);
    out.extra_stops = std::move(p.additional_stops);
    common_chat_parser_params parser(p);
    parser.reasoning_format = kReasoningFormat;
    parser.parse_tool_calls = !chat.tools.empty() && chat.tool_choice != ToolChoice::kNone;
    try {
      if (!p.parser.empty()) parser.parser.load(p.parser);
    } catch (const std::exception& e) {
      throw Error::backend("llama.cpp's chat parser for this template does not load", e.what());
    }
    out.parser = std::make_shared<CommonReplyParser>(std::move(parser));
    return out;
  }

 private:
  common_chat_templates_ptr tmpls_;
};

}  // namespace

std::unique_ptr<ChatTemplates> ChatTemplates::create(const llama_model* model, const std::string& override_source) {
  try {
    return std::make_unique<CommonChatTemplates>(common_chat_templates_init(model, override_source));
  } catch (const std::exception& e) {
    throw Error::invalid_input("the chat template does not parse as Jinja", e.what());
  }
}

std::string json_schema_to_gbnf(const std::string& schema) {
  try {
    return json_schema_to_grammar(common_json::parse(schema));
  } catch (const std::exception& e) {
    throw Error::invalid_input("the JSON schema cannot be turned into a grammar", e.what());
  }
}

bool is_builtin_template_name(const std::string& name) {
  std::vector<const char*> names(llama_chat_builtin_templates(nullptr, 0));
  llama_chat_builtin_templates(names.data(), names.size());
  for (const char* n : names) {
    if (name == n) return true;
  }
  return false;
}

}  // namespace kapsl::gguf
