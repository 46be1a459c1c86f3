// The one boundary where Ort::Exception becomes kapsl::Error.
//
// Every call into ONNX Runtime made by the ONNX component is wrapped so that an
// Ort::Exception is translated here, with the phase deciding the code:
//   load:     ORT_MODEL_LOAD_CANCELED -> kCancelled; everything else -> kModelLoad (a model
//             ONNX Runtime rejects at load, for whatever code, is a model problem).
//   run:      ORT_INVALID_ARGUMENT -> kInvalidInput; ORT_MODEL_LOAD_CANCELED -> kCancelled;
//             everything else -> kInference.
//   provider: everything -> kUnavailable.
//   other:    ORT_INVALID_ARGUMENT -> kInvalidInput; else kBackend.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_ONNX_ORT_ERROR_H_
#define KAPSL_SRC_ONNX_ORT_ERROR_H_

#include <onnxruntime_cxx_api.h>

#include <string_view>

#include "kapsl/error.h"

namespace kapsl::onnx {

enum class Phase { kLoad, kRun, kProvider, kOther };

// The kapsl error for `e` raised during `phase`; `context` leads the message ("cannot load
// 'model.onnx'") and ONNX Runtime's reason follows it.
Error translate(const Ort::Exception& e, Phase phase, std::string_view context);

// Runs fn(); an Ort::Exception it throws is rethrown as translate(e, phase, context).
template <typename Fn>
decltype(auto) ort_call(Phase phase, std::string_view context, Fn&& fn) {
  try {
    return fn();
  } catch (const Ort::Exception& e) {
    throw translate(e, phase, context);
  }
}

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_ORT_ERROR_H_
