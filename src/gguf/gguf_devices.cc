// The GPU devices llama.cpp was built with, by provider name: what the "gguf" backend
// offers besides "cpu", and the device a GgufOptions::provider names.
#include <string>
#include <vector>

#include "core/strings.h"
#include "ggml-backend.h"
#include "gguf/engine_impl.h"
#include "gguf/llama_backend.h"
#include "kapsl/error.h"

namespace kapsl {
namespace {

bool is_gpu(ggml_backend_dev_t dev) {
  const auto type = ggml_backend_dev_type(dev);
  return type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU;
}

// "cuda" for a device of ggml's "CUDA" backend.
std::string provider_of(ggml_backend_dev_t dev) {
  return internal::to_lower(ggml_backend_reg_name(ggml_backend_dev_backend_reg(dev)));
}

}  // namespace

std::vector<std::string> gguf_gpu_providers() {
  gguf::ensure_llama_backend();
  std::vector<std::string> out;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (!is_gpu(dev)) continue;
    std::string name = provider_of(dev);
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(std::move(name));
  }
  return out;
}

namespace gguf {

ggml_backend_dev_t find_gpu_device(const std::string& provider, int device_id) {
  ensure_llama_backend();
  int seen = 0;
  for (size_t i = 0; i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    if (!is_gpu(dev) || provider_of(dev) != provider) continue;
    if (seen++ == device_id) return dev;
  }
  if (seen == 0) {
    throw Error::unavailable("provider \"" + provider + "\" is not in this llama.cpp build",
                             "it offers cpu" + std::string(gguf_gpu_providers().empty() ? "" : " and GPU backends"));
  }
  throw Error::unavailable("provider \"" + provider + "\" has no device " + std::to_string(device_id),
                           std::to_string(seen) + " found");
}

}  // namespace gguf
}  // namespace kapsl
