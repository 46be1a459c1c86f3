// Grammar-constrained sampling through llama.cpp's common sampler, set up as llama-server
// sets it up: the same sampler stages as make_sampler_chain, the grammar (lazy for tool
// calls, with its triggers), and the template's generation prompt fed to a template-made
// grammar first. common_sampler checks the grammar against the token the chain picks and
// only constrains the whole vocabulary when that token breaks it.
// A `common` translation unit: see chat_format.h.
#include <algorithm>
#include <exception>
#include <memory>
#include <string>
#include <utility>

#include <llama-common/common.h>
#include "gguf/sampling.h"
#include "kapsl/error.h"
#include <llama-common/sampling.h>

namespace kapsl::gguf {
namespace {

struct CommonSamplerDeleter {
  void operator()(common_sampler* s) const noexcept { common_sampler_free(s); }
};

class ConstrainedSampler final : public TokenSampler {
 public:
  explicit ConstrainedSampler(common_sampler* s) : sampler_(s) {}

  int32_t sample(llama_context* ctx, int32_t idx) override {
    try {
      const llama_token token = common_sampler_sample(sampler_.get(), ctx, idx);
      common_sampler_accept(sampler_.get(), token, true);
      return token;
    } catch (const std::exception& e) {
      throw Error::inference("grammar-constrained sampling failed", e.what());
    }
  }

 private:
  std::unique_ptr<common_sampler, CommonSamplerDeleter> sampler_;
};

// A trigger word that is one special token triggers on that token, as in llama-server.
common_grammar_trigger to_common(const GrammarTrigger& t, const llama_vocab* vocab) {
  switch (t.kind) {
    case GrammarTrigger::Kind::kToken: return {COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN, t.value, t.token};
    case GrammarTrigger::Kind::kPattern: return {COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN, t.value};
    case GrammarTrigger::Kind::kPatternFull: return {COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL, t.value};
    case GrammarTrigger::Kind::kWord: break;
  }
  const llama_tokens ids = common_tokenize(vocab, t.value, false, true);
  if (ids.size() == 1 && llama_vocab_get_attr(vocab, ids[0]) & LLAMA_TOKEN_ATTR_CONTROL) {
    return {COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN, t.value, ids[0]};
  }
  return {COMMON_GRAMMAR_TRIGGER_TYPE_WORD, t.value};
}

common_params_sampling sampling_params(const GenerationOptions& o, const OutputConstraint& c,
                                       const llama_vocab* vocab, uint32_t n_ctx) {
  common_params_sampling p;
  p.seed = o.seed;
  p.top_k = o.top_k;
  p.top_p = o.top_p;
  p.min_p = o.min_p;
  p.temp = o.temperature;
  p.penalty_last_n = o.penalty_last_n < 0 ? static_cast<int32_t>(n_ctx) : o.penalty_last_n;
  p.penalty_repeat = o.repetition_penalty;
  p.penalty_freq = o.frequency_penalty;
  p.penalty_present = o.presence_penalty;
  p.ignore_eos = o.ignore_eos;
  p.no_perf = true;
  p.samplers = {COMMON_SAMPLER_TYPE_PENALTIES, COMMON_SAMPLER_TYPE_TOP_K, COMMON_SAMPLER_TYPE_TOP_P,
                COMMON_SAMPLER_TYPE_MIN_P, COMMON_SAMPLER_TYPE_TEMPERATURE};
  for (const auto& [id, bias] : o.logit_bias) p.logit_bias.push_back({id, bias});
  p.grammar = common_grammar(c.from_template ? COMMON_GRAMMAR_TYPE_TOOL_CALLS : COMMON_GRAMMAR_TYPE_USER, c.grammar);
  p.grammar_lazy = c.lazy;
  for (const GrammarTrigger& t : c.triggers) p.grammar_triggers.push_back(to_common(t, vocab));
  if (c.from_template) p.generation_prompt = c.generation_prompt;
  return p;
}

}  // namespace

std::unique_ptr<TokenSampler> make_constrained_sampler(const GenerationOptions& o, const OutputConstraint& c,
                                                       const llama_model* model, uint32_t n_ctx) {
  check_grammar_repetitions(c.grammar);
  if (c.lazy && c.triggers.empty()) throw Error::backend("the chat format gave a lazy grammar without triggers");
  common_params_sampling params = sampling_params(o, c, llama_model_get_vocab(model), n_ctx);
  common_sampler* s = nullptr;
  try {
    s = common_sampler_init(model, params);
  } catch (const std::exception& e) {
    throw Error::invalid_input("the grammar does not parse", e.what());
  }
  if (s == nullptr) throw Error::invalid_input("the grammar does not parse (llama.cpp's log says where)");
  return std::make_unique<ConstrainedSampler>(s);
}

}  // namespace kapsl::gguf
