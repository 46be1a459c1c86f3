// ConnectionWatch: cancels a request whose client has gone away.
//
// A streamed response notices a departed client when a write fails; a non-streaming one
// writes nothing until the end, so without this it would generate for nobody. cpp-httplib
// (0.11, Debian 12) does not show a handler its connection, so the watch finds the
// socket itself: the process's socket whose peer is the request's remote address and port
// and whose local port is the request's. One thread waits (epoll, EPOLLRDHUP) on every
// watched socket and cancels the request's token when the peer closes its end.
//
// A client that half-closes (shutdown(SHUT_WR)) after sending its request is taken for
// gone; HTTP clients (curl, browsers, the openai package) do not do that.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_CONNECTION_WATCH_H_
#define KAPSL_SRC_SERVER_CONNECTION_WATCH_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/request.h"

namespace kapsl::server {

class ConnectionWatch {
 public:
  // While it lives, the connection is watched. Destroy it before the handler returns (the
  // socket, which it does not own, is open until then).
  class Registration {
   public:
    Registration(ConnectionWatch* watch, uint64_t id, int fd) : watch_(watch), id_(id), fd_(fd) {}
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    ~Registration() { watch_->unwatch(id_, fd_); }

   private:
    ConnectionWatch* watch_;
    uint64_t id_;
    int fd_;
  };

  // Starts the watching thread. Throws Error(kBackend) if epoll cannot be set up.
  ConnectionWatch();
  ConnectionWatch(const ConnectionWatch&) = delete;
  ConnectionWatch& operator=(const ConnectionWatch&) = delete;
  ~ConnectionWatch();

  // Watches the TCP connection from `remote_addr`:`remote_port` to local port `local_port`
  // and cancels `token` (a copy shares its state) when the peer closes it. Returns null if
  // no such socket is open (the request then runs unwatched).
  std::unique_ptr<Registration> watch(const std::string& remote_addr, int remote_port, int local_port,
                                      CancellationToken token);

 private:
  void run();
  void unwatch(uint64_t id, int fd);

  int epoll_fd_ = -1;
  int wake_fd_ = -1;  // an eventfd that ends run()
  // mu_ guards the watched tokens and the id counter.
  internal::Mutex mu_;
  std::map<uint64_t, CancellationToken> watched_ GUARDED_BY(mu_);
  uint64_t next_id_ GUARDED_BY(mu_) = 1;
  std::thread thread_;
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_CONNECTION_WATCH_H_
