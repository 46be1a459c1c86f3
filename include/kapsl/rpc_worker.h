// An RPC worker: this host's devices lent to a GgufEngine on another host, over ggml's RPC
// protocol (llama.cpp's rpc-server speaks the same). The engine lists the worker's
// "host:port" in GgufOptions::rpc_workers and puts some of the model's layers on it; the
// weights are sent over the connection at load time (or, with a cache folder, read from
// it when the worker has seen them before).
//
// The protocol has no authentication and no encryption, and a client may ask the worker to
// allocate any amount of memory and run any graph: bind to a private address that only the
// serving hosts can reach, never to a public one.
//
// A worker serves one client at a time; a second client waits until the first disconnects.
//
// Thread-safety: serve_rpc_worker blocks its thread; run one per process.
#ifndef KAPSL_RPC_WORKER_H_
#define KAPSL_RPC_WORKER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace kapsl {

struct RpcWorkerOptions {
  std::string host = "127.0.0.1";  // address to listen on (IPv4); keep it private
  uint16_t port = 50052;
  int32_t n_threads = 0;           // CPU compute threads; 0 = physical cores
  std::string cache_dir = {};      // "" = no cache; else tensors received are kept here by hash
  std::vector<std::string> devices = {};  // ggml device names ("CPU", "CUDA0"); empty = the GPUs, else the CPU
};

// Listens and serves clients one after another, for as long as the process lives. Throws
// kapsl::Error: kInvalidInput for an unknown device or a bad address, kUnavailable when the
// address cannot be bound.
[[noreturn]] void serve_rpc_worker(const RpcWorkerOptions& options);

}  // namespace kapsl

#endif  // KAPSL_RPC_WORKER_H_
