// ModelHost: the repository's models behind an EnginePool — which engine serves a model,
// loading it on demand, readiness, explicit load/unload and pinning.
//
// A model may have two engines: its main one (ONNX, or a GGUF generation engine) under the
// pool key "<name>", and for GGUF embeddings a second one loaded with embeddings on, under
// "<name>:embed" (model names cannot contain ':'). Loading runs in the pool's single-flight
// get_or_load, so concurrent first requests load once.
//
// Explicit unload (the KServe repository API) removes a model's engines and disables it:
// requests then fail with kUnavailable until an explicit load enables it again. Explicit
// load loads the main engine and pins it.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_MODEL_HOST_H_
#define KAPSL_SRC_SERVER_MODEL_HOST_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "kapsl/engine.h"
#include "kapsl/engine_pool.h"
#include "server/model_repository.h"

#include "core/thread_annotations.h"

namespace kapsl::server {

enum class EngineRole { kMain, kEmbed };

// How engines are built.
struct BackendSettings {
  int32_t threads = 0;     // ONNX intra-op threads (0 = the shared pool), GGUF compute threads (all slots)
  uint32_t ctx_size = 0;   // GGUF context per slot
  uint32_t parallel = 1;   // GGUF slots
  uint32_t max_queue = 64; // GGUF slot queue; the server's admission keeps it from filling
};

enum class ModelState { kUnloaded, kLoading, kReady, kDisabled };
const char* model_state_name(ModelState state) noexcept;  // "UNLOADED", "LOADING", "READY", "UNAVAILABLE"

class ModelHost {
 public:
  ModelHost(const PoolConfig& pool_config, BackendSettings backend);
  ModelHost(const ModelHost&) = delete;
  ModelHost& operator=(const ModelHost&) = delete;
  ~ModelHost();

  // The engine serving `model` in `role`, loaded if need be. Throws Error(kUnavailable) if
  // the model is disabled, the load's error (kModelLoad, ...), or kResourceExhausted if the
  // pool cannot admit it.
  std::shared_ptr<Engine> acquire(const RepositoryModel& model, EngineRole role);
  // LOADING while a load runs, READY if the main engine is resident, UNAVAILABLE if
  // disabled, else UNLOADED. Never loads.
  ModelState state(const std::string& name) const;
  // Enables, loads and pins the main engine. Throws as acquire().
  void load(const RepositoryModel& model);
  // Disables the model and removes its engines. Returns whether any was resident.
  bool unload(const std::string& name);
  // Removes every engine (reason kCleared).
  void clear();
  PoolMetrics pool_metrics() const { return pool_.metrics(); }

 private:
  std::shared_ptr<Engine> build(const RepositoryModel& model, EngineRole role);

  BackendSettings backend_;
  EnginePool pool_;
  mutable std::mutex mu_;
  std::map<std::string, int> loading_ GUARDED_BY(mu_);  // loads running per model
  std::set<std::string> disabled_ GUARDED_BY(mu_);
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_MODEL_HOST_H_
