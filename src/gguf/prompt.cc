// Prompts made ready to generate from: chat rendering (Jinja through chat_format.h, or
// llama.cpp's C++ templates), tokenization, and the output constraint of json_schema,
// grammar or the chat format's tool calls.
#include <spdlog/spdlog.h>

#include <string>
#include <utility>
#include <vector>

#include "gguf/engine_impl.h"
#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

// C++ templates are llama.cpp's named built-ins; "chatml" is also what Jinja falls back to.
bool is_cpp_template(const std::string& name) { return name != "chatml" && is_builtin_template_name(name); }

// A template given by the user is a name llama.cpp knows, or Jinja text; anything else (a
// misspelt name, say) would render as itself, so it is refused.
void check_template_given(const std::string& t) {
  if (t.empty() || t == "chatml" || is_builtin_template_name(t)) return;
  if (t.find("{{") != std::string::npos || t.find("{%") != std::string::npos) return;
  throw Error::invalid_input("unknown chat template \"" + t.substr(0, 60) + "\"",
                             "expected a template name llama.cpp knows (chatml, llama3, mistral-v7, ...) or Jinja "
                             "template text");
}

OutputConstraint constraint_of(const GenerationOptions& o) {
  OutputConstraint c;
  c.grammar = o.json_schema.empty() ? o.grammar : json_schema_to_gbnf(o.json_schema);
  return c;
}

// A chat through llama_chat_apply_template, which knows roles and text only.
RenderedChat render_with_cpp_template(const GgufEngine::Impl& impl, const ChatPrompt& chat,
                                      const GenerationOptions& options, bool add_assistant) {
  const std::string& name = !chat.chat_template.empty() ? chat.chat_template : effective_chat_template(impl);
  if (!chat.tools.empty()) {
    throw Error::invalid_input("tools need a Jinja chat template",
                               "the chat template in use is llama.cpp's built-in \"" + name.substr(0, 60) + "\"");
  }
  for (const ChatMessage& m : chat.messages) {
    if (!m.tool_calls.empty() || !m.tool_call_id.empty()) {
      throw Error::invalid_input("tool calls in messages need a Jinja chat template",
                                 "the chat template in use is llama.cpp's built-in \"" + name.substr(0, 60) + "\"");
    }
  }
  RenderedChat out;
  out.prompt = apply_chat_template(name, chat.messages, add_assistant);
  out.constraint = constraint_of(options);
  return out;
}

std::vector<int32_t> preserved_token_ids(const GgufEngine::Impl& impl, const std::vector<std::string>& texts) {
  std::vector<int32_t> ids;
  for (const std::string& t : texts) {
    const std::vector<int32_t> one = tokenize(impl.vocab, t, false, true);
    if (one.size() == 1) ids.push_back(one.front());
  }
  return ids;
}

}  // namespace

void load_chat_templates(GgufEngine::Impl& impl) {
  const std::string& given = impl.options.chat_template;
  check_template_given(given);
  if (is_cpp_template(given)) return;
  try {
    impl.chat_templates = ChatTemplates::create(impl.model.get(), given);
  } catch (const Error& e) {
    if (!given.empty()) throw;
    spdlog::warn("gguf: the model's chat template does not run as Jinja ({}); chats use llama.cpp's C++ templates",
                 e.what());
  }
}

RenderedChat render_chat(const GgufEngine::Impl& impl, const ChatPrompt& chat, const GenerationOptions& options,
                         bool add_assistant) {
  check_template_given(chat.chat_template);
  const bool cpp = chat.chat_template.empty() ? !impl.chat_templates : is_cpp_template(chat.chat_template);
  if (cpp) return render_with_cpp_template(impl, chat, options, add_assistant);
  RenderedChat out = chat.chat_template.empty()
                         ? impl.chat_templates->render(chat, options, add_assistant)
                         : ChatTemplates::create(impl.model.get(), chat.chat_template)->render(chat, options, add_assistant);
  // A format without tools makes no grammar: the request's own json_schema or grammar applies.
  if (out.constraint.grammar.empty()) out.constraint = constraint_of(options);
  return out;
}

PreparedGeneration prepare_generation(const GgufEngine::Impl& impl, const GenerateRequest& request) {
  PreparedGeneration p;
  p.options = request.options;
  if (const auto* text = std::get_if<std::string>(&request.prompt)) {
    p.prompt = tokenize(impl.vocab, *text, true, true);
    p.constraint = constraint_of(request.options);
  } else if (const auto* ids = std::get_if<std::vector<int32_t>>(&request.prompt)) {
    p.prompt = *ids;
    detokenize(impl.vocab, p.prompt, false);  // checks every id is in range
    p.constraint = constraint_of(request.options);
  } else {
    RenderedChat chat = render_chat(impl, std::get<ChatPrompt>(request.prompt), request.options, true);
    p.chat = true;
    p.prompt = tokenize(impl.vocab, chat.prompt, true, true);
    p.constraint = std::move(chat.constraint);
    p.preserved_tokens = preserved_token_ids(impl, chat.preserved_tokens);
    for (std::string& stop : chat.extra_stops) p.options.stop.push_back(std::move(stop));
    p.parser = std::move(chat.parser);
  }
  if (p.prompt.empty()) throw Error::invalid_input("empty prompt: at least one token is needed");
  return p;
}

}  // namespace kapsl::gguf
