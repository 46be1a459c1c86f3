#include "core/request_counters.h"

namespace kapsl::internal {

void RequestCounters::Scope::finish(std::optional<ErrorCode> code) {
  if (done_) return;
  done_ = true;
  const Clock::time_point end = Clock::now();
  c_->latency_.record(end - start_, end);
  if (code == ErrorCode::kCancelled) {
    stripe_->cancelled.fetch_add(1, std::memory_order_relaxed);
  } else if (code == ErrorCode::kTimeout) {
    stripe_->timeouts.fetch_add(1, std::memory_order_relaxed);
  } else if (code) {
    stripe_->failures.fetch_add(1, std::memory_order_relaxed);
  }
  // Release: a snapshot that reads this count with acquire then reads `started` at least
  // as large (see snapshot()).
  stripe_->requests.fetch_add(1, std::memory_order_release);
}

EngineMetrics RequestCounters::snapshot() const {
  EngineMetrics m;
  for (const Stripe& s : stripes_) {
    // `requests` first: every call it counts was counted in `started` before, so the
    // difference is never negative.
    const uint64_t finished = s.requests.load(std::memory_order_acquire);
    m.in_flight += s.started.load(std::memory_order_relaxed) - finished;
    m.requests += finished;
    m.failures += s.failures.load(std::memory_order_relaxed);
    m.cancelled += s.cancelled.load(std::memory_order_relaxed);
    m.timeouts += s.timeouts.load(std::memory_order_relaxed);
  }
  m.queued = queued_.load(std::memory_order_relaxed);
  m.prompt_tokens = prompt_tokens_.load(std::memory_order_relaxed);
  m.generated_tokens = generated_tokens_.load(std::memory_order_relaxed);
  m.latency = latency_.snapshot();
  m.time_to_first_token = ttft_.snapshot();
  m.collected_at = std::chrono::system_clock::now();
  return m;
}

}  // namespace kapsl::internal
