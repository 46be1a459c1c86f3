#include "onnx/ort_env.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "core/backend_log.h"
#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/error.h"
#include "kapsl/onnx_engine.h"
#include "onnx/ort_error.h"

namespace kapsl::onnx {
namespace {

int threads_from_env() {
  const char* v = std::getenv("KAPSL_ORT_SHARED_THREADS");
  if (v == nullptr) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (end != v && *end == '\0' && n > 0 && n <= 1024) ? static_cast<int>(n) : 0;
}

// ONNX Runtime's messages, through the backends logger rather than its own coloured
// stderr printer. Called by ONNX Runtime on any thread; must not throw into C.
void route_ort_log(void*, OrtLoggingLevel severity, const char* category, const char*, const char*,
                   const char* message) noexcept {
  try {
    auto& log = internal::backend_logger();
    switch (severity) {
      case ORT_LOGGING_LEVEL_FATAL:
      case ORT_LOGGING_LEVEL_ERROR: log.error("onnxruntime: [{}] {}", category, message); break;
      case ORT_LOGGING_LEVEL_WARNING: log.warn("onnxruntime: [{}] {}", category, message); break;
      case ORT_LOGGING_LEVEL_INFO: log.debug("onnxruntime: [{}] {}", category, message); break;
      default: log.trace("onnxruntime: [{}] {}", category, message); break;
    }
  } catch (...) {
    // Logging is best effort.
  }
}

std::unique_ptr<Ort::Env> make_env() {
  Ort::ThreadingOptions threading;
  threading.SetGlobalIntraOpNumThreads(shared_pool_threads());
  threading.SetGlobalInterOpNumThreads(1);
  // Spinning workers would burn the cores that other engines (and llama.cpp) need.
  threading.SetGlobalSpinControl(0);
  return std::make_unique<Ort::Env>(threading, route_ort_log, nullptr, ORT_LOGGING_LEVEL_WARNING, "kapsl");
}

}  // namespace

int shared_pool_threads() {
  static const int threads = [] {
    if (int n = threads_from_env(); n > 0) return n;
    return OnnxEngine::default_shared_intra_op_threads();
  }();
  return threads;
}

Ort::Env& ort_env() {
  static internal::Mutex mu;
  static std::unique_ptr<Ort::Env> env GUARDED_BY(mu);  // never destroyed before exit: sessions may outlive main
  internal::MutexLock lock(&mu);
  if (!env) {
    try {
      env = make_env();
    } catch (const Ort::Exception& e) {
      throw Error::backend("cannot create the ONNX Runtime environment", e.what());
    }
  }
  return *env;
}

const Ort::MemoryInfo& cpu_memory_info() {
  static const Ort::MemoryInfo info = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  return info;
}

}  // namespace kapsl::onnx

namespace kapsl {

int OnnxEngine::default_shared_intra_op_threads() {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  if (hw <= 4) return 1;
  return static_cast<int>(std::min(8u, hw / 2));
}

}  // namespace kapsl
