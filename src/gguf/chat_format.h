// Chat formats: Jinja chat templates, tool-call formats, JSON Schema -> grammar and the
// parsing of replies, all done by llama.cpp's `common` library, as llama-server does them.
//
// This header keeps `common` out of its includers: `common` carries its own nlohmann json
// (3.12, in another ABI namespace than Debian's 3.11 the server uses), and its headers must
// not meet Debian's in one translation unit. Only chat_format.cc includes `common`.
//
// Thread-safety: ChatTemplates is immutable after create() and safe for concurrent use;
// a ReplyParser belongs to one request's thread.
#ifndef KAPSL_SRC_GGUF_CHAT_FORMAT_H_
#define KAPSL_SRC_GGUF_CHAT_FORMAT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/text_generation.h"
#include "llama.h"

namespace kapsl::gguf {

// The grammar a request's sampler enforces; empty `grammar` = none.
struct OutputConstraint {
  std::string grammar;                        // GBNF, rule "root"
  bool lazy = false;                          // only from a trigger on (tool calls)
  std::vector<std::string> trigger_patterns;  // lazy: regular expressions over the output
  std::vector<int32_t> trigger_tokens;        // lazy: tokens
  // Text the template put at the end of the prompt, which its (not lazy) grammar starts
  // with: the grammar is advanced past it before the first token.
  std::string generation_prompt;
};

class ReplyParser;

// A rendered chat: what to generate from, and how.
struct RenderedChat {
  std::string prompt;
  OutputConstraint constraint;
  std::vector<std::string> preserved_tokens;  // special tokens to keep as text in the output
  std::vector<std::string> extra_stops;       // stop strings the format adds
  std::shared_ptr<ReplyParser> parser;        // null for a template without a parsed format
};

// Parses one request's reply as it streams. Each push() re-parses the whole text so far,
// as llama-server does, and returns what changed; a reply nobody streams is only added
// to, and parsed once by finish().
class ReplyParser {
 public:
  virtual ~ReplyParser() = default;
  // Adds text and returns the deltas it produced (possibly none).
  virtual std::vector<ChatDelta> push(std::string_view text) = 0;
  // Adds text without parsing.
  virtual void append(std::string_view text) = 0;
  // Parses the whole reply as final; returns the deltas not yet returned in `flushed`.
  virtual ChatMessage finish(std::vector<ChatDelta>* flushed) = 0;
  // A parser for another reply to the same chat (generate_n), with nothing added yet.
  virtual std::unique_ptr<ReplyParser> fresh() const = 0;
};

// The Jinja templates of one model (the model's own, or an override), parsed once.
class ChatTemplates {
 public:
  virtual ~ChatTemplates() = default;

  // `override_source`: template text, or "" for the model's own (chatml if it has none).
  // Throws kInvalidInput if the template does not parse.
  // `model` must outlive the templates.
  static std::unique_ptr<ChatTemplates> create(const llama_model* model, const std::string& override_source);

  // Renders `chat` for generation; `options` supplies the json_schema or grammar, which
  // the template's format may fold into its own grammar (RenderedChat::constraint is empty
  // where it made none). Throws kInvalidInput for messages or tools the template cannot
  // take, or a bad schema.
  virtual RenderedChat render(const ChatPrompt& chat, const GenerationOptions& options,
                              bool add_assistant_prompt) const = 0;
};

// Converts a JSON Schema (JSON text) to GBNF, as llama-server does for json_schema and
// response_format. Throws kInvalidInput for text that is not JSON or a schema it cannot
// convert.
std::string json_schema_to_gbnf(const std::string& schema);

// Names llama.cpp implements in C++ (llama_chat_builtin_templates): rendered without Jinja.
bool is_builtin_template_name(const std::string& name);

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_CHAT_FORMAT_H_
