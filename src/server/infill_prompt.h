// llama-server's /infill: fill-in-the-middle for code models, the prompt assembled from the
// code before and after the cursor as llama-server v0.5.0 assembles it (its repo-level
// pattern, arXiv 2409.12186):
//
//   [repository "myproject\n"] ([separator NAME "\n" | "\n\n--- snippet ---\n\n"] TEXT)...
//   [separator "filename\n"] [bos] prefix PREFIX PROMPT suffix SUFFIX middle
//
// the prefix cut to its last 3/4 of a 2048-token batch, the suffix to what is left of its
// quarter, the extra files to what the context leaves beside the batch and twice the
// reply's budget (llama-server: its --n-predict; kapsl: the request's max_tokens).
//
// Thread-safety: pure functions.
#ifndef KAPSL_SRC_SERVER_INFILL_PROMPT_H_
#define KAPSL_SRC_SERVER_INFILL_PROMPT_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "kapsl/text_generation.h"

namespace kapsl::server {

struct InfillPrompt {
  nlohmann::json prefix;  // the code before the cursor: a string, or strings and token ids
  nlohmann::json suffix;  // the code after it, the same
  std::vector<std::pair<std::string, std::string>> extra;  // other files: (name, text)
  std::string prompt;     // text after the prefix, before the suffix (special tokens parsed)
};

// Reads `input_prefix` and `input_suffix` (both required), `input_extra` ([{"filename"?,
// "text"}], at most kMaxInfillExtra) and `prompt`; the caller reads the rest. Throws
// kInvalidInput naming the field.
inline constexpr size_t kMaxInfillExtra = 1024;
InfillPrompt parse_infill_prompt(const nlohmann::json& body);

// The prompt's tokens for `text`'s model, with `max_tokens` the reply's budget. Throws
// kInvalidInput if the model has no FIM prefix, suffix or middle token, or a token id out
// of its vocabulary.
std::vector<int32_t> infill_tokens(const TextGenerator& text, const InfillPrompt& prompt, uint32_t max_tokens);

// llama-server's mixed content: a string, or an array of strings and token ids, the
// strings tokenized (special tokens added to the first only), the ids taken as they are.
// Throws kInvalidInput naming `field`.
std::vector<int32_t> tokenize_content(const TextGenerator& text, const nlohmann::json& content, bool add_special,
                                      bool parse_special, const std::string& field = "content");

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_INFILL_PROMPT_H_
