// BackendFactory: the one way kapsl loads a model. The library's users, `kapsl serve`, the
// EnginePool's loader and every CLI command go through it.
//
// Three steps:
//   1. open():    a model source — a model file, a folder with a metadata.json, or an .aimod
//                 package — becomes a Package: a name, a manifest (synthesised for a bare
//                 file) and the model file (package.h).
//   2. resolve(): settings are merged into the manifest — `defaults` under it (a server's
//                 flags), `overrides` over it (a CLI's flags) — and the result is checked:
//                 the BackendRegistry picks the backend (format, else framework, else the
//                 model file's extension), the task is resolved, the backend parses its
//                 options section. Every mistake in a manifest surfaces here, before any
//                 load, with its field path.
//   3. load():    the providers are ordered (provider_candidates: the manifest's list, the
//                 provider policy, the devices probed, what the backend offers) and tried
//                 in turn: a provider the backend lacks or whose device is absent is skipped,
//                 an accelerator must first pass the backend's smoke test, and the first that
//                 loads wins. The LoadReport says what was tried and why each one failed.
//
// Settings layers are manifest-shaped JSON objects ("threads", "serving",
// "hardware_requirements", "task", backend sections such as "gguf": {"context": 4096}),
// merged as RFC 7386 merge patches. A layer may hold sections for backends the model does
// not use: they are ignored. A manifest may not (a typo'd or misplaced section is an error).
//
// Ownership: a BackendFactory holds its registry (shared) and copies of its options and
// device list; every engine it returns is owned by the caller and may outlive the factory.
// Thread-safety: safe for concurrent use without external synchronization (every method is
// const; the registry's backends must be thread-safe, as backend.h requires).
#ifndef KAPSL_BACKEND_FACTORY_H_
#define KAPSL_BACKEND_FACTORY_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/backend.h"
#include "kapsl/devices.h"
#include "kapsl/engine.h"
#include "kapsl/error.h"
#include "kapsl/manifest.h"
#include "kapsl/package.h"

namespace kapsl {

// ---------------------------------------------------------------------------------------
// Providers

enum class ProviderPolicy {
  kFastest,   // detected accelerators ahead of cpu when the manifest names none but cpu
  kManifest,  // exactly the manifest's list
};

// "fastest" or "manifest", trimmed and case-insensitive; nullopt for anything else.
std::optional<ProviderPolicy> parse_provider_policy(std::string_view text);

// The policy from the environment variable KAPSL_PROVIDER_POLICY; kFastest when unset or
// blank. Throws Error(kInvalidInput) naming the variable and the accepted values if it is set
// to anything else (the original silently treated typos as "fastest").
ProviderPolicy provider_policy_from_env();

// `preferred` followed by `fallbacks`, each trimmed and lower-cased, empty names dropped,
// later duplicates dropped. "metal" is spelled "coreml" (the provider that runs on Metal).
std::vector<std::string> normalize_providers(std::string_view preferred, const std::vector<std::string>& fallbacks);

// The providers to try, in order, for `requirements` on `devices`:
//   1. normalize_providers(preferred, fallbacks);
//   2. policy kFastest and that list empty or only "cpu": prefix the accelerators that are
//      detected on `devices` and present in `backend_providers` (what the backend's build
//      offers), in the order tensorrt, cuda (CUDA device), rocm (ROCm device), coreml
//      (Metal device), directml (DirectML device), openvino (always on the CPU);
//   3. if `cpu_last_resort` and "cpu" is not in the list: append it.
// Never throws except std::bad_alloc.
std::vector<std::string> provider_candidates(const HardwareRequirements& requirements, const DeviceInfo& devices,
                                             ProviderPolicy policy, const std::vector<std::string>& backend_providers,
                                             bool cpu_last_resort = true);

// Whether `provider` runs on an accelerator (anything but "cpu" and "openvino").
bool is_accelerator_provider(std::string_view provider);

// ---------------------------------------------------------------------------------------
// Requirements

// Checks that `devices` can serve a model with `requirements`, with the original's rules
// and messages, and three of its bugs fixed: memory is compared in MiB derived from bytes
// (the original mixed KiB and bytes), CUDA versions compare numerically ("12.10" >= "12.2";
// the original compared strings), and openvino is served by the CPU (the original never
// found a device for it). The rules:
//   - min_memory_mb > total RAM in MiB: "Insufficient memory: need XMB, have YMB".
//   - no providers: valid. Providers are normalize_providers(preferred, fallbacks); "cpu" or
//     "openvino" anywhere makes the whole check pass; tensorrt is checked as cuda, coreml as
//     metal. For the rest, a device of that backend must exist ("Provider <p> not
//     available") and, with a multi-device strategy (pool, round-robin, data-parallel,
//     pipeline, pipeline-parallel, tensor-parallel, auto), any such device must have
//     min_vram_mb and min_cuda_version ("No devices meet requirements for provider <p>");
//     otherwise device (backend, device_id or 0) must ("Device ID <id> not found for
//     provider <p>", "Provider <p> (Device <id>) has insufficient VRAM: AMB < required BMB",
//     "CUDA version too old: <have> < required <min>", "Unknown CUDA version on device").
// Throws Error(kUnavailable) "Insufficient memory..." or "No compatible provider found.
// Reasons: [...]" listing each provider's reason; Error(kInvalidInput) if min_cuda_version
// is not a numeric version.
void validate_requirements(const HardwareRequirements& requirements, const DeviceInfo& devices);

// ---------------------------------------------------------------------------------------
// Loading

struct FactoryOptions {
  // --- Behaviour
  std::optional<ProviderPolicy> policy;  // unset = provider_policy_from_env()
  bool cpu_last_resort = true;           // append "cpu" when the list lacks it (both policies)
  // Smoke-test accelerators before loading. Unset = KAPSL_ORT_PROVIDER_SMOKE_TEST ("0",
  // "false", "no", "off" disable it), else on.
  std::optional<bool> smoke_test;
  bool check_requirements = false;  // call validate_requirements() before loading; off as in the original
  PackageOptions package;           // where and how .aimod archives are extracted
};

// Per-load settings: manifest-shaped JSON objects (see the header comment). "" = none.
struct LoadOptions {
  std::string defaults;   // merged under the manifest: the manifest's own values win
  std::string overrides;  // merged over it: these win
  bool tokenizer_only = false;           // load only what tokenization needs, where the backend can
  std::function<bool(float)> progress;   // load progress in [0, 1]; false aborts with kCancelled
};

// A model ready to load: the settings merged and checked, the backend chosen.
struct ResolvedModel {
  Package package;  // its manifest holds the merged settings; backend_sections only the chosen one
  std::shared_ptr<const Backend> backend;
  std::string task;                                // resolved, one of backend->tasks()
  std::shared_ptr<const BackendOptions> options;   // the backend's parsed section
  bool tokenizer_only = false;
  std::function<bool(float)> progress;
};

// A provider that was considered and did not serve.
struct ProviderAttempt {
  std::string provider;
  int device_id = 0;
  ErrorCode code = ErrorCode::kUnavailable;
  std::string reason;  // why: the error's message, or why it was skipped without trying
  bool tried = true;   // false: skipped (not in this build, no such device)
};

struct LoadReport {
  std::string model;                      // the package's name
  std::string backend;                    // the backend's name
  std::string task;
  std::string provider;                   // the provider the engine runs on
  int device_id = 0;
  std::vector<std::string> candidates;    // the order providers were considered in
  std::vector<ProviderAttempt> failures;  // each provider before `provider` that did not serve, in order
  std::string options_json;               // the backend options in effect (BackendOptions::to_json)
  double load_seconds = 0;                // the successful attempt, smoke test included
  std::vector<std::string> notes;         // what the caller did with the engine after the load
                                          // (kapsl serve: "dynamic batching: ...")

  // One line: "gguf/generate on cpu:0 (cuda: not in this build; ...)".
  std::string summary() const;
  // The report as a JSON object (for `kapsl info --json` and the KServe metadata).
  std::string to_json() const;
};

struct LoadedEngine {
  std::unique_ptr<Engine> engine;
  LoadReport report;
};

class BackendFactory {
 public:
  // A factory over builtin_backends() and cached_devices(). Does not load anything.
  explicit BackendFactory(FactoryOptions options = {});
  // A factory over `backends` (see backend.h) and `devices` (tests pass fakes). Throws
  // Error(kInvalidInput) if backends is null.
  BackendFactory(FactoryOptions options, std::shared_ptr<const BackendRegistry> backends, DeviceInfo devices);
  BackendFactory(const BackendFactory&) = delete;
  BackendFactory& operator=(const BackendFactory&) = delete;
  ~BackendFactory();

  // Opens a model file, a model folder or an .aimod package (open_package with the
  // factory's PackageOptions); a bare file's format is the backend that takes its
  // extension. Throws as open_package does, and Error(kInvalidInput) for a file extension
  // no registered backend takes (listing the ones they take).
  Package open(const std::filesystem::path& path) const;

  // Merges `options`' layers into the package's manifest and checks the result (see the
  // header comment). Loads nothing. Throws Error(kInvalidInput) naming the field path for:
  // a layer that is not a JSON object, a manifest the merge made invalid, an unknown or
  // mismatched format / framework / extension (listing the registered backends), a task the
  // backend does not serve, a manifest section no registered backend owns or that belongs
  // to another backend, and the backend's own option errors; Error(kUnavailable) for a
  // format or task kapsl knows of but no registered backend serves ("safetensors").
  ResolvedModel resolve(const Package& package, const LoadOptions& options = {}) const;

  // Loads a resolved model, walking the provider candidates (see the header comment).
  // Returns the engine and its report. Throws: Error(kUnavailable) from
  // validate_requirements if check_requirements; if no provider serves, the last
  // provider's Error with its code (kUnavailable if none was tried), its message listing
  // every provider and why it did not serve ("cuda: no CUDA device; cpu: ..."), or
  // unchanged when only one provider was considered.
  LoadedEngine load(const ResolvedModel& model) const;

  // open(), resolve() and load() in one call.
  LoadedEngine load(const std::filesystem::path& path, const LoadOptions& options = {}) const;

  // Loads on exactly `provider` and `device_id`: no candidates, no fallback, no smoke test.
  // Throws as load() does (Error(kInvalidInput) also for a negative device_id).
  LoadedEngine load_on(const ResolvedModel& model, std::string_view provider, int device_id) const;

  const DeviceInfo& devices() const noexcept;
  const BackendRegistry& backends() const noexcept;
  std::shared_ptr<const BackendRegistry> shared_backends() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_BACKEND_FACTORY_H_
