// The classify and embed decorators: 0.1.1's unit tests, ported.
#include <gtest/gtest.h>

#include <cmath>

#include "tasks/engine_decorator.h"
#include "support/fake_engine.h"
#include "support/test_util.h"

namespace kapsl::internal {
namespace {

using kapsl::testing::expect_error;
using kapsl::testing::FakeEngine;

std::vector<float> values(const Tensor& t) {
  auto d = t.data<float>();
  return {d.begin(), d.end()};
}

Tensor f32(Shape shape, std::vector<float> v) { return Tensor::from_vector<float>(std::move(shape), v); }

TEST(ClassifyTest, UniformRowsGiveUniformProbabilities) {
  Tensor out = ClassifyEngine::classify(f32({2, 4}, {1, 1, 1, 1, -3, -3, -3, -3}), true, "y");
  EXPECT_EQ(out.shape(), (Shape{2, 4}));
  for (float p : values(out)) EXPECT_FLOAT_EQ(p, 0.25f);
}

TEST(ClassifyTest, LargeLogitsStayFinite) {
  std::vector<float> p = values(ClassifyEngine::classify(f32({1, 2}, {1000, 1001}), true, "y"));
  EXPECT_NEAR(p[0], 0.268941f, 1e-5);
  EXPECT_NEAR(p[1], 0.731059f, 1e-5);
}

TEST(ClassifyTest, MonotonicAndSumsToOne) {
  std::vector<float> p = values(ClassifyEngine::classify(f32({1, 3}, {1, 2, 3}), true, "y"));
  EXPECT_NEAR(p[0], 0.09003f, 1e-4);
  EXPECT_NEAR(p[1], 0.24473f, 1e-4);
  EXPECT_NEAR(p[2], 0.66524f, 1e-4);
  EXPECT_LT(p[0], p[1]);
  EXPECT_LT(p[1], p[2]);
  EXPECT_NEAR(p[0] + p[1] + p[2], 1.0f, 1e-5);
}

TEST(ClassifyTest, PassThroughWithoutSoftmax) {
  EXPECT_EQ(values(ClassifyEngine::classify(f32({1, 3}, {1, 2, 3}), false, "y")), (std::vector<float>{1, 2, 3}));
}

TEST(ClassifyTest, RankOneIsPromoted) {
  Tensor out = ClassifyEngine::classify(f32({2}, {7, 7}), true, "y");
  EXPECT_EQ(out.shape(), (Shape{1, 2}));
  EXPECT_EQ(values(out), (std::vector<float>{0.5f, 0.5f}));
}

TEST(ClassifyTest, WrongDtypeOrRankIsRejected) {
  auto engine = std::make_unique<ClassifyEngine>(
      std::make_unique<FakeEngine>("cpu", std::vector<NamedTensor>{{"y", Tensor::from_vector<int64_t>({1, 2}, {1, 2})}}),
      true);
  expect_error([&] { engine->infer({}); }, ErrorCode::kInference, {"classify", "\"y\"", "int64"});
  expect_error([] { ClassifyEngine::classify(f32({1, 1, 2}, {1, 2}), true, "y"); }, ErrorCode::kInference,
               {"[B, C]", "[1, 1, 2]"});
}

TEST(ClassifyTest, LoadTimeCheckOfTheDeclaredOutput) {
  TensorInfo i64{"y", DType::kInt64, true, {-1, 3}, {}, true};
  expect_error([&] { ClassifyEngine(std::make_unique<FakeEngine>("cpu", std::vector<NamedTensor>{}, std::vector{i64}), true); },
               ErrorCode::kModelLoad, {"classify", "int64"});
  TensorInfo rank3{"y", DType::kFloat32, true, {-1, 2, 3}, {}, true};
  expect_error([&] { ClassifyEngine(std::make_unique<FakeEngine>("cpu", std::vector<NamedTensor>{}, std::vector{rank3}), true); },
               ErrorCode::kModelLoad, {"[B, C]"});
}

TEST(ClassifyTest, BadItemFailsOnlyItselfInABatch) {
  ClassifyEngine engine(
      std::make_unique<FakeEngine>("cpu", std::vector<NamedTensor>{{"y", f32({1, 2}, {0, 0})}}), true);
  std::vector<InferenceRequest> reqs(2);
  reqs[1].add_input("fail", f32({1}, {0}));
  std::vector<BatchItemResult> items = engine.infer_batch(reqs);
  ASSERT_EQ(items.size(), 2u);
  ASSERT_TRUE(items[0].ok());
  EXPECT_EQ(values(items[0].result->outputs[0].tensor), (std::vector<float>{0.5f, 0.5f}));
  EXPECT_FALSE(items[1].ok());
}

TEST(EmbedTest, MaskedMean) {
  Tensor hidden = f32({1, 2, 2}, {1, 2, 3, 4});
  Tensor all = Tensor::from_vector<int64_t>({1, 2}, {1, 1});
  Tensor first = Tensor::from_vector<int64_t>({1, 2}, {1, 0});
  EXPECT_EQ(values(EmbedEngine::mean_pool(hidden, &all, false, "h")), (std::vector<float>{2, 3}));
  EXPECT_EQ(values(EmbedEngine::mean_pool(hidden, &first, false, "h")), (std::vector<float>{1, 2}));
  EXPECT_EQ(values(EmbedEngine::mean_pool(hidden, nullptr, false, "h")), (std::vector<float>{2, 3}));
}

TEST(EmbedTest, AllPaddingRowIsFinite) {
  Tensor mask = Tensor::from_vector<int32_t>({1, 2}, {0, 0});
  for (float v : values(EmbedEngine::mean_pool(f32({1, 2, 2}, {1, 2, 3, 4}), &mask, true, "h"))) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_EQ(v, 0.0f);
  }
}

TEST(EmbedTest, L2NormalisationKeepsZeroRowsFinite) {
  std::vector<float> v = values(EmbedEngine::mean_pool(f32({2, 2}, {3, 4, 0, 0}), nullptr, true, "h"));
  EXPECT_NEAR(v[0], 0.6f, 1e-6);
  EXPECT_NEAR(v[1], 0.8f, 1e-6);
  EXPECT_EQ(v[2], 0.0f);
  EXPECT_EQ(v[3], 0.0f);
}

TEST(EmbedTest, TwoDimensionalOutputIsTakenAsPooled) {
  EXPECT_EQ(values(EmbedEngine::mean_pool(f32({1, 2}, {3, 4}), nullptr, false, "h")), (std::vector<float>{3, 4}));
}

TEST(EmbedTest, NonFloatAndBadRankAreRejected) {
  expect_error([] { EmbedEngine::mean_pool(Tensor::from_vector<int64_t>({1, 2}, {1, 2}), nullptr, true, "h"); },
               ErrorCode::kInference, {"\"h\"", "float32", "int64"});
  expect_error([] { EmbedEngine::mean_pool(f32({2}, {1, 2}), nullptr, true, "h"); }, ErrorCode::kInference, {"[B, S, D]"});
}

TEST(EmbedTest, EngineTakesTheMaskFromTheRequest) {
  EmbedEngine engine(std::make_unique<FakeEngine>("cpu", std::vector<NamedTensor>{{"h", f32({1, 2, 2}, {1, 2, 3, 4})}}),
                     false);
  InferenceRequest wrong_size;
  wrong_size.add_input("attention_mask", Tensor::from_vector<int64_t>({1, 3}, {1, 0, 0}));  // not B*S: ignored
  EXPECT_EQ(values(engine.infer(wrong_size).outputs[0].tensor), (std::vector<float>{2, 3}));
  InferenceRequest masked;
  masked.add_input("input_ids", Tensor::from_vector<int64_t>({1, 2}, {5, 0}));
  masked.add_input("encoder_attention_mask", Tensor::from_vector<float>({1, 2}, {1, 0}));
  EXPECT_EQ(values(engine.infer(masked).outputs[0].tensor), (std::vector<float>{1, 2}));
  EXPECT_EQ(engine.model_info().metadata.at("task"), "embed");
  EXPECT_EQ(engine.resident_bytes(), 7u);
}

}  // namespace
}  // namespace kapsl::internal
