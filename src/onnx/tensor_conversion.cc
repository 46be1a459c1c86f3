// Element types, model metadata and the Tensor <-> Ort::Value conversions.
#include "onnx/binding.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <functional>
#include <utility>

#include "kapsl/error.h"
#include "onnx/ort_env.h"
#include "onnx/ort_error.h"

namespace kapsl::onnx {
namespace {

struct TypePair {
  ONNXTensorElementDataType ort;
  DType dtype;
};

constexpr std::array<TypePair, 14> kTypes = {{
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT, DType::kFloat32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE, DType::kFloat64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16, DType::kFloat16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BFLOAT16, DType::kBFloat16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8, DType::kInt8},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16, DType::kInt16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32, DType::kInt32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64, DType::kInt64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8, DType::kUInt8},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT16, DType::kUInt16},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT32, DType::kUInt32},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT64, DType::kUInt64},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL, DType::kBool},
    {ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING, DType::kString},
}};

// A valid address for empty tensors: ONNX Runtime wants a data pointer even for 0 bytes.
alignas(16) std::byte g_empty[16];

// Fills `spec` from a tensor type (the model's declared tensor, or a sequence's element).
void read_tensor_type(const Ort::ConstTensorTypeAndShapeInfo& t, IoSpec& spec) {
  spec.element = t.GetElementType();
  spec.dtype = dtype_from_ort(spec.element);
  spec.has_shape = t.HasShape();
  spec.shape = t.GetShape();
  spec.dim_names.clear();
  for (const char* n : t.GetSymbolicDimensions()) spec.dim_names.emplace_back(n ? n : "");
}

// Fills `spec` from a type, unwrapping optionals and sequences of tensors.
void read_type(const Ort::ConstTypeInfo& type, IoSpec& spec, int depth) {
  const ONNXType kind = type.GetONNXType();
  if (depth == 0) spec.kind = kind;
  if (kind == ONNX_TYPE_TENSOR || kind == ONNX_TYPE_SPARSETENSOR) {
    read_tensor_type(type.GetTensorTypeAndShapeInfo(), spec);
  } else if (kind == ONNX_TYPE_SEQUENCE && depth < 2) {
    spec.is_sequence = true;
    const Ort::TypeInfo element = type.GetSequenceTypeInfo().GetSequenceElementType();
    read_type(element.GetConst(), spec, depth + 1);
  } else if (kind == ONNX_TYPE_OPTIONAL && depth < 2) {
    spec.is_optional = true;
    const Ort::TypeInfo inner = type.GetOptionalTypeInfo().GetOptionalElementType();
    read_type(inner.GetConst(), spec, depth + 1);
  }
}

void release_ort_value(void* value) noexcept { Ort::GetApi().ReleaseValue(static_cast<OrtValue*>(value)); }

template <typename Getter>
std::vector<IoSpec> read_specs(size_t count, Getter&& get) {
  std::vector<IoSpec> specs(count);
  for (size_t i = 0; i < count; ++i) get(i, specs[i]);
  return specs;
}

}  // namespace

std::optional<DType> dtype_from_ort(ONNXTensorElementDataType t) noexcept {
  for (const auto& p : kTypes) {
    if (p.ort == t) return p.dtype;
  }
  return std::nullopt;
}

ONNXTensorElementDataType ort_from_dtype(DType d) noexcept {
  for (const auto& p : kTypes) {
    if (p.dtype == d) return p.ort;
  }
  return ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
}

std::string ort_type_name(ONNXTensorElementDataType t) {
  if (auto d = dtype_from_ort(t)) return std::string(dtype_name(*d));
  switch (t) {
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX64: return "complex64";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_COMPLEX128: return "complex128";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FN: return "float8e4m3fn";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E4M3FNUZ: return "float8e4m3fnuz";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2: return "float8e5m2";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT8E5M2FNUZ: return "float8e5m2fnuz";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT4: return "uint4";
    case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT4: return "int4";
    default: return "element type " + std::to_string(static_cast<int>(t));
  }
}

std::vector<IoSpec> read_inputs(const Ort::Session& session) {
  Ort::AllocatorWithDefaultOptions alloc;
  return read_specs(session.GetInputCount(), [&](size_t i, IoSpec& s) {
    s.name = session.GetInputNameAllocated(i, alloc).get();
    const Ort::TypeInfo type = session.GetInputTypeInfo(i);
    read_type(type.GetConst(), s, 0);
  });
}

std::vector<IoSpec> read_outputs(const Ort::Session& session) {
  Ort::AllocatorWithDefaultOptions alloc;
  return read_specs(session.GetOutputCount(), [&](size_t i, IoSpec& s) {
    s.name = session.GetOutputNameAllocated(i, alloc).get();
    const Ort::TypeInfo type = session.GetOutputTypeInfo(i);
    read_type(type.GetConst(), s, 0);
  });
}

TensorInfo to_tensor_info(const IoSpec& spec) {
  TensorInfo info;
  info.name = spec.name;
  info.dtype = spec.dtype.value_or(DType::kFloat32);
  info.dtype_known = spec.dtype.has_value();
  info.shape = spec.shape;
  info.dim_names = spec.dim_names;
  info.is_tensor = spec.kind == ONNX_TYPE_TENSOR;
  return info;
}

namespace {

// The message is built only on failure: check_input runs on every input of every call.
[[noreturn]] void bad_input(const IoSpec& spec, std::string_view what, const std::string& detail) {
  throw Error::invalid_input("input '" + spec.name + "' " + std::string(what), detail);
}

}  // namespace

void check_input(const IoSpec& spec, const Tensor& tensor) {
  if (!spec.dtype || *spec.dtype != tensor.dtype()) {
    bad_input(spec, "has the wrong dtype",
              "expected " + ort_type_name(spec.element) + ", got " + std::string(dtype_name(tensor.dtype())));
  }
  if (!spec.has_shape) return;  // the model does not declare a shape
  const Shape& got = tensor.shape();
  if (got.size() != spec.shape.size()) {
    bad_input(spec, "has the wrong rank",
              "expected rank " + std::to_string(spec.shape.size()) + " " + shape_to_string(spec.shape) +
                  ", got rank " + std::to_string(got.size()) + " " + shape_to_string(got));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    if (spec.shape[i] >= 0 && spec.shape[i] != got[i]) {
      bad_input(spec, "has the wrong shape",
                "dimension " + std::to_string(i) + " must be " + std::to_string(spec.shape[i]) + ": expected " +
                    shape_to_string(spec.shape) + " (-1 = any), got " + shape_to_string(got));
    }
  }
}

Ort::Value to_ort_value(const Tensor& t) {
  const Shape& shape = t.shape();
  if (t.dtype() == DType::kString) {
    Ort::AllocatorWithDefaultOptions alloc;
    Ort::Value v = Ort::Value::CreateTensor(alloc, shape.data(), shape.size(), ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING);
    const auto& strings = t.strings();
    for (size_t i = 0; i < strings.size(); ++i) {
      // The sized buffer keeps embedded NULs, which FillStringTensor's C strings would cut.
      char* dst = v.GetResizedStringTensorElementBuffer(i, strings[i].size());
      if (!strings[i].empty()) std::memcpy(dst, strings[i].data(), strings[i].size());
    }
    return v;
  }
  // ONNX Runtime only reads inputs, so lending it the request's const bytes is safe.
  void* data = t.byte_size() ? const_cast<std::byte*>(t.bytes().data()) : static_cast<void*>(g_empty);
  return Ort::Value::CreateTensor(cpu_memory_info(), data, t.byte_size(), shape.data(), shape.size(),
                                  ort_from_dtype(t.dtype()));
}

bool BoundInputs::lends(const void* data) const {
  const auto inside = [data](const Tensor& t) {
    const std::byte* first = t.bytes().data();
    const auto* p = static_cast<const std::byte*>(data);
    return t.byte_size() > 0 && std::less_equal<>()(first, p) && std::less<>()(p, first + t.byte_size());
  };
  if (request != nullptr && std::any_of(request->inputs.begin(), request->inputs.end(),
                                        [&](const NamedTensor& n) { return inside(n.tensor); })) {
    return true;
  }
  return std::any_of(filled.begin(), filled.end(), inside);
}

Tensor to_tensor(Ort::Value&& value, std::string_view name, const BoundInputs& in) {
  // The by-reference query: GetTensorTypeAndShapeInfo builds a type object per call, which
  // measured as about half of the engine's per-call overhead on a tiny model.
  ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;
  Ort::Value::Shape ref{};
  value.GetTensorElementTypeAndShapeDataReference(element, ref);
  const auto dtype = dtype_from_ort(element);
  if (!dtype) {
    throw Error::inference("output '" + std::string(name) + "' cannot be returned",
                           "its element type " + ort_type_name(element) + " has no kapsl DType");
  }
  Shape shape(ref.shape, ref.shape + ref.shape_len);
  if (*dtype == DType::kString) {
    const auto n = static_cast<size_t>(element_count(shape));
    std::vector<std::string> strings(n);
    for (size_t i = 0; i < n; ++i) strings[i] = value.GetStringTensorElement(i);
    return Tensor::from_strings(std::move(shape), std::move(strings));
  }
  const size_t bytes = byte_size(*dtype, shape);
  if (bytes == 0) return Tensor::from_bytes(*dtype, std::move(shape), {});
  // The tensor takes the OrtValue over and uses ONNX Runtime's buffer in place: copying it
  // was about 40% of the engine's instructions over raw ONNX Runtime on a tiny model. The
  // buffer's allocator is kept alive by the OrtValue, so it may outlive the session.
  auto* data = static_cast<std::byte*>(value.GetTensorMutableRawData());
  if (in.lends(data)) return Tensor::from_bytes(*dtype, std::move(shape), {data, bytes});
  return Tensor::adopt(*dtype, std::move(shape), {data, bytes}, release_ort_value, value.release());
}

void append_output(const std::string& name, Ort::Value&& value, const BoundInputs& in,
                   std::vector<NamedTensor>& out) {
  if (!value.HasValue()) return;  // an empty optional holds nothing to return
  if (value.IsTensor()) {
    out.push_back({name, to_tensor(std::move(value), name, in)});
    return;
  }
  const auto type = value.GetTypeInfo();
  if (type.GetONNXType() != ONNX_TYPE_SEQUENCE && type.GetONNXType() != ONNX_TYPE_OPTIONAL) {
    throw Error::inference("output '" + name + "' cannot be returned", "it is neither a tensor nor a sequence of tensors");
  }
  Ort::AllocatorWithDefaultOptions alloc;
  const size_t n = value.GetCount();
  for (size_t i = 0; i < n; ++i) {
    const std::string element = name + "[" + std::to_string(i) + "]";
    Ort::Value v = value.GetValue(static_cast<int>(i), alloc);
    out.push_back({element, to_tensor(std::move(v), element, in)});
  }
}

}  // namespace kapsl::onnx
