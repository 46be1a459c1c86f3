#include "server/connection_deadlines.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <utility>

#include "server/socket_progress.h"

namespace kapsl::server {
namespace {

// The ConnectionDeadlines of the listener thread that runs on this thread, if any.
thread_local ConnectionDeadlines* t_listener = nullptr;
// The connection (serial number) the job running on this worker thread serves, or 0.
thread_local uint64_t t_connection = 0;

constexpr auto kIdleCheck = std::chrono::seconds(1);  // the watchdog's longest sleep

}  // namespace
}  // namespace kapsl::server

// cpp-httplib's accept4() call, renamed at build time (see the header comment): accepts,
// then tells the listener thread's ConnectionDeadlines.
extern "C" int kapsl_httplib_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int accepted = ::accept4(fd, addr, len, flags);
  if (accepted >= 0 && kapsl::server::t_listener != nullptr && !kapsl::server::t_listener->accepted(accepted)) {
    ::close(accepted);  // untracked, it would have no deadline: refused as if out of descriptors
    errno = EMFILE;
    return -1;
  }
  return accepted;
}

namespace kapsl::server {

using internal::MutexLock;

// A thread pool whose jobs record their connection on the worker thread that runs them.
class ConnectionDeadlines::Queue final : public httplib::TaskQueue {
 public:
  Queue(ConnectionDeadlines* owner, size_t threads, size_t max_threads)
      : owner_(owner), pool_(threads, std::max(threads, max_threads)) {}

  // Called by the listener right after the accept that `job` serves.
  bool enqueue(std::function<void()> job) override {
    const uint64_t id = owner_->take_accepted();
    ConnectionDeadlines* owner = owner_;
    const bool queued = pool_.enqueue([owner, id, job = std::move(job)] {
      owner->begin_job(id);
      job();
      owner->end_job(id);
    });
    if (!queued) owner_->end_job(id);  // httplib closes the socket itself
    return queued;
  }
  void shutdown() override { pool_.shutdown(); }
  void on_idle() override { pool_.on_idle(); }

 private:
  ConnectionDeadlines* const owner_;
  httplib::ThreadPool pool_;
};

ConnectionDeadlines::ConnectionDeadlines(std::chrono::milliseconds read_timeout)
    : read_timeout_(read_timeout), watchdog_([this] { watch(); }) {}

ConnectionDeadlines::~ConnectionDeadlines() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, c] : connections_) ::close(c.dup_fd);
    connections_.clear();
  }
  wake_.notify_all();
  watchdog_.join();
}

void ConnectionDeadlines::listen_on_this_thread() { t_listener = this; }

httplib::TaskQueue* ConnectionDeadlines::make_task_queue(size_t threads, size_t max_threads) {
  return new Queue(this, threads, max_threads);
}

bool ConnectionDeadlines::accepted(int fd) noexcept {
  // A descriptor of our own: shutting it down reaches this socket even after httplib has
  // closed its descriptor and the number was given to another.
  const int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup_fd < 0) return false;
  {
    MutexLock lock(&mu_);
    const uint64_t id = next_id_++;
    const auto due = Clock::now() + read_timeout_;
    connections_.emplace(id, Connection{dup_fd, due, std::nullopt, false});
    pending_ = id;
    if (due >= next_wake_) return true;
  }
  wake_.notify_one();
  return true;
}

uint64_t ConnectionDeadlines::take_accepted() {
  MutexLock lock(&mu_);
  return std::exchange(pending_, 0);
}

void ConnectionDeadlines::begin_job(uint64_t id) { t_connection = id; }

void ConnectionDeadlines::end_job(uint64_t id) {
  t_connection = 0;
  MutexLock lock(&mu_);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  ::close(it->second.dup_fd);
  connections_.erase(it);
}

void ConnectionDeadlines::arm(uint64_t id, bool running) {
  if (id == 0) return;
  {
    MutexLock lock(&mu_);
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& c = it->second;
    c.due = running ? std::optional(Clock::now() + read_timeout_) : std::nullopt;
    c.acked.reset();
    if (!running || *c.due >= next_wake_) return;
  }
  wake_.notify_one();
}

void ConnectionDeadlines::request_read() noexcept { arm(t_connection, false); }

void ConnectionDeadlines::response_done() noexcept { arm(t_connection, true); }

void ConnectionDeadlines::close_all() noexcept {
  MutexLock lock(&mu_);
  for (auto& [id, c] : connections_) {
    if (!c.closed) ::shutdown(c.dup_fd, SHUT_RDWR);
    c.closed = true;
  }
}

size_t ConnectionDeadlines::open_connections() const {
  MutexLock lock(&mu_);
  return connections_.size();
}

void ConnectionDeadlines::expire(Connection& c, Clock::time_point now) {
  const SocketProgress p = socket_progress(c.dup_fd);
  const bool taking = p.unsent > 0 && (!c.acked || p.acked - *c.acked >= kMinDrainBytes);
  if (taking) {  // still receiving the last response: its next request has not begun
    c.acked = p.acked;
    c.due = now + read_timeout_;
    return;
  }
  ::shutdown(c.dup_fd, SHUT_RDWR);
  c.closed = true;
  timeouts_.fetch_add(1, std::memory_order_relaxed);
}

void ConnectionDeadlines::watch() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    const auto now = Clock::now();
    auto next = now + kIdleCheck;
    for (auto& [id, c] : connections_) {
      if (c.closed || !c.due) continue;
      if (*c.due <= now) expire(c, now);
      if (!c.closed) next = std::min(next, *c.due);
    }
    next_wake_ = next;
    wake_.wait_until(&mu_, next);
  }
}

}  // namespace kapsl::server
