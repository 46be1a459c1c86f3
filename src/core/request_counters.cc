#include "core/request_counters.h"

namespace kapsl::internal {

void RequestCounters::Scope::finish(std::optional<ErrorCode> code) {
  if (done_) return;
  done_ = true;
  c_->latency_.record(Clock::now() - start_);
  c_->requests_.fetch_add(1, std::memory_order_relaxed);
  if (code == ErrorCode::kCancelled) {
    c_->cancelled_.fetch_add(1, std::memory_order_relaxed);
  } else if (code == ErrorCode::kTimeout) {
    c_->timeouts_.fetch_add(1, std::memory_order_relaxed);
  } else if (code) {
    c_->failures_.fetch_add(1, std::memory_order_relaxed);
  }
  c_->in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

EngineMetrics RequestCounters::snapshot() const {
  EngineMetrics m;
  m.requests = requests_.load(std::memory_order_relaxed);
  m.failures = failures_.load(std::memory_order_relaxed);
  m.cancelled = cancelled_.load(std::memory_order_relaxed);
  m.timeouts = timeouts_.load(std::memory_order_relaxed);
  m.in_flight = in_flight_.load(std::memory_order_relaxed);
  m.queued = queued_.load(std::memory_order_relaxed);
  m.prompt_tokens = prompt_tokens_.load(std::memory_order_relaxed);
  m.generated_tokens = generated_tokens_.load(std::memory_order_relaxed);
  m.latency = latency_.snapshot();
  m.time_to_first_token = ttft_.snapshot();
  m.collected_at = std::chrono::system_clock::now();
  return m;
}

}  // namespace kapsl::internal
