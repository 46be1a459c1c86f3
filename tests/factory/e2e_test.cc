// The factory end to end: .aimod packages holding tiny ONNX models built at test time,
// loaded by the real OnnxEngine through the default loaders.
#include <gtest/gtest.h>
#include <onnx/onnx_pb.h>

#include <cmath>

#include "support/archive_writer.h"
#include "onnx/smoke_model.h"
#include "support/test_util.h"
#include "kapsl/backend_factory.h"
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
  PackageOptions cache() const { return {.cache_dir = (dir_.path() / "cache").string()}; }
  BackendFactory factory(ProviderPolicy policy = ProviderPolicy::kFastest) const {
    FactoryOptions o;
    o.policy = policy;
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
  LoadedEngine e = factory().create(p, cache());
  EXPECT_EQ(e.report.kind, EngineKind::kOnnxClassify);
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
  LoadedEngine raw = factory().create(package(model, R"("task":"embed","metadata":{"embed":{"normalize":false}})"), cache());
  InferenceRequest all = InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 2, 2}, {1, 2, 3, 4}));
  all.add_input("attention_mask", Tensor::from_vector<int64_t>({1, 2}, {1, 1}));
  EXPECT_EQ(values(raw.engine->infer(all).outputs.at(0).tensor), (std::vector<float>{2, 3}));
  InferenceRequest first = InferenceRequest::with_main_input(Tensor::from_vector<float>({1, 2, 2}, {1, 2, 3, 4}));
  first.add_input("attention_mask", Tensor::from_vector<int64_t>({1, 2}, {1, 0}));
  EXPECT_EQ(values(raw.engine->infer(first).outputs.at(0).tensor), (std::vector<float>{1, 2}));

  LoadedEngine normed = factory().create(package(model, R"("task":"embed")"), cache());
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
  LoadedEngine e = factory(ProviderPolicy::kManifest).create(p, cache());
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
  expect_error([&] { factory().create(p, cache()); }, ErrorCode::kModelLoad, {"cpu", "classify", "int64"});
}

TEST_F(FactoryE2ETest, SmokeModelRunsOnCpuAndMissingProvidersAreRemembered) {
  const std::string& model = internal::smoke_model_bytes();
  EXPECT_NE(model.find("Identity"), std::string::npos);
  EngineLoaders loaders = default_engine_loaders();
  EXPECT_NO_THROW(loaders.smoke_test("cpu", 0));
  std::vector<std::string> compiled = loaders.onnx_providers();
  EXPECT_NE(std::find(compiled.begin(), compiled.end(), "cpu"), compiled.end());
  if (std::find(compiled.begin(), compiled.end(), "rocm") == compiled.end()) {
    std::string first, second;
    try { loaders.smoke_test("rocm", 0); } catch (const Error& e) { first = e.message(); }
    try { loaders.smoke_test("rocm", 0); } catch (const Error& e) { second = e.message(); }
    EXPECT_NE(first.find("smoke test on rocm:0 failed"), std::string::npos) << first;
    EXPECT_EQ(first, second);
  }
}

}  // namespace
}  // namespace kapsl
