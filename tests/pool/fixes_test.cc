// One test per weakness of the original pool (kapsl-backends-0.1.md §2.5); each fails on
// the original's behaviour.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <stdexcept>
#include <thread>

#include "kapsl/engine_pool.h"
#include "pool/fake_engine.h"

namespace kapsl {
namespace {

using namespace std::chrono_literals;
using pooltest::FakeClock;
using pooltest::FakeEngine;
using pooltest::fake_id;
using pooltest::key;
using pooltest::make_fake;
using pooltest::Recorder;
using pooltest::test_config;

PoolConfig ttl_config(const FakeClock& clock, size_t min_size) {
  PoolConfig c = test_config(clock);
  c.ttl = 60s;
  c.min_size = min_size;
  return c;
}

// Weakness 1: TTL was never enforced; when enforced it must be idle time, not age.
TEST(EnginePoolFixTest, TtlIsIdleTimeSinceLastUseNotSinceLoad) {
  FakeClock clock;
  EnginePool pool(ttl_config(clock, 0));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  pool.put(key("a"), make_fake());
  clock.advance(50s);
  ASSERT_NE(pool.get(key("a")), nullptr);  // used at 50 s
  clock.advance(50s);                      // 100 s since load, 50 s idle
  EXPECT_EQ(pool.sweep().expired, 0u);
  EXPECT_TRUE(pool.contains(key("a")));
  clock.advance(10s);  // 60 s idle
  EXPECT_EQ(pool.sweep().expired, 1u);
  EXPECT_FALSE(pool.contains(key("a")));
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.events()[0].reason, EvictionReason::kTtl);
}

TEST(EnginePoolFixTest, EngineHeldByACallerDoesNotExpire) {
  FakeClock clock;
  EnginePool pool(ttl_config(clock, 0));
  pool.put(key("a"), make_fake());
  std::shared_ptr<Engine> held = pool.get(key("a"));
  clock.advance(120s);
  pool.sweep();
  EXPECT_TRUE(pool.contains(key("a")));  // in use: idle time has not started
  held.reset();
  clock.advance(59s);  // idle since the last sweep saw it held
  pool.sweep();
  EXPECT_TRUE(pool.contains(key("a")));
  clock.advance(1s);
  pool.sweep();
  EXPECT_FALSE(pool.contains(key("a")));
}

// Weakness 2: min_size was stored but not enforced.
TEST(EnginePoolFixTest, IdleExpiryNeverShrinksBelowMinSize) {
  FakeClock clock;
  EnginePool pool(ttl_config(clock, 2));
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());
  pool.put(key("c"), make_fake());
  clock.advance(10min);
  EXPECT_EQ(pool.sweep().expired, 1u);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_FALSE(pool.contains(key("a")));  // the least recently used went first
  EXPECT_EQ(pool.sweep().expired, 0u);
  EXPECT_EQ(pool.size(), 2u);
}

TEST(EnginePoolFixTest, PinnedEntriesNeverExpire) {
  FakeClock clock;
  EnginePool pool(ttl_config(clock, 0));
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());
  ASSERT_TRUE(pool.pin(key("a")));
  clock.advance(10min);
  EXPECT_EQ(pool.sweep().expired, 1u);
  EXPECT_TRUE(pool.contains(key("a")));
  EXPECT_FALSE(pool.contains(key("b")));
}

// Weakness 5: misses were not counted and hit_rate was NaN before any hit.
TEST(EnginePoolFixTest, MissesAreCountedAndHitRateIsNeverNaN) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  PoolMetrics m = pool.metrics();
  EXPECT_FALSE(std::isnan(m.hit_rate()));
  EXPECT_EQ(m.hit_rate(), 0.0);
  EXPECT_EQ(pool.get(key("a")), nullptr);
  m = pool.metrics();
  EXPECT_EQ(m.misses, 1u);
  EXPECT_EQ(m.hit_rate(), 0.0);
  pool.put(key("a"), make_fake());
  ASSERT_NE(pool.get(key("a")), nullptr);
  m = pool.metrics();
  EXPECT_EQ(m.hits, 1u);
  EXPECT_DOUBLE_EQ(m.hit_rate(), 0.5);
}

TEST(EnginePoolFixTest, HealthFailuresAreTheirOwnCounterAndAMiss) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  pool.put(key("a"), make_fake(0, /*healthy=*/false));
  EXPECT_EQ(pool.get(key("a")), nullptr);
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.health_failures, 1u);
  EXPECT_EQ(m.misses, 1u);
  EXPECT_EQ(m.hits, 0u);
  EXPECT_EQ(m.departures_for(EvictionReason::kHealth), 1u);
}

// Weakness 6: the health task called get(), promoting every entry and counting hits, so
// after a sweep the LRU order was reversed.
TEST(EnginePoolFixTest, SweepDoesNotPromoteOrCountHits) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 2));
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());  // a is least recently used
  const SweepReport report = pool.sweep();
  EXPECT_EQ(report.checked, 2u);
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.hits, 0u);
  EXPECT_EQ(m.misses, 0u);
  pool.put(key("c"), make_fake());
  EXPECT_FALSE(pool.contains(key("a")));
  EXPECT_TRUE(pool.contains(key("b")));
}

TEST(EnginePoolFixTest, SweepRemovesUnhealthyEnginesThroughTheCallback) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  auto sick = make_fake();
  pool.put(key("a"), sick);
  pool.put(key("b"), make_fake());
  sick->set_healthy(false);
  const SweepReport report = pool.sweep();
  EXPECT_EQ(report.unhealthy, 1u);
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.events()[0].key, key("a"));
  EXPECT_EQ(rec.events()[0].reason, EvictionReason::kHealth);
  EXPECT_EQ(pool.metrics().health_failures, 1u);
  EXPECT_TRUE(pool.contains(key("b")));
}

TEST(EnginePoolFixTest, BackgroundSweeperRunsAndStopsWithThePool) {
  auto sick = make_fake();
  Recorder rec;
  {
    PoolConfig c;
    c.health_check_interval = 1ms;
    EnginePool pool(c);
    pool.set_eviction_callback(rec.callback());
    pool.put(key("a"), sick);
    sick->set_healthy(false);
    // Waits for an event, not for a time: the sweeper must remove it on its own.
    while (pool.contains(key("a"))) std::this_thread::yield();
  }  // the destructor joins the sweeper; a sweeper left running would be caught by TSan
  const int checks = sick->health_checks();
  EXPECT_GE(checks, 1);
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.events()[0].reason, EvictionReason::kHealth);
}

// Weakness 9: replacing a key was counted as an eviction.
TEST(EnginePoolFixTest, ReplaceIsNotAnEviction) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  auto first = make_fake();
  auto second = make_fake();
  pool.put(key("a"), first);
  pool.put(key("a"), second);
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(fake_id(pool.get(key("a"))), second->id());
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.evictions(), 0u);
  EXPECT_EQ(m.departures_for(EvictionReason::kReplaced), 1u);
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.events()[0].engine_id, first->id());
  EXPECT_EQ(rec.events()[0].reason, EvictionReason::kReplaced);
}

TEST(EnginePoolFixTest, ReplacedEntryKeepsItsPin) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  pool.put(key("a"), make_fake());
  ASSERT_TRUE(pool.pin(key("a")));
  pool.put(key("a"), make_fake());
  EXPECT_THROW(pool.put(key("b"), make_fake()), Error);
  EXPECT_TRUE(pool.entries().at(0).pinned);
}

// Weaknesses 10 and 11: remove and unhealthy removal skipped the callback; callbacks ran
// later, unordered. Every path must report once, with its reason, in order.
TEST(EnginePoolFixTest, EveryWayOutReachesTheCallbackOnceWithItsReason) {
  FakeClock clock;
  PoolConfig c = test_config(clock, 2);
  c.ttl = 60s;
  c.min_size = 0;
  c.device_byte_budgets[1] = 100;
  EnginePool pool(c);
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  std::vector<int> ids;
  const auto put = [&](const EngineKey& k, uint64_t bytes = 0, bool healthy = true) {
    auto e = make_fake(bytes, healthy);
    ids.push_back(e->id());
    pool.put(k, e);
  };
  put(key("cap1"));
  put(key("cap2"));
  put(key("cap3"));                 // evicts cap1: capacity
  put(key("cap3"));                 // replaces cap3
  pool.remove(key("cap2"));         // removed
  put(key("big1", 1), 80);          // pool: cap3', big1
  put(key("big2", 1), 80);          // evicts big1: bytes (cap3' stays)
  clock.advance(2min);
  pool.sweep();                     // cap3' and big2 expire: ttl
  put(key("sick"), 0, false);
  pool.get(key("sick"));            // health
  put(key("last"));
  pool.clear();                     // cleared
  using R = EvictionReason;
  const std::vector<std::pair<std::string, R>> expected = {
      {"cap1", R::kCapacity}, {"cap3", R::kReplaced}, {"cap2", R::kRemoved}, {"big1", R::kBytes},
      {"cap3", R::kTtl},      {"big2", R::kTtl},      {"sick", R::kHealth},  {"last", R::kCleared}};
  const auto events = rec.events();
  ASSERT_EQ(events.size(), expected.size());
  std::multiset<int> seen;
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].key.model_id, expected[i].first) << i;
    EXPECT_EQ(events[i].reason, expected[i].second) << i;
    seen.insert(events[i].engine_id);
  }
  EXPECT_EQ(seen, std::multiset<int>(ids.begin(), ids.end()));  // each engine exactly once
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.departures_for(R::kTtl), 2u);
  EXPECT_EQ(m.evictions(), 5u);  // capacity, bytes, ttl ×2, health
}

TEST(EnginePoolFixTest, ThrowingCallbackIsContained) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  int calls = 0;
  pool.set_eviction_callback([&](const EngineKey&, const std::shared_ptr<Engine>&, EvictionReason) {
    ++calls;
    throw std::runtime_error("callback failure");
  });
  pool.put(key("a"), make_fake());
  EXPECT_NO_THROW(pool.put(key("b"), make_fake()));
  EXPECT_NO_THROW(pool.remove(key("b")));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(pool.size(), 0u);
  pool.put(key("c"), make_fake());
  EXPECT_NE(pool.get(key("c")), nullptr);
}

TEST(EnginePoolFixTest, CallbackRunsOutsideThePoolLockAndMayUseThePool) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  size_t size_seen = 99;
  pool.set_eviction_callback([&](const EngineKey& k, const std::shared_ptr<Engine>&, EvictionReason) {
    size_seen = pool.size();  // would deadlock if the pool lock were held
    if (k.model_id == "a") pool.put(key("from-callback"), make_fake());
  });
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());  // evicts a; the callback's put then evicts b
  EXPECT_EQ(size_seen, 1u);
  EXPECT_TRUE(pool.contains(key("from-callback")));
  EXPECT_EQ(pool.metrics().departures_for(EvictionReason::kCapacity), 2u);
}

TEST(EnginePoolFixTest, ClearedCallbackIsNotCalled) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  pool.clear_eviction_callback();
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());
  EXPECT_EQ(rec.count(), 0u);
}

TEST(EnginePoolFixTest, EvictedEngineStaysAliveForItsHolder) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  const int live_before = FakeEngine::live().load();
  pool.put(key("a"), make_fake());
  std::shared_ptr<Engine> held = pool.get(key("a"));
  pool.put(key("b"), make_fake());
  EXPECT_FALSE(pool.contains(key("a")));
  EXPECT_EQ(FakeEngine::live().load(), live_before + 2);
  EXPECT_NO_THROW(held->infer(InferenceRequest{}));
  held.reset();
  EXPECT_EQ(FakeEngine::live().load(), live_before + 1);
}

// Weakness 3: warmup ignored warmup_enabled / warmup_size and always returned Ok.
TEST(EnginePoolFixTest, WarmupHonoursWarmupEnabled) {
  FakeClock clock;
  PoolConfig c = test_config(clock);
  c.warmup_enabled = false;
  EnginePool pool(c);
  int loads = 0;
  const WarmupReport r = pool.warmup({key("a"), key("b")}, [&](const EngineKey&) {
    ++loads;
    return make_fake();
  });
  EXPECT_EQ(loads, 0);
  EXPECT_TRUE(r.loaded.empty());
  EXPECT_EQ(r.skipped.size(), 2u);
  EXPECT_EQ(pool.size(), 0u);
}

TEST(EnginePoolFixTest, WarmupHonoursWarmupSizeAndReportsEveryKey) {
  FakeClock clock;
  PoolConfig c = test_config(clock);
  c.warmup_size = 2;
  EnginePool pool(c);
  std::vector<std::shared_ptr<FakeEngine>> made;
  const WarmupReport r = pool.warmup({key("a"), key("bad"), key("b"), key("a"), key("c")}, [&](const EngineKey& k) {
    if (k.model_id == "bad") throw Error::model_load("bad model file");
    made.push_back(make_fake());
    return made.back();
  });
  EXPECT_EQ(r.loaded, (std::vector<EngineKey>{key("a"), key("b")}));
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].key, key("bad"));
  EXPECT_EQ(r.failed[0].error.code(), ErrorCode::kModelLoad);
  EXPECT_EQ(r.skipped, (std::vector<EngineKey>{key("c")}));
  EXPECT_FALSE(r.ok());
  for (const auto& e : made) EXPECT_EQ(e->warmups(), 1);  // each engine ran once before serving
  EXPECT_EQ(pool.size(), 2u);
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.hits + m.misses, 0u);  // warmup is not traffic
}

TEST(EnginePoolFixTest, EngineFailingItsWarmupIsNotAdmitted) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  const WarmupReport r = pool.warmup({key("a")}, [](const EngineKey&) {
    auto e = make_fake();
    e->set_fail_warmup(true);
    return e;
  });
  ASSERT_EQ(r.failed.size(), 1u);
  EXPECT_EQ(r.failed[0].error.code(), ErrorCode::kInference);
  EXPECT_EQ(pool.size(), 0u);
}

}  // namespace
}  // namespace kapsl
