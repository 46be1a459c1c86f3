#include "onnx/tensor_proto.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace kapsl::testing {
namespace {

using TP = ::onnx::TensorProto;
constexpr int kUInt4 = 21, kInt4 = 22;  // newer than the onnx 1.12 headers

size_t elem_bits(int t) {
  switch (t) {
    case TP::DOUBLE: case TP::INT64: case TP::UINT64: case TP::COMPLEX64: return 64;
    case TP::COMPLEX128: return 128;
    case TP::FLOAT: case TP::INT32: case TP::UINT32: return 32;
    case TP::FLOAT16: case TP::BFLOAT16: case TP::INT16: case TP::UINT16: return 16;
    case kUInt4: case kInt4: return 4;
    default: return 8;  // int8, uint8, bool, float8 variants
  }
}

int64_t count(const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (auto d : dims) n *= d;
  return n;
}

template <typename T, typename Src>
void append_as(std::string& out, const Src& values) {
  for (const auto& v : values) {
    const T x = static_cast<T>(v);
    out.append(reinterpret_cast<const char*>(&x), sizeof(T));
  }
}

std::string typed_bytes(const TP& t) {
  std::string b;
  switch (t.data_type()) {
    case TP::FLOAT: case TP::COMPLEX64: append_as<float>(b, t.float_data()); break;
    case TP::DOUBLE: case TP::COMPLEX128: append_as<double>(b, t.double_data()); break;
    case TP::INT64: append_as<int64_t>(b, t.int64_data()); break;
    case TP::UINT32: append_as<uint32_t>(b, t.uint64_data()); break;
    case TP::UINT64: append_as<uint64_t>(b, t.uint64_data()); break;
    case TP::INT32: append_as<int32_t>(b, t.int32_data()); break;
    case TP::INT16: case TP::UINT16: case TP::FLOAT16: case TP::BFLOAT16: append_as<uint16_t>(b, t.int32_data()); break;
    default: append_as<uint8_t>(b, t.int32_data()); break;  // 8-bit types, bool, packed 4-bit
  }
  return b;
}

bool is_float(int t) {
  return t == TP::FLOAT || t == TP::DOUBLE || t == TP::FLOAT16 || t == TP::BFLOAT16 || t == TP::COMPLEX64 ||
         t == TP::COMPLEX128;
}

float half_to_float(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0) return (sign ? -1.0f : 1.0f) * std::ldexp(static_cast<float>(mant), -24);
  if (exp == 31) return mant ? NAN : (sign ? -INFINITY : INFINITY);
  const uint32_t bits = sign | ((exp + 112) << 23) | (mant << 13);
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

std::vector<double> as_doubles(const PlainTensor& t) {
  std::vector<double> out;
  const char* p = t.bytes.data();
  const size_t n = t.bytes.size();
  auto get = [&](auto tag, size_t i) { decltype(tag) v; std::memcpy(&v, p + i * sizeof(v), sizeof(v)); return v; };
  if (t.elem_type == TP::FLOAT || t.elem_type == TP::COMPLEX64) for (size_t i = 0; i < n / 4; ++i) out.push_back(get(float{}, i));
  else if (t.elem_type == TP::DOUBLE || t.elem_type == TP::COMPLEX128) for (size_t i = 0; i < n / 8; ++i) out.push_back(get(double{}, i));
  else if (t.elem_type == TP::FLOAT16) for (size_t i = 0; i < n / 2; ++i) out.push_back(half_to_float(get(uint16_t{}, i)));
  else if (t.elem_type == TP::BFLOAT16) {
    for (size_t i = 0; i < n / 2; ++i) {
      const uint32_t bits = uint32_t{get(uint16_t{}, i)} << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      out.push_back(f);
    }
  }
  return out;
}

}  // namespace

PlainTensor decode_tensor(const TP& t) {
  PlainTensor out;
  out.elem_type = t.data_type();
  out.dims.assign(t.dims().begin(), t.dims().end());
  if (out.elem_type == TP::STRING) {
    out.strings.assign(t.string_data().begin(), t.string_data().end());
    return out;
  }
  out.bytes = t.has_raw_data() ? t.raw_data() : typed_bytes(t);
  const size_t want = (static_cast<size_t>(count(out.dims)) * elem_bits(out.elem_type) + 7) / 8;
  if (out.bytes.size() != want) {
    throw std::runtime_error("tensor '" + t.name() + "' has " + std::to_string(out.bytes.size()) + " bytes, expected " +
                             std::to_string(want));
  }
  return out;
}

PlainValue read_value(const std::string& path, const ::onnx::TypeProto& type) {
  std::ifstream f(path, std::ios::binary);
  const std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  PlainValue v;
  if (type.has_sequence_type()) {
    ::onnx::SequenceProto s;
    if (!s.ParseFromString(data)) throw std::runtime_error("cannot parse " + path + " as SequenceProto");
    v.is_sequence = true;
    v.nested = s.sequence_values_size() > 0 || s.map_values_size() > 0 || s.optional_values_size() > 0;
    for (const auto& t : s.tensor_values()) v.tensors.push_back(decode_tensor(t));
  } else if (type.has_optional_type()) {
    ::onnx::OptionalProto o;
    if (!o.ParseFromString(data)) throw std::runtime_error("cannot parse " + path + " as OptionalProto");
    if (o.has_tensor_value()) v.tensors.push_back(decode_tensor(o.tensor_value()));
    if (o.has_sequence_value()) {
      v.is_sequence = true;
      v.nested = o.sequence_value().sequence_values_size() > 0;
      for (const auto& t : o.sequence_value().tensor_values()) v.tensors.push_back(decode_tensor(t));
    }
  } else {
    TP t;
    if (!t.ParseFromString(data)) throw std::runtime_error("cannot parse " + path + " as TensorProto");
    v.tensors.push_back(decode_tensor(t));
    // NumPy has no bfloat16, so the suite stores bfloat16 tensors as their uint16 bits.
    if (type.tensor_type().elem_type() == TP::BFLOAT16 && v.tensors[0].elem_type == TP::UINT16) {
      v.tensors[0].elem_type = TP::BFLOAT16;
    }
  }
  return v;
}

std::optional<DType> kapsl_dtype(int e) {
  switch (e) {
    case TP::FLOAT: return DType::kFloat32;
    case TP::DOUBLE: return DType::kFloat64;
    case TP::FLOAT16: return DType::kFloat16;
    case TP::BFLOAT16: return DType::kBFloat16;
    case TP::INT8: return DType::kInt8;
    case TP::INT16: return DType::kInt16;
    case TP::INT32: return DType::kInt32;
    case TP::INT64: return DType::kInt64;
    case TP::UINT8: return DType::kUInt8;
    case TP::UINT16: return DType::kUInt16;
    case TP::UINT32: return DType::kUInt32;
    case TP::UINT64: return DType::kUInt64;
    case TP::BOOL: return DType::kBool;
    case TP::STRING: return DType::kString;
    default: return std::nullopt;
  }
}

Tensor to_kapsl(const PlainTensor& t) {
  const DType d = *kapsl_dtype(t.elem_type);
  if (d == DType::kString) return Tensor::from_strings(t.dims, t.strings);
  return Tensor::from_bytes(d, t.dims, std::as_bytes(std::span(t.bytes.data(), t.bytes.size())));
}

PlainTensor from_kapsl(const Tensor& t) {
  static const int kTypes[] = {TP::FLOAT, TP::DOUBLE, TP::FLOAT16, TP::BFLOAT16, TP::INT8, TP::INT16, TP::INT32,
                               TP::INT64, TP::UINT8, TP::UINT16, TP::UINT32, TP::UINT64, TP::BOOL, TP::STRING};
  PlainTensor p;
  p.elem_type = kTypes[static_cast<int>(t.dtype())];
  p.dims = t.shape();
  p.strings = t.strings();
  p.bytes.assign(reinterpret_cast<const char*>(t.bytes().data()), t.byte_size());
  return p;
}

Ort::Value to_ort(const PlainTensor& t) {
  const auto type = static_cast<ONNXTensorElementDataType>(t.elem_type);
  if (t.elem_type == TP::STRING) {
    Ort::AllocatorWithDefaultOptions alloc;
    Ort::Value v = Ort::Value::CreateTensor(alloc, t.dims.data(), t.dims.size(), type);
    for (size_t i = 0; i < t.strings.size(); ++i) {
      char* dst = v.GetResizedStringTensorElementBuffer(i, t.strings[i].size());
      std::memcpy(dst, t.strings[i].data(), t.strings[i].size());
    }
    return v;
  }
  static char empty[16];
  static const Ort::MemoryInfo mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  void* data = t.bytes.empty() ? empty : const_cast<char*>(t.bytes.data());
  return Ort::Value::CreateTensor(mem, data, t.bytes.size(), t.dims.data(), t.dims.size(), type);
}

namespace {

PlainTensor tensor_from_ort(const Ort::Value& v) {
  const auto info = v.GetTensorTypeAndShapeInfo();
  PlainTensor p;
  p.elem_type = info.GetElementType();
  p.dims = info.GetShape();
  const size_t n = info.GetElementCount();
  if (p.elem_type == TP::STRING) {
    for (size_t i = 0; i < n; ++i) p.strings.push_back(v.GetStringTensorElement(i));
  } else {
    const size_t bytes = (n * elem_bits(p.elem_type) + 7) / 8;
    if (bytes) p.bytes.assign(static_cast<const char*>(v.GetTensorRawData()), bytes);
  }
  return p;
}

}  // namespace

PlainValue from_ort(const Ort::Value& v) {
  PlainValue out;
  if (!v.HasValue()) return out;
  if (v.IsTensor()) {
    out.tensors.push_back(tensor_from_ort(v));
    return out;
  }
  out.is_sequence = true;
  Ort::AllocatorWithDefaultOptions alloc;
  for (size_t i = 0; i < v.GetCount(); ++i) {
    Ort::Value e = v.GetValue(static_cast<int>(i), alloc);
    if (!e.IsTensor()) { out.nested = true; continue; }
    out.tensors.push_back(tensor_from_ort(e));
  }
  return out;
}

std::string compare(const PlainTensor& e, const PlainTensor& g, double rtol, double atol) {
  if (e.elem_type != g.elem_type) {
    return "element type " + std::to_string(g.elem_type) + ", expected " + std::to_string(e.elem_type);
  }
  if (e.dims != g.dims) return "shape " + shape_to_string(g.dims) + ", expected " + shape_to_string(e.dims);
  if (e.elem_type == TP::STRING) return e.strings == g.strings ? "" : "strings differ";
  if (!is_float(e.elem_type)) return e.bytes == g.bytes ? "" : "values differ";
  const auto a = as_doubles(e), b = as_doubles(g);
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i]) && std::isnan(b[i])) continue;
    if (a[i] == b[i]) continue;  // equal infinities
    if (!(std::fabs(a[i] - b[i]) <= atol + rtol * std::fabs(a[i]))) {
      return "element " + std::to_string(i) + " is " + std::to_string(b[i]) + ", expected " + std::to_string(a[i]);
    }
  }
  return "";
}

}  // namespace kapsl::testing
