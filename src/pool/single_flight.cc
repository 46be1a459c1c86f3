// get_or_load (one load per cold key, however many callers) and warmup.
#include <spdlog/spdlog.h>

#include <set>
#include <utility>

#include "kapsl/engine_pool.h"
#include "pool/pool_impl.h"

namespace kapsl {

using internal::Flight;
using internal::PoolCounters;

namespace internal {

void Flight::finish(std::shared_ptr<Engine> engine, std::optional<Error> error) {
  {
    MutexLock lock(&mu_);
    engine_ = std::move(engine);
    error_ = std::move(error);
    done_ = true;
  }
  cv_.notify_all();
}

std::shared_ptr<Engine> Flight::wait() {
  MutexLock lock(&mu_);
  while (!done_) cv_.wait(&mu_);
  if (error_) throw *error_;
  return engine_;
}

}  // namespace internal

// What a caller that missed does next: take the engine admitted meanwhile, wait for the
// load in flight, or lead a new load.
struct EnginePool::Impl::Join {
  std::shared_ptr<Engine> engine;
  std::shared_ptr<Flight> flight;
  bool leader = false;
};

EnginePool::Impl::Join EnginePool::Impl::join_or_lead(const EngineKey& key) {
  const Clock::time_point t = now();
  internal::MutexLock lock(&mu_);
  if (auto it = index_.find(key); it != index_.end()) {  // admitted since our lookup
    lru_.splice(lru_.begin(), lru_, it->second);
    it->second->last_use = t;
    return Join{it->second->handed, nullptr, false};
  }
  if (auto f = failed_loads_.find(key); f != failed_loads_.end()) {
    if (t < f->second.at + config_.load_failure_backoff) throw f->second.error;
    failed_loads_.erase(f);
  }
  if (auto f = flights_.find(key); f != flights_.end()) {
    if (f->second->leader() == std::this_thread::get_id()) {
      throw Error::invalid_input("EnginePool::get_or_load: the loader for " + key.to_string() +
                                 " asked the pool for its own key");
    }
    return Join{nullptr, f->second, false};
  }
  auto flight = std::make_shared<Flight>(std::this_thread::get_id());
  flights_.emplace(key, flight);
  return Join{nullptr, std::move(flight), true};
}

namespace {

// Runs the loader, turning every way it can fail into a kapsl::Error.
std::shared_ptr<Engine> call_loader(const EngineKey& key, const EngineLoader& loader, std::optional<Error>& error) {
  try {
    std::shared_ptr<Engine> engine = loader(key);
    if (!engine) error = Error::model_load("EnginePool: the loader returned no engine", key.to_string());
    return engine;
  } catch (const Error& e) {
    error = e;
  } catch (const std::exception& e) {
    error = Error::model_load("EnginePool: the loader for " + key.to_string() + " threw", e.what());
  } catch (...) {
    error = Error::model_load("EnginePool: the loader for " + key.to_string() + " threw a non-standard exception");
  }
  return nullptr;
}

}  // namespace

std::shared_ptr<Engine> EnginePool::Impl::lead_load(const EngineKey& key, const EngineLoader& loader,
                                                    const std::shared_ptr<Flight>& flight, const EntryOptions& entry) {
  const auto start = Clock::now();  // real time, not config_.clock: this is a measurement
  std::optional<Error> error;
  std::shared_ptr<Engine> engine = call_loader(key, loader, error);
  if (engine) {
    PoolCounters::bump(counters_.loads);
    load_time_.record(Clock::now() - start);
  } else {
    PoolCounters::bump(counters_.load_failures);
    spdlog::warn("EnginePool: loading {} failed: {}", key.to_string(), error->to_string());
  }
  return complete_load(key, flight, std::move(engine), std::move(error), entry);
}

std::shared_ptr<Engine> EnginePool::Impl::complete_load(const EngineKey& key, const std::shared_ptr<Flight>& flight,
                                                        std::shared_ptr<Engine> engine, std::optional<Error> error,
                                                        const EntryOptions& entry) {
  internal::Prepared prepared;
  try {
    if (engine) prepared = prepare(std::move(engine), entry);
  } catch (const std::exception& e) {  // resident_bytes() must not throw; never strand the waiters
    error = Error::backend("EnginePool: resident_bytes() of " + key.to_string() + " threw", e.what());
  }
  std::shared_ptr<Engine> handed;
  {
    const Clock::time_point t = now();
    internal::MutexLock lock(&mu_);
    if (prepared.engine) {
      try {
        handed = admit_locked(key, prepared, t);
      } catch (const Error& e) {
        error = e;
      } catch (const std::exception& e) {  // bad_alloc: fail this load, never strand the waiters
        error = Error::resource_exhausted("EnginePool: admitting " + key.to_string() + " failed", e.what());
      }
    }
    flights_.erase(key);
    if (error && config_.load_failure_backoff.count() > 0) failed_loads_.insert_or_assign(key, internal::FailedLoad{t, *error});
  }
  flight->finish(handed, error);
  prepared = {};  // a refused engine is destroyed here, outside the lock
  deliver();
  if (error) throw *error;
  return handed;
}

std::shared_ptr<Engine> EnginePool::Impl::get_or_load(const EngineKey& key, const EngineLoader& loader,
                                                      bool count_lookup, const EntryOptions& entry) {
  if (!loader) throw Error::invalid_input("EnginePool::get_or_load: loader is empty", key.to_string());
  if (key.model_id.empty()) throw Error::invalid_input("EnginePool::get_or_load: key.model_id is empty");
  if (std::shared_ptr<Engine> engine = lookup(key, count_lookup)) return engine;
  Join join = join_or_lead(key);
  if (join.engine) return std::move(join.engine);
  if (!join.leader) return join.flight->wait();
  return lead_load(key, loader, join.flight, entry);
}

WarmupReport EnginePool::Impl::warmup(const std::vector<EngineKey>& keys, const EngineLoader& loader) {
  if (!loader) throw Error::invalid_input("EnginePool::warmup: loader is empty");
  // Warm the engine before admission, so that an engine that cannot run is never served.
  const EngineLoader warming = [&loader](const EngineKey& key) {
    std::shared_ptr<Engine> engine = loader(key);
    if (engine) engine->warmup();
    return engine;
  };
  WarmupReport report;
  std::set<EngineKey> seen;
  for (const EngineKey& key : keys) {
    if (!seen.insert(key).second) continue;
    if (!config_.warmup_enabled || report.loaded.size() >= config_.warmup_size) {
      report.skipped.push_back(key);
      continue;
    }
    try {
      get_or_load(key, warming, /*count_lookup=*/false, {});
      report.loaded.push_back(key);
    } catch (const Error& e) {
      spdlog::warn("EnginePool: warmup of {} failed: {}", key.to_string(), e.to_string());
      report.failed.push_back({key, e});
    }
  }
  spdlog::info("EnginePool: warmup loaded {}, failed {}, skipped {}; {} entries", report.loaded.size(),
               report.failed.size(), report.skipped.size(), size());
  return report;
}

}  // namespace kapsl
