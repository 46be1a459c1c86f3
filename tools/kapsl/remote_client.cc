// RemoteModel over cpp-httplib (HTTP) and gRPC's C++ client with the project's generated
// stub (gRPC): metadata, and connections that resend one encoded request.
#include "remote_client.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "grpc_predict_v2.grpc.pb.h"
#include "kapsl/error.h"
#include "server/kserve_tensors.h"

namespace kapsl::cli {
namespace {

using json = nlohmann::json;
namespace pb = inference;

// host:port of a gRPC target ("grpc://" and "http://" prefixes dropped).
std::string grpc_address(std::string url) {
  for (const char* scheme : {"grpc://", "http://"}) {
    if (url.rfind(scheme, 0) == 0) url = url.substr(std::string_view(scheme).size());
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

TensorInfo tensor_info(const std::string& name, const std::string& datatype, std::vector<int64_t> shape) {
  TensorInfo t;
  t.name = name;
  const auto dtype = server::dtype_from_kserve(datatype);
  if (!dtype) throw Error::invalid_input("the server declares input '" + name + "' of unknown datatype '" + datatype + "'");
  t.dtype = *dtype;
  t.shape = std::move(shape);
  return t;
}

httplib::Headers auth_headers(const RemoteTarget& t) {
  httplib::Headers h;
  if (!t.api_key.empty()) h.emplace("Authorization", "Bearer " + t.api_key);
  return h;
}

std::unique_ptr<httplib::Client> http_client(const RemoteTarget& t) {
  auto client = std::make_unique<httplib::Client>(t.url);
  if (!client->is_valid()) throw Error::invalid_input("not an HTTP URL: " + t.url);
  client->set_keep_alive(true);
  client->set_read_timeout(std::chrono::seconds(120));
  client->set_tcp_nodelay(true);
  return client;
}

ModelInfo http_metadata(const RemoteTarget& t) {
  auto client = http_client(t);
  const auto res = client->Get("/v2/models/" + t.model, auth_headers(t));
  if (!res) throw Error::unavailable("cannot reach " + t.url, httplib::to_string(res.error()));
  if (res->status == 404) throw Error::not_found("the server has no model '" + t.model + "'", res->body);
  if (res->status != 200) throw Error::invalid_input("model metadata: HTTP " + std::to_string(res->status), res->body);
  const json doc = json::parse(res->body);
  ModelInfo info;
  info.name = t.model;
  for (const auto& in : doc.at("inputs")) {
    info.inputs.push_back(tensor_info(in.at("name"), in.at("datatype"), in.at("shape").get<std::vector<int64_t>>()));
  }
  return info;
}

std::shared_ptr<grpc::Channel> grpc_channel(const RemoteTarget& t) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // its own connection, as each HTTP client has
  args.SetMaxReceiveMessageSize(-1);
  return grpc::CreateCustomChannel(grpc_address(t.url), grpc::InsecureChannelCredentials(), args);
}

void authorize(grpc::ClientContext& ctx, const RemoteTarget& t) {
  if (!t.api_key.empty()) ctx.AddMetadata("authorization", "Bearer " + t.api_key);
}

ModelInfo grpc_metadata(const RemoteTarget& t) {
  auto stub = pb::GRPCInferenceService::NewStub(grpc_channel(t));
  grpc::ClientContext ctx;
  authorize(ctx, t);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  pb::ModelMetadataRequest req;
  req.set_name(t.model);
  pb::ModelMetadataResponse res;
  const grpc::Status status = stub->ModelMetadata(&ctx, req, &res);
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) throw Error::not_found(status.error_message());
  if (!status.ok()) throw Error::unavailable("model metadata over gRPC from " + t.url, status.error_message());
  ModelInfo info;
  info.name = t.model;
  for (const auto& in : res.inputs()) {
    info.inputs.push_back(tensor_info(in.name(), in.datatype(), {in.shape().begin(), in.shape().end()}));
  }
  return info;
}

class HttpConnection final : public RemoteModel::Connection {
 public:
  HttpConnection(const RemoteTarget& t, const InferenceRequest& request)
      : client_(http_client(t)), path_("/v2/models/" + t.model + "/infer"), headers_(auth_headers(t)) {
    const bool binary = t.protocol == Protocol::kHttpBinary;
    server::KServeBody body = server::encode_infer_request(request.inputs, binary);
    body_ = std::move(body.body);
    if (body.header_length) headers_.emplace("Inference-Header-Content-Length", std::to_string(*body.header_length));
    content_type_ = binary ? "application/octet-stream" : "application/json";
  }

  std::string send() override {
    const auto res = client_->Post(path_, headers_, body_, content_type_);
    if (!res) return httplib::to_string(res.error());
    if (res->status != 200) return "HTTP " + std::to_string(res->status) + ": " + res->body.substr(0, 200);
    return "";
  }

 private:
  std::unique_ptr<httplib::Client> client_;
  std::string path_;
  httplib::Headers headers_;
  std::string body_;
  std::string content_type_;
};

class GrpcConnection final : public RemoteModel::Connection {
 public:
  GrpcConnection(const RemoteTarget& t, const InferenceRequest& request)
      : target_(t), stub_(pb::GRPCInferenceService::NewStub(grpc_channel(t))) {
    request_.set_model_name(t.model);
    for (const auto& [name, tensor] : request.inputs) {
      auto* in = request_.add_inputs();
      in->set_name(name);
      in->set_datatype(server::kserve_datatype(tensor.dtype()));
      for (int64_t d : tensor.shape()) in->add_shape(d);
      server::append_raw(tensor, *request_.add_raw_input_contents());
    }
  }

  std::string send() override {
    grpc::ClientContext ctx;
    authorize(ctx, target_);
    pb::ModelInferResponse res;
    const grpc::Status status = stub_->ModelInfer(&ctx, request_, &res);
    if (!status.ok()) return "gRPC " + std::to_string(status.error_code()) + ": " + status.error_message().substr(0, 200);
    return "";
  }

 private:
  const RemoteTarget& target_;
  std::unique_ptr<pb::GRPCInferenceService::Stub> stub_;
  pb::ModelInferRequest request_;
};

}  // namespace

Protocol parse_protocol(std::string_view name) {
  if (name == "http") return Protocol::kHttpJson;
  if (name == "binary") return Protocol::kHttpBinary;
  if (name == "grpc") return Protocol::kGrpc;
  throw Error::invalid_input("unknown protocol '" + std::string(name) + "'", "expected http, binary or grpc");
}

const char* protocol_name(Protocol protocol) noexcept {
  switch (protocol) {
    case Protocol::kHttpJson: return "http (JSON tensors)";
    case Protocol::kHttpBinary: return "http (binary tensors)";
    case Protocol::kGrpc: return "grpc (raw contents)";
  }
  return "?";
}

RemoteModel::RemoteModel(RemoteTarget target) : target_(std::move(target)) {
  info_ = target_.protocol == Protocol::kGrpc ? grpc_metadata(target_) : http_metadata(target_);
}

std::unique_ptr<RemoteModel::Connection> RemoteModel::connect(const InferenceRequest& request) const {
  if (target_.protocol == Protocol::kGrpc) return std::make_unique<GrpcConnection>(target_, request);
  return std::make_unique<HttpConnection>(target_, request);
}

}  // namespace kapsl::cli
