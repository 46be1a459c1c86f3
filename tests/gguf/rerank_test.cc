// Reranking (GgufEngine as a Reranker) on a random-weight model of Qwen3-Reranker's shape,
// checked against llama.cpp run directly on the same pair of texts.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kapsl/gguf_engine.h"
#include "llama-cpp.h"
#include "test_models.h"

namespace kapsl {
namespace {

using kapsl::testing::code_of;

// llama.cpp's rank pooling on one pair, decoded alone: BOS query document (the SPM
// vocabulary adds BOS and neither EOS nor SEP).
float reference_score(const std::string& query, const std::string& document) {
  llama_backend_init();
  llama_model_ptr model(llama_model_load_from_file(testing::tiny_rerank_model().c_str(), llama_model_default_params()));
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  std::vector<llama_token> tokens{llama_vocab_bos(vocab)};
  for (const std::string* text : {&query, &document}) {
    std::vector<llama_token> t(text->size() + 8);
    const int n = llama_tokenize(vocab, text->c_str(), static_cast<int32_t>(text->size()), t.data(),
                                 static_cast<int32_t>(t.size()), false, false);
    tokens.insert(tokens.end(), t.begin(), t.begin() + n);
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_threads = cp.n_threads_batch = 1;
  cp.embeddings = true;
  cp.pooling_type = LLAMA_POOLING_TYPE_RANK;
  llama_context_ptr ctx(llama_init_from_model(model.get(), cp));
  EXPECT_EQ(llama_decode(ctx.get(), llama_batch_get_one(tokens.data(), static_cast<int32_t>(tokens.size()))), 0);
  return llama_get_embeddings_seq(ctx.get(), 0)[0];
}

class RerankTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GgufOptions o;
    o.reranking = true;
    o.n_threads = 1;
    engine_ = GgufEngine::load(testing::tiny_rerank_model(), o);
  }
  static void TearDownTestSuite() { engine_.reset(); }
  static std::unique_ptr<GgufEngine> engine_;
};
std::unique_ptr<GgufEngine> RerankTest::engine_;

const std::string kQuery = "what do cats eat";
const std::vector<std::string> kDocuments = {"Cats are carnivores and eat meat.", "The stock market fell today.",
                                             "A recipe for bread.", "Kittens drink milk"};

TEST_F(RerankTest, ScoresMatchLlamaCppsRankPoolingOnEachPairAlone) {
  const RerankScores r = engine_->rerank(kQuery, kDocuments);
  ASSERT_EQ(r.scores.size(), kDocuments.size());
  EXPECT_GT(r.prompt_tokens, 4 * engine_->tokenize(kQuery).size());
  for (size_t i = 0; i < kDocuments.size(); ++i) {
    EXPECT_NEAR(r.scores[i], reference_score(kQuery, kDocuments[i]), 1e-4) << "document " << i;
    EXPECT_GT(r.scores[i], 0.0f);  // a yes/no head's softmax: P(yes)
    EXPECT_LT(r.scores[i], 1.0f);
  }
}

TEST_F(RerankTest, APairScoresTheSameInAnyBatch) {
  const RerankScores all = engine_->rerank(kQuery, kDocuments);
  for (size_t i = 0; i < kDocuments.size(); ++i) {
    const std::vector<std::string> one{kDocuments[i]};
    EXPECT_NEAR(engine_->rerank(kQuery, one).scores.at(0), all.scores[i], 1e-4) << "document " << i;
  }
}

TEST_F(RerankTest, IsARerankerOnlyAndRefusesBadCalls) {
  EXPECT_NE(engine_->reranker(), nullptr);
  EXPECT_EQ(engine_->embedder(), nullptr);
  EXPECT_EQ(engine_->text_generator(), nullptr);
  EXPECT_EQ(code_of([&] { engine_->embed(kDocuments); }), ErrorCode::kUnavailable);
  EXPECT_EQ(code_of([&] { engine_->rerank(kQuery, {}); }), ErrorCode::kInvalidInput);
  const std::vector<std::string> huge{std::string(20000, 'x')};
  EXPECT_EQ(code_of([&] { engine_->rerank(kQuery, huge); }), ErrorCode::kInvalidInput);

  GgufOptions o;
  o.embeddings = true;
  o.n_threads = 1;
  const auto embedder = GgufEngine::load(testing::tiny_embed_model(), o);
  EXPECT_EQ(embedder->reranker(), nullptr);
  EXPECT_EQ(code_of([&] { embedder->rerank(kQuery, kDocuments); }), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace kapsl
