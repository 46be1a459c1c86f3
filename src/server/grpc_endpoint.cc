// GrpcEndpoint: inference.GRPCInferenceService on gRPC's synchronous server, each method
// a thin adapter over Server::Impl — the HTTP routes' model calls, limits and metrics.
#include "server/grpc_endpoint.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <charconv>

#include <spdlog/spdlog.h>

#include "grpc_predict_v2.grpc.pb.h"
#include "kapsl/version.h"
#include "server/grpc_tensors.h"
#include "server/server_impl.h"

namespace kapsl::server {

grpc::StatusCode grpc_code_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidInput: return grpc::StatusCode::INVALID_ARGUMENT;
    case ErrorCode::kNotFound: return grpc::StatusCode::NOT_FOUND;
    case ErrorCode::kOverloaded:
    case ErrorCode::kUnavailable: return grpc::StatusCode::UNAVAILABLE;
    case ErrorCode::kResourceExhausted: return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case ErrorCode::kTimeout: return grpc::StatusCode::DEADLINE_EXCEEDED;
    case ErrorCode::kCancelled: return grpc::StatusCode::CANCELLED;
    case ErrorCode::kModelLoad:
    case ErrorCode::kBackend:
    case ErrorCode::kInference: return grpc::StatusCode::INTERNAL;
  }
  return grpc::StatusCode::INTERNAL;
}

namespace {

using json = nlohmann::json;
namespace pb = inference;

// The sampling parameters that take a fraction. The protocol's InferParameter has no
// floating-point choice, so a client sends them as strings ("0.7").
constexpr std::string_view kFractionParameters[] = {"temperature", "top_p", "min_p", "presence_penalty",
                                                    "frequency_penalty", "repeat_penalty"};

json parameter_value(const std::string& key, const std::string& text) {
  if (std::find(std::begin(kFractionParameters), std::end(kFractionParameters), key) == std::end(kFractionParameters)) {
    return text;
  }
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw Error::invalid_input("parameter '" + key + "'", "expected a number in a string_param, got \"" + text.substr(0, 32) + "\"");
  }
  return v;
}

json parameters_json(const google::protobuf::Map<std::string, pb::InferParameter>& parameters) {
  json out = json::object();
  for (const auto& [key, p] : parameters) {
    switch (p.parameter_choice_case()) {
      case pb::InferParameter::kBoolParam: out[key] = p.bool_param(); break;
      case pb::InferParameter::kInt64Param: out[key] = p.int64_param(); break;
      case pb::InferParameter::kStringParam: out[key] = parameter_value(key, p.string_param()); break;
      case pb::InferParameter::PARAMETER_CHOICE_NOT_SET: break;
    }
  }
  return out;
}

void fill_tensor_metadata(const std::vector<TensorInfo>& infos,
                          google::protobuf::RepeatedPtrField<pb::ModelMetadataResponse::TensorMetadata>* out) {
  for (const auto& t : infos) {
    auto* m = out->Add();
    m->set_name(t.name);
    m->set_datatype(t.dtype_known ? kserve_datatype(t.dtype) : "BYTES");
    for (int64_t d : t.shape) m->add_shape(d);
  }
}

}  // namespace

class GrpcEndpoint::Service final : public pb::GRPCInferenceService::Service {
 public:
  explicit Service(Server::Impl& server) : s_(server) {}

  grpc::Status ServerLive(grpc::ServerContext* ctx, const pb::ServerLiveRequest*, pb::ServerLiveResponse* res) override {
    return run(ctx, [&] { res->set_live(true); });
  }
  grpc::Status ServerReady(grpc::ServerContext* ctx, const pb::ServerReadyRequest*, pb::ServerReadyResponse* res) override {
    return run(ctx, [&] { res->set_ready(!s_.draining.load()); });
  }
  grpc::Status ServerMetadata(grpc::ServerContext* ctx, const pb::ServerMetadataRequest*,
                              pb::ServerMetadataResponse* res) override {
    return run(ctx, [&] {
      res->set_name("kapsl");
      res->set_version(version_string());
      res->add_extensions("model_repository");
    });
  }
  grpc::Status ModelReady(grpc::ServerContext* ctx, const pb::ModelReadyRequest* req, pb::ModelReadyResponse* res) override {
    return run(ctx, [&] {
      const RepositoryModel model = s_.find_model(req->name(), req->version());
      res->set_ready(s_.host.state(model.name) == ModelState::kReady);
    });
  }
  grpc::Status ModelMetadata(grpc::ServerContext* ctx, const pb::ModelMetadataRequest* req,
                             pb::ModelMetadataResponse* res) override {
    return run(ctx, [&] {
      const RepositoryModel model = s_.find_model(req->name(), req->version());
      const auto engine = s_.host.acquire(model, EngineRole::kMain);
      res->set_name(model.name);
      res->add_versions(model.version);
      res->set_platform(model.resolved->backend->platform());
      fill_tensor_metadata(engine->model_info().inputs, res->mutable_inputs());
      fill_tensor_metadata(engine->model_info().outputs, res->mutable_outputs());
    });
  }
  grpc::Status ModelInfer(grpc::ServerContext* ctx, const pb::ModelInferRequest* req, pb::ModelInferResponse* res) override {
    return run(ctx, [&] { infer(*ctx, *req, *res); });
  }
  grpc::Status RepositoryIndex(grpc::ServerContext* ctx, const pb::RepositoryIndexRequest* req,
                               pb::RepositoryIndexResponse* res) override {
    return run(ctx, [&] {
      check_repository(req->repository_name());
      for (const auto& entry : s_.repository_index(req->ready())) {
        auto* m = res->add_models();
        m->set_name(entry.name);
        m->set_version(entry.version);
        m->set_state(model_state_name(entry.state));
      }
    });
  }
  grpc::Status RepositoryModelLoad(grpc::ServerContext* ctx, const pb::RepositoryModelLoadRequest* req,
                                   pb::RepositoryModelLoadResponse*) override {
    return run(ctx, [&] {
      check_repository(req->repository_name());
      if (!req->parameters().empty()) throw Error::invalid_input("parameters: kapsl takes no load parameters");
      s_.load_model(req->model_name());
    });
  }
  grpc::Status RepositoryModelUnload(grpc::ServerContext* ctx, const pb::RepositoryModelUnloadRequest* req,
                                     pb::RepositoryModelUnloadResponse*) override {
    return run(ctx, [&] {
      check_repository(req->repository_name());
      if (!req->parameters().empty()) throw Error::invalid_input("parameters: kapsl takes no unload parameters");
      s_.unload_model(req->model_name());
    });
  }

 private:
  // Authenticates, runs `body` and maps what it throws to a status; counts the status and,
  // for a client error no model call counted, the model's client errors.
  template <typename Body>
  grpc::Status run(grpc::ServerContext* ctx, Body&& body) {
    RequestContext& rc = current_request();
    rc = RequestContext{};
    rc.start = Clock::now();
    grpc::Status status;
    try {
      if (!authenticated(*ctx)) {
        status = grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong API key (authorization: Bearer KEY)");
      } else {
        body();
      }
    } catch (const Error& e) {
      status = grpc::Status(grpc_code_for(e.code()), e.message());
    } catch (const std::exception& e) {
      status = grpc::Status(grpc::StatusCode::INTERNAL, e.what());
    }
    s_.metrics.count_grpc(static_cast<int>(status.error_code()));
    // As over HTTP: against the model find_model found (rc.model), unless a call counted it.
    const bool client_error = status.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
                              status.error_code() == grpc::StatusCode::NOT_FOUND;
    if (client_error && !rc.model.empty() && !rc.counted) s_.metrics.model(rc.model).count(Outcome::kClientError);
    return status;
  }

  bool authenticated(const grpc::ServerContext& ctx) const {
    const std::string& key = s_.options.api_key;
    if (key.empty()) return true;
    const auto& metadata = ctx.client_metadata();
    const auto it = metadata.find("authorization");
    return it != metadata.end() && bearer_matches(std::string_view(it->second.data(), it->second.size()), key);
  }

  void check_repository(const std::string& name) const {
    if (!name.empty() && name != s_.repository.root().filename().string()) {
      throw Error::not_found("unknown repository '" + name + "'", "this server has one: '" +
                                                                     s_.repository.root().filename().string() + "'");
    }
  }

  void infer(grpc::ServerContext& ctx, const pb::ModelInferRequest& req, pb::ModelInferResponse& res);

  Server::Impl& s_;
};

// The request as the engine takes it; its requested outputs must not carry parameters
// (kapsl has none for them: no classification extension).
InferenceRequest to_request(const pb::ModelInferRequest& req) {
  InferenceRequest request;
  request.inputs = inputs_from_grpc(req);
  for (const auto& out : req.outputs()) {
    if (!out.parameters().empty()) {
      throw Error::invalid_input("output '" + out.name() + "'", "parameter '" + out.parameters().begin()->first +
                                                                   "' is not supported (kapsl takes no output parameters)");
    }
    request.output_names.push_back(out.name());
  }
  request.request_id = req.id();
  return request;
}

void GrpcEndpoint::Service::infer(grpc::ServerContext& ctx, const pb::ModelInferRequest& req, pb::ModelInferResponse& res) {
  // As over HTTP: while draining, new work is refused so that what runs can finish.
  if (s_.draining.load()) throw Error::unavailable("the server is shutting down");
  const RepositoryModel model = s_.find_model(req.model_name(), req.model_version());
  // gRPC has read the message already; what it becomes counts against the body budget.
  auto lease = s_.bodies.lease();
  if (!lease.grow(req.ByteSizeLong() * BodyBudget::kBodyCost)) {
    throw Error::overloaded("the server is holding too many request bodies", "retry shortly");
  }
  InferenceRequest request = to_request(req);
  Server::Impl::ModelCall call = s_.begin_call(model, EngineRole::kMain, [&ctx] { return ctx.IsCancelled(); });
  request.deadline = call.deadline;
  const auto client_deadline = ctx.deadline();
  if (client_deadline != std::chrono::system_clock::time_point::max()) {
    const auto left = client_deadline - std::chrono::system_clock::now();
    const auto at = Clock::now() + std::chrono::duration_cast<Clock::duration>(left);
    if (!request.deadline || at < *request.deadline) request.deadline = at;
  }
  request.cancel = call.cancel;
  InferenceResult result;
  try {
    apply_infer_parameters(parameters_json(req.parameters()), *call.engine, model.name, request);
    result = call.engine->infer(request);
  } catch (const Error& e) {
    s_.finish_call(call, Server::Impl::outcome_for(e));
    throw;
  }
  if (result.usage) record_generation(*call.stats, *result.usage, call.compute_start);
  s_.finish_call(call, Outcome::kSuccess, result.timing);
  res.set_model_name(model.name);
  res.set_model_version(model.version);
  res.set_id(req.id());
  outputs_to_grpc(result.outputs, req.raw_input_contents_size() > 0, res);
}

GrpcEndpoint::GrpcEndpoint(Server::Impl& server, const std::string& host, int port)
    : service_(std::make_unique<Service>(server)) {
  grpc::ServerBuilder builder;
  const std::string address = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(service_.get());
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<size_t>(server.options.max_body_bytes, INT32_MAX)));
  builder.SetMaxSendMessageSize(INT32_MAX);
  grpc::ResourceQuota quota("kapsl-grpc");
  quota.SetMaxThreads(static_cast<int>(std::max<size_t>(server.options.http_threads, 4) * 2));
  builder.SetResourceQuota(quota);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    throw Error::unavailable("cannot listen for gRPC on " + address, "is the port in use or the address not local?");
  }
}

GrpcEndpoint::~GrpcEndpoint() { shutdown(Clock::now()); }

void GrpcEndpoint::shutdown(Clock::time_point deadline) {
  if (!server_) return;
  const auto left = deadline - Clock::now();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::duration_cast<std::chrono::system_clock::duration>(left));
  server_->Wait();
  server_.reset();
}

}  // namespace kapsl::server
