#include "gguf/slots.h"

#include <chrono>
#include <utility>

#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

// A waiter wakes at least this often to notice cancellation, which has no notifier.
constexpr auto kPollInterval = std::chrono::milliseconds(10);

}  // namespace

void ThreadpoolDeleter::operator()(ggml_threadpool* pool) const noexcept { ggml_threadpool_free(pool); }

SlotPool::SlotPool(std::vector<std::unique_ptr<Slot>> slots, uint32_t max_queue,
                   internal::RequestCounters* counters)
    : slots_(std::move(slots)), max_queue_(max_queue), counters_(counters) {
  for (const auto& s : slots_) free_.push_back(s.get());
}

std::unique_ptr<SlotPool::Lease> SlotPool::acquire(const StopSignal& stop) {
  internal::MutexLock lock(&mu_);
  if (free_.empty()) {
    if (waiting_ >= max_queue_) {
      throw Error::overloaded("all " + std::to_string(slots_.size()) + " GGUF slots are busy and the queue is full",
                              "max_queue = " + std::to_string(max_queue_));
    }
    ++waiting_;
    counters_->add_queued(1);
    while (free_.empty() && !stop.cancelled() && !stop.expired()) freed_.wait_for(&mu_, kPollInterval);
    --waiting_;
    counters_->add_queued(-1);
    if (free_.empty()) {
      if (stop.cancelled()) throw Error::cancelled("request cancelled while waiting for a GGUF slot");
      throw Error::timeout("deadline passed while waiting for a GGUF slot");
    }
  }
  Slot* slot = free_.back();
  free_.pop_back();
  return std::make_unique<Lease>(this, slot);
}

void SlotPool::release(Slot* slot) {
  {
    internal::MutexLock lock(&mu_);
    free_.push_back(slot);
  }
  freed_.notify_one();
}

}  // namespace kapsl::gguf
