#include "kapsl/request.h"

#include <utility>

namespace kapsl {

InferenceRequest InferenceRequest::with_main_input(Tensor tensor) {
  InferenceRequest r;
  r.inputs.push_back({kMainInput, std::move(tensor)});
  return r;
}

InferenceRequest& InferenceRequest::add_input(std::string name, Tensor tensor) {
  inputs.push_back({std::move(name), std::move(tensor)});
  return *this;
}

InferenceRequest& InferenceRequest::set_timeout(std::chrono::milliseconds timeout) {
  deadline = Clock::now() + timeout;
  return *this;
}

const Tensor* InferenceRequest::find_input(std::string_view name) const {
  for (const auto& in : inputs) {
    if (in.name == name) return &in.tensor;
  }
  return nullptr;
}

void InferenceRequest::throw_if_stopped() const {
  if (cancel.is_cancelled()) throw Error::cancelled("request cancelled", request_id);
  if (expired()) throw Error::timeout("request deadline passed", request_id);
}

}  // namespace kapsl
