// Cheap metrics for hot paths: a fixed-bucket latency histogram recorded with atomics, and
// the plain snapshot it produces.
//
// LatencyHistogram::record costs a few relaxed atomic adds and no lock or allocation, so
// engines record every request. The counters are striped: each thread records into one of
// eight cache-line-aligned copies, which snapshot() sums, so that threads recording at once
// do not pass the same cache lines back and forth. Buckets are fixed at construction
// (upper bounds in seconds); quantiles are estimated from the snapshot by linear
// interpolation inside the bucket that holds them, so their error is at most one bucket's
// width.
//
// Thread-safety: LatencyHistogram is safe for concurrent use without external
// synchronization. HistogramSnapshot is a plain value.
#ifndef KAPSL_METRICS_H_
#define KAPSL_METRICS_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace kapsl {

struct HistogramSnapshot {
  std::vector<double> upper_bounds;  // seconds, ascending; an implicit +Inf bucket follows
  std::vector<uint64_t> counts;      // per bucket (not cumulative); size = bounds + 1
  uint64_t count = 0;                // observations
  double sum = 0;                    // seconds
  double last = 0;                   // the latest observation, seconds

  double mean() const { return count ? sum / static_cast<double>(count) : 0.0; }
  // The q-quantile (0 <= q <= 1) in seconds, or 0 with no observations. Observations in
  // the +Inf bucket are reported as the last finite bound.
  double quantile(double q) const;
};

class LatencyHistogram {
 public:
  // Buckets from 10 µs to 100 s, four per decade (1, 1.8, 3.2, 5.6 × 10^k).
  LatencyHistogram();
  // Custom upper bounds in seconds. REQUIRES: ascending, non-empty.
  explicit LatencyHistogram(std::vector<double> upper_bounds);

  LatencyHistogram(const LatencyHistogram&) = delete;
  LatencyHistogram& operator=(const LatencyHistogram&) = delete;

  // Records one observation; negative and NaN durations count as 0. `at` (when the
  // observation ended) decides which observation is the latest; the overloads without it
  // read the clock.
  void record(double seconds) noexcept;
  void record(std::chrono::nanoseconds d) noexcept;
  void record(std::chrono::nanoseconds d, std::chrono::steady_clock::time_point at) noexcept;
  HistogramSnapshot snapshot() const;

  static std::vector<double> default_bounds();

 private:
  static constexpr size_t kStripes = 8;
  static constexpr size_t kPerLine = 8;  // 64-byte cache line / 8-byte counter

  struct alignas(64) Line {
    std::atomic<uint64_t> v[kPerLine] = {};
  };
  struct alignas(64) Stripe {
    std::atomic<uint64_t> sum_ns{0};
    std::atomic<uint64_t> last_ns{0};
    std::atomic<int64_t> last_at_ns{0};  // steady_clock; 0 = nothing recorded
  };

  size_t bucket_of(double seconds) const noexcept;  // the first bucket whose bound >= seconds
  void record_ns(uint64_t ns, size_t bucket, std::chrono::steady_clock::time_point at) noexcept;
  std::atomic<uint64_t>& count(size_t stripe, size_t bucket) const noexcept;

  std::vector<double> bounds_;
  size_t lines_per_stripe_;
  std::unique_ptr<Line[]> lines_;      // bucket i of stripe s: see count()
  std::unique_ptr<Stripe[]> stripes_;  // kStripes
};

}  // namespace kapsl

#endif  // KAPSL_METRICS_H_
