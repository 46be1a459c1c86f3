// ChatTemplates, ReplyParser and json_schema_to_gbnf over llama.cpp's `common` library.
// See chat_format.h for why only this file includes `common`.
#include "gguf/chat_format.h"

#include <deque>
#include <exception>
#include <random>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <llama-common/chat.h>
#include <llama-common/json-schema-to-grammar.h>
#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "gguf/sampling.h"
#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

// The template of a model that has none: chatml, as llama-server falls back to, extended
// with the tool-call convention of Hermes and Qwen 2.5 (tools listed in the system turn,
// calls in <tool_call> tags, results in <tool_response> tags), so that such a model can
// call tools too. Without tools it renders exactly as chatml.
constexpr const char* kChatmlWithTools = R"jinja({%- if tools -%}
<|im_start|>system
{% if messages[0].role == 'system' %}{{ messages[0].content }}

{% endif %}# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{%- for tool in tools %}
{{ tool | tojson }}
{%- endfor %}
</tools>

For each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:
<tool_call>
{"name": <function-name>, "arguments": <args-json-object>}
</tool_call><|im_end|>
{% elif messages[0].role == 'system' -%}
<|im_start|>system
{{ messages[0].content }}<|im_end|>
{% endif -%}
{%- for message in messages -%}
{%- if message.role == 'system' and loop.first -%}
{%- elif message.role == 'assistant' and message.tool_calls -%}
<|im_start|>assistant
{%- if message.content %}
{{ message.content }}{% endif %}
{%- for call in message.tool_calls %}
{%- if call.function is defined %}{% set call = call.function %}{% endif %}
<tool_call>
{"name": "{{ call.name }}", "arguments": {{ call.arguments | tojson }}}
</tool_call>
{%- endfor %}<|im_end|>
{% elif message.role == 'tool' -%}
{%- if loop.first or messages[loop.index0 - 1].role != 'tool' %}<|im_start|>user{% endif %}
<tool_response>
{{ message.content }}
</tool_response>
{%- if loop.last or messages[loop.index0 + 1].role != 'tool' %}<|im_end|>
{% endif -%}
{%- else -%}
<|im_start|>{{ message.role }}
{{ message.content }}<|im_end|>
{% endif -%}
{%- endfor -%}
{%- if add_generation_prompt -%}
<|im_start|>assistant
{% endif -%}
)jinja";

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

// A lazy grammar's trigger as llama.cpp's sampler takes it, converted as llama-server
// converts it: a word that is one special token triggers on that token.
void add_trigger(const common_grammar_trigger& t, const llama_vocab* vocab, OutputConstraint* c) {
  switch (t.type) {
    case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN: c->trigger_tokens.push_back(t.token); return;
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN: c->trigger_patterns.push_back(t.value); return;
    case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: {
      const std::string& p = t.value;
      c->trigger_patterns.push_back(p.empty() ? "^$" : (p.front() == '^' ? "" : "^") + p + (p.back() == '$' ? "" : "$"));
      return;
    }
    case COMMON_GRAMMAR_TRIGGER_TYPE_WORD: break;
  }
  const llama_tokens ids = common_tokenize(vocab, t.value, false, true);
  if (ids.size() == 1 && (llama_vocab_get_attr(vocab, ids[0]) & LLAMA_TOKEN_ATTR_CONTROL) != 0) {
    c->trigger_tokens.push_back(ids[0]);
  } else {
    c->trigger_patterns.push_back(regex_escape(t.value));
  }
}

common_chat_tool_choice to_common(ToolChoice c) {
  switch (c) {
    case ToolChoice::kNone: return COMMON_CHAT_TOOL_CHOICE_NONE;
    case ToolChoice::kRequired: return COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    case ToolChoice::kAuto: break;
  }
  return COMMON_CHAT_TOOL_CHOICE_AUTO;
}

// OpenAI's tool_choice "required" (or a named function) means the reply is the call. The
// grammar llama.cpp's formats build for it lets any text come first (root ::= <prompt end>
// until-N? tool-calls), which a model that does not head for the call — a weak or untrained
// one — fills until max_tokens; kapsl drops that optional text from the root rule.
void forbid_text_before_tool_calls(std::string* grammar) {
  static const std::regex kRootLine("(^|\n)root ::= [^\n]*");
  static const std::regex kLeadingText(" until-[0-9]+\\?");
  std::smatch root;
  if (!std::regex_search(*grammar, root, kRootLine)) return;
  const std::string rule = std::regex_replace(root.str(), kLeadingText, "", std::regex_constants::format_first_only);
  grammar->replace(static_cast<size_t>(root.position()), static_cast<size_t>(root.length()), rule);
}

// parallel_tool_calls false means one call at most; the formats' grammars allow several
// (tool-calls ::= (tool-call space)+), so the repetition is dropped.
void allow_one_tool_call(std::string* grammar) {
  static const std::regex kRepeated("(^|\\n)tool-calls ::= \\((tool-call[^()\\n]*)\\)\\+(\\n|$)");
  *grammar = std::regex_replace(*grammar, kRepeated, "$1tool-calls ::= $2$3", std::regex_constants::format_first_only);
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

  void append(std::string_view text) override { text_ += text; }
  std::unique_ptr<ReplyParser> fresh() const override { return std::make_unique<CommonReplyParser>(params_); }

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

// The text that identifies a render: the templates are the same, so equal inputs give an
// equal result (up to the date a template may print).
std::string render_key(const ChatPrompt& chat, const GenerationOptions& options, bool add_assistant) {
  std::string key;
  const auto field = [&key](std::string_view v) {
    key += std::to_string(v.size());
    key += ':';
    key += v;
  };
  for (const ChatMessage& m : chat.messages) {
    for (std::string_view v : {std::string_view(m.role), std::string_view(m.content),
                               std::string_view(m.reasoning_content), std::string_view(m.tool_call_id),
                               std::string_view(m.tool_name)}) {
      field(v);
    }
    for (const ToolCall& c : m.tool_calls) {
      field(c.id);
      field(c.name);
      field(c.arguments);
    }
    key += '|';
  }
  for (const ToolDefinition& t : chat.tools) {
    field(t.name);
    field(t.description);
    field(t.parameters);
  }
  field(options.json_schema);
  field(options.grammar);
  key += static_cast<char>('0' + static_cast<int>(chat.tool_choice));
  key += chat.parallel_tool_calls ? 'p' : '-';
  key += add_assistant ? 'a' : '-';
  return key;
}

class CommonChatTemplates final : public ChatTemplates {
 public:
  CommonChatTemplates(common_chat_templates_ptr tmpls, const llama_vocab* vocab)
      : tmpls_(std::move(tmpls)),
        vocab_(vocab),
        thinking_(common_chat_templates_support_enable_thinking(tmpls_.get())) {}

  RenderedChat render(const ChatPrompt& chat, const GenerationOptions& options,
                      bool add_assistant_prompt) const override {
    const common_chat_params p = apply(chat, options, add_assistant_prompt);
    RenderedChat out;
    out.prompt = p.prompt;
    out.constraint = constraint(p, chat, options);
    out.preserved_tokens = p.preserved_tokens;
    out.extra_stops = p.additional_stops;
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
  // common_chat_templates_apply, remembered for the last few inputs: a server renders each
  // request twice (to check it before a stream starts, then to generate), and the apply
  // runs the template several times over to analyse its tool-call format.
  common_chat_params apply(const ChatPrompt& chat, const GenerationOptions& options, bool add_assistant) const {
    std::string key = render_key(chat, options, add_assistant);
    {
      internal::MutexLock lock(&mu_);
      for (const auto& [k, params] : recent_) {
        if (k == key) return params;
      }
    }
    common_chat_templates_inputs in;
    for (const ChatMessage& m : chat.messages) in.messages.push_back(to_common(m));
    for (const ToolDefinition& t : chat.tools) {
      check_json_nesting(t.parameters, "a tool's parameters");
      in.tools.push_back({t.name, t.description, t.parameters});
    }
    in.tool_choice = to_common(chat.tool_choice);
    in.parallel_tool_calls = chat.parallel_tool_calls;
    in.json_schema = options.json_schema;
    in.grammar = options.grammar;
    in.add_generation_prompt = add_assistant;
    in.reasoning_format = kReasoningFormat;
    in.enable_thinking = thinking_;  // as llama-server: on where the template has the switch
    in.chat_template_kwargs["preserve_reasoning"] = "true";  // llama-server's default: past reasoning stays
    common_chat_params p;
    try {
      p = common_chat_templates_apply(tmpls_.get(), in);
    } catch (const std::exception& e) {
      throw Error::invalid_input("the chat template cannot render these messages", e.what());
    }
    internal::MutexLock lock(&mu_);
    recent_.emplace_front(std::move(key), p);
    if (recent_.size() > kRemembered) recent_.pop_back();
    return p;
  }

  // The grammar the format made (for tools, or a json_schema it folds in); none if it made
  // none, and the request's own constraint applies (render_chat).
  OutputConstraint constraint(const common_chat_params& p, const ChatPrompt& chat,
                              const GenerationOptions& options) const {
    OutputConstraint c;
    if (p.grammar.empty()) return c;
    c.grammar = p.grammar;
    c.lazy = p.grammar_lazy;
    if (chat.tool_choice == ToolChoice::kRequired && !c.lazy) forbid_text_before_tool_calls(&c.grammar);
    if (!chat.parallel_tool_calls) allow_one_tool_call(&c.grammar);
    for (const auto& t : p.grammar_triggers) add_trigger(t, vocab_, &c);
    // A grammar the format made starts where the prompt ends; a user's GBNF at the reply.
    if (!c.lazy && options.grammar.empty()) c.generation_prompt = p.generation_prompt;
    return c;
  }

  static constexpr size_t kRemembered = 8;
  common_chat_templates_ptr tmpls_;
  const llama_vocab* vocab_;
  const bool thinking_;
  mutable internal::Mutex mu_;
  mutable std::deque<std::pair<std::string, common_chat_params>> recent_ GUARDED_BY(mu_);
};

}  // namespace

std::unique_ptr<ChatTemplates> ChatTemplates::create(const llama_model* model, const std::string& override_source) {
  const bool has_own = llama_model_chat_template(model, nullptr) != nullptr ||
                       llama_model_chat_template(model, "tool_use") != nullptr;
  const std::string source = override_source.empty() && !has_own ? kChatmlWithTools : override_source;
  try {
    return std::make_unique<CommonChatTemplates>(common_chat_templates_init(model, source),
                                                 llama_model_get_vocab(model));
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
