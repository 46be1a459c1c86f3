// Server: `kapsl serve`, an HTTP inference server over a model repository and an EnginePool.
//
// What it is. A Server serves every model of one repository folder — model files, folders
// holding a metadata.json (manifest.h) and .aimod packages side by side — each named by its
// folder, file stem or package stem; or one model's storage as KServe mounts it
// (ServerOptions::single_model). Every model is opened, configured and loaded through
// one BackendFactory (backend_factory.h) over the registered backends, on demand, through an
// EnginePool (LRU, idle TTL, byte budget, pinning, single-flight loading). Three APIs share
// one port:
//   - KServe Open Inference Protocol v2 (/v2/...), with Triton's binary tensor extension and
//     the model-repository extension, for every model;
//   - an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions with
//     server-sent events, /v1/embeddings) for models whose engines generate text or embed
//     (the TextGenerator and Embedder capabilities), whatever their backend;
//   - Prometheus metrics (/metrics).
// With grpc_port set, the KServe v2 protocol is also served over gRPC on that port
// (inference.GRPCInferenceService, proto/grpc_predict_v2.proto), with the same models,
// limits, API key and metrics.
// Each model admits at most max_concurrency requests at once and queues at most max_queue
// more (its manifest's "serving" section may set its own); beyond that a request is refused
// at once with 503 (KServe) or 429 (OpenAI) and a Retry-After header, so memory never grows
// with the offered load. docs/server.md lists the routes, status codes and metric names.
//
// Model names are looked up in the list the repository scan produced; a name never becomes
// a path, so no request can reach a file outside the repository root.
//
// Hostile clients. Every request's cost is bounded before its work starts: its body by
// max_body_bytes (chunked too) and by the in-flight budget, the time to receive it by
// read_timeout (however slowly it trickles in), its JSON by nesting depth and value count,
// its tensors by what the body can hold. A client that goes away cancels its work.
//
// Lifecycle. The constructor scans the repository; start() binds the port and serves on
// background threads; shutdown() stops accepting, lets in-flight requests finish for up to
// shutdown_timeout (then cancels the ones still running), closes every connection whatever
// its client does, stops the listener and unloads every model; it returns within about
// shutdown_timeout plus one second. The destructor calls shutdown().
//
// Thread-safety: safe for concurrent use without external synchronization (shutdown() may
// be called from any thread, e.g. a signal-handling thread, while wait() blocks in another).
#ifndef KAPSL_SERVER_H_
#define KAPSL_SERVER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kapsl/pool_config.h"

namespace kapsl {

class BackendRegistry;

struct ServerOptions {
  // --- Behaviour
  std::string model_repository;      // root folder of the models; required
  // Serve model_repository as one model's storage instead, as KServe mounts it at
  // /mnt/models: a model file, a folder with a metadata.json, or a folder holding exactly
  // one model (file, manifest folder or package; other files ignored), named
  // single_model_name ("" = after its file or folder). A storage holding several is an error.
  bool single_model = false;
  std::string single_model_name;
  std::string host = "127.0.0.1";    // address to listen on; "0.0.0.0" = every interface
  int port = 8080;                   // TCP port; 0 = any free port (see Server::port())
  int grpc_port = -1;                // KServe v2 over gRPC on this port; 0 = any free port; -1 = off
  // Bearer token required on every route but /v2/health/live; "" = no authentication.
  std::string api_key;
  // Models loaded at start and pinned (never evicted for capacity, bytes or idle time).
  std::vector<std::string> pinned_models;
  PoolConfig pool;                   // the EnginePool's limits (max_size, ttl, byte budgets, ...)

  // --- Load limits: defaults for models whose manifest's "serving" section does not say
  uint32_t max_concurrency = 4;      // requests running at once per model (>= 1)
  uint32_t max_queue = 16;           // requests waiting for a turn per model; one more is refused
  std::chrono::milliseconds queue_timeout{std::chrono::seconds(30)};  // longest wait in the queue
  std::chrono::milliseconds request_timeout{0};  // deadline of each inference; 0 = none
  size_t max_body_bytes = size_t{64} << 20;      // larger request bodies get 413, whatever the encoding (64 MiB)
  // Request bodies being read and parsed at once may hold this much memory, each counted
  // three times its size (the body, and parsing it); beyond, requests get 503/429 with
  // Retry-After before their body is read further. >= 3 x max_body_bytes. Default 512 MiB.
  size_t max_inflight_body_bytes = size_t{512} << 20;
  // Longest time to receive one request's headers and body, whatever the client's pace; the
  // connection is closed past it. Also the limit of each single read. Default 10 s.
  std::chrono::milliseconds read_timeout{std::chrono::seconds(10)};
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds(10)};  // drain time on shutdown

  // --- Backends
  // The backends models may use; null = builtin_backends(). Register your own (backend.h)
  // to serve them.
  std::shared_ptr<const BackendRegistry> backends;
  // Settings for every model, in manifest form ({"threads": 2, "gguf": {"slots": 4}}),
  // merged under each model's manifest (see BackendFactory); "" = none. The load limits
  // above are merged under these.
  std::string model_defaults;

  // --- Performance
  size_t http_threads = 32;   // HTTP worker threads; each open connection holds one while it is busy
  size_t http_max_threads = 0;  // while all are busy the pool grows to this many; 0 = 8 x http_threads
  bool log_requests = true;   // one structured (JSON) log line per request at info level
};

class Server {
 public:
  // Validates the options and scans the repository; does not bind or load anything.
  // Throws Error(kInvalidInput) naming a bad option or a single model's storage that holds
  // no model or several, Error(kNotFound) if the repository folder or storage does not exist.
  explicit Server(ServerOptions options);
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  // Calls shutdown() and waits for it.
  ~Server();

  // Loads and pins pinned_models, binds host:port and starts serving in the background.
  // Returns once the port accepts connections. Throws Error(kUnavailable) if the port
  // cannot be bound, a pinned model's load error otherwise (the server is then not started).
  // REQUIRES: called at most once.
  void start();

  // The bound port (useful with port 0). REQUIRES: start() returned.
  int port() const;
  // The bound gRPC port, or -1 if grpc_port is -1. REQUIRES: start() returned.
  int grpc_port() const;

  // Blocks until the server has stopped (after shutdown()).
  void wait();

  // Graceful stop: new requests get 503; requests in flight finish for up to
  // shutdown_timeout, after which running generations are cancelled; then the listener
  // stops and every model is unloaded. Idempotent; safe from any thread but a request
  // handler's.
  void shutdown();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_SERVER_H_
