// ScriptedBackend: a Backend registered by a test alone, whose outcome per provider is
// scripted and whose every call is recorded — the factory's provider walk, smoke tests and
// option parsing go through the same interface the real backends use.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_TESTS_FACTORY_SCRIPTED_BACKEND_H_
#define KAPSL_TESTS_FACTORY_SCRIPTED_BACKEND_H_

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kapsl/backend.h"
#include "support/fake_engine.h"

namespace kapsl::testing {

// What one load was asked.
struct RecordedLoad {
  std::string provider;
  int device_id = 0;
  std::string task;
  int32_t threads = 0;
  std::string options_json;
  bool tokenizer_only = false;
};

class ScriptedBackend : public Backend {
 public:
  // --- Script (set before use)
  std::string backend_name = "onnx";
  std::vector<std::string> extensions = {".onnx"};
  std::vector<std::string> task_names = {"forward", "classify", "embed"};
  std::vector<std::string> offered = {"cpu", "cuda", "tensorrt", "rocm"};
  std::map<std::string, Error> load_fails;   // provider -> what load() throws
  std::map<std::string, Error> smoke_fails;  // provider -> what smoke_test() throws

  // --- Record
  std::vector<RecordedLoad> loads() const {
    std::lock_guard lock(mu_);
    return loads_;
  }
  std::vector<std::string> smokes() const {
    std::lock_guard lock(mu_);
    return smokes_;
  }
  std::vector<std::string> load_providers() const {
    std::vector<std::string> out;
    for (const auto& l : loads()) out.push_back(l.provider);
    return out;
  }

  // --- Backend
  std::string name() const override { return backend_name; }
  std::vector<std::string> file_extensions() const override { return extensions; }
  std::vector<std::string> tasks() const override { return task_names; }
  std::string version() const override { return "scripted 1.0"; }
  std::string platform() const override { return "scripted"; }

  // The section takes one key, "level" (an integer); anything else is refused.
  std::shared_ptr<const BackendOptions> parse_options(const Package& model, const std::string&) const override {
    struct Options final : BackendOptions {
      int level = 0;
      std::string to_json() const override { return nlohmann::json{{"level", level}}.dump(); }
    };
    auto o = std::make_shared<Options>();
    auto it = model.manifest.backend_sections.find(backend_name);
    if (it == model.manifest.backend_sections.end()) return o;
    const auto section = nlohmann::json::parse(it->second);
    for (const auto& [key, value] : section.items()) {
      if (key != "level" || !value.is_number_integer()) {
        throw Error::invalid_input(model.name + ": " + backend_name + "." + key, "expected \"level\": an integer");
      }
      o->level = value.get<int>();
    }
    return o;
  }

  std::vector<std::string> providers() const override { return offered; }

  void smoke_test(const std::string& provider, int) const override {
    {
      std::lock_guard lock(mu_);
      smokes_.push_back(provider);
    }
    if (auto it = smoke_fails.find(provider); it != smoke_fails.end()) throw it->second;
  }

  std::unique_ptr<Engine> load(const BackendLoadRequest& r) const override {
    {
      std::lock_guard lock(mu_);
      loads_.push_back({r.provider, r.device_id, r.task, r.threads, r.options->to_json(), r.tokenizer_only});
    }
    if (auto it = load_fails.find(r.provider); it != load_fails.end()) throw it->second;
    if (r.provider == "throws-std") throw std::runtime_error("std failure");
    return std::make_unique<FakeEngine>(r.provider);
  }

 private:
  mutable std::mutex mu_;
  mutable std::vector<RecordedLoad> loads_;
  mutable std::vector<std::string> smokes_;
};

// A registry holding `backend` alone.
inline std::shared_ptr<BackendRegistry> registry_of(std::shared_ptr<const Backend> backend) {
  auto r = std::make_shared<BackendRegistry>();
  r->add(std::move(backend));
  return r;
}

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_FACTORY_SCRIPTED_BACKEND_H_
