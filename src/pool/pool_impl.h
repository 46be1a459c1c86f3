// EnginePool::Impl: the pool's state and its internal steps, shared by the files of
// src/pool/ (engine_pool.cc: lookups and removals; put_and_evict.cc: put and victim choice;
// single_flight.cc: get_or_load and warmup; sweep.cc: health and idle expiry;
// pool_metrics.cc: metrics and introspection).
//
// Locking. mu_ guards the map, the LRU list, the in-flight loads, the load-failure
// backoff, the departure queue and the callback. It is held only for bookkeeping: loads,
// health checks, callbacks and engine destruction run without it. Departures are queued
// under mu_ in the order they happen and delivered by deliver(), which one thread at a
// time runs with mu_ released. Counters are relaxed atomics, read without mu_.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_POOL_POOL_IMPL_H_
#define KAPSL_SRC_POOL_POOL_IMPL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/engine_pool.h"
#include "pool/byte_ledger.h"

namespace kapsl {
namespace internal {

struct PoolEntry {
  EngineKey key;
  std::shared_ptr<Engine> handed;  // the tracked pointer callers receive
  std::shared_ptr<Engine> engine;  // the engine itself: health checks do not count as users
  std::shared_ptr<Charge> charge;
  uint64_t bytes = 0;
  Clock::time_point last_use;
  bool pinned = false;
  std::optional<std::chrono::milliseconds> ttl;  // EntryOptions::ttl; unset = the config's
  uint64_t serial = 0;  // admission number: tells this entry from a later one for the key

  // Nobody but the pool holds it. Only the pool copies `handed`, and only under its lock,
  // so a 1 seen under the lock cannot grow behind our back.
  bool idle() const { return handed.use_count() == 1; }
};

struct Departure {
  EngineKey key;
  std::shared_ptr<Engine> engine;
  EvictionReason reason;
};

// One load in progress; the callers waiting for it share its outcome.
class Flight {
 public:
  explicit Flight(std::thread::id leader) : leader_(leader) {}
  std::thread::id leader() const { return leader_; }
  void finish(std::shared_ptr<Engine> engine, std::optional<Error> error);
  // Blocks until finish(); returns the engine or throws the error.
  std::shared_ptr<Engine> wait();

 private:
  const std::thread::id leader_;
  Mutex mu_;
  CondVar cv_;
  bool done_ GUARDED_BY(mu_) = false;
  std::shared_ptr<Engine> engine_ GUARDED_BY(mu_);
  std::optional<Error> error_ GUARDED_BY(mu_);
};

struct FailedLoad {
  Clock::time_point at;
  Error error;
};

struct PoolCounters {
  std::atomic<uint64_t> hits{0}, misses{0}, loads{0}, load_failures{0}, rejections{0}, health_failures{0};
  std::array<std::atomic<uint64_t>, kEvictionReasonCount> departures{};

  static void bump(std::atomic<uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }
};

// An engine about to be admitted, with its size read outside the lock.
struct Prepared {
  std::shared_ptr<Engine> engine;
  uint64_t bytes = 0;
  EntryOptions entry;
};

// The pool's default time source: kapsl::Clock to within a few milliseconds. Last-use
// stamps and backoffs need no more, and on Linux the coarse clock costs a fraction of
// steady_clock::now() on the get path.
Clock::time_point coarse_now() noexcept;

// Health of an engine, treating a throwing health_check() (a contract breach) as unhealthy.
Health check_health(const Engine& engine) noexcept;

}  // namespace internal

class EnginePool::Impl {
 public:
  explicit Impl(PoolConfig config);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  const PoolConfig& config() const { return config_; }

  // engine_pool.cc
  std::shared_ptr<Engine> get(const EngineKey& key) LOCKS_EXCLUDED(mu_);
  bool remove(const EngineKey& key) LOCKS_EXCLUDED(mu_);
  size_t clear() LOCKS_EXCLUDED(mu_);
  bool set_pinned(const EngineKey& key, bool pinned) LOCKS_EXCLUDED(mu_);
  bool contains(const EngineKey& key) const LOCKS_EXCLUDED(mu_);
  size_t size() const LOCKS_EXCLUDED(mu_);
  void set_callback(EvictionCallback callback) LOCKS_EXCLUDED(mu_);

  // put_and_evict.cc
  void put(const EngineKey& key, std::shared_ptr<Engine> engine, const EntryOptions& entry) LOCKS_EXCLUDED(mu_);

  // single_flight.cc
  std::shared_ptr<Engine> get_or_load(const EngineKey& key, const EngineLoader& loader, bool count_lookup,
                                      const EntryOptions& entry) LOCKS_EXCLUDED(mu_);
  WarmupReport warmup(const std::vector<EngineKey>& keys, const EngineLoader& loader) LOCKS_EXCLUDED(mu_);

  // sweep.cc
  SweepReport sweep() LOCKS_EXCLUDED(mu_);

  // pool_metrics.cc
  PoolMetrics metrics() const LOCKS_EXCLUDED(mu_);
  std::vector<PoolEntryInfo> entries() const LOCKS_EXCLUDED(mu_);

 private:
  using Lru = std::list<internal::PoolEntry>;  // front = most recently used
  struct Hit {
    std::shared_ptr<Engine> handed;
    uint64_t serial = 0;
  };
  struct Join;
  struct Plan;

  Clock::time_point now() const { return config_.clock ? config_.clock() : internal::coarse_now(); }

  // engine_pool.cc
  // Finds and promotes `key`, copying its handed pointer; counts nothing.
  std::optional<Hit> promote(const EngineKey& key, Clock::time_point now) LOCKS_EXCLUDED(mu_);
  // Looks `key` up as get does: a healthy hit or nothing, counting one hit or miss.
  std::shared_ptr<Engine> lookup(const EngineKey& key, bool count) LOCKS_EXCLUDED(mu_);
  // Removes the entry if it is still the admission `serial` (a health failure found
  // outside the lock); returns whether it did.
  bool remove_unhealthy(const EngineKey& key, uint64_t serial, const std::string& why) LOCKS_EXCLUDED(mu_);
  // Moves the entry into the departure queue; discharges it at once if nobody holds it.
  void depart_locked(Lru::iterator it, EvictionReason reason) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs queued callbacks outside the lock, unless another thread is already doing so.
  void deliver() LOCKS_EXCLUDED(mu_);

  // put_and_evict.cc
  internal::Prepared prepare(std::shared_ptr<Engine> engine, const EntryOptions& entry) const;
  Plan plan_locked(const EngineKey& key, uint64_t bytes) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void plan_bytes_locked(const EngineKey& key, uint64_t bytes, Plan& plan) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void plan_capacity_locked(const EngineKey& key, Plan& plan) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Picks idle, unpinned entries of `device` freeing at least `need` bytes if it can;
  // returns the bytes they free.
  uint64_t choose_bytes_victims_locked(int device, uint64_t need, Plan& plan) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Admits a prepared engine (evicting as planned) and returns a handed copy, or throws
  // kResourceExhausted leaving the pool and `prepared` unchanged (so that the engine is
  // not destroyed under the lock).
  std::shared_ptr<Engine> admit_locked(const EngineKey& key, internal::Prepared& prepared, Clock::time_point now)
      EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // single_flight.cc
  Join join_or_lead(const EngineKey& key) LOCKS_EXCLUDED(mu_);
  std::shared_ptr<Engine> lead_load(const EngineKey& key, const EngineLoader& loader,
                                    const std::shared_ptr<internal::Flight>& flight, const EntryOptions& entry)
      LOCKS_EXCLUDED(mu_);
  std::shared_ptr<Engine> complete_load(const EngineKey& key, const std::shared_ptr<internal::Flight>& flight,
                                        std::shared_ptr<Engine> engine, std::optional<Error> error,
                                        const EntryOptions& entry) LOCKS_EXCLUDED(mu_);

  // sweep.cc
  size_t expire_idle_locked(Clock::time_point now) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void run_sweeper();

  const PoolConfig config_;
  const std::shared_ptr<internal::ByteLedger> ledger_;
  internal::PoolCounters counters_;
  LatencyHistogram load_time_;

  mutable internal::Mutex mu_;
  Lru lru_ GUARDED_BY(mu_);
  std::unordered_map<EngineKey, Lru::iterator, EngineKeyHash> index_ GUARDED_BY(mu_);
  std::unordered_map<EngineKey, std::shared_ptr<internal::Flight>, EngineKeyHash> flights_ GUARDED_BY(mu_);
  std::unordered_map<EngineKey, internal::FailedLoad, EngineKeyHash> failed_loads_ GUARDED_BY(mu_);
  std::deque<internal::Departure> departures_ GUARDED_BY(mu_);
  bool delivering_ GUARDED_BY(mu_) = false;
  std::shared_ptr<const EvictionCallback> callback_ GUARDED_BY(mu_);
  uint64_t next_serial_ GUARDED_BY(mu_) = 1;

  internal::Mutex sweeper_mu_;  // never held together with mu_
  internal::CondVar sweeper_cv_;
  bool stopping_ GUARDED_BY(sweeper_mu_) = false;
  std::thread sweeper_;  // last: started once everything above exists
};

}  // namespace kapsl

#endif  // KAPSL_SRC_POOL_POOL_IMPL_H_
