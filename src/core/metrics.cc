#include "kapsl/metrics.h"

#include <algorithm>
#include <cassert>
#include <cmath>

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
    : bounds_(std::move(upper_bounds)), counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  assert(!bounds_.empty() && std::is_sorted(bounds_.begin(), bounds_.end()));
}

void LatencyHistogram::record(double seconds) noexcept {
  if (!(seconds >= 0)) seconds = 0;  // also maps NaN to 0
  const size_t i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), seconds) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  const auto ns = static_cast<uint64_t>(std::min(seconds, 1e9) * 1e9);
  sum_ns_.fetch_add(ns, std::memory_order_relaxed);
  last_ns_.store(ns, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

HistogramSnapshot LatencyHistogram::snapshot() const {
  HistogramSnapshot s;
  s.upper_bounds = bounds_;
  s.counts.resize(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i < s.counts.size(); ++i) {
    s.counts[i] = counts_[i].load(std::memory_order_relaxed);
    total += s.counts[i];
  }
  // Count from the buckets so that count and counts agree even while records race.
  s.count = total;
  s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) * 1e-9;
  s.last = static_cast<double>(last_ns_.load(std::memory_order_relaxed)) * 1e-9;
  return s;
}

}  // namespace kapsl
