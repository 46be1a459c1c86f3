// The client side of GgufOptions::rpc_workers: each worker checked, then its devices, and
// the split of the model's layers over all the devices an engine uses.
//
// ggml's RPC client ends the process (ggml_abort) when it cannot connect, and waits for
// ever on a worker that accepted the connection but says nothing. So before llama.cpp
// connects, check_rpc_worker does ggml-rpc's handshake itself, with a deadline, and turns
// those cases into errors. A worker lost later is reported by lost_rpc_workers.
//
// Thread-safety: the functions are safe for concurrent use.
#ifndef KAPSL_SRC_GGUF_RPC_CLIENT_H_
#define KAPSL_SRC_GGUF_RPC_CLIENT_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ggml-backend.h"
#include "kapsl/error.h"
#include "kapsl/gguf_engine.h"

namespace kapsl::gguf {

struct RpcEndpoint {
  std::string host;
  uint16_t port = 0;
  std::string text() const { return host + ":" + std::to_string(port); }
};

// "host:port", IPv4 address or name. Throws kInvalidInput naming `text`.
RpcEndpoint parse_rpc_endpoint(const std::string& text);

// Connects to the worker and exchanges ggml-rpc's HELLO within `timeout`, then hangs up.
// Throws kUnavailable: refused, unreachable, silent past the deadline, or not a ggml-rpc
// server of this protocol version.
void check_rpc_worker(const RpcEndpoint& worker, std::chrono::milliseconds timeout);

// The worker's devices, registered with ggml once per process and endpoint. Call
// check_rpc_worker first. Throws kUnavailable if it offers none.
std::vector<ggml_backend_dev_t> rpc_worker_devices(const RpcEndpoint& worker);

// kUnavailable naming the workers of `workers` ("host:port" each) whose live connection
// failed; nullopt if none did. Results computed through such a worker since are garbage
// (ggml-rpc, as scripts/bootstrap-deps builds it, skips what it cannot send instead of
// aborting).
std::optional<Error> rpc_workers_lost(const std::vector<std::string>& workers);

// Throws rpc_workers_lost(workers), if any.
void throw_if_rpc_workers_lost(const std::vector<std::string>& workers);

// Which device holds each layer, as llama.cpp assigns them (llama-model.cpp,
// load_tensors): layers [n_layer + 1 - n_offloaded, n_layer] (the last one being the
// output) go to the devices in proportion to `shares`, in order; the rest and the input
// stay on the CPU. `devices[i]` is described by `names[i]` and `hosts[i]`.
std::vector<GgufPlacement> layer_placement(uint32_t n_layer, int32_t n_offloaded, const std::vector<float>& shares,
                                           const std::vector<std::string>& names,
                                           const std::vector<std::string>& hosts);

// "CPU: input, layers 0-3; RPC0 (10.0.0.2:50052): layers 4-15, output": for model info.
std::string describe_placement(const std::vector<GgufPlacement>& placement);

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_RPC_CLIENT_H_
