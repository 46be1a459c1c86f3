#include "kapsl/engine.h"

namespace kapsl {

const char* finish_reason_name(FinishReason reason) noexcept {
  switch (reason) {
    case FinishReason::kNone: return "none";
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kCancelled: return "cancelled";
    case FinishReason::kTimeout: return "timeout";
  }
  return "none";
}

const Tensor* InferenceResult::find_output(std::string_view name) const {
  for (const auto& out : outputs) {
    if (out.name == name) return &out.tensor;
  }
  return nullptr;
}

std::vector<BatchItemResult> Engine::infer_batch(std::span<const InferenceRequest> requests) {
  std::vector<BatchItemResult> items(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      items[i].result = infer(requests[i]);
    } catch (const Error& e) {
      items[i].error = e;
    }
  }
  return items;
}

InferenceResult Engine::infer_stream(const InferenceRequest& request, const StreamCallback& on_chunk) {
  InferenceResult result = infer(request);
  StreamChunk chunk;
  chunk.outputs = result.outputs;
  on_chunk(chunk);
  return result;
}

}  // namespace kapsl
