// FakeEngine and FakeClock: test doubles for the pool, going in through the product's own
// interfaces (kapsl::Engine, PoolConfig::clock).
//
// Thread-safety: FakeEngine and FakeClock are safe for concurrent use without external
// synchronization.
#ifndef KAPSL_TESTS_POOL_FAKE_ENGINE_H_
#define KAPSL_TESTS_POOL_FAKE_ENGINE_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kapsl/engine.h"
#include "kapsl/engine_pool.h"

namespace kapsl::pooltest {

// An engine that does nothing, with a settable size and health, and an id so that tests
// can tell instances apart. Counts live instances so tests can check nothing leaks.
class FakeEngine : public Engine {
 public:
  explicit FakeEngine(uint64_t bytes = 0, bool healthy = true)
      : id_(next_id().fetch_add(1) + 1), bytes_(bytes), healthy_(healthy) {
    live().fetch_add(1);
  }
  ~FakeEngine() override { live().fetch_sub(1); }

  InferenceResult infer(const InferenceRequest&) override { return {}; }
  void warmup() override {
    warmups_.fetch_add(1);
    if (fail_warmup_.load()) throw Error::inference("fake warmup failure");
  }
  EngineMetrics metrics() const override { return {}; }
  const ModelInfo& model_info() const override { return info_; }
  Health health_check() const override {
    health_checks_.fetch_add(1);
    if (healthy_.load()) return {};
    return {false, "fake engine set unhealthy"};
  }
  uint64_t resident_bytes() const override { return bytes_; }

  int id() const { return id_; }
  void set_healthy(bool healthy) { healthy_.store(healthy); }
  void set_fail_warmup(bool fail) { fail_warmup_.store(fail); }
  int warmups() const { return warmups_.load(); }
  int health_checks() const { return health_checks_.load(); }

  static std::atomic<int>& live() {
    static std::atomic<int> n{0};
    return n;
  }

 private:
  static std::atomic<int>& next_id() {
    static std::atomic<int> n{0};
    return n;
  }
  const int id_;
  const uint64_t bytes_;
  std::atomic<bool> healthy_;
  std::atomic<bool> fail_warmup_{false};
  std::atomic<int> warmups_{0};
  mutable std::atomic<int> health_checks_{0};
  ModelInfo info_;
};

inline std::shared_ptr<FakeEngine> make_fake(uint64_t bytes = 0, bool healthy = true) {
  return std::make_shared<FakeEngine>(bytes, healthy);
}

// The FakeEngine behind a pointer the pool handed out (the pool hands out the same object).
inline int fake_id(const std::shared_ptr<Engine>& engine) {
  return engine ? dynamic_cast<const FakeEngine&>(*engine).id() : 0;
}

// A clock that moves only when told; copies share the time, so the copy inside the
// pool's config sees advance() calls made on the test's copy.
class FakeClock {
 public:
  Clock::time_point operator()() const { return Clock::time_point(std::chrono::nanoseconds(ns_->load())); }
  void advance(std::chrono::nanoseconds d) { ns_->fetch_add(d.count()); }

 private:
  std::shared_ptr<std::atomic<int64_t>> ns_ = std::make_shared<std::atomic<int64_t>>(int64_t{1'000'000'000});
};

inline EngineKey key(const std::string& model, int device = 0) { return EngineKey{model, device}; }

// Records every departure the pool reports, as LevelDB's CacheTest deleter records every
// evicted entry, so that tests check departures exactly.
class Recorder {
 public:
  struct Event {
    EngineKey key;
    int engine_id;
    EvictionReason reason;
  };
  EvictionCallback callback() {
    return [this](const EngineKey& k, const std::shared_ptr<Engine>& e, EvictionReason r) {
      std::lock_guard lock(mu_);
      events_.push_back({k, fake_id(e), r});
    };
  }
  std::vector<Event> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return events_.size();
  }

 private:
  mutable std::mutex mu_;
  std::vector<Event> events_;
};

// A config for deterministic tests: no sweeper thread (tests call sweep()), a fake clock.
inline PoolConfig test_config(const FakeClock& clock, size_t max_size = 5) {
  PoolConfig c;
  c.max_size = max_size;
  c.health_check_interval = std::chrono::milliseconds(0);
  c.clock = clock;
  return c;
}

}  // namespace kapsl::pooltest

#endif  // KAPSL_TESTS_POOL_FAKE_ENGINE_H_
