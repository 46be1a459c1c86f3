// Threads hammering the pool with the sweeper running and a small byte budget; the
// invariants are checked once everything is quiet. Run under ThreadSanitizer in CI.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "kapsl/engine_pool.h"
#include "pool/fake_engine.h"

namespace kapsl {
namespace {

using namespace std::chrono_literals;
using pooltest::FakeEngine;
using pooltest::fake_id;
using pooltest::make_fake;

constexpr int kThreads = 6;
constexpr int kOpsPerThread = 3000;
constexpr uint64_t kBudget = 400;

struct Tally {
  std::atomic<uint64_t> lookups{0};       // get + get_or_load calls
  std::atomic<uint64_t> loader_calls{0};
  std::mutex mu;
  std::set<int> admitted;                 // engines the pool accepted
  std::multiset<int> reported;            // engines the callback saw
  std::map<EvictionReason, uint64_t> reasons;

  void admit(const std::shared_ptr<Engine>& e) {
    std::lock_guard lock(mu);
    admitted.insert(fake_id(e));
  }
};

class Worker {
 public:
  Worker(EnginePool& pool, Tally& tally, unsigned seed) : pool_(pool), tally_(tally), rng_(seed) {}

  void run() {
    for (int i = 0; i < kOpsPerThread; ++i) step();
    held_.clear();
  }

 private:
  EngineKey pick_key() { return EngineKey{"m" + std::to_string(rng_() % 6), static_cast<int>(rng_() % 2)}; }
  std::shared_ptr<FakeEngine> new_engine() {
    auto e = make_fake(50 + rng_() % 150, /*healthy=*/rng_() % 50 != 0);
    return e;
  }

  void step() {
    const EngineKey k = pick_key();
    switch (rng_() % 10) {
      case 0: case 1: case 2:
        tally_.lookups.fetch_add(1);
        keep(pool_.get(k));
        break;
      case 3: case 4: load(k); break;
      case 5: put(k); break;
      case 6: pool_.remove(k); break;
      case 7: (rng_() % 2) ? pool_.pin(k) : pool_.unpin(k); break;
      case 8: if (!held_.empty()) held_.erase(held_.begin() + static_cast<long>(rng_() % held_.size())); break;
      default: check_budget(); break;
    }
  }

  void keep(std::shared_ptr<Engine> e) {
    if (!e) return;
    if (held_.size() < 3) held_.push_back(std::move(e));
  }

  void load(const EngineKey& k) {
    tally_.lookups.fetch_add(1);
    const bool fail = rng_() % 5 == 0;
    auto engine = new_engine();
    try {
      auto got = pool_.get_or_load(k, [&](const EngineKey&) -> std::shared_ptr<Engine> {
        tally_.loader_calls.fetch_add(1);
        if (fail) throw Error::model_load("injected failure");
        return engine;
      });
      tally_.admit(got);
      keep(std::move(got));
    } catch (const Error& e) {
      EXPECT_TRUE(e.code() == ErrorCode::kModelLoad || e.code() == ErrorCode::kResourceExhausted) << e.to_string();
    }
  }

  void put(const EngineKey& k) {
    auto engine = new_engine();
    const int id = engine->id();
    try {
      pool_.put(k, std::move(engine));
      std::lock_guard lock(tally_.mu);
      tally_.admitted.insert(id);
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted) << e.to_string();
    }
  }

  void check_budget() {
    for (const DeviceBytes& d : pool_.metrics().devices) {
      EXPECT_LE(d.resident_bytes, kBudget);
      EXPECT_LE(d.peak_bytes, kBudget);
    }
  }

  EnginePool& pool_;
  Tally& tally_;
  std::mt19937 rng_;
  std::vector<std::shared_ptr<Engine>> held_;
};

TEST(EnginePoolStressTest, InvariantsHoldUnderConcurrentUse) {
  const int live_before = FakeEngine::live().load();
  // Thousands of injected failures would each log a warning.
  const spdlog::level::level_enum log_level = spdlog::get_level();
  spdlog::set_level(spdlog::level::err);
  Tally tally;
  {
    PoolConfig c;
    c.max_size = 5;
    c.min_size = 1;
    c.ttl = 2ms;  // real clock: entries do expire during the run
    c.health_check_interval = 1ms;
    c.device_byte_budgets = {{0, kBudget}, {1, kBudget}};
    EnginePool pool(c);
    pool.set_eviction_callback([&](const EngineKey&, const std::shared_ptr<Engine>& e, EvictionReason r) {
      std::lock_guard lock(tally.mu);
      tally.reported.insert(fake_id(e));
      ++tally.reasons[r];
    });
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] { Worker(pool, tally, 1234u + static_cast<unsigned>(t)).run(); });
    }
    for (auto& t : threads) t.join();
    pool.clear();

    const PoolMetrics m = pool.metrics();
    EXPECT_EQ(m.hits + m.misses, tally.lookups.load());
    EXPECT_EQ(m.loads + m.load_failures, tally.loader_calls.load());
    EXPECT_EQ(m.load_time.count, m.loads);
    EXPECT_EQ(m.entries, 0u);
    EXPECT_EQ(m.loads_in_flight, 0u);
    for (const DeviceBytes& d : m.devices) {
      EXPECT_LE(d.peak_bytes, kBudget) << "device " << d.device_id;
      EXPECT_EQ(d.resident_bytes, 0u) << "device " << d.device_id;  // nothing held any more
    }
    std::lock_guard lock(tally.mu);
    for (size_t i = 0; i < kEvictionReasonCount; ++i) {
      EXPECT_EQ(m.departures[i], tally.reasons[static_cast<EvictionReason>(i)]) << i;
    }
    // Every engine that entered the pool left it exactly once, and nothing else left.
    EXPECT_EQ(tally.reported.size(), tally.admitted.size());
    EXPECT_EQ(std::set<int>(tally.reported.begin(), tally.reported.end()), tally.admitted);
    // The run exercised what it claims to.
    EXPECT_GT(m.hits, 0u);
    EXPECT_GT(m.loads, 0u);
    EXPECT_GT(m.rejections + m.departures_for(EvictionReason::kBytes), 0u);
  }
  EXPECT_EQ(FakeEngine::live().load(), live_before);
  spdlog::set_level(log_level);
}

}  // namespace
}  // namespace kapsl
