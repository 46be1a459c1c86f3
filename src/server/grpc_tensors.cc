// KServe v2 gRPC tensors: typed contents and raw contents to kapsl tensors and back.
#include "server/grpc_tensors.h"

#include <cstring>
#include <limits>
#include <string>
#include <type_traits>

#include "kapsl/error.h"
#include "server/kserve_tensors.h"

namespace kapsl::server {
namespace {

using inference::InferTensorContents;

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw Error::invalid_input(where, what); }

// The typed field that carries `dtype`, by name, for messages.
const char* field_of(DType dtype) {
  switch (dtype) {
    case DType::kBool: return "bool_contents";
    case DType::kInt8:
    case DType::kInt16:
    case DType::kInt32: return "int_contents";
    case DType::kInt64: return "int64_contents";
    case DType::kUInt8:
    case DType::kUInt16:
    case DType::kUInt32: return "uint_contents";
    case DType::kUInt64: return "uint64_contents";
    case DType::kFloat32: return "fp32_contents";
    case DType::kFloat64: return "fp64_contents";
    case DType::kString: return "bytes_contents";
    case DType::kFloat16:
    case DType::kBFloat16: return nullptr;
  }
  return nullptr;
}

// How many values `contents` holds over all its fields.
int64_t values_in(const InferTensorContents& c) {
  return c.bool_contents_size() + c.int_contents_size() + c.int64_contents_size() + c.uint_contents_size() +
         c.uint64_contents_size() + c.fp32_contents_size() + c.fp64_contents_size() + c.bytes_contents_size();
}

// Copies `values` into a tensor of `dtype`, each checked to fit it.
template <typename T, typename Repeated>
Tensor narrowed(DType dtype, const Shape& shape, const Repeated& values, const std::string& where) {
  Tensor t = Tensor::zeros(dtype, shape);
  auto out = t.mutable_data<T>();
  for (int i = 0; i < values.size(); ++i) {
    const auto v = values.Get(i);
    bool fits = v <= std::numeric_limits<T>::max();
    if constexpr (std::is_signed_v<T>) fits = fits && v >= std::numeric_limits<T>::min();
    if (!fits) bad(where, "value " + std::to_string(v) + " at " + std::to_string(i) + " is out of range for its datatype");
    out[static_cast<size_t>(i)] = static_cast<T>(v);
  }
  return t;
}

template <typename T, typename Repeated>
Tensor copied(DType dtype, const Shape& shape, const Repeated& values) {
  Tensor t = Tensor::zeros(dtype, shape);
  if (!values.empty()) std::memcpy(t.mutable_bytes().data(), values.data(), t.byte_size());
  return t;
}

Tensor from_contents(DType dtype, const Shape& shape, const InferTensorContents& c, const std::string& where) {
  const char* field = field_of(dtype);
  if (field == nullptr) bad(where, std::string(dtype_name(dtype)) + " has no typed contents: send it in raw_input_contents");
  const int64_t expected = element_count(shape);  // throws on a bad or overflowing shape
  const int64_t got = values_in(c);
  if (got != expected) {
    bad(where, "shape " + shape_to_string(shape) + " needs " + std::to_string(expected) + " values but contents hold " +
                   std::to_string(got));
  }
  const auto only = [&](int size) {
    if (size != got) bad(where, std::string("datatype ") + kserve_datatype(dtype) + " takes its values in " + field);
  };
  switch (dtype) {
    case DType::kBool: {
      only(c.bool_contents_size());
      Tensor t = Tensor::zeros(dtype, shape);
      auto out = t.mutable_bytes();
      for (int i = 0; i < c.bool_contents_size(); ++i) out[static_cast<size_t>(i)] = std::byte{c.bool_contents(i) ? uint8_t{1} : uint8_t{0}};
      return t;
    }
    case DType::kInt8: only(c.int_contents_size()); return narrowed<int8_t>(dtype, shape, c.int_contents(), where);
    case DType::kInt16: only(c.int_contents_size()); return narrowed<int16_t>(dtype, shape, c.int_contents(), where);
    case DType::kInt32: only(c.int_contents_size()); return copied<int32_t>(dtype, shape, c.int_contents());
    case DType::kInt64: only(c.int64_contents_size()); return copied<int64_t>(dtype, shape, c.int64_contents());
    case DType::kUInt8: only(c.uint_contents_size()); return narrowed<uint8_t>(dtype, shape, c.uint_contents(), where);
    case DType::kUInt16: only(c.uint_contents_size()); return narrowed<uint16_t>(dtype, shape, c.uint_contents(), where);
    case DType::kUInt32: only(c.uint_contents_size()); return copied<uint32_t>(dtype, shape, c.uint_contents());
    case DType::kUInt64: only(c.uint64_contents_size()); return copied<uint64_t>(dtype, shape, c.uint64_contents());
    case DType::kFloat32: only(c.fp32_contents_size()); return copied<float>(dtype, shape, c.fp32_contents());
    case DType::kFloat64: only(c.fp64_contents_size()); return copied<double>(dtype, shape, c.fp64_contents());
    case DType::kString: {
      only(c.bytes_contents_size());
      return Tensor::from_strings(shape, {c.bytes_contents().begin(), c.bytes_contents().end()});
    }
    case DType::kFloat16:
    case DType::kBFloat16: break;
  }
  bad(where, "unsupported datatype");
}

Shape shape_of(const inference::ModelInferRequest::InferInputTensor& in, const std::string& where) {
  Shape shape(in.shape().begin(), in.shape().end());
  for (int64_t d : shape) {
    if (d < 0) bad(where, "shape " + shape_to_string(shape) + " has a negative dimension");
  }
  return shape;
}

template <typename T, typename Repeated>
void append_all(const Tensor& t, Repeated* out) {
  out->Reserve(static_cast<int>(t.element_count()));
  for (const T v : t.data<T>()) out->Add(v);
}

void to_contents(const Tensor& t, InferTensorContents& c) {
  switch (t.dtype()) {
    case DType::kBool: for (const std::byte b : t.bytes()) c.add_bool_contents(b != std::byte{0}); break;
    case DType::kInt8: append_all<int8_t>(t, c.mutable_int_contents()); break;
    case DType::kInt16: append_all<int16_t>(t, c.mutable_int_contents()); break;
    case DType::kInt32: append_all<int32_t>(t, c.mutable_int_contents()); break;
    case DType::kInt64: append_all<int64_t>(t, c.mutable_int64_contents()); break;
    case DType::kUInt8: append_all<uint8_t>(t, c.mutable_uint_contents()); break;
    case DType::kUInt16: append_all<uint16_t>(t, c.mutable_uint_contents()); break;
    case DType::kUInt32: append_all<uint32_t>(t, c.mutable_uint_contents()); break;
    case DType::kUInt64: append_all<uint64_t>(t, c.mutable_uint64_contents()); break;
    case DType::kFloat32: append_all<float>(t, c.mutable_fp32_contents()); break;
    case DType::kFloat64: append_all<double>(t, c.mutable_fp64_contents()); break;
    case DType::kString: for (const auto& s : t.strings()) c.add_bytes_contents(s); break;
    case DType::kFloat16:
    case DType::kBFloat16: break;  // raw only (outputs_to_grpc)
  }
}

}  // namespace

std::vector<NamedTensor> inputs_from_grpc(const inference::ModelInferRequest& request) {
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != request.inputs_size()) {
    bad("raw_input_contents", "has " + std::to_string(request.raw_input_contents_size()) + " entries for " +
                                  std::to_string(request.inputs_size()) + " inputs");
  }
  std::vector<NamedTensor> inputs;
  inputs.reserve(static_cast<size_t>(request.inputs_size()));
  for (int i = 0; i < request.inputs_size(); ++i) {
    const auto& in = request.inputs(i);
    const std::string where = "input '" + in.name() + "'";
    if (in.name().empty()) bad("input " + std::to_string(i), "has no name");
    const auto dtype = dtype_from_kserve(in.datatype());
    if (!dtype) bad(where, "unknown datatype '" + in.datatype().substr(0, 32) + "'");
    const Shape shape = shape_of(in, where);
    if (raw && in.has_contents() && values_in(in.contents()) > 0) {
      bad(where, "has both contents and raw_input_contents: a request uses one form");
    }
    inputs.push_back({in.name(), raw ? tensor_from_raw(*dtype, shape, request.raw_input_contents(i), where)
                                     : from_contents(*dtype, shape, in.contents(), where)});
  }
  return inputs;
}

void outputs_to_grpc(const std::vector<NamedTensor>& outputs, bool raw, inference::ModelInferResponse& response) {
  for (const auto& o : outputs) raw = raw || field_of(o.tensor.dtype()) == nullptr;
  for (const auto& [name, tensor] : outputs) {
    auto* out = response.add_outputs();
    out->set_name(name);
    out->set_datatype(kserve_datatype(tensor.dtype()));
    for (int64_t d : tensor.shape()) out->add_shape(d);
    if (raw) {
      append_raw(tensor, *response.add_raw_output_contents());
    } else {
      to_contents(tensor, *out->mutable_contents());
    }
  }
}

}  // namespace kapsl::server
