// DynamicBatcher over real ONNX Runtime engines: batched results equal unbatched ones
// element for element, whatever the dtype; requests of other shapes, bad requests and
// cancelled ones affect only themselves; the queue's bounds hold. Batches are made
// deterministic by a long max_queue_delay and a max_batch_size the test fills exactly, so
// no assertion depends on timing.
#include <gtest/gtest.h>

#include <onnx/onnx_pb.h>

#include <atomic>
#include <future>
#include <random>
#include <thread>

#include "kapsl/dynamic_batcher.h"
#include "kapsl/onnx_engine.h"
#include "onnx/test_models.h"

namespace kapsl {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using TP = ::onnx::TensorProto;

std::shared_ptr<Engine> load(const std::string& model) {
  return OnnxEngine::load_from_memory(std::as_bytes(std::span(model.data(), model.size())), {});
}

DynamicBatchingOptions waiting_for(uint32_t rows) {
  DynamicBatchingOptions o;
  o.max_batch_size = rows;
  o.max_queue_delay = std::chrono::duration_cast<std::chrono::microseconds>(seconds(30));  // only a full batch runs
  return o;
}

InferenceRequest request_x(Tensor x) {
  InferenceRequest r;
  r.add_input("x", std::move(x));
  return r;
}

// Runs every request on its own thread at once; results or errors in order.
std::vector<BatchItemResult> concurrently(Engine& engine, const std::vector<InferenceRequest>& requests) {
  std::vector<std::future<InferenceResult>> futures;
  for (const auto& r : requests) futures.push_back(std::async(std::launch::async, [&] { return engine.infer(r); }));
  std::vector<BatchItemResult> out(requests.size());
  for (size_t i = 0; i < futures.size(); ++i) {
    try {
      out[i].result = futures[i].get();
    } catch (const Error& e) {
      out[i].error = e;
    }
  }
  return out;
}

// A tensor of `dtype` with rows x 3 distinct elements derived from `seed`.
Tensor sample(DType dtype, int64_t rows, int seed) {
  const Shape shape{rows, 3};
  const auto n = static_cast<size_t>(rows * 3);
  std::vector<std::string> strings;
  Tensor t = Tensor::zeros(dtype, shape);
  if (dtype == DType::kString) {
    for (size_t i = 0; i < n; ++i) strings.push_back("s" + std::to_string(seed) + "." + std::to_string(i));
    return Tensor::from_strings(shape, strings);
  }
  auto bytes = t.mutable_bytes();
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>((seed * 31 + static_cast<int>(i)) % 2 ? 1 : 0);
  if (dtype != DType::kBool) {
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::byte>(seed * 37 + static_cast<int>(i) * 11);
  }
  return t;
}

struct DtypeCase {
  DType dtype;
  int onnx_type;
};

TEST(DynamicBatcher, BatchedResultsEqualUnbatchedForEveryDtype) {
  const DtypeCase cases[] = {{DType::kFloat32, TP::FLOAT},  {DType::kFloat64, TP::DOUBLE}, {DType::kInt64, TP::INT64},
                             {DType::kInt32, TP::INT32},    {DType::kUInt8, TP::UINT8},    {DType::kInt8, TP::INT8},
                             {DType::kFloat16, TP::FLOAT16}, {DType::kBool, TP::BOOL},     {DType::kString, TP::STRING}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(dtype_name(c.dtype)));
    auto inner = load(testing::identity_model(c.onnx_type, {-1, 3}));
    DynamicBatcher batcher(inner, waiting_for(6));  // rows 1 + 2 + 3: one execution
    std::vector<InferenceRequest> requests;
    for (int rows = 1; rows <= 3; ++rows) requests.push_back(request_x(sample(c.dtype, rows, rows)));
    const auto items = concurrently(batcher, requests);
    for (size_t i = 0; i < items.size(); ++i) {
      ASSERT_TRUE(items[i].ok()) << items[i].error->what();
      EXPECT_EQ(items[i].result->outputs.at(0).tensor, inner->infer(requests[i]).outputs.at(0).tensor);
      ASSERT_TRUE(items[i].result->timing);
      EXPECT_EQ(items[i].result->timing->batch_requests, 3u);
      EXPECT_EQ(items[i].result->timing->batch_rows, 6);
    }
    int executions = 0;
    for (const auto& item : items) executions += item.result->timing->counts_execution ? 1 : 0;
    EXPECT_EQ(executions, 1);
  }
}

TEST(DynamicBatcher, AComputedModelGivesTheSameNumbersBatched) {
  auto inner = load(testing::matmul_relu_model(16));
  DynamicBatcher batcher(inner, waiting_for(8));
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> value(-1, 1);
  std::vector<InferenceRequest> requests;
  for (int64_t rows : {1, 3, 4}) {
    std::vector<float> v(static_cast<size_t>(rows * 16));
    for (auto& x : v) x = value(rng);
    requests.push_back(request_x(Tensor::from_vector<float>({rows, 16}, v)));
  }
  const auto items = concurrently(batcher, requests);
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_TRUE(items[i].ok()) << items[i].error->what();
    EXPECT_EQ(items[i].result->timing->batch_requests, 3u);
    // Element for element: row r of a batch is computed as row r alone would be.
    EXPECT_EQ(items[i].result->outputs.at(0).tensor, inner->infer(requests[i]).outputs.at(0).tensor);
  }
}

TEST(DynamicBatcher, OtherShapesRunInTheirOwnExecutions) {
  auto inner = load(testing::identity_model(TP::FLOAT, {-1, -1}));
  DynamicBatcher batcher(inner, waiting_for(2));
  std::vector<InferenceRequest> requests;
  for (int i = 0; i < 4; ++i) {  // two of width 3, two of width 5: two full batches
    const int64_t width = i % 2 ? 5 : 3;
    requests.push_back(request_x(Tensor::from_vector<float>({1, width}, std::vector<float>(static_cast<size_t>(width), float(i)))));
  }
  const auto items = concurrently(batcher, requests);
  for (size_t i = 0; i < items.size(); ++i) {
    ASSERT_TRUE(items[i].ok()) << items[i].error->what();
    EXPECT_EQ(items[i].result->outputs.at(0).tensor, requests[i].inputs[0].tensor);
    EXPECT_EQ(items[i].result->timing->batch_requests, 2u);
  }
}

// y = table[idx] with table = 0..9: an index out of range fails the run it is in.
std::string gather_model() {
  testing::GraphBuilder g("gather");
  g.input("idx", TP::INT64, {-1}).output("y", TP::FLOAT, {-1});
  g.float_initializer("table", {10}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  g.node("Gather", {"table", "idx"}, {"y"});
  return g.serialize();
}

TEST(DynamicBatcher, ABadRequestFailsAloneAndTheRestOfItsBatchSucceeds) {
  auto inner = load(gather_model());
  DynamicBatcher batcher(inner, waiting_for(3));
  std::vector<InferenceRequest> requests;
  for (int64_t idx : {2, 100, 7}) {  // 100 is out of range, but the request joins the batch
    InferenceRequest r;
    r.add_input("idx", Tensor::from_vector<int64_t>({1}, {idx}));
    requests.push_back(std::move(r));
  }
  const auto items = concurrently(batcher, requests);
  ASSERT_FALSE(items[1].ok());
  EXPECT_EQ(items[1].error->code(), ErrorCode::kInvalidInput) << items[1].error->what();
  ASSERT_TRUE(items[0].ok()) << items[0].error->what();
  ASSERT_TRUE(items[2].ok()) << items[2].error->what();
  EXPECT_EQ(items[0].result->outputs.at(0).tensor, Tensor::from_vector<float>({1}, {2}));
  EXPECT_EQ(items[2].result->outputs.at(0).tensor, Tensor::from_vector<float>({1}, {7}));
}

TEST(DynamicBatcher, ARequestWhoseInputsDisagreeOnRowsRunsAlone) {
  auto inner = load(testing::add_model({-1, 2}));
  DynamicBatcher batcher(inner, waiting_for(2));
  InferenceRequest odd;  // first dims 1 and 3 (broadcast by Add): no row count to batch by
  odd.add_input("a", Tensor::from_vector<float>({1, 2}, {1, 2})).add_input("b", Tensor::from_vector<float>({3, 2}, {1, 2, 3, 4, 5, 6}));
  InferenceRequest good;
  good.add_input("a", Tensor::from_vector<float>({1, 2}, {1, 2})).add_input("b", Tensor::from_vector<float>({1, 2}, {3, 4}));
  const auto items = concurrently(batcher, {odd, good, good});
  ASSERT_TRUE(items[0].ok()) << items[0].error->what();  // at once, not after the 30 s delay
  EXPECT_EQ(items[0].result->outputs.at(0).tensor, Tensor::from_vector<float>({3, 2}, {2, 4, 4, 6, 6, 8}));
  EXPECT_EQ(items[0].result->timing->batch_requests, 1u);
  for (size_t i : {1u, 2u}) {
    ASSERT_TRUE(items[i].ok()) << items[i].error->what();
    EXPECT_EQ(items[i].result->outputs.at(0).tensor, Tensor::from_vector<float>({1, 2}, {4, 6}));
  }
}

// Waits until the batcher holds `n` queued requests.
void wait_queued(const Engine& engine, uint64_t n) {
  while (engine.metrics().queued < n) std::this_thread::sleep_for(milliseconds(1));
}

// Waits until the batcher holds exactly `n` queued requests.
void wait_queued_exactly(const Engine& engine, uint64_t n) {
  while (engine.metrics().queued != n) std::this_thread::sleep_for(milliseconds(1));
}

TEST(DynamicBatcher, ACancelledRequestLeavesTheQueueAndTheOthersRunWithoutIt) {
  auto inner = load(testing::identity_model(TP::FLOAT, {-1, 1}));
  DynamicBatcher batcher(inner, waiting_for(3));
  std::vector<InferenceRequest> r;
  for (float v : {1, 2, 3, 4}) r.push_back(request_x(Tensor::from_vector<float>({1, 1}, {v})));
  auto first = std::async(std::launch::async, [&] { return batcher.infer(r[0]); });
  auto cancelled = std::async(std::launch::async, [&] { return batcher.infer(r[1]); });
  wait_queued_exactly(batcher, 2);  // both wait for a third
  r[1].cancel.cancel();
  try {
    cancelled.get();
    ADD_FAILURE() << "a cancelled request returned a result";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kCancelled) << e.what();
  }
  wait_queued_exactly(batcher, 1);
  const auto rest = concurrently(batcher, {r[2], r[3]});  // with r[0]: a full batch without r[1]
  const InferenceResult one = first.get();
  EXPECT_EQ(one.outputs.at(0).tensor, r[0].inputs[0].tensor);
  EXPECT_EQ(one.timing->batch_requests, 3u);
  for (size_t i = 0; i < rest.size(); ++i) {
    ASSERT_TRUE(rest[i].ok()) << rest[i].error->what();
    EXPECT_EQ(rest[i].result->outputs.at(0).tensor, r[i + 2].inputs[0].tensor);
  }
}

TEST(DynamicBatcher, QueueBoundsHold) {
  auto inner = load(testing::identity_model(TP::FLOAT, {-1, 1}));
  DynamicBatchingOptions options = waiting_for(8);
  options.max_queue = 1;
  options.queue_timeout = milliseconds(50);
  DynamicBatcher batcher(inner, options);
  const InferenceRequest r = request_x(Tensor::from_vector<float>({1, 1}, {1}));
  auto waiting = std::async(std::launch::async, [&] { return batcher.infer(r); });
  wait_queued(batcher, 1);
  try {
    batcher.infer(r);  // the queue holds one
    ADD_FAILURE() << "a second request fit a queue of one";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kOverloaded) << e.what();
  }
  try {
    waiting.get();  // never joined by a second: the queue timeout ends it
    ADD_FAILURE() << "a lone request in a batch of 8 ran before its 30 s delay";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout) << e.what();
  }
  InferenceRequest with_deadline = r;
  with_deadline.set_timeout(milliseconds(20));
  options.queue_timeout = milliseconds(0);
  DynamicBatcher patient(inner, options);
  try {
    patient.infer(with_deadline);
    ADD_FAILURE() << "a request outlived its deadline in the queue";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout) << e.what();
  }
}

TEST(DynamicBatcher, APreferredSizeStartsAnExecutionWithoutWaiting) {
  auto inner = load(testing::identity_model(TP::FLOAT, {-1, 1}));
  DynamicBatchingOptions options = waiting_for(8);
  options.preferred_batch_sizes = {2};
  DynamicBatcher batcher(inner, options);
  std::vector<InferenceRequest> requests(2, request_x(Tensor::from_vector<float>({1, 1}, {1})));
  for (auto& r : requests) r.set_timeout(seconds(10));  // far less than the 30 s delay
  for (const auto& item : concurrently(batcher, requests)) {
    ASSERT_TRUE(item.ok()) << item.error->what();
    EXPECT_EQ(item.result->timing->batch_requests, 2u);
  }
}

TEST(DynamicBatcher, IdleInstancesShareWhatWaitsAndALoneRequestRunsAtOnce) {
  auto inner = load(testing::identity_model(TP::FLOAT, {-1, 1}));
  DynamicBatchingOptions options = waiting_for(8);
  options.instances = 2;
  DynamicBatcher balanced(inner, options);
  InferenceRequest lone = request_x(Tensor::from_vector<float>({1, 1}, {1}));
  lone.set_timeout(seconds(10));  // far less than the 30 s delay: only balancing lets it run
  const InferenceResult result = balanced.infer(lone);
  EXPECT_EQ(result.outputs.at(0).tensor, lone.inputs[0].tensor);
  EXPECT_EQ(result.timing->batch_requests, 1u);

  options.balance_instances = false;  // Triton's policy: the lone request waits for company
  DynamicBatcher triton(inner, options);
  lone.set_timeout(milliseconds(100));
  try {
    triton.infer(lone);
    ADD_FAILURE() << "without balancing a lone request ran before its delay";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kTimeout) << e.what();
  }
}

TEST(DynamicBatcher, ARequestTooLargeForABatchRunsAlone) {
  auto inner = load(testing::identity_model(TP::FLOAT, {-1, 1}));
  DynamicBatcher batcher(inner, waiting_for(2));
  const InferenceRequest big = request_x(Tensor::from_vector<float>({3, 1}, {1, 2, 3}));
  const InferenceResult result = batcher.infer(big);  // would wait 30 s if it queued
  EXPECT_EQ(result.outputs.at(0).tensor, big.inputs[0].tensor);
  EXPECT_EQ(result.timing->batch_requests, 1u);
}

TEST(DynamicBatcher, ModelsWithoutABatchDimensionAreRefused) {
  try {
    DynamicBatcher batcher(load(testing::identity_model(TP::FLOAT, {2, 3})), {});
    ADD_FAILURE() << "a fixed first dimension was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("input 'x' has shape [2, 3]"), std::string::npos) << e.what();
  }
  DynamicBatchingOptions bad;
  bad.preferred_batch_sizes = {16};  // above max_batch_size 8
  EXPECT_THROW(DynamicBatcher(load(testing::identity_model(TP::FLOAT, {-1, 3})), bad), Error);
}

TEST(DynamicBatcher, ManyClientsAtOnceAllGetTheirOwnRows) {
  auto inner = load(testing::matmul_relu_model(8));
  DynamicBatchingOptions options;
  options.max_batch_size = 8;
  options.max_queue_delay = std::chrono::microseconds(200);
  options.instances = 2;
  DynamicBatcher batcher(inner, options);
  std::atomic<int> wrong{0}, batched{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        std::vector<float> v(8, static_cast<float>(t * 100 + i) / 100.0f);
        const InferenceRequest r = request_x(Tensor::from_vector<float>({1, 8}, v));
        const InferenceResult got = batcher.infer(r);
        if (got.outputs.at(0).tensor != inner->infer(r).outputs.at(0).tensor) ++wrong;
        if (got.timing->batch_requests > 1) ++batched;
      }
    });
  }
  for (auto& c : clients) c.join();
  EXPECT_EQ(wrong.load(), 0);
  std::printf("[ info ] %d of 320 requests shared an execution\n", batched.load());
}

}  // namespace
}  // namespace kapsl
