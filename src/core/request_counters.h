// RequestCounters: the per-engine request accounting every backend shares, so that
// EngineMetrics mean the same thing whatever the backend.
//
// Usage, once per call:
//   auto scope = counters_.begin();      // in_flight += 1 (started += 1)
//   ... run ...
//   scope.succeed();                     // or let an exception leave the scope
// A scope left by an exception is classified by the exception in flight (kCancelled,
// kTimeout, anything else = failure) by the catch site calling fail(code).
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_CORE_REQUEST_COUNTERS_H_
#define KAPSL_SRC_CORE_REQUEST_COUNTERS_H_

#include <array>
#include <atomic>
#include <chrono>

#include "core/thread_stripe.h"
#include "kapsl/engine.h"
#include "kapsl/error.h"
#include "kapsl/metrics.h"

namespace kapsl::internal {

class RequestCounters {
  // The per-call counts, striped by thread (core/thread_stripe.h). A call counts itself in
  // `started` when it begins and in `requests` when it ends, both on its beginning's stripe,
  // so in_flight is each stripe's started - requests (one atomic add per call fewer than an
  // in_flight counter that goes up and down).
  struct alignas(64) Stripe {
    std::atomic<uint64_t> started{0}, requests{0}, failures{0}, cancelled{0}, timeouts{0};
  };

 public:
  class Scope {
   public:
    explicit Scope(RequestCounters* c)
        : c_(c), stripe_(&c->stripes_[this_thread_stripe()]), start_(Clock::now()) {
      stripe_->started.fetch_add(1, std::memory_order_relaxed);
    }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;
    // Ends the call as a failure with `code` unless succeed() or fail() ran already.
    ~Scope() {
      if (!done_) finish(ErrorCode::kInference);
    }
    void succeed() { finish(std::nullopt); }
    void fail(ErrorCode code) { finish(code); }
    Clock::time_point start() const { return start_; }

   private:
    void finish(std::optional<ErrorCode> code);
    RequestCounters* c_;
    Stripe* stripe_;  // begin's stripe: finish counts the call there too
    Clock::time_point start_;
    bool done_ = false;
  };

  Scope begin() { return Scope(this); }
  void add_tokens(uint64_t prompt, uint64_t generated) {
    prompt_tokens_.fetch_add(prompt, std::memory_order_relaxed);
    generated_tokens_.fetch_add(generated, std::memory_order_relaxed);
  }
  void record_time_to_first_token(double seconds) { ttft_.record(seconds); }
  void add_queued(int64_t delta) { queued_.fetch_add(static_cast<uint64_t>(delta), std::memory_order_relaxed); }
  // Fills every field of EngineMetrics except resident_bytes.
  EngineMetrics snapshot() const;

 private:
  std::array<Stripe, kThreadStripes> stripes_;
  std::atomic<uint64_t> queued_{0};
  std::atomic<uint64_t> prompt_tokens_{0}, generated_tokens_{0};
  LatencyHistogram latency_;
  LatencyHistogram ttft_;
};

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_CORE_REQUEST_COUNTERS_H_
