#include "server/model_host.h"

#include <algorithm>

#include <spdlog/spdlog.h>

#include "kapsl/dynamic_batcher.h"
#include "kapsl/error.h"

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

EngineKey main_key(const std::string& name) { return EngineKey{name, 0}; }

// Whether `role` needs an engine other than the model's main one.
bool needs_variant(const ResolvedModel& resolved, EngineRole role) {
  return role == EngineRole::kEmbed && resolved.task != "embed";
}

EngineKey key_for(const RepositoryModel& model, EngineRole role) {
  return needs_variant(*model.resolved, role) ? EngineKey{model.name + ":embed", 0} : main_key(model.name);
}

EntryOptions entry_options(const ResolvedModel& resolved) {
  const ServingConfig& serving = resolved.package.manifest.serving;
  return EntryOptions{serving.idle_ttl, serving.pin.value_or(false)};
}

}  // namespace

ModelHost::ModelHost(const PoolConfig& pool_config, std::shared_ptr<const BackendFactory> factory)
    : factory_(std::move(factory)), pool_(pool_config) {
  pool_.set_eviction_callback([](const EngineKey& key, const std::shared_ptr<Engine>&, EvictionReason reason) {
    spdlog::info("model {} left the pool: {}", key.model_id, eviction_reason_name(reason));
  });
}

ModelHost::~ModelHost() { pool_.clear_eviction_callback(); }

std::shared_ptr<const ResolvedModel> ModelHost::resolved_for(const RepositoryModel& model, EngineRole role) const {
  if (!needs_variant(*model.resolved, role)) return model.resolved;
  const auto tasks = model.resolved->backend->tasks();
  if (std::find(tasks.begin(), tasks.end(), "embed") == tasks.end()) {
    throw Error::invalid_input("model '" + model.name + "' cannot embed",
                               "its backend " + model.resolved->backend->name() + " has no \"embed\" task");
  }
  LoadOptions variant;
  variant.overrides = R"({"task": "embed"})";
  return std::make_shared<const ResolvedModel>(factory_->resolve(model.resolved->package, variant));
}

std::shared_ptr<Engine> ModelHost::build(const RepositoryModel& model, const ResolvedModel& resolved, EngineRole role) {
  {
    internal::MutexLock lock(&mu_);
    sources_[key_for(model, role).model_id] = model.generation;
  }
  spdlog::info("loading {} ({}/{}) from {}", model.name, resolved.backend->name(), resolved.task,
               resolved.package.model_path.string());
  LoadedEngine loaded = factory_->load(resolved);
  if (resolved.package.manifest.serving.warmup.value_or(false)) loaded.engine->warmup();
  std::shared_ptr<Engine> engine = std::move(loaded.engine);
  if (role == EngineRole::kMain) engine = with_batching(model.name, std::move(engine), resolved.package.manifest.serving, loaded.report);
  spdlog::info("loaded {}: {}", model.name, loaded.report.summary());
  if (role == EngineRole::kMain) {
    internal::MutexLock lock(&mu_);
    reports_[model.name] = loaded.report;
  }
  return engine;
}

std::shared_ptr<Engine> ModelHost::with_batching(const std::string& name, std::shared_ptr<Engine> engine,
                                                 const ServingConfig& serving, LoadReport& report) {
  internal::MutexLock lock(&mu_);
  batch_rows_.erase(name);
  if (!serving.dynamic_batching) return engine;
  DynamicBatchingOptions options = *serving.dynamic_batching;
  options.instances = serving.max_concurrency.value_or(1);
  if (const std::string refusal = batching_refusal(*engine); !refusal.empty()) {
    report.notes.push_back("dynamic batching off: " + refusal);
    return engine;
  }
  report.notes.push_back("dynamic batching: up to " + std::to_string(options.max_batch_size) + " rows, " +
                         std::to_string(options.max_queue_delay.count()) + " us delay, " +
                         std::to_string(options.instances) + " executions at once");
  batch_rows_[name] = options.max_batch_size;
  return std::make_shared<DynamicBatcher>(std::move(engine), options);
}

uint32_t ModelHost::admitted_at_once(const std::string& name, const ServingConfig& serving,
                                     uint32_t default_concurrency) const {
  const uint32_t executions = serving.max_concurrency.value_or(default_concurrency);
  if (!serving.dynamic_batching) return executions;
  internal::MutexLock lock(&mu_);
  if (reports_.count(name) == 0) return executions * serving.dynamic_batching->max_batch_size;  // not loaded yet
  const auto it = batch_rows_.find(name);
  return it == batch_rows_.end() ? executions : executions * it->second;
}

std::shared_ptr<Engine> ModelHost::acquire(const RepositoryModel& model, EngineRole role) {
  {
    internal::MutexLock lock(&mu_);
    if (disabled_.count(model.name)) {
      throw Error::unavailable("model '" + model.name + "' is unloaded",
                               "load it with POST /v2/repository/models/" + model.name + "/load");
    }
  }
  const auto loader = [this, &model, role](const EngineKey&) {
    {
      internal::MutexLock lock(&mu_);
      ++loading_[model.name];
    }
    struct Done {
      ModelHost* host;
      std::string name;
      ~Done() {
        internal::MutexLock lock(&host->mu_);
        if (--host->loading_[name] == 0) host->loading_.erase(name);
      }
    } done{this, model.name};
    const auto resolved = resolved_for(model, role);
    return build(model, *resolved, role);
  };
  const EngineKey key = key_for(model, role);
  bool stale = false;
  {
    internal::MutexLock lock(&mu_);
    const auto it = sources_.find(key.model_id);
    stale = it != sources_.end() && it->second < model.generation;
  }
  if (stale) {
    spdlog::info("model {} changed on disk: unloading the engine loaded from the old files", model.name);
    pool_.remove(key);
  }
  return pool_.get_or_load(key, loader, entry_options(*model.resolved));
}

ModelState ModelHost::state(const std::string& name) const {
  {
    internal::MutexLock lock(&mu_);
    if (disabled_.count(name)) return ModelState::kDisabled;
    if (loading_.count(name)) return ModelState::kLoading;
  }
  return pool_.contains(main_key(name)) ? ModelState::kReady : ModelState::kUnloaded;
}

std::optional<LoadReport> ModelHost::report(const std::string& name) const {
  internal::MutexLock lock(&mu_);
  auto it = reports_.find(name);
  if (it == reports_.end()) return std::nullopt;
  return it->second;
}

void ModelHost::load(const RepositoryModel& model) {
  {
    internal::MutexLock lock(&mu_);
    disabled_.erase(model.name);
  }
  acquire(model, EngineRole::kMain);
  pool_.pin(main_key(model.name));
}

bool ModelHost::unload(const std::string& name) {
  {
    internal::MutexLock lock(&mu_);
    disabled_.insert(name);
  }
  const bool main = pool_.remove(main_key(name));
  const bool embed = pool_.remove(EngineKey{name + ":embed", 0});
  return main || embed;
}

bool ModelHost::forget(const std::string& name) {
  {
    internal::MutexLock lock(&mu_);
    reports_.erase(name);
    sources_.erase(name);
    sources_.erase(name + ":embed");
  }
  const bool main = pool_.remove(main_key(name));
  const bool embed = pool_.remove(EngineKey{name + ":embed", 0});
  return main || embed;
}

void ModelHost::clear() { pool_.clear(); }

}  // namespace kapsl::server
