// BackendFactory with fake devices and fake loaders: provider order, load-time fallback,
// smoke tests, routing to loaders, task wrappers.
#include "kapsl/backend_factory.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>

#include "support/fake_engine.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

using testing::expect_error;
using testing::FakeEngine;
using Names = std::vector<std::string>;

// Loaders whose outcome per provider is scripted; every call is recorded.
class ScriptedLoaders {
 public:
  std::map<std::string, Error> load_fails;   // provider -> error the loader throws
  std::map<std::string, Error> smoke_fails;  // provider -> error the smoke test throws
  Names runtime = {"cpu", "cuda", "tensorrt", "rocm"};
  std::vector<NamedTensor> outputs;
  std::vector<TensorInfo> output_info;
  Names loads, smokes;
  std::vector<LoadSpec> specs;

  EngineLoaders make() {
    EngineLoaders l;
    l.onnx = [this](const LoadSpec& spec) -> std::unique_ptr<Engine> {
      loads.push_back(spec.provider);
      specs.push_back(spec);
      if (auto it = load_fails.find(spec.provider); it != load_fails.end()) throw it->second;
      if (spec.provider == "throws-std") throw std::runtime_error("std failure");
      return std::make_unique<FakeEngine>(spec.provider, outputs, output_info);
    };
    l.gguf = [this](const LoadSpec& spec) -> std::unique_ptr<Engine> {
      loads.push_back("gguf:" + spec.model_path);
      return std::make_unique<FakeEngine>("cpu");
    };
    l.onnx_providers = [this] { return runtime; };
    l.smoke_test = [this](const std::string& provider, int) {
      smokes.push_back(provider);
      if (auto it = smoke_fails.find(provider); it != smoke_fails.end()) throw it->second;
    };
    return l;
  }
};

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

Package onnx_package(HardwareRequirements hw = {}, std::string task = "", std::string metadata = "") {
  Package p;
  p.manifest.project_name = "m";
  p.manifest.framework = "onnx";
  p.manifest.version = "1";
  p.manifest.model_file = "m.onnx";
  p.manifest.task = std::move(task);
  p.manifest.metadata_json = std::move(metadata);
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

TEST(BackendFactoryTest, AcceleratorThatFailsToLoadFallsBackAndTheReasonIsRecorded) {
  ScriptedLoaders s;
  s.load_fails.emplace("tensorrt", Error::unavailable("libnvinfer.so.10: cannot open shared object file"));
  BackendFactory f(fastest(), s.make(), devices_with_cuda(true));
  LoadedEngine e = f.create(onnx_package());
  EXPECT_EQ(e.report.candidates, (Names{"tensorrt", "cuda", "cpu"}));
  EXPECT_EQ(e.report.provider, "cuda");
  EXPECT_EQ(e.engine->model_info().provider, "cuda");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_EQ(e.report.failures[0].provider, "tensorrt");
  EXPECT_EQ(e.report.failures[0].code, ErrorCode::kUnavailable);
  EXPECT_NE(e.report.failures[0].reason.find("libnvinfer"), std::string::npos);
  EXPECT_EQ(s.loads, (Names{"tensorrt", "cuda"}));
  EXPECT_EQ(s.smokes, (Names{"tensorrt", "cuda"}));
}

TEST(BackendFactoryTest, FailedSmokeTestSkipsTheProviderBeforeLoading) {
  ScriptedLoaders s;
  s.smoke_fails.emplace("tensorrt", Error::unavailable("TensorRT EP failed to create a session"));
  s.smoke_fails.emplace("cuda", Error::backend("CUDA error: no kernel image is available"));
  BackendFactory f(fastest(), s.make(), devices_with_cuda(true));
  LoadedEngine e = f.create(onnx_package());
  EXPECT_EQ(e.report.provider, "cpu");
  EXPECT_EQ(s.loads, Names{"cpu"});          // neither accelerator got a model load
  EXPECT_EQ(s.smokes, (Names{"tensorrt", "cuda"}));  // cpu is not smoke-tested
  ASSERT_EQ(e.report.failures.size(), 2u);
  EXPECT_EQ(e.report.failures[1].provider, "cuda");
  EXPECT_EQ(e.report.failures[1].code, ErrorCode::kBackend);
  EXPECT_NE(e.report.failures[1].reason.find("no kernel image"), std::string::npos);
}

TEST(BackendFactoryTest, SmokeTestCanBeTurnedOff) {
  ScriptedLoaders s;
  s.smoke_fails.emplace("tensorrt", Error::unavailable("would fail"));
  FactoryOptions o = fastest();
  o.smoke_test = false;
  LoadedEngine e = BackendFactory(o, s.make(), devices_with_cuda(true)).create(onnx_package());
  EXPECT_EQ(e.report.provider, "tensorrt");
  EXPECT_TRUE(s.smokes.empty());
}

TEST(BackendFactoryTest, EveryProviderFailingReportsEachReason) {
  ScriptedLoaders s;
  s.load_fails.emplace("cuda", Error::unavailable("no CUDA"));
  s.load_fails.emplace("cpu", Error::model_load("/models/m.onnx: protobuf parsing failed"));
  FactoryOptions o = fastest();
  o.policy = ProviderPolicy::kManifest;
  HardwareRequirements hw;
  hw.preferred_provider = "CUDA";
  expect_error([&] { BackendFactory(o, s.make(), devices_with_cuda(true)).create(onnx_package(hw)); },
               ErrorCode::kModelLoad, {"no execution provider could load /models/m.onnx", "cuda: no CUDA",
                                       "cpu: /models/m.onnx: protobuf parsing failed"});
}

TEST(BackendFactoryTest, ManifestPolicyTriesTheListThenCpu) {
  ScriptedLoaders s;
  s.load_fails.emplace("rocm", Error::unavailable("ROCm EP not compiled in"));
  FactoryOptions o = fastest();
  o.policy = ProviderPolicy::kManifest;
  HardwareRequirements hw;
  hw.preferred_provider = "rocm";
  hw.fallback_providers = {"cuda"};
  hw.device_id = 3;
  LoadedEngine e = BackendFactory(o, s.make(), devices_with_cuda(false)).create(onnx_package(hw));
  EXPECT_EQ(e.report.candidates, (Names{"rocm", "cuda", "cpu"}));
  EXPECT_EQ(e.report.provider, "cuda");  // the fake loader does not check devices; a real one would
  EXPECT_EQ(e.report.device_id, 3);
  EXPECT_EQ(s.specs.back().device_id, 3);
}

TEST(BackendFactoryTest, SpecCarriesLevelTuningAndDevice) {
  ScriptedLoaders s;
  FactoryOptions o = fastest();
  o.onnx.disable_cpu_mem_arena = true;
  o.onnx.peak_concurrency_hint = 0;
  HardwareRequirements hw;
  hw.graph_optimization_level = "2";
  hw.device_id = 1;
  LoadedEngine e = BackendFactory(o, s.make(), devices_with_cuda(false)).create(onnx_package(hw));
  ASSERT_EQ(s.specs.size(), 1u);
  EXPECT_EQ(s.specs[0].provider, "cpu");
  EXPECT_EQ(s.specs[0].device_id, 0);  // the CPU has one device whatever the manifest says
  EXPECT_EQ(s.specs[0].optimization_level, GraphOptimizationLevel::kExtended);
  EXPECT_EQ(s.specs[0].onnx.disable_cpu_mem_arena, true);
  EXPECT_EQ(s.specs[0].model_path, "/models/m.onnx");
  EXPECT_EQ(e.report.peak_concurrency_hint, 1u);
}

TEST(BackendFactoryTest, BadManifestValuesFailBeforeAnyLoad) {
  ScriptedLoaders s;
  BackendFactory f(fastest(), s.make(), devices_with_cuda(true));
  HardwareRequirements hw;
  hw.graph_optimization_level = "ALL_THE_THINGS";
  expect_error([&] { f.create(onnx_package(hw)); }, ErrorCode::kInvalidInput,
               {"hardware_requirements.graph_optimization_level", "ALL_THE_THINGS"});
  HardwareRequirements neg;
  neg.device_id = -1;
  expect_error([&] { f.create(onnx_package(neg)); }, ErrorCode::kInvalidInput, {"device_id", "-1"});
  Package unknown = onnx_package();
  unknown.manifest.framework = "pytorch";
  expect_error([&] { f.create(unknown); }, ErrorCode::kInvalidInput, {"pytorch"});
  expect_error([&] { f.create(onnx_package({}, "classify", R"({"classify":{"apply_softmax":1}})")); },
               ErrorCode::kInvalidInput, {"metadata.classify.apply_softmax"});
  EXPECT_TRUE(s.loads.empty());
  EXPECT_TRUE(s.smokes.empty());
}

TEST(BackendFactoryTest, NonKapslExceptionsAreRecordedAsBackendFailures) {
  ScriptedLoaders s;
  FactoryOptions o = fastest();
  o.policy = ProviderPolicy::kManifest;
  HardwareRequirements hw;
  hw.preferred_provider = "throws-std";
  LoadedEngine e = BackendFactory(o, s.make(), devices_with_cuda(false)).create(onnx_package(hw));
  EXPECT_EQ(e.report.provider, "cpu");
  ASSERT_EQ(e.report.failures.size(), 1u);
  EXPECT_EQ(e.report.failures[0].code, ErrorCode::kBackend);
  EXPECT_EQ(e.report.failures[0].reason, "std failure");
}

TEST(BackendFactoryTest, RequirementsAreCheckedWhenAsked) {
  ScriptedLoaders s;
  FactoryOptions o = fastest();
  o.check_requirements = true;
  HardwareRequirements hw;
  hw.min_memory_mb = 1 << 20;  // 1 TiB
  expect_error([&] { BackendFactory(o, s.make(), devices_with_cuda(false)).create(onnx_package(hw)); },
               ErrorCode::kUnavailable, {"Insufficient memory"});
  EXPECT_TRUE(s.loads.empty());
}

TEST(BackendFactoryTest, GgufGoesToTheGgufLoader) {
  ScriptedLoaders s;
  testing::TempDir dir;
  std::ofstream(dir.path() / "tiny.gguf") << "GGUF";
  LoadedEngine e = BackendFactory(fastest(), s.make(), devices_with_cuda(true)).create(dir.path() / "tiny.gguf");
  EXPECT_EQ(e.report.kind, EngineKind::kGgufGenerate);
  EXPECT_EQ(e.report.provider, "cpu");
  EXPECT_EQ(s.loads, Names{"gguf:" + (dir.path() / "tiny.gguf").string()});
  EXPECT_TRUE(s.smokes.empty());
}

TEST(BackendFactoryTest, ClassifyTaskWrapsTheEngine) {
  ScriptedLoaders s;
  s.outputs = {{"logits", Tensor::from_vector<float>({1, 2}, {0.0f, 0.0f})}};
  BackendFactory f(fastest(), s.make(), devices_with_cuda(false));
  LoadedEngine e = f.create(onnx_package({}, "classify"));
  EXPECT_EQ(e.report.kind, EngineKind::kOnnxClassify);
  EXPECT_EQ(e.engine->model_info().metadata.at("task"), "classify");
  EXPECT_EQ(e.engine->model_info().provider, "cpu");
  InferenceResult r = e.engine->infer(InferenceRequest{});
  EXPECT_EQ(r.outputs.at(0).tensor.data<float>()[0], 0.5f);
  LoadedEngine raw = f.create(onnx_package({}, "classify", R"({"classify":{"apply_softmax":false}})"));
  EXPECT_EQ(raw.engine->infer(InferenceRequest{}).outputs.at(0).tensor.data<float>()[0], 0.0f);
}

TEST(BackendFactoryTest, CreateForDeviceHasNoFallback) {
  ScriptedLoaders s;
  s.load_fails.emplace("cuda", Error::unavailable("no CUDA"));
  BackendFactory f(fastest(), s.make(), devices_with_cuda(true));
  expect_error([&] { f.create_for_device(onnx_package(), " CUDA", 1); }, ErrorCode::kUnavailable, {"no CUDA"});
  EXPECT_EQ(s.loads, Names{"cuda"});
  EXPECT_TRUE(s.smokes.empty());
  expect_error([&] { f.create_for_device(onnx_package(), "cuda", -2); }, ErrorCode::kInvalidInput, {"device_id", "-2"});
  LoadedEngine e = f.create_for_device(onnx_package(), "cpu", 0);
  EXPECT_EQ(e.report.provider, "cpu");
}

}  // namespace
}  // namespace kapsl
