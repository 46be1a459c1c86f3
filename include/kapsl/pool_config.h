// PoolConfig: the load-time options of an EnginePool (see engine_pool.h).
//
// A plain aggregate: every field has its default here, and the defaults are the same
// whether the struct is built in code or parsed with PoolConfig::from_json from a document
// that leaves fields out (the original Rust crate's two sets of defaults disagreed on the
// warmup fields). EnginePool's constructor validates the values; from_json validates too.
//
// Thread-safety: PoolConfig is a plain value; const methods may run concurrently; others
// need external synchronization.
#ifndef KAPSL_POOL_CONFIG_H_
#define KAPSL_POOL_CONFIG_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string_view>

#include "kapsl/request.h"  // kapsl::Clock

namespace kapsl {

struct PoolConfig {
  // --- Behaviour ---

  // Most entries held at once. Admitting one more evicts an unpinned entry (idle ones
  // first, least recently used first). Must be >= 1. Default 5.
  size_t max_size = 5;
  // Idle-time expiry never shrinks the pool below this many entries (capacity, byte,
  // health and explicit removals may). Must be <= max_size. Default 1.
  size_t min_size = 1;
  // An unpinned entry nobody holds is evicted once it has been idle this long (time since
  // its last get, or since the sweep last saw a caller holding it). 0 = never. Default 60 s.
  std::chrono::milliseconds ttl{std::chrono::seconds(60)};
  // Period of the background sweep (health checks and idle expiry). 0 = no background
  // thread; call EnginePool::sweep() yourself. Default 10 s.
  std::chrono::milliseconds health_check_interval{std::chrono::seconds(10)};
  // Whether get / get_or_load run the engine's health_check() on a hit (outside the pool
  // lock) and drop an unhealthy engine. Default true.
  bool health_check_on_get = true;
  // Whether EnginePool::warmup loads anything. Default true.
  bool warmup_enabled = true;
  // Most engines one EnginePool::warmup call loads; keys past it are reported as skipped.
  // 0 loads none. Default 1.
  size_t warmup_size = 1;
  // Byte budget per device id: the resident bytes of the engines admitted for that device
  // (including evicted ones some caller still holds) never exceed it. A device not listed
  // has no byte budget. Default: none.
  std::map<int, uint64_t> device_byte_budgets;
  // After a failed load, get_or_load for that key fails at once with the same error for
  // this long instead of loading again. 0 = retry on the next call. Default 0.
  std::chrono::milliseconds load_failure_backoff{0};

  // --- Testing ---

  // Time source for TTL, last-use and backoff. Empty = kapsl::Clock::now. Tests inject a
  // fake clock so that TTL logic runs without sleeping. Not read by from_json.
  std::function<Clock::time_point()> clock;

  // Parses a JSON object. Fields: max_size, min_size, warmup_size (non-negative integers);
  // ttl, health_check_interval, load_failure_backoff (seconds as a number, or a string
  // "500ms", "60s", "5m", "1h"); health_check_on_get, warmup_enabled (booleans);
  // device_byte_budgets (object of device id string -> bytes as an integer or a string
  // "512MiB", "8GiB", "1GB"). A missing field keeps its default.
  // Returns the validated config.
  // Throws kInvalidInput naming the field when the text is not a JSON object, a field is
  // unknown, has the wrong type or an out-of-range value, or validate() fails.
  static PoolConfig from_json(std::string_view json);

  // Checks the values. Throws kInvalidInput naming the field, the expected and the given
  // value: max_size 0, min_size > max_size, a negative duration, a zero byte budget.
  void validate() const;
};

}  // namespace kapsl

#endif  // KAPSL_POOL_CONFIG_H_
