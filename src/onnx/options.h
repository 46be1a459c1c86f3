// OnnxOptions: validation, environment fallbacks and translation to Ort::SessionOptions.
//
// Thread-safety: safe for concurrent use without external synchronization (the functions
// read the environment but keep no state).
#ifndef KAPSL_SRC_ONNX_OPTIONS_H_
#define KAPSL_SRC_ONNX_OPTIONS_H_

#include <onnxruntime_cxx_api.h>

#include <optional>
#include <string_view>

#include "kapsl/onnx_engine.h"

namespace kapsl::onnx {

// Parses a graph optimisation level: disable|basic|extended|all or 0|1|2|3|99, any case,
// surrounding blanks ignored ("3" and "99" = ORT_ENABLE_ALL). Throws Error(kInvalidInput)
// naming the field, the accepted values and the given one.
GraphOptimizationLevel parse_graph_optimization_level(std::string_view level);

// A boolean environment value (1/true/yes/on, 0/false/no/off), or nullopt if unset or
// unparsable.
std::optional<bool> env_bool(const char* name);

// `options` with every unset optional filled from the environment or its default, and the
// string fields lower-cased. Throws Error(kInvalidInput) naming a field with a bad value.
OnnxOptions resolve_options(const OnnxOptions& options);

// Session options for resolved `options`, the provider not yet registered.
Ort::SessionOptions make_session_options(const OnnxOptions& options);

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_OPTIONS_H_
