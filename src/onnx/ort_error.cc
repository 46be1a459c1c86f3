#include "onnx/ort_error.h"

#include <string>

namespace kapsl::onnx {
namespace {

ErrorCode code_for(OrtErrorCode ort, Phase phase) {
  if (ort == ORT_MODEL_LOAD_CANCELED) return ErrorCode::kCancelled;
  switch (phase) {
    case Phase::kLoad: return ErrorCode::kModelLoad;
    case Phase::kProvider: return ErrorCode::kUnavailable;
    case Phase::kRun: return ort == ORT_INVALID_ARGUMENT ? ErrorCode::kInvalidInput : ErrorCode::kInference;
    case Phase::kOther: return ort == ORT_INVALID_ARGUMENT ? ErrorCode::kInvalidInput : ErrorCode::kBackend;
  }
  return ErrorCode::kBackend;
}

}  // namespace

Error translate(const Ort::Exception& e, Phase phase, std::string_view context) {
  std::string message(context);
  message += ": ONNX Runtime says: ";
  message += e.what();
  return Error(code_for(e.GetOrtErrorCode(), phase), std::move(message));
}

}  // namespace kapsl::onnx
