// Internals of device probing, exposed for tests: the parsers of each source's text and
// the per-backend probes.
#ifndef KAPSL_SRC_DEVICES_DEVICES_INTERNAL_H_
#define KAPSL_SRC_DEVICES_DEVICES_INTERNAL_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/devices.h"

namespace kapsl::internal {

// Model name, logical/physical core counts and ISA flags from /proc/cpuinfo text. Logical
// cores = "processor" entries; physical = distinct (physical id, core id) pairs, else the
// logical count. Features come from "flags" (x86) or "Features" (Arm), lower-cased, sorted,
// unique.
CpuInfo parse_cpuinfo(std::string_view text);

// MemTotal and MemAvailable (kB in the file) from /proc/meminfo text into `cpu`, in bytes.
// MemAvailable falls back to MemFree + Buffers + Cached on kernels that lack it.
void parse_meminfo(std::string_view text, CpuInfo& cpu);

// The CPU as probed from `proc_root`: cpuinfo, meminfo, affinity. Never throws; problems
// are appended to notes.
CpuInfo probe_cpu(const std::string& proc_root, std::vector<std::string>& notes);

// GPUs from `nvidia-smi --query-gpu=index,name,memory.total,memory.free,pci.bus_id,
// driver_version,compute_cap,uuid --format=csv,noheader,nounits` output (memory in MiB).
// Lines with fewer fields or a non-numeric index are skipped; "[N/A]" and "n/a" are empty.
std::vector<Device> parse_nvidia_smi_csv(std::string_view text);

// "12.4" from the "CUDA Version: 12.4" field of plain `nvidia-smi` output, or "".
std::string parse_nvidia_smi_cuda_version(std::string_view text);

// Sets supports_fp16 / supports_int8 from compute_capability (true when unknown).
void set_cuda_precision_flags(Device& device);

// CUDA devices through NVML loaded from `library` with dlopen; nullopt (with a note) when
// the library is missing or a call fails, so the caller can try nvidia-smi.
std::optional<std::vector<Device>> probe_cuda_nvml(const std::string& library, std::vector<std::string>& notes);

// CUDA devices through nvidia-smi; empty (with a note) on any failure.
std::vector<Device> probe_cuda_smi(const ProbeOptions& options, std::vector<std::string>& notes);

// GPUs from `rocm-smi --showproductname --showmeminfo vram --showdriverversion --json`
// output: one device per "cardN" object, ordered by N.
std::vector<Device> parse_rocm_smi_json(std::string_view text);

// ROCm devices through rocm-smi; empty (with a note) on any failure.
std::vector<Device> probe_rocm_smi(const ProbeOptions& options, std::vector<std::string>& notes);

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_DEVICES_DEVICES_INTERNAL_H_
