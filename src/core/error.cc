#include "kapsl/error.h"

#include <utility>

namespace kapsl {

const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kInvalidInput: return "InvalidInput";
    case ErrorCode::kModelLoad: return "ModelLoad";
    case ErrorCode::kNotFound: return "NotFound";
    case ErrorCode::kBackend: return "Backend";
    case ErrorCode::kInference: return "Inference";
    case ErrorCode::kOverloaded: return "Overloaded";
    case ErrorCode::kTimeout: return "Timeout";
    case ErrorCode::kResourceExhausted: return "ResourceExhausted";
    case ErrorCode::kCancelled: return "Cancelled";
    case ErrorCode::kUnavailable: return "Unavailable";
  }
  return "Unknown";
}

Error::Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

namespace {
std::string join(std::string_view msg, std::string_view detail) {
  std::string s(msg);
  if (!detail.empty()) {
    s += ": ";
    s += detail;
  }
  return s;
}
}  // namespace

Error Error::invalid_input(std::string_view m, std::string_view d) { return {ErrorCode::kInvalidInput, join(m, d)}; }
Error Error::model_load(std::string_view m, std::string_view d) { return {ErrorCode::kModelLoad, join(m, d)}; }
Error Error::not_found(std::string_view m, std::string_view d) { return {ErrorCode::kNotFound, join(m, d)}; }
Error Error::backend(std::string_view m, std::string_view d) { return {ErrorCode::kBackend, join(m, d)}; }
Error Error::inference(std::string_view m, std::string_view d) { return {ErrorCode::kInference, join(m, d)}; }
Error Error::overloaded(std::string_view m, std::string_view d) { return {ErrorCode::kOverloaded, join(m, d)}; }
Error Error::timeout(std::string_view m, std::string_view d) { return {ErrorCode::kTimeout, join(m, d)}; }
Error Error::resource_exhausted(std::string_view m, std::string_view d) {
  return {ErrorCode::kResourceExhausted, join(m, d)};
}
Error Error::cancelled(std::string_view m, std::string_view d) { return {ErrorCode::kCancelled, join(m, d)}; }
Error Error::unavailable(std::string_view m, std::string_view d) { return {ErrorCode::kUnavailable, join(m, d)}; }

std::string Error::to_string() const { return std::string(error_code_name(code_)) + ": " + message_; }

}  // namespace kapsl
