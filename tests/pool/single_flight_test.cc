// get_or_load: one load per cold key, shared outcome, no blocking of other keys.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <latch>
#include <thread>
#include <vector>

#include "kapsl/engine_pool.h"
#include "pool/fake_engine.h"

namespace kapsl {
namespace {

using namespace std::chrono_literals;
using pooltest::FakeClock;
using pooltest::fake_id;
using pooltest::key;
using pooltest::make_fake;
using pooltest::test_config;

constexpr int kThreads = 32;

// Blocks the loader until every caller has missed, so that all of them race for the load.
struct Gate {
  std::promise<void> open;
  std::shared_future<void> opened = open.get_future().share();
};

void wait_for_misses(const EnginePool& pool, uint64_t n) {
  while (pool.metrics().misses < n) std::this_thread::yield();
}

TEST(EnginePoolSingleFlightTest, ThirtyTwoCallersOneColdKeyOneLoad) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  Gate gate;
  std::atomic<int> loader_calls{0};
  const EngineLoader loader = [&](const EngineKey&) {
    loader_calls.fetch_add(1);
    gate.opened.wait();
    return make_fake();
  };
  std::vector<int> ids(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] { ids[i] = fake_id(pool.get_or_load(key("cold"), loader)); });
  }
  wait_for_misses(pool, kThreads);  // every caller found the key cold
  gate.open.set_value();
  for (auto& t : threads) t.join();
  EXPECT_EQ(loader_calls.load(), 1);
  for (int id : ids) EXPECT_EQ(id, ids[0]);
  const PoolMetrics m = pool.metrics();
  EXPECT_EQ(m.loads, 1u);
  EXPECT_EQ(m.misses, static_cast<uint64_t>(kThreads));
  EXPECT_EQ(m.loads_in_flight, 0u);
  EXPECT_EQ(m.load_time.count, 1u);
}

TEST(EnginePoolSingleFlightTest, AllCallersShareTheSameErrorAndFailuresAreNotCached) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  Gate gate;
  std::atomic<int> loader_calls{0};
  const EngineLoader failing = [&](const EngineKey&) -> std::shared_ptr<Engine> {
    loader_calls.fetch_add(1);
    gate.opened.wait();
    throw Error::model_load("truncated file", "model.onnx");
  };
  std::vector<std::string> messages(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      try {
        pool.get_or_load(key("bad"), failing);
      } catch (const Error& e) {
        messages[i] = e.to_string();
      }
    });
  }
  wait_for_misses(pool, kThreads);
  gate.open.set_value();
  for (auto& t : threads) t.join();
  EXPECT_EQ(loader_calls.load(), 1);
  for (const auto& m : messages) EXPECT_EQ(m, "ModelLoad: truncated file: model.onnx");
  EXPECT_FALSE(pool.contains(key("bad")));
  EXPECT_EQ(pool.metrics().load_failures, 1u);
  // Not cached: the next call loads again.
  EXPECT_NE(pool.get_or_load(key("bad"), [](const EngineKey&) { return make_fake(); }), nullptr);
}

TEST(EnginePoolSingleFlightTest, LoadOfOneKeyDoesNotBlockOtherKeys) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  pool.put(key("b"), make_fake());
  std::latch started(1);
  Gate gate;
  std::thread loading([&] {
    pool.get_or_load(key("a"), [&](const EngineKey&) {
      started.count_down();
      gate.opened.wait();
      return make_fake();
    });
  });
  started.wait();
  // The load of a is in progress; everything else must go on (a held lock would hang here).
  EXPECT_NE(pool.get(key("b")), nullptr);
  pool.put(key("c"), make_fake());
  EXPECT_TRUE(pool.remove(key("c")));
  EXPECT_NE(pool.get_or_load(key("d"), [](const EngineKey&) { return make_fake(); }), nullptr);
  EXPECT_EQ(pool.sweep().checked, 2u);
  EXPECT_EQ(pool.metrics().loads_in_flight, 1u);
  EXPECT_FALSE(pool.contains(key("a")));
  gate.open.set_value();
  loading.join();
  EXPECT_TRUE(pool.contains(key("a")));
}

TEST(EnginePoolSingleFlightTest, ResidentKeyIsNotLoaded) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  auto e = make_fake();
  pool.put(key("a"), e);
  int calls = 0;
  auto got = pool.get_or_load(key("a"), [&](const EngineKey&) {
    ++calls;
    return make_fake();
  });
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(fake_id(got), e->id());
  EXPECT_EQ(pool.metrics().hits, 1u);
}

TEST(EnginePoolSingleFlightTest, UnhealthyResidentEngineIsReloaded) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  pool.put(key("a"), make_fake(0, /*healthy=*/false));
  auto fresh = make_fake();
  EXPECT_EQ(fake_id(pool.get_or_load(key("a"), [&](const EngineKey&) { return fresh; })), fresh->id());
  EXPECT_EQ(pool.metrics().departures_for(EvictionReason::kHealth), 1u);
}

TEST(EnginePoolSingleFlightTest, BackoffFailsFastWithTheSameErrorUntilItPasses) {
  FakeClock clock;
  PoolConfig c = test_config(clock);
  c.load_failure_backoff = 10s;
  EnginePool pool(c);
  int calls = 0;
  const EngineLoader failing = [&](const EngineKey&) -> std::shared_ptr<Engine> {
    ++calls;
    throw Error::model_load("no such file", "m.gguf");
  };
  EXPECT_THROW(pool.get_or_load(key("a"), failing), Error);
  clock.advance(9s);
  try {
    pool.get_or_load(key("a"), failing);
    ADD_FAILURE() << "expected the cached error";
  } catch (const Error& e) {
    EXPECT_EQ(e.to_string(), "ModelLoad: no such file: m.gguf");
  }
  EXPECT_EQ(calls, 1);
  clock.advance(1s);
  EXPECT_THROW(pool.get_or_load(key("a"), failing), Error);
  EXPECT_EQ(calls, 2);
  // put clears the backoff.
  pool.put(key("a"), make_fake());
  pool.remove(key("a"));
  EXPECT_NE(pool.get_or_load(key("a"), [](const EngineKey&) { return make_fake(); }), nullptr);
}

TEST(EnginePoolSingleFlightTest, LoaderFailuresBecomeKapslErrors) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  try {
    pool.get_or_load(key("null"), [](const EngineKey&) { return std::shared_ptr<Engine>(); });
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelLoad);
    EXPECT_NE(e.message().find("'null'@0"), std::string::npos) << e.message();
  }
  try {
    pool.get_or_load(key("std"), [](const EngineKey&) -> std::shared_ptr<Engine> { throw std::runtime_error("boom"); });
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelLoad);
    EXPECT_NE(e.message().find("boom"), std::string::npos) << e.message();
  }
  EXPECT_EQ(pool.metrics().load_failures, 2u);
  EXPECT_EQ(pool.size(), 0u);
}

TEST(EnginePoolSingleFlightTest, LoaderAskingForItsOwnKeyFailsInsteadOfDeadlocking) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  EngineLoader loader;
  loader = [&](const EngineKey& k) { return pool.get_or_load(k, loader); };
  try {
    pool.get_or_load(key("self"), loader);
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  }
  EXPECT_EQ(pool.metrics().loads_in_flight, 0u);
}

TEST(EnginePoolSingleFlightTest, LoaderMayLoadOtherKeys) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  auto got = pool.get_or_load(key("outer"), [&](const EngineKey&) {
    pool.get_or_load(key("inner"), [](const EngineKey&) { return make_fake(); });
    return make_fake();
  });
  EXPECT_NE(got, nullptr);
  EXPECT_TRUE(pool.contains(key("inner")));
  EXPECT_TRUE(pool.contains(key("outer")));
}

TEST(EnginePoolSingleFlightTest, BadArgumentsAreInvalidInput) {
  FakeClock clock;
  EnginePool pool(test_config(clock));
  const auto code_of = [](auto&& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.code();
    }
    return ErrorCode::kBackend;  // not thrown: fails the comparison below
  };
  EXPECT_EQ(code_of([&] { pool.get_or_load(key("a"), EngineLoader{}); }), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of([&] { pool.get_or_load(key(""), [](const EngineKey&) { return make_fake(); }); }),
            ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of([&] { pool.put(key("a"), nullptr); }), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of([&] { pool.put(key(""), make_fake()); }), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of([&] { pool.warmup({key("a")}, EngineLoader{}); }), ErrorCode::kInvalidInput);
  EXPECT_EQ(pool.size(), 0u);
}

}  // namespace
}  // namespace kapsl
