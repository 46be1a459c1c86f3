// OnnxEngine::Impl: the session, the model's metadata and the run path shared by infer,
// infer_batch and warmup.
//
// Thread-safety: safe for concurrent use without external synchronization; run() holds no
// lock around Ort::Session::Run (which is thread-safe).
#ifndef KAPSL_SRC_ONNX_ENGINE_IMPL_H_
#define KAPSL_SRC_ONNX_ENGINE_IMPL_H_

#include <onnxruntime_cxx_api.h>

#include <span>
#include <string>
#include <vector>

#include "core/request_counters.h"
#include "kapsl/onnx_engine.h"
#include "onnx/binding.h"

namespace kapsl {

namespace onnx {
struct ThreadRunState;  // onnx_engine.cc
}  // namespace onnx

class OnnxEngine::Impl {
 public:
  Impl(OnnxOptions options, Ort::Session session, std::string path, uint64_t model_bytes);
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Binds, runs and converts one request; `watched` are the requests whose tokens and
  // deadlines stop the run (the request itself, or a whole batch). Throws kapsl::Error
  // only; Ort::Exception is translated here.
  InferenceResult run(const InferenceRequest& request, std::span<const InferenceRequest> watched);

  // infer() with metrics.
  InferenceResult infer_counted(const InferenceRequest& request);

  const std::vector<onnx::IoSpec>& inputs() const { return inputs_; }
  const std::vector<onnx::IoSpec>& outputs() const { return outputs_; }

  OnnxOptions options_;
  ModelInfo info_;
  uint64_t model_bytes_;
  internal::RequestCounters counters_;

 private:
  // Runs the session on state.in into state.outputs (one per name).
  void run_session(onnx::ThreadRunState& state, const std::vector<const char*>& output_names,
                   std::span<const InferenceRequest> watched);
  void fill_info(const std::string& path);

  Ort::Session session_;
  std::vector<onnx::IoSpec> inputs_;
  std::vector<onnx::IoSpec> outputs_;
  std::vector<const char*> all_output_names_;  // point into outputs_
};

}  // namespace kapsl

#endif  // KAPSL_SRC_ONNX_ENGINE_IMPL_H_
