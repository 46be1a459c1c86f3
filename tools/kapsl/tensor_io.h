// Tensors on the command line: reading inputs from .npy or JSON files, synthesising them
// from a model's declared inputs, and printing outputs for people (summarised) or
// machines (JSON).
//
// Thread-safety: the functions are safe for concurrent use without external
// synchronization.
#ifndef KAPSL_TOOLS_KAPSL_TENSOR_IO_H_
#define KAPSL_TOOLS_KAPSL_TENSOR_IO_H_

#include <cstdint>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "kapsl/engine.h"
#include "kapsl/tensor.h"

namespace kapsl::cli {

// Reads a tensor from a .npy file, or from a .json file holding either
// {"dtype": "float32", "shape": [2, 2], "data": [[1, 2], [3, 4]]} (data flat or nested)
// or a bare (nested) array whose shape is its nesting and whose dtype is `declared`'s
// (float32 if unknown). Throws Error(kNotFound) if the file is missing, kInvalidInput if it
// is malformed (naming the file and the problem).
Tensor read_tensor_file(const std::string& path, const TensorInfo* declared);

// A tensor from JSON as described above; `what` names the source in messages.
Tensor tensor_from_json(const nlohmann::json& j, const TensorInfo* declared, const std::string& what);

enum class Fill { kZeros, kOnes, kRandom };

// Parses "zeros" | "ones" | "random"; throws Error(kInvalidInput) otherwise.
Fill parse_fill(const std::string& name);

// Parses a shape written "1x3x224x224" (or "1,3,224,224"; "" or "scalar" = rank 0).
// Throws Error(kInvalidInput) naming the text.
Shape parse_shape_text(const std::string& text);

// A tensor for a declared input: `shape_override` if given, else the declared shape with
// dynamic dims set to 1. Random values are uniform in [0, 1) for floats, [0, 10) for
// integers (small, so that they are valid indices for most embeddings), seeded.
Tensor synthesize_tensor(const TensorInfo& info, Fill fill, uint64_t seed, const Shape* shape_override);

// Element `i` of a numeric tensor as double (float16 and bfloat16 decoded).
double element_as_double(const Tensor& t, size_t i);

// `text` with control characters (C0, DEL) written as \xNN: names and metadata come from
// the model file, and a hostile one must not drive the terminal with escape sequences.
std::string terminal_safe(std::string_view text);

// "float32 [1, 1000]  min -3.2 max 4.1 mean 0.01  [0.12, -1.5, ..., 0.3]" — every value if
// there are at most `max_values`, else the first and last few.
std::string summarize_tensor(const Tensor& t, size_t max_values = 16);

// {"name":..., "dtype":..., "shape":[...], "data":[...]} with every value.
nlohmann::json tensor_to_json(const std::string& name, const Tensor& t);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_TENSOR_IO_H_
