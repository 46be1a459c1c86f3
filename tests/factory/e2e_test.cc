// The factory end to end with the built-in ONNX backend: .aimod packages and model folders
// holding tiny ONNX models built at test time, loaded by the real OnnxEngine.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>

#include "support/archive_writer.h"
#include "onnx/smoke_model.h"
#include "support/test_util.h"
#include "kapsl/backend.h"
#include "kapsl/backend_factory.h"
#include "kapsl/embedding.h"
#include "kapsl/onnx_engine.h"
#include "onnx/test_models.h"

namespace kapsl {
namespace {

namespace fs = std::filesystem;
using testing::expect_error;

class FactoryE2ETest : public ::testing::Test {
 protected:
  // A package with `model` as model.onnx and the given manifest extras.
  fs::path package(const std::string& model, const std::string& extra) {
    std::string manifest = R"({"project_name":"tiny","framework":"onnx","version":"1","created_at":"",)"
                           R"("model_file":"model.onnx")" + (extra.empty() ? "" : "," + extra) + "}";
    fs::path p = dir_.path() / ("pkg" + std::to_string(count_++) + ".aimod");
    testing::write_archive(p, {testing::file("metadata.json", manifest), testing::file("model.onnx", model)});
    return p;
  }
  // A model folder with `model` as model.onnx, the manifest extras and sidecar files.
  fs::path folder(const std::string& model, const std::string& extra,
                  const std::vector<std::pair<std::string, std::string>>& sidecars = {}) {
    fs::path d = dir_.path() / ("model" + std::to_string(count_++));
    fs::create_directories(d);
    testing::write_file((d / "model.onnx").string(), model);
    for (const auto& [name, text] : sidecars) testing::write_file((d / name).string(), text);
    testing::write_file((d / "metadata.json").string(),
                        R"({"project_name":"tiny","framework":"onnx","version":"1","created_at":"",)"
                        R"("model_file":"model.onnx")" + (extra.empty() ? "" : "," + extra) + "}");
    return d;
  }
  BackendFactory factory(ProviderPolicy policy = ProviderPolicy::kFastest) const {
    FactoryOptions o;
    o.policy = policy;
    o.package.cache_dir = (dir_.path() / "cache").string();
    return BackendFactory(o);
  }

  testing::TempDir dir_;
  int count_ = 0;
};

std::vector<float> values(const Tensor& t) {
  auto d = t.data<float>();
  return {d.begin(), d.end()};
}

TEST_F(FactoryE2ETest, ClassifyOnIdentityLogits) {
  fs::path p = package(kapsl::testing::identity_model(::onnx::TensorProto::FLOAT, {-1, 3}), R"("task":"classify")");
  LoadedEngine e = factory().load(p);
  EXPECT_EQ(e.report.task, "classify");
  EXPECT_EQ(e.report.provider, e.report.candidates.back()) << "only CPU can load here";
  EXPECT_EQ(e.engine->model_info().provider, "cpu");
  InferenceResult r = e.engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 3}, {1, 2, 3})));
  std::vector<float> p3 = values(r.outputs.at(0).tensor);
  ASSERT_EQ(p3.size(), 3u);
  EXPECT_NEAR(p3[0], 0.09003f, 1e-4);
  EXPECT_NEAR(p3[1], 0.24473f, 1e-4);
  EXPECT_NEAR(p3[2], 0.66524f, 1e-4);
  EXPECT_NEAR(p3[0] + p3[1] + p3[2], 1.0f, 1e-5);
}

TEST_F(FactoryE2ETest, EmbedOnIdentityHiddenStates) {
  std::string model = kapsl::testing::identity_model(::onnx::TensorProto::FLOAT, {-1, -1, 2});
  LoadedEngine raw = factory().load(package(model, R"("task":"embed","metadata":{"embed":{"normalize":false}})"));
  InferenceRequest all = InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 2, 2}, {1, 2, 3, 4}));
  all.add_input("attention_mask", Tensor::from_vector<int64_t>({1, 2}, {1, 1}));
  EXPECT_EQ(values(raw.engine->infer(all).outputs.at(0).tensor), (std::vector<float>{2, 3}));
  InferenceRequest first = InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 2, 2}, {1, 2, 3, 4}));
  first.add_input("attention_mask", Tensor::from_vector<int64_t>({1, 2}, {1, 0}));
  EXPECT_EQ(values(raw.engine->infer(first).outputs.at(0).tensor), (std::vector<float>{1, 2}));

  LoadedEngine normed = factory().load(package(model, R"("task":"embed")"));
  std::vector<float> v = values(
      normed.engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 1, 2}, {3, 4})))
          .outputs.at(0).tensor);
  EXPECT_NEAR(v[0], 0.6f, 1e-6);
  EXPECT_NEAR(v[1], 0.8f, 1e-6);
  EXPECT_NEAR(std::hypot(v[0], v[1]), 1.0f, 1e-6);
}

TEST_F(FactoryE2ETest, UnavailableProviderFallsBackToCpuWithTheReason) {
  std::vector<std::string> compiled = OnnxEngine::available_providers();
  // A provider that ONNX Runtime here lacks: its load fails and CPU takes over.
  std::string missing = std::find(compiled.begin(), compiled.end(), "rocm") == compiled.end() ? "rocm" : "directml";
  fs::path p = package(kapsl::testing::identity_model(::onnx::TensorProto::FLOAT, {-1, 3}),
                       R"("hardware_requirements":{"preferred_provider":")" + missing + R"(","device_id":0})");
  LoadedEngine e = factory(ProviderPolicy::kManifest).load(p);
  EXPECT_EQ(e.report.candidates, (std::vector<std::string>{missing, "cpu"}));
  EXPECT_EQ(e.report.provider, "cpu");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_EQ(e.report.failures[0].provider, missing);
  EXPECT_FALSE(e.report.failures[0].reason.empty());
  InferenceResult r = e.engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 3}, {1, 2, 3})));
  EXPECT_EQ(values(r.outputs.at(0).tensor), (std::vector<float>{1, 2, 3}));
}

TEST_F(FactoryE2ETest, ClassifyRefusesAModelWithIntegerOutput) {
  fs::path p = package(kapsl::testing::identity_model(::onnx::TensorProto::INT64, {-1, 3}), R"("task":"classify")");
  expect_error([&] { factory().load(p); }, ErrorCode::kModelLoad, {"classify", "int64"});
}

TEST_F(FactoryE2ETest, SmokeModelRunsOnCpuAndMissingProvidersAreRemembered) {
  const std::string& model = internal::smoke_model_bytes();
  EXPECT_NE(model.find("Identity"), std::string::npos);
  const auto backend = onnx_backend();
  EXPECT_NO_THROW(backend->smoke_test("cpu", 0));
  std::vector<std::string> compiled = backend->providers();
  EXPECT_NE(std::find(compiled.begin(), compiled.end(), "cpu"), compiled.end());
  if (std::find(compiled.begin(), compiled.end(), "rocm") == compiled.end()) {
    std::string first, second;
    try { backend->smoke_test("rocm", 0); } catch (const Error& e) { first = e.message(); }
    try { backend->smoke_test("rocm", 0); } catch (const Error& e) { second = e.message(); }
    EXPECT_NE(first.find("smoke test on rocm:0 failed"), std::string::npos) << first;
    EXPECT_EQ(first, second);
  }
}

// The issue's case: a manifest asking for cuda then cpu, on a machine without CUDA (ONNX
// Runtime's build here has the CUDA provider compiled in), loads on CPU and says why.
TEST_F(FactoryE2ETest, CudaThenCpuLoadsOnCpuWithTheReport) {
  if (cached_devices().has(DeviceBackend::kCuda)) GTEST_SKIP() << "this machine has a CUDA device";
  fs::path p = folder(kapsl::testing::identity_model(::onnx::TensorProto::FLOAT, {-1, 3}),
                      R"("hardware_requirements":{"preferred_provider":"cuda","fallback_providers":["cpu"]})");
  LoadedEngine e = factory().load(p);
  EXPECT_EQ(e.report.provider, "cpu");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_EQ(e.report.failures[0].provider, "cuda");
  EXPECT_FALSE(e.report.failures[0].reason.empty());
  EXPECT_EQ(e.engine->model_info().provider, "cpu");
}

TEST_F(FactoryE2ETest, ClassifyWithLabelsNamesTheClass) {
  fs::path p = folder(kapsl::testing::identity_model(::onnx::TensorProto::FLOAT, {-1, 3}),
                      R"("task":"classify","onnx":{"labels_file":"labels.txt"})", {{"labels.txt", "cat\ndog\nbird\n"}});
  LoadedEngine e = factory().load(p);
  const auto& outs = e.engine->model_info().outputs;
  ASSERT_EQ(outs.size(), 2u);
  EXPECT_EQ(outs[1].name, "label");
  InferenceResult r = e.engine->infer(
      InferenceRequest::with_main_input(Tensor::from_vector<float>({2, 3}, {1, 5, 2, 9, 0, 0})));
  const Tensor* label = r.find_output("label");
  ASSERT_NE(label, nullptr);
  EXPECT_EQ(label->strings(), (std::vector<std::string>{"dog", "cat"}));
  InferenceRequest only = InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 3}, {0, 0, 7}));
  only.output_names = {"label"};
  InferenceResult just = e.engine->infer(only);
  ASSERT_EQ(just.outputs.size(), 1u);
  EXPECT_EQ(just.outputs[0].tensor.strings(), std::vector<std::string>{"bird"});
  expect_error([&] {
    factory().load(folder(kapsl::testing::identity_model(::onnx::TensorProto::FLOAT, {-1, 3}),
                          R"("task":"classify","onnx":{"labels":["a","b"]})"));
  }, ErrorCode::kModelLoad, {"2 labels", "3 classes"});
}

// The embed task as an Embedder: token ids in, pooled vectors out; text through the
// WordPiece vocabulary the manifest names; text without one is refused.
TEST_F(FactoryE2ETest, EmbedTaskIsAnEmbedder) {
  const std::string model = kapsl::testing::embedding_lookup_model(8, 2);
  fs::path p = folder(model, R"("task":"embed","metadata":{"embed":{"normalize":false}},)"
                             R"("onnx":{"tokenizer":{"vocab":"vocab.txt"}})",
                      {{"vocab.txt", "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n##s\n!\n"}});
  LoadedEngine e = factory().load(p);
  Embedder* embedder = e.engine->embedder();
  ASSERT_NE(embedder, nullptr);
  EXPECT_EQ(e.engine->text_generator(), nullptr);
  EmbedOptions raw;
  raw.normalize = false;
  // Ids [4, 5] and [6]: rows of the table are (i, i + 0.1); padding is masked out.
  const std::vector<EmbeddingInput> ids = {std::vector<int32_t>{4, 5}, std::vector<int32_t>{6}};
  Embeddings out = embedder->embed(ids, raw);
  ASSERT_EQ(out.vectors.size(), 2u);
  EXPECT_NEAR(out.vectors[0][0], 4.5f, 1e-5);
  EXPECT_NEAR(out.vectors[0][1], 4.6f, 1e-5);
  EXPECT_NEAR(out.vectors[1][0], 6.0f, 1e-5);
  EXPECT_EQ(out.prompt_tokens, 3u);
  // "Hello worlds!" -> [CLS] hello world ##s ! [SEP] = 2 4 5 6 7 3: mean 4.5.
  const std::vector<EmbeddingInput> text = {std::string("Hello worlds!")};
  Embeddings t = embedder->embed(text, raw);
  EXPECT_NEAR(t.vectors[0][0], 4.5f, 1e-5);
  EXPECT_EQ(t.prompt_tokens, 6u);
  const std::vector<EmbeddingInput> normed_in = {std::vector<int32_t>{4}};
  Embeddings normed = embedder->embed(normed_in);
  EXPECT_NEAR(std::hypot(normed.vectors[0][0], normed.vectors[0][1]), 1.0f, 1e-5);

  LoadedEngine bare = factory().load(folder(model, R"("task":"embed")"));
  expect_error([&] { bare.engine->embedder()->embed(text); }, ErrorCode::kInvalidInput, {"no tokenizer"});
  const std::vector<EmbeddingInput> empty = {std::vector<int32_t>{}};
  expect_error([&] { bare.engine->embedder()->embed(empty); }, ErrorCode::kInvalidInput, {"input 0", "empty"});
}

}  // namespace
}  // namespace kapsl
