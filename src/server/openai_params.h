// Parsing OpenAI request bodies: sampling parameters, prompts and chat messages.
//
// Each function throws Error(kInvalidInput) naming the field, what it accepts and what it
// got, so that the route answers 400 with OpenAI's error shape. Fields that OpenAI defines
// but kapsl does not implement (echo, best_of > 1, suffix, functions)
// are refused rather than ignored, and so are fields nobody defines (check_fields):
// docs/server.md lists what each route takes.
//
// Thread-safety: free functions over values; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_OPENAI_PARAMS_H_
#define KAPSL_SRC_SERVER_OPENAI_PARAMS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "kapsl/embedding.h"
#include "kapsl/request.h"
#include "kapsl/text_generation.h"
#include "server/infill_prompt.h"

namespace kapsl::server {

// Limits of a request body's JSON: nesting, and values (a DOM value costs about 16 bytes).
inline constexpr int kMaxJsonDepth = 64;
inline constexpr uint64_t kMaxJsonValues = 1u << 20;

// The body as a JSON object, parsed within the limits above; throws kInvalidInput if it is
// not valid JSON, not an object, or beyond a limit (naming it).
nlohmann::json parse_object(const std::string& body);

// Throws kInvalidInput naming the first field that is neither a sampling field, an OpenAI
// field (taken, refused or ignored), nor one of `route_fields`.
void check_fields(const nlohmann::json& body, std::initializer_list<std::string_view> route_fields);
// Throws kInvalidInput naming the first field of `body` not in `known` (`api` names the
// API in the message).
void only_fields(const nlohmann::json& body, std::initializer_list<std::string_view> known, std::string_view api);
// A boolean field: `fallback` when absent or null; kInvalidInput naming it when not a bool.
bool flag(const nlohmann::json& body, const char* field, bool fallback = false);

// The required string field `model`.
std::string model_field(const nlohmann::json& body);

// Sampling and stopping options shared by completions and chat completions.
// `max_tokens` is the max_tokens (or max_completion_tokens) field, if given.
struct SamplingRequest {
  GenerationOptions options;
  std::optional<uint32_t> max_tokens;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  uint32_t n = 1;              // replies to generate (OpenAI's `n`, 1 to 128)
};
// `kserve`: the body is a KServe request's parameters: only sampling fields are accepted.
// Output constraints are sampling fields too: llama-server's `json_schema` (a schema, or
// its JSON text) and `grammar` (GBNF), one or the other.
SamplingRequest parse_sampling(const nlohmann::json& body, bool kserve = false);

// /v1/chat/completions `response_format`: {"type": "text"}, {"type": "json_object"}
// (llama-server: with an optional "schema") or {"type": "json_schema", "json_schema":
// {"name", "schema", "strict"}}; sets options->json_schema. Refused beside a grammar or a
// json_schema field.
// `raw` (the body's text, if given) keeps the schema's key order: the output's keys come
// in the order of its properties, as the client wrote them.
void parse_response_format(const nlohmann::json& body, GenerationOptions* options, std::string_view raw = {});

// /v1/chat/completions `tools` (functions only, at most 128), `tool_choice` ("auto",
// "none", "required" or {"type": "function", "function": {"name"}}, which offers that tool
// alone and requires a call) and `parallel_tool_calls` (default true), into `chat`.
// `raw` (the body's text, if given) keeps each tool's parameters schema in the client's key
// order, as llama-server does: models read the schema as text, in the order they were
// trained on ("type" first), not the sorted order of a parsed document.
void parse_tools(const nlohmann::json& body, ChatPrompt* chat, std::string_view raw = {});

// /v1/completions `prompt`: one string or one array of token ids.
using CompletionPrompt = std::variant<std::string, std::vector<int32_t>>;
CompletionPrompt parse_completion_prompt(const nlohmann::json& body);

// /v1/chat/completions `messages`: role and content (a string or an array of text parts);
// an assistant's `tool_calls`, a tool message's `tool_call_id` (and `name`).
std::vector<ChatMessage> parse_messages(const nlohmann::json& body);

// /v1/embeddings `input`: a string, an array of strings, an array of token ids, or an array
// of token-id arrays; at most 2048 inputs, none empty.
std::vector<EmbeddingInput> parse_embedding_input(const nlohmann::json& body);

// A whole /v1/completions or /v1/chat/completions body, as its route reads it: every field
// checked (check_fields), then the sampling options and the prompt or messages.
struct GenerationBody {
  std::string model;
  SamplingRequest sampling;
  std::variant<ChatPrompt, CompletionPrompt, InfillPrompt> input;  // a ChatPrompt for chat
};
GenerationBody parse_generation_body(const nlohmann::json& body, bool chat, std::string_view raw = {});

// A message of text alone.
ChatMessage text_message(std::string role, std::string content);
// A chat of these messages, with the engine's template and no tools.
ChatPrompt chat_of(std::vector<ChatMessage> messages);

// An Anthropic Messages body (/v1/messages), as a chat (anthropic_body.cc): `max_tokens`
// (required), `messages` (roles user and assistant; content a string or blocks: text, an
// assistant's tool_use, a user's tool_result), `system` (a string or text blocks),
// `stop_sequences`, `temperature`, `top_p`, `top_k`, `stream`, client `tools`
// ({"name", "description", "input_schema"}) and `tool_choice` (auto, any, tool, none;
// disable_parallel_tool_use); `metadata` is ignored. `thinking`, server tools and other
// blocks (images, documents) are refused, and so is any other field. `raw` keeps each tool's
// schema in the client's key order (see tool_schemas_as_sent).
GenerationBody parse_anthropic_body(const nlohmann::json& body, std::string_view raw = {});

// llama-server's /infill body (infill_prompt.cc): `input_prefix`, `input_suffix`,
// `input_extra` and `prompt` (parse_infill_prompt), the sampling fields completions take
// (`n_predict`, `temperature`, `stop`, ...), `stream`, and `model` (optional: llama-server
// names none). Anything else is refused.
GenerationBody parse_infill_body(const nlohmann::json& body);

// An OpenAI Responses body (/v1/responses), as a chat (responses_body.cc): `input` (a
// string, or items: messages whose content is a string or input_text / output_text parts,
// role developer as system; function_call and function_call_output items), `instructions`
// (a system message first), `max_output_tokens`, `temperature`, `top_p`, `stream`,
// function `tools`, `tool_choice`, `parallel_tool_calls`, `text.format` (text, json_object
// or json_schema); `store`, `metadata`, `user` and `truncation` "disabled" are taken and
// change nothing. Built-in tools, previous_response_id, reasoning, include and
// top_logprobs are refused.
GenerationBody parse_responses_body(const nlohmann::json& body, std::string_view raw = {});

// A whole /v1/embeddings body.
struct EmbeddingsBody {
  std::string model;
  std::vector<EmbeddingInput> inputs;
  bool base64 = false;                 // encoding_format "base64" (else "float")
  std::optional<int64_t> dimensions;   // as asked; the route refuses any but the model's own
};
EmbeddingsBody parse_embeddings_body(const nlohmann::json& body);

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_OPENAI_PARAMS_H_
