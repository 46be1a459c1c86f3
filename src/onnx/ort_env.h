// The process-wide ONNX Runtime environment, created once on first use.
//
// ONNX Runtime allows one OrtEnv per process (a second Ort::Env returns the same one), so
// kapsl owns it here, created with a global thread pool that every engine without its own
// intra_op_threads shares. This is the one global of the ONNX component.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_ONNX_ORT_ENV_H_
#define KAPSL_SRC_ONNX_ORT_ENV_H_

#include <onnxruntime_cxx_api.h>

namespace kapsl::onnx {

// The environment; created on the first call. Throws Error(kBackend) if ONNX Runtime
// cannot create it (the next call tries again).
Ort::Env& ort_env();

// Threads per run of the shared pool (KAPSL_ORT_SHARED_THREADS or the default).
int shared_pool_threads();

// CPU memory info for tensors over caller-owned buffers.
const Ort::MemoryInfo& cpu_memory_info();

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_ORT_ENV_H_
