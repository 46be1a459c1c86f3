// OpenAI's shapes of a reply's log probabilities.
//
// Chat completions: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}],
// "refusal": null}. Legacy completions: {"tokens", "token_logprobs", "top_logprobs" (one
// object of token -> logprob per step), "text_offset"}. A token whose bytes are part of a
// UTF-8 character shows U+FFFD in "token"; "bytes" has its exact bytes.
//
// Thread-safety: free functions over values; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_OPENAI_LOGPROBS_H_
#define KAPSL_SRC_SERVER_OPENAI_LOGPROBS_H_

#include <cstddef>
#include <span>

#include <nlohmann/json.hpp>

#include "kapsl/engine.h"

namespace kapsl::server {

nlohmann::json chat_logprobs_json(std::span<const GeneratedLogprob> logprobs);

// `text_offset`: the offset in the reply's text of the first token's piece; advanced past
// the last (a stream carries it from chunk to chunk).
nlohmann::json completion_logprobs_json(std::span<const GeneratedLogprob> logprobs, size_t* text_offset);

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_OPENAI_LOGPROBS_H_
