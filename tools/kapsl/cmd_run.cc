// kapsl run MODEL: run a model once (Engine::infer) on inputs from files or synthesised by shape.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <cctype>
#include <set>

#include "commands.h"
#include "input_flags.h"
#include "npy.h"
#include "tensor_io.h"

namespace kapsl::cli {
namespace {

struct RunArgs {
  std::string model;
  InputFlags in;
  std::vector<std::string> outputs;  // output names to return
  std::string output_dir;
  bool json = false;
  LoadFlags load;
};

// A file name for an output: the model chooses output names, so they are never trusted as
// paths. Characters other than letters, digits, '.', '_' and '-' become '_'; a name that is
// empty or only dots becomes "output<i>"; a name already taken gets "_2", "_3", ...
std::string output_file_name(const std::string& name, size_t index, std::set<std::string>& taken) {
  std::string safe;
  for (const char c : name.substr(0, 200)) safe += std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ? c : '_';
  if (safe.find_first_not_of('.') == std::string::npos) safe = "output" + std::to_string(index);
  std::string chosen = safe;
  for (int n = 2; !taken.insert(chosen).second; ++n) chosen = safe + "_" + std::to_string(n);
  return chosen + ".npy";
}

void print_result(const RunArgs& a, const InferenceResult& result, double ms) {
  if (!a.output_dir.empty()) {
    std::filesystem::create_directories(a.output_dir);
    std::set<std::string> taken;
    for (size_t i = 0; i < result.outputs.size(); ++i) {
      const auto& o = result.outputs[i];
      npy_save((std::filesystem::path(a.output_dir) / output_file_name(o.name, i, taken)).string(), o.tensor);
    }
  }
  if (a.json) {
    nlohmann::json j = {{"latency_ms", ms}, {"outputs", nlohmann::json::array()}};
    for (const auto& o : result.outputs) j["outputs"].push_back(tensor_to_json(o.name, o.tensor));
    std::cout << j.dump() << "\n";
    return;
  }
  for (const auto& o : result.outputs) {
    std::printf("%s: %s\n", terminal_safe(o.name).c_str(), summarize_tensor(o.tensor).c_str());
  }
  std::fprintf(stderr, "ran in %.3f ms\n", ms);
}

}  // namespace

void register_run(CLI::App& app, const CliContext& context) {
  auto a = std::make_shared<RunArgs>();
  auto* cmd = app.add_subcommand("run", "run a model once on inputs from files or synthesised");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package")->required();
  add_input_flags(*cmd, a->in);
  cmd->add_option("--output", a->outputs, "return only this output (repeatable)");
  cmd->add_option("-o,--output-dir", a->output_dir,
                  "also write each output to DIR/NAME.npy (characters unsafe in a file name become '_')");
  cmd->add_flag("--json", a->json, "print outputs as JSON (every value)");
  add_load_flags(*cmd, a->load);
  cmd->add_option("--task", a->load.task, "load for this task (e.g. classify, embed)");
  cmd->callback([a, &context] {
    const auto engine = load_model(context, a->model, a->load).engine;
    InferenceRequest req = build_request(a->in, engine->model_info());
    req.output_names = a->outputs;
    const auto start = Clock::now();
    const InferenceResult result = engine->infer(req);
    print_result(*a, result, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  });
}

}  // namespace kapsl::cli
