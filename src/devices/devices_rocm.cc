// AMD GPUs through rocm-smi's JSON report, under a timeout. (The original parsed `rocm-smi
// -i` and reported memory 0, which made every min_vram_mb check fail.)
#include <algorithm>
#include <nlohmann/json.hpp>

#include "devices/devices_internal.h"
#include "core/strings.h"
#include "devices/subprocess.h"

namespace kapsl::internal {
namespace {

using nlohmann::json;

std::string string_of(const json& card, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = card.find(k);
    if (it != card.end() && it->is_string() && !trim(it->get<std::string>()).empty()) {
      return std::string(trim(it->get<std::string>()));
    }
  }
  return {};
}

uint64_t bytes_of(const json& card, const char* key) {
  std::string v = string_of(card, {key});
  if (v.empty() || v.size() > 20 || v.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(v);
}

}  // namespace

std::vector<Device> parse_rocm_smi_json(std::string_view text) {
  std::vector<Device> out;
  json root = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!root.is_object()) return out;
  std::string driver;
  if (auto sys = root.find("system"); sys != root.end() && sys->is_object()) {
    driver = string_of(*sys, {"Driver version"});
  }
  for (const auto& [key, card] : root.items()) {
    if (key.rfind("card", 0) != 0 || !card.is_object()) continue;
    std::string index = key.substr(4);
    if (index.empty() || index.size() > 6 || index.find_first_not_of("0123456789") != std::string::npos) continue;
    Device d;
    d.backend = DeviceBackend::kRocm;
    d.id = std::stoi(index);
    d.name = string_of(card, {"Card series", "Device Name", "Card model"});
    if (d.name.empty()) d.name = "AMD ROCm GPU " + index;
    d.memory_total_bytes = bytes_of(card, "VRAM Total Memory (B)");
    uint64_t used = bytes_of(card, "VRAM Total Used Memory (B)");
    d.memory_free_bytes = d.memory_total_bytes >= used ? d.memory_total_bytes - used : 0;
    d.driver_version = driver;
    out.push_back(std::move(d));
  }
  std::sort(out.begin(), out.end(), [](const Device& a, const Device& b) { return a.id < b.id; });
  return out;
}

std::vector<Device> probe_rocm_smi(const ProbeOptions& options, std::vector<std::string>& notes) {
  CommandResult r = run_command(
      {options.rocm_smi, "--showproductname", "--showmeminfo", "vram", "--showdriverversion", "--json"},
      options.command_timeout);
  if (!r.ok()) {
    notes.push_back("rocm-smi: " + (r.started ? r.error : "not found"));
    return {};
  }
  std::vector<Device> devices = parse_rocm_smi_json(r.output);
  if (devices.empty()) notes.push_back("rocm-smi: no GPU in its report");
  return devices;
}

}  // namespace kapsl::internal
