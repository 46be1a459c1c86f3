// The classify wrapper (kapsl-backends 0.1.1 OnnxClassifyBackend): row softmax.
#include <algorithm>
#include <cmath>

#include "tasks/engine_decorator.h"

namespace kapsl::internal {
namespace {

// The first output, checked to be float32; throws naming it otherwise.
const NamedTensor& first_float_output(const InferenceResult& r, const char* task) {
  if (r.outputs.empty()) throw Error::inference(std::string(task) + ": the model returned no output");
  const NamedTensor& out = r.outputs.front();
  if (out.tensor.dtype() != DType::kFloat32) {
    throw Error::inference(std::string(task) + ": output \"" + out.name + "\"",
                           "expected float32, got " + std::string(dtype_name(out.tensor.dtype())));
  }
  return out;
}

}  // namespace

ClassifyEngine::ClassifyEngine(std::unique_ptr<Engine> inner, bool apply_softmax, std::vector<std::string> labels)
    : EngineDecorator(std::move(inner), "classify"), apply_softmax_(apply_softmax), labels_(std::move(labels)) {
  if (info_.outputs.empty()) return;
  TensorInfo& out = info_.outputs.front();
  bool bad_rank = !out.shape.empty() && out.shape.size() > 2;
  if ((out.dtype_known && out.dtype != DType::kFloat32) || bad_rank) {
    throw Error::model_load("task classify needs a float32 [B, C] logits output",
                            "output \"" + out.name + "\" is " + std::string(dtype_name(out.dtype)) + " " +
                                shape_to_string(out.shape));
  }
  if (out.shape.size() == 1) out.shape.insert(out.shape.begin(), 1);
  const int64_t classes = out.shape.empty() ? -1 : out.shape.back();
  if (!labels_.empty() && classes >= 0 && static_cast<size_t>(classes) != labels_.size()) {
    throw Error::model_load("task classify: " + std::to_string(labels_.size()) + " labels for output \"" + out.name +
                                "\"",
                            "it has " + std::to_string(classes) + " classes");
  }
  info_.outputs.resize(1);
  if (!labels_.empty()) {
    const int64_t rows = out.shape.empty() ? -1 : out.shape.front();
    info_.outputs.push_back(TensorInfo{"label", DType::kString, true, {rows}, {}, true});
  }
}

Tensor ClassifyEngine::top_labels(const Tensor& scores, const std::vector<std::string>& labels) {
  const Shape& s = scores.shape();
  const int64_t rows = s.size() == 2 ? s[0] : 1;
  const int64_t cols = s.empty() ? 0 : s.back();
  if (cols <= 0 || static_cast<size_t>(cols) != labels.size()) {
    throw Error::inference("classify: " + std::to_string(cols) + " classes for " + std::to_string(labels.size()) +
                           " labels");
  }
  std::span<const float> v = scores.data<float>();
  std::vector<std::string> out;
  for (int64_t r = 0; r < rows; ++r) {
    auto row = v.subspan(static_cast<size_t>(r * cols), static_cast<size_t>(cols));
    out.push_back(labels[static_cast<size_t>(std::max_element(row.begin(), row.end()) - row.begin())]);
  }
  return Tensor::from_strings({rows}, std::move(out));
}

Tensor ClassifyEngine::classify(const Tensor& logits, bool apply_softmax, const std::string& name) {
  const Shape& s = logits.shape();
  if (s.empty() || s.size() > 2) {
    throw Error::inference("classify: output \"" + name + "\"", "expected shape [C] or [B, C], got " + shape_to_string(s));
  }
  int64_t rows = s.size() == 2 ? s[0] : 1;
  int64_t cols = s.back();
  Tensor out = Tensor::from_bytes(DType::kFloat32, {rows, cols}, logits.bytes());
  if (!apply_softmax || cols == 0) return out;
  std::span<float> v = out.mutable_data<float>();
  for (int64_t r = 0; r < rows; ++r) {
    std::span<float> row = v.subspan(static_cast<size_t>(r * cols), static_cast<size_t>(cols));
    float max = *std::max_element(row.begin(), row.end());  // subtracting it keeps exp() finite
    double sum = 0;
    for (float& x : row) sum += (x = std::exp(x - max));
    sum = std::max(sum, 1e-12);
    for (float& x : row) x = static_cast<float>(x / sum);
  }
  return out;
}

InferenceResult ClassifyEngine::post_process(const InferenceRequest& request, InferenceResult inner) const {
  const NamedTensor& out = first_float_output(inner, "classify");
  InferenceResult r;
  r.outputs.push_back({out.name, classify(out.tensor, apply_softmax_, out.name)});
  if (!labels_.empty()) r.outputs.push_back({"label", top_labels(r.outputs.front().tensor, labels_)});
  if (!request.output_names.empty()) {
    const auto& wanted = request.output_names;
    std::erase_if(r.outputs, [&wanted](const NamedTensor& t) {
      return std::find(wanted.begin(), wanted.end(), t.name) == wanted.end();
    });
  }
  return r;
}

std::optional<InferenceRequest> ClassifyEngine::adapt_request(const InferenceRequest& request) const {
  const auto& names = request.output_names;
  if (labels_.empty() || std::find(names.begin(), names.end(), "label") == names.end()) return std::nullopt;
  InferenceRequest copy = request;
  std::erase(copy.output_names, std::string("label"));
  const std::string& logits = info_.outputs.front().name;
  if (std::find(copy.output_names.begin(), copy.output_names.end(), logits) == copy.output_names.end()) {
    copy.output_names.push_back(logits);
  }
  return copy;
}

}  // namespace kapsl::internal
