#include "onnx/smoke_model.h"

#include <cstdint>

namespace kapsl::internal {
namespace {

// Protobuf wire format: a field key is (number << 3 | wire type); 0 = varint, 2 = bytes.
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
void int_field(std::string& out, int number, uint64_t v) {
  varint(out, static_cast<uint64_t>(number) << 3);
  varint(out, v);
}
void bytes_field(std::string& out, int number, const std::string& bytes) {
  varint(out, static_cast<uint64_t>(number) << 3 | 2);
  varint(out, bytes.size());
  out += bytes;
}

// ValueInfoProto{name, type: TypeProto{tensor_type: {elem_type: FLOAT, shape: {dim: [1]}}}}.
std::string float1_value_info(const std::string& name) {
  std::string dim, shape, tensor, type, info;
  int_field(dim, 1, 1);           // Dimension.dim_value
  bytes_field(shape, 1, dim);     // TensorShapeProto.dim
  int_field(tensor, 1, 1);        // TypeProto.Tensor.elem_type = FLOAT
  bytes_field(tensor, 2, shape);  // TypeProto.Tensor.shape
  bytes_field(type, 1, tensor);   // TypeProto.tensor_type
  bytes_field(info, 1, name);     // ValueInfoProto.name
  bytes_field(info, 2, type);     // ValueInfoProto.type
  return info;
}

std::string build() {
  std::string node, graph, opset, model;
  bytes_field(node, 1, "x");         // NodeProto.input
  bytes_field(node, 2, "y");         // NodeProto.output
  bytes_field(node, 3, "identity");  // NodeProto.name
  bytes_field(node, 4, "Identity");  // NodeProto.op_type
  bytes_field(graph, 1, node);       // GraphProto.node
  bytes_field(graph, 2, "kapsl_smoke");
  bytes_field(graph, 11, float1_value_info("x"));  // GraphProto.input
  bytes_field(graph, 12, float1_value_info("y"));  // GraphProto.output
  int_field(opset, 2, 13);           // OperatorSetIdProto.version (default domain)
  int_field(model, 1, 8);            // ModelProto.ir_version
  bytes_field(model, 2, "kapsl");    // ModelProto.producer_name
  bytes_field(model, 7, graph);      // ModelProto.graph
  bytes_field(model, 8, opset);      // ModelProto.opset_import
  return model;
}

}  // namespace

const std::string& smoke_model_bytes() {
  static const std::string bytes = build();
  return bytes;
}

}  // namespace kapsl::internal
