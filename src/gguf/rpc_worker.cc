// serve_rpc_worker: ggml's RPC server (ggml_backend_rpc_start_server) on the devices named,
// after checking what it would otherwise only print and return on.
#include "kapsl/rpc_worker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/strings.h"
#include "ggml-backend.h"
#include "ggml-rpc.h"
#include "gguf/engine_impl.h"
#include "gguf/llama_backend.h"
#include "kapsl/error.h"

namespace kapsl {
namespace {

std::vector<ggml_backend_dev_t> worker_devices(const std::vector<std::string>& names) {
  std::vector<ggml_backend_dev_t> out;
  for (const auto& name : names) {
    ggml_backend_dev_t dev = ggml_backend_dev_by_name(name.c_str());
    if (dev == nullptr) {
      std::vector<std::string> known;
      for (size_t i = 0; i < ggml_backend_dev_count(); ++i) known.emplace_back(ggml_backend_dev_name(ggml_backend_dev_get(i)));
      throw Error::invalid_input("unknown device \"" + name + "\"", "this build has " + internal::join(known, ", "));
    }
    out.push_back(dev);
  }
  for (size_t i = 0; out.empty() && i < ggml_backend_dev_count(); ++i) {
    ggml_backend_dev_t dev = ggml_backend_dev_get(i);
    const auto type = ggml_backend_dev_type(dev);
    if (type == GGML_BACKEND_DEVICE_TYPE_GPU || type == GGML_BACKEND_DEVICE_TYPE_IGPU) out.push_back(dev);
  }
  if (out.empty()) out.push_back(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU));
  return out;
}

// ggml prints "Failed to create server socket" and returns when it cannot listen; binding
// here first turns that into an error that says why.
void check_can_listen(const RpcWorkerOptions& o) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(o.port);
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) {
    throw Error::invalid_input("invalid worker address \"" + o.host + "\"", "expected an IPv4 address");
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int yes = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);  // as ggml's server socket
  const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  if (!bound) {
    throw Error::unavailable("cannot listen on " + o.host + ":" + std::to_string(o.port), std::strerror(error));
  }
}

}  // namespace

void serve_rpc_worker(const RpcWorkerOptions& o) {
  gguf::ensure_llama_backend();
  if (o.n_threads < 0) throw Error::invalid_input("invalid worker threads", "expected >= 0 (0 = physical cores)");
  check_can_listen(o);
  std::vector<ggml_backend_dev_t> devices = worker_devices(o.devices);
  if (!o.cache_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.cache_dir, ec);
    if (ec) throw Error::invalid_input("cannot create the cache folder " + o.cache_dir, ec.message());
  }
  const std::string endpoint = o.host + ":" + std::to_string(o.port);
  const size_t threads = static_cast<size_t>(o.n_threads > 0 ? o.n_threads : gguf::physical_cores());
  ggml_backend_rpc_start_server(endpoint.c_str(), o.cache_dir.empty() ? nullptr : o.cache_dir.c_str(), threads,
                                devices.size(), devices.data());
  throw Error::unavailable("the RPC server on " + endpoint + " stopped", "see its output above");
}

}  // namespace kapsl
