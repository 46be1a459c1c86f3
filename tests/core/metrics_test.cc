#include "kapsl/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <thread>
#include <vector>

namespace kapsl {
namespace {

TEST(HistogramTest, EmptyHasZeroQuantilesNotNaN) {
  LatencyHistogram h;
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.quantile(0.5), 0.0);
  EXPECT_EQ(s.mean(), 0.0);
}

TEST(HistogramTest, QuantilesFallInTheRightBucket) {
  LatencyHistogram h({0.001, 0.01, 0.1});
  for (int i = 0; i < 90; ++i) h.record(0.0005);
  for (int i = 0; i < 10; ++i) h.record(0.05);
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 100u);
  EXPECT_LE(s.quantile(0.5), 0.001);
  EXPECT_GT(s.quantile(0.99), 0.01);
  EXPECT_LE(s.quantile(0.99), 0.1);
  EXPECT_NEAR(s.mean(), (90 * 0.0005 + 10 * 0.05) / 100, 1e-6);
  EXPECT_NEAR(s.last, 0.05, 1e-9);
}

TEST(HistogramTest, OverflowBucketReportsLastBound) {
  LatencyHistogram h({0.001});
  h.record(5.0);
  EXPECT_EQ(h.snapshot().counts.back(), 1u);
  EXPECT_EQ(h.snapshot().quantile(0.5), 0.001);
}

TEST(HistogramTest, NegativeAndNaNCountAsZero) {
  LatencyHistogram h({0.001});
  h.record(-1.0);
  h.record(std::nan(""));
  EXPECT_EQ(h.snapshot().counts[0], 2u);
}

TEST(HistogramTest, ConcurrentRecordsAreAllCounted) {
  LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.record(std::chrono::microseconds(i % 1000));
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.snapshot().count, 40000u);
}

// Threads record into stripes of their own; "last" is the latest observation whichever
// stripe holds it.
TEST(HistogramTest, LastIsTheLatestObservationAcrossThreads) {
  LatencyHistogram h;
  for (const int ms : {3, 1, 2}) {
    std::thread([&h, ms] { h.record(std::chrono::milliseconds(ms)); }).join();
    EXPECT_NEAR(h.snapshot().last, ms * 1e-3, 1e-12);
  }
  h.record(0.004);
  const HistogramSnapshot s = h.snapshot();
  EXPECT_NEAR(s.last, 0.004, 1e-12);
  EXPECT_EQ(s.count, 4u);
  EXPECT_NEAR(s.sum, 0.010, 1e-12);
}

}  // namespace
}  // namespace kapsl
