// route_manifest: format / framework / task -> EngineKind, failing closed.
#include <array>

#include "core/strings.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

std::string norm(std::string_view s) { return internal::to_lower(internal::trim(s)); }

// Formats the original routed to backends kapsl does not have.
void refuse_unsupported(const std::string& field, const std::string& value) {
  static constexpr std::array<std::string_view, 3> kUnsupported = {"llm", "native", "safetensors"};
  for (std::string_view u : kUnsupported) {
    if (value == u) {
      throw Error::unavailable(field + " \"" + value + "\" is not served by kapsl",
                               "supported formats are \"onnx\" and \"gguf\"");
    }
  }
}

void check_known(const std::string& field, const std::string& value) {
  refuse_unsupported(field, value);
  if (!value.empty() && value != "onnx" && value != "gguf") {
    throw Error::invalid_input(field, "expected \"onnx\" or \"gguf\", got \"" + value + "\"");
  }
}

}  // namespace

const char* engine_kind_name(EngineKind kind) noexcept {
  switch (kind) {
    case EngineKind::kGgufGenerate: return "gguf-generate";
    case EngineKind::kOnnxForward: return "onnx-forward";
    case EngineKind::kOnnxClassify: return "onnx-classify";
    case EngineKind::kOnnxEmbed: return "onnx-embed";
  }
  return "onnx-forward";
}

EngineKind route_manifest(const Manifest& m) {
  std::string framework = norm(m.framework), format = norm(m.format), task = norm(m.task);
  check_known("format", format);
  check_known("framework", framework);
  if (!format.empty() && !framework.empty() && format != framework) {
    throw Error::invalid_input("format \"" + format + "\" contradicts framework \"" + framework + "\"");
  }
  std::string fmt = format.empty() ? framework : format;
  if (fmt.empty()) throw Error::invalid_input("framework", "expected \"onnx\" or \"gguf\", got \"\"");
  std::string ext = internal::to_lower(std::filesystem::path(m.model_file).extension().string());
  if (ext != "." + fmt) {
    throw Error::invalid_input("model_file \"" + m.model_file + "\"", "expected a ." + fmt + " file for format " + fmt);
  }
  if (fmt == "gguf") {
    if (task.empty() || task == "generate") return EngineKind::kGgufGenerate;
    throw Error::invalid_input("task", "expected \"generate\" for format gguf, got \"" + task + "\"");
  }
  if (task.empty() || task == "forward") return EngineKind::kOnnxForward;
  if (task == "classify") return EngineKind::kOnnxClassify;
  if (task == "embed") return EngineKind::kOnnxEmbed;
  if (task == "generate") {
    throw Error::unavailable("task \"generate\" for format onnx is not served by kapsl", "use a GGUF model");
  }
  throw Error::invalid_input("task", "expected \"forward\", \"classify\" or \"embed\" for format onnx, got \"" + task + "\"");
}

}  // namespace kapsl
