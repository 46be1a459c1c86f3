// check_rpc_worker speaks the first exchange of ggml-rpc's protocol (ggml-rpc.cpp, protocol
// 7): the client sends | cmd HELLO (1 byte) | size (u64) | conn_caps (24 bytes) | and the
// server answers | size (u64) | major, minor, patch, pad | conn_caps (24 bytes) |, all
// little-endian. Zero caps ask for plain TCP.
#include "gguf/rpc_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "core/strings.h"
#include "ggml-rpc.h"
#include "gguf/llama_backend.h"
#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint8_t kHelloCommand = 14;
constexpr size_t kConnCapsSize = 24;

class Connection {
 public:
  Connection(const RpcEndpoint& worker, Clock::time_point deadline) : worker_(worker), deadline_(deadline) {}
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void open() {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(worker_.port);
    if (getaddrinfo(worker_.host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
      throw fail("cannot resolve the host");
    }
    std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw fail(std::string("socket: ") + std::strerror(errno));
    if (::connect(fd_, found->ai_addr, found->ai_addrlen) != 0 && errno != EINPROGRESS) {
      throw fail(std::strerror(errno));
    }
    wait_for(POLLOUT, "connecting");
    int error = 0;
    socklen_t len = sizeof error;
    getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &len);
    if (error != 0) throw fail(std::strerror(error));
  }

  void write_all(const uint8_t* data, size_t size) {
    while (size > 0) {
      wait_for(POLLOUT, "sending the handshake");
      const ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) throw fail(std::string("send: ") + std::strerror(errno));
      if (n > 0) data += n, size -= static_cast<size_t>(n);
    }
  }

  void read_all(uint8_t* data, size_t size) {
    while (size > 0) {
      wait_for(POLLIN, "waiting for the handshake's answer");
      const ssize_t n = ::recv(fd_, data, size, 0);
      if (n == 0) throw fail("it closed the connection during the handshake (not a ggml-rpc server, or busy failing)");
      if (n < 0 && errno != EAGAIN && errno != EINTR) throw fail(std::string("recv: ") + std::strerror(errno));
      if (n > 0) data += n, size -= static_cast<size_t>(n);
    }
  }

  Error fail(const std::string& why) const {
    return Error::unavailable("RPC worker " + worker_.text() + " is not usable", why);
  }

 private:
  void wait_for(short events, const char* what) {
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - Clock::now()).count();
      if (left <= 0) throw fail(std::string("no progress ") + what + " within the timeout (rpc_timeout_ms)");
      pollfd p{fd_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
      if (rc > 0) return;
      if (rc < 0 && errno != EINTR) throw fail(std::string("poll: ") + std::strerror(errno));
    }
  }

  const RpcEndpoint& worker_;
  Clock::time_point deadline_;
  int fd_ = -1;
};

}  // namespace

RpcEndpoint parse_rpc_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  const auto bad = [&](const std::string& why) {
    return Error::invalid_input("invalid RPC worker \"" + text + "\"", "expected host:port, " + why);
  };
  if (colon == std::string::npos || colon == 0) throw bad("no host or port");
  const std::string port = text.substr(colon + 1);
  const bool digits = std::all_of(port.begin(), port.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
  if (port.empty() || port.size() > 5 || !digits) throw bad("bad port");
  const int number = std::stoi(port);
  if (number < 1 || number > 65535) throw bad("port out of range");
  return RpcEndpoint{text.substr(0, colon), static_cast<uint16_t>(number)};
}

void check_rpc_worker(const RpcEndpoint& worker, std::chrono::milliseconds timeout) {
  Connection c(worker, Clock::now() + timeout);
  c.open();
  std::array<uint8_t, 1 + 8 + kConnCapsSize> hello{};
  hello[0] = kHelloCommand;
  const uint64_t request_size = kConnCapsSize;
  std::memcpy(hello.data() + 1, &request_size, sizeof request_size);
  c.write_all(hello.data(), hello.size());
  std::array<uint8_t, 8 + 4 + kConnCapsSize> answer{};
  c.read_all(answer.data(), 8);
  uint64_t answer_size = 0;
  std::memcpy(&answer_size, answer.data(), sizeof answer_size);
  if (answer_size != answer.size() - 8) {
    throw c.fail("its handshake answer is " + std::to_string(answer_size) + " bytes, not " +
                 std::to_string(answer.size() - 8) + " (another ggml-rpc protocol version?)");
  }
  c.read_all(answer.data() + 8, answer.size() - 8);
  const int major = answer[8], minor = answer[9], patch = answer[10];
  if (major != RPC_PROTO_MAJOR_VERSION || minor > RPC_PROTO_MINOR_VERSION) {
    throw c.fail("it speaks ggml-rpc " + std::to_string(major) + "." + std::to_string(minor) + "." +
                 std::to_string(patch) + ", this build " + std::to_string(RPC_PROTO_MAJOR_VERSION) + "." +
                 std::to_string(RPC_PROTO_MINOR_VERSION) + ".x");
  }
}

std::vector<ggml_backend_dev_t> rpc_worker_devices(const RpcEndpoint& worker) {
  ensure_llama_backend();
  const std::string endpoint = worker.text();
  // ggml keeps one registry per endpoint for the life of the process.
  ggml_backend_reg_t reg = ggml_backend_rpc_add_server(endpoint.c_str());
  std::vector<ggml_backend_dev_t> devices;
  for (size_t i = 0; reg != nullptr && i < ggml_backend_reg_dev_count(reg); ++i) {
    devices.push_back(ggml_backend_reg_dev_get(reg, i));
  }
  if (devices.empty()) throw Error::unavailable("RPC worker " + endpoint + " offers no device");
  return devices;
}

std::optional<Error> rpc_workers_lost(const std::vector<std::string>& workers) {
  std::vector<std::string> lost;
  for (const auto& w : workers) {
    if (ggml_backend_rpc_lost(w.c_str())) lost.push_back(w);
  }
  if (lost.empty()) return std::nullopt;
  return Error::unavailable("RPC worker " + internal::join(lost, ", ") + " stopped answering",
                            "the model's layers there are gone; the engine is unhealthy and is loaded again once the "
                            "worker answers");
}

void throw_if_rpc_workers_lost(const std::vector<std::string>& workers) {
  if (auto error = rpc_workers_lost(workers)) throw *error;
}

std::vector<GgufPlacement> layer_placement(uint32_t n_layer, int32_t n_offloaded, const std::vector<float>& shares,
                                           const std::vector<std::string>& names,
                                           const std::vector<std::string>& hosts) {
  const int all = static_cast<int>(n_layer) + 1;  // the repeating layers and the output
  const int n_gpu = n_offloaded < 0 ? all : n_offloaded;
  const int gpu_start = std::max(all - n_gpu, 0);
  const int active = shares.empty() ? 0 : std::min(n_gpu, all);
  std::vector<float> splits(shares.size());
  float sum = 0;
  for (size_t i = 0; i < shares.size(); ++i) splits[i] = sum += shares[i];
  for (size_t i = 0; i < splits.size(); ++i) splits[i] = sum > 0 ? splits[i] / sum : float(i + 1) / splits.size();
  std::vector<GgufPlacement> out;
  for (int il = 0; il < all; ++il) {
    size_t d = names.size();  // the CPU
    if (il >= gpu_start && il - gpu_start < active) {
      const float at = static_cast<float>(il - gpu_start) / static_cast<float>(active);
      d = static_cast<size_t>(std::upper_bound(splits.begin(), splits.end(), at) - splits.begin());
    }
    const std::string device = d < names.size() ? names[d] : "CPU";
    const std::string host = d < hosts.size() ? hosts[d] : "";
    if (out.empty() || out.back().device != device || out.back().host != host) {
      out.push_back({device, host, static_cast<uint32_t>(il), 0, false, false});
    }
    if (il < static_cast<int>(n_layer)) out.back().n_layers++;
    else out.back().output = true;
  }
  if (out.front().device != "CPU" || !out.front().host.empty()) out.insert(out.begin(), {"CPU", "", 0, 0, false, false});
  out.front().input = true;
  return out;
}

std::string describe_placement(const std::vector<GgufPlacement>& placement) {
  std::string out;
  for (const GgufPlacement& p : placement) {
    std::vector<std::string> parts;
    if (p.input) parts.push_back("input");
    if (p.n_layers == 1) parts.push_back("layer " + std::to_string(p.first_layer));
    if (p.n_layers > 1) {
      parts.push_back("layers " + std::to_string(p.first_layer) + "-" + std::to_string(p.first_layer + p.n_layers - 1));
    }
    if (p.output) parts.push_back("output");
    out += (out.empty() ? "" : "; ") + p.device + (p.host.empty() ? "" : " (" + p.host + ")") + ": " +
           internal::join(parts, ", ");
  }
  return out;
}

}  // namespace kapsl::gguf
