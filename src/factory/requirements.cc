// validate_requirements: the original's rules and messages, with its unit, version and
// openvino bugs fixed (see backend_factory.h).
#include <algorithm>
#include <array>

#include "core/strings.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

constexpr uint64_t kMiB = 1024 * 1024;

bool is_multi_device(std::string_view strategy) {
  static constexpr std::array<std::string_view, 7> kMulti = {
      "pool", "round-robin", "data-parallel", "pipeline", "pipeline-parallel", "tensor-parallel", "auto"};
  std::string s = internal::to_lower(internal::trim(strategy));
  return std::find(kMulti.begin(), kMulti.end(), s) != kMulti.end();
}

// The device backend a provider runs on; nullopt when the CPU serves it.
std::optional<DeviceBackend> backend_of(const std::string& provider) {
  if (provider == "cpu" || provider == "openvino") return std::nullopt;
  if (provider == "cuda" || provider == "tensorrt") return DeviceBackend::kCuda;
  if (provider == "rocm" || provider == "migraphx") return DeviceBackend::kRocm;
  if (provider == "coreml" || provider == "metal") return DeviceBackend::kMetal;
  if (provider == "directml") return DeviceBackend::kDirectMl;
  return DeviceBackend::kOther;
}

// Why `d` cannot serve the requirements, or "" if it can. `provider` names it in messages.
std::string device_problem(const Device& d, const HardwareRequirements& req, const std::string& provider) {
  uint64_t vram_mb = d.memory_total_bytes / kMiB;
  if (req.min_vram_mb && vram_mb < *req.min_vram_mb) {
    return "Provider " + provider + " (Device " + std::to_string(d.id) + ") has insufficient VRAM: " +
           std::to_string(vram_mb) + "MB < required " + std::to_string(*req.min_vram_mb) + "MB";
  }
  if (d.backend == DeviceBackend::kCuda && !internal::trim(req.min_cuda_version).empty()) {
    if (d.cuda_version.empty()) return "Unknown CUDA version on device";
    if (compare_versions(d.cuda_version, req.min_cuda_version) < 0) {
      return "CUDA version too old: " + d.cuda_version + " < required " + std::string(internal::trim(req.min_cuda_version));
    }
  }
  return {};
}

// Why `provider` cannot serve, or "" if it can.
std::string provider_problem(const std::string& provider, const HardwareRequirements& req, const DeviceInfo& info) {
  std::optional<DeviceBackend> backend = backend_of(provider);
  if (!backend) return {};
  if (*backend == DeviceBackend::kOther || !info.has(*backend)) return "Provider " + provider + " not available";
  if (is_multi_device(req.strategy)) {
    for (const Device& d : info.devices) {
      if (d.backend == *backend && device_problem(d, req, provider).empty()) return {};
    }
    return "No devices meet requirements for provider " + provider;
  }
  int id = req.device_id.value_or(0);
  const Device* d = info.find(*backend, id);
  if (d == nullptr) return "Device ID " + std::to_string(id) + " not found for provider " + provider;
  return device_problem(*d, req, provider);
}

std::string format_reasons(const std::vector<std::string>& reasons) {
  std::string out = "[";
  for (size_t i = 0; i < reasons.size(); ++i) out += (i ? ", \"" : "\"") + reasons[i] + "\"";
  return out + "]";
}

}  // namespace

void validate_requirements(const HardwareRequirements& req, const DeviceInfo& info) {
  if (!internal::trim(req.min_cuda_version).empty()) compare_versions(req.min_cuda_version, "0");  // throws if bad
  if (req.min_memory_mb) {
    uint64_t have_mb = info.cpu.memory_total_bytes / kMiB;
    if (have_mb < *req.min_memory_mb) {
      throw Error::unavailable("Insufficient memory: need " + std::to_string(*req.min_memory_mb) + "MB, have " +
                               std::to_string(have_mb) + "MB");
    }
  }
  std::vector<std::string> providers = normalize_providers(req.preferred_provider, req.fallback_providers);
  if (providers.empty()) return;
  std::vector<std::string> reasons;
  for (const std::string& p : providers) {
    std::string problem = provider_problem(p, req, info);
    if (problem.empty()) return;
    reasons.push_back(std::move(problem));
  }
  throw Error::unavailable("No compatible provider found. Reasons: " + format_reasons(reasons));
}

}  // namespace kapsl
