#include "onnx/run_watcher.h"

#include <algorithm>

namespace kapsl::onnx {

RunWatcher::Watch::Watch(Ort::RunOptions& run, std::span<const InferenceRequest> requests)
    : run_(&run), requests_(requests) {
  RunWatcher::instance().add(this);
}

RunWatcher::Watch::~Watch() {
  RunWatcher::instance().remove(this);
  // Removed, the watcher no longer touches terminated_ or run_. A terminated RunOptions is
  // cleared so that it can serve the next run (the engine keeps one per thread).
  if (terminated_) {
    try {
      run_->UnsetTerminate();
    } catch (const Ort::Exception&) {
      // Cannot fail in practice; a later run would then stop with kInference, not crash.
    }
  }
}

RunWatcher& RunWatcher::instance() {
  static RunWatcher watcher;
  return watcher;
}

RunWatcher::~RunWatcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RunWatcher::add(Watch* w) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    watches_.push_back(w);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    wake = parked_;
    parked_ = false;
  }
  if (wake) cv_.notify_one();
}

void RunWatcher::remove(Watch* w) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = std::find(watches_.begin(), watches_.end(), w);
  if (it != watches_.end()) {
    *it = watches_.back();
    watches_.pop_back();
  }
}

void RunWatcher::check_locked(Clock::time_point now) {
  for (Watch* w : watches_) {
    if (w->terminated_) continue;
    const bool stop = std::any_of(w->requests_.begin(), w->requests_.end(), [&](const InferenceRequest& r) {
      return r.cancel.is_cancelled() || r.expired(now);
    });
    if (stop) {
      try {
        w->run_->SetTerminate();  // documented as callable while Run is in progress
      } catch (const Ort::Exception&) {
        continue;  // cannot fail in practice; the next poll tries again
      }
      w->terminated_ = true;
    }
  }
}

void RunWatcher::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  Clock::time_point last_busy = Clock::now();
  while (!stop_) {
    const Clock::time_point now = Clock::now();
    if (!watches_.empty()) {
      last_busy = now;
      check_locked(now);
    } else if (now - last_busy >= kParkAfter) {
      parked_ = true;
      cv_.wait(lock, [this] { return stop_ || !parked_; });
      last_busy = Clock::now();
      continue;
    }
    cv_.wait_for(lock, kPollInterval);
  }
}

}  // namespace kapsl::onnx
