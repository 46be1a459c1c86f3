// Binding: the model's declared inputs and outputs, the checks a request passes before
// ONNX Runtime sees it, and the conversions between kapsl::Tensor and Ort::Value.
//
// Numeric inputs are passed to ONNX Runtime without a copy: the Ort::Value borrows the
// request's bytes, so a BoundInputs must not outlive the request. String inputs and
// sequences are copied (ONNX Runtime owns their storage). Numeric outputs are not copied
// either: the Tensor takes over ONNX Runtime's OrtValue and uses its buffer (Tensor::adopt).
//
// Thread-safety: const methods may run concurrently; others need external synchronization.
#ifndef KAPSL_SRC_ONNX_BINDING_H_
#define KAPSL_SRC_ONNX_BINDING_H_

#include <onnxruntime_cxx_api.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/engine.h"
#include "kapsl/onnx_engine.h"
#include "kapsl/request.h"
#include "kapsl/tensor.h"

namespace kapsl::onnx {

// One declared input or output of the model.
struct IoSpec {
  std::string name;
  ONNXType kind = ONNX_TYPE_TENSOR;  // tensor, sequence, optional, map, ...
  ONNXTensorElementDataType element = ONNX_TENSOR_ELEMENT_DATA_TYPE_UNDEFINED;  // of the (innermost) tensor
  std::optional<DType> dtype;        // kapsl's dtype for `element`, if it has one
  Shape shape;                       // -1 = dynamic; of the tensor (or sequence element)
  bool has_shape = false;            // false: the model declares no shape (any rank goes)
  std::vector<std::string> dim_names;
  bool is_sequence = false;          // a sequence of tensors (possibly inside an optional)
  bool is_optional = false;
};

std::optional<DType> dtype_from_ort(ONNXTensorElementDataType t) noexcept;
ONNXTensorElementDataType ort_from_dtype(DType d) noexcept;
// "float32", "complex64", "float8e4m3fn", ... for messages.
std::string ort_type_name(ONNXTensorElementDataType t);

std::vector<IoSpec> read_inputs(const Ort::Session& session);
std::vector<IoSpec> read_outputs(const Ort::Session& session);
TensorInfo to_tensor_info(const IoSpec& spec);

// Checks `tensor` against the declared input: dtype, rank and fixed dimensions (rank and
// dimensions only where the model declares a shape).
// Throws Error(kInvalidInput) naming the input with expected vs got.
void check_input(const IoSpec& spec, const Tensor& tensor);

// An Ort::Value for `tensor`, borrowing numeric bytes (see the file comment).
Ort::Value to_ort_value(const Tensor& tensor);

// The inputs of one run, in the order they were bound.
struct BoundInputs {
  std::vector<const char*> names;  // point into the IoSpecs
  std::vector<Ort::Value> values;
  std::vector<Tensor> filled;      // auto-filled tensors the values borrow (their heap bytes
                                   // stay put when the vector grows)
  const InferenceRequest* request = nullptr;  // whose numeric bytes the values borrow

  // True if `data` lies in bytes a value borrows. ONNX Runtime returns an input's own
  // OrtValue for a graph output that is a graph input; such an output must be copied.
  bool lends(const void* data) const;
  // Releases the values and filled tensors, keeping the vectors' capacity for the next run.
  void clear();
};

// Binds `request`'s inputs to `specs` into `in`, cleared first (see OnnxEngine's contract:
// names, main input, "<name>[i]" sequence elements, auto-fill). Throws Error(kInvalidInput).
void bind_inputs(const std::vector<IoSpec>& specs, const InferenceRequest& request, bool auto_fill,
                 BoundInputs& in);

// Indices into `specs` of the outputs `names` asks for (all if empty). Throws
// Error(kInvalidInput) on an unknown or repeated name, listing the model's outputs.
std::vector<size_t> select_outputs(const std::vector<IoSpec>& specs, const std::vector<std::string>& names);

// Appends output `name` held in `value` to `out`: a tensor as one entry, a sequence as
// "<name>[i]" entries, an empty optional as nothing. Throws Error(kInference) for an
// element type kapsl has no DType for, or a value that is neither.
// Takes `value` over (numeric tensors keep its buffer, see the file comment, unless it is
// bytes `in` lends, which are copied).
void append_output(const std::string& name, Ort::Value&& value, const BoundInputs& in,
                   std::vector<NamedTensor>& out);

// A tensor from an Ort::Value tensor, taking `value` over. Throws as append_output does.
Tensor to_tensor(Ort::Value&& value, std::string_view name, const BoundInputs& in);

// Zero-filled inputs for every declared tensor input, dynamic dims = 1. Throws
// Error(kInvalidInput) if an input's type has no kapsl DType or is not a tensor.
InferenceRequest synthesize_request(const std::vector<IoSpec>& specs);

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_BINDING_H_
