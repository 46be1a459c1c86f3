#include "server/running_calls.h"

#include <utility>

namespace kapsl::server {

using internal::MutexLock;

RunningCalls::RunningCalls(std::chrono::milliseconds poll_interval)
    : poll_interval_(poll_interval), watcher_([this] { watch(); }) {}

RunningCalls::~RunningCalls() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  watcher_.join();
}

uint64_t RunningCalls::add(CancellationToken token, std::function<bool()> client_gone) {
  uint64_t id = 0;
  bool wake = false;
  {
    MutexLock lock(&mu_);
    id = next_id_++;
    calls_.emplace(id, Call{std::move(token), std::move(client_gone)});
    wake = std::exchange(idle_, false);
  }
  // Only an idle watcher is woken: a polling one sees the call at its next round, so a
  // request costs no context switch to the watcher.
  if (wake) wake_.notify_one();
  return id;
}

void RunningCalls::remove(uint64_t id) {
  MutexLock lock(&mu_);
  calls_.erase(id);
}

size_t RunningCalls::cancel_all() {
  MutexLock lock(&mu_);
  for (auto& [id, call] : calls_) call.token.cancel();
  return calls_.size();
}

void RunningCalls::watch() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    // Idle until a call arrives; then poll. The checks are two system calls each, made
    // under the lock so that remove() cannot race them.
    if (calls_.empty()) {
      idle_ = true;
      wake_.wait(&mu_);
      continue;
    }
    // Check once per interval (a call is checked at most one interval after it starts,
    // by when most have finished); add() does not wake a polling watcher.
    wake_.wait_for(&mu_, poll_interval_);
    for (auto& [id, call] : calls_) {
      if (!call.client_gone || call.token.is_cancelled() || !call.client_gone()) continue;
      call.token.cancel();
      client_cancellations_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

}  // namespace kapsl::server
