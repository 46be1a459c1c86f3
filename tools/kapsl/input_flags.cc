#include "input_flags.h"

#include <map>

#include "commands.h"
#include "tensor_io.h"

namespace kapsl::cli {
namespace {

// "name=value" into the map; throws UsageError naming the flag, or a name given twice.
void add_assignment(std::map<std::string, std::string>& into, const std::string& text, const char* flag) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    throw UsageError(std::string(flag) + " '" + text + "' must look like NAME=VALUE");
  }
  if (!into.emplace(text.substr(0, eq), text.substr(eq + 1)).second) {
    throw UsageError(std::string(flag) + " gives '" + text.substr(0, eq) + "' more than once");
  }
}

const TensorInfo& declared_input(const ModelInfo& m, const std::string& name) {
  for (const auto& t : m.inputs) {
    if (t.name == name) return t;
  }
  std::string names;
  for (const auto& t : m.inputs) names += (names.empty() ? "" : ", ") + t.name;
  throw UsageError("the model has no input '" + name + "' (its inputs: " + names + ")");
}

}  // namespace

void add_input_flags(CLI::App& cmd, InputFlags& flags, const std::string& default_fill) {
  flags.fill = default_fill;
  cmd.add_option("-i,--input", flags.inputs, "NAME=FILE (.npy or .json) for an input (repeatable, once per input)");
  cmd.add_option("--fill", flags.fill, "synthesise inputs not given: zeros, ones or random")->capture_default_str();
  cmd.add_option("--shape", flags.shapes, "NAME=DIMS (e.g. 1x3x224x224) for a synthesised input");
  cmd.add_option("--seed", flags.seed, "seed for --fill random");
}

InferenceRequest build_request(const InputFlags& flags, const ModelInfo& model) {
  std::map<std::string, std::string> files, shapes;
  for (const auto& s : flags.inputs) add_assignment(files, s, "--input");
  for (const auto& s : flags.shapes) add_assignment(shapes, s, "--shape");
  for (const auto& [name, file] : files) declared_input(model, name);
  for (const auto& [name, dims] : shapes) declared_input(model, name);
  InferenceRequest req;
  for (const auto& t : model.inputs) {
    if (auto f = files.find(t.name); f != files.end()) {
      req.add_input(t.name, read_tensor_file(f->second, &t));
    } else if (!flags.fill.empty()) {
      const auto s = shapes.find(t.name);
      const Shape override_shape = s == shapes.end() ? Shape{} : parse_shape_text(s->second);
      req.add_input(t.name, synthesize_tensor(t, parse_fill(flags.fill), flags.seed,
                                              s == shapes.end() ? nullptr : &override_shape));
    } else {
      throw UsageError("input '" + t.name + "' is not given: pass --input " + t.name + "=FILE.npy or --fill random");
    }
  }
  return req;
}

}  // namespace kapsl::cli
