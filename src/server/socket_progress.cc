#include "server/socket_progress.h"

#include <linux/sockios.h>
#include <netinet/in.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

namespace kapsl::server {

SocketProgress socket_progress(int fd) noexcept {
  SocketProgress p;
  int unsent = 0;
  if (::ioctl(fd, SIOCOUTQ, &unsent) == 0 && unsent > 0) p.unsent = static_cast<uint64_t>(unsent);
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 && len >= sizeof info) p.acked = info.tcpi_bytes_acked;
  return p;
}

}  // namespace kapsl::server
