#include "server/http_util.h"

#include <atomic>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "core/strings.h"

namespace kapsl::server {

using json = nlohmann::json;

RequestContext& current_request() {
  thread_local RequestContext context;
  return context;
}

int status_for(ErrorCode code, ApiStyle style) {
  switch (code) {
    case ErrorCode::kInvalidInput: return 400;
    case ErrorCode::kNotFound: return 404;
    case ErrorCode::kOverloaded: return style == ApiStyle::kOpenAi ? 429 : 503;
    case ErrorCode::kUnavailable: return 503;
    case ErrorCode::kResourceExhausted: return 503;
    case ErrorCode::kTimeout: return 504;
    case ErrorCode::kCancelled: return 499;  // the client went away (nginx's convention)
    case ErrorCode::kModelLoad:
    case ErrorCode::kBackend:
    case ErrorCode::kInference: return 500;
  }
  return 500;
}

namespace {

const char* openai_type(int status) {
  if (status == 401) return "authentication_error";
  if (status == 404) return "not_found_error";
  if (status == 429) return "rate_limit_error";
  if (status >= 500) return status == 503 ? "unavailable_error" : "server_error";
  return "invalid_request_error";
}

}  // namespace

void send_error(httplib::Response& res, ApiStyle style, int status, const std::string& message,
                std::string_view openai_code) {
  json body;
  if (style == ApiStyle::kKServe) {
    body = {{"error", message}};
  } else {
    body = {{"error",
             {{"message", message},
              {"type", openai_type(status)},
              {"param", nullptr},
              {"code", openai_code.empty() ? json(nullptr) : json(openai_code)}}}};
  }
  res.status = status;
  if (status == 429 || status == 503) res.set_header("Retry-After", "1");
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  current_request().error = message;
}

void send_error(httplib::Response& res, ApiStyle style, const Error& error) {
  const int status = status_for(error.code(), style);
  std::string_view code;
  if (error.code() == ErrorCode::kNotFound) code = "model_not_found";
  send_error(res, style, status, error.message(), code);
}

ApiStyle style_for_path(std::string_view path) {
  return path.substr(0, 4) == "/v1/" ? ApiStyle::kOpenAi : ApiStyle::kKServe;
}

bool constant_time_equals(std::string_view a, std::string_view b) {
  // Compare every byte of the longer string so the time does not reveal where a mismatch is.
  const size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

bool authorized(const httplib::Request& req, std::string_view api_key) {
  return bearer_matches(req.get_header_value("Authorization"), api_key);
}

bool bearer_matches(std::string_view header, std::string_view api_key) {
  // RFC 9110 §11.1: the scheme is case-insensitive, and one or more blanks follow it.
  constexpr std::string_view kBearer = "bearer";
  std::string_view h = header;
  if (h.size() <= kBearer.size() || internal::to_lower(h.substr(0, kBearer.size())) != kBearer) return false;
  h.remove_prefix(kBearer.size());
  if (h.front() != ' ' && h.front() != '\t') return false;
  return constant_time_equals(internal::trim(h), api_key);
}

std::string new_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

}  // namespace kapsl::server
