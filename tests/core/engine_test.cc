#include "kapsl/engine.h"

#include <gtest/gtest.h>

#include "core/request_counters.h"

namespace kapsl {
namespace {

// Echoes its main input; fails with kInvalidInput when there is none.
class EchoEngine : public Engine {
 public:
  InferenceResult infer(const InferenceRequest& request) override {
    auto scope = counters_.begin();
    const Tensor* in = request.find_input(kMainInput);
    if (in == nullptr) {
      scope.fail(ErrorCode::kInvalidInput);
      throw Error::invalid_input("missing main input");
    }
    InferenceResult r;
    r.outputs.push_back({"out", *in});
    scope.succeed();
    return r;
  }
  void warmup() override {}
  EngineMetrics metrics() const override { return counters_.snapshot(); }
  const ModelInfo& model_info() const override { return info_; }
  Health health_check() const override { return {}; }
  uint64_t resident_bytes() const override { return 0; }

 private:
  internal::RequestCounters counters_;
  ModelInfo info_;
};

TEST(EngineTest, DefaultBatchReportsErrorsPerItem) {
  EchoEngine e;
  std::vector<InferenceRequest> reqs;
  reqs.push_back(InferenceRequest::with_main_input(Tensor::from_vector<int32_t>({1}, {7})));
  reqs.emplace_back();  // no input: fails alone
  reqs.push_back(InferenceRequest::with_main_input(Tensor::from_vector<int32_t>({1}, {8})));
  const auto items = e.infer_batch(reqs);
  ASSERT_EQ(items.size(), 3u);
  EXPECT_TRUE(items[0].ok());
  EXPECT_FALSE(items[1].ok());
  EXPECT_EQ(items[1].error->code(), ErrorCode::kInvalidInput);
  EXPECT_EQ(items[2].result->outputs[0].tensor.data<int32_t>()[0], 8);
  const EngineMetrics m = e.metrics();
  EXPECT_EQ(m.requests, 3u);
  EXPECT_EQ(m.failures, 1u);
  EXPECT_EQ(m.in_flight, 0u);
  EXPECT_EQ(m.latency.count, 3u);
}

TEST(EngineTest, DefaultStreamSendsOneChunkWithTheOutputs) {
  EchoEngine e;
  int chunks = 0;
  const auto result = e.infer_stream(InferenceRequest::with_main_input(Tensor::from_string("hi")),
                                     [&](const StreamChunk& c) {
                                       ++chunks;
                                       EXPECT_EQ(c.outputs.at(0).tensor.strings()[0], "hi");
                                       return true;
                                     });
  EXPECT_EQ(chunks, 1);
  ASSERT_NE(result.find_output("out"), nullptr);
  EXPECT_EQ(result.find_output("missing"), nullptr);
}

TEST(RequestCountersTest, ScopesClassifyOutcomes) {
  internal::RequestCounters c;
  c.begin().fail(ErrorCode::kCancelled);
  c.begin().fail(ErrorCode::kTimeout);
  { auto s = c.begin(); }  // left without succeed(): a failure
  c.begin().succeed();
  c.add_tokens(3, 5);
  const EngineMetrics m = c.snapshot();
  EXPECT_EQ(m.requests, 4u);
  EXPECT_EQ(m.cancelled, 1u);
  EXPECT_EQ(m.timeouts, 1u);
  EXPECT_EQ(m.failures, 1u);
  EXPECT_EQ(m.prompt_tokens, 3u);
  EXPECT_EQ(m.generated_tokens, 5u);
}

TEST(FinishReasonTest, Names) {
  EXPECT_STREQ(finish_reason_name(FinishReason::kStop), "stop");
  EXPECT_STREQ(finish_reason_name(FinishReason::kLength), "length");
  EXPECT_STREQ(finish_reason_name(FinishReason::kCancelled), "cancelled");
  EXPECT_STREQ(finish_reason_name(FinishReason::kTimeout), "timeout");
}

}  // namespace
}  // namespace kapsl
