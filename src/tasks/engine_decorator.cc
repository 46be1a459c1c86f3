#include "tasks/engine_decorator.h"

namespace kapsl::internal {

EngineDecorator::EngineDecorator(std::unique_ptr<Engine> inner, const std::string& task)
    : info_(inner->model_info()), inner_(std::move(inner)) {
  info_.metadata["task"] = task;
}

InferenceResult EngineDecorator::post_processed(const InferenceRequest& request, InferenceResult inner) const {
  std::optional<ComputeTiming> timing = inner.timing;
  InferenceResult result = post_process(request, std::move(inner));
  if (!result.timing) result.timing = timing;
  return result;
}

InferenceResult EngineDecorator::infer(const InferenceRequest& request) {
  std::optional<InferenceRequest> adapted = adapt_request(request);
  return post_processed(request, inner_->infer(adapted ? *adapted : request));
}

std::vector<BatchItemResult> EngineDecorator::infer_batch(std::span<const InferenceRequest> requests) {
  std::vector<InferenceRequest> adapted;
  for (size_t i = 0; i < requests.size(); ++i) {
    std::optional<InferenceRequest> a = adapt_request(requests[i]);
    if (a && adapted.empty()) adapted.assign(requests.begin(), requests.begin() + static_cast<std::ptrdiff_t>(i));
    if (a) adapted.push_back(std::move(*a));
    else if (!adapted.empty()) adapted.push_back(requests[i]);
  }
  std::vector<BatchItemResult> items =
      inner_->infer_batch(adapted.empty() ? requests : std::span<const InferenceRequest>(adapted));
  for (size_t i = 0; i < items.size() && i < requests.size(); ++i) {
    if (!items[i].ok()) continue;
    try {
      items[i].result = post_processed(requests[i], std::move(*items[i].result));
    } catch (const Error& e) {
      items[i].result.reset();
      items[i].error = e;
    }
  }
  return items;
}

}  // namespace kapsl::internal
