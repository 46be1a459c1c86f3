// RemoteModel: a model served by a running KServe v2 server, as `kapsl bench --url` drives
// it (what perf_analyzer is for Triton): its metadata, and connections that send one
// encoded request over and over — over HTTP with JSON tensors, HTTP with binary tensors
// (Triton's extension), or gRPC with raw contents.
//
// Thread-safety: RemoteModel is immutable after construction and safe for concurrent use;
// a Connection belongs to one thread.
#ifndef KAPSL_TOOLS_KAPSL_REMOTE_CLIENT_H_
#define KAPSL_TOOLS_KAPSL_REMOTE_CLIENT_H_

#include <memory>
#include <string>
#include <string_view>

#include "kapsl/engine.h"

namespace kapsl::cli {

enum class Protocol { kHttpJson, kHttpBinary, kGrpc };
// "http" (JSON tensors), "binary" (HTTP with binary tensors), "grpc".
Protocol parse_protocol(std::string_view name);
const char* protocol_name(Protocol protocol) noexcept;

struct RemoteTarget {
  std::string url;      // http://host:port for HTTP; host:port (or grpc://host:port) for gRPC
  std::string model;
  Protocol protocol = Protocol::kHttpJson;
  std::string api_key;  // sent as "Authorization: Bearer KEY" when not empty
};

class RemoteModel {
 public:
  // Reads the model's metadata. Throws Error: kUnavailable if the server cannot be reached,
  // kNotFound / kInvalidInput with the server's answer otherwise.
  explicit RemoteModel(RemoteTarget target);

  // The inputs and outputs the server declares (name, dtype, shape).
  const ModelInfo& info() const { return info_; }
  const RemoteTarget& target() const { return target_; }

  // One connection (HTTP keep-alive, or its own gRPC channel) sending `request`, encoded once.
  class Connection {
   public:
    virtual ~Connection() = default;
    // Sends the request and waits for the answer: "" if it succeeded, else why not.
    virtual std::string send() = 0;
  };
  std::unique_ptr<Connection> connect(const InferenceRequest& request) const;

 private:
  RemoteTarget target_;
  ModelInfo info_;
};

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_REMOTE_CLIENT_H_
