// DeviceInfo queries, version comparison, and the probe that puts the sources together.
#include <sys/utsname.h>

#include <algorithm>
#include <mutex>

#include "devices/devices_internal.h"
#include "core/strings.h"
#include "kapsl/devices.h"
#include "kapsl/error.h"

namespace kapsl {
namespace {

// Numeric parts of a dotted version; throws naming `v` if it is not one.
std::vector<uint64_t> version_parts(std::string_view v) {
  std::string_view t = internal::trim(v);
  std::vector<uint64_t> parts;
  for (const std::string& part : internal::split(t, '.')) {
    size_t digits = 0;
    while (digits < part.size() && part[digits] >= '0' && part[digits] <= '9') ++digits;
    if (digits == 0 || digits > 18) {
      throw Error::invalid_input("not a numeric version", "expected digits separated by dots like \"12.4\", got \"" +
                                                              std::string(v) + "\"");
    }
    parts.push_back(std::stoull(part.substr(0, digits)));
    if (digits < part.size()) break;  // "4-rc1": the suffix ends the version
  }
  return parts;
}

std::string os_release() {
  utsname u{};
  return ::uname(&u) == 0 ? std::string(u.release) : std::string();
}

}  // namespace

const char* device_backend_name(DeviceBackend backend) noexcept {
  switch (backend) {
    case DeviceBackend::kCpu: return "cpu";
    case DeviceBackend::kCuda: return "cuda";
    case DeviceBackend::kRocm: return "rocm";
    case DeviceBackend::kMetal: return "metal";
    case DeviceBackend::kDirectMl: return "directml";
    case DeviceBackend::kOther: return "other";
  }
  return "other";
}

bool CpuInfo::has_feature(std::string_view feature) const {
  std::string f = internal::to_lower(internal::trim(feature));
  return std::find(features.begin(), features.end(), f) != features.end();
}

bool DeviceInfo::has(DeviceBackend backend) const {
  if (backend == DeviceBackend::kCpu) return true;
  return std::any_of(devices.begin(), devices.end(), [backend](const Device& d) { return d.backend == backend; });
}

bool DeviceInfo::has_provider(std::string_view provider) const {
  std::string p = internal::to_lower(internal::trim(provider));
  if (p == "cpu" || p == "openvino") return true;
  if (p == "cuda" || p == "tensorrt") return has(DeviceBackend::kCuda);
  if (p == "rocm" || p == "migraphx") return has(DeviceBackend::kRocm);
  if (p == "coreml" || p == "metal") return has(DeviceBackend::kMetal);
  if (p == "directml") return has(DeviceBackend::kDirectMl);
  return false;
}

const Device* DeviceInfo::find(DeviceBackend backend, int id) const {
  for (const Device& d : devices) {
    if (d.backend == backend && d.id == id) return &d;
  }
  return nullptr;
}

int compare_versions(std::string_view a, std::string_view b) {
  std::vector<uint64_t> pa = version_parts(a);
  std::vector<uint64_t> pb = version_parts(b);
  size_t n = std::max(pa.size(), pb.size());
  pa.resize(n, 0);
  pb.resize(n, 0);
  for (size_t i = 0; i < n; ++i) {
    if (pa[i] != pb[i]) return pa[i] < pb[i] ? -1 : 1;
  }
  return 0;
}

DeviceInfo probe_devices(const ProbeOptions& options) {
  DeviceInfo info;
  info.os_type = "linux";
  info.os_release = os_release();
  info.cpu = internal::probe_cpu(options.proc_root, info.notes);
  Device cpu;
  cpu.backend = DeviceBackend::kCpu;
  cpu.name = info.cpu.model_name.empty() ? "cpu" : info.cpu.model_name;
  cpu.memory_total_bytes = info.cpu.memory_total_bytes;
  cpu.memory_free_bytes = info.cpu.memory_available_bytes;
  cpu.compute_units = info.cpu.logical_cores;
  info.devices.push_back(std::move(cpu));
  if (options.probe_cuda) {
    std::optional<std::vector<Device>> gpus = internal::probe_cuda_nvml(options.nvml_library, info.notes);
    if (!gpus) gpus = internal::probe_cuda_smi(options, info.notes);
    info.devices.insert(info.devices.end(), gpus->begin(), gpus->end());
  }
  if (options.probe_rocm) {
    std::vector<Device> gpus = internal::probe_rocm_smi(options, info.notes);
    info.devices.insert(info.devices.end(), gpus.begin(), gpus.end());
  }
  return info;
}

const DeviceInfo& cached_devices() {
  static const DeviceInfo info = probe_devices();
  return info;
}

}  // namespace kapsl
