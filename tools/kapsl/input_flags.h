// The input flags `kapsl run` and `kapsl bench` share — --input NAME=FILE, --shape
// NAME=DIMS, --fill, --seed — and the request they make for a model.
//
// Thread-safety: plain values and free functions; safe for concurrent use.
#ifndef KAPSL_TOOLS_KAPSL_INPUT_FLAGS_H_
#define KAPSL_TOOLS_KAPSL_INPUT_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kapsl/engine.h"

namespace kapsl::cli {

struct InputFlags {
  std::vector<std::string> inputs;  // NAME=FILE
  std::vector<std::string> shapes;  // NAME=DIMS
  std::string fill;                 // zeros, ones, random; "" = every input must be given
  uint64_t seed = 0;
};

// Adds --input, --shape, --fill and --seed to `cmd`. `default_fill` is the fill when the
// flag is not given ("" = none).
void add_input_flags(CLI::App& cmd, InputFlags& flags, const std::string& default_fill = "");

// The request for `model`: each declared input from its --input file, else synthesised with
// --fill at its --shape (or its declared shape with dynamic dimensions set to 1).
// Throws UsageError for a flag that is not NAME=VALUE, a name the model lacks, a name given
// twice, or an input neither given nor fillable; kapsl::Error for a bad file or shape.
InferenceRequest build_request(const InputFlags& flags, const ModelInfo& model);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_INPUT_FLAGS_H_
