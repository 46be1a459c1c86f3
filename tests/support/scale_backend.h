// ScaleBackend: a third backend that lives in the tests alone, to show that a backend
// registered by a program reaches the factory, `kapsl serve` and the CLI without any edit
// to them. A model is a text file "<name>.scale" holding a factor; the engine multiplies its
// float32 input "x" by it and adds the manifest's "scale": {"offset": ...}. It offers the
// task "forward" and the providers "cpu" and "fakegpu" (which always fails to load).
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_TESTS_SUPPORT_SCALE_BACKEND_H_
#define KAPSL_TESTS_SUPPORT_SCALE_BACKEND_H_

#include <fstream>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "kapsl/backend.h"
#include "kapsl/error.h"

namespace kapsl::testing {

class ScaleEngine final : public Engine {
 public:
  ScaleEngine(float factor, float offset, std::string path) : factor_(factor), offset_(offset) {
    info_.backend = "scale";
    info_.name = "scale";
    info_.path = std::move(path);
    info_.provider = "cpu";
    info_.inputs = {{"x", DType::kFloat32, true, {-1}, {"n"}, true}};
    info_.outputs = {{"y", DType::kFloat32, true, {-1}, {"n"}, true}};
  }
  InferenceResult infer(const InferenceRequest& request) override {
    const Tensor* x = request.find_input("x");
    if (x == nullptr) x = request.find_input(kMainInput);
    if (x == nullptr || x->dtype() != DType::kFloat32) throw Error::invalid_input("scale: needs a float32 input \"x\"");
    std::vector<float> y(x->data<float>().begin(), x->data<float>().end());
    for (float& v : y) v = v * factor_ + offset_;
    InferenceResult r;
    r.outputs.push_back({"y", Tensor::from_vector<float>(x->shape(), y)});
    return r;
  }
  void warmup() override {}
  EngineMetrics metrics() const override { return {}; }
  const ModelInfo& model_info() const override { return info_; }
  Health health_check() const override { return {}; }
  uint64_t resident_bytes() const override { return 64; }

 private:
  float factor_, offset_;
  ModelInfo info_;
};

class ScaleBackend final : public Backend {
 public:
  std::string name() const override { return "scale"; }
  std::vector<std::string> file_extensions() const override { return {".scale"}; }
  std::vector<std::string> tasks() const override { return {"forward"}; }
  std::string version() const override { return "scale 1.0 (test backend)"; }
  std::string platform() const override { return "kapsl_test_scale"; }

  std::shared_ptr<const BackendOptions> parse_options(const Package& model, const std::string&) const override {
    struct Options final : BackendOptions {
      float offset = 0;
      std::string to_json() const override { return nlohmann::json{{"offset", offset}}.dump(); }
    };
    auto o = std::make_shared<Options>();
    const auto it = model.manifest.backend_sections.find("scale");
    if (it == model.manifest.backend_sections.end()) return o;
    const nlohmann::json section = nlohmann::json::parse(it->second);
    for (const auto& [key, value] : section.items()) {
      if (key != "offset" || !value.is_number()) {
        throw Error::invalid_input(model.name + ": scale." + key, "expected \"offset\": a number");
      }
      o->offset = value.get<float>();
    }
    return o;
  }

  std::vector<std::string> providers() const override { return {"fakegpu", "cpu"}; }

  std::unique_ptr<Engine> load(const BackendLoadRequest& r) const override {
    if (r.provider != "cpu") throw Error::unavailable("fakegpu never loads");
    std::ifstream in(r.model->model_path);
    float factor = 0;
    if (!(in >> factor)) throw Error::model_load("not a scale model: " + r.model->model_path.string());
    const float offset = nlohmann::json::parse(r.options->to_json())["offset"].get<float>();
    return std::make_unique<ScaleEngine>(factor, offset, r.model->model_path.string());
  }
};

// builtin_backends() plus ScaleBackend.
inline std::shared_ptr<BackendRegistry> backends_with_scale() {
  auto r = builtin_backends();
  r->add(std::make_shared<ScaleBackend>());
  return r;
}

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_SUPPORT_SCALE_BACKEND_H_
