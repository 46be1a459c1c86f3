// Server::Impl: the parts of a running server and the model-call protocol every inference
// route follows:
//
//   ModelCall call = begin_call(find_model(name), role, req);  // 404, 503/429 busy, loads
//   ... run the engine with call.cancel ...
//   finish_call(call, outcome);                 // metrics; gives the admission turn back
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
#include "server/connection_deadlines.h"
#include "server/http_util.h"
#include "server/kserve_tensors.h"
#include "server/model_host.h"
#include "server/model_repository.h"
#include "server/request_admission.h"
#include "server/running_calls.h"
#include "server/server_metrics.h"

#include "core/mutex.h"
#include "core/thread_annotations.h"

namespace kapsl {

namespace server {
class GrpcEndpoint;  // grpc_endpoint.h
// A KServe request's parameters applied to `request`: the common ones (priority, timeout,
// sequence_*) are accepted and ignored; the rest are a text generator's generation options
// (the OpenAI sampling fields). Throws Error(kInvalidInput) naming a parameter the engine
// does not take. (kserve_routes.cc; the gRPC endpoint uses it too.)
void apply_infer_parameters(const nlohmann::json& parameters, Engine& engine, const std::string& model,
                            InferenceRequest& request);
}  // namespace server

struct Server::Impl {
  explicit Impl(ServerOptions opts);

  // One admitted request for one model. Movable; unregisters from the running calls and
  // gives back its admission turn when destroyed, counting it cancelled if it never
  // finished (a stream whose client left before it started).
  struct ModelCall {
    Impl* server = nullptr;
    server::RepositoryModel model;
    server::Admission::Ticket ticket;
    std::shared_ptr<Engine> engine;
    server::ModelStats* stats = nullptr;
    CancellationToken cancel;
    std::optional<Clock::time_point> deadline;  // the model's request_timeout from admission
    uint64_t running_id = 0;                    // in `running`, watched for its client
    bool finished = false;                      // finish_call counted its outcome
    double admission_wait_s = 0;                // waiting for admission, recorded when the call ends
    Clock::time_point compute_start;

    ModelCall() = default;
    ModelCall(ModelCall&&) noexcept;
    ModelCall& operator=(ModelCall&&) = delete;
    ~ModelCall();
  };

  // Admits and loads `model` (as find_model returned it); the call's token is cancelled if
  // the client of `req` goes away. Throws Error: kOverloaded, kUnavailable (disabled or
  // shutting down), the load's error. A failure is counted in the model's stats (rejected
  // or failure). REQUIRES: `req` outlives the call.
  ModelCall begin_call(server::RepositoryModel model, server::EngineRole role, const httplib::Request& req);
  // The same for a caller that is not an HTTP request: `client_gone` says whether it left.
  ModelCall begin_call(server::RepositoryModel model, server::EngineRole role, std::function<bool()> client_gone);
  // The whole body, through the route's content reader: at most max_body_bytes (cpp-httplib
  // answers 413 beyond), each byte counted kBodyCost times against the in-flight body budget by
  // `lease` (a declared length is reserved whole first); stops the request's read clock.
  // Throws HttpError 413 for a declared length over the limit, 400 for one that is not a
  // number or comes with a Transfer-Encoding; Error(kOverloaded) when the budget is spent;
  // Error(kInvalidInput) when the body could not be read.
  std::string read_body(const httplib::Request& req, const httplib::ContentReader& reader,
                        server::BodyBudget::Lease& lease);
  // A reserve hook for parse_infer_request charging `lease` for what exceeds `allowance`
  // (the tensors' share read_body reserved: the body's size): throws Error(kOverloaded) when
  // the budget is spent, HttpError 413 when the request alone could never fit in it.
  server::ReserveBytes reserve_in(server::BodyBudget::Lease& lease, size_t allowance) const;
  // Records the outcome, queue (admission + the batcher's queue), compute and total latency
  // of a call, and with `timing` (the engine's) its input/infer/output times and execution.
  // Gives the call's admission turn back at once: the engine's work is over, and a stream
  // still writes its last frames after this, which a client reading them as the end may
  // follow with its next request before the call itself is destroyed.
  void finish_call(ModelCall& call, server::Outcome outcome, const std::optional<ComputeTiming>& timing = std::nullopt);
  // The outcome an Error stands for.
  static server::Outcome outcome_for(const Error& error);
  // The model, or throws Error(kNotFound).
  server::RepositoryModel find_model(const std::string& name);
  // The same at `version` ("" = any); kNotFound if the model has another.
  server::RepositoryModel find_model(const std::string& name, const std::string& version);
  // The model `body`'s "model" field names (as find_model), or without one the repository's
  // one text-generation model, for llama-server's routes, whose clients name none;
  // kInvalidInput ("'model' is required") if it holds none or several.
  server::RepositoryModel named_or_only_generator(const nlohmann::json& body);

  // The model-repository extension, for HTTP and gRPC alike.
  struct IndexEntry {
    std::string name;
    std::string version;
    server::ModelState state;
  };
  // Every model after a rescan, or only those ready now.
  std::vector<IndexEntry> repository_index(bool only_ready);
  // Rescans, then enables, loads and pins the model. Throws as find_model and acquire do.
  void load_model(const std::string& name);
  // Disables the model and unloads its engines; a model whose files are gone loses the
  // engines still loaded from them. kNotFound if there is nothing by that name.
  void unload_model(const std::string& name);

  // Runs `body`, turning what it throws into an error response in `style`: Error by its
  // code, JSON type errors as 400, anything else as 500; counts a client error against the
  // model the request named if no model call counted it.
  void guarded(httplib::Response& res, server::ApiStyle style, const std::function<void()>& body);

  void install_hooks();
  void register_health_routes();
  void register_kserve_routes();
  void register_repository_routes();
  void register_openai_routes();
  void register_llama_routes();      // llama-server's /tokenize, /detokenize, /apply-template
  void register_anthropic_routes();  // /v1/messages
  void register_responses_routes();  // /v1/responses
  void register_rerank_routes();     // /v1/rerank
  void drain();

  ServerOptions options;
  std::shared_ptr<const BackendFactory> factory;
  server::ModelRepository repository;
  server::ModelHost host;
  server::Admission admission;
  server::BodyBudget bodies;  // bytes of request bodies being read and parsed
  server::ServerMetrics metrics;
  server::RunningCalls running;  // cancels calls whose client went away, and all at shutdown
  // Declared before `http` so that it outlives the connections' jobs: http's destructor
  // stops them first.
  server::ConnectionDeadlines deadlines;
  httplib::Server http;
  std::thread listener;
  int port = 0;
  std::unique_ptr<server::GrpcEndpoint> grpc;  // with options.grpc_port >= 0
  std::atomic<bool> draining{false};

  // mu guards the life-cycle flags; stopped_cv announces `stopped` to wait() and shutdown().
  internal::Mutex mu;
  internal::CondVar stopped_cv;
  bool started GUARDED_BY(mu) = false;
  bool shutdown_started GUARDED_BY(mu) = false;
  bool stopped GUARDED_BY(mu) = false;

};

}  // namespace kapsl

#endif  // KAPSL_SRC_SERVER_SERVER_IMPL_H_
