// NVIDIA GPUs: NVML opened with dlopen at run time (no build-time dependency on the
// driver), else nvidia-smi under a timeout.
#include <dlfcn.h>

#include <cstring>
#include <memory>

#include "devices/devices_internal.h"
#include "core/strings.h"
#include "devices/subprocess.h"

namespace kapsl::internal {
namespace {

// The few NVML declarations used, as in nvml.h (ABI-stable since CUDA 8).
using NvmlReturn = int;
using NvmlDevice = void*;
struct NvmlMemory {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct NvmlPciInfo {
  char bus_id_legacy[16];
  unsigned int domain, bus, device, pci_device_id, pci_sub_system_id;
  char bus_id[32];
  char reserved[64];  // slack in case a driver writes a larger struct
};
constexpr NvmlReturn kNvmlSuccess = 0;

struct DlCloser {
  void operator()(void* handle) const { ::dlclose(handle); }
};
using DlHandle = std::unique_ptr<void, DlCloser>;

struct NvmlApi {
  NvmlReturn (*init)();
  NvmlReturn (*shutdown)();
  NvmlReturn (*device_count)(unsigned*);
  NvmlReturn (*device_by_index)(unsigned, NvmlDevice*);
  NvmlReturn (*device_name)(NvmlDevice, char*, unsigned);
  NvmlReturn (*device_memory)(NvmlDevice, NvmlMemory*);
  NvmlReturn (*device_capability)(NvmlDevice, int*, int*);
  NvmlReturn (*device_uuid)(NvmlDevice, char*, unsigned);
  NvmlReturn (*device_pci)(NvmlDevice, NvmlPciInfo*);
  NvmlReturn (*driver_version)(char*, unsigned);
  NvmlReturn (*cuda_driver_version)(int*);
};

template <typename Fn>
bool bind(void* lib, const char* name, Fn& fn) {
  fn = reinterpret_cast<Fn>(::dlsym(lib, name));
  return fn != nullptr;
}

bool bind_all(void* lib, NvmlApi& api) {
  return bind(lib, "nvmlInit_v2", api.init) && bind(lib, "nvmlShutdown", api.shutdown) &&
         bind(lib, "nvmlDeviceGetCount_v2", api.device_count) &&
         bind(lib, "nvmlDeviceGetHandleByIndex_v2", api.device_by_index) &&
         bind(lib, "nvmlDeviceGetName", api.device_name) && bind(lib, "nvmlDeviceGetMemoryInfo", api.device_memory) &&
         bind(lib, "nvmlDeviceGetCudaComputeCapability", api.device_capability) &&
         bind(lib, "nvmlDeviceGetUUID", api.device_uuid) && bind(lib, "nvmlDeviceGetPciInfo_v3", api.device_pci) &&
         bind(lib, "nvmlSystemGetDriverVersion", api.driver_version) &&
         bind(lib, "nvmlSystemGetCudaDriverVersion_v2", api.cuda_driver_version);
}

Device nvml_device(const NvmlApi& api, NvmlDevice handle, unsigned index) {
  Device d;
  d.backend = DeviceBackend::kCuda;
  d.id = static_cast<int>(index);
  char text[128] = {};
  if (api.device_name(handle, text, sizeof text) == kNvmlSuccess) d.name = text;
  NvmlMemory mem{};
  if (api.device_memory(handle, &mem) == kNvmlSuccess) {
    d.memory_total_bytes = mem.total;
    d.memory_free_bytes = mem.free;
  }
  int major = 0, minor = 0;
  if (api.device_capability(handle, &major, &minor) == kNvmlSuccess) {
    d.compute_capability = std::to_string(major) + "." + std::to_string(minor);
  }
  char uuid[128] = {};
  if (api.device_uuid(handle, uuid, sizeof uuid) == kNvmlSuccess) d.uuid = uuid;
  NvmlPciInfo pci{};
  if (api.device_pci(handle, &pci) == kNvmlSuccess) d.pci_bus_id = std::string(pci.bus_id, ::strnlen(pci.bus_id, sizeof pci.bus_id));
  set_cuda_precision_flags(d);
  return d;
}

std::vector<Device> nvml_devices(const NvmlApi& api) {
  std::vector<Device> out;
  char driver[128] = {};
  std::string driver_version = api.driver_version(driver, sizeof driver) == kNvmlSuccess ? driver : "";
  int cuda = 0;
  std::string cuda_version;
  if (api.cuda_driver_version(&cuda) == kNvmlSuccess && cuda > 0) {
    cuda_version = std::to_string(cuda / 1000) + "." + std::to_string((cuda % 1000) / 10);
  }
  unsigned count = 0;
  if (api.device_count(&count) != kNvmlSuccess) return out;
  for (unsigned i = 0; i < count; ++i) {
    NvmlDevice handle = nullptr;
    if (api.device_by_index(i, &handle) != kNvmlSuccess) continue;
    Device d = nvml_device(api, handle, i);
    d.driver_version = driver_version;
    d.cuda_version = cuda_version;
    out.push_back(std::move(d));
  }
  return out;
}

std::string field(const std::vector<std::string>& fields, size_t i) {
  if (i >= fields.size()) return {};
  std::string v(trim(fields[i]));
  std::string lower = to_lower(v);
  return (lower == "[n/a]" || lower == "n/a" || lower.find("not supported") != std::string::npos) ? "" : v;
}

uint64_t mib_to_bytes(const std::string& mib) {
  if (mib.empty() || mib.find_first_not_of("0123456789") != std::string::npos || mib.size() > 12) return 0;
  return std::stoull(mib) * 1024 * 1024;
}

}  // namespace

void set_cuda_precision_flags(Device& device) {
  if (device.compute_capability.empty()) return;
  int major = std::atoi(device.compute_capability.c_str());
  device.supports_fp16 = major >= 5;
  device.supports_int8 = major >= 6;
}

std::optional<std::vector<Device>> probe_cuda_nvml(const std::string& library, std::vector<std::string>& notes) {
  if (library.empty()) return std::nullopt;
  DlHandle lib(::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL));
  if (!lib) {
    notes.push_back("nvml: cannot load " + library);
    return std::nullopt;
  }
  NvmlApi api{};
  if (!bind_all(lib.get(), api)) {
    notes.push_back("nvml: " + library + " lacks a required function");
    return std::nullopt;
  }
  if (NvmlReturn rc = api.init(); rc != kNvmlSuccess) {
    notes.push_back("nvml: nvmlInit_v2 failed with code " + std::to_string(rc));
    return std::nullopt;
  }
  std::vector<Device> devices = nvml_devices(api);
  api.shutdown();
  return devices;
}

std::vector<Device> parse_nvidia_smi_csv(std::string_view text) {
  std::vector<Device> out;
  for (const std::string& line : split(text, '\n')) {
    std::vector<std::string> f = split(line, ',');
    if (f.size() < 7) continue;
    std::string index = field(f, 0);
    if (index.empty() || index.find_first_not_of("0123456789") != std::string::npos || index.size() > 6) continue;
    Device d;
    d.backend = DeviceBackend::kCuda;
    d.id = std::stoi(index);
    d.name = field(f, 1);
    d.memory_total_bytes = mib_to_bytes(field(f, 2));
    d.memory_free_bytes = mib_to_bytes(field(f, 3));
    d.pci_bus_id = field(f, 4);
    d.driver_version = field(f, 5);
    d.compute_capability = field(f, 6);
    d.uuid = field(f, 7);
    set_cuda_precision_flags(d);
    out.push_back(std::move(d));
  }
  return out;
}

std::string parse_nvidia_smi_cuda_version(std::string_view text) {
  constexpr std::string_view kKey = "CUDA Version:";
  size_t pos = text.find(kKey);
  if (pos == std::string_view::npos) return {};
  std::vector<std::string> words = split_blank(text.substr(pos + kKey.size(), 32));
  if (words.empty()) return {};
  std::string v = words[0];
  return v.find_first_not_of("0123456789.") == std::string::npos ? v : "";
}

std::vector<Device> probe_cuda_smi(const ProbeOptions& options, std::vector<std::string>& notes) {
  CommandResult query = run_command(
      {options.nvidia_smi,
       "--query-gpu=index,name,memory.total,memory.free,pci.bus_id,driver_version,compute_cap,uuid",
       "--format=csv,noheader,nounits"},
      options.command_timeout);
  if (!query.ok()) {
    notes.push_back("nvidia-smi: " + (query.started ? query.error : "not found"));
    return {};
  }
  std::vector<Device> devices = parse_nvidia_smi_csv(query.output);
  if (devices.empty()) return devices;
  // The plain report is the only nvidia-smi output that names the driver's CUDA version.
  CommandResult plain = run_command({options.nvidia_smi}, options.command_timeout);
  std::string cuda_version = plain.ok() ? parse_nvidia_smi_cuda_version(plain.output) : "";
  if (!plain.ok()) notes.push_back("nvidia-smi: CUDA version unknown: " + plain.error);
  for (Device& d : devices) d.cuda_version = cuda_version;
  return devices;
}

}  // namespace kapsl::internal
