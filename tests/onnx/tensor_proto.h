// Decoding the ONNX backend test suite's .pb files (TensorProto, SequenceProto,
// OptionalProto) into plain values, and converting them to and from kapsl::Tensor and
// Ort::Value, for the conformance test.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_TESTS_ONNX_TENSOR_PROTO_H_
#define KAPSL_TESTS_ONNX_TENSOR_PROTO_H_

#include <onnx/onnx-data_pb.h>
#include <onnx/onnx_pb.h>
#include <onnxruntime_cxx_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "kapsl/tensor.h"

namespace kapsl::testing {

// A tensor of any ONNX element type: little-endian packed bytes (4-bit types two per byte),
// or strings.
struct PlainTensor {
  int elem_type = 0;  // ::onnx::TensorProto::DataType (same numbers as ONNXTensorElementDataType)
  std::vector<int64_t> dims;
  std::string bytes;
  std::vector<std::string> strings;
};

// A flattened value: one tensor, the elements of a sequence, or nothing (an empty optional).
struct PlainValue {
  bool is_sequence = false;
  std::vector<PlainTensor> tensors;  // one for a tensor; the elements for a sequence; none for None
  bool nested = false;               // a sequence of sequences or maps: not representable here
};

PlainTensor decode_tensor(const ::onnx::TensorProto& t);
// Reads a .pb file as the kind `type` says (tensor, sequence or optional).
PlainValue read_value(const std::string& path, const ::onnx::TypeProto& type);

std::optional<DType> kapsl_dtype(int elem_type);
Tensor to_kapsl(const PlainTensor& t);      // REQUIRES: kapsl_dtype(t.elem_type)
PlainTensor from_kapsl(const Tensor& t);
Ort::Value to_ort(const PlainTensor& t);    // borrows t.bytes: t must outlive the value
PlainValue from_ort(const Ort::Value& v);

// Compares with the ONNX backend-test tolerances (|a - b| <= atol + rtol * |b|, NaN == NaN)
// for floating types and exactly otherwise. Returns "" if equal, else what differs.
std::string compare(const PlainTensor& expected, const PlainTensor& got, double rtol, double atol);

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_ONNX_TENSOR_PROTO_H_
