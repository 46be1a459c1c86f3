// The factory's default loaders: the real ONNX and GGUF engines, and the provider smoke
// test (0.1.1's provider_compat), whose outcome is remembered per (provider, device).
#include <map>
#include <mutex>

#include "factory/smoke_model.h"
#include "kapsl/backend_factory.h"
#include "kapsl/onnx_engine.h"
#ifdef KAPSL_FACTORY_HAVE_GGUF
#include "kapsl/gguf_engine.h"
#endif

namespace kapsl {
namespace {

OnnxOptions onnx_options(const LoadSpec& spec) {
  OnnxOptions o;
  o.provider = spec.provider;
  o.device_id = spec.device_id;
  o.graph_optimization_level = optimization_level_name(spec.optimization_level);
  o.memory_pattern = spec.onnx.memory_pattern;
  if (spec.onnx.disable_cpu_mem_arena) o.cpu_mem_arena = !*spec.onnx.disable_cpu_mem_arena;
  o.intra_op_threads = spec.onnx.intra_op_threads;
  o.inter_op_threads = spec.onnx.inter_op_threads;
  return o;
}

// Loads the Identity model on the provider and checks one run returns its input.
void run_smoke_model(const std::string& provider, int device_id) {
  OnnxOptions o;
  o.provider = provider;
  o.device_id = device_id;
  const std::string& model = internal::smoke_model_bytes();
  std::unique_ptr<OnnxEngine> engine =
      OnnxEngine::load_from_memory(std::as_bytes(std::span(model.data(), model.size())), o);
  InferenceResult r = engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1}, {42.0f})));
  if (r.outputs.size() != 1 || r.outputs[0].tensor.dtype() != DType::kFloat32 ||
      r.outputs[0].tensor.data<float>()[0] != 42.0f) {
    throw Error::unavailable("provider " + provider + " failed the smoke test", "Identity returned a wrong value");
  }
}

void cached_smoke_test(const std::string& provider, int device_id) {
  static std::mutex mu;
  static std::map<std::pair<std::string, int>, std::optional<Error>> outcomes;  // GUARDED_BY(mu)
  std::lock_guard<std::mutex> lock(mu);  // one smoke test at a time: each may initialise a device
  auto key = std::make_pair(provider, device_id);
  auto it = outcomes.find(key);
  if (it == outcomes.end()) {
    std::optional<Error> outcome;
    try {
      run_smoke_model(provider, device_id);
    } catch (const Error& e) {
      outcome = Error(e.code(), "smoke test on " + provider + ":" + std::to_string(device_id) + " failed: " + e.message());
    }
    it = outcomes.emplace(key, outcome).first;
  }
  if (it->second) throw *it->second;
}

}  // namespace

EngineLoaders default_engine_loaders() {
  EngineLoaders l;
  l.onnx = [](const LoadSpec& spec) -> std::unique_ptr<Engine> { return OnnxEngine::load(spec.model_path, onnx_options(spec)); };
#ifdef KAPSL_FACTORY_HAVE_GGUF
  l.gguf = [](const LoadSpec& spec) -> std::unique_ptr<Engine> { return GgufEngine::load(spec.model_path, GgufOptions{}); };
#else
  l.gguf = [](const LoadSpec&) -> std::unique_ptr<Engine> {
    throw Error::unavailable("this kapsl was built without the GGUF backend");
  };
#endif
  l.onnx_providers = [] { return OnnxEngine::available_providers(); };
  l.smoke_test = cached_smoke_test;
  return l;
}

}  // namespace kapsl
