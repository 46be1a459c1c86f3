// Cheap metrics for hot paths: a fixed-bucket latency histogram recorded with atomics, and
// the plain snapshot it produces.
//
// LatencyHistogram::record costs a few relaxed atomic adds and no lock or allocation, so
// engines record every request. Buckets are fixed at construction (upper bounds in
// seconds); quantiles are estimated from the snapshot by linear interpolation inside the
// bucket that holds them, so their error is at most one bucket's width.
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

  void record(double seconds) noexcept;
  void record(std::chrono::nanoseconds d) noexcept { record(static_cast<double>(d.count()) * 1e-9); }
  HistogramSnapshot snapshot() const;

  static std::vector<double> default_bounds();

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_ns_{0};
  std::atomic<uint64_t> last_ns_{0};
};

}  // namespace kapsl

#endif  // KAPSL_METRICS_H_
