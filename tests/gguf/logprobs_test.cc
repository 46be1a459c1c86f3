// Log probabilities of generated tokens, checked against llama.cpp run directly: the same
// prompt and tokens decoded one by one, and the log-softmax of each step's logits.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kapsl/gguf_engine.h"
#include "llama-cpp.h"
#include "test_models.h"

namespace kapsl {
namespace {

using kapsl::testing::code_of;

// The log-softmax of the logits after each of `generated` (the first: after the prompt),
// decoding them one at a time as llama-simple does.
std::vector<std::vector<float>> reference_log_softmax(const std::vector<int32_t>& prompt,
                                                      const std::vector<int32_t>& generated) {
  llama_backend_init();
  llama_model_ptr model(llama_model_load_from_file(testing::tiny_spm_model().c_str(), llama_model_default_params()));
  EXPECT_TRUE(model);
  const int32_t n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model.get()));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_threads = cp.n_threads_batch = 1;
  llama_context_ptr ctx(llama_init_from_model(model.get(), cp));
  std::vector<llama_token> next(prompt.begin(), prompt.end());
  std::vector<std::vector<float>> steps;
  for (size_t i = 0; i < generated.size(); ++i) {
    EXPECT_EQ(llama_decode(ctx.get(), llama_batch_get_one(next.data(), static_cast<int32_t>(next.size()))), 0);
    const float* logits = llama_get_logits_ith(ctx.get(), -1);
    const float max = *std::max_element(logits, logits + n_vocab);
    double sum = 0;
    for (int32_t t = 0; t < n_vocab; ++t) sum += std::exp(static_cast<double>(logits[t]) - max);
    std::vector<float> step(logits, logits + n_vocab);
    for (float& v : step) v = static_cast<float>(v - max - std::log(sum));
    steps.push_back(std::move(step));
    next.assign(1, generated[i]);
  }
  return steps;
}

class LogprobsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GgufOptions o;
    o.n_ctx = 512;
    o.n_threads = 1;
    engine_ = GgufEngine::load(testing::tiny_spm_model(), o);
  }
  static void TearDownTestSuite() { engine_.reset(); }
  static std::unique_ptr<GgufEngine> engine_;
};
std::unique_ptr<GgufEngine> LogprobsTest::engine_;

GenerationOptions with_logprobs(float temperature, uint32_t top) {
  GenerationOptions o;
  o.temperature = temperature;
  o.seed = 11;
  o.max_new_tokens = 12;
  o.ignore_eos = true;
  o.logprobs = true;
  o.top_logprobs = top;
  return o;
}

TEST_F(LogprobsTest, MatchTheLogSoftmaxOfLlamaCppsLogitsAtEachStep) {
  const std::string prompt = "The quick brown fox";
  const GenerateResult r = engine_->generate(prompt, with_logprobs(0.9f, 5));
  ASSERT_EQ(r.tokens.size(), 12u);
  ASSERT_EQ(r.logprobs.size(), r.tokens.size());
  std::string pieces;
  for (const GeneratedLogprob& l : r.logprobs) pieces += l.sampled.piece;
  if (r.text.find("\xEF\xBF\xBD") == std::string::npos) {  // no bytes were replaced
    EXPECT_EQ(pieces, r.text);
  }
  const auto reference = reference_log_softmax(engine_->tokenize(prompt), r.tokens);
  for (size_t i = 0; i < r.tokens.size(); ++i) {
    const GeneratedLogprob& got = r.logprobs[i];
    const std::vector<float>& want = reference[i];
    EXPECT_EQ(got.sampled.token, r.tokens[i]);
    EXPECT_NEAR(got.sampled.logprob, want[static_cast<size_t>(r.tokens[i])], 1e-3) << "step " << i;
    ASSERT_EQ(got.top.size(), 5u);
    std::vector<float> sorted = want;
    std::sort(sorted.begin(), sorted.end(), std::greater<>());
    for (size_t k = 0; k < got.top.size(); ++k) {
      EXPECT_NEAR(got.top[k].logprob, sorted[k], 1e-3) << "step " << i << " rank " << k;
      EXPECT_NEAR(want[static_cast<size_t>(got.top[k].token)], got.top[k].logprob, 1e-3);
    }
  }
}

TEST_F(LogprobsTest, GreedyPicksTheTopTokenAndStreamedChunksCarryTheSameLogprobs) {
  std::vector<GeneratedLogprob> streamed;
  size_t streamed_tokens = 0;
  const GenerateResult r = engine_->generate("Once upon a time", with_logprobs(0.0f, 3), [&](const StreamChunk& c) {
    streamed_tokens += c.tokens.size();
    streamed.insert(streamed.end(), c.logprobs.begin(), c.logprobs.end());
    EXPECT_EQ(c.logprobs.size(), c.tokens.size());
    return true;
  });
  ASSERT_EQ(r.logprobs.size(), r.tokens.size());
  ASSERT_EQ(streamed.size(), streamed_tokens);
  ASSERT_EQ(streamed.size(), r.logprobs.size());
  for (size_t i = 0; i < r.logprobs.size(); ++i) {
    EXPECT_EQ(r.logprobs[i].sampled.token, r.logprobs[i].top.at(0).token);
    EXPECT_EQ(r.logprobs[i].sampled.logprob, r.logprobs[i].top[0].logprob);
    EXPECT_LE(r.logprobs[i].sampled.logprob, 0.0f);
    EXPECT_GE(r.logprobs[i].top[0].logprob, r.logprobs[i].top[1].logprob);
    EXPECT_EQ(streamed[i].sampled.token, r.logprobs[i].sampled.token);
    EXPECT_EQ(streamed[i].sampled.logprob, r.logprobs[i].sampled.logprob);
  }
}

TEST_F(LogprobsTest, AStopTokenThatEndsTheReplyHasNoEntry) {
  GenerationOptions o = with_logprobs(0.0f, 0);
  o.ignore_eos = false;
  const GenerateResult first = engine_->generate("Hello", o);
  ASSERT_FALSE(first.tokens.empty());
  o.stop_token_ids = {first.tokens[0]};
  const GenerateResult r = engine_->generate("Hello", o);
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kStop);
  EXPECT_EQ(r.tokens.size(), 1u);
  EXPECT_TRUE(r.logprobs.empty());
}

TEST_F(LogprobsTest, OutOfRangeRequestsAreRefused) {
  GenerationOptions o = with_logprobs(0.0f, GenerationOptions::kMaxTopLogprobs + 1);
  EXPECT_EQ(code_of([&] { engine_->generate("Hi", o); }), ErrorCode::kInvalidInput);
  o = with_logprobs(0.0f, 2);
  o.logprobs = false;
  EXPECT_EQ(code_of([&] { engine_->generate("Hi", o); }), ErrorCode::kInvalidInput);
  o.top_logprobs = 0;
  EXPECT_TRUE(engine_->generate("Hi", o).logprobs.empty());
}

}  // namespace
}  // namespace kapsl
