#include "load_flags.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "progress.h"

namespace kapsl::cli {

const BackendFactory& CliContext::factory() const {
  if (!factory_) factory_ = std::make_shared<const BackendFactory>(FactoryOptions{}, backends_, cached_devices());
  return *factory_;
}

void add_load_flags(CLI::App& cmd, LoadFlags& flags, bool text) {
  cmd.add_option("--provider", flags.provider, "execution provider to try first, before the fallbacks (cpu, cuda, tensorrt, ...)");
  cmd.add_option("--device", flags.device_id, "accelerator index")->check(CLI::NonNegativeNumber);
  cmd.add_option("-t,--threads", flags.threads, "threads (0 = the backend's default)")->check(CLI::NonNegativeNumber);
  if (!text) return;
  cmd.add_option("-c,--ctx-size", flags.ctx_size, "context per slot (GGUF; 0 = min(trained, 4096))");
  cmd.add_option("--parallel", flags.parallel, "slots: generations at once (GGUF)")->check(CLI::PositiveNumber);
  cmd.add_option("--chat-template", flags.chat_template,
                 "chat template (GGUF): a name llama.cpp knows (chatml, llama3, ...), or a file holding the template "
                 "(default: the model's own, else chatml)");
  add_split_flags(cmd, flags);
}

void add_split_flags(CLI::App& cmd, LoadFlags& flags) {
  cmd.add_option("--rpc", flags.rpc_workers,
                 "GGUF: split the model's layers over these RPC workers (`kapsl worker`), host:port,... The RPC "
                 "protocol has no authentication or encryption: private addresses only")
      ->delimiter(',');
  cmd.add_option("--tensor-split", flags.tensor_split,
                 "GGUF: share of the offloaded layers per device (the RPC workers', then the GPU), e.g. 1,3 "
                 "(default: by free memory)")
      ->delimiter(',');
  cmd.add_option("--gpu-layers,--n-gpu-layers", flags.gpu_layers,
                 "GGUF: layers offloaded to the GPU and RPC devices, the last ones first (-1 = all; the rest stay on "
                 "this host's CPU)")
      ->check(CLI::Range(-1, 1 << 16));
}

namespace {

// A --chat-template value: the text of the file it names, else the value itself (a name).
std::string chat_template_text(const std::string& value) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(value, ec)) return value;
  std::ifstream in(value, std::ios::binary);
  std::stringstream text;
  if (!(in && text << in.rdbuf())) throw Error::invalid_input("cannot read the chat template file", value);
  return text.str();
}

}  // namespace

std::string overrides_for(const LoadFlags& f) {
  nlohmann::json o = nlohmann::json::object();
  if (!f.provider.empty()) {
    o["hardware_requirements"]["preferred_provider"] = f.provider;
    o["hardware_requirements"]["fallback_providers"] = nlohmann::json::array();
  }
  if (f.device_id) o["hardware_requirements"]["device_id"] = *f.device_id;
  if (f.threads) o["threads"] = *f.threads;
  if (f.ctx_size) o["gguf"]["context"] = *f.ctx_size;
  if (f.parallel) o["gguf"]["slots"] = *f.parallel;
  if (!f.chat_template.empty()) o["gguf"]["chat_template"] = chat_template_text(f.chat_template);
  if (!f.rpc_workers.empty()) o["gguf"]["rpc_workers"] = f.rpc_workers;
  if (!f.tensor_split.empty()) o["gguf"]["tensor_split"] = f.tensor_split;
  if (f.gpu_layers) o["gguf"]["gpu_layers"] = *f.gpu_layers;
  if (!f.task.empty()) o["task"] = f.task;
  return o.dump();
}

LoadedEngine load_model(const CliContext& context, const std::string& path, const LoadFlags& flags) {
  LoadOptions options;
  options.overrides = overrides_for(flags);
  options.tokenizer_only = flags.tokenizer_only;
  auto bar = std::make_shared<ProgressBar>("loading", flags.progress && stderr_is_terminal());
  options.progress = [bar](float f) {
    bar->update(f);
    return true;
  };
  return context.factory().load(path, options);
}

}  // namespace kapsl::cli
