// A fake Engine for factory tests: returns fixed outputs and records nothing else.
#ifndef KAPSL_TESTS_SUPPORT_FAKE_ENGINE_H_
#define KAPSL_TESTS_SUPPORT_FAKE_ENGINE_H_

#include <vector>

#include "kapsl/engine.h"

namespace kapsl::testing {

class FakeEngine : public Engine {
 public:
  // Returns `outputs` from every infer; `output_info` describes them in model_info().
  FakeEngine(std::string provider, std::vector<NamedTensor> outputs = {}, std::vector<TensorInfo> output_info = {})
      : outputs_(std::move(outputs)) {
    info_.backend = "fake";
    info_.provider = std::move(provider);
    info_.outputs = std::move(output_info);
  }
  InferenceResult infer(const InferenceRequest& request) override {
    if (request.find_input("fail") != nullptr) throw Error::invalid_input("asked to fail");
    InferenceResult r;
    r.outputs = outputs_;
    return r;
  }
  void warmup() override {}
  EngineMetrics metrics() const override { return {}; }
  const ModelInfo& model_info() const override { return info_; }
  Health health_check() const override { return {}; }
  uint64_t resident_bytes() const override { return 7; }

 private:
  std::vector<NamedTensor> outputs_;
  ModelInfo info_;
};

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_SUPPORT_FAKE_ENGINE_H_
