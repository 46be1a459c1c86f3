// kapsl info MODEL: what a model takes and gives, and what it is.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kapsl/gguf_engine.h"

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

nlohmann::json gguf_json(const GgufModelInfo& g) {
  return {{"architecture", g.architecture}, {"description", g.description}, {"parameters", g.n_params},
          {"size_bytes", g.size_bytes},     {"context_train", g.n_ctx_train}, {"context", g.n_ctx},
          {"embedding_length", g.n_embd},   {"layers", g.n_layer},            {"vocab_size", g.n_vocab},
          {"bos_token", g.bos_token},       {"eos_token", g.eos_token},       {"eog_tokens", g.eog_tokens},
          {"has_chat_template", g.has_chat_template}, {"chat_template", g.chat_template}};
}

nlohmann::json info_json(const Engine& engine) {
  const ModelInfo& m = engine.model_info();
  nlohmann::json j = {{"framework", m.framework}, {"name", m.name},         {"version", m.version},
                      {"path", m.path},           {"provider", m.provider}, {"file_bytes", m.file_bytes},
                      {"resident_bytes", engine.resident_bytes()},        {"metadata", m.metadata}};
  j["inputs"] = nlohmann::json::array();
  for (const auto& t : m.inputs) j["inputs"].push_back(tensor_info_json(t));
  j["outputs"] = nlohmann::json::array();
  for (const auto& t : m.outputs) j["outputs"].push_back(tensor_info_json(t));
  if (const auto* g = dynamic_cast<const GgufEngine*>(&engine)) j["gguf"] = gguf_json(g->gguf_info());
  return j;
}

void print_gguf(const GgufModelInfo& g) {
  std::printf("architecture  %s (%s)\n", g.architecture.c_str(), g.description.c_str());
  std::printf("parameters    %llu (%.1f MiB of weights)\n", static_cast<unsigned long long>(g.n_params),
              static_cast<double>(g.size_bytes) / (1 << 20));
  std::printf("context       %u trained, %u in use\n", g.n_ctx_train, g.n_ctx);
  std::printf("embedding     %u wide, %u layers\n", g.n_embd, g.n_layer);
  std::printf("vocabulary    %d tokens (bos %d, eos %d, %zu end-of-generation)\n", g.n_vocab, g.bos_token,
              g.eos_token, g.eog_tokens.size());
  std::printf("chat template %s\n", g.has_chat_template ? "yes" : "no");
}

void print_info(const Engine& engine) {
  const ModelInfo& m = engine.model_info();
  std::printf("model         %s (%s)\n", m.path.c_str(), m.framework.c_str());
  if (!m.name.empty()) std::printf("name          %s\n", m.name.c_str());
  std::printf("provider      %s\n", m.provider.c_str());
  std::printf("size          %.2f MiB file, %.2f MiB resident\n", static_cast<double>(m.file_bytes) / (1 << 20),
              static_cast<double>(engine.resident_bytes()) / (1 << 20));
  if (const auto* g = dynamic_cast<const GgufEngine*>(&engine)) print_gguf(g->gguf_info());
  for (const auto& [label, list] : {std::pair{"input ", &m.inputs}, std::pair{"output", &m.outputs}}) {
    for (const auto& t : *list) {
      std::printf("%s        %-24s %-9s %s\n", label, t.name.c_str(),
                  t.dtype_known ? std::string(dtype_name(t.dtype)).c_str() : "unknown", dims_text(t).c_str());
    }
  }
  for (const auto& [k, v] : m.metadata) std::printf("meta          %s = %s\n", k.c_str(), v.c_str());
}

}  // namespace

void register_info(CLI::App& app) {
  struct Args {
    std::string model;
    bool json = false;
    LoadFlags load;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("info", "show a model's inputs, outputs and metadata");
  cmd->add_option("model", args->model, "model file (.onnx or .gguf)")->required();
  cmd->add_flag("--json", args->json, "print JSON");
  add_load_flags(*cmd, args->load);
  cmd->callback([args] {
    args->load.vocab_only = false;
    const auto engine = load_model(args->model, args->load);
    if (args->json) {
      std::cout << info_json(*engine).dump(2) << "\n";
    } else {
      print_info(*engine);
    }
  });
}

}  // namespace kapsl::cli
