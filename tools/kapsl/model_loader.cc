#include "model_loader.h"

#include <filesystem>

#include "kapsl/gguf_engine.h"
#include "kapsl/onnx_engine.h"
#include "progress.h"

namespace kapsl::cli {

ModelKind model_kind(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error::not_found("model file '" + path + "' does not exist");
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".gguf") return ModelKind::kGguf;
  if (ext == ".onnx" || ext == ".ort") return ModelKind::kOnnx;
  throw Error::invalid_input("cannot tell the model format of '" + path + "'",
                             "expected a .onnx or .gguf file");
}

std::unique_ptr<GgufEngine> load_gguf(const std::string& path, const LoadFlags& flags, const char* command) {
  if (model_kind(path) != ModelKind::kGguf) {
    throw Error::invalid_input(std::string("kapsl ") + command + " needs a GGUF model", "got '" + path + "'");
  }
  GgufOptions options;
  options.n_ctx = flags.ctx_size;
  options.n_threads = flags.threads;
  options.n_parallel = flags.parallel;
  options.embeddings = flags.embeddings;
  options.vocab_only = flags.vocab_only;
  auto bar = std::make_shared<ProgressBar>("loading", flags.progress && stderr_is_terminal());
  options.progress = [bar](float f) {
    bar->update(f);
    return true;
  };
  auto engine = GgufEngine::load(path, options);
  return engine;
}

std::unique_ptr<Engine> load_model(const std::string& path, const LoadFlags& flags) {
  if (model_kind(path) == ModelKind::kGguf) return load_gguf(path, flags, "load");
  OnnxOptions options;
  options.provider = flags.provider;
  options.device_id = flags.device_id;
  if (flags.threads > 0) options.intra_op_threads = flags.threads;
  return OnnxEngine::load(path, options);
}

}  // namespace kapsl::cli
