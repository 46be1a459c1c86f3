// BackendFactory: route, order the providers, and walk them until an engine really loads.
#include "kapsl/backend_factory.h"

#include <spdlog/spdlog.h>

#include "factory/engine_decorator.h"
#include "core/strings.h"

namespace kapsl {
namespace {

bool env_disables(const char* name) {
  std::string v = internal::to_lower(internal::trim(internal::env_or_empty(name)));
  return v == "0" || v == "false" || v == "no" || v == "off";
}

std::optional<uint32_t> peak_concurrency(const OnnxTuning& tuning) {
  if (tuning.peak_concurrency_hint) return std::max<uint32_t>(*tuning.peak_concurrency_hint, 1);
  std::string v(internal::trim(internal::env_or_empty("KAPSL_MODEL_PEAK_CONCURRENCY")));
  if (v.empty() || v.size() > 9 || v.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  uint32_t n = static_cast<uint32_t>(std::stoul(v));
  return n > 0 ? std::optional<uint32_t>(n) : std::nullopt;
}

// The task wrapper's switch from metadata, read before any load so a bad value fails once.
bool task_flag(const Manifest& m, EngineKind kind) {
  if (kind == EngineKind::kOnnxClassify) return m.metadata_bool("classify.apply_softmax").value_or(true);
  if (kind == EngineKind::kOnnxEmbed) return m.metadata_bool("embed.normalize").value_or(true);
  return false;
}

std::unique_ptr<Engine> wrap(std::unique_ptr<Engine> engine, EngineKind kind, bool flag) {
  if (kind == EngineKind::kOnnxClassify) return std::make_unique<internal::ClassifyEngine>(std::move(engine), flag);
  if (kind == EngineKind::kOnnxEmbed) return std::make_unique<internal::EmbedEngine>(std::move(engine), flag);
  return engine;
}

std::string describe_failures(const std::vector<ProviderAttempt>& failures) {
  std::string out;
  for (const ProviderAttempt& f : failures) out += (out.empty() ? "" : "; ") + f.provider + ": " + f.reason;
  return out;
}

}  // namespace

struct BackendFactory::Impl {
  FactoryOptions options;
  EngineLoaders loaders;
  DeviceInfo devices;

  LoadSpec base_spec(const Package& package, EngineKind kind) const {
    const HardwareRequirements& hw = package.manifest.hardware_requirements;
    LoadSpec spec;
    spec.kind = kind;
    spec.model_path = package.model_path.string();
    spec.optimization_level =
        parse_optimization_level(hw.graph_optimization_level, "hardware_requirements.graph_optimization_level");
    spec.onnx = options.onnx;
    spec.device_id = hw.device_id.value_or(0);
    if (spec.device_id < 0) {
      throw Error::invalid_input("hardware_requirements.device_id",
                                 "expected >= 0, got " + std::to_string(spec.device_id));
    }
    return spec;
  }

  bool smoke_enabled() const {
    if (options.smoke_test) return *options.smoke_test;
    return !env_disables("KAPSL_ORT_PROVIDER_SMOKE_TEST");
  }

  // Loads on one provider; throws what the smoke test or the loader throws.
  std::unique_ptr<Engine> load_on(LoadSpec spec, const std::string& provider, bool smoke, bool flag) const {
    spec.provider = provider;
    if (!is_accelerator_provider(provider)) spec.device_id = 0;
    if (smoke && is_accelerator_provider(provider) && loaders.smoke_test) loaders.smoke_test(provider, spec.device_id);
    if (!loaders.onnx) throw Error::unavailable("no ONNX loader configured");
    std::unique_ptr<Engine> engine = loaders.onnx(spec);
    if (!engine) throw Error::backend("the ONNX loader returned no engine");
    return wrap(std::move(engine), spec.kind, flag);
  }

  LoadedEngine load_gguf(const Package& package) const {
    LoadedEngine out;
    LoadSpec spec;
    spec.kind = EngineKind::kGgufGenerate;
    spec.model_path = package.model_path.string();
    if (!loaders.gguf) throw Error::unavailable("no GGUF loader configured");
    out.engine = loaders.gguf(spec);
    if (!out.engine) throw Error::backend("the GGUF loader returned no engine");
    out.report.kind = spec.kind;
    out.report.provider = out.engine->model_info().provider.empty() ? "cpu" : out.engine->model_info().provider;
    out.report.candidates = {out.report.provider};
    return out;
  }
};

BackendFactory::BackendFactory(FactoryOptions options)
    : BackendFactory(std::move(options), default_engine_loaders(), cached_devices()) {}

BackendFactory::BackendFactory(FactoryOptions options, EngineLoaders loaders, DeviceInfo devices)
    : impl_(std::make_unique<Impl>(Impl{std::move(options), std::move(loaders), std::move(devices)})) {}

BackendFactory::~BackendFactory() = default;

const DeviceInfo& BackendFactory::devices() const noexcept { return impl_->devices; }

LoadedEngine BackendFactory::create(const std::filesystem::path& path, const PackageOptions& package_options) const {
  return create(open_package(path, package_options));
}

LoadedEngine BackendFactory::create(const Package& package) const {
  const Manifest& m = package.manifest;
  EngineKind kind = route_manifest(m);
  if (impl_->options.check_requirements) validate_requirements(m.hardware_requirements, impl_->devices);
  if (kind == EngineKind::kGgufGenerate) return impl_->load_gguf(package);
  LoadSpec spec = impl_->base_spec(package, kind);
  bool flag = task_flag(m, kind);
  ProviderPolicy policy = impl_->options.policy ? *impl_->options.policy : provider_policy_from_env();
  std::vector<std::string> runtime = impl_->loaders.onnx_providers ? impl_->loaders.onnx_providers() : std::vector<std::string>{};
  LoadedEngine out;
  out.report.kind = kind;
  out.report.peak_concurrency_hint = peak_concurrency(spec.onnx);
  out.report.candidates =
      provider_candidates(m.hardware_requirements, impl_->devices, policy, runtime, impl_->options.cpu_last_resort);
  bool smoke = impl_->smoke_enabled();
  std::optional<Error> last;
  for (const std::string& provider : out.report.candidates) {
    try {
      out.engine = impl_->load_on(spec, provider, smoke, flag);
      out.report.provider = provider;
      out.report.device_id = is_accelerator_provider(provider) ? spec.device_id : 0;
      return out;
    } catch (const Error& e) {
      last = e;
    } catch (const std::exception& e) {
      last = Error::backend(e.what());
    }
    out.report.failures.push_back({provider, last->code(), last->message()});
    spdlog::warn("kapsl: provider {} could not load {}: {}", provider, spec.model_path, last->message());
  }
  if (!last) throw Error::unavailable("no execution provider to try for " + spec.model_path);
  throw Error(last->code(), "no execution provider could load " + spec.model_path + ": " +
                                describe_failures(out.report.failures));
}

LoadedEngine BackendFactory::create_for_device(const Package& package, std::string_view provider, int device_id) const {
  EngineKind kind = route_manifest(package.manifest);
  if (kind == EngineKind::kGgufGenerate) return impl_->load_gguf(package);
  if (device_id < 0) throw Error::invalid_input("device_id", "expected >= 0, got " + std::to_string(device_id));
  LoadSpec spec = impl_->base_spec(package, kind);
  spec.device_id = device_id;
  std::string name = internal::to_lower(internal::trim(provider));
  LoadedEngine out;
  out.report.kind = kind;
  out.report.candidates = {name};
  out.report.peak_concurrency_hint = peak_concurrency(spec.onnx);
  out.engine = impl_->load_on(spec, name, /*smoke=*/false, task_flag(package.manifest, kind));
  out.report.provider = name;
  out.report.device_id = is_accelerator_provider(name) ? device_id : 0;
  return out;
}

}  // namespace kapsl
