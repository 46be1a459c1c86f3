// GrammarPrefilter must find exactly the tokens llama.cpp's grammar takes: walked through
// grammars token by token on real vocabularies (Qwen 2's byte-level BPE, with its CJK
// tokens and tokens that split a character; llama's SPM with byte fallback), at every step
// its set equals the grammar applied to the whole vocabulary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gguf/engine_impl.h"
#include "gguf/grammar_prefilter.h"
#include "gguf/utf8.h"
#include "llama-cpp.h"
#include "test_models.h"

namespace kapsl {
namespace {

using gguf::TokenPrefixTree;
using gguf::GrammarPrefilter;

// This binary links its own llama.cpp (libkapsl's is hidden); both are built from the same
// source, so libkapsl's code reads this copy's vocabularies and samplers alike.
llama_model_ptr load_vocab(const std::string& file) {
  static const bool initialised = [] {
    llama_backend_init();
    return true;
  }();
  (void)initialised;
  llama_model_params p = llama_model_default_params();
  p.vocab_only = true;
  llama_model_ptr model(llama_model_load_from_file((testing::llama_vocab_dir() + "/" + file).c_str(), p));
  EXPECT_TRUE(model) << file;
  return model;
}

bool taken(const llama_token_data& t) { return !(std::isinf(t.logit) && t.logit < 0); }

// The ids the grammar takes out of `tokens`, ascending.
std::vector<llama_token> apply(llama_sampler* grammar, std::vector<llama_token_data> tokens) {
  llama_token_data_array array = {tokens.data(), tokens.size(), -1, false};
  llama_sampler_apply(grammar, &array);
  std::vector<llama_token> ids;
  for (const auto& t : tokens) {
    if (taken(t)) ids.push_back(t.id);
  }
  return ids;
}

// Whether `text` ends part-way through a UTF-8 character.
bool ends_inside_a_char(const std::string& text) {
  for (size_t back = 1; back <= std::min<size_t>(4, text.size()); ++back) {
    const auto b = static_cast<uint8_t>(text[text.size() - back]);
    if ((b & 0xC0) == 0x80) continue;  // a continuation byte
    const size_t length = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
    return back < length;
  }
  return false;
}

// A sampler that counts the tokens shown to `grammar`, and passes them on to it.
class ShownCount {
 public:
  explicit ShownCount(llama_sampler* grammar) : grammar_(grammar), sampler_(llama_sampler_init(&kIface, this)) {}
  llama_sampler* sampler() { return sampler_.get(); }
  size_t tokens = 0;

 private:
  static const char* name(const llama_sampler*) { return "shown-count"; }
  static void apply(llama_sampler* s, llama_token_data_array* cur) {
    auto* self = static_cast<ShownCount*>(s->ctx);
    self->tokens += cur->size;
    llama_sampler_apply(self->grammar_, cur);
  }
  static llama_sampler_i iface() {
    llama_sampler_i i{};  // the rest may be null
    i.name = name;
    i.apply = apply;
    return i;
  }
  static inline llama_sampler_i kIface = iface();
  llama_sampler* grammar_;
  llama_sampler_ptr sampler_;
};

struct WalkStats {
  int steps = 0;
  int narrowed = 0;  // steps where the grammar was shown fewer tokens than half the vocabulary
  int partial = 0;   // steps inside a character (after a token that split one)
};

// Walks `gbnf` for `steps` tokens, each picked at random among those the grammar takes
// (end of generation left out; every fourth among those that are not whole UTF-8, when
// there are some, for the states inside a character), checking the prefilter at every step.
WalkStats walk(const llama_vocab* vocab, const std::string& gbnf, int steps, uint32_t seed) {
  TokenPrefixTree tree;  // per walk: each walk may have its own vocabulary
  llama_sampler_ptr grammar(llama_sampler_init_grammar(vocab, gbnf.c_str(), "root"));
  EXPECT_TRUE(grammar) << gbnf;
  WalkStats stats;
  if (!grammar) return stats;
  EXPECT_FALSE(gguf::grammar_refers_to_tokens(gbnf)) << gbnf;
  GrammarPrefilter prefilter(tree.of(vocab));
  ShownCount shown(grammar.get());
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  // The model's logits, some of them -inf (masked): the grammar's answer must not depend
  // on them, and the tokens it takes keep their own.
  std::mt19937 rng(seed);
  std::vector<float> logits(static_cast<size_t>(n_vocab));
  std::normal_distribution<float> logit(0.0f, 3.0f);
  for (int32_t i = 0; i < n_vocab; ++i) logits[static_cast<size_t>(i)] = i % 5 == 0 ? -INFINITY : logit(rng);
  std::vector<llama_token_data> every;
  for (int32_t i = 0; i < n_vocab; ++i) every.push_back({i, 0.0f, 0.0f});
  std::string text;  // what the walk wrote
  for (int step = 0; step < steps; ++step) {
    const std::vector<llama_token> expected = apply(grammar.get(), every);
    std::vector<llama_token_data> found;
    shown.tokens = 0;
    prefilter.taken(shown.sampler(), logits.data(), &found);
    std::vector<llama_token> ids;
    for (const auto& t : found) {
      ids.push_back(t.id);
      EXPECT_EQ(std::memcmp(&t.logit, &logits[static_cast<size_t>(t.id)], sizeof(float)), 0) << "token " << t.id;
    }
    EXPECT_EQ(ids, expected) << "step " << step << " of " << gbnf;
    ++stats.steps;
    if (shown.tokens < every.size() / 2) ++stats.narrowed;
    if (ends_inside_a_char(text)) ++stats.partial;
    std::vector<llama_token> next, split;
    for (const llama_token t : expected) {
      if (llama_vocab_is_eog(vocab, t)) continue;
      next.push_back(t);
      if (!gguf::is_valid_utf8(gguf::token_to_piece(vocab, t, true))) split.push_back(t);
    }
    if (step % 4 == 3 && !split.empty()) next = split;
    if (next.empty()) break;
    const llama_token t = next[std::uniform_int_distribution<size_t>(0, next.size() - 1)(rng)];
    llama_sampler_accept(grammar.get(), t);
    text += gguf::token_to_piece(vocab, t, true);
  }
  return stats;
}

// JSON-like: keys, a free string (any character), numbers, optional whitespace.
const std::string kRecordGrammar = R"(root ::= "{" ws "\"name\"" ws ":" ws string ws "," ws "\"age\"" ws ":" ws [1-9] [0-9]{0,3} ws "}"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt] ){0,40} "\""
ws ::= [ \t\n]{0,4})";
// Multi-byte characters only, so that tokens holding part of a character come up.
const std::string kUnicodeGrammar = R"(root ::= ( [α-ω] | [一-龥] | "é" | "ß" | [a-c] )+)";

TEST(GrammarPrefilterTest, LeavesExactlyWhatTheGrammarTakesOnQwen2sVocabulary) {
  const auto model = load_vocab("ggml-vocab-qwen2.gguf");
  ASSERT_TRUE(model);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  const WalkStats record = walk(vocab, kRecordGrammar, 48, 1);
  EXPECT_GT(record.narrowed, 10);  // it does rule tokens out, at the keys and between values
  const WalkStats unicode = walk(vocab, kUnicodeGrammar, 32, 2);
  EXPECT_GT(unicode.narrowed, 5);
  EXPECT_GT(unicode.partial, 0) << "no token split a character: the UTF-8 state went untested";
}

TEST(GrammarPrefilterTest, LeavesExactlyWhatTheGrammarTakesOnAByteFallbackVocabulary) {
  const auto model = load_vocab("ggml-vocab-llama-spm.gguf");
  ASSERT_TRUE(model);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  EXPECT_GT(walk(vocab, kRecordGrammar, 48, 3).narrowed, 10);
  const WalkStats unicode = walk(vocab, kUnicodeGrammar, 32, 4);
  EXPECT_GT(unicode.narrowed, 5);
  EXPECT_GT(unicode.partial, 0) << "no byte token came up: the UTF-8 state went untested";
}

TEST(GrammarPrefilterTest, TokenElementsAreFoundOutsideLiteralsClassesAndComments) {
  EXPECT_TRUE(gguf::grammar_refers_to_tokens(R"(root ::= "a" <[1000]> "b")"));
  EXPECT_TRUE(gguf::grammar_refers_to_tokens(R"(root ::= <|im_end|>)"));
  EXPECT_TRUE(gguf::grammar_refers_to_tokens(R"(root ::= !<[7]>* "x")"));
  EXPECT_FALSE(gguf::grammar_refers_to_tokens(R"(root ::= "<[1000]>" "!" [<!] "\"<" # a <comment>)"));
  EXPECT_FALSE(gguf::grammar_refers_to_tokens(R"(root ::= [\]<] "x")"));
  EXPECT_FALSE(gguf::grammar_refers_to_tokens(kRecordGrammar));
}

}  // namespace
}  // namespace kapsl
