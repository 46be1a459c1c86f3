// The "gguf" Backend: llama.cpp models (.gguf) for the generate and embed tasks, configured
// by the manifest's "gguf" section (docs/model-config.md).
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/json_fields.h"
#include "gguf/rpc_client.h"
#include "kapsl/backend.h"
#include "kapsl/gguf_engine.h"
#include "kapsl/package.h"

namespace kapsl {
namespace {

using nlohmann::json;
using internal::JsonFields;

struct GgufBackendOptions final : BackendOptions {
  GgufOptions engine;  // provider, device, threads and the task's switches come per load

  std::string to_json() const override {
    const GgufOptions& e = engine;
    const json j = {{"context", e.n_ctx},          {"slots", e.n_parallel},
                    {"max_queue", e.max_queue},    {"batch", e.n_batch},
                    {"ubatch", e.n_ubatch},        {"gpu_layers", e.n_gpu_layers},
                    {"mmap", e.use_mmap},          {"mlock", e.use_mlock},
                    {"flash_attention", e.flash_attention}, {"kv_cache_type", e.kv_cache_type},
                    {"rpc_workers", e.rpc_workers},  {"rpc_timeout_ms", e.rpc_timeout_ms},
                    {"tensor_split", e.tensor_split},
                    {"chat_template", e.chat_template.size() <= 32 ? e.chat_template
                                                                   : std::to_string(e.chat_template.size()) +
                                                                         " characters of template text"}};
    return j.dump(-1, ' ', false, json::error_handler_t::replace);
  }
};

// The manifest's chat template: "chat_template" (a name or the text), or the text of
// "chat_template_file" (a file in the package); "" = the model's own.
std::string chat_template(const Package& model, const JsonFields& r) {
  const auto inline_template = r.string("chat_template");
  const auto file = r.string("chat_template_file");
  if (inline_template && file) {
    throw Error::invalid_input(r.where("chat_template_file"), "give chat_template or chat_template_file, not both");
  }
  if (!file) return inline_template.value_or("");
  const auto path = resolve_in_package(model, *file, r.path("chat_template_file"));
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (!(in && text << in.rdbuf())) throw Error::invalid_input(r.where("chat_template_file"), "cannot read " + path.string());
  return text.str();
}

// "tensor_split": one non-negative share per device.
std::vector<float> tensor_split(const JsonFields& r) {
  const json* field = r.find("tensor_split");
  if (field == nullptr) return {};
  if (!field->is_array() || field->empty() || field->size() > 256) {
    internal::fail_field(r.where("tensor_split"), "an array of 1 to 256 shares", *field);
  }
  std::vector<float> out;
  for (size_t i = 0; i < field->size(); ++i) {
    const json& v = (*field)[i];
    if (!v.is_number() || v.get<double>() < 0 || v.get<double>() > 1e9) {
      internal::fail_field(r.where("tensor_split") + "[" + std::to_string(i) + "]", "a share from 0 to 1e9", v);
    }
    out.push_back(v.get<float>());
  }
  return out;
}

class GgufBackend final : public Backend {
 public:
  std::string name() const override { return "gguf"; }
  std::vector<std::string> file_extensions() const override { return {".gguf"}; }
  std::vector<std::string> tasks() const override { return {"generate", "embed", "rerank"}; }
  std::string version() const override { return "llama.cpp " + GgufEngine::llama_version(); }
  std::string platform() const override { return "llama_cpp_gguf"; }

  std::shared_ptr<const BackendOptions> parse_options(const Package& model, const std::string& task) const override {
    const auto it = model.manifest.backend_sections.find("gguf");
    const json section = internal::parse_json_document(it == model.manifest.backend_sections.end() ? "{}" : it->second,
                                                       model.name);
    JsonFields r(section, "gguf", model.name);
    r.reject_unknown({"context", "slots", "max_queue", "batch", "ubatch", "gpu_layers", "mmap", "mlock",
                      "flash_attention", "kv_cache_type", "chat_template", "chat_template_file", "rpc_workers",
                      "rpc_timeout", "tensor_split"});
    auto o = std::make_shared<GgufBackendOptions>();
    GgufOptions& e = o->engine;
    e.n_ctx = r.u32("context", 0, 1u << 24).value_or(0);
    // An embeddings engine serves one request at a time (its batches hold many texts).
    e.n_parallel = task != "generate" ? 1 : r.u32("slots", 1, 256).value_or(1);
    e.max_queue = r.u32("max_queue", 0, 1u << 20).value_or(e.max_queue);
    e.n_batch = r.u32("batch", 1, 1u << 20).value_or(e.n_batch);
    e.n_ubatch = r.u32("ubatch", 1, 1u << 20).value_or(std::min(e.n_ubatch, e.n_batch));
    e.n_gpu_layers = r.i32("gpu_layers", -1, 1 << 16).value_or(-1);
    e.use_mmap = r.boolean("mmap").value_or(true);
    e.use_mlock = r.boolean("mlock").value_or(false);
    e.flash_attention = r.one_of("flash_attention", {"auto", "on", "off"}).value_or("auto");
    e.kv_cache_type =
        r.one_of("kv_cache_type", {"f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"}).value_or("f16");
    e.chat_template = chat_template(model, r);
    e.rpc_workers = r.strings("rpc_workers");
    if (e.rpc_workers.size() > 16) {
      internal::fail_field(r.where("rpc_workers"), "at most 16 workers (ggml-rpc's limit)", *r.find("rpc_workers"));
    }
    for (const auto& worker : e.rpc_workers) gguf::parse_rpc_endpoint(worker);
    if (const auto timeout = r.duration("rpc_timeout")) {
      if (timeout->count() < 1 || timeout->count() > 3'600'000) {
        internal::fail_field(r.where("rpc_timeout"), "1ms to 1h", *r.find("rpc_timeout"));
      }
      e.rpc_timeout_ms = static_cast<uint32_t>(timeout->count());
    }
    e.tensor_split = tensor_split(r);
    if (e.n_ubatch > e.n_batch) {
      throw Error::invalid_input(r.where("ubatch"), "expected at most batch (" + std::to_string(e.n_batch) + "), got " +
                                                        std::to_string(e.n_ubatch));
    }
    if (task == "generate" && e.n_parallel > e.n_batch) {
      throw Error::invalid_input(r.where("slots"), "expected at most batch (" + std::to_string(e.n_batch) + "), got " +
                                                       std::to_string(e.n_parallel));
    }
    return o;
  }

  std::vector<std::string> providers() const override {
    std::vector<std::string> out = gguf_gpu_providers();
    out.push_back("cpu");
    return out;
  }

  std::unique_ptr<Engine> load(const BackendLoadRequest& request) const override {
    GgufOptions o = static_cast<const GgufBackendOptions&>(*request.options).engine;
    o.provider = request.provider;
    o.device_id = request.device_id;
    o.n_threads = request.threads;
    o.reranking = request.task == "rerank";
    o.embeddings = request.task == "embed" || o.reranking;
    o.vocab_only = request.tokenizer_only;
    o.progress = request.progress;
    return GgufEngine::load(request.model->model_path.string(), o);
  }
};

}  // namespace

std::shared_ptr<const Backend> gguf_backend() { return std::make_shared<GgufBackend>(); }

}  // namespace kapsl
