#include "onnx/run_watcher.h"

#include <algorithm>

namespace kapsl::onnx {

// Lists the thread's slot on its first run and unlists it when the thread exits.
class RunWatcher::SlotHolder {
 public:
  SlotHolder() : slot_(std::make_shared<Slot>()) { RunWatcher::instance().list(slot_); }
  SlotHolder(const SlotHolder&) = delete;
  SlotHolder& operator=(const SlotHolder&) = delete;
  ~SlotHolder() { RunWatcher::instance().unlist(slot_.get()); }
  Slot* get() const { return slot_.get(); }

 private:
  std::shared_ptr<Slot> slot_;
};

RunWatcher::Watch::Watch(Ort::RunOptions& run, std::span<const InferenceRequest> requests) {
  thread_local SlotHolder holder;
  slot_ = holder.get();
  slot_->run = &run;
  slot_->requests = requests;
  slot_->terminated = false;
  // Sequentially consistent, as is wake_if_parked's load of parked_ and the watcher's side
  // (parked_ stored, then the slots read): either the watcher sees this run, or this run
  // sees the watcher parked and wakes it.
  slot_->state.store(Slot::kRunning, std::memory_order_seq_cst);
  RunWatcher::instance().wake_if_parked();
}

RunWatcher::Watch::~Watch() {
  int expected = Slot::kRunning;
  while (!slot_->state.compare_exchange_weak(expected, Slot::kIdle, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
    expected = Slot::kRunning;  // the watcher is checking this slot: it is done in moments
    std::this_thread::yield();
  }
  // A terminated RunOptions is cleared so that it can serve the next run (the engine keeps
  // one per thread).
  if (slot_->terminated) {
    try {
      slot_->run->UnsetTerminate();
    } catch (const Ort::Exception&) {
      // Cannot fail in practice; a later run would then stop with kInference, not crash.
    }
  }
  slot_->run = nullptr;
  slot_->requests = {};
  slot_->terminated = false;
}

RunWatcher& RunWatcher::instance() {
  static RunWatcher watcher;
  return watcher;
}

RunWatcher::~RunWatcher() {
  {
    internal::MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RunWatcher::list(const std::shared_ptr<Slot>& slot) {
  internal::MutexLock lock(&mu_);
  slots_.push_back(slot);
  if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
}

void RunWatcher::unlist(const Slot* slot) {
  internal::MutexLock lock(&mu_);
  std::erase_if(slots_, [&](const auto& s) { return s.get() == slot; });
}

void RunWatcher::wake_if_parked() {
  if (!parked_.load()) return;
  {
    internal::MutexLock lock(&mu_);
    parked_.store(false);
  }
  cv_.notify_one();
}

bool RunWatcher::check_slots(Clock::time_point now) {
  bool watching = false;
  for (const auto& slot : slots_) {
    int expected = Slot::kRunning;
    if (!slot->state.compare_exchange_strong(expected, Slot::kChecking, std::memory_order_seq_cst)) {
      continue;  // no run on that thread now
    }
    watching = true;
    const bool stop = !slot->terminated &&
                      std::any_of(slot->requests.begin(), slot->requests.end(), [&](const InferenceRequest& r) {
                        return r.cancel.is_cancelled() || r.expired(now);
                      });
    if (stop) {
      try {
        slot->run->SetTerminate();  // documented as callable while Run is in progress
        slot->terminated = true;
      } catch (const Ort::Exception&) {
        // Cannot fail in practice; the next poll tries again.
      }
    }
    slot->state.store(Slot::kRunning, std::memory_order_release);
  }
  return watching;
}

void RunWatcher::loop() {
  internal::MutexLock lock(&mu_);
  Clock::time_point last_busy = Clock::now();
  while (!stop_) {
    const Clock::time_point now = Clock::now();
    if (check_slots(now)) {
      last_busy = now;
    } else if (now - last_busy >= kParkAfter) {
      // Publish "parked" before the last look: a run registered after that look sees it
      // and wakes the watcher (both sides use sequentially consistent atomics).
      parked_.store(true);
      if (!check_slots(Clock::now())) {
        while (!stop_ && parked_.load()) cv_.wait(&mu_);
      }
      parked_.store(false);
      last_busy = Clock::now();
      continue;
    }
    cv_.wait_for(&mu_, kPollInterval);
  }
}

}  // namespace kapsl::onnx
