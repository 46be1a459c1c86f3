// BackendFactory with fake devices and a scripted backend: provider order, skips,
// load-time fallback, smoke tests, the load report, settings reaching the backend.
#include "kapsl/backend_factory.h"

#include <gtest/gtest.h>

#include "factory/scripted_backend.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

using testing::expect_error;
using testing::ScriptedBackend;
using Names = std::vector<std::string>;

DeviceInfo devices_with_cuda(bool cuda) {
  DeviceInfo info;
  info.cpu.memory_total_bytes = uint64_t{16} << 30;
  info.devices.push_back(Device{});
  if (cuda) {
    Device gpu;
    gpu.backend = DeviceBackend::kCuda;
    gpu.id = 0;
    gpu.memory_total_bytes = uint64_t{8} << 30;
    gpu.cuda_version = "12.4";
    info.devices.push_back(gpu);
  }
  return info;
}

Package package(HardwareRequirements hw = {}, std::string task = "") {
  Package p;
  p.name = "m";
  p.manifest.project_name = "m";
  p.manifest.framework = "onnx";
  p.manifest.version = "1";
  p.manifest.model_file = "m.onnx";
  p.manifest.task = std::move(task);
  p.manifest.hardware_requirements = std::move(hw);
  p.model_path = "/models/m.onnx";
  return p;
}

FactoryOptions fastest() {
  FactoryOptions o;
  o.policy = ProviderPolicy::kFastest;
  o.smoke_test = true;
  return o;
}

class BackendFactoryTest : public ::testing::Test {
 protected:
  BackendFactory factory(FactoryOptions options = fastest(), bool cuda = true) const {
    return BackendFactory(options, testing::registry_of(backend_), devices_with_cuda(cuda));
  }
  LoadedEngine load(const BackendFactory& f, const Package& p, const LoadOptions& options = {}) const {
    return f.load(f.resolve(p, options));
  }

  std::shared_ptr<ScriptedBackend> backend_ = std::make_shared<ScriptedBackend>();
};

TEST_F(BackendFactoryTest, AcceleratorThatFailsToLoadFallsBackAndTheReasonIsRecorded) {
  backend_->load_fails.emplace("tensorrt", Error::unavailable("libnvinfer.so.10: cannot open shared object file"));
  LoadedEngine e = load(factory(), package());
  EXPECT_EQ(e.report.candidates, (Names{"tensorrt", "cuda", "cpu"}));
  EXPECT_EQ(e.report.provider, "cuda");
  EXPECT_EQ(e.report.backend, "onnx");
  EXPECT_EQ(e.report.task, "forward");
  EXPECT_EQ(e.engine->model_info().provider, "cuda");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_EQ(e.report.failures[0].provider, "tensorrt");
  EXPECT_EQ(e.report.failures[0].code, ErrorCode::kUnavailable);
  EXPECT_TRUE(e.report.failures[0].tried);
  EXPECT_NE(e.report.failures[0].reason.find("libnvinfer"), std::string::npos);
  EXPECT_EQ(backend_->load_providers(), (Names{"tensorrt", "cuda"}));
  EXPECT_EQ(backend_->smokes(), (Names{"tensorrt", "cuda"}));
  EXPECT_NE(e.report.summary().find("tensorrt: libnvinfer"), std::string::npos) << e.report.summary();
}

TEST_F(BackendFactoryTest, FailedSmokeTestSkipsTheProviderBeforeLoading) {
  backend_->smoke_fails.emplace("tensorrt", Error::unavailable("TensorRT EP failed to create a session"));
  backend_->smoke_fails.emplace("cuda", Error::backend("CUDA error: no kernel image is available"));
  LoadedEngine e = load(factory(), package());
  EXPECT_EQ(e.report.provider, "cpu");
  EXPECT_EQ(backend_->load_providers(), Names{"cpu"});          // neither accelerator got a model load
  EXPECT_EQ(backend_->smokes(), (Names{"tensorrt", "cuda"}));  // cpu is not smoke-tested
  ASSERT_EQ(e.report.failures.size(), 2u);
  EXPECT_EQ(e.report.failures[1].provider, "cuda");
  EXPECT_EQ(e.report.failures[1].code, ErrorCode::kBackend);
  EXPECT_NE(e.report.failures[1].reason.find("no kernel image"), std::string::npos);
}

TEST_F(BackendFactoryTest, SmokeTestCanBeTurnedOff) {
  backend_->smoke_fails.emplace("tensorrt", Error::unavailable("would fail"));
  FactoryOptions o = fastest();
  o.smoke_test = false;
  LoadedEngine e = load(factory(o), package());
  EXPECT_EQ(e.report.provider, "tensorrt");
  EXPECT_TRUE(backend_->smokes().empty());
}

TEST_F(BackendFactoryTest, EveryProviderFailingReportsEachReason) {
  backend_->load_fails.emplace("cuda", Error::unavailable("no CUDA"));
  backend_->load_fails.emplace("cpu", Error::model_load("/models/m.onnx: protobuf parsing failed"));
  FactoryOptions o = fastest();
  o.policy = ProviderPolicy::kManifest;
  HardwareRequirements hw;
  hw.preferred_provider = "CUDA";
  expect_error([&] { load(factory(o), package(hw)); }, ErrorCode::kModelLoad,
               {"no execution provider could load m", "cuda: no CUDA", "cpu: /models/m.onnx: protobuf parsing failed"});
}

// A cuda-then-cpu manifest on a machine without CUDA loads on CPU, and says why.
TEST_F(BackendFactoryTest, AcceleratorWithoutItsDeviceIsSkippedWithTheReason) {
  FactoryOptions o = fastest();
  o.policy = ProviderPolicy::kManifest;
  HardwareRequirements hw;
  hw.preferred_provider = "rocm";
  hw.fallback_providers = {"cuda", "cpu"};
  hw.device_id = 3;
  LoadedEngine e = load(factory(o, /*cuda=*/false), package(hw));
  EXPECT_EQ(e.report.candidates, (Names{"rocm", "cuda", "cpu"}));
  EXPECT_EQ(e.report.provider, "cpu");
  EXPECT_EQ(e.report.device_id, 0);
  ASSERT_EQ(e.report.failures.size(), 2u);
  EXPECT_FALSE(e.report.failures[0].tried);
  EXPECT_NE(e.report.failures[0].reason.find("no rocm device"), std::string::npos);
  EXPECT_NE(e.report.failures[1].reason.find("no cuda device"), std::string::npos);
  EXPECT_EQ(backend_->load_providers(), Names{"cpu"});
  EXPECT_TRUE(backend_->smokes().empty());
  // With the device present, the requested index reaches the backend.
  LoadedEngine on_gpu = load(factory(o, /*cuda=*/true), package(hw));
  EXPECT_EQ(on_gpu.report.provider, "cuda");
  EXPECT_EQ(on_gpu.report.device_id, 3);
  EXPECT_EQ(backend_->loads().back().device_id, 3);
}

TEST_F(BackendFactoryTest, ProviderMissingFromTheBuildIsSkipped) {
  backend_->offered = {"cpu"};
  HardwareRequirements hw;
  hw.preferred_provider = "cuda";
  LoadedEngine e = load(factory(), package(hw));
  EXPECT_EQ(e.report.provider, "cpu");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_NE(e.report.failures[0].reason.find("not in this build of backend onnx"), std::string::npos);
  EXPECT_EQ(backend_->load_providers(), Names{"cpu"});
}

TEST_F(BackendFactoryTest, SettingsLayersReachTheBackend) {
  Package p = package();
  p.manifest.threads = 3;
  p.manifest.backend_sections["onnx"] = R"({"level": 2})";
  LoadOptions options;
  options.defaults = R"({"threads": 1, "onnx": {"level": 9}})";
  options.overrides = R"({"task": "classify"})";
  options.tokenizer_only = true;
  LoadedEngine e = load(factory(), p, options);
  const auto l = backend_->loads().back();
  EXPECT_EQ(l.threads, 3);  // the manifest wins over defaults
  EXPECT_EQ(l.options_json, R"({"level":2})");
  EXPECT_EQ(l.task, "classify");  // overrides win over the manifest
  EXPECT_TRUE(l.tokenizer_only);
  EXPECT_EQ(e.report.options_json, R"({"level":2})");
  LoadOptions over;
  over.overrides = R"({"threads": 7, "onnx": {"level": 4}})";
  load(factory(), p, over);
  EXPECT_EQ(backend_->loads().back().threads, 7);
  EXPECT_EQ(backend_->loads().back().options_json, R"({"level":4})");
}

TEST_F(BackendFactoryTest, BadSettingsFailBeforeAnyLoad) {
  BackendFactory f = factory();
  HardwareRequirements neg;
  neg.device_id = -1;
  expect_error([&] { load(f, package(neg)); }, ErrorCode::kInvalidInput, {"device_id", "-1"});
  Package unknown = package();
  unknown.manifest.framework = "pytorch";
  expect_error([&] { f.resolve(unknown); }, ErrorCode::kInvalidInput, {"pytorch", "onnx"});
  Package typo = package();
  typo.manifest.backend_sections["onnx"] = R"({"levle": 2})";
  expect_error([&] { f.resolve(typo); }, ErrorCode::kInvalidInput, {"onnx.levle"});
  Package stray = package();
  stray.manifest.backend_sections["tensorflow"] = "{}";
  expect_error([&] { f.resolve(stray); }, ErrorCode::kInvalidInput, {"tensorflow", "unknown field"});
  LoadOptions bad_layer;
  bad_layer.overrides = R"({"servng": {}})";
  expect_error([&] { f.resolve(package(), bad_layer); }, ErrorCode::kInvalidInput, {"overrides", "servng"});
  bad_layer.overrides = R"({"serving": {"max_queue": "lots"}})";
  expect_error([&] { f.resolve(package(), bad_layer); }, ErrorCode::kInvalidInput, {"serving.max_queue", "lots"});
  EXPECT_TRUE(backend_->loads().empty());
  EXPECT_TRUE(backend_->smokes().empty());
}

TEST_F(BackendFactoryTest, NonKapslExceptionsAreRecordedAsBackendFailures) {
  backend_->offered.push_back("throws-std");
  FactoryOptions o = fastest();
  o.policy = ProviderPolicy::kManifest;
  HardwareRequirements hw;
  hw.preferred_provider = "throws-std";
  LoadedEngine e = load(factory(o, false), package(hw));
  EXPECT_EQ(e.report.provider, "cpu");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_EQ(e.report.failures[0].code, ErrorCode::kBackend);
  EXPECT_EQ(e.report.failures[0].reason, "std failure");
}

TEST_F(BackendFactoryTest, CancelledLoadStopsTheWalk) {
  backend_->load_fails.emplace("tensorrt", Error::cancelled("aborted by the progress callback"));
  expect_error([&] { load(factory(), package()); }, ErrorCode::kCancelled, {"aborted"});
  EXPECT_EQ(backend_->load_providers(), Names{"tensorrt"});
}

TEST_F(BackendFactoryTest, RequirementsAreCheckedWhenAsked) {
  FactoryOptions o = fastest();
  o.check_requirements = true;
  HardwareRequirements hw;
  hw.min_memory_mb = 1 << 20;  // 1 TiB
  expect_error([&] { load(factory(o, false), package(hw)); }, ErrorCode::kUnavailable, {"Insufficient memory"});
  EXPECT_TRUE(backend_->loads().empty());
}

TEST_F(BackendFactoryTest, LoadOnHasNoFallback) {
  backend_->load_fails.emplace("cuda", Error::unavailable("no CUDA"));
  BackendFactory f = factory();
  const ResolvedModel m = f.resolve(package());
  expect_error([&] { f.load_on(m, " CUDA", 1); }, ErrorCode::kUnavailable, {"no CUDA"});
  EXPECT_EQ(backend_->load_providers(), Names{"cuda"});
  EXPECT_TRUE(backend_->smokes().empty());
  expect_error([&] { f.load_on(m, "cuda", -2); }, ErrorCode::kInvalidInput, {"device_id", "-2"});
  LoadedEngine e = f.load_on(m, "cpu", 0);
  EXPECT_EQ(e.report.provider, "cpu");
}

TEST_F(BackendFactoryTest, ReportAsJsonNamesEveryAttempt) {
  backend_->offered = {"cpu"};
  HardwareRequirements hw;
  hw.preferred_provider = "cuda";
  LoadedEngine e = load(factory(), package(hw));
  const auto j = nlohmann::json::parse(e.report.to_json());
  EXPECT_EQ(j["backend"], "onnx");
  EXPECT_EQ(j["provider"], "cpu");
  EXPECT_EQ(j["failures"][0]["provider"], "cuda");
  EXPECT_EQ(j["failures"][0]["tried"], false);
  EXPECT_EQ(j["options"]["level"], 0);
}

}  // namespace
}  // namespace kapsl
