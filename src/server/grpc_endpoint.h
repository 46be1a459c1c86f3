// GrpcEndpoint: the KServe v2 protocol over gRPC (inference.GRPCInferenceService, defined
// in proto/grpc_predict_v2.proto), on its own port beside the HTTP one.
//
// It serves the same repository through the same Server::Impl: the same model lookup,
// admission and limits per model, request deadlines (the smaller of the model's
// request_timeout and the call's gRPC deadline), cancellation when the client goes away,
// body budget, API key (as "authorization: Bearer KEY" metadata) and metrics. Errors map to
// gRPC status codes (grpc_code_for). Messages larger than max_body_bytes are refused by
// gRPC itself (RESOURCE_EXHAUSTED).
//
// Lifecycle. The constructor binds and starts serving on gRPC's own threads; shutdown()
// (or the destructor) refuses new calls and cancels those still running at its deadline.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_GRPC_ENDPOINT_H_
#define KAPSL_SRC_SERVER_GRPC_ENDPOINT_H_

#include <memory>
#include <string>

#include <grpcpp/support/status.h>

#include "kapsl/error.h"
#include "kapsl/server.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace kapsl::server {

// The gRPC status code an Error stands for (kInvalidInput: INVALID_ARGUMENT, kNotFound:
// NOT_FOUND, kOverloaded and kUnavailable: UNAVAILABLE, kTimeout: DEADLINE_EXCEEDED, ...).
grpc::StatusCode grpc_code_for(ErrorCode code) noexcept;

class GrpcEndpoint {
 public:
  // Serves `server` on host:port (0 = any free port). Throws Error(kUnavailable) if the
  // address cannot be bound.
  GrpcEndpoint(Server::Impl& server, const std::string& host, int port);
  GrpcEndpoint(const GrpcEndpoint&) = delete;
  GrpcEndpoint& operator=(const GrpcEndpoint&) = delete;
  ~GrpcEndpoint();

  int port() const noexcept { return port_; }
  // Stops accepting calls and waits for running ones until `deadline`, then cancels them.
  void shutdown(Clock::time_point deadline);

 private:
  class Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_GRPC_ENDPOINT_H_
