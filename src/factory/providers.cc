// Provider lists and the provider policy.
#include <algorithm>

#include "core/strings.h"
#include "kapsl/backend_factory.h"

namespace kapsl {
namespace {

bool contains(const std::vector<std::string>& list, std::string_view name) {
  return std::find(list.begin(), list.end(), name) != list.end();
}

// Auto-added accelerators in preference order, each with the device that must be present.
struct AutoProvider {
  const char* name;
  std::optional<DeviceBackend> needs;  // nullopt = runs on the CPU
};
constexpr AutoProvider kAutoProviders[] = {
    {"tensorrt", DeviceBackend::kCuda}, {"cuda", DeviceBackend::kCuda},       {"rocm", DeviceBackend::kRocm},
    {"coreml", DeviceBackend::kMetal},  {"directml", DeviceBackend::kDirectMl}, {"openvino", std::nullopt},
};

}  // namespace

std::optional<ProviderPolicy> parse_provider_policy(std::string_view text) {
  std::string t = internal::to_lower(internal::trim(text));
  if (t == "fastest") return ProviderPolicy::kFastest;
  if (t == "manifest") return ProviderPolicy::kManifest;
  return std::nullopt;
}

ProviderPolicy provider_policy_from_env() {
  std::string value = internal::env_or_empty("KAPSL_PROVIDER_POLICY");
  if (internal::trim(value).empty()) return ProviderPolicy::kFastest;
  std::optional<ProviderPolicy> policy = parse_provider_policy(value);
  if (!policy) {
    throw Error::invalid_input("KAPSL_PROVIDER_POLICY", "expected \"fastest\" or \"manifest\", got \"" + value + "\"");
  }
  return *policy;
}

std::vector<std::string> normalize_providers(std::string_view preferred, const std::vector<std::string>& fallbacks) {
  std::vector<std::string> out;
  auto add = [&out](std::string_view raw) {
    std::string name = internal::to_lower(internal::trim(raw));
    if (name == "metal") name = "coreml";
    if (!name.empty() && !contains(out, name)) out.push_back(std::move(name));
  };
  add(preferred);
  for (const std::string& f : fallbacks) add(f);
  return out;
}

std::vector<std::string> provider_candidates(const HardwareRequirements& requirements, const DeviceInfo& devices,
                                             ProviderPolicy policy, const std::vector<std::string>& backend_providers,
                                             bool cpu_last_resort) {
  std::vector<std::string> list = normalize_providers(requirements.preferred_provider, requirements.fallback_providers);
  bool only_cpu = std::all_of(list.begin(), list.end(), [](const std::string& p) { return p == "cpu"; });
  if (policy == ProviderPolicy::kFastest && only_cpu) {
    std::vector<std::string> fast;
    for (const AutoProvider& p : kAutoProviders) {
      bool present = !p.needs || devices.has(*p.needs);
      if (present && contains(backend_providers, p.name)) fast.emplace_back(p.name);
    }
    list.insert(list.begin(), fast.begin(), fast.end());
  }
  if (cpu_last_resort && !contains(list, "cpu")) list.emplace_back("cpu");
  return list;
}

bool is_accelerator_provider(std::string_view provider) {
  std::string p = internal::to_lower(internal::trim(provider));
  return p != "cpu" && p != "openvino";
}

}  // namespace kapsl
