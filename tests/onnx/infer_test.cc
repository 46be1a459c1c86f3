// OnnxEngine::infer: binding and checks, every dtype, outputs, warmup, metrics, auto-fill.
#include <gtest/gtest.h>

#include <cstring>

#include "kapsl/onnx_engine.h"
#include "onnx/test_models.h"

namespace kapsl {
namespace {

// OnnxOptions with some fields set (designated initializers would warn about the rest).
template <typename Fn>
OnnxOptions opts(Fn&& set) {
  OnnxOptions o;
  set(o);
  return o;
}

std::unique_ptr<OnnxEngine> load(const std::string& model, OnnxOptions o = {}) {
  return OnnxEngine::load_from_memory(std::as_bytes(std::span(model.data(), model.size())), o);
}

template <typename Fn>
Error error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a kapsl::Error";
  return Error(ErrorCode::kBackend, "none thrown");
}

void expect_invalid(OnnxEngine& engine, const InferenceRequest& r, const std::vector<std::string>& words) {
  const Error e = error_of([&] { engine.infer(r); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.what();
  for (const auto& w : words) EXPECT_NE(std::string(e.what()).find(w), std::string::npos) << "'" << w << "' not in: " << e.what();
}

Tensor f32(Shape s, std::vector<float> v) { return Tensor::from_vector<float>(std::move(s), v); }

TEST(OnnxInfer, AddsByNameAndTheMainInputBindsToTheFirst) {
  auto engine = load(testing::add_model({1, 4}));
  InferenceRequest r;
  r.add_input(kMainInput, f32({1, 4}, {1, 2, 3, 4})).add_input("b", f32({1, 4}, {10, 20, 30, 40}));
  const InferenceResult out = engine->infer(r);
  ASSERT_EQ(out.outputs.size(), 1u);
  EXPECT_EQ(out.outputs[0].name, "c");
  EXPECT_EQ(out.outputs[0].tensor, f32({1, 4}, {11, 22, 33, 44}));
}

TEST(OnnxInfer, BadInputsAreInvalidInputNamingTheInputWithExpectedAndGot) {
  auto engine = load(testing::add_model({1, 4}));
  const Tensor ok = f32({1, 4}, {1, 2, 3, 4});
  InferenceRequest unknown;
  unknown.add_input("a", ok).add_input("b", ok).add_input("zzz", ok);
  expect_invalid(*engine, unknown, {"'zzz'", "'a', 'b'"});
  InferenceRequest missing;
  missing.add_input("a", ok);
  expect_invalid(*engine, missing, {"missing input 'b'", "'a'"});
  InferenceRequest twice;
  twice.add_input("a", ok).add_input(kMainInput, ok).add_input("b", ok);
  expect_invalid(*engine, twice, {"'a'", "twice"});
  InferenceRequest dtype;
  dtype.add_input("a", ok).add_input("b", Tensor::from_vector<int32_t>({1, 4}, {1, 2, 3, 4}));
  expect_invalid(*engine, dtype, {"'b'", "expected float32, got int32"});
  InferenceRequest rank;
  rank.add_input("a", f32({4}, {1, 2, 3, 4})).add_input("b", ok);
  expect_invalid(*engine, rank, {"'a'", "expected rank 2", "got rank 1"});
  InferenceRequest dims;
  dims.add_input("a", ok).add_input("b", f32({2, 2}, {1, 2, 3, 4}));
  expect_invalid(*engine, dims, {"'b'", "[1, 4]", "[2, 2]"});
  InferenceRequest output;
  output.add_input("a", ok).add_input("b", ok);
  output.output_names = {"nope"};
  expect_invalid(*engine, output, {"'nope'", "'c'"});
  EXPECT_EQ(engine->metrics().failures, 7u);
  output.output_names.clear();
  EXPECT_EQ(engine->infer(output).outputs.size(), 1u);  // still serving
}

TEST(OnnxInfer, ScalarsAreCheckedAndUndeclaredShapesAcceptAnyRank) {
  auto scalar = load(testing::identity_model(1, {}));
  EXPECT_EQ(scalar->infer(InferenceRequest::with_main_input(f32({}, {2}))).outputs.at(0).tensor, f32({}, {2}));
  expect_invalid(*scalar, InferenceRequest::with_main_input(f32({1}, {2})), {"'x'", "expected rank 0", "got rank 1"});
  testing::GraphBuilder g("no_shape");
  g.input("x", 1, {}).output("y", 1, {}).node("Relu", {"x"}, {"y"});
  g.model().mutable_graph()->mutable_input(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  g.model().mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->clear_shape();
  auto any = load(g.serialize());
  EXPECT_EQ(any->infer(InferenceRequest::with_main_input(f32({1, 2}, {-1, 2}))).outputs.at(0).tensor, f32({1, 2}, {0, 2}));
}

TEST(OnnxInfer, AllOutputsOrOnlyTheRequestedOnesInModelOrder) {
  auto engine = load(testing::two_output_model());
  auto r = InferenceRequest::with_main_input(f32({2, 3}, {-1, 2, -3, 4, -5, 6}));
  auto all = engine->infer(r);
  ASSERT_EQ(all.outputs.size(), 2u);
  EXPECT_EQ(all.outputs[0].name, "relu");
  EXPECT_EQ(all.outputs[1].name, "neg");
  EXPECT_EQ(*all.find_output("relu"), f32({2, 3}, {0, 2, 0, 4, 0, 6}));
  EXPECT_EQ(*all.find_output("neg"), f32({2, 3}, {1, -2, 3, -4, 5, -6}));
  r.output_names = {"neg"};
  auto one = engine->infer(r);
  ASSERT_EQ(one.outputs.size(), 1u);
  EXPECT_EQ(one.outputs[0].name, "neg");
  r.output_names = {"neg", "relu"};
  EXPECT_EQ(engine->infer(r).outputs[0].name, "relu");
  r.output_names = {"neg", "neg"};
  expect_invalid(*engine, r, {"'neg'", "twice"});
}

// Outputs use ONNX Runtime's buffers in place (Tensor::adopt); they must stay valid and
// unchanged after the request and the engine are gone (ASan checks the reads), and an
// output that is the caller's own input buffer must be copied, not adopted.
TEST(OnnxInfer, OutputsOutliveTheRequestAndTheEngineAndNeverAliasTheInputs) {
  auto engine = load(testing::passthrough_model());
  InferenceResult out;
  {
    auto r = InferenceRequest::with_main_input(f32({1, 3}, {-1, 2, -3}));
    out = engine->infer(r);
    r.inputs[0].tensor.mutable_data<float>()[0] = 100;
  }
  engine.reset();
  ASSERT_EQ(out.outputs.size(), 2u);
  EXPECT_EQ(*out.find_output("x"), f32({1, 3}, {-1, 2, -3}));
  EXPECT_EQ(*out.find_output("relu"), f32({1, 3}, {0, 2, 0}));
  InferenceResult copy = out;  // copies of adopted outputs are deep and independent
  copy.outputs[1].tensor.mutable_data<float>()[1] = 5;
  EXPECT_EQ(out.outputs[1].tensor.data<float>()[1], 2);
}

struct DTypeCase {
  int onnx_type;
  DType dtype;
};

TEST(OnnxInfer, EveryDTypeRoundTripsExactlyIncludingEmptyTensors) {
  const std::vector<DTypeCase> cases = {
      {1, DType::kFloat32}, {11, DType::kFloat64}, {10, DType::kFloat16}, {16, DType::kBFloat16},
      {3, DType::kInt8},    {5, DType::kInt16},    {6, DType::kInt32},    {7, DType::kInt64},
      {2, DType::kUInt8},   {4, DType::kUInt16},   {12, DType::kUInt32},  {13, DType::kUInt64},
      {9, DType::kBool}};
  for (const auto& c : cases) {
    auto engine = load(testing::identity_model(c.onnx_type, {-1, 3}));
    EXPECT_EQ(engine->model_info().inputs[0].dtype, c.dtype);
    Tensor t = Tensor::zeros(c.dtype, {2, 3});
    auto bytes = t.mutable_bytes();
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::byte(c.dtype == DType::kBool ? (i % 2) : (i * 37 + 1) & 0x7f);
    EXPECT_EQ(engine->infer(InferenceRequest::with_main_input(t)).outputs.at(0).tensor, t) << dtype_name(c.dtype);
    const Tensor empty = Tensor::zeros(c.dtype, {0, 3});
    EXPECT_EQ(engine->infer(InferenceRequest::with_main_input(empty)).outputs.at(0).tensor, empty) << dtype_name(c.dtype);
  }
}

TEST(OnnxInfer, StringsRoundTripWithEmbeddedNulsAndEmptyElements) {
  auto engine = load(testing::identity_model(8, {-1}));
  EXPECT_EQ(engine->model_info().inputs[0].dtype, DType::kString);
  const Tensor t = Tensor::from_strings({4}, {"hello", "", std::string("a\0b", 3), "ünïcödé"});
  EXPECT_EQ(engine->infer(InferenceRequest::with_main_input(t)).outputs.at(0).tensor, t);
  const Tensor empty = Tensor::from_strings({0}, {});
  EXPECT_EQ(engine->infer(InferenceRequest::with_main_input(empty)).outputs.at(0).tensor, empty);
}

TEST(OnnxInfer, WarmupRunsOnSynthesisedInputs) {
  auto engine = load(testing::add_model({-1, 4}));
  engine->warmup();
  auto llm = load(testing::llm_inputs_model());
  llm->warmup();
  load(testing::identity_model(8, {-1, 2}))->warmup();  // strings: empty elements
}

TEST(OnnxInfer, MetricsCountRequestsFailuresAndLatency) {
  auto engine = load(testing::add_model({1, 4}));
  InferenceRequest r;
  r.add_input("a", f32({1, 4}, {1, 2, 3, 4})).add_input("b", f32({1, 4}, {1, 2, 3, 4}));
  for (int i = 0; i < 5; ++i) engine->infer(r);
  EXPECT_THROW(engine->infer(InferenceRequest::with_main_input(f32({1, 4}, {1, 2, 3, 4}))), Error);
  const EngineMetrics m = engine->metrics();
  EXPECT_EQ(m.requests, 6u);
  EXPECT_EQ(m.failures, 1u);
  EXPECT_EQ(m.in_flight, 0u);
  EXPECT_EQ(m.latency.count, 6u);
  EXPECT_GT(m.latency.sum, 0.0);
  EXPECT_GT(m.resident_bytes, 0u);
}

TEST(OnnxInfer, LlmInputsAreAutoFilledOnlyWhenAskedFor) {
  InferenceRequest r = InferenceRequest::with_main_input(Tensor::from_vector<int64_t>({2, 3}, {1, 2, 3, 4, 5, 6}));
  expect_invalid(*load(testing::llm_inputs_model()), r, {"missing input 'attention_mask'"});
  auto engine = load(testing::llm_inputs_model(), opts([&](OnnxOptions& o) { o.auto_fill_llm_inputs = true; }));
  const auto out = engine->infer(r);
  EXPECT_EQ(*out.find_output("mask_out"), Tensor::from_vector<int64_t>({2, 3}, {1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(*out.find_output("pos_out"), Tensor::from_vector<int64_t>({2, 3}, {0, 1, 2, 0, 1, 2}));
  EXPECT_EQ(out.find_output("past_out")->shape(), (Shape{2, 2, 0, 8}));
  r.add_input("attention_mask", Tensor::from_vector<int64_t>({2, 3}, {1, 1, 0, 1, 0, 0}));
  EXPECT_EQ(engine->infer(r).find_output("mask_out")->data<int64_t>()[2], 0);  // given inputs win
}

}  // namespace
}  // namespace kapsl
