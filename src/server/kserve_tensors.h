// KServe v2 tensors: parsing inference requests (JSON tensors and Triton's binary tensor
// data extension) into kapsl tensors, and encoding results back.
//
// JSON data may be flat (row-major) or nested arrays; its element count must match the
// shape. FP16 and BF16 travel as numbers in JSON and as their 16 bits in binary. BYTES
// elements are strings in JSON and length-prefixed (4-byte little-endian) in binary.
// Binary data follows the JSON header, whose length is the Inference-Header-Content-Length
// header; each input with parameters.binary_data_size takes its bytes in input order.
//
// Every malformed request throws Error(kInvalidInput) naming the input and the problem.
//
// Thread-safety: free functions over values; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_KSERVE_TENSORS_H_
#define KAPSL_SRC_SERVER_KSERVE_TENSORS_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "kapsl/request.h"
#include "kapsl/tensor.h"

namespace kapsl::server {

// KServe datatype names ("FP32", "INT64", "BYTES", "BOOL", ...).
const char* kserve_datatype(DType dtype) noexcept;
std::optional<DType> dtype_from_kserve(std::string_view datatype);

// A tensor's elements in the protocol's raw form (the binary extension's data, gRPC's
// raw contents): numeric elements as their little-endian bytes, BYTES elements each
// prefixed by their 4-byte little-endian length.
void append_raw(const Tensor& tensor, std::string& out);
// The tensor `bytes` hold in raw form, checked against `shape` before anything is
// allocated. Throws Error(kInvalidInput) naming `where`.
Tensor tensor_from_raw(DType dtype, const Shape& shape, std::string_view bytes, const std::string& where);

struct KServeRequest {
  std::string id;                        // echoed in the response
  std::vector<NamedTensor> inputs;
  std::vector<std::string> output_names; // empty = all
  std::set<std::string> binary_outputs;  // outputs asked for as binary data
  bool all_binary = false;               // parameters.binary_data_output
  nlohmann::json parameters;             // the request's other parameters (an object of scalars)
};

// Told of the bytes of each typed allocation before the parser makes it; throws to refuse
// it (the server charges them to the request's body budget).
using ReserveBytes = std::function<void(size_t bytes)>;

// Parses a request body. `header_length` is the Inference-Header-Content-Length value, if
// the request had one: the first header_length bytes are JSON, the rest binary data. The
// JSON is read in one streaming pass (kserve_request.cc): no recursion, at most 40 levels of
// nesting, tensor data stored typed as it is read, integers exact, floats within their
// datatype's range, unknown fields refused; parameters are objects of at most 64 scalars.
// All inputs together store at most one value per two bytes of JSON (a value and a comma),
// counted before a declared shape is allocated, so the typed data is at most 4 x the JSON
// (8-byte values written "0,"); `reserve`, if set, is told of every allocation first.
// Throws Error(kInvalidInput) naming the input and the problem, or what `reserve` throws.
KServeRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length,
                                  const ReserveBytes& reserve = {});

// An encoded KServe body: JSON, then binary data when header_length (the
// Inference-Header-Content-Length) is set.
struct KServeBody {
  std::string body;
  std::optional<size_t> header_length;  // set when binary data follows the JSON
};

// A request body for `inputs`, as a client sends it (`kapsl bench --url`): the data as JSON,
// or with `binary` every input as binary data after the JSON header and every output asked
// for as binary.
KServeBody encode_infer_request(const std::vector<NamedTensor>& inputs, bool binary);

// Encodes the outputs (outputs named in binary_outputs, or all if all_binary, as binary).
KServeBody encode_infer_response(const std::string& model, const std::string& version, const KServeRequest& request,
                                     const std::vector<NamedTensor>& outputs);

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_KSERVE_TENSORS_H_
