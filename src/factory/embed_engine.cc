// The embed wrapper (kapsl-backends 0.1.1 OnnxEmbedBackend): masked mean pooling and L2
// normalisation.
#include <algorithm>
#include <cmath>

#include "factory/engine_decorator.h"

namespace kapsl::internal {
namespace {

// Mask weight of element i: its value as a float for numeric dtypes (0 = padding).
std::vector<float> mask_weights(const Tensor& mask) {
  std::vector<float> w(static_cast<size_t>(mask.element_count()));
  auto copy = [&w](auto values) { std::transform(values.begin(), values.end(), w.begin(), [](auto x) { return static_cast<float>(x); }); };
  switch (mask.dtype()) {
    case DType::kFloat32: copy(mask.data<float>()); break;
    case DType::kInt64: copy(mask.data<int64_t>()); break;
    case DType::kInt32: copy(mask.data<int32_t>()); break;
    case DType::kInt8: copy(mask.data<int8_t>()); break;
    case DType::kUInt8: copy(mask.data<uint8_t>()); break;
    case DType::kBool: copy(mask.data<bool>()); break;
    default: throw Error::invalid_input("attention_mask", "expected a float32, int64, int32, int8, uint8 or bool tensor");
  }
  return w;
}

void l2_normalize(std::span<float> row) {
  double norm = 0;
  for (float x : row) norm += static_cast<double>(x) * x;
  norm = std::max(std::sqrt(norm), 1e-12);  // a zero vector stays zero, not NaN
  for (float& x : row) x = static_cast<float>(x / norm);
}

// The request's attention mask for B*S positions, or nullptr.
const Tensor* find_mask(const InferenceRequest& request, int64_t positions) {
  for (const NamedTensor& in : request.inputs) {
    if (in.name.find("attention_mask") != std::string::npos && in.tensor.element_count() == positions &&
        in.tensor.dtype() != DType::kString) {
      return &in.tensor;
    }
  }
  return nullptr;
}

}  // namespace

EmbedEngine::EmbedEngine(std::unique_ptr<Engine> inner, bool normalize)
    : EngineDecorator(std::move(inner), "embed"), normalize_(normalize) {
  if (info_.outputs.empty()) return;
  TensorInfo& out = info_.outputs.front();
  bool bad_rank = !out.shape.empty() && (out.shape.size() < 2 || out.shape.size() > 3);
  if ((out.dtype_known && out.dtype != DType::kFloat32) || bad_rank) {
    throw Error::model_load("task embed needs a float32 [B, S, D] or [B, D] output",
                            "output \"" + out.name + "\" is " + std::string(dtype_name(out.dtype)) + " " +
                                shape_to_string(out.shape));
  }
  if (out.shape.size() == 3) out.shape = {out.shape[0], out.shape[2]};
  info_.outputs.resize(1);
}

Tensor EmbedEngine::embed(const Tensor& hidden, const Tensor* mask, bool normalize, const std::string& name) {
  if (hidden.dtype() != DType::kFloat32) {
    throw Error::inference("embed: output \"" + name + "\"", "expected float32, got " + std::string(dtype_name(hidden.dtype())));
  }
  const Shape& s = hidden.shape();
  if (s.size() != 2 && s.size() != 3) {
    throw Error::inference("embed: output \"" + name + "\"", "expected shape [B, S, D] or [B, D], got " + shape_to_string(s));
  }
  int64_t b = s[0], d = s.back(), seq = s.size() == 3 ? s[1] : 1;
  Tensor out = Tensor::zeros(DType::kFloat32, {b, d});
  std::span<float> o = out.mutable_data<float>();
  std::span<const float> h = hidden.data<float>();
  std::vector<float> w = mask && s.size() == 3 ? mask_weights(*mask) : std::vector<float>(size_t(b * seq), 1.0f);
  for (int64_t i = 0; i < b; ++i) {
    std::span<float> row = o.subspan(size_t(i * d), size_t(d));
    double weight = 0;
    for (int64_t t = 0; t < seq; ++t) {
      float wt = w[size_t(i * seq + t)];
      weight += wt;
      for (int64_t k = 0; k < d; ++k) row[size_t(k)] += wt * h[size_t((i * seq + t) * d + k)];
    }
    weight = std::max(weight, 1e-9);  // an all-padding row pools to zeros, not NaN
    for (float& x : row) x = static_cast<float>(x / weight);
    if (normalize) l2_normalize(row);
  }
  return out;
}

std::optional<InferenceRequest> EmbedEngine::adapt_request(const InferenceRequest& request) const {
  const std::vector<TensorInfo>& declared = inner().model_info().inputs;
  auto undeclared_mask = [&declared](const NamedTensor& in) {
    if (in.name.find("attention_mask") == std::string::npos) return false;
    return std::none_of(declared.begin(), declared.end(), [&in](const TensorInfo& t) { return t.name == in.name; });
  };
  if (declared.empty() || std::none_of(request.inputs.begin(), request.inputs.end(), undeclared_mask)) return std::nullopt;
  InferenceRequest copy = request;
  std::erase_if(copy.inputs, undeclared_mask);
  return copy;
}

InferenceResult EmbedEngine::post_process(const InferenceRequest& request, InferenceResult inner) const {
  if (inner.outputs.empty()) throw Error::inference("embed: the model returned no output");
  const NamedTensor& out = inner.outputs.front();
  const Shape& s = out.tensor.shape();
  const Tensor* mask = s.size() == 3 ? find_mask(request, s[0] * s[1]) : nullptr;
  InferenceResult r;
  r.outputs.push_back({out.name, embed(out.tensor, mask, normalize_, out.name)});
  return r;
}

}  // namespace kapsl::internal
