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
  return std::move(acquire(stop, 1).front());
}

std::vector<std::unique_ptr<SlotPool::Lease>> SlotPool::acquire(const StopSignal& stop, size_t n) {
  const std::vector<Slot*> taken = take(stop, n);
  std::vector<std::unique_ptr<Lease>> leases;
  for (Slot* slot : taken) leases.push_back(std::make_unique<Lease>(this, slot));
  return leases;
}

std::vector<Slot*> SlotPool::take(const StopSignal& stop, size_t n) {
  internal::MutexLock lock(&mu_);
  if (free_.size() < n) {
    if (waiting_ >= max_queue_) {
      throw Error::overloaded("all " + std::to_string(slots_.size()) + " GGUF slots are busy and the queue is full",
                              "max_queue = " + std::to_string(max_queue_));
    }
    ++waiting_;
    counters_->add_queued(1);
    while (free_.size() < n && !stop.cancelled() && !stop.expired()) freed_.wait_for(&mu_, kPollInterval);
    --waiting_;
    counters_->add_queued(-1);
    if (free_.size() < n) {
      if (stop.cancelled()) throw Error::cancelled("request cancelled while waiting for a GGUF slot");
      throw Error::timeout("deadline passed while waiting for a GGUF slot");
    }
  }
  std::vector<Slot*> taken(free_.end() - static_cast<ptrdiff_t>(n), free_.end());
  free_.resize(free_.size() - n);
  return taken;
}

void SlotPool::release(Slot* slot) {
  {
    internal::MutexLock lock(&mu_);
    free_.push_back(slot);
  }
  freed_.notify_all();  // a waiter for several slots may not be the one this completes
}

}  // namespace kapsl::gguf
