// The CPU: /proc/cpuinfo for the model, cores and ISA flags, /proc/meminfo for memory,
// the affinity mask for the threads this process may actually use.
#include <sched.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "devices/devices_internal.h"
#include "core/strings.h"

namespace kapsl::internal {
namespace {

// "key\t: value" -> (key, value), both trimmed; nullopt without a colon.
std::optional<std::pair<std::string, std::string>> key_value(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return std::make_pair(std::string(trim(line.substr(0, colon))), std::string(trim(line.substr(colon + 1))));
}

std::optional<uint64_t> parse_u64(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    if (v > (UINT64_MAX - 9) / 10) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  return text.str();
}

// Features from cpuid for x86 hosts whose cpuinfo has no flags line (some containers).
std::vector<std::string> cpuid_features() {
  std::vector<std::string> out;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) out.emplace_back("sse4_2");
  if (__builtin_cpu_supports("avx")) out.emplace_back("avx");
  if (__builtin_cpu_supports("avx2")) out.emplace_back("avx2");
  if (__builtin_cpu_supports("fma")) out.emplace_back("fma");
  if (__builtin_cpu_supports("avx512f")) out.emplace_back("avx512f");
#endif
  return out;
}

uint32_t affinity_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
  return static_cast<uint32_t>(CPU_COUNT(&set));
}

}  // namespace

CpuInfo parse_cpuinfo(std::string_view text) {
  CpuInfo cpu;
  uint32_t processors = 0;
  std::set<std::pair<std::string, std::string>> cores;
  std::set<std::string> features;
  std::string physical_id;
  for (const std::string& line : split(text, '\n')) {
    auto kv = key_value(line);
    if (!kv) continue;
    const auto& [key, value] = *kv;
    if (key == "processor") {
      ++processors;
      physical_id.clear();
    } else if (key == "model name" && cpu.model_name.empty()) {
      cpu.model_name = value;
    } else if (key == "physical id") {
      physical_id = value;
    } else if (key == "core id") {
      cores.emplace(physical_id, value);
    } else if ((key == "flags" || key == "Features") && features.empty()) {
      for (const std::string& f : split_blank(value)) features.insert(to_lower(f));
    }
  }
  cpu.logical_cores = std::max<uint32_t>(processors, 1);
  cpu.physical_cores = cores.empty() ? cpu.logical_cores : static_cast<uint32_t>(cores.size());
  cpu.features.assign(features.begin(), features.end());
  return cpu;
}

void parse_meminfo(std::string_view text, CpuInfo& cpu) {
  uint64_t free_kb = 0, buffers_kb = 0, cached_kb = 0;
  std::optional<uint64_t> available_kb;
  for (const std::string& line : split(text, '\n')) {
    auto kv = key_value(line);
    if (!kv) continue;
    std::vector<std::string> words = split_blank(kv->second);
    std::optional<uint64_t> kb = words.empty() ? std::nullopt : parse_u64(words[0]);
    if (!kb) continue;
    // The file says "kB" but means KiB; the original stored it unconverted.
    if (kv->first == "MemTotal") cpu.memory_total_bytes = *kb * 1024;
    else if (kv->first == "MemAvailable") available_kb = *kb;
    else if (kv->first == "MemFree") free_kb = *kb;
    else if (kv->first == "Buffers") buffers_kb = *kb;
    else if (kv->first == "Cached") cached_kb = *kb;
  }
  cpu.memory_available_bytes = available_kb.value_or(free_kb + buffers_kb + cached_kb) * 1024;
}

CpuInfo probe_cpu(const std::string& proc_root, std::vector<std::string>& notes) {
  std::string cpuinfo = read_file(proc_root + "/cpuinfo");
  if (cpuinfo.empty()) notes.push_back("cpu: cannot read " + proc_root + "/cpuinfo");
  CpuInfo cpu = parse_cpuinfo(cpuinfo);
  if (cpu.features.empty()) cpu.features = cpuid_features();
  // The affinity mask is what this process may run on (taskset, cpusets), which is what
  // thread counts should be sized by.
  if (uint32_t usable = affinity_cpus(); usable > 0) cpu.logical_cores = usable;
  cpu.physical_cores = std::clamp<uint32_t>(cpu.physical_cores, 1, cpu.logical_cores);
  std::string meminfo = read_file(proc_root + "/meminfo");
  if (meminfo.empty()) notes.push_back("cpu: cannot read " + proc_root + "/meminfo");
  parse_meminfo(meminfo, cpu);
  return cpu;
}

}  // namespace kapsl::internal
