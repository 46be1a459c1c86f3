// EnginePool::get of a resident key. BM_Get* report the mean per call (Google Benchmark's
// time column); BM_GetLatency times every call on its own and reports p50/p99 after
// subtracting the cost of reading the clock, since the target is a p50.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "kapsl/engine_pool.h"

namespace {

using kapsl::EngineKey;
using kapsl::EnginePool;

// An engine whose health check costs what a real cheap one does: build a Health value.
class CheapEngine : public kapsl::Engine {
 public:
  kapsl::InferenceResult infer(const kapsl::InferenceRequest&) override { return {}; }
  void warmup() override {}
  kapsl::EngineMetrics metrics() const override { return {}; }
  const kapsl::ModelInfo& model_info() const override { return info_; }
  kapsl::Health health_check() const override { return {}; }
  uint64_t resident_bytes() const override { return 1 << 20; }

 private:
  kapsl::ModelInfo info_;
};

constexpr int kEntries = 5;

EngineKey key_of(int i) { return EngineKey{"model-" + std::to_string(i), 0}; }

// Shared by every thread of a run: the contended case must hit one pool.
EnginePool& shared_pool() {
  static EnginePool* pool = [] {
    static EnginePool p{kapsl::PoolConfig{}};  // defaults: sweeper every 10 s, health check on get
    for (int i = 0; i < kEntries; ++i) p.put(key_of(i), std::make_shared<CheapEngine>());
    return &p;
  }();
  return *pool;
}

void BM_GetResident(benchmark::State& state) {
  EnginePool& pool = shared_pool();
  const EngineKey key = key_of(static_cast<int>(state.thread_index()) % kEntries);
  for (auto _ : state) benchmark::DoNotOptimize(pool.get(key));
}
BENCHMARK(BM_GetResident)->Threads(1)->Threads(2)->UseRealTime();

void BM_GetResidentSameKey(benchmark::State& state) {
  EnginePool& pool = shared_pool();
  const EngineKey key = key_of(0);
  for (auto _ : state) benchmark::DoNotOptimize(pool.get(key));
}
BENCHMARK(BM_GetResidentSameKey)->Threads(2)->UseRealTime();

void BM_GetMiss(benchmark::State& state) {
  EnginePool& pool = shared_pool();
  const EngineKey key{"absent", 0};
  for (auto _ : state) benchmark::DoNotOptimize(pool.get(key));
}
BENCHMARK(BM_GetMiss);

int64_t percentile(std::vector<int64_t>& v, double q) {
  if (v.empty()) return 0;
  const auto k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<long>(k), v.end());
  return v[k];
}

int64_t clock_overhead_ns() {
  using Clock = std::chrono::steady_clock;
  std::vector<int64_t> samples(100000);
  for (auto& s : samples) {
    const auto t0 = Clock::now();
    const auto t1 = Clock::now();
    s = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
  }
  return percentile(samples, 0.5);
}

void BM_GetLatency(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  EnginePool& pool = shared_pool();
  const EngineKey key = key_of(static_cast<int>(state.thread_index()) % kEntries);
  const int64_t overhead = clock_overhead_ns();
  std::vector<int64_t> samples;
  samples.reserve(1 << 22);
  for (auto _ : state) {
    const auto t0 = Clock::now();
    benchmark::DoNotOptimize(pool.get(key));
    const auto t1 = Clock::now();
    if (samples.size() < samples.capacity()) {
      samples.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count() - overhead);
    }
  }
  state.counters["p50_ns"] = static_cast<double>(percentile(samples, 0.50));
  state.counters["p99_ns"] = static_cast<double>(percentile(samples, 0.99));
  state.counters["clock_ns"] = static_cast<double>(overhead);
}
BENCHMARK(BM_GetLatency)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
