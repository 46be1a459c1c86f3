// Server::Impl: the parts of a running server and the model-call protocol every inference
// route follows:
//
//   ModelCall call = begin_call(name, role);   // 404 unknown, 503/429 busy, loads the engine
//   ... run the engine with call.cancel ...
//   finish_call(call, outcome);                 // metrics; the ticket is released with `call`
//
// Routes live in kserve_routes.cc, openai_routes.cc and server.cc (health, metrics).
//
// Thread-safety: every member is safe for concurrent use; ModelCall is owned by one request.
#ifndef KAPSL_SRC_SERVER_SERVER_IMPL_H_
#define KAPSL_SRC_SERVER_SERVER_IMPL_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include <httplib.h>

#include "kapsl/server.h"
#include "server/connection_watch.h"
#include "server/http_util.h"
#include "server/model_host.h"
#include "server/model_repository.h"
#include "server/request_admission.h"
#include "server/server_metrics.h"

#include "core/mutex.h"
#include "core/thread_annotations.h"

namespace kapsl {

struct Server::Impl {
  explicit Impl(ServerOptions opts);

  // One admitted request for one model. Movable; unregisters its cancellation token and
  // gives back its admission turn when destroyed.
  struct ModelCall {
    Impl* server = nullptr;
    server::RepositoryModel model;
    server::Admission::Ticket ticket;
    std::shared_ptr<Engine> engine;
    server::ModelStats* stats = nullptr;
    CancellationToken cancel;
    std::optional<Clock::time_point> deadline;  // the model's request_timeout from admission
    uint64_t token_id = 0;
    Clock::time_point compute_start;

    ModelCall() = default;
    ModelCall(ModelCall&&) noexcept;
    ModelCall& operator=(ModelCall&&) = delete;
    ~ModelCall();
  };

  // Resolves, admits and loads. Throws Error: kNotFound (unknown model), kOverloaded,
  // kUnavailable (disabled or shutting down), the load's error. A failure is counted in the
  // model's stats (rejected or failure) when the model exists.
  ModelCall begin_call(const std::string& name, server::EngineRole role);
  // Records the outcome, compute and total latency of a call.
  void finish_call(ModelCall& call, server::Outcome outcome);
  // The outcome an Error stands for.
  static server::Outcome outcome_for(const Error& error);
  // The model, or throws Error(kNotFound).
  server::RepositoryModel find_model(const std::string& name);

  // Runs `body`, turning what it throws into an error response in `style`: Error by its
  // code, JSON type errors as 400, anything else as 500.
  static void guarded(httplib::Response& res, server::ApiStyle style, const std::function<void()>& body);

  void install_hooks();
  void register_health_routes();
  void register_kserve_routes();
  void register_repository_routes();
  void register_openai_routes();
  void drain();

  ServerOptions options;
  std::shared_ptr<const BackendFactory> factory;
  server::ModelRepository repository;
  server::ModelHost host;
  server::Admission admission;
  server::ServerMetrics metrics;
  server::ConnectionWatch connections;  // cancels non-streaming generations of departed clients
  httplib::Server http;
  std::thread listener;
  int port = 0;
  std::atomic<bool> draining{false};

  // mu guards the life-cycle flags; stopped_cv announces `stopped` to wait() and shutdown().
  internal::Mutex mu;
  internal::CondVar stopped_cv;
  bool started GUARDED_BY(mu) = false;
  bool shutdown_started GUARDED_BY(mu) = false;
  bool stopped GUARDED_BY(mu) = false;

  internal::Mutex tokens_mu;  // guards the running calls' tokens
  std::map<uint64_t, CancellationToken> running GUARDED_BY(tokens_mu);  // tokens of running calls
  uint64_t next_token_id GUARDED_BY(tokens_mu) = 1;
};

}  // namespace kapsl

#endif  // KAPSL_SRC_SERVER_SERVER_IMPL_H_
