// kapsl info MODEL: what a model takes and gives, what it is, and how it was loaded.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kapsl/text_generation.h"
#include "tensor_io.h"

namespace kapsl::cli {
namespace {

std::string dims_text(const TensorInfo& t) {
  std::string s = "[";
  for (size_t i = 0; i < t.shape.size(); ++i) {
    if (i) s += ", ";
    const std::string name = i < t.dim_names.size() ? t.dim_names[i] : "";
    s += t.shape[i] >= 0 ? std::to_string(t.shape[i]) : (name.empty() ? "?" : name);
  }
  return s + "]";
}

nlohmann::json tensor_info_json(const TensorInfo& t) {
  return {{"name", t.name},
          {"dtype", t.dtype_known ? std::string(dtype_name(t.dtype)) : "unknown"},
          {"shape", t.shape},
          {"dim_names", t.dim_names},
          {"is_tensor", t.is_tensor}};
}

nlohmann::json text_json(const TextModelInfo& t) {
  return {{"context_size", t.context_size}, {"vocab_size", t.vocab_size}, {"bos_token", t.bos_token},
          {"eos_token", t.eos_token},       {"eog_tokens", t.eog_tokens}, {"chat_template", t.chat_template}};
}

nlohmann::json info_json(Engine& engine, const LoadReport& report) {
  const ModelInfo& m = engine.model_info();
  nlohmann::json j = {{"backend", m.backend},   {"name", m.name},         {"version", m.version},
                      {"path", m.path},         {"provider", m.provider}, {"file_bytes", m.file_bytes},
                      {"resident_bytes", engine.resident_bytes()},      {"metadata", m.metadata}};
  j["inputs"] = nlohmann::json::array();
  for (const auto& t : m.inputs) j["inputs"].push_back(tensor_info_json(t));
  j["outputs"] = nlohmann::json::array();
  for (const auto& t : m.outputs) j["outputs"].push_back(tensor_info_json(t));
  if (const TextGenerator* text = engine.text_generator()) j["text"] = text_json(text->text_info());
  j["load_report"] = nlohmann::json::parse(report.to_json());
  return j;
}

void print_report(const LoadReport& r) {
  std::printf("loaded        %s/%s on %s:%d in %.3f s\n", r.backend.c_str(), r.task.c_str(), r.provider.c_str(),
              r.device_id, r.load_seconds);
  for (const auto& f : r.failures) {
    std::printf("  not %-9s %s%s\n", (f.provider + ":").c_str(), f.tried ? "" : "(skipped) ", f.reason.c_str());
  }
}

void print_info(Engine& engine, const LoadReport& report) {
  const ModelInfo& m = engine.model_info();
  std::printf("model         %s (%s)\n", m.path.c_str(), m.backend.c_str());
  if (!m.name.empty()) std::printf("name          %s\n", terminal_safe(m.name).c_str());
  print_report(report);
  std::printf("size          %.2f MiB file, %.2f MiB resident\n", static_cast<double>(m.file_bytes) / (1 << 20),
              static_cast<double>(engine.resident_bytes()) / (1 << 20));
  if (const TextGenerator* text = engine.text_generator()) {
    const TextModelInfo& t = text->text_info();
    std::printf("context       %u tokens per sequence\n", t.context_size);
    std::printf("vocabulary    %d tokens (bos %d, eos %d, %zu end-of-generation)\n", t.vocab_size, t.bos_token,
                t.eos_token, t.eog_tokens.size());
    std::printf("chat template %s\n", t.chat_template.empty() ? "no" : "yes");
  }
  for (const auto& [label, list] : {std::pair{"input ", &m.inputs}, std::pair{"output", &m.outputs}}) {
    for (const auto& t : *list) {
      std::printf("%s        %-24s %-9s %s\n", label, terminal_safe(t.name).c_str(),
                  t.dtype_known ? std::string(dtype_name(t.dtype)).c_str() : "unknown", dims_text(t).c_str());
    }
  }
  for (const auto& [k, v] : m.metadata) {
    std::printf("meta          %s = %s\n", terminal_safe(k).c_str(), terminal_safe(v).c_str());
  }
}

}  // namespace

void register_info(CLI::App& app, const CliContext& context) {
  struct Args {
    std::string model;
    bool json = false;
    LoadFlags load;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("info", "show a model's inputs, outputs, metadata and load report");
  cmd->add_option("model", args->model, "model file, model folder (metadata.json) or .aimod package")->required();
  cmd->add_flag("--json", args->json, "print JSON");
  cmd->add_option("--task", args->load.task, "load for this task (e.g. embed)");
  add_load_flags(*cmd, args->load, /*text=*/true);
  cmd->callback([args, &context] {
    LoadedEngine loaded = load_model(context, args->model, args->load);
    if (args->json) {
      std::cout << info_json(*loaded.engine, loaded.report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      print_info(*loaded.engine, loaded.report);
    }
  });
}

}  // namespace kapsl::cli
