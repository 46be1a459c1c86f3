#include "server/connection_deadlines.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <utility>

namespace kapsl::server {
namespace {

// The ConnectionDeadlines of the listener thread that runs on this thread, if any.
thread_local ConnectionDeadlines* t_listener = nullptr;
// The connection the job running on this worker thread serves, or -1.
thread_local int t_connection = -1;

constexpr auto kIdleCheck = std::chrono::seconds(1);  // the watchdog's longest sleep

}  // namespace
}  // namespace kapsl::server

// cpp-httplib's accept4() call, renamed at build time (see the header comment): accepts,
// then tells the listener thread's ConnectionDeadlines.
extern "C" int kapsl_httplib_accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  const int accepted = ::accept4(fd, addr, len, flags);
  if (accepted >= 0 && kapsl::server::t_listener != nullptr) kapsl::server::t_listener->accepted(accepted);
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
    const int fd = owner_->take_accepted();
    ConnectionDeadlines* owner = owner_;
    const bool queued = pool_.enqueue([owner, fd, job = std::move(job)] {
      owner->begin_job(fd);
      job();
      owner->end_job(fd);
    });
    if (!queued && fd >= 0) owner_->end_job(fd);  // httplib closes the socket itself
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
    for (auto& [fd, c] : connections_) {
      if (c.dup_fd >= 0) ::close(c.dup_fd);
    }
    connections_.clear();
  }
  wake_.notify_all();
  watchdog_.join();
}

void ConnectionDeadlines::listen_on_this_thread() { t_listener = this; }

httplib::TaskQueue* ConnectionDeadlines::make_task_queue(size_t threads, size_t max_threads) {
  return new Queue(this, threads, max_threads);
}

void ConnectionDeadlines::accepted(int fd) noexcept {
  // A descriptor of our own: shutting it down reaches this socket even after httplib has
  // closed its descriptor and the number was given to another.
  const int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
  {
    MutexLock lock(&mu_);
    if (auto old = connections_.find(fd); old != connections_.end() && old->second.dup_fd >= 0) {
      ::close(old->second.dup_fd);  // a job that never ran (the queue refused it)
    }
    const auto due = Clock::now() + read_timeout_;
    connections_[fd] = Connection{dup_fd, due, false};
    pending_ = fd;
    if (due >= next_wake_) return;
  }
  wake_.notify_one();
}

int ConnectionDeadlines::take_accepted() {
  MutexLock lock(&mu_);
  return std::exchange(pending_, -1);
}

void ConnectionDeadlines::begin_job(int fd) { t_connection = fd; }

void ConnectionDeadlines::end_job(int fd) {
  t_connection = -1;
  if (fd < 0) return;
  MutexLock lock(&mu_);
  auto it = connections_.find(fd);
  if (it == connections_.end()) return;
  if (it->second.dup_fd >= 0) ::close(it->second.dup_fd);
  connections_.erase(it);
}

void ConnectionDeadlines::arm(int fd, bool running) {
  if (fd < 0) return;
  {
    MutexLock lock(&mu_);
    auto it = connections_.find(fd);
    if (it == connections_.end()) return;
    it->second.due = running ? std::optional(Clock::now() + read_timeout_) : std::nullopt;
    if (!running || *it->second.due >= next_wake_) return;
  }
  wake_.notify_one();
}

void ConnectionDeadlines::request_read() noexcept { arm(t_connection, false); }

void ConnectionDeadlines::response_done() noexcept { arm(t_connection, true); }

void ConnectionDeadlines::close_all() noexcept {
  MutexLock lock(&mu_);
  for (auto& [fd, c] : connections_) {
    if (c.dup_fd >= 0 && !c.closed) ::shutdown(c.dup_fd, SHUT_RDWR);
    c.closed = true;
  }
}

size_t ConnectionDeadlines::open_connections() const {
  MutexLock lock(&mu_);
  return connections_.size();
}

void ConnectionDeadlines::watch() {
  MutexLock lock(&mu_);
  while (!stopping_) {
    const auto now = Clock::now();
    auto next = now + kIdleCheck;
    for (auto& [fd, c] : connections_) {
      if (c.closed || !c.due) continue;
      if (*c.due <= now) {
        if (c.dup_fd >= 0) ::shutdown(c.dup_fd, SHUT_RDWR);
        c.closed = true;
        timeouts_.fetch_add(1, std::memory_order_relaxed);
      } else {
        next = std::min(next, *c.due);
      }
    }
    next_wake_ = next;
    wake_.wait_until(&mu_, next);
  }
}

}  // namespace kapsl::server
