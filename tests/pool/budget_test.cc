// Byte budgets per device, pinning and capacity victims.
#include <gtest/gtest.h>

#include "kapsl/engine_pool.h"
#include "pool/fake_engine.h"
#include "pool/pool_impl.h"

namespace kapsl {
namespace {

using pooltest::FakeClock;
using pooltest::key;
using pooltest::make_fake;
using pooltest::Recorder;
using pooltest::test_config;

PoolConfig budget_config(const FakeClock& clock, uint64_t budget, size_t max_size = 5) {
  PoolConfig c = test_config(clock, max_size);
  c.device_byte_budgets[0] = budget;
  return c;
}

uint64_t resident(const EnginePool& pool, int device) {
  for (const DeviceBytes& d : pool.metrics().devices) {
    if (d.device_id == device) return d.resident_bytes;
  }
  return 0;
}

ErrorCode put_error(EnginePool& pool, const EngineKey& k, uint64_t bytes) {
  try {
    pool.put(k, make_fake(bytes));
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kBackend;  // no error: never expected by these tests
}

TEST(EnginePoolBudgetTest, IdleLeastRecentlyUsedEnginesMakeRoom) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  pool.put(key("a"), make_fake(40));
  pool.put(key("b"), make_fake(30));
  pool.put(key("c"), make_fake(20));
  ASSERT_NE(pool.get(key("a")), nullptr);  // b is now least recently used
  pool.put(key("d"), make_fake(40));       // needs 30 more: b alone frees it
  EXPECT_FALSE(pool.contains(key("b")));
  EXPECT_TRUE(pool.contains(key("a")));
  EXPECT_TRUE(pool.contains(key("c")));
  EXPECT_EQ(resident(pool, 0), 100u);
  ASSERT_EQ(rec.count(), 1u);
  EXPECT_EQ(rec.events()[0].reason, EvictionReason::kBytes);
}

TEST(EnginePoolBudgetTest, OneColdEngineThatFreesEnoughBeatsSeveralSmallerOnes) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  pool.put(key("small-old"), make_fake(10));
  pool.put(key("big"), make_fake(60));
  pool.put(key("small-new"), make_fake(10));
  pool.put(key("d"), make_fake(50));  // needs 30: strict LRU order would take small-old too
  EXPECT_TRUE(pool.contains(key("small-old")));
  EXPECT_FALSE(pool.contains(key("big")));
  EXPECT_TRUE(pool.contains(key("small-new")));
  EXPECT_EQ(resident(pool, 0), 70u);
}

TEST(EnginePoolBudgetTest, SeveralIdleEnginesGoInLruOrderWhenNoneFreesEnoughAlone) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  pool.put(key("a"), make_fake(30));
  pool.put(key("b"), make_fake(30));
  pool.put(key("c"), make_fake(30));
  pool.put(key("d"), make_fake(60));  // needs 50: a then b
  EXPECT_FALSE(pool.contains(key("a")));
  EXPECT_FALSE(pool.contains(key("b")));
  EXPECT_TRUE(pool.contains(key("c")));
  EXPECT_EQ(resident(pool, 0), 90u);
}

TEST(EnginePoolBudgetTest, EngineLargerThanTheBudgetIsResourceExhausted) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  pool.put(key("a"), make_fake(10));
  EXPECT_EQ(put_error(pool, key("huge"), 101), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(pool.contains(key("a")));  // nothing evicted for a hopeless admission
  EXPECT_EQ(pool.metrics().rejections, 1u);
}

TEST(EnginePoolBudgetTest, NothingEvictableIsResourceExhaustedAndLeavesThePoolUnchanged) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  pool.put(key("held"), make_fake(50));
  pool.put(key("idle"), make_fake(20));
  auto in_use = pool.get(key("held"));
  // 70 charged; 60 more needs 30 freed, but only idle's 20 can go.
  EXPECT_EQ(put_error(pool, key("new"), 60), ErrorCode::kResourceExhausted);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_TRUE(pool.contains(key("idle")));
  EXPECT_EQ(rec.count(), 0u);
  EXPECT_EQ(resident(pool, 0), 70u);
}

TEST(EnginePoolBudgetTest, EvictedEngineInUseCountsUntilReleased) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100, /*max_size=*/1));
  pool.put(key("a"), make_fake(60));
  auto held = pool.get(key("a"));
  pool.put(key("b"), make_fake(30));  // capacity evicts a, which is still in use
  EXPECT_FALSE(pool.contains(key("a")));
  EXPECT_EQ(resident(pool, 0), 90u);
  pool.remove(key("b"));
  EXPECT_EQ(resident(pool, 0), 60u);
  EXPECT_EQ(put_error(pool, key("c"), 50), ErrorCode::kResourceExhausted);
  held.reset();
  EXPECT_EQ(resident(pool, 0), 0u);
  pool.put(key("c"), make_fake(50));
  EXPECT_EQ(resident(pool, 0), 50u);
}

TEST(EnginePoolBudgetTest, PinnedEnginesAreNeverEvictedForBytes) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  pool.put(key("a"), make_fake(60));
  ASSERT_TRUE(pool.pin(key("a")));
  EXPECT_EQ(put_error(pool, key("b"), 50), ErrorCode::kResourceExhausted);
  EXPECT_TRUE(pool.contains(key("a")));
  ASSERT_TRUE(pool.unpin(key("a")));
  pool.put(key("b"), make_fake(50));
  EXPECT_FALSE(pool.contains(key("a")));
}

TEST(EnginePoolBudgetTest, BudgetsArePerDevice) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  pool.put(key("a", 0), make_fake(90));
  pool.put(key("a", 1), make_fake(1000));  // device 1 has no budget
  pool.put(key("b", 0), make_fake(50));    // evicts a@0 only
  EXPECT_FALSE(pool.contains(key("a", 0)));
  EXPECT_TRUE(pool.contains(key("a", 1)));
  const PoolMetrics m = pool.metrics();
  ASSERT_EQ(m.devices.size(), 2u);
  EXPECT_EQ(m.devices[0].device_id, 0);
  EXPECT_EQ(m.devices[0].budget_bytes, 100u);
  EXPECT_EQ(m.devices[0].resident_bytes, 50u);
  EXPECT_EQ(m.devices[0].peak_bytes, 90u);
  EXPECT_EQ(m.devices[0].entries, 1u);
  EXPECT_EQ(m.devices[1].resident_bytes, 1000u);
  EXPECT_EQ(m.devices[1].budget_bytes, 0u);
}

TEST(EnginePoolBudgetTest, ReplacingAnIdleEngineReusesItsBytes) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  pool.put(key("a"), make_fake(80));
  pool.put(key("a"), make_fake(90));
  EXPECT_EQ(resident(pool, 0), 90u);
  EXPECT_EQ(pool.metrics().devices[0].peak_bytes, 90u);
}

TEST(EnginePoolBudgetTest, PuttingBackAHandedOutEngineDoesNotDoubleCount) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 1000));
  pool.put(key("a"), make_fake(60));
  pool.put(key("b"), pool.get(key("a")));  // the same engine under a second key
  pool.remove(key("a"));
  EXPECT_EQ(resident(pool, 0), 60u);
  EXPECT_EQ(pool.entries().at(0).users, 0);
}

TEST(EnginePoolBudgetTest, GetOrLoadRefusedAdmissionIsTheCallersError) {
  FakeClock clock;
  EnginePool pool(budget_config(clock, 100));
  try {
    pool.get_or_load(key("big"), [](const EngineKey&) { return make_fake(500); });
    ADD_FAILURE() << "expected kResourceExhausted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kResourceExhausted);
    EXPECT_NE(e.message().find("'big'@0"), std::string::npos) << e.message();
  }
  EXPECT_EQ(pool.size(), 0u);
  EXPECT_EQ(resident(pool, 0), 0u);
}

TEST(EnginePoolCapacityTest, IdleEntriesGoBeforeEntriesInUse) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 2));
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());
  auto held = pool.get(key("a"));
  pool.put(key("b"), make_fake());  // b most recent, a least recent but held
  pool.put(key("c"), make_fake());
  EXPECT_TRUE(pool.contains(key("a")));
  EXPECT_FALSE(pool.contains(key("b")));
}

TEST(EnginePoolCapacityTest, InUseEntriesAreEvictedWhenNoIdleOneIsLeft) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  pool.put(key("a"), make_fake());
  auto held = pool.get(key("a"));
  pool.put(key("b"), make_fake());
  EXPECT_FALSE(pool.contains(key("a")));
  EXPECT_NE(held, nullptr);
}

TEST(EnginePoolCapacityTest, FullOfPinnedEntriesIsResourceExhausted) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 2));
  pool.put(key("a"), make_fake());
  pool.put(key("b"), make_fake());
  pool.pin(key("a"));
  pool.pin(key("b"));
  EXPECT_EQ(put_error(pool, key("c"), 0), ErrorCode::kResourceExhausted);
  EXPECT_EQ(pool.size(), 2u);
  EXPECT_FALSE(pool.pin(key("c")));
  EXPECT_TRUE(pool.remove(key("a")));  // pins do not stop an explicit remove
  pool.put(key("c"), make_fake());
  EXPECT_EQ(pool.size(), 2u);
}

TEST(EnginePoolIntrospectionTest, EntriesListKeyBytesLastUsePinAndUsers) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  pool.put(key("a", 1), make_fake(7));
  clock.advance(std::chrono::seconds(5));
  pool.put(key("b", 2), make_fake(9));
  pool.pin(key("a", 1));
  auto h1 = pool.get(key("b", 2));
  auto h2 = pool.get(key("b", 2));
  const auto entries = pool.entries();
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].key, key("b", 2));  // most recently used first
  EXPECT_EQ(entries[0].bytes, 9u);
  EXPECT_EQ(entries[0].users, 2);
  EXPECT_FALSE(entries[0].pinned);
  EXPECT_EQ(entries[1].key, key("a", 1));
  EXPECT_TRUE(entries[1].pinned);
  EXPECT_EQ(entries[1].users, 0);
  EXPECT_EQ(entries[0].last_use - entries[1].last_use, std::chrono::seconds(5));
  EXPECT_EQ(pool.metrics().entries, 2u);
}

}  // namespace
}  // namespace kapsl

namespace kapsl {
namespace {

// Last-use stamps from the pool's default clock must be comparable with kapsl::Clock.
TEST(EnginePoolIntrospectionTest, DefaultClockSharesKapslClocksOrigin) {
  const Clock::time_point before = Clock::now();
  const Clock::time_point coarse = internal::coarse_now();
  const Clock::time_point after = Clock::now();
  EXPECT_LE(coarse, after);
  EXPECT_GT(coarse, before - std::chrono::seconds(1));  // a few ms of lag, not another origin
}

}  // namespace
}  // namespace kapsl
