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

namespace kapsl::gguf {

// Initialises llama.cpp and its logging once per process. Never throws.
void ensure_llama_backend() noexcept;

// Forgets this thread's last llama.cpp error line.
void clear_llama_error() noexcept;

// The error lines llama.cpp logged on this thread since clear_llama_error(), joined by
// "; ", or "".
std::string last_llama_error();

// Throws the kapsl::Error for a failed llama_decode/llama_encode (rc != 0):
// 1 -> kResourceExhausted, 2 -> kCancelled, -1 -> kInvalidInput, < -1 -> kBackend.
[[noreturn]] void throw_decode_error(int32_t rc, std::string_view what);

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_LLAMA_BACKEND_H_
