// The original crate's five EnginePool tests (engine_pool_tests.rs), ported. Unlike the
// original, callbacks are delivered before the call returns, so no polling is needed.
#include <gtest/gtest.h>

#include "kapsl/engine_pool.h"
#include "pool/fake_engine.h"

namespace kapsl {
namespace {

using pooltest::FakeClock;
using pooltest::key;
using pooltest::make_fake;
using pooltest::Recorder;
using pooltest::test_config;

TEST(EnginePoolOriginalTest, LruOrder) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 2));
  pool.put(key("1"), make_fake());
  pool.put(key("2"), make_fake());
  EXPECT_NE(pool.get(key("1")), nullptr);
  EXPECT_NE(pool.get(key("2")), nullptr);
  pool.put(key("3"), make_fake());
  EXPECT_EQ(pool.get(key("1")), nullptr);  // 1 was used less recently than 2
  EXPECT_NE(pool.get(key("2")), nullptr);
  EXPECT_NE(pool.get(key("3")), nullptr);
}

TEST(EnginePoolOriginalTest, CallbackCalledExactlyOnceOnOneEviction) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 2));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  pool.put(key("1"), make_fake());
  pool.put(key("2"), make_fake());
  pool.put(key("3"), make_fake());
  EXPECT_EQ(rec.count(), 1u);
}

TEST(EnginePoolOriginalTest, UnhealthyEngineRemovedOnGet) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  pool.put(key("1"), make_fake(0, /*healthy=*/false));
  EXPECT_EQ(pool.get(key("1")), nullptr);
  EXPECT_EQ(pool.size(), 0u);
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.hits, 0u);
  EXPECT_EQ(m.health_failures, 1u);
}

TEST(EnginePoolOriginalTest, CallbackReportsEvictedKey) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 1));
  Recorder rec;
  pool.set_eviction_callback(rec.callback());
  pool.put(key("1", 0), make_fake());
  pool.put(key("2", 0), make_fake());
  const auto events = rec.events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].key, key("1", 0));
  EXPECT_EQ(events[0].reason, EvictionReason::kCapacity);
}

TEST(EnginePoolOriginalTest, WarmupSkipsFailedEngines) {
  FakeClock clock;
  EnginePool pool(test_config(clock, 3));
  const WarmupReport report = pool.warmup({key("1"), key("2")}, [](const EngineKey& k) -> std::shared_ptr<Engine> {
    if (k.model_id == "1") throw Error::model_load("model 1 is broken");
    return make_fake();
  });
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_NE(pool.get(key("2")), nullptr);
  ASSERT_EQ(report.failed.size(), 1u);
  EXPECT_EQ(report.failed[0].key, key("1"));
}

}  // namespace
}  // namespace kapsl
