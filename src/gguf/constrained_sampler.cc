// Grammar-constrained sampling, as llama.cpp's common sampler (and so llama-server) does
// it: the request's usual chain picks a token; llama.cpp's grammar sampler checks that one
// token, and only when it breaks the grammar is the whole vocabulary constrained and the
// chain run again. Checking one token instead of every token keeps constrained generation
// near the speed of free generation.
//
// Three differences from common_sampler:
// - A template-made grammar starts with the text the prompt ends with (e.g.
//   "<|im_start|>assistant\n"), and the grammar must be advanced past it. common_sampler
//   re-tokenizes that text alone, which goes wrong where a vocabulary lacks the template's
//   special tokens (an SPM vocabulary fuses the leading "<" with its space prefix, and the
//   "<" is lost); here the grammar is fed the prompt's own last tokens.
// - The output must end within max_new_tokens to be worth anything (a JSON cut half-way
//   does not parse), but nothing in a grammar makes a model close a string: a weak model
//   may write one until the budget runs out. So the last tokens of the budget (the closing
//   reserve) are picked to finish: an end-of-generation token if the grammar is complete,
//   else a token made only of closing characters (" } ]) if the grammar allows one — one
//   that starts with " inside a JSON string, one that starts with } or ] outside (inside a
//   string, brackets are only more text) — else the usual pick among the tokens the
//   grammar allows (digits, a required key's text).
// - When the grammar must be applied to the whole vocabulary, GrammarPrefilter finds the
//   same tokens by showing it the vocabulary's prefix tree from the root down
//   (grammar_prefilter.h), at a fraction of the grammar's work, which dominates
//   constrained generation on a large vocabulary where the model's picks are often refused.
#include <algorithm>
#include <cmath>
#include <optional>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gguf/engine_impl.h"
#include "gguf/sampling.h"
#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

// The closing reserve: the last tokens of the budget spent finishing the output.
uint32_t closing_reserve(uint32_t max_new_tokens) { return std::clamp<uint32_t>(max_new_tokens / 8, 8, 256); }

bool is_rejected(const llama_token_data& t) { return std::isinf(t.logit) && t.logit < 0; }

// Whether the output so far ends inside a JSON string: its unescaped quotes, counted.
class JsonStringState {
 public:
  void feed(std::string_view text) {
    for (const char c : text) {
      if (escaped_) escaped_ = false;
      else if (in_string_ && c == '\\') escaped_ = true;
      else if (c == '"') in_string_ = !in_string_;
    }
  }
  bool in_string() const { return in_string_; }

 private:
  bool in_string_ = false;
  bool escaped_ = false;
};

class ConstrainedSampler final : public TokenSampler {
 public:
  // `closing_from`: the number of tokens after which the closing reserve starts; none for
  // a lazy grammar (it may never be triggered, and free text has nothing to close).
  ConstrainedSampler(llama_sampler_ptr chain, llama_sampler_ptr grammar, const llama_vocab* vocab,
                     std::optional<uint32_t> closing_from, const ClosingTokens& closing,
                     std::optional<GrammarPrefilter> prefilter)
      : chain_(std::move(chain)),
        grammar_(std::move(grammar)),
        vocab_(vocab),
        closing_from_(closing_from),
        closing_(closing),
        prefilter_(std::move(prefilter)),
        candidates_(static_cast<size_t>(llama_vocab_n_tokens(vocab))) {}

  int32_t sample(llama_context* ctx, int32_t idx) override {
    const float* logits = llama_get_logits_ith(ctx, idx);
    if (logits == nullptr) throw Error::backend("llama.cpp returned no logits for a sequence that asked for them");
    try {
      llama_token token = closing_from_ && n_sampled_ >= *closing_from_ ? pick_closing(logits) : pick_checked(logits);
      llama_sampler_accept(grammar_.get(), token);
      llama_sampler_accept(chain_.get(), token);
      if (closing_from_) json_.feed(token_to_piece(vocab_, token, false));
      ++n_sampled_;
      return token;
    } catch (const std::exception& e) {
      throw Error::inference("grammar-constrained sampling failed", e.what());
    }
  }

 private:
  // The chain's pick if the grammar takes it, else the chain's pick among what it takes.
  llama_token pick_checked(const float* logits) {
    const llama_token token = pick(logits, false);
    llama_token_data one = {token, 1.0f, 0.0f};
    llama_token_data_array single = {&one, 1, -1, false};
    llama_sampler_apply(grammar_.get(), &single);
    return is_rejected(one) ? pick(logits, true) : token;
  }

  // In the closing reserve: see the file comment. The grammar is applied to the closing
  // and end-of-generation tokens alone (a few hundred, not the whole vocabulary), and to
  // the rest only when none of them fits.
  llama_token pick_closing(const float* logits) {
    const std::vector<int32_t>& ids = closing_.candidates(vocab_);
    closing_candidates_.clear();
    for (const int32_t id : ids) closing_candidates_.push_back({id, logits[id], 0.0f});
    llama_token_data_array all = {closing_candidates_.data(), closing_candidates_.size(), -1, false};
    llama_sampler_apply(grammar_.get(), &all);
    const std::vector<uint8_t>& closing = closing_.of(vocab_);
    const uint8_t wanted = json_.in_string() ? ClosingTokens::kClosesString : ClosingTokens::kClosesBracket;
    llama_token best = -1, other = -1;  // the likeliest closing token of the wanted kind, and of the other
    for (size_t i = 0; i < all.size; ++i) {
      const llama_token_data& t = all.data[i];
      if (is_rejected(t)) continue;
      if (llama_vocab_is_eog(vocab_, t.id)) return t.id;
      const uint8_t kind = closing[static_cast<size_t>(t.id)];
      llama_token& slot = kind == wanted ? best : other;
      if (kind != ClosingTokens::kNotClosing && (slot < 0 || t.logit > logits[slot])) slot = t.id;
    }
    if (best >= 0) return best;
    return other >= 0 ? other : pick(logits, true);
  }

  void fill(const float* logits) {
    for (size_t i = 0; i < candidates_.size(); ++i) {
      candidates_[i] = {static_cast<llama_token>(i), logits[i], 0.0f};
    }
  }

  // Runs the chain over every token's logit, the grammar first if `constrained` (or over
  // just the tokens the grammar takes, from the prefilter: the others would be -inf).
  llama_token pick(const float* logits, bool constrained) {
    if (constrained && prefilter_) {
      prefilter_->taken(grammar_.get(), logits, &taken_);
      if (!taken_.empty()) return run_chain(taken_);  // none: as before, to whatever the chain does then
    }
    fill(logits);
    if (constrained) {
      llama_token_data_array all = {candidates_.data(), candidates_.size(), -1, false};
      llama_sampler_apply(grammar_.get(), &all);
    }
    return run_chain(candidates_);
  }

  llama_token run_chain(std::vector<llama_token_data>& tokens) {
    llama_token_data_array all = {tokens.data(), tokens.size(), -1, false};
    llama_sampler_apply(chain_.get(), &all);
    if (all.selected < 0 || static_cast<size_t>(all.selected) >= all.size) {
      throw Error::backend("llama.cpp's sampler chain selected no token");
    }
    return all.data[all.selected].id;
  }

  llama_sampler_ptr chain_;
  llama_sampler_ptr grammar_;
  const llama_vocab* const vocab_;
  const std::optional<uint32_t> closing_from_;
  uint32_t n_sampled_ = 0;
  JsonStringState json_;  // of the output so far, for the closing reserve
  const ClosingTokens& closing_;
  std::optional<GrammarPrefilter> prefilter_;  // none where it does not hold
  std::vector<llama_token_data> candidates_;  // every token, in id order
  std::vector<llama_token_data> taken_;       // the prefilter's, in id order
  std::vector<llama_token_data> closing_candidates_;  // pick_closing's scratch
};

llama_sampler_ptr grammar_sampler(const OutputConstraint& c, const llama_vocab* vocab) {
  if (!c.lazy) return llama_sampler_ptr(llama_sampler_init_grammar(vocab, c.grammar.c_str(), "root"));
  if (c.trigger_patterns.empty() && c.trigger_tokens.empty()) {
    throw Error::backend("the chat format gave a lazy grammar without triggers");
  }
  std::vector<const char*> patterns;
  for (const std::string& p : c.trigger_patterns) patterns.push_back(p.c_str());
  return llama_sampler_ptr(llama_sampler_init_grammar_lazy_patterns(
      vocab, c.grammar.c_str(), "root", patterns.data(), patterns.size(), c.trigger_tokens.data(),
      c.trigger_tokens.size()));
}

// The prompt's last tokens that spell `text` exactly, or empty if its token boundaries do
// not fall at the start of `text`.
std::vector<int32_t> tokens_spelling_tail(const llama_vocab* vocab, std::span<const int32_t> prompt,
                                          const std::string& text) {
  std::string tail;
  size_t i = prompt.size();
  while (i > 0 && tail.size() < text.size()) {
    --i;
    tail.insert(0, token_to_piece(vocab, prompt[i], true));
  }
  if (tail != text) return {};
  return {prompt.begin() + static_cast<ptrdiff_t>(i), prompt.end()};
}

void advance_past_generation_prompt(llama_sampler* grammar, const llama_vocab* vocab,
                                    std::span<const int32_t> prompt, const std::string& text) {
  std::vector<int32_t> tokens = tokens_spelling_tail(vocab, prompt, text);
  if (tokens.empty()) tokens = tokenize(vocab, text, false, true);
  try {
    for (int32_t t : tokens) llama_sampler_accept(grammar, t);
  } catch (const std::exception& e) {
    throw Error::invalid_input("the chat format's grammar does not fit this model's vocabulary", e.what());
  }
}

// The constraint's grammar sampler, checked and advanced to where the reply starts.
llama_sampler_ptr ready_grammar(const OutputConstraint& c, const llama_vocab* vocab, std::span<const int32_t> prompt) {
  check_grammar_limits(c.grammar);
  llama_sampler_ptr grammar = grammar_sampler(c, vocab);
  if (!grammar) throw Error::invalid_input("the grammar does not parse (llama.cpp's log says where)");
  if (!c.generation_prompt.empty()) advance_past_generation_prompt(grammar.get(), vocab, prompt, c.generation_prompt);
  return grammar;
}

}  // namespace

void ClosingTokens::compute(const llama_vocab* vocab) const {
  std::call_once(once_, [&] {
    tokens_.resize(static_cast<size_t>(llama_vocab_n_tokens(vocab)));
    for (size_t i = 0; i < tokens_.size(); ++i) {
      const auto id = static_cast<int32_t>(i);
      const std::string piece = token_to_piece(vocab, id, false);
      if (!piece.empty() && piece.find_first_not_of("\"}]") == std::string::npos) {
        tokens_[i] = piece[0] == '"' ? kClosesString : kClosesBracket;
      }
      if (tokens_[i] != kNotClosing || llama_vocab_is_eog(vocab, id)) candidates_.push_back(id);
    }
  });
}

const std::vector<uint8_t>& ClosingTokens::of(const llama_vocab* vocab) const {
  compute(vocab);
  return tokens_;
}

const std::vector<int32_t>& ClosingTokens::candidates(const llama_vocab* vocab) const {
  compute(vocab);
  return candidates_;
}

void check_constraint(const OutputConstraint& c, const llama_model* model, std::span<const int32_t> prompt) {
  if (!c.grammar.empty()) ready_grammar(c, llama_model_get_vocab(model), prompt);
}

std::unique_ptr<TokenSampler> make_constrained_sampler(const GenerationOptions& o, const OutputConstraint& c,
                                                       const llama_model* model, uint32_t n_ctx,
                                                       std::span<const int32_t> prompt,
                                                       const ConstraintTables& tables) {
  const llama_vocab* vocab = llama_model_get_vocab(model);
  llama_sampler_ptr grammar = ready_grammar(c, vocab, prompt);
  std::optional<uint32_t> closing_from;
  if (!c.lazy) closing_from = o.max_new_tokens - std::min(o.max_new_tokens, closing_reserve(o.max_new_tokens));
  std::optional<GrammarPrefilter> prefilter;
  if (!c.lazy && !grammar_refers_to_tokens(c.grammar)) prefilter.emplace(tables.prefix_tree.of(vocab));
  return std::make_unique<ConstrainedSampler>(make_sampler_chain(o, vocab, n_ctx), std::move(grammar), vocab,
                                              closing_from, tables.closing, std::move(prefilter));
}

}  // namespace kapsl::gguf
