#include "kapsl/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>

#include "core/thread_stripe.h"

namespace kapsl {

double HistogramSnapshot::quantile(double q) const {
  if (count == 0 || upper_bounds.empty()) return 0.0;
  q = std::clamp(q, 0.0, 1.0);
  const double rank = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] == 0) continue;
    if (static_cast<double>(seen + counts[i]) >= rank) {
      if (i >= upper_bounds.size()) return upper_bounds.back();
      const double lo = i == 0 ? 0.0 : upper_bounds[i - 1];
      const double hi = upper_bounds[i];
      const double within = (rank - static_cast<double>(seen)) / static_cast<double>(counts[i]);
      return lo + (hi - lo) * std::clamp(within, 0.0, 1.0);
    }
    seen += counts[i];
  }
  return upper_bounds.back();
}

std::vector<double> LatencyHistogram::default_bounds() {
  std::vector<double> b;
  for (int exp = -5; exp <= 1; ++exp) {
    for (double m : {1.0, 1.8, 3.2, 5.6}) b.push_back(m * std::pow(10.0, exp));
  }
  b.push_back(100.0);
  return b;
}

LatencyHistogram::LatencyHistogram() : LatencyHistogram(default_bounds()) {}

LatencyHistogram::LatencyHistogram(std::vector<double> upper_bounds)
    : bounds_(std::move(upper_bounds)),
      lines_per_stripe_((bounds_.size() + 1 + kPerLine - 1) / kPerLine),
      lines_(std::make_unique<Line[]>(kStripes * lines_per_stripe_)),
      stripes_(std::make_unique<Stripe[]>(kStripes)) {
  static_assert(kStripes == internal::kThreadStripes);
  assert(!bounds_.empty() && std::is_sorted(bounds_.begin(), bounds_.end()));
}

std::atomic<uint64_t>& LatencyHistogram::count(size_t stripe, size_t bucket) const noexcept {
  return lines_[stripe * lines_per_stripe_ + bucket / kPerLine].v[bucket % kPerLine];
}

void LatencyHistogram::record(double seconds) noexcept {
  if (!(seconds >= 0)) seconds = 0;  // also maps NaN to 0
  seconds = std::min(seconds, 1e9);
  record_ns(static_cast<uint64_t>(seconds * 1e9), bucket_of(seconds), std::chrono::steady_clock::now());
}

void LatencyHistogram::record(std::chrono::nanoseconds d) noexcept { record(d, std::chrono::steady_clock::now()); }

void LatencyHistogram::record(std::chrono::nanoseconds d, std::chrono::steady_clock::time_point at) noexcept {
  const uint64_t ns = d.count() > 0 ? static_cast<uint64_t>(d.count()) : 0;
  record_ns(ns, bucket_of(static_cast<double>(ns) * 1e-9), at);
}

size_t LatencyHistogram::bucket_of(double seconds) const noexcept {
  return static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
}

void LatencyHistogram::record_ns(uint64_t ns, size_t bucket, std::chrono::steady_clock::time_point at) noexcept {
  const int64_t at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
  const size_t s = internal::this_thread_stripe();
  count(s, bucket).fetch_add(1, std::memory_order_relaxed);
  Stripe& stripe = stripes_[s];
  stripe.sum_ns.fetch_add(ns, std::memory_order_relaxed);
  // The pair may tear under a concurrent record on the same stripe; "last" is then one of
  // the two latest observations, which is all it promises.
  stripe.last_ns.store(ns, std::memory_order_relaxed);
  stripe.last_at_ns.store(std::max<int64_t>(at_ns, 1), std::memory_order_relaxed);
}

HistogramSnapshot LatencyHistogram::snapshot() const {
  HistogramSnapshot s;
  s.upper_bounds = bounds_;
  s.counts.assign(bounds_.size() + 1, 0);
  uint64_t total = 0, sum_ns = 0;
  int64_t latest = 0;
  for (size_t stripe = 0; stripe < kStripes; ++stripe) {
    for (size_t i = 0; i < s.counts.size(); ++i) {
      const uint64_t n = count(stripe, i).load(std::memory_order_relaxed);
      s.counts[i] += n;
      total += n;
    }
    sum_ns += stripes_[stripe].sum_ns.load(std::memory_order_relaxed);
    const int64_t at = stripes_[stripe].last_at_ns.load(std::memory_order_relaxed);
    if (at > latest) {
      latest = at;
      s.last = static_cast<double>(stripes_[stripe].last_ns.load(std::memory_order_relaxed)) * 1e-9;
    }
  }
  // Count from the buckets so that count and counts agree even while records race.
  s.count = total;
  s.sum = static_cast<double>(sum_ns) * 1e-9;
  return s;
}

}  // namespace kapsl
