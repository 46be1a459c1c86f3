// KServe v2 gRPC tensors: a ModelInferRequest's inputs as kapsl tensors, and outputs back
// into a ModelInferResponse.
//
// Inputs come typed (InferTensorContents: one repeated field per element type, which must
// be the field of the input's datatype) or raw (raw_input_contents, one entry per input in
// input order, the protocol's raw form: kserve_tensors.h). A request uses one form for all
// its inputs. Element counts are checked against the declared shape before anything is
// allocated; values narrower than their field (INT8 in int_contents) are range-checked.
// FP16 and BF16 have no typed field and travel raw only.
//
// Every malformed request throws Error(kInvalidInput) naming the input and the problem.
//
// Thread-safety: free functions over values; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_GRPC_TENSORS_H_
#define KAPSL_SRC_SERVER_GRPC_TENSORS_H_

#include <vector>

#include "grpc_predict_v2.pb.h"
#include "kapsl/request.h"

namespace kapsl::server {

// The request's inputs, in order.
std::vector<NamedTensor> inputs_from_grpc(const inference::ModelInferRequest& request);

// Appends `outputs` to `response`: raw_output_contents when `raw`, else typed contents
// (all of them raw if one is FP16 or BF16: those have no typed field, and the protocol
// puts every output in one form or the other).
void outputs_to_grpc(const std::vector<NamedTensor>& outputs, bool raw, inference::ModelInferResponse& response);

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_GRPC_TENSORS_H_
