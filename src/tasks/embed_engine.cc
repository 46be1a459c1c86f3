// The embed wrapper (kapsl-backends 0.1.1 OnnxEmbedBackend): masked mean pooling and L2
// normalisation.
#include <algorithm>
#include <cmath>

#include "tasks/engine_decorator.h"

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

EmbedEngine::EmbedEngine(std::unique_ptr<Engine> inner, bool normalize, std::shared_ptr<const WordPiece> tokenizer)
    : EngineDecorator(std::move(inner), "embed"), normalize_(normalize), tokenizer_(std::move(tokenizer)) {
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

Tensor EmbedEngine::mean_pool(const Tensor& hidden, const Tensor* mask, bool normalize, const std::string& name) {
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
  r.outputs.push_back({out.name, mean_pool(out.tensor, mask, normalize_, out.name)});
  return r;
}

namespace {

// The declared input whose name contains `part`, or nullptr.
const TensorInfo* declared_input(const ModelInfo& info, std::string_view part) {
  for (const TensorInfo& t : info.inputs) {
    if (t.name.find(part) != std::string::npos) return &t;
  }
  return nullptr;
}

// A [B, S] integer tensor in `dtype` (int64 unless the model says int32) from row-major values.
Tensor id_matrix(DType dtype, int64_t rows, int64_t cols, const std::vector<int64_t>& values) {
  if (dtype == DType::kInt32) {
    std::vector<int32_t> narrow(values.begin(), values.end());
    return Tensor::from_vector<int32_t>({rows, cols}, std::move(narrow));
  }
  return Tensor::from_vector<int64_t>({rows, cols}, values);
}

}  // namespace

std::vector<std::vector<int32_t>> EmbedEngine::token_ids(std::span<const EmbeddingInput> inputs) const {
  std::vector<std::vector<int32_t>> ids;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (const auto* text = std::get_if<std::string>(&inputs[i])) {
      if (!tokenizer_) {
        throw Error::invalid_input("input " + std::to_string(i) + " is text, but model \"" + info_.name +
                                       "\" has no tokenizer",
                                   "send token ids, or name a vocabulary in the manifest's onnx.tokenizer");
      }
      ids.push_back(tokenizer_->encode(*text));
    } else {
      ids.push_back(std::get<std::vector<int32_t>>(inputs[i]));
    }
    if (ids.back().empty()) throw Error::invalid_input("input " + std::to_string(i) + " is empty");
    for (int32_t id : ids.back()) {
      if (id < 0 || (tokenizer_ && id >= tokenizer_->vocab_size())) {
        throw Error::invalid_input("input " + std::to_string(i) + ": token id " + std::to_string(id) + " is out of range");
      }
    }
  }
  return ids;
}

InferenceRequest EmbedEngine::encoder_request(const std::vector<std::vector<int32_t>>& ids) const {
  const ModelInfo& model = inner().model_info();
  const TensorInfo* input_ids = declared_input(model, "input_ids");
  if (input_ids == nullptr && !model.inputs.empty()) input_ids = &model.inputs.front();
  if (input_ids == nullptr) throw Error::invalid_input("model \"" + info_.name + "\" declares no inputs to feed token ids to");
  size_t longest = 0;
  for (const auto& row : ids) longest = std::max(longest, row.size());
  const int64_t fixed = input_ids->shape.size() == 2 ? input_ids->shape[1] : -1;
  if (fixed > 0 && longest > static_cast<size_t>(fixed)) {
    throw Error::invalid_input("an input has " + std::to_string(longest) + " tokens",
                               "model \"" + info_.name + "\" takes at most " + std::to_string(fixed));
  }
  const auto rows = static_cast<int64_t>(ids.size());
  const int64_t cols = fixed > 0 ? fixed : static_cast<int64_t>(longest);
  std::vector<int64_t> values(static_cast<size_t>(rows * cols), tokenizer_ ? tokenizer_->pad_id() : 0);
  std::vector<int64_t> mask(values.size(), 0);
  for (size_t r = 0; r < ids.size(); ++r) {
    for (size_t c = 0; c < ids[r].size(); ++c) {
      values[r * static_cast<size_t>(cols) + c] = ids[r][c];
      mask[r * static_cast<size_t>(cols) + c] = 1;
    }
  }
  InferenceRequest request;
  request.add_input(input_ids->name, id_matrix(input_ids->dtype, rows, cols, values));
  const TensorInfo* declared_mask = declared_input(model, "attention_mask");
  request.add_input(declared_mask ? declared_mask->name : "attention_mask",
                    id_matrix(declared_mask ? declared_mask->dtype : DType::kInt64, rows, cols, mask));
  if (const TensorInfo* types = declared_input(model, "token_type_ids")) {
    request.add_input(types->name, id_matrix(types->dtype, rows, cols, std::vector<int64_t>(mask.size(), 0)));
  }
  if (const TensorInfo* positions = declared_input(model, "position_ids")) {
    std::vector<int64_t> pos(mask.size());
    for (size_t i = 0; i < pos.size(); ++i) pos[i] = static_cast<int64_t>(i % static_cast<size_t>(cols));
    request.add_input(positions->name, id_matrix(positions->dtype, rows, cols, pos));
  }
  return request;
}

Embeddings EmbedEngine::embed(std::span<const EmbeddingInput> inputs, const EmbedOptions& options) {
  Embeddings out;
  if (inputs.empty()) return out;
  const auto ids = token_ids(inputs);
  for (const auto& row : ids) out.prompt_tokens += row.size();
  InferenceRequest request = encoder_request(ids);
  request.deadline = options.deadline;
  request.cancel = options.cancel;
  const std::optional<InferenceRequest> adapted = adapt_request(request);
  InferenceResult inner_result = inner_infer(adapted ? *adapted : request);
  if (inner_result.outputs.empty()) throw Error::inference("embed: the model returned no output");
  const NamedTensor& hidden = inner_result.outputs.front();
  const Shape& s = hidden.tensor.shape();
  const Tensor* mask = s.size() == 3 ? find_mask(request, s[0] * s[1]) : nullptr;
  const Tensor pooled = mean_pool(hidden.tensor, mask, options.normalize, hidden.name);
  const int64_t d = pooled.shape()[1];
  const std::span<const float> v = pooled.data<float>();
  for (size_t r = 0; r < ids.size(); ++r) {
    out.vectors.emplace_back(v.begin() + static_cast<ptrdiff_t>(r * static_cast<size_t>(d)),
                             v.begin() + static_cast<ptrdiff_t>((r + 1) * static_cast<size_t>(d)));
  }
  return out;
}

uint32_t EmbedEngine::embedding_size() const {
  const Shape& s = info_.outputs.empty() ? Shape{} : info_.outputs.front().shape;
  return s.size() == 2 && s[1] > 0 ? static_cast<uint32_t>(s[1]) : 0;
}

}  // namespace kapsl::internal
