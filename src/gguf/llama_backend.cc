#include "gguf/llama_backend.h"

#include "core/backend_log.h"

#include <spdlog/spdlog.h>

#include <mutex>
#include <string>

#include "kapsl/error.h"
#include "llama.h"

namespace kapsl::gguf {
namespace {

thread_local std::string t_last_error;
thread_local ggml_log_level t_last_level = GGML_LOG_LEVEL_INFO;
// While a DeferredDecodeLog lives on this thread: its held-back lines (bounded).
thread_local bool t_deferring = false;
thread_local std::vector<std::pair<ggml_log_level, std::string>> t_deferred;
constexpr size_t kMaxDeferredLines = 64;

void log_line(ggml_log_level level, std::string_view line) {
  switch (level) {
    case GGML_LOG_LEVEL_ERROR: internal::backend_logger().error("llama.cpp: {}", line); break;
    case GGML_LOG_LEVEL_WARN: internal::backend_logger().warn("llama.cpp: {}", line); break;
    case GGML_LOG_LEVEL_INFO: internal::backend_logger().debug("llama.cpp: {}", line); break;
    default: internal::backend_logger().trace("llama.cpp: {}", line); break;
  }
}

std::string_view trim_newline(const char* text) {
  std::string_view s = text != nullptr ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Called by llama.cpp on whatever thread logs; must not throw into C.
void route_log(ggml_log_level level, const char* text, void* /*user_data*/) noexcept {
  try {
    // CONT continues the previous message at its level.
    if (level == GGML_LOG_LEVEL_CONT) level = t_last_level;
    t_last_level = level;
    const std::string_view line = trim_newline(text);
    if (line.empty()) return;
    if (level == GGML_LOG_LEVEL_ERROR && t_last_error.size() < 2048) {
      // Keep every error line of the failing call: the first usually says why, the
      // last only that it failed. Bounded, in case a caller never clears.
      t_last_error.append(t_last_error.empty() ? "" : "; ").append(line);
    }
    const bool held = t_deferring && (level == GGML_LOG_LEVEL_ERROR || level == GGML_LOG_LEVEL_WARN);
    if (!held) {
      log_line(level, line);
    } else if (t_deferred.size() < kMaxDeferredLines) {
      t_deferred.emplace_back(level, std::string(line));
    }
  } catch (...) {
    // Logging is best effort; an allocation failure here must not unwind through C.
  }
}

// ggml calls this, then abort(), on an error it cannot return (GGML_ABORT): say what
// happened where an operator will look, since the process is about to end.
void on_ggml_abort(const char* message) noexcept {
  try {
    internal::backend_logger().critical("llama.cpp: {}; the process ends here", trim_newline(message));
    internal::backend_logger().flush();
  } catch (...) {
  }
}

}  // namespace

void ensure_llama_backend() noexcept {
  static std::once_flag once;
  std::call_once(once, [] {
    ggml_set_abort_callback(on_ggml_abort);
    llama_log_set(route_log, nullptr);
    llama_backend_init();
  });
}

void log_as_llama(int level, const char* text) noexcept {
  route_log(static_cast<ggml_log_level>(level), text, nullptr);
}

DeferredDecodeLog::DeferredDecodeLog() noexcept {
  t_deferring = true;
  t_deferred.clear();
}

DeferredDecodeLog::~DeferredDecodeLog() { finish(0); }

void DeferredDecodeLog::finish(int32_t rc) noexcept {
  if (finished_) return;
  finished_ = true;
  t_deferring = false;
  try {
    for (const auto& [level, line] : t_deferred) log_line(rc == 2 ? GGML_LOG_LEVEL_INFO : level, line);
  } catch (...) {
    // Best effort, as route_log.
  }
  t_deferred.clear();
}

void clear_llama_error() noexcept { t_last_error.clear(); }

std::string last_llama_error() { return t_last_error; }

void throw_decode_error(int32_t rc, std::string_view what) {
  const std::string detail = "llama_decode returned " + std::to_string(rc) +
                             (t_last_error.empty() ? std::string() : " (" + t_last_error + ")");
  if (rc == 1) throw Error::resource_exhausted(std::string(what) + ": no KV cache slot for the batch", detail);
  if (rc == 2) throw Error::cancelled(std::string(what) + ": aborted", detail);
  if (rc == -1) throw Error::invalid_input(std::string(what) + ": invalid batch", detail);
  throw Error::backend(std::string(what) + ": llama.cpp failed", detail);
}

}  // namespace kapsl::gguf
