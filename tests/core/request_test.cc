#include "kapsl/request.h"

#include <gtest/gtest.h>

#include <thread>

namespace kapsl {
namespace {

TEST(RequestTest, MainInputAndNamedInputs) {
  InferenceRequest r = InferenceRequest::with_main_input(Tensor::zeros(DType::kFloat32, {1}));
  r.add_input("mask", Tensor::zeros(DType::kInt64, {1, 4}));
  ASSERT_NE(r.find_input(kMainInput), nullptr);
  ASSERT_NE(r.find_input("mask"), nullptr);
  EXPECT_EQ(r.find_input("mask")->shape(), (Shape{1, 4}));
  EXPECT_EQ(r.find_input("nope"), nullptr);
}

TEST(RequestTest, CancellationIsSharedBetweenCopies) {
  InferenceRequest r;
  CancellationToken token = r.cancel;
  EXPECT_NO_THROW(r.throw_if_stopped());
  std::thread([token]() mutable { token.cancel(); }).join();
  EXPECT_TRUE(r.cancel.is_cancelled());
  try {
    r.throw_if_stopped();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled);
  }
}

TEST(RequestTest, DeadlineExpires) {
  InferenceRequest r;
  EXPECT_FALSE(r.expired());
  r.deadline = Clock::now() - std::chrono::milliseconds(1);
  EXPECT_TRUE(r.expired());
  try {
    r.throw_if_stopped();
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout);
  }
  r.set_timeout(std::chrono::hours(1));
  EXPECT_FALSE(r.expired());
}

TEST(RequestTest, GenerationDefaultsAreLlamaCpps) {
  const GenerationOptions g;
  EXPECT_EQ(g.max_new_tokens, 512u);
  EXPECT_FLOAT_EQ(g.temperature, 0.8f);
  EXPECT_EQ(g.top_k, 40);
  EXPECT_FLOAT_EQ(g.top_p, 0.95f);
  EXPECT_FLOAT_EQ(g.min_p, 0.05f);
  EXPECT_EQ(g.seed, GenerationOptions::kRandomSeed);
}

}  // namespace
}  // namespace kapsl
