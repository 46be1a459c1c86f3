#include "server/connection_watch.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "kapsl/error.h"

namespace kapsl::server {
namespace {

constexpr uint64_t kWakeId = 0;

struct DirCloser {
  void operator()(DIR* d) const noexcept { closedir(d); }
};

// The numeric address and port of a socket address; false for families other than IP.
bool address_and_port(const sockaddr_storage& a, std::string* address, int* port) {
  char text[INET6_ADDRSTRLEN] = {};
  const void* raw = nullptr;
  if (a.ss_family == AF_INET) {
    const auto& v4 = reinterpret_cast<const sockaddr_in&>(a);
    *port = ntohs(v4.sin_port);
    raw = &v4.sin_addr;
  } else if (a.ss_family == AF_INET6) {
    const auto& v6 = reinterpret_cast<const sockaddr_in6&>(a);
    *port = ntohs(v6.sin6_port);
    raw = &v6.sin6_addr;
  } else {
    return false;
  }
  if (inet_ntop(a.ss_family, raw, text, sizeof text) == nullptr) return false;
  *address = text;
  return true;
}

bool is_connection(int fd, const std::string& remote_addr, int remote_port, int local_port) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  std::string address;
  int port = 0;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0 || !address_and_port(a, &address, &port) ||
      port != remote_port || address != remote_addr) {
    return false;
  }
  len = sizeof a;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0 && address_and_port(a, &address, &port) &&
         port == local_port;
}

// The descriptor of the connection, or -1.
int find_connection(const std::string& remote_addr, int remote_port, int local_port) {
  std::unique_ptr<DIR, DirCloser> dir(opendir("/proc/self/fd"));
  if (!dir) return -1;
  while (const dirent* e = readdir(dir.get())) {
    char* end = nullptr;
    const long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0') continue;
    if (is_connection(static_cast<int>(fd), remote_addr, remote_port, local_port)) return static_cast<int>(fd);
  }
  return -1;
}

}  // namespace

ConnectionWatch::ConnectionWatch() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeId;
  if (epoll_fd_ < 0 || wake_fd_ < 0 || epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0) {
    const std::string why = std::strerror(errno);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    throw Error::backend("cannot watch client connections", why);
  }
  thread_ = std::thread([this] { run(); });
}

ConnectionWatch::~ConnectionWatch() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
  thread_.join();
  close(wake_fd_);
  close(epoll_fd_);
}

std::unique_ptr<ConnectionWatch::Registration> ConnectionWatch::watch(const std::string& remote_addr, int remote_port,
                                                                      int local_port, CancellationToken token) {
  const int fd = find_connection(remote_addr, remote_port, local_port);
  if (fd < 0) return nullptr;
  uint64_t id = 0;
  {
    internal::MutexLock lock(&mu_);
    id = next_id_++;
    watched_.emplace(id, std::move(token));
  }
  // One-shot: a closed peer would otherwise be reported again on every wait.
  epoll_event ev{};
  ev.events = EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = id;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    internal::MutexLock lock(&mu_);
    watched_.erase(id);
    return nullptr;
  }
  return std::make_unique<Registration>(this, id, fd);
}

void ConnectionWatch::unwatch(uint64_t id, int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  internal::MutexLock lock(&mu_);
  watched_.erase(id);
}

void ConnectionWatch::run() {
  epoll_event events[16];
  while (true) {
    const int n = epoll_wait(epoll_fd_, events, 16, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return;
    internal::MutexLock lock(&mu_);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeId) return;
      if (auto it = watched_.find(events[i].data.u64); it != watched_.end()) it->second.cancel();
    }
  }
}

}  // namespace kapsl::server
