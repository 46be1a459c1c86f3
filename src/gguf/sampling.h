// The llama.cpp sampler chain for one request, built from its GenerationOptions.
//
// Order, as llama-server's common sampler uses it: logit bias, penalties (repetition,
// presence, frequency), DRY, then either greedy (temperature 0), Mirostat (after the
// temperature), or top-n-sigma, top-k, typical-p, top-p, min-p, XTC, the (dynamic)
// temperature and a seeded draw. A stage that is disabled by its option is left out.
//
// Thread-safety: safe for concurrent use without external synchronization (the chain it
// returns is not: one thread at a time).
#ifndef KAPSL_SRC_GGUF_SAMPLING_H_
#define KAPSL_SRC_GGUF_SAMPLING_H_

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "gguf/chat_format.h"
#include "gguf/grammar_prefilter.h"
#include "kapsl/request.h"
#include "llama-cpp.h"

namespace kapsl::gguf {

// The largest grammar or JSON schema a request may bring, and the largest repetition
// count ({m,n}) in a grammar: llama.cpp expands repetitions into copies of their rule, so
// a count of 10^8 would take all memory.
inline constexpr size_t kMaxGrammarBytes = 64 * 1024;
inline constexpr uint64_t kMaxGrammarRepetition = 4096;
inline constexpr uint64_t kMaxGrammarCopies = 64 * 1024;  // all repetitions of a grammar together
// The deepest nesting a grammar's groups, or a JSON schema's values, may reach: llama.cpp's
// grammar parser and common's schema converter recurse once per level.
inline constexpr int kMaxConstraintNesting = 64;
// The most DRY sequence breakers a request may give.
inline constexpr size_t kMaxDryBreakers = 32;

// The tokens whose text is only closing characters (" } ]), which a constrained sampler's
// closing reserve prefers, by their first character: computed once per engine, on first
// use (a pass over the whole vocabulary). Thread-safe.
class ClosingTokens {
 public:
  enum Kind : uint8_t {
    kNotClosing = 0,
    kClosesString = 1,   // starts with " (inside a JSON string, it ends it)
    kClosesBracket = 2,  // starts with } or ] (outside a string, it ends an object or array)
  };
  // Each token's Kind, by id.
  const std::vector<uint8_t>& of(const llama_vocab* vocab) const;
  // The closing and end-of-generation tokens: the only ones the closing reserve looks at
  // first (the grammar is applied to these few, not to the whole vocabulary).
  const std::vector<int32_t>& candidates(const llama_vocab* vocab) const;

 private:
  void compute(const llama_vocab* vocab) const;

  mutable std::once_flag once_;
  mutable std::vector<uint8_t> tokens_;
  mutable std::vector<int32_t> candidates_;
};

// What constrained samplers learn about an engine's vocabulary, each part once, on first
// use. Thread-safe.
struct ConstraintTables {
  ClosingTokens closing;
  TokenPrefixTree prefix_tree;
};

// One request's token sampler.
class TokenSampler {
 public:
  virtual ~TokenSampler() = default;
  // Samples from row `idx` of `ctx`'s logits and records the token as generated (for
  // penalties and grammars). Throws kBackend if llama.cpp has no logits there.
  virtual int32_t sample(llama_context* ctx, int32_t idx) = 0;
};

// Throws kInvalidInput naming the first option out of range (temperature < 0, top_p or
// min_p outside [0, 1], repetition_penalty <= 0, non-finite values, a logit-bias or stop
// token id outside [0, n_vocab), both a grammar and a JSON schema, either too large).
void validate_generation_options(const GenerationOptions& options, int32_t n_vocab);

// REQUIRES: validate_generation_options(options, llama_vocab_n_tokens(vocab)) passed.
// `n_ctx` is the window penalty_last_n = -1 stands for. Throws kBackend if llama.cpp cannot
// create a sampler.
llama_sampler_ptr make_sampler_chain(const GenerationOptions& options, const llama_vocab* vocab, uint32_t n_ctx);

// The sampler for a request: make_sampler_chain's chain (or plain argmax, see
// is_plain_greedy) without a constraint; with one, that chain and llama.cpp's grammar
// sampler, applied only when the token the chain picks breaks the grammar (as
// llama-server's common sampler does). `prompt` is the request's prompt (a template-made
// grammar is advanced past its end). Throws kInvalidInput if the grammar does not parse or
// repeats beyond kMaxGrammarRepetition, kBackend if llama.cpp cannot create a sampler.
// `tables` is borrowed and must outlive the sampler.
std::unique_ptr<TokenSampler> make_token_sampler(const GenerationOptions& options, const OutputConstraint& constraint,
                                                 const llama_model* model, uint32_t n_ctx,
                                                 std::span<const int32_t> prompt, const ConstraintTables& tables);

// Builds `constraint`'s grammar as make_token_sampler would, and drops it: for a caller
// that must refuse a bad grammar before it commits to a stream. Throws as
// make_token_sampler does.
void check_constraint(const OutputConstraint& constraint, const llama_model* model, std::span<const int32_t> prompt);

// The constrained case of make_token_sampler (constrained_sampler.cc).
// REQUIRES: !constraint.grammar.empty().
std::unique_ptr<TokenSampler> make_constrained_sampler(const GenerationOptions& options,
                                                       const OutputConstraint& constraint, const llama_model* model,
                                                       uint32_t n_ctx, std::span<const int32_t> prompt,
                                                       const ConstraintTables& tables);

// Throws kInvalidInput if `gbnf` has a repetition count above kMaxGrammarRepetition, a
// {m,n} with m > n, repetitions that add up to more than kMaxGrammarCopies, or groups
// nested deeper than kMaxConstraintNesting.
void check_grammar_limits(const std::string& gbnf);

// Throws kInvalidInput (naming `what`) if the JSON text nests arrays and objects deeper
// than kMaxConstraintNesting.
void check_json_nesting(std::string_view json, const char* what);

// True if the chain make_sampler_chain builds for `options` is the greedy sampler alone:
// the token is then argmax_token of the logits, which callers may take without the chain
// (it spares building llama.cpp's candidate array of the whole vocabulary per token).
bool is_plain_greedy(const GenerationOptions& options);

// The first token with the highest logit: what llama.cpp's greedy sampler picks.
int32_t argmax_token(const float* logits, int32_t n_vocab);

// A sampled token's log probability, and the `top_n` most likely tokens, from the raw
// logits of its step (a log-softmax over the whole vocabulary).
struct StepLogprobs {
  float sampled = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // (token, log probability), most likely first
};
StepLogprobs step_logprobs(const float* logits, int32_t n_vocab, int32_t token, uint32_t top_n);

// True if sampling `token` ends the generation: an end-of-generation token (unless
// options.ignore_eos) or one of options.stop_token_ids.
bool is_stop_token(const llama_vocab* vocab, const GenerationOptions& options, int32_t token);

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_SAMPLING_H_
