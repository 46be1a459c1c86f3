// Embeddings: dimensions, pooling from metadata, normalisation, batching.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "kapsl/gguf_engine.h"
#include "test_models.h"

namespace kapsl {
namespace {

double l2(const std::vector<float>& v) {
  double s = 0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

void expect_near(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "at " << i;
}

using kapsl::testing::code_of;

const std::vector<std::string> kTexts = {"Hello world", "The quick brown fox jumps over the lazy dog",
                                         "kapsl runs GGUF models", "Hello world"};

TEST(GgufEmbeddingsTest, PoolingFromMetadataNormalisedAndBatched) {
  auto engine = GgufEngine::load(testing::tiny_embed_model(), {.n_ctx = 512, .embeddings = true, .n_threads = 1});
  EXPECT_EQ(engine->gguf_info().pooling, "mean");
  const auto batch = engine->embed(kTexts);
  ASSERT_EQ(batch.size(), kTexts.size());
  for (const auto& v : batch) {
    EXPECT_EQ(v.size(), 64u);
    EXPECT_NEAR(l2(v), 1.0, 1e-4);
  }
  expect_near(batch[0], batch[3], 1e-5f);  // same text, same vector
  EXPECT_GT(std::abs(batch[0][0] - batch[1][0]) + std::abs(batch[0][1] - batch[1][1]), 1e-4f);
  for (size_t i = 0; i < kTexts.size(); ++i) {
    expect_near(engine->embed(std::span(&kTexts[i], 1))[0], batch[i], 1e-3f);  // batching changes nothing
  }
  const auto raw = engine->embed(std::span(&kTexts[1], 1), false)[0];
  expect_near(std::vector<float>{raw[0] / static_cast<float>(l2(raw))}, std::vector<float>{batch[1][0]}, 1e-4f);
}

TEST(GgufEmbeddingsTest, ModelWithoutPoolingIsMeanPooledByKapsl) {
  // The same weights without a pooling key: kapsl's own mean must match llama.cpp's.
  auto pooled = GgufEngine::load(testing::tiny_embed_model(), {.n_ctx = 512, .embeddings = true, .n_threads = 1});
  auto none = GgufEngine::load(testing::tiny_embed_nopool_model(), {.n_ctx = 512, .embeddings = true, .n_threads = 1});
  EXPECT_EQ(none->gguf_info().pooling, "none");
  const auto a = pooled->embed(kTexts);
  const auto b = none->embed(kTexts);
  for (size_t i = 0; i < a.size(); ++i) expect_near(a[i], b[i], 1e-3f);
}

TEST(GgufEmbeddingsTest, ModeMismatchesAreUnavailable) {
  auto embedder = GgufEngine::load(testing::tiny_embed_model(), {.n_ctx = 512, .embeddings = true, .n_threads = 1});
  EXPECT_EQ(code_of([&] { embedder->generate("Hello"); }), ErrorCode::kUnavailable);
  auto generator = GgufEngine::load(testing::tiny_spm_model(), {.n_ctx = 512, .n_threads = 1});
  EXPECT_EQ(code_of([&] { generator->embed(kTexts); }), ErrorCode::kUnavailable);
}

TEST(GgufEmbeddingsTest, TooLongTextIsInvalidInput) {
  auto engine = GgufEngine::load(testing::tiny_embed_model(), {.n_ctx = 64, .embeddings = true, .n_threads = 1});
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "word ";
  const std::vector<std::string> texts = {long_text};
  EXPECT_EQ(code_of([&] { engine->embed(texts); }), ErrorCode::kInvalidInput);
}

TEST(GgufEmbeddingsTest, InferReturnsAMatrix) {
  auto engine = GgufEngine::load(testing::tiny_embed_model(), {.n_ctx = 512, .embeddings = true, .n_threads = 1});
  auto req = InferenceRequest::with_main_input(Tensor::from_strings({2}, {kTexts[0], kTexts[1]}));
  const auto r = engine->infer(req);
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].name, "embeddings");
  EXPECT_EQ(r.outputs[0].tensor.shape(), (Shape{2, 64}));
}

}  // namespace
}  // namespace kapsl
