// TextGenerator: the capability of an engine that generates text — tokenization, chat
// templates, generation and streaming — whatever backend it runs on.
//
// Front ends never name a backend's engine type. They ask an Engine for this capability
// (Engine::text_generator()) and get nullptr when the engine has none (an ONNX classifier,
// an embeddings-only engine). The GGUF backend's engines implement it.
//
// Ownership: the TextGenerator is part of its engine; the pointer is valid for the engine's
// lifetime. Requests and callbacks are borrowed for the duration of a call; results are
// values owned by the caller.
// Thread-safety: safe for concurrent use without external synchronization, as the Engine
// interface requires of every engine. Stream callbacks run on the calling thread.
#ifndef KAPSL_TEXT_GENERATION_H_
#define KAPSL_TEXT_GENERATION_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kapsl/engine.h"
#include "kapsl/request.h"

namespace kapsl {

// A chat message ("system", "user", "assistant", "tool", ...).
struct ChatMessage {
  std::string role;
  std::string content;
  std::string reasoning_content = {};     // assistant: its reasoning, where the template separates it
  std::vector<ToolCall> tool_calls = {};  // assistant: the tools it called
  std::string tool_call_id = {};          // tool: the call this message answers
  std::string tool_name = {};             // tool: the tool's name, where known
};

// A tool (function) the model may call.
struct ToolDefinition {
  std::string name;
  std::string description;
  std::string parameters;  // a JSON Schema of its arguments, as JSON text; "" = none
};

enum class ToolChoice {
  kAuto,      // the model chooses between answering and calling tools
  kNone,      // answer only (the tools are still shown to the model)
  kRequired,  // call at least one tool
};

// Chat messages to render with a template before generating.
//
// Templates are Jinja, run by llama.cpp's `common` library as llama-server runs them:
// the model's own (GGUF tokenizer.chat_template), or template text given here or in the
// engine's options; a model without one chats through chatml, extended with the Hermes /
// Qwen 2.5 tool-call convention. A template name llama.cpp knows in C++ ("llama3",
// "mistral-v7", ...) is also accepted; such templates take no tools. With tools, the
// template's tool-call format is used for the prompt; the output is constrained to
// well-formed calls of the given tools (kAuto: once the model starts one; kRequired: from
// the first token, with no text before the call; without parallel_tool_calls, one call);
// and the reply is parsed into content, reasoning and tool calls (GenerateResult::message,
// StreamChunk::chat).
struct ChatPrompt {
  std::vector<ChatMessage> messages;
  std::string chat_template = {};  // a template name or template text; "" = the engine's
  std::vector<ToolDefinition> tools = {};
  ToolChoice tool_choice = ToolChoice::kAuto;
  bool parallel_tool_calls = false;  // allow several calls in one reply
};

// What to generate from: text, token ids, or chat messages.
using Prompt = std::variant<std::string, std::vector<int32_t>, ChatPrompt>;

struct GenerateRequest {
  Prompt prompt;                 // text is tokenized with add_special (BOS) and parse_special
  GenerationOptions options;
  std::optional<Clock::time_point> deadline;  // checked between tokens and during prompt decode
  CancellationToken cancel;      // idem
};

struct GenerateResult {
  std::string text;              // valid UTF-8 (invalid bytes become U+FFFD); excludes stop strings
  std::vector<int32_t> tokens;   // every generated token, including a stop token if one ended it
  GenerationUsage usage;         // finish_reason kStop, kLength, kCancelled or kTimeout
  // Chat prompts: `text` parsed into the assistant's reply — content, reasoning and tool
  // calls. Text that does not parse as the template's format is content.
  std::optional<ChatMessage> message = {};
  // With GenerationOptions::logprobs: one per token whose text is output (every token of
  // `tokens` but an end-of-generation or stop token that ended the reply).
  std::vector<GeneratedLogprob> logprobs = {};
};

// Facts about a text model every front end may need.
struct TextModelInfo {
  uint32_t context_size = 0;        // tokens one sequence may hold (prompt + generated)
  int32_t vocab_size = 0;           // token ids are in [0, vocab_size)
  int32_t bos_token = -1;           // -1 = none
  int32_t eos_token = -1;           // -1 = none
  std::vector<int32_t> eog_tokens;  // every end-of-generation token
  std::string chat_template;        // the model's own template text; "" = none
  bool adds_bos = false;            // tokenize(text, add_special = true) starts with bos_token
  // Fill-in-the-middle tokens of code models, -1 = none: a prompt is
  // [repository name] [separator file name, text]... prefix PREFIX suffix SUFFIX middle.
  struct FimTokens {
    int32_t prefix = -1;
    int32_t suffix = -1;
    int32_t middle = -1;
    int32_t repository = -1;  // before the repository's name
    int32_t separator = -1;   // before each file's name
  } fim;
};

// Called with a reply's index and one of its chunks; see TextGenerator::generate_n.
using ReplyStreamCallback = std::function<bool(uint32_t reply, const StreamChunk& chunk)>;

class TextGenerator {
 public:
  // Generates text. Stops on an end-of-generation token (unless options.ignore_eos), a stop
  // token id, a stop string (not included in the text), max_new_tokens, cancellation or the
  // deadline; the reason is in usage.finish_reason. If `on_chunk` is given it receives the
  // text as it is produced, in pieces of valid UTF-8; returning false stops with kCancelled.
  // The returned text is the pieces concatenated. A chat prompt's chunks also carry the
  // reply's parsed deltas (StreamChunk::chat), and the result its parsed message.
  // options.json_schema / options.grammar (or tools) constrain the output.
  // Throws: kInvalidInput (bad options, empty prompt, token id out of range, prompt plus
  // max_new_tokens beyond the context, a schema or grammar that does not convert or parse;
  // checked before any work), kOverloaded, kTimeout /
  // kCancelled (only while waiting for a turn; once generating they end it with a finish
  // reason), kUnavailable (the engine cannot generate), kResourceExhausted / kBackend.
  // The engine stays usable after any error.
  virtual GenerateResult generate(const GenerateRequest& request, const StreamCallback& on_chunk = {}) = 0;

  // Generates `n` replies to one prompt (OpenAI's `n`), as generate() does each, decoding
  // the prompt once: the other replies copy its KV cache and decode only its last token.
  // Reply i samples with options.seed + i (with a random seed, each its own). The replies
  // are generated together, on n of the engine's slots; `on_chunk` receives (reply index,
  // chunk), all of reply 0's chunks first, then reply 1's, and so on; returning false stops
  // every reply with kCancelled. Throws as generate() does, and kInvalidInput if n is 0 or
  // more than the replies the engine generates at once (max_parallel_replies()).
  virtual std::vector<GenerateResult> generate_n(const GenerateRequest& request, uint32_t n,
                                                 const ReplyStreamCallback& on_chunk = {}) = 0;
  // The largest n generate_n takes: the sequences the engine decodes at once.
  virtual uint32_t max_parallel_replies() const = 0;

  // The prompt tokens generate() would decode for `request` (a chat rendered with its
  // tools and format), without generating: lets a caller check the context, and answer
  // 400, before committing to a stream. Throws kInvalidInput as generate() does for a bad
  // prompt or options; does not check the context.
  virtual std::vector<int32_t> prompt_tokens(const GenerateRequest& request) const = 0;

  // Renders `chat` (its messages, tools and template: see ChatPrompt) as the prompt text
  // generation would start from. add_assistant_prompt: end with the opening of the
  // assistant's turn. Throws kInvalidInput if the template does not parse or cannot take
  // these messages or tools.
  virtual std::string apply_chat_template(const ChatPrompt& chat, bool add_assistant_prompt = true) const = 0;

  // The same for `messages` alone, with `chat_template` ("" = the engine's).
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_assistant_prompt = true,
                                  const std::string& chat_template = {}) const {
    ChatPrompt chat;
    chat.messages = messages;
    chat.chat_template = chat_template;
    return apply_chat_template(chat, add_assistant_prompt);
  }

  // add_special: add BOS/EOS as the model asks; parse_special: turn text like "<|im_end|>"
  // into its special token. Throws kInvalidInput if the text is too long.
  virtual std::vector<int32_t> tokenize(std::string_view text, bool add_special = true,
                                        bool parse_special = false) const = 0;

  // special: render special tokens as text. Throws kInvalidInput for an id outside
  // [0, vocab_size).
  virtual std::string detokenize(std::span<const int32_t> tokens, bool special = false) const = 0;

  // The model's facts; the reference is valid for the engine's lifetime. Never throws.
  virtual const TextModelInfo& text_info() const = 0;

 protected:
  ~TextGenerator() = default;  // owned and destroyed through its Engine
};

}  // namespace kapsl

#endif  // KAPSL_TEXT_GENERATION_H_
