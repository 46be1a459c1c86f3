// EnginePool: a bounded set of loaded engines, one per (model id, device id) key.
//
// What it is. An LRU cache of shared engines with an entry cap (max_size), an optional
// byte budget per device, idle expiry (ttl, never below min_size), health checks, pinning,
// and a single-flight get_or_load that loads a cold key once however many callers ask for
// it. A background sweeper (health checks and idle expiry) runs every
// health_check_interval and stops when the pool is destroyed.
//
// Ownership. Engines are held by std::shared_ptr. get / get_or_load hand out copies that
// callers use concurrently; an engine that leaves the pool while a caller holds it stays
// alive for that caller, and its bytes keep counting against its device's budget until the
// last copy the pool handed out is released. The pool destroys an engine it alone holds
// outside its lock, after the eviction callback has seen it.
//
// Never blocking unrelated work. One mutex guards the map and the LRU list and is held
// only for bookkeeping: loads, health checks, eviction callbacks and engine destruction
// all run without it, so a slow load of one key never delays a get of another.
//
// Eviction callback. Every way an engine leaves the pool reaches the callback exactly once
// with its reason (EvictionReason). Callbacks run outside any pool lock, one at a time, in
// the order the departures happened; an exception thrown by a callback is caught and
// logged. A callback may call the pool. When several threads make departures at once, the
// thread already delivering callbacks delivers the others' too, so a call may return
// before the callback for its own departure has run.
//
// Thread-safety: EnginePool is safe for concurrent use without external synchronization.
#ifndef KAPSL_ENGINE_POOL_H_
#define KAPSL_ENGINE_POOL_H_

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kapsl/engine.h"
#include "kapsl/error.h"
#include "kapsl/metrics.h"
#include "kapsl/pool_config.h"
#include "kapsl/request.h"

namespace kapsl {

// Identifies one pool entry: which model, on which device.
struct EngineKey {
  std::string model_id;
  int device_id = 0;

  friend bool operator==(const EngineKey&, const EngineKey&) = default;
  friend auto operator<=>(const EngineKey&, const EngineKey&) = default;
  // "<model_id>@<device_id>", for messages and logs.
  std::string to_string() const;
};

struct EngineKeyHash {
  size_t operator()(const EngineKey& key) const noexcept;
};

// Why an engine left the pool.
enum class EvictionReason {
  kCapacity,  // max_size reached while admitting another entry
  kBytes,     // the device's byte budget needed room for another entry
  kTtl,       // idle longer than ttl
  kHealth,    // health_check() failed (on get or in the sweep)
  kRemoved,   // remove()
  kReplaced,  // put() / a load of the same key swapped in a new engine
  kCleared,   // clear()
};
inline constexpr size_t kEvictionReasonCount = 7;
// "capacity", "bytes", "ttl", "health", "removed", "replaced", "cleared". Never null.
const char* eviction_reason_name(EvictionReason reason) noexcept;

// Called once per departure with the key, the engine (the copy the pool held) and why.
using EvictionCallback =
    std::function<void(const EngineKey& key, const std::shared_ptr<Engine>& engine, EvictionReason reason)>;

// Builds the engine for a key; returns a loaded engine or throws. A returned nullptr counts
// as a failed load (kModelLoad). std::unique_ptr<Engine> converts to the return type.
using EngineLoader = std::function<std::shared_ptr<Engine>(const EngineKey& key)>;

// Settings of one entry, given when its engine is admitted.
struct EntryOptions {
  // Idle expiry of this entry instead of PoolConfig::ttl; 0 = never. Unset = the config's.
  std::optional<std::chrono::milliseconds> ttl;
  // Admit it pinned (as pin() would right after). A replaced entry's pin is kept either way.
  bool pin = false;
};

// Bytes held for one device.
struct DeviceBytes {
  int device_id = 0;
  uint64_t resident_bytes = 0;  // admitted engines still alive, in the pool or held by callers
  uint64_t peak_bytes = 0;      // highest resident_bytes seen since the pool was created
  uint64_t budget_bytes = 0;    // the configured budget; 0 = none
  size_t entries = 0;           // pool entries for this device now
};

struct PoolMetrics {
  uint64_t hits = 0;             // get / get_or_load calls served by a resident healthy engine
  uint64_t misses = 0;           // get / get_or_load calls that found no usable engine
  uint64_t loads = 0;            // loader calls that returned an engine
  uint64_t load_failures = 0;    // loader calls that threw or returned nullptr
  uint64_t rejections = 0;       // admissions refused with kResourceExhausted
  uint64_t health_failures = 0;  // failed health checks (on get and in the sweep)
  // Departures by reason, indexed by EvictionReason; every callback is counted here.
  std::array<uint64_t, kEvictionReasonCount> departures{};
  HistogramSnapshot load_time;   // duration of successful loads
  size_t entries = 0;            // entries now
  size_t loads_in_flight = 0;    // loads running now
  std::vector<DeviceBytes> devices;  // ascending device id; devices with bytes or a budget

  // hits / (hits + misses); 0 when there were none.
  double hit_rate() const;
  // Departures for one reason.
  uint64_t departures_for(EvictionReason reason) const { return departures[static_cast<size_t>(reason)]; }
  // Evictions proper: capacity + bytes + ttl + health (not removed, replaced or cleared).
  uint64_t evictions() const;
};

// One entry, as seen by EnginePool::entries().
struct PoolEntryInfo {
  EngineKey key;
  uint64_t bytes = 0;            // engine's resident_bytes() when it was admitted
  Clock::time_point last_use;    // last hit, admission, or sweep that found it held (±4 ms)
  bool pinned = false;
  long users = 0;                // copies held outside the pool now
};

// What one EnginePool::warmup call did, key by key.
struct WarmupReport {
  struct Failure {
    EngineKey key;
    Error error;
  };
  std::vector<EngineKey> loaded;   // resident after warmup (loaded now, or already resident)
  std::vector<Failure> failed;     // the load or the engine's warmup() threw
  std::vector<EngineKey> skipped;  // not tried: warmup disabled or warmup_size reached
  bool ok() const { return failed.empty(); }
};

// What one EnginePool::sweep call did.
struct SweepReport {
  size_t checked = 0;    // engines health-checked
  size_t unhealthy = 0;  // removed for a failed health check
  size_t expired = 0;    // removed for idle time
};

class EnginePool {
 public:
  // Creates an empty pool and, if config.health_check_interval > 0, starts the sweeper.
  // Throws kInvalidInput when config.validate() does.
  explicit EnginePool(PoolConfig config = {});
  EnginePool(const EnginePool&) = delete;
  EnginePool& operator=(const EnginePool&) = delete;
  // Stops and joins the sweeper, then releases every entry without calling the eviction
  // callback (call clear() first to have it called). REQUIRES: no call in progress.
  ~EnginePool();

  // The engine for `key`, promoted to most recently used, or nullptr (a miss). With
  // health_check_on_get, a resident engine whose health_check() fails is removed (reason
  // kHealth; counted as a health failure and a miss) and nullptr is returned.
  // Never throws except std::bad_alloc.
  std::shared_ptr<Engine> get(const EngineKey& key);

  // The engine for `key`: the resident one (as get), else the one `loader` builds. Single
  // flight: while a load for `key` runs, other callers for `key` wait for it and receive
  // the same engine or the same error; callers for other keys are not delayed. A failed
  // load is not cached beyond load_failure_backoff. The loader runs on the first caller's
  // thread without any pool lock; it may use the pool for other keys.
  // A loaded engine is admitted with `entry`'s settings.
  // Throws: kInvalidInput if loader is empty, key.model_id is empty, or the loader asks
  // for its own key; the loader's kapsl::Error unchanged; kModelLoad if the loader threw
  // anything else or returned nullptr; kResourceExhausted if the engine cannot be admitted
  // (see put). After a failure the pool holds nothing new for `key`.
  std::shared_ptr<Engine> get_or_load(const EngineKey& key, const EngineLoader& loader, const EntryOptions& entry = {});

  // Admits `engine` under `key` as most recently used, replacing any engine already there
  // (reason kReplaced; a replaced entry keeps its pin) and evicting unpinned entries as
  // needed: for the device's byte budget, only idle ones (an engine in use frees nothing
  // until released): the least recently used that alone frees enough, else least recently
  // used first (reason kBytes); for max_size, idle ones first, then those in use, least
  // recently used first (kCapacity). The entry gets `entry`'s settings. Calls
  // engine->resident_bytes() once, outside the lock. Clears any load backoff for `key`.
  // Throws kInvalidInput if engine is null or key.model_id empty; kResourceExhausted if
  // the engine alone exceeds the budget or not enough can be evicted (pinned or in use).
  // After a failure the pool is unchanged.
  void put(const EngineKey& key, std::shared_ptr<Engine> engine, const EntryOptions& entry = {});

  // Removes `key` (reason kRemoved), pinned or not; a caller holding the engine keeps it.
  // Returns whether it was resident. Does not cancel a load of `key` in flight: that load
  // is admitted when it ends. Never throws except std::bad_alloc.
  bool remove(const EngineKey& key);
  // Removes every entry, pinned or not (reason kCleared), least recently used first.
  // Returns how many there were. Never throws except std::bad_alloc.
  size_t clear();

  // Pins / unpins a resident key: a pinned entry is never evicted for capacity, bytes or
  // idle time (remove, clear, replace and failed health checks still apply). The pin
  // belongs to the entry: it survives a replace and ends when the entry leaves. Returns
  // false (and changes nothing) if `key` is not resident. Does not promote. Never throws.
  bool pin(const EngineKey& key);
  bool unpin(const EngineKey& key);

  // Whether `key` is resident. Does not promote, check health or count a hit or miss.
  // Never throws.
  bool contains(const EngineKey& key) const;
  // The number of entries now. Never throws.
  size_t size() const;
  bool empty() const { return size() == 0; }

  // Sets (replacing any earlier one) or clears the eviction callback; departures queued
  // but not yet delivered go to the callback set when they are delivered. A callback
  // already running when it is replaced or cleared finishes. Never throws except bad_alloc.
  void set_eviction_callback(EvictionCallback callback);
  void clear_eviction_callback();

  // Loads the listed keys in order through get_or_load, running each new engine's
  // warmup() before it is admitted, and continues past failures. Honours warmup_enabled
  // (false: every key skipped) and warmup_size (at most that many keys loaded; the rest
  // skipped). Duplicate keys are tried once. Returns the report; never throws for a key's
  // failure (it is in report.failed), only kInvalidInput for an empty loader.
  WarmupReport warmup(const std::vector<EngineKey>& keys, const EngineLoader& loader);

  // One sweep, as the background sweeper runs it: health-checks every entry outside the
  // lock and removes the unhealthy ones (kHealth), then evicts unpinned entries nobody
  // holds that have been idle at least their ttl (EntryOptions::ttl, else the config's),
  // least recently used first, never below min_size (kTtl). An entry some caller holds counts as used now. Never promotes an
  // entry or counts a hit or miss. Returns what it did. Never throws except bad_alloc.
  SweepReport sweep();

  // A snapshot of the counters. Cheap; never throws except bad_alloc.
  PoolMetrics metrics() const;
  // The entries, most recently used first. Never throws except bad_alloc.
  std::vector<PoolEntryInfo> entries() const;
  // The validated config the pool runs with; valid for the pool's lifetime.
  const PoolConfig& config() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_ENGINE_POOL_H_
