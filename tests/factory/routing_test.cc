#include <gtest/gtest.h>

#include "support/test_util.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

using testing::expect_error;

Manifest manifest(std::string framework, std::string format, std::string task, std::string file) {
  Manifest m;
  m.project_name = "m";
  m.version = "1";
  m.framework = std::move(framework);
  m.format = std::move(format);
  m.task = std::move(task);
  m.model_file = std::move(file);
  return m;
}

TEST(RoutingTest, Table) {
  struct Row {
    const char* framework;
    const char* format;
    const char* task;
    const char* file;
    EngineKind kind;
  };
  const Row rows[] = {
      {"gguf", "", "", "m.gguf", EngineKind::kGgufGenerate},
      {"", "GGUF", "generate", "m.GGUF", EngineKind::kGgufGenerate},
      {"onnx", "", "", "m.onnx", EngineKind::kOnnxForward},
      {" ONNX ", "onnx", "Forward", "m.onnx", EngineKind::kOnnxForward},
      {"onnx", "", "classify", "m.onnx", EngineKind::kOnnxClassify},
      {"", "onnx", " EMBED ", "dir/m.onnx", EngineKind::kOnnxEmbed},
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::string(r.framework) + "/" + r.format + "/" + r.task);
    EXPECT_EQ(route_manifest(manifest(r.framework, r.format, r.task, r.file)), r.kind);
  }
  EXPECT_STREQ(engine_kind_name(EngineKind::kOnnxEmbed), "onnx-embed");
}

TEST(RoutingTest, UnknownFormatsFailClosed) {
  expect_error([] { route_manifest(manifest("pytorch", "", "", "m.pt")); }, ErrorCode::kInvalidInput,
               {"framework", "\"pytorch\""});
  expect_error([] { route_manifest(manifest("onnx", "tflite", "", "m.onnx")); }, ErrorCode::kInvalidInput,
               {"format", "\"tflite\""});
  expect_error([] { route_manifest(manifest("", "", "", "m.onnx")); }, ErrorCode::kInvalidInput, {"framework"});
}

TEST(RoutingTest, OriginalsOtherBackendsAreUnavailable) {
  for (const char* f : {"llm", "native", "safetensors"}) {
    SCOPED_TRACE(f);
    expect_error([&] { route_manifest(manifest(f, "", "", "m.onnx")); }, ErrorCode::kUnavailable,
                 {std::string("\"") + f + "\"", "not served"});
  }
  expect_error([] { route_manifest(manifest("onnx", "", "generate", "m.onnx")); }, ErrorCode::kUnavailable,
               {"generate"});
}

TEST(RoutingTest, ContradictionsAreErrors) {
  expect_error([] { route_manifest(manifest("onnx", "gguf", "", "m.gguf")); }, ErrorCode::kInvalidInput,
               {"contradicts"});
  expect_error([] { route_manifest(manifest("onnx", "", "", "m.gguf")); }, ErrorCode::kInvalidInput,
               {"model_file", ".onnx"});
  expect_error([] { route_manifest(manifest("gguf", "", "embed", "m.gguf")); }, ErrorCode::kInvalidInput,
               {"task", "generate", "embed"});
  expect_error([] { route_manifest(manifest("onnx", "", "detect", "m.onnx")); }, ErrorCode::kInvalidInput,
               {"task", "classify", "detect"});
}

}  // namespace
}  // namespace kapsl
