// BackendFactory: order the providers and walk them until the backend really loads.
#include "kapsl/backend_factory.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "core/strings.h"
#include "factory/factory_impl.h"

namespace kapsl {
namespace {

bool env_disables(const char* name) {
  std::string v = internal::lower_trimmed(internal::env_or_empty(name));
  return v == "0" || v == "false" || v == "no" || v == "off";
}

// Why `provider` cannot serve here without trying it, or "" if it is worth a try.
std::string skip_reason(const std::string& provider, const std::vector<std::string>& offered, const Backend& backend,
                        const DeviceInfo& devices) {
  if (std::find(offered.begin(), offered.end(), provider) == offered.end()) {
    std::string list;
    for (const auto& p : offered) list += (list.empty() ? "" : ", ") + p;
    return "not in this build of backend " + backend.name() + " (it offers: " + list + ")";
  }
  static constexpr std::pair<const char*, DeviceBackend> kNeeds[] = {
      {"cuda", DeviceBackend::kCuda},   {"tensorrt", DeviceBackend::kCuda}, {"rocm", DeviceBackend::kRocm},
      {"migraphx", DeviceBackend::kRocm}, {"coreml", DeviceBackend::kMetal}, {"metal", DeviceBackend::kMetal},
      {"directml", DeviceBackend::kDirectMl}};
  for (const auto& [name, needs] : kNeeds) {
    if (provider == name && !devices.has(needs)) {
      return std::string("no ") + device_backend_name(needs) + " device found";
    }
  }
  return "";
}

std::string describe_failures(const std::vector<ProviderAttempt>& failures) {
  std::string out;
  for (const ProviderAttempt& f : failures) out += (out.empty() ? "" : "; ") + f.provider + ": " + f.reason;
  return out;
}

}  // namespace

std::string LoadReport::summary() const {
  std::string out = backend + "/" + task + " on " + provider + ":" + std::to_string(device_id);
  if (!failures.empty()) out += " (" + describe_failures(failures) + ")";
  for (const std::string& note : notes) out += "; " + note;
  return out;
}

std::string LoadReport::to_json() const {
  nlohmann::json tried = nlohmann::json::array();
  for (const ProviderAttempt& f : failures) {
    tried.push_back({{"provider", f.provider},
                     {"device_id", f.device_id},
                     {"tried", f.tried},
                     {"code", error_code_name(f.code)},
                     {"reason", f.reason}});
  }
  nlohmann::json options = nlohmann::json::parse(options_json.empty() ? "{}" : options_json, nullptr, false);
  if (options.is_discarded()) options = options_json;
  const nlohmann::json report = {{"model", model},         {"backend", backend},       {"task", task},
                                 {"provider", provider},   {"device_id", device_id},   {"candidates", candidates},
                                 {"failures", tried},      {"options", options},       {"load_seconds", load_seconds},
                                 {"notes", notes}};
  return report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

BackendFactory::BackendFactory(FactoryOptions options)
    : BackendFactory(std::move(options), builtin_backends(), cached_devices()) {}

BackendFactory::BackendFactory(FactoryOptions options, std::shared_ptr<const BackendRegistry> backends,
                               DeviceInfo devices) {
  if (!backends) throw Error::invalid_input("BackendFactory: the backend registry is null");
  impl_ = std::make_unique<Impl>(Impl{std::move(options), std::move(backends), std::move(devices)});
}

BackendFactory::~BackendFactory() = default;

const DeviceInfo& BackendFactory::devices() const noexcept { return impl_->devices; }
const BackendRegistry& BackendFactory::backends() const noexcept { return *impl_->backends; }
std::shared_ptr<const BackendRegistry> BackendFactory::shared_backends() const noexcept { return impl_->backends; }

LoadedEngine BackendFactory::load(const std::filesystem::path& path, const LoadOptions& options) const {
  return load(resolve(open(path), options));
}

namespace {

// One attempt on one provider: the smoke test if asked, then the backend's load.
std::unique_ptr<Engine> attempt(const ResolvedModel& model, const std::string& provider, int device_id, bool smoke) {
  const Backend& backend = *model.backend;
  if (smoke && is_accelerator_provider(provider)) backend.smoke_test(provider, device_id);
  BackendLoadRequest request;
  request.model = &model.package;
  request.options = model.options.get();
  request.task = model.task;
  request.threads = model.package.manifest.threads.value_or(0);
  request.provider = provider;
  request.device_id = device_id;
  request.tokenizer_only = model.tokenizer_only;
  request.progress = model.progress;
  std::unique_ptr<Engine> engine = backend.load(request);
  if (!engine) throw Error::backend("backend " + backend.name() + " returned no engine");
  return engine;
}

LoadReport start_report(const ResolvedModel& model) {
  LoadReport r;
  r.model = model.package.name;
  r.backend = model.backend->name();
  r.task = model.task;
  r.options_json = model.options->to_json();
  return r;
}

int requested_device(const ResolvedModel& model) {
  const int id = model.package.manifest.hardware_requirements.device_id.value_or(0);
  if (id < 0) throw Error::invalid_input("hardware_requirements.device_id", "expected >= 0, got " + std::to_string(id));
  return id;
}

}  // namespace

LoadedEngine BackendFactory::load(const ResolvedModel& model) const {
  const Impl& s = *impl_;
  const HardwareRequirements& hw = model.package.manifest.hardware_requirements;
  if (s.options.check_requirements) validate_requirements(hw, s.devices);
  const int device_id = requested_device(model);
  const ProviderPolicy policy = s.options.policy ? *s.options.policy : provider_policy_from_env();
  const std::vector<std::string> offered = model.backend->providers();
  const bool smoke = s.options.smoke_test ? *s.options.smoke_test : !env_disables("KAPSL_ORT_PROVIDER_SMOKE_TEST");
  LoadedEngine out;
  out.report = start_report(model);
  out.report.candidates = provider_candidates(hw, s.devices, policy, offered, s.options.cpu_last_resort);
  std::optional<Error> last;
  for (const std::string& provider : out.report.candidates) {
    const int device = is_accelerator_provider(provider) ? device_id : 0;
    if (std::string why = skip_reason(provider, offered, *model.backend, s.devices); !why.empty()) {
      out.report.failures.push_back({provider, device, ErrorCode::kUnavailable, why, false});
      continue;
    }
    const auto start = Clock::now();
    try {
      out.engine = attempt(model, provider, device, smoke);
      out.report.provider = provider;
      out.report.device_id = device;
      out.report.load_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      if (!out.report.failures.empty()) spdlog::warn("kapsl: {} loaded as {}", model.package.name, out.report.summary());
      return out;
    } catch (const Error& e) {
      if (e.code() == ErrorCode::kCancelled) throw;
      last = e;
    } catch (const std::exception& e) {
      last = Error::backend(e.what());
    }
    out.report.failures.push_back({provider, device, last->code(), last->message(), true});
    spdlog::info("kapsl: provider {} could not load {}: {}", provider, model.package.name, last->message());
  }
  // One provider considered: its own error says it all.
  if (last && out.report.failures.size() == 1) throw *last;
  const ErrorCode code = last ? last->code() : ErrorCode::kUnavailable;
  throw Error(code, "no execution provider could load " + model.package.name + ": " +
                        (out.report.failures.empty() ? std::string("no provider to try")
                                                     : describe_failures(out.report.failures)));
}

LoadedEngine BackendFactory::load_on(const ResolvedModel& model, std::string_view provider, int device_id) const {
  if (device_id < 0) throw Error::invalid_input("device_id", "expected >= 0, got " + std::to_string(device_id));
  const std::string name = internal::lower_trimmed(provider);
  LoadedEngine out;
  out.report = start_report(model);
  out.report.candidates = {name};
  const int device = is_accelerator_provider(name) ? device_id : 0;
  const auto start = Clock::now();
  out.engine = attempt(model, name, device, /*smoke=*/false);
  out.report.provider = name;
  out.report.device_id = device;
  out.report.load_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return out;
}

}  // namespace kapsl
