#include "server/model_host.h"

#include <spdlog/spdlog.h>

#include "kapsl/error.h"
#include "kapsl/gguf_engine.h"
#include "kapsl/onnx_engine.h"

namespace kapsl::server {

const char* model_state_name(ModelState state) noexcept {
  switch (state) {
    case ModelState::kUnloaded: return "UNLOADED";
    case ModelState::kLoading: return "LOADING";
    case ModelState::kReady: return "READY";
    case ModelState::kDisabled: return "UNAVAILABLE";
  }
  return "UNKNOWN";
}

namespace {

EngineKey key_for(const std::string& name, EngineRole role) {
  return EngineKey{role == EngineRole::kEmbed ? name + ":embed" : name, 0};
}

}  // namespace

ModelHost::ModelHost(const PoolConfig& pool_config, BackendSettings backend)
    : backend_(backend), pool_(pool_config) {
  pool_.set_eviction_callback([](const EngineKey& key, const std::shared_ptr<Engine>&, EvictionReason reason) {
    spdlog::info("model {} left the pool: {}", key.model_id, eviction_reason_name(reason));
  });
}

ModelHost::~ModelHost() { pool_.clear_eviction_callback(); }

std::shared_ptr<Engine> ModelHost::build(const RepositoryModel& model, EngineRole role) {
  const std::string path = model.model_path.string();
  if (model.format == ModelFormat::kOnnx) {
    if (role != EngineRole::kMain) throw Error::invalid_input("model '" + model.name + "' is an ONNX model");
    OnnxOptions options;
    if (backend_.threads > 0) options.intra_op_threads = backend_.threads;
    return OnnxEngine::load(path, options);
  }
  GgufOptions options;
  options.n_ctx = backend_.ctx_size;
  options.n_parallel = role == EngineRole::kEmbed ? 1 : backend_.parallel;
  options.max_queue = backend_.max_queue;
  options.n_threads = backend_.threads;
  options.embeddings = role == EngineRole::kEmbed;
  return GgufEngine::load(path, options);
}

std::shared_ptr<Engine> ModelHost::acquire(const RepositoryModel& model, EngineRole role) {
  {
    std::lock_guard lock(mu_);
    if (disabled_.count(model.name)) {
      throw Error::unavailable("model '" + model.name + "' is unloaded",
                               "load it with POST /v2/repository/models/" + model.name + "/load");
    }
  }
  return pool_.get_or_load(key_for(model.name, role), [this, &model, role](const EngineKey& key) {
    {
      std::lock_guard lock(mu_);
      ++loading_[model.name];
    }
    struct Done {
      ModelHost* host;
      std::string name;
      ~Done() {
        std::lock_guard lock(host->mu_);
        if (--host->loading_[name] == 0) host->loading_.erase(name);
      }
    } done{this, model.name};
    spdlog::info("loading {} from {}", key.model_id, model.model_path.string());
    return build(model, role);
  });
}

ModelState ModelHost::state(const std::string& name) const {
  {
    std::lock_guard lock(mu_);
    if (disabled_.count(name)) return ModelState::kDisabled;
    if (loading_.count(name)) return ModelState::kLoading;
  }
  return pool_.contains(key_for(name, EngineRole::kMain)) ? ModelState::kReady : ModelState::kUnloaded;
}

void ModelHost::load(const RepositoryModel& model) {
  {
    std::lock_guard lock(mu_);
    disabled_.erase(model.name);
  }
  acquire(model, EngineRole::kMain);
  pool_.pin(key_for(model.name, EngineRole::kMain));
}

bool ModelHost::unload(const std::string& name) {
  {
    std::lock_guard lock(mu_);
    disabled_.insert(name);
  }
  const bool main = pool_.remove(key_for(name, EngineRole::kMain));
  const bool embed = pool_.remove(key_for(name, EngineRole::kEmbed));
  return main || embed;
}

void ModelHost::clear() { pool_.clear(); }

}  // namespace kapsl::server
