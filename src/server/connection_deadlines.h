// ConnectionDeadlines: a whole-request deadline for reading each request — its headers and
// its body — whatever the client does, and the means to close every connection at once.
//
// Why. cpp-httplib's read timeout applies to each read, so a client sending a byte every
// few seconds holds an HTTP worker for ever, and stop() waits for every worker. Here every
// accepted connection is tracked from accept to close, with a clock running while a request
// is being read: from accept (or, on a keep-alive connection, from the end of the previous
// response) until the request has been read whole and routed. When the clock passes
// `read_timeout` a watchdog shuts the socket down (shutdown(2) on a duplicate of the
// descriptor, so that a descriptor number reused after close is never touched), the read
// fails and cpp-httplib drops the connection. Time spent in handlers and writing responses
// is not counted: the server's own limits bound it.
//
// When a response ends. cpp-httplib calls its logger before it writes the response, so
// response_done() from the logger would start the next clock while a large body is still
// on its way. Streamed responses therefore call response_done() themselves when they end
// (the logger skips them), and a clock that runs out while the socket still holds unsent
// bytes of the last response is extended by `read_timeout`, as long as the client keeps
// taking them (acknowledging at least kMinDrainBytes per timeout; socket_progress.h): a
// slow reader of a large answer is not cut, one that stops reading is.
//
// How it is told. cpp-httplib offers no accept hook, so its one accept4() call is renamed
// at build time (src/server/CMakeLists.txt) to kapsl_httplib_accept4(), which reports the
// new socket to the ConnectionDeadlines of the listener thread that accepted it
// (listen_on_this_thread). Each accepted connection gets a serial number (descriptor
// numbers are reused as soon as cpp-httplib closes one); the task queue (make_task_queue)
// hands each connection's job to a worker with that serial, so the hooks a worker runs —
// request_read() once a request is routed, response_done() after its response — know their
// connection. A socket that cannot be tracked (no descriptor left to duplicate) is closed at
// once and cpp-httplib sees EMFILE, as if the accept had failed.
//
// Thread-safety: safe for concurrent use without external synchronization. The destructor
// joins the watchdog. REQUIRES: no connection job outlives the object (destroy the
// httplib::Server, or stop() it, first).
#ifndef KAPSL_SRC_SERVER_CONNECTION_DEADLINES_H_
#define KAPSL_SRC_SERVER_CONNECTION_DEADLINES_H_

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <thread>

#include "core/mutex.h"
#include "kapsl/request.h"

namespace kapsl::server {

class ConnectionDeadlines {
 public:
  explicit ConnectionDeadlines(std::chrono::milliseconds read_timeout);
  ConnectionDeadlines(const ConnectionDeadlines&) = delete;
  ConnectionDeadlines& operator=(const ConnectionDeadlines&) = delete;
  ~ConnectionDeadlines();

  // Makes the calling thread's accepts report to *this, for the thread's lifetime (call it
  // on the thread that runs httplib::Server::listen_after_bind).
  void listen_on_this_thread();

  // The task queue for httplib::Server::new_task_queue: a thread pool of `threads` workers
  // growing to `max_threads` while all are busy, whose jobs carry their connection. The
  // server owns and deletes it.
  httplib::TaskQueue* make_task_queue(size_t threads, size_t max_threads);

  // --- Called by the hooks, on the connection's worker thread. Never throw.
  // The current request has been read whole: its clock stops.
  void request_read() noexcept;
  // Its response is written: the clock of the connection's next request starts.
  void response_done() noexcept;

  // Shuts down every open connection (for the end of a shutdown: workers blocked on a slow
  // client return at once). Never throws.
  void close_all() noexcept;

  // Connections closed because a request took too long to arrive. Never throws.
  uint64_t timeouts() const noexcept { return timeouts_.load(std::memory_order_relaxed); }
  // Connections open now. Never throws.
  size_t open_connections() const;

  // --- Internal: reported by the accept hook, on the listener thread. False if the socket
  // cannot be tracked (the caller closes it).
  bool accepted(int fd) noexcept;

  // A client taking the last response slower than this per read timeout is cut.
  static constexpr int kMinDrainBytes = 16 << 10;

 private:
  class Queue;
  struct Connection {
    int dup_fd = -1;                        // our own descriptor of the socket
    std::optional<Clock::time_point> due;   // while a request is being read
    std::optional<uint64_t> acked;          // bytes the client had acknowledged at the last
                                            // extension; none since the clock was armed
    bool closed = false;                    // shut down by us
  };

  void begin_job(uint64_t id) LOCKS_EXCLUDED(mu_);
  void end_job(uint64_t id) LOCKS_EXCLUDED(mu_);
  // The connection accepted last on this listener and not yet given to a job, or 0.
  uint64_t take_accepted() LOCKS_EXCLUDED(mu_);
  void arm(uint64_t id, bool running) LOCKS_EXCLUDED(mu_);
  // At its deadline: extended if the client is still taking the last response, else closed.
  void expire(Connection& c, Clock::time_point now) EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void watch();

  const std::chrono::milliseconds read_timeout_;
  std::atomic<uint64_t> timeouts_{0};
  mutable internal::Mutex mu_;
  internal::CondVar wake_;
  std::map<uint64_t, Connection> connections_ GUARDED_BY(mu_);  // by serial number
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  uint64_t pending_ GUARDED_BY(mu_) = 0;  // accepted, not yet enqueued
  bool stopping_ GUARDED_BY(mu_) = false;
  // When the watchdog wakes next: a deadline later than it needs no wake-up (most do not,
  // so a request costs no context switch to the watchdog).
  Clock::time_point next_wake_ GUARDED_BY(mu_) = Clock::time_point::min();
  std::thread watchdog_;  // last: started once everything above exists
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_CONNECTION_DEADLINES_H_
