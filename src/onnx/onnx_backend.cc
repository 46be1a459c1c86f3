// The "onnx" Backend: ONNX Runtime models (.onnx, .ort) for the forward, classify and embed
// tasks, configured by the manifest's "onnx" section (docs/model-config.md).
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "core/mutex.h"
#include "core/strings.h"
#include "core/thread_annotations.h"
#include "kapsl/backend.h"
#include "kapsl/onnx_engine.h"
#include "onnx/options.h"
#include "onnx/smoke_model.h"
#include "tasks/engine_decorator.h"

namespace kapsl {
namespace {

using nlohmann::json;
using internal::JsonFields;

struct OnnxBackendOptions final : BackendOptions {
  OnnxOptions engine;                  // provider, device and threads come per load
  bool apply_softmax = true;           // classify: metadata.classify.apply_softmax
  std::vector<std::string> labels;     // classify: onnx.labels or onnx.labels_file
  bool normalize = true;               // embed: metadata.embed.normalize
  std::shared_ptr<const internal::WordPiece> tokenizer;  // embed: onnx.tokenizer

  std::string to_json() const override {
    json j = {{"graph_optimization_level", engine.graph_optimization_level},
              {"execution_mode", engine.execution_mode},
              {"inter_op_threads", engine.inter_op_threads.value_or(1)},
              {"log_level", engine.log_level},
              {"auto_fill_llm_inputs", engine.auto_fill_llm_inputs}};
    if (engine.memory_pattern) j["memory_pattern"] = *engine.memory_pattern;
    if (engine.cpu_mem_arena) j["cpu_mem_arena"] = *engine.cpu_mem_arena;
    if (!labels.empty()) j["labels"] = labels;
    if (tokenizer) {
      const auto& c = tokenizer->config();
      j["tokenizer"] = {{"vocab", c.vocab.string()}, {"lowercase", c.lowercase}, {"max_tokens", c.max_tokens}};
    }
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
};

std::vector<std::string> read_labels(const std::filesystem::path& file, const std::string& where) {
  std::error_code ec;
  if (std::filesystem::file_size(file, ec) > (uint64_t{16} << 20)) throw Error::invalid_input(where, "larger than 16 MiB");
  std::ifstream in(file, std::ios::binary);
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    labels.push_back(line);
  }
  while (!labels.empty() && labels.back().empty()) labels.pop_back();
  return labels;
}

// The classify and embed extras of the section, refused for other tasks.
void parse_task_options(const JsonFields& r, const Package& model, const std::string& task, OnnxBackendOptions& o) {
  const auto only_for = [&r, &task](std::string_view field, std::string_view wanted) {
    if (r.find(field) && task != wanted) {
      throw Error::invalid_input(r.where(field), "only for task " + std::string(wanted) + ", the model's task is " + task);
    }
  };
  only_for("labels", "classify");
  only_for("labels_file", "classify");
  only_for("tokenizer", "embed");
  o.labels = r.strings("labels");
  if (auto file = r.string("labels_file")) {
    if (!o.labels.empty()) throw Error::invalid_input(r.where("labels_file"), "give labels or labels_file, not both");
    o.labels = read_labels(resolve_in_package(model, *file, r.where("labels_file")), r.where("labels_file"));
  }
  if (const json* tok = r.object("tokenizer")) {
    JsonFields t(*tok, r.path("tokenizer"), r.source());
    t.reject_unknown({"vocab", "lowercase", "max_tokens"});
    internal::WordPieceConfig config;
    config.vocab = resolve_in_package(model, t.required_string("vocab"), t.where("vocab"));
    config.lowercase = t.boolean("lowercase").value_or(true);
    config.max_tokens = t.u32("max_tokens", 2, 1u << 20).value_or(512);
    o.tokenizer = std::make_shared<internal::WordPiece>(config);
  }
  o.apply_softmax = model.manifest.metadata_bool("classify.apply_softmax").value_or(true);
  o.normalize = model.manifest.metadata_bool("embed.normalize").value_or(true);
}

class OnnxBackend final : public Backend {
 public:
  std::string name() const override { return "onnx"; }
  std::vector<std::string> file_extensions() const override { return {".onnx", ".ort"}; }
  std::vector<std::string> tasks() const override { return {"forward", "classify", "embed"}; }
  std::string version() const override { return "onnxruntime " + OnnxEngine::runtime_version(); }
  std::string platform() const override { return "onnxruntime_onnx"; }

  std::shared_ptr<const BackendOptions> parse_options(const Package& model, const std::string& task) const override {
    const auto it = model.manifest.backend_sections.find("onnx");
    const json section = internal::parse_json_document(it == model.manifest.backend_sections.end() ? "{}" : it->second,
                                                       model.name);
    JsonFields r(section, "onnx", model.name);
    r.reject_unknown({"execution_mode", "inter_op_threads", "memory_pattern", "cpu_mem_arena", "log_level",
                      "auto_fill_llm_inputs", "labels", "labels_file", "tokenizer"});
    auto o = std::make_shared<OnnxBackendOptions>();
    OnnxOptions& e = o->engine;
    const std::string level = model.manifest.hardware_requirements.graph_optimization_level;
    e.graph_optimization_level = internal::trim(level).empty() ? "all" : level;
    try {
      onnx::parse_graph_optimization_level(e.graph_optimization_level);
    } catch (const Error& err) {
      throw Error::invalid_input(model.name + ": hardware_requirements.graph_optimization_level", err.message());
    }
    e.execution_mode = r.one_of("execution_mode", {"sequential", "parallel"}).value_or("sequential");
    if (auto n = r.i32("inter_op_threads", 0, 1024)) e.inter_op_threads = *n;
    if (auto b = r.boolean("memory_pattern")) e.memory_pattern = *b;
    if (auto b = r.boolean("cpu_mem_arena")) e.cpu_mem_arena = *b;
    e.log_level = r.one_of("log_level", {"verbose", "info", "warning", "error", "fatal"}).value_or("warning");
    e.auto_fill_llm_inputs = r.boolean("auto_fill_llm_inputs").value_or(false);
    parse_task_options(r, model, task, *o);
    return o;
  }

  std::vector<std::string> providers() const override { return OnnxEngine::available_providers(); }

  void smoke_test(const std::string& provider, int device_id) const override {
    internal::MutexLock lock(&smoke_mu_);  // one at a time: each may initialise a device
    const auto key = std::make_pair(provider, device_id);
    auto it = smoke_outcomes_.find(key);
    if (it == smoke_outcomes_.end()) it = smoke_outcomes_.emplace(key, run_smoke_model(provider, device_id)).first;
    if (it->second) throw *it->second;
  }

  std::unique_ptr<Engine> load(const BackendLoadRequest& request) const override {
    const auto& o = static_cast<const OnnxBackendOptions&>(*request.options);
    OnnxOptions engine = o.engine;
    engine.provider = request.provider;
    engine.device_id = request.device_id;
    if (request.threads > 0) engine.intra_op_threads = request.threads;
    std::unique_ptr<Engine> loaded = OnnxEngine::load(request.model->model_path.string(), engine);
    if (request.task == "classify") {
      return std::make_unique<internal::ClassifyEngine>(std::move(loaded), o.apply_softmax, o.labels);
    }
    if (request.task == "embed") return std::make_unique<internal::EmbedEngine>(std::move(loaded), o.normalize, o.tokenizer);
    return loaded;
  }

 private:
  // Loads the built-in Identity model on the provider; the error, if one run does not
  // return its input.
  static std::optional<Error> run_smoke_model(const std::string& provider, int device_id) {
    try {
      OnnxOptions o;
      o.provider = provider;
      o.device_id = device_id;
      const std::string& model = internal::smoke_model_bytes();
      auto engine = OnnxEngine::load_from_memory(std::as_bytes(std::span(model.data(), model.size())), o);
      InferenceResult r = engine->infer(InferenceRequest::with_main_input(Tensor::from_vector<float>({1}, {42.0f})));
      if (r.outputs.size() != 1 || r.outputs[0].tensor.dtype() != DType::kFloat32 ||
          r.outputs[0].tensor.data<float>()[0] != 42.0f) {
        return Error::unavailable("provider " + provider + " failed the smoke test", "Identity returned a wrong value");
      }
      return std::nullopt;
    } catch (const Error& e) {
      return Error(e.code(), "smoke test on " + provider + ":" + std::to_string(device_id) + " failed: " + e.message());
    }
  }

  mutable internal::Mutex smoke_mu_;  // guards smoke_outcomes_, and runs one smoke test at a time
  mutable std::map<std::pair<std::string, int>, std::optional<Error>> smoke_outcomes_ GUARDED_BY(smoke_mu_);
};

}  // namespace

std::shared_ptr<const Backend> onnx_backend() { return std::make_shared<OnnxBackend>(); }

}  // namespace kapsl
