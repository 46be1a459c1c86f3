// The logger the backend libraries' own messages go through — ONNX Runtime's, llama.cpp's
// and ggml's — named "backends", so that a program shows or hides them apart from kapsl's
// own messages: spdlog::get("backends")->set_level(...). The CLI shows them only with -v;
// `kapsl serve` shows their warnings. It writes to the sinks of spdlog's default logger as
// they are when the first backend starts (colours only where that sink decides: on a
// terminal).
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_CORE_BACKEND_LOG_H_
#define KAPSL_SRC_CORE_BACKEND_LOG_H_

#include <memory>

#include <spdlog/spdlog.h>

namespace kapsl::internal {

// The "backends" logger, registered with spdlog on first use (level: the default
// logger's). Never null.
spdlog::logger& backend_logger();

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_CORE_BACKEND_LOG_H_
