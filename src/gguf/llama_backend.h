// The process-wide llama.cpp state kapsl owns, and the one place llama.cpp's return codes
// become kapsl::Error.
//
// llama.cpp needs llama_backend_init once per process and has one global logger, which its
// header says is not thread-safe to set; ensure_llama_backend() does both exactly once (the
// first GgufEngine::load calls it). The logger routes llama.cpp/ggml messages to spdlog:
// errors at error, warnings at warn, info at debug (a load prints dozens of lines),
// debug at trace. llama.cpp tells *why* a call failed only to that logger, so the latest
// error line is also kept per thread for the exception message.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_GGUF_LLAMA_BACKEND_H_
#define KAPSL_SRC_GGUF_LLAMA_BACKEND_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kapsl::gguf {

// Initialises llama.cpp and its logging once per process. Never throws.
void ensure_llama_backend() noexcept;

// Forgets this thread's last llama.cpp error line.
void clear_llama_error() noexcept;

// The error lines llama.cpp logged on this thread since clear_llama_error(), joined by
// "; ", or "".
std::string last_llama_error();

// Logs `text` as llama.cpp's logger would at `level` (a ggml_log_level): the callback
// ensure_llama_backend() installs. For tests — llama.cpp is linked into libkapsl with its
// symbols hidden, so a test's own llama_log_get reaches another copy.
void log_as_llama(int level, const char* text) noexcept;

// Holds back the warning and error lines llama.cpp logs on this thread while it lives,
// because whether they are errors depends on the decode's return code: a decode aborted on
// purpose (rc 2: every sequence in it was cancelled or timed out) logs "failed to compute
// graph" and friends, which are not backend errors. finish(rc) logs them at their level,
// or at debug when rc is 2; the destructor calls finish(0) if finish was not called.
// Not nestable; one per thread at a time.
class DeferredDecodeLog {
 public:
  DeferredDecodeLog() noexcept;
  DeferredDecodeLog(const DeferredDecodeLog&) = delete;
  DeferredDecodeLog& operator=(const DeferredDecodeLog&) = delete;
  ~DeferredDecodeLog();

  void finish(int32_t rc) noexcept;

 private:
  bool finished_ = false;
};

// Throws the kapsl::Error for a failed llama_decode/llama_encode (rc != 0):
// 1 -> kResourceExhausted, 2 -> kCancelled, -1 -> kInvalidInput, < -1 -> kBackend.
[[noreturn]] void throw_decode_error(int32_t rc, std::string_view what);

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_LLAMA_BACKEND_H_
