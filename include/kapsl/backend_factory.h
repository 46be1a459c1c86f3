// BackendFactory: turns a model package (manifest + model file) and the machine's devices
// into a loaded Engine, choosing the backend and the execution provider.
//
// Routing. route_manifest() picks an EngineKind from the manifest's format / framework /
// task: GGUF files go to GgufEngine, ONNX files to OnnxEngine, wrapped by a classify
// (row softmax) or embed (masked mean pooling + L2) decorator when the task asks for one.
// Anything else fails closed with a clear error instead of being guessed as ONNX.
//
// Providers. provider_candidates() builds the order in which execution providers are tried:
// the manifest's preferred provider and fallbacks (trimmed, lower-cased, de-duplicated);
// under the "fastest" policy (the default) an empty or cpu-only list is prefixed by the
// accelerators that are both detected and compiled into ONNX Runtime; CPU comes last.
// BackendFactory::create() walks that list: each provider must really load the model
// (and, for accelerators, first pass a one-inference smoke test), otherwise the next one is
// tried; the LoadReport returned with the engine names the provider chosen and why each
// earlier one failed.
//
// Backends are reached only through EngineLoaders, so tests (and embedders) can inject
// their own; default_engine_loaders() calls OnnxEngine::load and GgufEngine::load.
//
// Ownership: a BackendFactory owns copies of its options, loaders and device list; every
// engine it returns is owned by the caller.
// Thread-safety: safe for concurrent use without external synchronization (create() only
// reads the factory; the injected loaders must be thread-safe themselves).
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

#include "kapsl/devices.h"
#include "kapsl/engine.h"
#include "kapsl/error.h"
#include "kapsl/manifest.h"
#include "kapsl/package.h"

namespace kapsl {

// ---------------------------------------------------------------------------------------
// Routing

enum class EngineKind {
  kGgufGenerate,  // GgufEngine
  kOnnxForward,   // OnnxEngine, outputs as the model gives them
  kOnnxClassify,  // OnnxEngine + ClassifyEngine (row softmax over [B, C] logits)
  kOnnxEmbed,     // OnnxEngine + EmbedEngine (masked mean pooling, L2 normalisation)
};

// "gguf-generate", "onnx-forward", "onnx-classify", "onnx-embed".
const char* engine_kind_name(EngineKind kind) noexcept;

// The backend for a manifest. The format is `format` if set, else `framework` ("gguf",
// "onnx"); both are compared trimmed and case-insensitively, and when both are set they must
// agree. The task (`task`, default "forward" for ONNX and "generate" for GGUF) selects:
//   gguf + generate (or "") -> kGgufGenerate
//   onnx + forward (or "")  -> kOnnxForward
//   onnx + classify         -> kOnnxClassify
//   onnx + embed            -> kOnnxEmbed
// The model file's extension must match the format (.gguf / .onnx, any case).
// Throws Error(kInvalidInput) for an unknown format, framework or task, a format that
// contradicts the framework or the file extension, or a task the format cannot do (the
// message names the field and lists the accepted values); Error(kUnavailable) for formats
// the original knew but kapsl does not serve ("llm", "native", "safetensors").
EngineKind route_manifest(const Manifest& manifest);

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
//      detected on `devices` and present in `runtime_providers` (what ONNX Runtime has
//      compiled in), in the order tensorrt, cuda (CUDA device), rocm (ROCm device), coreml
//      (Metal device), directml (DirectML device), openvino (always on the CPU);
//   3. if `cpu_last_resort` and "cpu" is not in the list: append it.
// Never throws except std::bad_alloc.
std::vector<std::string> provider_candidates(const HardwareRequirements& requirements, const DeviceInfo& devices,
                                             ProviderPolicy policy, const std::vector<std::string>& runtime_providers,
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
// ONNX Runtime tuning (the original's OnnxRuntimeTuning)

enum class GraphOptimizationLevel { kDisable, kBasic, kExtended, kAll };

// "disable"/"0", "basic"/"1", "extended"/"2", "all"/"3"/"99" (trimmed, case-insensitive;
// the original was case-sensitive) and "" (absent) -> kAll. Throws Error(kInvalidInput)
// "Unknown optimization level" naming `field` and the given value otherwise.
GraphOptimizationLevel parse_optimization_level(std::string_view text,
                                                std::string_view field = "graph_optimization_level");

// "disable", "basic", "extended", "all": the names OnnxOptions::graph_optimization_level takes.
const char* optimization_level_name(GraphOptimizationLevel level) noexcept;

// Knobs applied to every ONNX engine the factory loads. Unset fields fall back to the
// environment variables OnnxEngine reads, then to its defaults: explicit > environment >
// default, as in the original. The original's session_buckets, bucket_dim_granularity and
// bucket_max_dims have no counterpart: OnnxEngine runs every shape on one session.
struct OnnxTuning {
  std::optional<bool> memory_pattern;         // ORT memory-pattern planning (KAPSL_ORT_MEMORY_PATTERN)
  std::optional<bool> disable_cpu_mem_arena;  // (KAPSL_ORT_DISABLE_CPU_MEM_ARENA)
  std::optional<int> intra_op_threads;        // unset = the shared pool (see OnnxOptions)
  std::optional<int> inter_op_threads;        // unset = 1
  // Concurrency the outer scheduler may plan for, reported in LoadReport; unset =
  // KAPSL_MODEL_PEAK_CONCURRENCY if > 0. 0 becomes 1.
  std::optional<uint32_t> peak_concurrency_hint;
};

// ---------------------------------------------------------------------------------------
// Loading

// Everything a loader needs to build one engine on one provider.
struct LoadSpec {
  EngineKind kind = EngineKind::kOnnxForward;
  std::string model_path;   // absolute path of the model file
  std::string provider = "cpu";  // lower case
  int device_id = 0;             // index within the provider's backend
  GraphOptimizationLevel optimization_level = GraphOptimizationLevel::kAll;
  OnnxTuning onnx;               // resolved tuning
};

// Builds a loaded engine or throws Error (kUnavailable when the provider cannot run here).
using EngineLoader = std::function<std::unique_ptr<Engine>(const LoadSpec& spec)>;

struct EngineLoaders {
  EngineLoader onnx;  // the bare ONNX engine; the factory adds the classify/embed wrappers
  EngineLoader gguf;
  // The providers compiled into ONNX Runtime, lower case ("cpu", "cuda", ...).
  std::function<std::vector<std::string>()> onnx_providers;
  // Runs one tiny inference on (provider, device_id) and throws Error if it fails; called
  // before loading a model on an accelerator. Empty = no smoke test.
  std::function<void(const std::string& provider, int device_id)> smoke_test;
};

// Loaders that call OnnxEngine::load, GgufEngine::load and OnnxEngine::available_providers,
// and a smoke test that runs a built-in Identity model on the provider once per (provider,
// device) per process, remembering the outcome.
EngineLoaders default_engine_loaders();

struct FactoryOptions {
  // --- Behaviour
  std::optional<ProviderPolicy> policy;  // unset = provider_policy_from_env()
  bool cpu_last_resort = true;           // append "cpu" when the list lacks it (both policies)
  // Smoke-test accelerators before loading. Unset = KAPSL_ORT_PROVIDER_SMOKE_TEST ("0",
  // "false", "no", "off" disable it), else on.
  std::optional<bool> smoke_test;
  bool check_requirements = false;  // call validate_requirements() before loading; off as in the original
  // --- Performance
  OnnxTuning onnx;  // applied to every ONNX engine
};

// One provider that was tried and failed.
struct ProviderAttempt {
  std::string provider;
  ErrorCode code = ErrorCode::kUnavailable;
  std::string reason;  // the error's message
};

struct LoadReport {
  EngineKind kind = EngineKind::kOnnxForward;
  std::string provider;                  // the provider the engine runs on
  int device_id = 0;
  std::vector<std::string> candidates;   // the order providers were considered in
  std::vector<ProviderAttempt> failures;  // each provider tried before `provider`, in order
  std::optional<uint32_t> peak_concurrency_hint;
};

struct LoadedEngine {
  std::unique_ptr<Engine> engine;
  LoadReport report;
};

class BackendFactory {
 public:
  // A factory over `devices` (default: cached_devices()) using `loaders` (default:
  // default_engine_loaders()). Does not load anything.
  explicit BackendFactory(FactoryOptions options = {});
  BackendFactory(FactoryOptions options, EngineLoaders loaders, DeviceInfo devices);
  BackendFactory(const BackendFactory&) = delete;
  BackendFactory& operator=(const BackendFactory&) = delete;
  ~BackendFactory();

  // Loads the package's model: routes it (route_manifest), builds the provider list
  // (provider_candidates) and tries each provider until one loads (accelerators: smoke test
  // first). GGUF models ignore providers and load once.
  // Returns the engine and its LoadReport; the engine's model_info().provider names the
  // provider chosen. Throws: what route_manifest and parse_optimization_level throw;
  // Error(kUnavailable) from validate_requirements if check_requirements; if every provider
  // fails, the last provider's Error with its code, its message prefixed by the list of
  // earlier failures ("cuda: ...; cpu: ...").
  LoadedEngine create(const Package& package) const;

  // open_package(path) then create(). Throws as both do.
  LoadedEngine create(const std::filesystem::path& path, const PackageOptions& package_options = {}) const;

  // Loads on exactly `provider` and `device_id`, with no fallback and no smoke test.
  // Throws as create() does (Error(kInvalidInput) also for a negative device_id), and the
  // loader's Error unchanged.
  LoadedEngine create_for_device(const Package& package, std::string_view provider, int device_id) const;

  const DeviceInfo& devices() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_BACKEND_FACTORY_H_
