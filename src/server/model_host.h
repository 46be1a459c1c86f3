// ModelHost: the repository's models behind an EnginePool whose loader is the
// BackendFactory — which engine serves a model, loading it on demand, readiness, explicit
// load/unload, pinning, and the load reports.
//
// A model may have two engines. Its main one serves its own task under the pool key
// "<name>". For the "embeddings" role, a model whose task is not "embed" gets a second
// engine of the same model resolved with the task "embed" (when its backend has one: a GGUF
// model then loads with embeddings on, an ONNX encoder pools its hidden states), under
// "<name>:embed" (model names cannot contain ':'). Loads run in the pool's single-flight
// get_or_load, so concurrent first requests load once; each engine is admitted with its
// model's idle TTL and pin, and warmed up first when its manifest asks.
//
// An engine is tied to the resolution it was loaded from: when the repository resolves a
// model again (its files changed), acquire() drops the old engine and loads the new one.
//
// Explicit unload (the KServe repository API) removes a model's engines and disables it:
// requests then fail with kUnavailable until an explicit load enables it again. Explicit
// load loads the main engine and pins it.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_MODEL_HOST_H_
#define KAPSL_SRC_SERVER_MODEL_HOST_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/backend_factory.h"
#include "kapsl/engine.h"
#include "kapsl/engine_pool.h"
#include "server/model_repository.h"

namespace kapsl::server {

enum class EngineRole { kMain, kEmbed };

enum class ModelState { kUnloaded, kLoading, kReady, kDisabled };
const char* model_state_name(ModelState state) noexcept;  // "UNLOADED", "LOADING", "READY", "UNAVAILABLE"

class ModelHost {
 public:
  ModelHost(const PoolConfig& pool_config, std::shared_ptr<const BackendFactory> factory);
  ModelHost(const ModelHost&) = delete;
  ModelHost& operator=(const ModelHost&) = delete;
  ~ModelHost();

  // The engine serving `model` in `role`, loaded if need be. Throws Error(kUnavailable) if
  // the model is disabled; kInvalidInput if the role asks for a task its backend lacks; the
  // load's error (kModelLoad, ...); kResourceExhausted if the pool cannot admit it.
  std::shared_ptr<Engine> acquire(const RepositoryModel& model, EngineRole role);
  // LOADING while a load runs, READY if the main engine is resident, UNAVAILABLE if
  // disabled, else UNLOADED. Never loads.
  ModelState state(const std::string& name) const;
  // The report of the latest successful load of `name`'s main engine, or nullopt.
  std::optional<LoadReport> report(const std::string& name) const;
  // Requests `name`'s main engine takes at once: max_concurrency, times max_batch_size
  // where its last load put a DynamicBatcher in front (enough to fill every execution) or,
  // before its first load, where `serving` asks for one.
  uint32_t admitted_at_once(const std::string& name, const ServingConfig& serving, uint32_t default_concurrency) const;
  // Enables, loads and pins the main engine. Throws as acquire().
  void load(const RepositoryModel& model);
  // Disables the model and removes its engines. Returns whether any was resident.
  bool unload(const std::string& name);
  // Removes the model's engines without disabling it (its files changed or are gone).
  // Returns whether any was resident.
  bool forget(const std::string& name);
  // Removes every engine (reason kCleared).
  void clear();
  PoolMetrics pool_metrics() const { return pool_.metrics(); }

 private:
  // The factory's load of `resolved`, warmed up if its manifest asks, its report kept.
  std::shared_ptr<Engine> build(const RepositoryModel& model, const ResolvedModel& resolved, EngineRole role);
  // `engine` behind a DynamicBatcher if `serving` asks for one and the model can batch;
  // the report says which, and why not.
  std::shared_ptr<Engine> with_batching(const std::string& name, std::shared_ptr<Engine> engine,
                                        const ServingConfig& serving, LoadReport& report);
  // `model` resolved for `role`: itself for kMain, the embed task's variant for kEmbed.
  std::shared_ptr<const ResolvedModel> resolved_for(const RepositoryModel& model, EngineRole role) const;

  std::shared_ptr<const BackendFactory> factory_;
  EnginePool pool_;
  // mu_ guards the running loads, the disabled models and the load reports.
  mutable internal::Mutex mu_;
  std::map<std::string, int> loading_ GUARDED_BY(mu_);  // loads running per model
  std::set<std::string> disabled_ GUARDED_BY(mu_);
  std::map<std::string, LoadReport> reports_ GUARDED_BY(mu_);  // by model name, main engines
  std::map<std::string, uint32_t> batch_rows_ GUARDED_BY(mu_);  // max_batch_size of batched main engines
  // The generation of the repository model each resident engine was loaded from, by pool
  // key: a request carrying a newer one replaces the engine, an older one does not.
  std::map<std::string, uint64_t> sources_ GUARDED_BY(mu_);
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_MODEL_HOST_H_
