// The load flags the model commands share, and how they reach the BackendFactory: as the
// overrides layer of the model's settings (backend_factory.h), so that a flag on the
// command line wins over the model's manifest, and every model source (file, folder,
// .aimod) loads the same way it does in `kapsl serve`.
//
// Thread-safety: plain values and free functions; safe for concurrent use.
#ifndef KAPSL_TOOLS_KAPSL_LOAD_FLAGS_H_
#define KAPSL_TOOLS_KAPSL_LOAD_FLAGS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "kapsl/backend_factory.h"

namespace kapsl::cli {

// What the CLI runs with. Tests hand run_cli() a registry with their own backends.
// Not thread-safe: one thread at a time.
class CliContext {
 public:
  explicit CliContext(std::shared_ptr<const BackendRegistry> backends) : backends_(std::move(backends)) {}
  // The factory over the backends and the probed devices, made on first use so that
  // --help and usage errors probe nothing.
  const BackendFactory& factory() const;
  const BackendRegistry& backends() const { return *backends_; }

 private:
  std::shared_ptr<const BackendRegistry> backends_;
  mutable std::shared_ptr<const BackendFactory> factory_;
};

// Flags shared by the commands that load a model. Unset = the manifest's value or the
// backend's default.
struct LoadFlags {
  std::string provider;             // execution provider tried first, then cpu ("" = the manifest's list)
  std::optional<int> device_id;     // accelerator index
  std::optional<int> threads;       // compute threads (0 = the backend's default)
  std::optional<uint32_t> ctx_size;  // GGUF context per slot
  std::optional<uint32_t> parallel;  // GGUF slots
  std::string chat_template;        // GGUF: a template name, template text or a file holding one ("" = the model's)
  std::vector<std::string> rpc_workers;  // GGUF: "host:port" of RPC workers to split the model over
  std::vector<float> tensor_split;       // GGUF: share of the offloaded layers per device
  std::optional<int> gpu_layers;         // GGUF: layers offloaded to GPU and RPC devices (-1 = all)
  std::string task;                 // the task to load the model for ("" = the manifest's)
  bool tokenizer_only = false;      // load only what tokenization needs
  bool progress = true;             // draw a load progress bar when stderr is a terminal
};

// Adds --provider, --device, --threads (and, with `text`, the GGUF flags: --ctx-size,
// --parallel, --chat-template and add_split_flags') to `cmd`, writing into `flags`.
void add_load_flags(CLI::App& cmd, LoadFlags& flags, bool text = false);

// Adds --rpc, --tensor-split and --gpu-layers: where a GGUF model's layers go.
void add_split_flags(CLI::App& cmd, LoadFlags& flags);

// The overrides layer for `flags` (a manifest-shaped JSON object).
std::string overrides_for(const LoadFlags& flags);

// Opens `path` (a model file, a model folder or an .aimod package) and loads it with
// `flags`. Throws kapsl::Error as BackendFactory::load does.
LoadedEngine load_model(const CliContext& context, const std::string& path, const LoadFlags& flags);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_LOAD_FLAGS_H_
