// What the kernel knows of a TCP socket's outgoing data: bytes not yet taken by the peer
// (SIOCOUTQ) and bytes the peer has acknowledged so far (TCP_INFO's tcpi_bytes_acked).
// ConnectionDeadlines asks them to tell a client still receiving its last response from
// one that stalls. In a file of its own: <linux/tcp.h>, which has tcpi_bytes_acked, cannot
// share a translation unit with glibc's <netinet/tcp.h>, which cpp-httplib includes.
//
// Thread-safety: free functions over a descriptor; safe for concurrent use.
#ifndef KAPSL_SRC_SERVER_SOCKET_PROGRESS_H_
#define KAPSL_SRC_SERVER_SOCKET_PROGRESS_H_

#include <cstdint>

namespace kapsl::server {

struct SocketProgress {
  uint64_t unsent = 0;  // queued and not yet acknowledged by the peer
  uint64_t acked = 0;   // acknowledged by the peer since the connection opened
};

// The socket's progress; all zero if `fd` is not a TCP socket or cannot be asked.
SocketProgress socket_progress(int fd) noexcept;

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_SOCKET_PROGRESS_H_
