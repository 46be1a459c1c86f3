// HTTP plumbing shared by the routes: the per-request context that the access log reads,
// error responses in each API's shape, and the mapping from kapsl::Error codes to statuses.
//
// KServe errors are {"error": "<message>"} (the protocol's error body); OpenAI errors are
// {"error": {"message", "type", "param", "code"}}. Overload answers carry Retry-After.
//
// Thread-safety: the context is thread-local: cpp-httplib runs a request's handler, its
// streamed body and its logger on one worker thread, one request at a time.
#ifndef KAPSL_SRC_SERVER_HTTP_UTIL_H_
#define KAPSL_SRC_SERVER_HTTP_UTIL_H_

#include <stdexcept>
#include <string>
#include <string_view>

#include <httplib.h>

#include "kapsl/error.h"
#include "kapsl/request.h"

namespace kapsl::server {

enum class ApiStyle { kKServe, kOpenAi };

// What the access log reports about the request being served on this thread.
struct RequestContext {
  std::string request_id;
  std::string model;
  Clock::time_point start;
  double queue_s = 0;
  double compute_s = 0;
  std::string error;  // the error message, if the request failed
  bool counted = false;  // its outcome is in the model's metrics already
  bool streams = false;  // its body is streamed: it tells the read clock itself when it ends
};
RequestContext& current_request();

// An answer that is an HTTP matter rather than a kapsl::Error (413: a body declared larger
// than the limit is refused before it is read).
struct HttpError : std::runtime_error {
  HttpError(int status_code, const std::string& message) : std::runtime_error(message), status(status_code) {}
  int status;
};

// The status for an error code in `style` (kOverloaded: 503 for KServe, 429 for OpenAI).
int status_for(ErrorCode code, ApiStyle style);

// Writes an error response and records the message in current_request().
void send_error(httplib::Response& res, ApiStyle style, int status, const std::string& message,
                std::string_view openai_code = {});
void send_error(httplib::Response& res, ApiStyle style, const Error& error);

// The API style a path belongs to: /v1/... is OpenAI, everything else KServe.
ApiStyle style_for_path(std::string_view path);

// Whether `a` equals `b`, in time that depends only on their lengths.
bool constant_time_equals(std::string_view a, std::string_view b);
// Whether the request's Authorization header is "Bearer <api_key>": the scheme in any case,
// blanks around the key ignored, the key compared in constant time.
bool authorized(const httplib::Request& req, std::string_view api_key);
// The same check of one Authorization value (gRPC's "authorization" metadata).
bool bearer_matches(std::string_view header, std::string_view api_key);

// A new request id: 16 hex digits.
std::string new_request_id();

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_HTTP_UTIL_H_
