// OnnxEngine under concurrency: parallel infer, cancellation and deadlines through the
// terminate flag, and infer_batch.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "kapsl/onnx_engine.h"
#include "onnx/test_models.h"

namespace kapsl {
namespace {

std::unique_ptr<OnnxEngine> load(const std::string& model, OnnxOptions o = {}) {
  return OnnxEngine::load_from_memory(std::as_bytes(std::span(model.data(), model.size())), o);
}

Tensor f32(Shape s, std::vector<float> v) { return Tensor::from_vector<float>(std::move(s), v); }

InferenceRequest loop_request(int64_t trip) {
  InferenceRequest r;
  r.add_input("trip", Tensor::from_vector<int64_t>({}, {trip})).add_input("x", f32({1}, {3}));
  return r;
}

constexpr int64_t kForever = int64_t{1} << 62;

TEST(OnnxConcurrency, ParallelInferCallsOnOneEngineAreAllCorrect) {
  auto engine = load(testing::add_model({-1, 4}));
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const auto v = static_cast<float>(t * 1000 + i);
        InferenceRequest r;
        r.add_input("a", f32({1, 4}, {v, v, v, v})).add_input("b", f32({1, 4}, {1, 2, 3, 4}));
        if (engine->infer(r).outputs.at(0).tensor != f32({1, 4}, {v + 1, v + 2, v + 3, v + 4})) ++wrong;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(engine->metrics().requests, 800u);
}

TEST(OnnxConcurrency, CancellingARunningRequestStopsItAndTheEngineKeepsServing) {
  auto engine = load(testing::loop_model());
  InferenceRequest endless = loop_request(kForever);
  std::thread canceller([&] {
    while (engine->metrics().in_flight == 0) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // let Run get going
    endless.cancel.cancel();
  });
  try {
    engine->infer(endless);
    ADD_FAILURE() << "an endless run returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled) << e.what();
  }
  canceller.join();
  EXPECT_EQ(engine->infer(loop_request(3)).outputs.at(0).tensor, f32({1}, {-3}));
  EXPECT_EQ(engine->metrics().cancelled, 1u);
}

TEST(OnnxConcurrency, ADeadlinePassingDuringARunIsATimeout) {
  auto engine = load(testing::loop_model());
  InferenceRequest endless = loop_request(kForever);
  endless.set_timeout(std::chrono::milliseconds(30));
  try {
    engine->infer(endless);
    ADD_FAILURE() << "an endless run returned";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout) << e.what();
  }
  EXPECT_EQ(engine->infer(loop_request(2)).outputs.at(0).tensor, f32({1}, {3}));
  EXPECT_EQ(engine->metrics().timeouts, 1u);
}

TEST(OnnxConcurrency, OnlyTheCancelledOneOfConcurrentRunsStops) {
  auto engine = load(testing::loop_model());
  InferenceRequest endless = loop_request(kForever);
  std::atomic<bool> done{false};
  std::thread runner([&] {
    try {
      engine->infer(endless);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kCancelled);
    }
    done = true;
  });
  while (engine->metrics().in_flight == 0) std::this_thread::yield();
  for (int i = 0; i < 20; ++i) EXPECT_EQ(engine->infer(loop_request(1)).outputs.at(0).tensor, f32({1}, {-3}));
  EXPECT_FALSE(done.load());  // the endless run is still running
  endless.cancel.cancel();
  runner.join();
}

TEST(OnnxConcurrency, StoppedRequestsFailBeforeRunning) {
  auto engine = load(testing::loop_model());
  InferenceRequest cancelled = loop_request(1);
  cancelled.cancel.cancel();
  EXPECT_EQ([&] { try { engine->infer(cancelled); } catch (const Error& e) { return e.code(); } return ErrorCode::kBackend; }(),
            ErrorCode::kCancelled);
  InferenceRequest late = loop_request(1);
  late.deadline = Clock::now() - std::chrono::seconds(1);
  EXPECT_EQ([&] { try { engine->infer(late); } catch (const Error& e) { return e.code(); } return ErrorCode::kBackend; }(),
            ErrorCode::kTimeout);
}

InferenceRequest add_request(int64_t rows, float base) {
  std::vector<float> a, b;
  for (int64_t i = 0; i < rows * 4; ++i) {
    a.push_back(base + static_cast<float>(i));
    b.push_back(100.0f);
  }
  InferenceRequest r;
  r.add_input("a", f32({rows, 4}, a)).add_input("b", f32({rows, 4}, b));
  return r;
}

TEST(OnnxBatch, SameShapedRequestsRunAsOneBatchAndSplitPerRequest) {
  auto engine = load(testing::add_model({-1, 4}));
  std::vector<InferenceRequest> requests = {add_request(1, 0), add_request(2, 10), add_request(1, 50)};
  const auto items = engine->infer_batch(requests);
  ASSERT_EQ(items.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(items[i].ok()) << items[i].error->what();
    EXPECT_EQ(items[i].result->outputs.at(0).tensor, engine->infer(requests[i]).outputs.at(0).tensor);
  }
  EXPECT_EQ(engine->metrics().requests, 1u + 3u);  // one joint run, then the three checks
}

TEST(OnnxBatch, ABadRequestFailsOnlyItself) {
  auto engine = load(testing::add_model({-1, 4}));
  std::vector<InferenceRequest> requests = {add_request(1, 0), add_request(1, 1), add_request(1, 2)};
  requests[1].inputs[1].tensor = Tensor::from_vector<int32_t>({1, 4}, {1, 2, 3, 4});
  const auto items = engine->infer_batch(requests);
  EXPECT_TRUE(items[0].ok());
  ASSERT_FALSE(items[1].ok());
  EXPECT_EQ(items[1].error->code(), ErrorCode::kInvalidInput);
  EXPECT_TRUE(items[2].ok());
  EXPECT_EQ(items[2].result->outputs.at(0).tensor, f32({1, 4}, {102, 103, 104, 105}));
}

TEST(OnnxBatch, DifferentShapesOrFixedBatchRunPerRequest) {
  auto engine = load(testing::add_model({-1, -1}));
  std::vector<InferenceRequest> requests = {add_request(1, 0), add_request(1, 0)};
  requests[1].inputs[0].tensor = f32({1, 2}, {1, 2});
  requests[1].inputs[1].tensor = f32({1, 2}, {3, 4});
  auto items = engine->infer_batch(requests);
  ASSERT_TRUE(items[1].ok());
  EXPECT_EQ(items[1].result->outputs.at(0).tensor, f32({1, 2}, {4, 6}));
  EXPECT_EQ(engine->metrics().requests, 2u);
  auto fixed = load(testing::add_model({1, 4}));
  std::vector<InferenceRequest> same = {add_request(1, 0), add_request(1, 5)};
  items = fixed->infer_batch(same);
  EXPECT_TRUE(items[0].ok() && items[1].ok());
  EXPECT_EQ(fixed->metrics().requests, 2u);
}

TEST(OnnxBatch, ACancelledRequestInABatchFailsAlone) {
  auto engine = load(testing::add_model({-1, 4}));
  std::vector<InferenceRequest> requests = {add_request(1, 0), add_request(1, 1)};
  requests[0].cancel.cancel();
  const auto items = engine->infer_batch(requests);
  ASSERT_FALSE(items[0].ok());
  EXPECT_EQ(items[0].error->code(), ErrorCode::kCancelled);
  EXPECT_TRUE(items[1].ok());
}

}  // namespace
}  // namespace kapsl
