// RunningCalls: the model calls running now, each with its cancellation token and a way to
// tell whether its client is still there — so that a client that goes away cancels its work
// (every route, streaming or not, KServe or OpenAI), and shutdown can cancel what is left.
//
// A watcher thread asks each call's client_gone() every poll interval (cpp-httplib's
// Request::is_connection_closed: a zero-timeout poll and a one-byte peek on the socket) and
// cancels the token of a call whose client has closed its connection. Streaming routes
// also learn it from a failed write; this catches requests that write nothing until they
// finish.
//
// Thread-safety: safe for concurrent use without external synchronization. REQUIRES: a
// call's client_gone stays callable until remove() returns for it (the handler's request
// outlives its ModelCall).
#ifndef KAPSL_SRC_SERVER_RUNNING_CALLS_H_
#define KAPSL_SRC_SERVER_RUNNING_CALLS_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <thread>

#include "core/mutex.h"
#include "kapsl/request.h"

namespace kapsl::server {

class RunningCalls {
 public:
  explicit RunningCalls(std::chrono::milliseconds poll_interval = std::chrono::milliseconds(50));
  RunningCalls(const RunningCalls&) = delete;
  RunningCalls& operator=(const RunningCalls&) = delete;
  // Joins the watcher.
  ~RunningCalls();

  // Registers a call; returns its id (never 0). `client_gone` may be empty (no watching).
  uint64_t add(CancellationToken token, std::function<bool()> client_gone);
  void remove(uint64_t id);
  // Cancels every running call (shutdown). Returns how many there were.
  size_t cancel_all();
  // Calls cancelled because their client went away. Never throws.
  uint64_t client_cancellations() const noexcept { return client_cancellations_.load(std::memory_order_relaxed); }

 private:
  struct Call {
    CancellationToken token;
    std::function<bool()> client_gone;
  };
  void watch();

  const std::chrono::milliseconds poll_interval_;
  std::atomic<uint64_t> client_cancellations_{0};
  internal::Mutex mu_;
  internal::CondVar wake_;
  std::map<uint64_t, Call> calls_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  bool stopping_ GUARDED_BY(mu_) = false;
  bool idle_ GUARDED_BY(mu_) = false;  // the watcher waits for a first call (add() wakes it)
  std::thread watcher_;  // last: started once everything above exists
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_RUNNING_CALLS_H_
