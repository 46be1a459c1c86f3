#include "gguf/sampling.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

void require(bool ok, const char* field, const std::string& expected, double got) {
  if (!ok) {
    throw Error::invalid_input(std::string("generation option ") + field + " out of range",
                               "expected " + expected + ", got " + std::to_string(got));
  }
}

void require_token(int32_t id, int32_t n_vocab, const char* field) {
  if (id < 0 || id >= n_vocab) {
    throw Error::invalid_input(std::string("generation option ") + field + " has an unknown token id",
                               "expected 0 <= id < " + std::to_string(n_vocab) + ", got " + std::to_string(id));
  }
}

// Adds `s` to `chain`, which takes ownership of it.
void add(llama_sampler* chain, llama_sampler* s, const char* what) {
  if (s == nullptr) throw Error::backend(std::string("llama.cpp could not create the ") + what + " sampler");
  llama_sampler_chain_add(chain, s);
}

bool has_penalties(const GenerationOptions& o) {
  return o.repetition_penalty != 1.0f || o.presence_penalty != 0.0f || o.frequency_penalty != 0.0f;
}

int32_t window(int32_t last_n, uint32_t n_ctx) { return last_n < 0 ? static_cast<int32_t>(n_ctx) : last_n; }

void add_dry(llama_sampler* chain, const GenerationOptions& o, const llama_vocab* vocab, uint32_t n_ctx) {
  std::vector<const char*> breakers;
  for (const std::string& b : o.dry_sequence_breakers) breakers.push_back(b.c_str());
  add(chain,
      llama_sampler_init_dry(vocab, o.dry_multiplier, o.dry_base, o.dry_allowed_length, window(o.dry_penalty_last_n, n_ctx),
                             breakers.data(), breakers.size()),
      "DRY");
}

// The stages between the penalties and the draw, unless Mirostat replaces them.
void add_truncations(llama_sampler* chain, const GenerationOptions& o) {
  if (o.top_n_sigma > 0.0f) add(chain, llama_sampler_init_top_n_sigma(o.top_n_sigma), "top-n-sigma");
  if (o.top_k > 0) add(chain, llama_sampler_init_top_k(o.top_k), "top-k");
  if (o.typical_p < 1.0f) add(chain, llama_sampler_init_typical(o.typical_p, 1), "typical-p");
  if (o.top_p < 1.0f) add(chain, llama_sampler_init_top_p(o.top_p, 1), "top-p");
  if (o.min_p > 0.0f) add(chain, llama_sampler_init_min_p(o.min_p, 1), "min-p");
  if (o.xtc_probability > 0.0f) add(chain, llama_sampler_init_xtc(o.xtc_probability, o.xtc_threshold, 1, o.seed), "XTC");
}

}  // namespace

void validate_generation_options(const GenerationOptions& o, int32_t n_vocab) {
  require(std::isfinite(o.temperature) && o.temperature >= 0, "temperature", ">= 0", o.temperature);
  require(o.top_k >= 0, "top_k", ">= 0 (0 = disabled)", o.top_k);
  require(std::isfinite(o.top_p) && o.top_p >= 0 && o.top_p <= 1, "top_p", "in [0, 1]", o.top_p);
  require(std::isfinite(o.min_p) && o.min_p >= 0 && o.min_p <= 1, "min_p", "in [0, 1]", o.min_p);
  require(std::isfinite(o.repetition_penalty) && o.repetition_penalty > 0, "repetition_penalty", "> 0",
          o.repetition_penalty);
  require(std::isfinite(o.presence_penalty), "presence_penalty", "a finite number", o.presence_penalty);
  require(std::isfinite(o.frequency_penalty), "frequency_penalty", "a finite number", o.frequency_penalty);
  require(o.penalty_last_n >= -1, "penalty_last_n", ">= -1 (-1 = whole context)", o.penalty_last_n);
  require(std::isfinite(o.typical_p) && o.typical_p > 0 && o.typical_p <= 1, "typical_p", "in (0, 1]", o.typical_p);
  require(std::isfinite(o.top_n_sigma), "top_n_sigma", "a finite number", o.top_n_sigma);
  require(std::isfinite(o.xtc_probability) && o.xtc_probability >= 0 && o.xtc_probability <= 1, "xtc_probability",
          "in [0, 1]", o.xtc_probability);
  require(std::isfinite(o.xtc_threshold) && o.xtc_threshold >= 0 && o.xtc_threshold <= 1, "xtc_threshold", "in [0, 1]",
          o.xtc_threshold);
  require(std::isfinite(o.dynatemp_range) && o.dynatemp_range >= 0, "dynatemp_range", ">= 0", o.dynatemp_range);
  require(std::isfinite(o.dynatemp_exponent), "dynatemp_exponent", "a finite number", o.dynatemp_exponent);
  require(o.mirostat >= 0 && o.mirostat <= 2, "mirostat", "0, 1 or 2", o.mirostat);
  require(std::isfinite(o.mirostat_tau) && o.mirostat_tau >= 0, "mirostat_tau", ">= 0", o.mirostat_tau);
  require(std::isfinite(o.mirostat_eta) && o.mirostat_eta >= 0, "mirostat_eta", ">= 0", o.mirostat_eta);
  require(std::isfinite(o.dry_multiplier) && o.dry_multiplier >= 0, "dry_multiplier", ">= 0", o.dry_multiplier);
  require(std::isfinite(o.dry_base) && o.dry_base >= 1, "dry_base", ">= 1", o.dry_base);
  require(o.dry_allowed_length >= 0, "dry_allowed_length", ">= 0", o.dry_allowed_length);
  require(o.dry_penalty_last_n >= -1, "dry_penalty_last_n", ">= -1 (-1 = whole context)", o.dry_penalty_last_n);
  require(o.dry_sequence_breakers.size() <= kMaxDryBreakers, "dry_sequence_breakers",
          "at most " + std::to_string(kMaxDryBreakers) + " strings", static_cast<double>(o.dry_sequence_breakers.size()));
  for (const std::string& b : o.dry_sequence_breakers) {
    require(!b.empty() && b.size() <= 64, "dry_sequence_breakers", "strings of 1 to 64 bytes", static_cast<double>(b.size()));
  }
  for (const auto& [id, bias] : o.logit_bias) {
    require_token(id, n_vocab, "logit_bias");
    require(!std::isnan(bias), "logit_bias", "a number (-inf bans the token)", bias);
  }
  for (int32_t id : o.stop_token_ids) require_token(id, n_vocab, "stop_token_ids");
  require(o.top_logprobs <= GenerationOptions::kMaxTopLogprobs, "top_logprobs",
          "at most " + std::to_string(GenerationOptions::kMaxTopLogprobs), o.top_logprobs);
  if (o.top_logprobs > 0 && !o.logprobs) {
    throw Error::invalid_input("generation option top_logprobs needs logprobs", "logprobs is false");
  }
  if (!o.grammar.empty() && !o.json_schema.empty()) {
    throw Error::invalid_input("generation options grammar and json_schema exclude each other", "got both");
  }
  check_json_nesting(o.json_schema, "generation option json_schema");
  const size_t constraint = std::max(o.grammar.size(), o.json_schema.size());
  if (constraint > kMaxGrammarBytes) {
    throw Error::invalid_input("generation option " + std::string(o.grammar.empty() ? "json_schema" : "grammar") +
                                   " is too large",
                               "expected at most " + std::to_string(kMaxGrammarBytes) + " bytes, got " +
                                   std::to_string(constraint));
  }
}

namespace {

// The chain of make_sampler_chain, or argmax for plain greedy requests.
class ChainSampler final : public TokenSampler {
 public:
  ChainSampler(const GenerationOptions& o, const llama_vocab* vocab, uint32_t n_ctx)
      : chain_(make_sampler_chain(o, vocab, n_ctx)), plain_greedy_(is_plain_greedy(o)),
        n_vocab_(llama_vocab_n_tokens(vocab)) {}

  int32_t sample(llama_context* ctx, int32_t idx) override {
    if (!plain_greedy_) return llama_sampler_sample(chain_.get(), ctx, idx);
    const float* logits = llama_get_logits_ith(ctx, idx);
    if (logits == nullptr) throw Error::backend("llama.cpp returned no logits for a sequence that asked for them");
    return argmax_token(logits, n_vocab_);
  }

 private:
  llama_sampler_ptr chain_;
  const bool plain_greedy_;
  const int32_t n_vocab_;
};

}  // namespace

std::unique_ptr<TokenSampler> make_token_sampler(const GenerationOptions& o, const OutputConstraint& constraint,
                                                 const llama_model* model, uint32_t n_ctx,
                                                 std::span<const int32_t> prompt, const ConstraintTables& tables) {
  if (!constraint.grammar.empty()) return make_constrained_sampler(o, constraint, model, n_ctx, prompt, tables);
  return std::make_unique<ChainSampler>(o, llama_model_get_vocab(model), n_ctx);
}

namespace {

// Reads a number at g[*i] (moving *i past it and any spaces); nullopt if there is none.
// Saturates above the limit, which is refused anyway.
std::optional<uint64_t> read_count(const std::string& g, size_t* i) {
  while (*i < g.size() && g[*i] == ' ') ++*i;
  if (*i >= g.size() || g[*i] < '0' || g[*i] > '9') return std::nullopt;
  uint64_t n = 0;
  for (; *i < g.size() && g[*i] >= '0' && g[*i] <= '9'; ++*i) n = std::min<uint64_t>(n * 10 + (g[*i] - '0'), 1u << 30);
  while (*i < g.size() && g[*i] == ' ') ++*i;
  return n;
}

[[noreturn]] void refuse_repetition(const std::string& why) {
  throw Error::invalid_input("the grammar repeats a rule too many times", why);
}

// One repetition {m}, {m,}, {m,n} starting at g[*i] == '{'; returns the copies of its rule
// llama.cpp makes. {m,n} with m > n is refused: llama.cpp would loop for ever on it.
uint64_t repetition_copies(const std::string& g, size_t* i) {
  ++*i;
  const std::optional<uint64_t> lo = read_count(g, i);
  std::optional<uint64_t> hi = lo;
  if (*i < g.size() && g[*i] == ',') {
    ++*i;
    hi = read_count(g, i);
  }
  if (lo && hi && *lo > *hi) refuse_repetition("{m,n} with m > n");
  const uint64_t copies = std::max(lo.value_or(0), hi.value_or(0)) + 1;
  if (copies > kMaxGrammarRepetition + 1) {
    refuse_repetition("expected repetition counts up to " + std::to_string(kMaxGrammarRepetition));
  }
  return copies;
}

}  // namespace

// Reads GBNF just enough to find groups and repetitions: skips "literals", [classes] and
// # comments (with their escapes).
void check_grammar_limits(const std::string& g) {
  int depth = 0;
  uint64_t copies = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    const char c = g[i];
    if (c == '(' && ++depth > kMaxConstraintNesting) {
      throw Error::invalid_input("the grammar nests groups too deeply",
                                 "expected at most " + std::to_string(kMaxConstraintNesting) + " levels");
    } else if (c == ')') {
      --depth;
    } else if (c == '"' || c == '[') {
      const char close = c == '"' ? '"' : ']';
      for (++i; i < g.size() && g[i] != close; ++i) {
        if (g[i] == '\\') ++i;
      }
    } else if (c == '#') {
      while (i < g.size() && g[i] != '\n') ++i;
    } else if (c == '{') {
      copies += repetition_copies(g, &i);
      if (copies > kMaxGrammarCopies) {
        refuse_repetition("its repetitions add up to more than " + std::to_string(kMaxGrammarCopies) + " copies");
      }
    }
  }
}

void check_json_nesting(std::string_view j, const char* what) {
  int depth = 0;
  for (size_t i = 0; i < j.size(); ++i) {
    const char c = j[i];
    if (c == '"') {
      for (++i; i < j.size() && j[i] != '"'; ++i) {
        if (j[i] == '\\') ++i;
      }
    } else if ((c == '[' || c == '{') && ++depth > kMaxConstraintNesting) {
      throw Error::invalid_input(std::string(what) + " nests too deeply",
                                 "expected at most " + std::to_string(kMaxConstraintNesting) + " levels");
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

llama_sampler_ptr make_sampler_chain(const GenerationOptions& o, const llama_vocab* vocab, uint32_t n_ctx) {
  llama_sampler_chain_params params = llama_sampler_chain_default_params();
  params.no_perf = true;
  llama_sampler_ptr chain(llama_sampler_chain_init(params));
  if (!chain) throw Error::backend("llama.cpp could not create a sampler chain");
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  if (!o.logit_bias.empty()) {
    std::vector<llama_logit_bias> bias;
    for (const auto& [id, value] : o.logit_bias) bias.push_back({id, value});
    add(chain.get(), llama_sampler_init_logit_bias(n_vocab, static_cast<int32_t>(bias.size()), bias.data()),
        "logit bias");
  }
  if (has_penalties(o)) {
    add(chain.get(),
        llama_sampler_init_penalties(n_vocab, window(o.penalty_last_n, n_ctx), o.repetition_penalty,
                                     o.frequency_penalty, o.presence_penalty),
        "penalties");
  }
  if (o.dry_multiplier > 0.0f) add_dry(chain.get(), o, vocab, n_ctx);
  if (o.temperature <= 0.0f) {
    add(chain.get(), llama_sampler_init_greedy(), "greedy");
    return chain;
  }
  if (o.mirostat == 1) {
    add(chain.get(), llama_sampler_init_temp(o.temperature), "temperature");
    add(chain.get(), llama_sampler_init_mirostat(n_vocab, o.seed, o.mirostat_tau, o.mirostat_eta, 100), "Mirostat");
    return chain;
  }
  if (o.mirostat == 2) {
    add(chain.get(), llama_sampler_init_temp(o.temperature), "temperature");
    add(chain.get(), llama_sampler_init_mirostat_v2(o.seed, o.mirostat_tau, o.mirostat_eta), "Mirostat 2");
    return chain;
  }
  add_truncations(chain.get(), o);
  add(chain.get(), llama_sampler_init_temp_ext(o.temperature, o.dynatemp_range, o.dynatemp_exponent), "temperature");
  add(chain.get(), llama_sampler_init_dist(o.seed), "distribution");
  return chain;
}

bool is_plain_greedy(const GenerationOptions& o) {
  return o.temperature <= 0.0f && o.logit_bias.empty() && !has_penalties(o) && o.dry_multiplier <= 0.0f;
}

int32_t argmax_token(const float* logits, int32_t n_vocab) {
  // llama.cpp's greedy sampler keeps the first strictly greater logit, so NaNs are never
  // picked unless the first logit is one. The same pick in two passes the compiler can
  // vectorize (the maximum in independent lanes, then its first index): this runs once
  // per generated token on the decoding thread, over the whole vocabulary.
  if (n_vocab <= 0 || std::isnan(logits[0])) return 0;
  constexpr int32_t kLanes = 8;
  float lane[kLanes];
  std::fill(lane, lane + kLanes, logits[0]);
  int32_t i = 0;
  for (; i + kLanes <= n_vocab; i += kLanes) {
    for (int32_t k = 0; k < kLanes; ++k) lane[k] = logits[i + k] > lane[k] ? logits[i + k] : lane[k];
  }
  for (; i < n_vocab; ++i) lane[0] = logits[i] > lane[0] ? logits[i] : lane[0];
  float best = lane[0];
  for (int32_t k = 1; k < kLanes; ++k) best = lane[k] > best ? lane[k] : best;
  for (int32_t j = 0; j < n_vocab; ++j) {
    if (logits[j] == best) return j;
  }
  return 0;  // not reached: best is one of the logits
}

StepLogprobs step_logprobs(const float* logits, int32_t n_vocab, int32_t token, uint32_t top_n) {
  const float max = *std::max_element(logits, logits + n_vocab);
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max));
  const float log_z = max + static_cast<float>(std::log(sum));
  StepLogprobs out;
  out.sampled = logits[token] - log_z;
  // The top_n largest logits, kept in a small min-heap (top_n <= 20) in one pass.
  auto larger = [](const std::pair<int32_t, float>& a, const std::pair<int32_t, float>& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  };
  std::vector<std::pair<int32_t, float>>& top = out.top;
  top.reserve(top_n + 1);
  for (int32_t i = 0; i < n_vocab && top_n > 0; ++i) {
    if (top.size() == top_n && logits[i] <= top.front().second) continue;
    top.emplace_back(i, logits[i]);
    std::push_heap(top.begin(), top.end(), larger);
    if (top.size() > top_n) {
      std::pop_heap(top.begin(), top.end(), larger);
      top.pop_back();
    }
  }
  std::sort_heap(top.begin(), top.end(), larger);
  for (auto& [id, value] : top) value -= log_z;
  return out;
}

bool is_stop_token(const llama_vocab* vocab, const GenerationOptions& o, int32_t token) {
  if (!o.ignore_eos && llama_vocab_is_eog(vocab, token)) return true;
  return std::find(o.stop_token_ids.begin(), o.stop_token_ids.end(), token) != o.stop_token_ids.end();
}

}  // namespace kapsl::gguf
