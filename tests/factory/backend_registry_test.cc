// BackendRegistry: explicit registration, lookups by name and extension, refusals; and a
// backend registered by this test alone loaded through the BackendFactory.
#include "kapsl/backend.h"

#include <gtest/gtest.h>

#include <fstream>

#include "factory/scripted_backend.h"
#include "kapsl/backend_factory.h"
#include "support/scale_backend.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

using testing::expect_error;

TEST(BackendRegistryTest, BuiltinsAreOnnxThenGguf) {
  const auto r = builtin_backends();
  ASSERT_EQ(r->backends().size(), 2u);
  EXPECT_EQ(r->backends()[0]->name(), "onnx");
  EXPECT_EQ(r->backends()[1]->name(), "gguf");
  EXPECT_EQ(r->find(" GGUF ")->name(), "gguf");
  EXPECT_EQ(r->for_extension(".ORT")->name(), "onnx");
  EXPECT_EQ(r->find("tflite"), nullptr);
  EXPECT_EQ(r->for_extension(".pt"), nullptr);
  EXPECT_EQ(r->names(), "onnx, gguf");
  // Each call is a new registry: nothing is process-wide.
  EXPECT_NE(builtin_backends(), r);
  EXPECT_EQ(builtin_backends()->backends().size(), 2u);
}

TEST(BackendRegistryTest, RefusesNullBadNamesAndTakenNamesOrExtensions) {
  BackendRegistry r;
  expect_error([&] { r.add(nullptr); }, ErrorCode::kInvalidInput, {"null"});
  auto bad = std::make_shared<testing::ScriptedBackend>();
  bad->backend_name = "Bad Name";
  expect_error([&] { r.add(bad); }, ErrorCode::kInvalidInput, {"\"Bad Name\""});
  auto first = std::make_shared<testing::ScriptedBackend>();
  r.add(first);
  auto same_name = std::make_shared<testing::ScriptedBackend>();
  same_name->extensions = {".x"};
  expect_error([&] { r.add(same_name); }, ErrorCode::kInvalidInput, {"\"onnx\"", "already registered"});
  auto same_ext = std::make_shared<testing::ScriptedBackend>();
  same_ext->backend_name = "other";
  expect_error([&] { r.add(same_ext); }, ErrorCode::kInvalidInput, {".onnx", "already taken by backend \"onnx\""});
  EXPECT_EQ(r.backends().size(), 1u);
}

// A third backend, registered by the test alone, loads through the factory like the
// built-in ones: by extension, with its own section, its own providers and fallback.
TEST(BackendRegistryTest, ThirdBackendLoadsThroughTheFactory) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "double.scale") << "2";
  std::filesystem::create_directories(dir.path() / "shifted");
  std::ofstream(dir.path() / "shifted" / "m.scale") << "3";
  std::ofstream(dir.path() / "shifted" / "metadata.json")
      << R"({"project_name":"shifted","format":"scale","version":"7","created_at":"","model_file":"m.scale",)"
         R"("hardware_requirements":{"preferred_provider":"fakegpu","fallback_providers":["cpu"]},)"
         R"("scale":{"offset":1}})";
  BackendFactory factory(FactoryOptions{}, testing::backends_with_scale(), DeviceInfo{});
  LoadedEngine bare = factory.load(dir.path() / "double.scale");
  EXPECT_EQ(bare.report.backend, "scale");
  const auto y = bare.engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({2}, {1, 2})));
  EXPECT_EQ(y.outputs.at(0).tensor.data<float>()[1], 4.0f);
  LoadedEngine folder = factory.load(dir.path() / "shifted");
  EXPECT_EQ(folder.report.provider, "cpu");
  ASSERT_EQ(folder.report.failures.size(), 1u);
  EXPECT_EQ(folder.report.failures[0].provider, "fakegpu");
  EXPECT_NE(folder.report.failures[0].reason.find("never loads"), std::string::npos);
  const auto z = folder.engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1}, {2})));
  EXPECT_EQ(z.outputs.at(0).tensor.data<float>()[0], 7.0f);  // 2 * 3 + 1
}

}  // namespace
}  // namespace kapsl
