// kapsl run MODEL: run a model once (Engine::infer) on inputs from files or synthesised by shape.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "commands.h"
#include "npy.h"
#include "tensor_io.h"

namespace kapsl::cli {
namespace {

struct RunArgs {
  std::string model;
  std::vector<std::string> inputs;   // name=FILE
  std::vector<std::string> shapes;   // name=DIMS
  std::vector<std::string> outputs;  // output names to return
  std::string fill;
  uint64_t seed = 0;
  std::string output_dir;
  bool json = false;
  LoadFlags load;
};

// Splits "name=value"; throws UsageError naming the flag.
std::pair<std::string, std::string> split_assignment(const std::string& text, const char* flag) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == text.size()) {
    throw UsageError(std::string(flag) + " '" + text + "' must look like NAME=VALUE");
  }
  return {text.substr(0, eq), text.substr(eq + 1)};
}

const TensorInfo& declared_input(const ModelInfo& m, const std::string& name) {
  for (const auto& t : m.inputs) {
    if (t.name == name) return t;
  }
  std::string names;
  for (const auto& t : m.inputs) names += (names.empty() ? "" : ", ") + t.name;
  throw UsageError("the model has no input '" + name + "' (its inputs: " + names + ")");
}

InferenceRequest build_request(const RunArgs& a, const ModelInfo& m) {
  std::map<std::string, std::string> files, shapes;
  for (const auto& s : a.inputs) files.insert(split_assignment(s, "--input"));
  for (const auto& s : a.shapes) shapes.insert(split_assignment(s, "--shape"));
  for (const auto& [name, file] : files) declared_input(m, name);
  for (const auto& [name, dims] : shapes) declared_input(m, name);
  InferenceRequest req;
  req.output_names = a.outputs;
  for (const auto& t : m.inputs) {
    if (auto f = files.find(t.name); f != files.end()) {
      req.add_input(t.name, read_tensor_file(f->second, &t));
    } else if (!a.fill.empty()) {
      const auto s = shapes.find(t.name);
      const Shape override_shape = s == shapes.end() ? Shape{} : parse_shape_text(s->second);
      req.add_input(t.name, synthesize_tensor(t, parse_fill(a.fill), a.seed, s == shapes.end() ? nullptr : &override_shape));
    } else {
      throw UsageError("input '" + t.name + "' is not given: pass --input " + t.name + "=FILE.npy or --fill random");
    }
  }
  return req;
}

void print_result(const RunArgs& a, const InferenceResult& result, double ms) {
  if (!a.output_dir.empty()) {
    std::filesystem::create_directories(a.output_dir);
    for (const auto& o : result.outputs) npy_save((std::filesystem::path(a.output_dir) / (o.name + ".npy")).string(), o.tensor);
  }
  if (a.json) {
    nlohmann::json j = {{"latency_ms", ms}, {"outputs", nlohmann::json::array()}};
    for (const auto& o : result.outputs) j["outputs"].push_back(tensor_to_json(o.name, o.tensor));
    std::cout << j.dump() << "\n";
    return;
  }
  for (const auto& o : result.outputs) std::printf("%s: %s\n", o.name.c_str(), summarize_tensor(o.tensor).c_str());
  std::fprintf(stderr, "ran in %.3f ms\n", ms);
}

}  // namespace

void register_run(CLI::App& app, const CliContext& context) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "run a model once on inputs from files or synthesised");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package")->required();
  cmd->add_option("-i,--input", a->inputs, "NAME=FILE (.npy or .json) for an input");
  cmd->add_option("--fill", a->fill, "synthesise inputs not given: zeros, ones or random");
  cmd->add_option("--shape", a->shapes, "NAME=DIMS (e.g. 1x3x224x224) for a synthesised input");
  cmd->add_option("--seed", a->seed, "seed for --fill random");
  cmd->add_option("--output", a->outputs, "return only this output (repeatable)");
  cmd->add_option("-o,--output-dir", a->output_dir, "also write each output to DIR/NAME.npy");
  cmd->add_flag("--json", a->json, "print outputs as JSON (every value)");
  add_load_flags(*cmd, a->load);
  cmd->add_option("--task", a->load.task, "load for this task (e.g. classify, embed)");
  cmd->callback([a, &context] {
    const auto engine = load_model(context, a->model, a->load).engine;
    const InferenceRequest req = build_request(*a, engine->model_info());
    const auto start = Clock::now();
    const InferenceResult result = engine->infer(req);
    print_result(*a, result, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  });
}

}  // namespace kapsl::cli
