// Devices: what the machine offers to run models on — the CPU (cores, memory, instruction
// set features) and accelerators (CUDA GPUs through NVML or nvidia-smi, AMD GPUs through
// rocm-smi) — as found by probing at run time.
//
// Probing never fails the process and never hangs: each source that is missing, fails or
// takes longer than its timeout is skipped and the reason is added to DeviceInfo::notes,
// so a machine without accelerators simply reports its CPU. NVML is loaded with dlopen, so
// kapsl has no build-time dependency on the NVIDIA driver. All memory figures are bytes.
//
// A device's identity is the pair (backend, id): ids are numbered per backend, so the CPU
// is (kCpu, 0) and the first CUDA GPU is (kCuda, 0), as in the original.
//
// Ownership: DeviceInfo is a plain value. cached_devices() returns a reference to a
// process-wide value that lives until exit.
// Thread-safety: safe for concurrent use without external synchronization (probe_devices
// and cached_devices may be called from any thread; DeviceInfo itself is a value whose const
// methods may run concurrently).
#ifndef KAPSL_DEVICES_H_
#define KAPSL_DEVICES_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kapsl {

enum class DeviceBackend { kCpu, kCuda, kRocm, kMetal, kDirectMl, kOther };

// "cpu", "cuda", "rocm", "metal", "directml", "other".
const char* device_backend_name(DeviceBackend backend) noexcept;

struct CpuInfo {
  std::string model_name;           // "AMD EPYC 7B13", "" if unknown
  uint32_t logical_cores = 1;       // hardware threads the process may use (>= 1)
  uint32_t physical_cores = 1;      // distinct cores (>= 1; = logical when unknown)
  uint64_t memory_total_bytes = 0;  // installed RAM (MemTotal); 0 = unknown
  uint64_t memory_available_bytes = 0;  // RAM available for new allocations (MemAvailable)
  std::vector<std::string> features;    // ISA features, lower case, sorted: "avx2", "fma", "neon", ...

  // Whether `feature` (case-insensitive) is in features.
  bool has_feature(std::string_view feature) const;
};

struct Device {
  DeviceBackend backend = DeviceBackend::kCpu;
  int id = 0;                       // index within its backend
  std::string name;                 // "NVIDIA H100 80GB HBM3", "cpu"
  uint64_t memory_total_bytes = 0;  // device memory; 0 = unknown
  uint64_t memory_free_bytes = 0;   // free device memory at probe time; 0 = unknown
  uint32_t compute_units = 0;       // CPU: logical cores; GPUs: 0 unless known
  std::string pci_bus_id;           // "00000000:17:00.0", "" if unknown
  std::string uuid;                 // GPU or MIG UUID, "" if unknown
  std::string driver_version;       // "550.54.15", "" if unknown
  std::string cuda_version;         // newest CUDA the driver supports ("12.4"); CUDA only
  std::string compute_capability;   // "9.0"; CUDA only
  bool supports_fp16 = true;        // CUDA: capability major >= 5 (true when unknown)
  bool supports_int8 = true;        // CUDA: capability major >= 6 (true when unknown)
};

struct DeviceInfo {
  CpuInfo cpu;
  std::string os_type;     // "linux"
  std::string os_release;  // kernel release, "" if unknown
  std::vector<Device> devices;     // the CPU first, then accelerators
  std::vector<std::string> notes;  // why a probe source found nothing ("nvidia-smi: timed out")

  // Whether a device of `backend` is present (kCpu: always).
  bool has(DeviceBackend backend) const;
  // Whether a device can serve `provider` (case-insensitive, trimmed): cpu and openvino
  // (OpenVINO runs on the CPU) always; cuda and tensorrt need a CUDA device; rocm and migraphx
  // a ROCm device; coreml and metal a Metal device; directml a DirectML device; any other
  // name is false.
  bool has_provider(std::string_view provider) const;
  // The device (backend, id), or nullptr.
  const Device* find(DeviceBackend backend, int id) const;
};

struct ProbeOptions {
  // --- Behaviour
  bool probe_cuda = true;  // look for NVIDIA GPUs
  bool probe_rocm = true;  // look for AMD GPUs
  // NVML shared library opened with dlopen; "" = skip NVML and use nvidia-smi.
  std::string nvml_library = "libnvidia-ml.so.1";
  std::string nvidia_smi = "nvidia-smi";  // command (searched in PATH) used when NVML fails
  std::string rocm_smi = "rocm-smi";      // command (searched in PATH) for ROCm
  std::string proc_root = "/proc";        // where cpuinfo and meminfo are read (tests point it elsewhere)
  // --- Performance
  std::chrono::milliseconds command_timeout{3000};  // each external command is killed after this
};

// Probes the machine now. Never throws for a missing or failing source (see notes); only
// std::bad_alloc can escape. Takes at most about 3 × command_timeout.
DeviceInfo probe_devices(const ProbeOptions& options = {});

// The result of probe_devices() with default options, probed on the first call and kept
// for the process lifetime (devices plugged in later are not seen). Thread-safe.
const DeviceInfo& cached_devices();

// Compares dotted numeric versions part by part as numbers: "12.10" > "12.2", "12" ==
// "12.0", "9.2" < "11.8". A trailing non-numeric suffix in a part is ignored ("12.4-rc1" is
// 12.4). Returns <0, 0 or >0. Throws Error(kInvalidInput) naming the version if either is
// empty or a part does not start with a digit.
int compare_versions(std::string_view a, std::string_view b);

}  // namespace kapsl

#endif  // KAPSL_DEVICES_H_
