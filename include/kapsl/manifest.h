// Manifest: the description of a model — `metadata.json` in a model folder or at the root
// of an .aimod archive — and the per-model configuration it carries, like Triton's
// config.pbtxt: which backend and task, the hardware it asks for, how it is served, and
// the options of its backend.
//
// A Manifest is a plain value parsed from JSON by parse_manifest() or read_manifest(), or
// synthesised for a bare model file by synthesize_manifest(). The fields are the original
// kapsl-backends 0.1 ones (project_name, framework, version, created_at, model_file,
// metadata, hardware_requirements, cron_jobs), 0.1.1's dispatch axes (format, model_type,
// task) and kapsl's configuration: "threads", "serving" and one options section per
// backend, keyed by the backend's name ("onnx": {...}, "gguf": {...}).
// docs/model-config.md describes every key with a full example per backend.
//
// Unknown keys are errors, at every level but inside `metadata` (free-form) and inside
// the backend sections (their backend checks them): a misspelt "max_concurency" must not
// be ignored silently. A top-level key whose value is an object and that is not a known
// field is kept as a backend section; the BackendFactory refuses it unless a registered
// backend has that name. Every error names the field path
// ("hardware_requirements.fallback_providers[1]"), the expected type and the given value.
//
// `metadata` is free-form JSON, kept as JSON text (metadata_json) rather than a parsed tree
// so that this header does not tie users to one JSON library; the same holds for the
// backend sections.
//
// Ownership: every type here is a value that owns its strings.
// Thread-safety: const methods may run concurrently; others need external synchronization.
#ifndef KAPSL_MANIFEST_H_
#define KAPSL_MANIFEST_H_

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/dynamic_batcher.h"

namespace kapsl {

// What the model needs from the machine, as declared by its package. Every field is
// optional; the defaults say "no requirement". Only the fields marked "used" are consulted
// by kapsl (validate_requirements, BackendFactory); the others are carried for schedulers.
struct HardwareRequirements {
  // --- Providers (used)
  std::string preferred_provider;               // execution provider to try first; "" = none
  std::vector<std::string> fallback_providers;  // tried after it, in order
  // --- Memory (used)
  std::optional<uint64_t> min_memory_mb;  // host RAM in MiB the model needs (checked against total)
  std::optional<uint64_t> min_vram_mb;    // accelerator memory in MiB per device
  // --- Versions and placement (used)
  std::string min_cuda_version;          // e.g. "11.8", compared numerically; "" = any
  std::string graph_optimization_level;  // see parse_optimization_level(); "" = "all"
  std::optional<int32_t> device_id;      // accelerator index within its backend; unset = 0
  std::string strategy;  // "pool", "round-robin", "data-parallel", "pipeline",
                         // "pipeline-parallel", "tensor-parallel", "auto": any device may serve
  // --- Carried, not consulted by kapsl
  std::optional<uint64_t> gpu_memory_reservation_mb;  // admission control
  std::optional<uint64_t> gpu_memory_limit_mb;        // admission control
  std::optional<uint32_t> gpu_compute_share_milli;    // 1000 = a whole GPU
  std::string isolation_mode;                          // "best_effort", "reserved", "hard"; "" = best_effort
  std::string required_precision;                      // "fp32", "fp16", "int8"
  std::vector<std::string> optimized_for;              // free-form hardware tags
  std::vector<int32_t> gpu_device_ids;                 // devices a scheduler may place on

  // The original's presets: preferred "cpu" (or `gpu` with fallback "cpu"), precision
  // fp32, optimisation level "all", device 0, strategy "round-robin".
  static HardwareRequirements cpu_only();
  static HardwareRequirements gpu_with_cpu_fallback(std::string gpu);

  // The reservation, else the limit, else min_vram_mb; nullopt if none is set.
  std::optional<uint64_t> requested_gpu_memory_mb() const;
  // isolation_mode trimmed, or "best_effort" when empty.
  std::string requested_isolation_mode() const;
};

// A job the runtime runs on a schedule, as declared by the package.
struct CronJob {
  enum class Priority { kThroughput, kLatencyCritical };
  enum class OverflowPolicy { kSkipIfBusy, kBlock };

  std::string id;
  std::string cron_expression;            // "<sec> <min> <hour> <dom> <mon> <dow>", or ""
  std::optional<uint64_t> interval_secs;  // set instead of cron_expression ({"interval_secs": N})
  std::string input_json;                 // the job's `input` packet, verbatim JSON; "" if absent
  std::string additional_inputs_json;     // its `additional_inputs`, verbatim JSON; "" if absent
  Priority priority = Priority::kThroughput;
  bool force_cpu = false;
  OverflowPolicy overflow_policy = OverflowPolicy::kSkipIfBusy;
};

// How a model is served (the "serving" section). Every field is optional: an unset one
// takes the server's setting (its command-line flags or config file).
struct ServingConfig {
  std::optional<uint32_t> max_concurrency;                // requests running at once (>= 1)
  std::optional<uint32_t> max_queue;                      // requests waiting for a turn
  std::optional<std::chrono::milliseconds> queue_timeout;   // longest wait for a turn
  std::optional<std::chrono::milliseconds> request_timeout;  // deadline of each inference; 0 = none
  std::optional<bool> warmup;                    // run one inference after loading, before serving
  std::optional<bool> pin;                       // load at start; never evict for capacity, bytes or idle time
  std::optional<std::chrono::milliseconds> idle_ttl;  // unload after this long unused; 0 = never
  // Merge concurrent requests into one execution (dynamic_batcher.h); unset = off. Its
  // `instances` is max_concurrency: the executions that run at once.
  std::optional<DynamicBatchingOptions> dynamic_batching;
};

struct Manifest {
  // --- Required in metadata.json
  std::string project_name;
  std::string version;
  std::string created_at;  // free-form, usually ISO-8601
  std::string model_file;  // relative to the package root; never absolute, never with ".."
  // --- Which backend and task (see BackendFactory). The backend is `format`, else
  // `framework`, else the one that takes model_file's extension.
  std::string framework;   // the original's name for the format: "onnx", "gguf"; may be ""
  std::string format;      // 0.1.1: "onnx", "gguf", or a registered backend's name; "" = from framework
  std::string model_type;  // 0.1.1: e.g. "causal-lm", "encoder", "classifier"; "" = unknown
  std::string task;        // 0.1.1: "forward", "classify", "embed", "generate"; "" = the backend's default
  // --- Optional
  std::string metadata_json;  // the `metadata` value as compact JSON text; "" if absent
  HardwareRequirements hardware_requirements;  // providers in order, device, memory
  std::vector<CronJob> cron_jobs;
  // --- Configuration
  std::optional<int32_t> threads;  // compute threads of the engine (ONNX intra-op per run,
                                   // llama.cpp for all slots); 0 or unset = the backend's default
  ServingConfig serving;
  // Backend options sections as JSON object text, keyed by backend name ("onnx" -> "{...}").
  std::map<std::string, std::string> backend_sections;

  // The boolean at `dotted_path` inside metadata ("embed.normalize"), or nullopt if the
  // path is absent. Throws Error(kInvalidInput) if metadata_json is not valid JSON or the
  // value there is not a boolean (the message names "metadata.<path>").
  std::optional<bool> metadata_bool(std::string_view dotted_path) const;
};

// Parses the text of a metadata.json. `source` names the document in messages ("pkg.aimod:
// metadata.json"). Returns the manifest. Throws Error(kInvalidInput) if the text is not
// JSON (with the byte offset) or is nested deeper than 64 levels, the root is not an
// object, a required field is missing or empty, a key is unknown (see above), a field has
// the wrong type or is out of range, a cron job's schedule or enum is invalid, or
// model_file is absolute or contains "..": each message names the field path, what was
// expected and what was given.
Manifest parse_manifest(std::string_view json_text, std::string_view source = "metadata.json");

// Reads and parses the file at `path`. Throws Error(kNotFound) if it does not exist,
// Error(kModelLoad) if it cannot be read, and as parse_manifest() otherwise.
Manifest read_manifest(const std::filesystem::path& path);

// The manifest the original gives a bare model file: project_name = the file stem, version
// "1.0.0", created_at "", model_file = the file name, default requirements; framework and
// format are `format` (the BackendFactory passes the backend that takes the file's
// extension; "" leaves the choice to it). Never throws except std::bad_alloc.
Manifest synthesize_manifest(const std::filesystem::path& model_file, std::string_view format = {});

// The manifest as metadata.json text (the inverse of parse_manifest for every field,
// configuration and backend sections included).
// Invalid UTF-8 in a string is replaced by U+FFFD. Throws Error(kInvalidInput) naming the
// field if metadata_json, a backend section or a cron job's input is not valid JSON text.
std::string manifest_to_json(const Manifest& manifest);

}  // namespace kapsl

#endif  // KAPSL_MANIFEST_H_
