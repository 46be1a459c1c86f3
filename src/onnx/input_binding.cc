// Binding a request's inputs and outputs to the model's, with the opt-in LLM auto-fill.
#include <algorithm>
#include <charconv>
#include <cstring>
#include <utility>

#include "kapsl/error.h"
#include "onnx/binding.h"

namespace kapsl::onnx {
namespace {

std::string list_names(const std::vector<IoSpec>& specs) {
  std::string s;
  for (const auto& spec : specs) s += (s.empty() ? "'" : ", '") + spec.name + "'";
  return s.empty() ? "none" : s;
}

size_t find_spec(const std::vector<IoSpec>& specs, std::string_view name) {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return i;
  }
  return specs.size();
}

// "<base>[<index>]" naming an element of a sequence input, or nullopt.
std::optional<std::pair<size_t, size_t>> sequence_element(const std::vector<IoSpec>& specs, std::string_view name) {
  if (!name.ends_with(']')) return std::nullopt;
  const size_t open = name.rfind('[');
  if (open == std::string_view::npos) return std::nullopt;
  size_t index = 0;
  const char* first = name.data() + open + 1;
  const char* last = name.data() + name.size() - 1;
  if (first == last || std::from_chars(first, last, index).ptr != last) return std::nullopt;
  const size_t spec = find_spec(specs, name.substr(0, open));
  if (spec == specs.size() || !specs[spec].is_sequence) return std::nullopt;
  return std::make_pair(spec, index);
}

void set_element(Tensor& t, size_t i, int64_t v) {
  std::byte* p = t.mutable_bytes().data();
  switch (t.dtype()) {
    case DType::kFloat32: reinterpret_cast<float*>(p)[i] = static_cast<float>(v); break;
    case DType::kFloat64: reinterpret_cast<double*>(p)[i] = static_cast<double>(v); break;
    case DType::kInt8: reinterpret_cast<int8_t*>(p)[i] = static_cast<int8_t>(v); break;
    case DType::kInt16: reinterpret_cast<int16_t*>(p)[i] = static_cast<int16_t>(v); break;
    case DType::kInt32: reinterpret_cast<int32_t*>(p)[i] = static_cast<int32_t>(v); break;
    case DType::kInt64: reinterpret_cast<int64_t*>(p)[i] = v; break;
    case DType::kUInt8:
    case DType::kBool: reinterpret_cast<uint8_t*>(p)[i] = static_cast<uint8_t>(v); break;
    case DType::kUInt16: reinterpret_cast<uint16_t*>(p)[i] = static_cast<uint16_t>(v); break;
    case DType::kUInt32: reinterpret_cast<uint32_t*>(p)[i] = static_cast<uint32_t>(v); break;
    case DType::kUInt64: reinterpret_cast<uint64_t*>(p)[i] = static_cast<uint64_t>(v); break;
    case DType::kFloat16:
    case DType::kBFloat16: {
      // Exact for the small integers filled here: float's top 16 bits (bfloat16), or half's
      // exponent rebased from 127 to 15 with the mantissa cut to 10 bits.
      const float f = static_cast<float>(v);
      uint32_t bits = 0;
      std::memcpy(&bits, &f, 4);
      uint16_t h = static_cast<uint16_t>(bits >> 16);
      if (t.dtype() == DType::kFloat16) {
        h = v == 0 ? 0 : static_cast<uint16_t>(((((bits >> 23) & 0xff) - 112) << 10) | ((bits >> 13) & 0x3ff));
      }
      reinterpret_cast<uint16_t*>(p)[i] = h;
      break;
    }
    case DType::kString: break;
  }
}

// The auto-filled value of input `spec`, or nullopt if auto-fill does not know it.
std::optional<Tensor> auto_fill(const IoSpec& spec, int64_t batch, int64_t seq) {
  if (!spec.dtype || *spec.dtype == DType::kString || spec.kind != ONNX_TYPE_TENSOR) return std::nullopt;
  const bool mask = spec.name.find("attention_mask") != std::string::npos;
  const bool positions = spec.name.find("position_ids") != std::string::npos;
  if ((mask || positions) && spec.shape.size() == 2) {
    Tensor t = Tensor::zeros(*spec.dtype, {batch, seq});
    for (int64_t i = 0; i < batch * seq; ++i) set_element(t, static_cast<size_t>(i), mask ? 1 : i % seq);
    return t;
  }
  if (spec.name.starts_with("past_key_values") && spec.shape.size() == 4) {
    const int64_t heads = spec.shape[1] > 0 ? spec.shape[1] : 1;
    const int64_t dim = spec.shape[3] > 0 ? spec.shape[3] : 64;
    return Tensor::zeros(*spec.dtype, {batch, heads, 0, dim});
  }
  return std::nullopt;
}

// Which of the model's inputs a request has bound: a bit mask for the usual few inputs
// (allocating nothing on the hot path), a vector beyond 64.
class BoundSet {
 public:
  explicit BoundSet(size_t n) {
    if (n > 64) many_.resize(n);
  }
  bool test(size_t i) const { return many_.empty() ? ((few_ >> i) & 1u) != 0 : many_[i]; }
  void set(size_t i) {
    if (many_.empty()) {
      few_ |= uint64_t{1} << i;
    } else {
      many_[i] = true;
    }
  }

 private:
  uint64_t few_ = 0;
  std::vector<bool> many_;
};

void fill_missing(const std::vector<IoSpec>& specs, const BoundSet& bound, BoundInputs& in,
                  const InferenceRequest& request, bool auto_fill_enabled) {
  int64_t batch = 1, seq = 1;
  if (!request.inputs.empty()) {
    const Shape& s = request.inputs.front().tensor.shape();
    if (!s.empty()) batch = s[0];
    if (s.size() >= 2) seq = s[1];
  }
  for (size_t i = 0; i < specs.size(); ++i) {
    if (bound.test(i) || specs[i].is_optional) continue;  // an omitted optional input is None
    std::optional<Tensor> filled = auto_fill_enabled ? auto_fill(specs[i], batch, seq) : std::nullopt;
    if (!filled) {
      std::string given;
      for (const auto& n : request.inputs) given += (given.empty() ? "'" : ", '") + n.name + "'";
      throw Error::invalid_input("missing input '" + specs[i].name + "'",
                                 "the model needs " + list_names(specs) + "; the request has " +
                                     (given.empty() ? std::string("none") : given));
    }
    in.filled.push_back(std::move(*filled));
    in.names.push_back(specs[i].name.c_str());
    in.values.push_back(to_ort_value(in.filled.back()));
  }
}

using SequenceElements = std::vector<std::vector<std::pair<size_t, Ort::Value>>>;

// Builds one sequence value per sequence input from its "<name>[i]" elements.
void bind_sequences(const std::vector<IoSpec>& specs, SequenceElements& sequences, BoundSet& bound,
                    BoundInputs& in) {
  for (size_t i = 0; i < specs.size(); ++i) {
    auto& elements = sequences[i];
    if (elements.empty()) continue;
    std::sort(elements.begin(), elements.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<Ort::Value> values;
    for (size_t k = 0; k < elements.size(); ++k) {
      if (elements[k].first != k) {
        throw Error::invalid_input("sequence input '" + specs[i].name + "' has a gap",
                                   "element [" + std::to_string(k) + "] is missing or repeated");
      }
      values.push_back(std::move(elements[k].second));
    }
    bound.set(i);
    in.names.push_back(specs[i].name.c_str());
    in.values.push_back(Ort::Value::CreateSequence(values));
  }
}

}  // namespace

void BoundInputs::clear() {
  names.clear();
  values.clear();
  filled.clear();
  request = nullptr;
}

void bind_inputs(const std::vector<IoSpec>& specs, const InferenceRequest& request, bool auto_fill_enabled,
                 BoundInputs& in) {
  in.clear();
  if (specs.empty() && !request.inputs.empty()) {
    throw Error::invalid_input("the model has no inputs", "got " + std::to_string(request.inputs.size()));
  }
  in.request = &request;
  in.names.reserve(specs.size());
  in.values.reserve(specs.size());
  BoundSet bound(specs.size());
  SequenceElements sequences;  // sized only when a request uses sequence inputs
  for (const auto& input : request.inputs) {
    const std::string_view name = input.name.empty() ? std::string_view(specs[0].name) : std::string_view(input.name);
    const size_t i = find_spec(specs, name);
    if (i == specs.size()) {
      const auto element = sequence_element(specs, name);
      if (!element) {
        throw Error::invalid_input("unknown input '" + std::string(name) + "'", "the model's inputs are " + list_names(specs));
      }
      IoSpec spec = specs[element->first];
      spec.name = std::string(name);
      check_input(spec, input.tensor);
      sequences.resize(specs.size());
      sequences[element->first].emplace_back(element->second, to_ort_value(input.tensor));
      continue;
    }
    if (bound.test(i)) throw Error::invalid_input("input '" + specs[i].name + "' is given twice");
    if (specs[i].is_sequence) {
      throw Error::invalid_input("input '" + specs[i].name + "' is a sequence",
                                 "pass its elements as '" + specs[i].name + "[0]', '" + specs[i].name + "[1]', ...");
    }
    check_input(specs[i], input.tensor);
    bound.set(i);
    in.names.push_back(specs[i].name.c_str());
    in.values.push_back(to_ort_value(input.tensor));
  }
  if (!sequences.empty()) bind_sequences(specs, sequences, bound, in);
  fill_missing(specs, bound, in, request, auto_fill_enabled);
}

std::vector<size_t> select_outputs(const std::vector<IoSpec>& specs, const std::vector<std::string>& names) {
  std::vector<size_t> out;
  if (names.empty()) {
    for (size_t i = 0; i < specs.size(); ++i) out.push_back(i);
    return out;
  }
  for (const auto& name : names) {
    const size_t i = find_spec(specs, name);
    if (i == specs.size()) {
      throw Error::invalid_input("unknown output '" + name + "'", "the model's outputs are " + list_names(specs));
    }
    if (std::find(out.begin(), out.end(), i) != out.end()) {
      throw Error::invalid_input("output '" + name + "' is requested twice");
    }
    out.push_back(i);
  }
  return out;
}

InferenceRequest synthesize_request(const std::vector<IoSpec>& specs) {
  InferenceRequest request;
  for (const auto& spec : specs) {
    if (spec.is_optional) continue;
    if (!spec.dtype || spec.kind != ONNX_TYPE_TENSOR) {
      throw Error::invalid_input("cannot synthesise input '" + spec.name + "'",
                                 "it is not a tensor of a kapsl dtype (" + ort_type_name(spec.element) + ")");
    }
    Shape shape = spec.shape;
    for (auto& d : shape) d = d < 0 ? 1 : d;
    request.add_input(spec.name, Tensor::zeros(*spec.dtype, std::move(shape)));
  }
  return request;
}

}  // namespace kapsl::onnx
