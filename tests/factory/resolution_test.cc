// BackendFactory::open and ::resolve over the built-in backends: routing by format,
// framework and extension, tasks, settings layers and manifest sections. Nothing loads.
#include <gtest/gtest.h>

#include <fstream>

#include "kapsl/backend_factory.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

using testing::expect_error;

Package package(std::string framework, std::string format, std::string task, std::string file) {
  Package p;
  p.name = "m";
  p.manifest.project_name = "m";
  p.manifest.version = "1";
  p.manifest.framework = std::move(framework);
  p.manifest.format = std::move(format);
  p.manifest.task = std::move(task);
  p.manifest.model_file = std::move(file);
  return p;
}

class ResolutionTest : public ::testing::Test {
 protected:
  ResolvedModel resolve(const Package& p, const LoadOptions& o = {}) const { return factory_.resolve(p, o); }
  BackendFactory factory_{FactoryOptions{}, builtin_backends(), DeviceInfo{}};
};

TEST_F(ResolutionTest, Table) {
  struct Row {
    const char* framework;
    const char* format;
    const char* task;
    const char* file;
    const char* backend;
    const char* resolved_task;
  };
  const Row rows[] = {
      {"gguf", "", "", "m.gguf", "gguf", "generate"},
      {"", "GGUF", "generate", "m.GGUF", "gguf", "generate"},
      {"gguf", "", "embed", "m.gguf", "gguf", "embed"},
      {"onnx", "", "", "m.onnx", "onnx", "forward"},
      {" ONNX ", "onnx", "Forward", "m.onnx", "onnx", "forward"},
      {"onnx", "", "classify", "m.onnx", "onnx", "classify"},
      {"", "onnx", " EMBED ", "dir/m.onnx", "onnx", "embed"},
      {"", "", "", "m.ort", "onnx", "forward"},  // no format given: the extension decides
  };
  for (const Row& r : rows) {
    SCOPED_TRACE(std::string(r.framework) + "/" + r.format + "/" + r.task + "/" + r.file);
    const ResolvedModel m = resolve(package(r.framework, r.format, r.task, r.file));
    EXPECT_EQ(m.backend->name(), r.backend);
    EXPECT_EQ(m.task, r.resolved_task);
  }
}

TEST_F(ResolutionTest, UnknownFormatsFailClosed) {
  expect_error([&] { resolve(package("pytorch", "", "", "m.pt")); }, ErrorCode::kInvalidInput,
               {"framework", "\"pytorch\"", "onnx, gguf"});
  expect_error([&] { resolve(package("onnx", "tflite", "", "m.onnx")); }, ErrorCode::kInvalidInput,
               {"contradicts"});
  expect_error([&] { resolve(package("", "tflite", "", "m.onnx")); }, ErrorCode::kInvalidInput,
               {"format", "\"tflite\""});
  expect_error([&] { resolve(package("", "", "", "m.pt")); }, ErrorCode::kInvalidInput,
               {"no backend takes \".pt\" files", "onnx takes .onnx, .ort"});
}

TEST_F(ResolutionTest, OriginalsOtherBackendsAreUnavailable) {
  for (const char* f : {"llm", "native", "safetensors"}) {
    SCOPED_TRACE(f);
    expect_error([&] { resolve(package(f, "", "", "m.onnx")); }, ErrorCode::kUnavailable,
                 {std::string("\"") + f + "\"", "not served"});
  }
  expect_error([&] { resolve(package("onnx", "", "generate", "m.onnx")); }, ErrorCode::kUnavailable,
               {"generate", "backends serving it: gguf"});
}

TEST_F(ResolutionTest, ContradictionsAreErrors) {
  expect_error([&] { resolve(package("onnx", "gguf", "", "m.gguf")); }, ErrorCode::kInvalidInput, {"contradicts"});
  expect_error([&] { resolve(package("onnx", "", "", "m.gguf")); }, ErrorCode::kInvalidInput, {"model_file", ".onnx"});
  expect_error([&] { resolve(package("gguf", "", "classify", "m.gguf")); }, ErrorCode::kUnavailable,
               {"classify", "backends serving it: onnx"});
  expect_error([&] { resolve(package("onnx", "", "detect", "m.onnx")); }, ErrorCode::kInvalidInput,
               {"task", "classify", "detect"});
}

TEST_F(ResolutionTest, SectionsOfOtherBackendsInLayersAreIgnoredButNotInTheManifest) {
  LoadOptions o;
  o.defaults = R"({"gguf": {"slots": 4}, "onnx": {"execution_mode": "parallel"}})";
  const ResolvedModel onnx = resolve(package("onnx", "", "", "m.onnx"), o);
  EXPECT_EQ(onnx.package.manifest.backend_sections.size(), 1u);
  EXPECT_NE(onnx.options->to_json().find("\"parallel\""), std::string::npos);
  const ResolvedModel gguf = resolve(package("gguf", "", "", "m.gguf"), o);
  EXPECT_NE(gguf.options->to_json().find("\"slots\":4"), std::string::npos);
  Package misplaced = package("onnx", "", "", "m.onnx");
  misplaced.manifest.backend_sections["gguf"] = R"({"slots": 4})";
  expect_error([&] { resolve(misplaced); }, ErrorCode::kInvalidInput,
               {"gguf", "this section is for backend \"gguf\"", "served by \"onnx\""});
}

TEST_F(ResolutionTest, BackendOptionsAreCheckedWithTheirPath) {
  Package p = package("gguf", "", "", "m.gguf");
  p.manifest.backend_sections["gguf"] = R"({"kv_cache_type": "q3"})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"gguf.kv_cache_type", "q3"});
  p.manifest.backend_sections["gguf"] = R"({"contxt": 512})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"gguf", "unknown field", "contxt"});
  p.manifest.backend_sections["gguf"] = R"({"rpc_workers": ["10.0.0.2"]})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"10.0.0.2", "host:port"});
  p.manifest.backend_sections["gguf"] = R"({"rpc_workers": ["h:70000"]})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"h:70000", "port out of range"});
  p.manifest.backend_sections["gguf"] = R"({"tensor_split": [1, -1]})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"gguf.tensor_split[1]", "a share from 0"});
  p.manifest.backend_sections["gguf"] = R"({"tensor_split": "1,1"})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"gguf.tensor_split", "an array"});
  p.manifest.backend_sections["gguf"] = R"({"rpc_timeout": "0ms"})";
  expect_error([&] { resolve(p); }, ErrorCode::kInvalidInput, {"gguf.rpc_timeout", "1ms to 1h"});
  Package q = package("onnx", "", "", "m.onnx");
  q.manifest.hardware_requirements.graph_optimization_level = "ALL_THE_THINGS";
  expect_error([&] { resolve(q); }, ErrorCode::kInvalidInput,
               {"hardware_requirements.graph_optimization_level", "ALL_THE_THINGS"});
  q.manifest.hardware_requirements.graph_optimization_level = "";
  q.manifest.backend_sections["onnx"] = R"({"labels": ["a"]})";
  expect_error([&] { resolve(q); }, ErrorCode::kInvalidInput, {"onnx.labels", "only for task classify"});
  q.manifest.task = "classify";
  q.manifest.metadata_json = R"({"classify":{"apply_softmax":1}})";
  expect_error([&] { resolve(q); }, ErrorCode::kInvalidInput, {"metadata.classify.apply_softmax"});
}

TEST_F(ResolutionTest, OpenNamesABareFileByItsBackend) {
  testing::TempDir dir;
  std::ofstream(dir.path() / "tiny.gguf") << "x";
  std::ofstream(dir.path() / "notes.txt") << "x";
  const Package p = factory_.open(dir.path() / "tiny.gguf");
  EXPECT_EQ(p.name, "tiny");
  EXPECT_EQ(p.kind, PackageKind::kModelFile);
  EXPECT_EQ(p.manifest.format, "gguf");
  EXPECT_EQ(p.root, dir.path());
  expect_error([&] { factory_.open(dir.path() / "notes.txt"); }, ErrorCode::kInvalidInput,
               {"cannot tell the model format", "\".txt\""});
  expect_error([&] { factory_.open(dir.path() / "nope.onnx"); }, ErrorCode::kNotFound, {"nope.onnx"});
}

}  // namespace
}  // namespace kapsl
