// The provider smoke test's model: an ONNX Identity over a float [1] tensor (opset 13),
// hand-encoded as protobuf so the library needs no ONNX protobuf dependency for it.
#ifndef KAPSL_SRC_ONNX_SMOKE_MODEL_H_
#define KAPSL_SRC_ONNX_SMOKE_MODEL_H_

#include <string>

namespace kapsl::internal {

// The serialized ModelProto: input "x", output "y", both float [1].
const std::string& smoke_model_bytes();

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_ONNX_SMOKE_MODEL_H_
