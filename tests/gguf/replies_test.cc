// Several replies to one prompt (TextGenerator::generate_n): the prompt is decoded once and
// copied to the other replies' slots, which must then generate exactly as a reply of
// their own would.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "kapsl/gguf_engine.h"
#include "test_models.h"

namespace kapsl {
namespace {

using kapsl::testing::code_of;

class RepliesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GgufOptions o;
    o.n_ctx = 512;
    o.n_parallel = 3;
    o.n_threads = 1;
    engine_ = GgufEngine::load(testing::tiny_spm_model(), o);
  }
  static void TearDownTestSuite() { engine_.reset(); }
  static std::unique_ptr<GgufEngine> engine_;
};
std::unique_ptr<GgufEngine> RepliesTest::engine_;

GenerateRequest request_for(std::string prompt, float temperature, uint32_t seed) {
  GenerateRequest r;
  r.prompt = std::move(prompt);
  r.options.temperature = temperature;
  r.options.seed = seed;
  r.options.max_new_tokens = 16;
  r.options.ignore_eos = true;
  return r;
}

const std::string kPrompt = "In a village by the sea there lived an old fisherman who";

TEST_F(RepliesTest, GreedyRepliesFromACopiedPromptEqualAReplyOfItsOwn) {
  const GenerateRequest r = request_for(kPrompt, 0.0f, 1);
  const std::vector<GenerateResult> replies = engine_->generate_n(r, 3);
  ASSERT_EQ(replies.size(), 3u);
  // A new prompt on each slot first, so that no slot's own cache holds this one.
  engine_->generate_n(request_for("Something else entirely", 0.0f, 1), 3);
  const GenerateResult alone = engine_->generate(r);
  for (const GenerateResult& reply : replies) {
    EXPECT_EQ(reply.tokens, alone.tokens);
    EXPECT_EQ(reply.text, alone.text);
    EXPECT_EQ(reply.usage.finish_reason, FinishReason::kLength);
    EXPECT_EQ(reply.usage.prompt_tokens, alone.usage.prompt_tokens);
  }
}

TEST_F(RepliesTest, TheOtherRepliesDecodeOnlyThePromptsLastToken) {
  engine_->generate_n(request_for("Clear every slot's cache of the prompt", 0.0f, 1), 3);
  const std::vector<GenerateResult> replies = engine_->generate_n(request_for(kPrompt + " sang", 0.0f, 1), 3);
  const uint32_t prompt = replies[0].usage.prompt_tokens;
  ASSERT_GT(prompt, 10u);
  EXPECT_LT(replies[0].usage.cached_prompt_tokens, prompt / 2);  // decoded by the first reply
  EXPECT_EQ(replies[1].usage.cached_prompt_tokens, prompt - 1);
  EXPECT_EQ(replies[2].usage.cached_prompt_tokens, prompt - 1);
}

TEST_F(RepliesTest, SampledRepliesUseSeedPlusIndex) {
  const std::vector<GenerateResult> replies = engine_->generate_n(request_for(kPrompt, 1.0f, 100), 3);
  std::set<std::vector<int32_t>> distinct;
  for (uint32_t i = 0; i < 3; ++i) {
    const GenerateResult alone = engine_->generate(request_for(kPrompt, 1.0f, 100 + i));
    EXPECT_EQ(replies[i].tokens, alone.tokens) << "reply " << i;
    distinct.insert(replies[i].tokens);
  }
  EXPECT_EQ(distinct.size(), 3u);
}

TEST_F(RepliesTest, StreamedChunksCarryTheirReplyIndexAndStoppingOneStopsAll) {
  std::vector<std::string> streamed(3);
  const auto replies = engine_->generate_n(request_for(kPrompt, 0.8f, 5), 3, [&](uint32_t i, const StreamChunk& c) {
    streamed.at(i) += c.text;
    return true;
  });
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(streamed[i], replies[i].text);

  uint32_t chunks = 0;
  const auto stopped = engine_->generate_n(request_for(kPrompt, 0.8f, 5), 3, [&](uint32_t, const StreamChunk&) {
    return ++chunks < 2;
  });
  for (const GenerateResult& r : stopped) EXPECT_EQ(r.usage.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(chunks, 2u);
}

TEST_F(RepliesTest, MoreRepliesThanSlotsAreRefused) {
  EXPECT_EQ(engine_->max_parallel_replies(), 3u);
  EXPECT_EQ(code_of([&] { engine_->generate_n(request_for(kPrompt, 0.0f, 1), 4); }), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of([&] { engine_->generate_n(request_for(kPrompt, 0.0f, 1), 0); }), ErrorCode::kInvalidInput);
}

}  // namespace
}  // namespace kapsl
