// OnnxEngine loading: good models, every load-error class, options and providers.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>

#include "kapsl/onnx_engine.h"
#include "onnx/options.h"
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

using testing::test_data_path;
using testing::write_file;

// Runs fn and returns the kapsl::Error it throws; fails the test if it throws nothing.
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

std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(OnnxLoad, FromFileAndMemoryDescribeTheModel) {
  const std::string model = testing::add_model({-1, 4});
  const std::string path = write_file(test_data_path("load/add.onnx"), model);
  std::vector<std::unique_ptr<OnnxEngine>> engines;
  engines.push_back(OnnxEngine::load(path));
  engines.push_back(OnnxEngine::load_from_memory(bytes_of(model)));
  for (const auto& engine : engines) {
    const ModelInfo& info = engine->model_info();
    EXPECT_EQ(info.backend, "onnx");
    EXPECT_EQ(info.provider, "cpu");
    ASSERT_EQ(info.inputs.size(), 2u);
    EXPECT_EQ(info.inputs[0].name, "a");
    EXPECT_EQ(info.inputs[0].dtype, DType::kFloat32);
    EXPECT_EQ(info.inputs[0].shape, (Shape{-1, 4}));
    EXPECT_EQ(info.inputs[0].dim_names[0], "N");
    ASSERT_EQ(info.outputs.size(), 1u);
    EXPECT_EQ(info.outputs[0].name, "c");
    EXPECT_EQ(info.file_bytes, model.size());
    EXPECT_EQ(engine->resident_bytes(), model.size());
    EXPECT_TRUE(engine->health_check().ok);
  }
  EXPECT_EQ(OnnxEngine::load(path)->model_info().path, path);
  EXPECT_EQ(OnnxEngine::load(path)->model_info().name, "add");
}

void expect_model_load(const std::string& path, const std::string& why) {
  const Error e = error_of([&] { OnnxEngine::load(path); });
  EXPECT_EQ(e.code(), ErrorCode::kModelLoad) << why << ": " << e.what();
  EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << why << ": " << e.what();
}

TEST(OnnxLoad, BadFilesAreModelLoadErrorsNamingThePath) {
  const std::string model = testing::add_model({1, 4});
  expect_model_load(test_data_path("load/does-not-exist.onnx"), "missing file");
  std::filesystem::create_directories(test_data_path("load/a-directory.onnx"));
  expect_model_load(test_data_path("load/a-directory.onnx"), "directory");
  expect_model_load(write_file(test_data_path("load/empty.onnx"), ""), "empty file");
  expect_model_load(write_file(test_data_path("load/truncated.onnx"), model.substr(0, model.size() / 2)), "truncated");
  std::string corrupt = model;
  for (size_t i = 0; i < corrupt.size(); i += 3) corrupt[i] = static_cast<char>(0xff);
  expect_model_load(write_file(test_data_path("load/corrupt.onnx"), corrupt), "corrupt");
  expect_model_load(write_file(test_data_path("load/text.onnx"), "this is not an ONNX model\n"), "not ONNX");
  testing::GraphBuilder future("future", 999);
  future.input("x", 1, {1}).output("y", 1, {1}).node("Relu", {"x"}, {"y"});
  expect_model_load(write_file(test_data_path("load/opset999.onnx"), future.serialize()), "unsupported opset");
}

TEST(OnnxLoad, BadMemoryModelsAreModelLoadErrors) {
  EXPECT_EQ(error_of([] { OnnxEngine::load_from_memory({}); }).code(), ErrorCode::kModelLoad);
  const std::string garbage = "\x08\x01garbage\xff\xff\xff";
  const Error e = error_of([&] { OnnxEngine::load_from_memory(bytes_of(garbage)); });
  EXPECT_EQ(e.code(), ErrorCode::kModelLoad);
  EXPECT_NE(std::string(e.what()).find("<memory>"), std::string::npos) << e.what();
}

TEST(OnnxLoad, ExternalDataIsReadFromBesideTheModelAndItsAbsenceIsAModelLoadError) {
  const int64_t k = 8;
  const std::string dir = test_data_path("load/external/");
  std::vector<float> w(k * k);
  for (int64_t i = 0; i < k; ++i)
    for (int64_t j = 0; j < k; ++j) w[static_cast<size_t>(i * k + j)] = static_cast<float>(i + j);
  write_file(dir + "weights.bin", std::string(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float)));
  const std::string path = write_file(dir + "model.onnx", testing::external_data_model(k, "weights.bin").SerializeAsString());
  auto engine = OnnxEngine::load(path);
  auto r = engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1, k}, std::vector<float>(k, 1.0f))));
  const auto y = r.outputs.at(0).tensor.data<float>();
  for (int64_t j = 0; j < k; ++j) EXPECT_EQ(y[static_cast<size_t>(j)], static_cast<float>(k * (k - 1) / 2 + k * j));

  const std::string lonely = write_file(test_data_path("load/no-weights/model.onnx"),
                                        testing::external_data_model(k, "missing.bin").SerializeAsString());
  expect_model_load(lonely, "missing external data");
}

TEST(OnnxOptions, BadValuesAreInvalidInputNamingTheField) {
  const std::string model = testing::add_model({1, 4});
  const auto field_error = [&](const OnnxOptions& bad, const std::string& field) {
    const Error e = error_of([&] { OnnxEngine::load_from_memory(bytes_of(model), bad); });
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput) << e.what();
    EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
  };
  field_error(opts([&](OnnxOptions& o) { o.provider = "quantum"; }), "provider");
  field_error(opts([&](OnnxOptions& o) { o.device_id = -1; }), "device_id");
  field_error(opts([&](OnnxOptions& o) { o.log_level = "chatty"; }), "log_level");
  field_error(opts([&](OnnxOptions& o) { o.graph_optimization_level = "fast"; }), "graph_optimization_level");
  field_error(opts([&](OnnxOptions& o) { o.intra_op_threads = -2; }), "intra_op_threads");
  field_error(opts([&](OnnxOptions& o) { o.inter_op_threads = -1; }), "inter_op_threads");
  field_error(opts([&](OnnxOptions& o) { o.execution_mode = "random"; }), "execution_mode");
}

TEST(OnnxOptions, GraphOptimizationLevelsParseCaseInsensitively) {
  using onnx::parse_graph_optimization_level;
  EXPECT_EQ(parse_graph_optimization_level("disable"), ORT_DISABLE_ALL);
  EXPECT_EQ(parse_graph_optimization_level("0"), ORT_DISABLE_ALL);
  EXPECT_EQ(parse_graph_optimization_level("Basic"), ORT_ENABLE_BASIC);
  EXPECT_EQ(parse_graph_optimization_level("1"), ORT_ENABLE_BASIC);
  EXPECT_EQ(parse_graph_optimization_level("EXTENDED"), ORT_ENABLE_EXTENDED);
  EXPECT_EQ(parse_graph_optimization_level("2"), ORT_ENABLE_EXTENDED);
  EXPECT_EQ(parse_graph_optimization_level(" ALL "), ORT_ENABLE_ALL);
  EXPECT_EQ(parse_graph_optimization_level("3"), ORT_ENABLE_ALL);
  EXPECT_EQ(parse_graph_optimization_level("99"), ORT_ENABLE_ALL);
  EXPECT_THROW(parse_graph_optimization_level(""), Error);
  EXPECT_THROW(parse_graph_optimization_level("layout"), Error);
  EXPECT_THROW(parse_graph_optimization_level("4"), Error);
}

TEST(OnnxOptions, EnvironmentFillsUnsetFieldsAndExplicitValuesWin) {
  const std::string model = testing::add_model({1, 4});
  ::setenv("KAPSL_ORT_MEMORY_PATTERN", " Off ", 1);
  ::setenv("KAPSL_ORT_DISABLE_CPU_MEM_ARENA", "yes", 1);
  auto from_env = OnnxEngine::load_from_memory(bytes_of(model));
  EXPECT_EQ(from_env->options().memory_pattern, false);
  EXPECT_EQ(from_env->options().cpu_mem_arena, false);
  auto explicit_ = OnnxEngine::load_from_memory(bytes_of(model), opts([&](OnnxOptions& o) { o.memory_pattern = true; o.cpu_mem_arena = true; }));
  EXPECT_EQ(explicit_->options().memory_pattern, true);
  EXPECT_EQ(explicit_->options().cpu_mem_arena, true);
  ::setenv("KAPSL_ORT_MEMORY_PATTERN", "maybe", 1);  // unparsable: the default
  ::unsetenv("KAPSL_ORT_DISABLE_CPU_MEM_ARENA");
  auto defaults = OnnxEngine::load_from_memory(bytes_of(model));
  EXPECT_EQ(defaults->options().memory_pattern, true);
  EXPECT_EQ(defaults->options().cpu_mem_arena, true);
  ::unsetenv("KAPSL_ORT_MEMORY_PATTERN");
}

TEST(OnnxOptions, EveryKnobLoadsAndRuns) {
  const std::string model = testing::add_model({1, 4});
  const std::string cache = test_data_path("load/optimized.onnx");
  std::filesystem::remove(cache);
  const OnnxOptions knobs = opts([&](OnnxOptions& o) { o.provider = "CPU"; o.log_level = "Error"; o.graph_optimization_level = "basic"; o.intra_op_threads = 2; o.inter_op_threads = 2; o.execution_mode = "parallel"; o.memory_pattern = false; o.cpu_mem_arena = false; o.optimized_model_path = cache; });
  auto engine = OnnxEngine::load_from_memory(bytes_of(model), knobs);
  EXPECT_EQ(engine->options().provider, "cpu");
  EXPECT_TRUE(std::filesystem::exists(cache));
  InferenceRequest r;
  r.add_input("a", Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4}));
  r.add_input("b", Tensor::from_vector<float>({1, 4}, {1, 1, 1, 1}));
  EXPECT_EQ(engine->infer(r).outputs.at(0).tensor.data<float>()[3], 5.0f);
  auto reloaded = OnnxEngine::load(cache, opts([&](OnnxOptions& o) { o.graph_optimization_level = "disable"; o.intra_op_threads = 0; }));
  EXPECT_EQ(reloaded->infer(r).outputs.at(0).tensor.data<float>()[0], 2.0f);
}

size_t thread_count() {
  return static_cast<size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                           std::filesystem::directory_iterator()));
}

// The default threads must not grow with the number of engines (a pool per engine would
// oversubscribe a small machine), and one intra-op thread is the caller's own.
TEST(OnnxThreads, EnginesOnDefaultOrOneThreadStartNoThreadOfTheirOwn) {
  const std::string model = testing::add_model({1, 4});
  const auto bytes = std::as_bytes(std::span(model.data(), model.size()));
  InferenceRequest r;
  r.add_input("a", Tensor::zeros(DType::kFloat32, {1, 4})).add_input("b", Tensor::zeros(DType::kFloat32, {1, 4}));
  OnnxOptions one;
  one.intra_op_threads = 1;
  std::vector<std::unique_ptr<OnnxEngine>> engines;
  engines.push_back(OnnxEngine::load_from_memory(bytes));
  engines.back()->infer(r);  // the environment, its shared pool and the run watcher exist now
  const size_t before = thread_count();
  for (int i = 0; i < 6; ++i) {
    engines.push_back(OnnxEngine::load_from_memory(bytes, i % 2 ? one : OnnxOptions{}));
    engines.back()->infer(r);
  }
  EXPECT_EQ(thread_count(), before);
}

TEST(OnnxProviders, CpuIsAvailableAndTheVersionIsOnnxRuntimes) {
  const auto providers = OnnxEngine::available_providers();
  EXPECT_NE(std::find(providers.begin(), providers.end(), "cpu"), providers.end());
  EXPECT_EQ(OnnxEngine::runtime_version().rfind("1.", 0), 0u) << OnnxEngine::runtime_version();
  EXPECT_GE(OnnxEngine::default_shared_intra_op_threads(), 1);
}

TEST(OnnxProviders, UnusableProvidersAreUnavailableNamingProviderAndReason) {
  const std::string model = testing::add_model({1, 4});
  const auto providers = OnnxEngine::available_providers();
  for (const std::string p : {"cuda", "tensorrt", "rocm", "openvino", "coreml", "directml"}) {
    std::optional<Error> thrown;
    try {
      OnnxEngine::load_from_memory(bytes_of(model), opts([&](OnnxOptions& o) { o.provider = p; }));
    } catch (const Error& caught) {
      thrown = caught;
    }
    if (!thrown) continue;  // this machine has a usable accelerator
    const Error& e = *thrown;
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << p << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("'" + p + "'"), std::string::npos) << e.what();
    const bool compiled = std::find(providers.begin(), providers.end(), p) != providers.end();
    if (!compiled) {
      EXPECT_NE(std::string(e.what()).find("not compiled"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kapsl
