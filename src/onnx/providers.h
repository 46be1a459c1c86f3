// Execution providers: kapsl names <-> ONNX Runtime names, and registration on a session.
//
// One function per provider in providers.cc; each registers its provider with the device id
// where the provider has one. TensorRT registers CUDA after itself, so that the nodes
// TensorRT rejects run on the GPU rather than the CPU.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_ONNX_PROVIDERS_H_
#define KAPSL_SRC_ONNX_PROVIDERS_H_

#include <onnxruntime_cxx_api.h>

#include <string>
#include <vector>

#include "kapsl/onnx_engine.h"

namespace kapsl::onnx {

// Providers compiled into the linked ONNX Runtime, as kapsl names.
std::vector<std::string> available_providers();

// Registers options.provider (resolved, lower-case) on `session`. Throws:
// kInvalidInput (an unknown provider name, listing the known ones), kUnavailable (not compiled
// in, or ONNX Runtime failed to initialise it; the message names the provider and the reason).
void register_provider(Ort::SessionOptions& session, const OnnxOptions& options);

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_PROVIDERS_H_
