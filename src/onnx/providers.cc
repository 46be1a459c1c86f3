#include "onnx/providers.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <string_view>
#include <unordered_map>

#include "kapsl/error.h"
#include "onnx/ort_error.h"

namespace kapsl::onnx {
namespace {

struct ProviderName {
  std::string_view kapsl;
  std::string_view ort;
};

constexpr std::array<ProviderName, 8> kProviders = {{
    {"cpu", "CPUExecutionProvider"},
    {"cuda", "CUDAExecutionProvider"},
    {"tensorrt", "TensorrtExecutionProvider"},
    {"rocm", "ROCMExecutionProvider"},
    {"openvino", "OpenVINOExecutionProvider"},
    {"coreml", "CoreMLExecutionProvider"},
    {"directml", "DmlExecutionProvider"},
    {"webgpu", "WebGpuExecutionProvider"},
}};

std::string kapsl_name(const std::string& ort) {
  for (const auto& p : kProviders) {
    if (p.ort == ort) return std::string(p.kapsl);
  }
  std::string s = ort;
  constexpr std::string_view kSuffix = "ExecutionProvider";
  if (s.size() > kSuffix.size() && s.ends_with(kSuffix)) s.resize(s.size() - kSuffix.size());
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

void append_cuda(Ort::SessionOptions& s, int device_id) {
  Ort::CUDAProviderOptions cuda;
  cuda.Update({{"device_id", std::to_string(device_id)}});
  s.AppendExecutionProvider_CUDA_V2(*cuda);
}

void append_tensorrt(Ort::SessionOptions& s, int device_id) {
  Ort::TensorRTProviderOptions trt;
  trt.Update({{"device_id", std::to_string(device_id)}});
  s.AppendExecutionProvider_TensorRT_V2(*trt);
  append_cuda(s, device_id);  // fallback for the nodes TensorRT rejects
}

void append_rocm(Ort::SessionOptions& s, int device_id) {
  OrtROCMProviderOptions rocm;
  rocm.device_id = device_id;
  s.AppendExecutionProvider_ROCM(rocm);
}

void append(Ort::SessionOptions& s, std::string_view provider, int device_id) {
  if (provider == "cpu") return;  // ONNX Runtime always has the CPU provider, last
  if (provider == "cuda") return append_cuda(s, device_id);
  if (provider == "tensorrt") return append_tensorrt(s, device_id);
  if (provider == "rocm") return append_rocm(s, device_id);
  if (provider == "openvino") return void(s.AppendExecutionProvider_OpenVINO_V2({}));
  if (provider == "coreml") return void(s.AppendExecutionProvider("CoreML", {}));
  if (provider == "directml") return void(s.AppendExecutionProvider("DML", {{"device_id", std::to_string(device_id)}}));
  if (provider == "webgpu") return void(s.AppendExecutionProvider("WebGPU", {}));
}

const ProviderName* find_provider(std::string_view name) {
  for (const auto& p : kProviders) {
    if (p.kapsl == name) return &p;
  }
  return nullptr;
}

}  // namespace

std::vector<std::string> available_providers() {
  std::vector<std::string> out;
  for (const auto& ort : ort_call(Phase::kOther, "cannot list providers", [] { return Ort::GetAvailableProviders(); })) {
    out.push_back(kapsl_name(ort));
  }
  return out;
}

void register_provider(Ort::SessionOptions& session, const OnnxOptions& options) {
  const ProviderName* p = find_provider(options.provider);
  if (p == nullptr) {
    throw Error::invalid_input("OnnxOptions.provider is invalid",
                               "expected one of cpu, cuda, tensorrt, rocm, openvino, coreml, directml, webgpu, got '" +
                                   options.provider + "'");
  }
  const auto compiled = available_providers();
  if (std::find(compiled.begin(), compiled.end(), options.provider) == compiled.end()) {
    std::string list;
    for (const auto& c : compiled) list += (list.empty() ? "" : ", ") + c;
    throw Error::unavailable("execution provider '" + options.provider + "' is not available",
                             "it is not compiled into ONNX Runtime " + Ort::GetVersionString() +
                                 " (compiled in: " + list + ")");
  }
  const std::string context = "execution provider '" + options.provider + "' (device " +
                              std::to_string(options.device_id) + ") could not be initialised";
  ort_call(Phase::kProvider, context, [&] { append(session, options.provider, options.device_id); });
}

}  // namespace kapsl::onnx
