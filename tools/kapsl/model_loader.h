// Loading the model a command names, with the command's load flags.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_TOOLS_KAPSL_MODEL_LOADER_H_
#define KAPSL_TOOLS_KAPSL_MODEL_LOADER_H_

#include <memory>
#include <string>

#include "kapsl/engine.h"

namespace kapsl {
class GgufEngine;
}

namespace kapsl::cli {

enum class ModelKind { kOnnx, kGguf };

// Flags shared by the commands that load a model.
struct LoadFlags {
  std::string provider = "cpu";  // ONNX execution provider
  int device_id = 0;             // accelerator index
  int threads = 0;               // 0 = the backend's default
  uint32_t ctx_size = 0;         // GGUF context; 0 = min(trained, 4096)
  uint32_t parallel = 1;         // GGUF slots
  bool embeddings = false;       // GGUF: load for embeddings
  bool vocab_only = false;       // GGUF: tokenizer only
  bool progress = true;          // draw a load progress bar when stderr is a terminal
};

// The kind of model at `path`, from its extension (.onnx, .gguf). Throws Error(kNotFound)
// if the path does not exist, kInvalidInput if the kind cannot be told.
ModelKind model_kind(const std::string& path);

// Loads the model at `path`. Throws kapsl::Error as the backends' load functions do.
std::unique_ptr<Engine> load_model(const std::string& path, const LoadFlags& flags);

// Loads a GGUF model; kInvalidInput naming the command if `path` is not one.
std::unique_ptr<GgufEngine> load_gguf(const std::string& path, const LoadFlags& flags, const char* command);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_MODEL_LOADER_H_
