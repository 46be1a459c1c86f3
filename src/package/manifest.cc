#include "kapsl/manifest.h"

#include <fstream>
#include <limits>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/json_fields.h"
#include "core/strings.h"
#include "kapsl/error.h"

namespace kapsl {
namespace {

using nlohmann::json;
using internal::JsonFields;

HardwareRequirements parse_requirements(const json& object, std::string_view source) {
  JsonFields r(object, "hardware_requirements", source);
  r.reject_unknown({"preferred_provider", "fallback_providers", "min_memory_mb", "min_vram_mb",
                    "gpu_memory_reservation_mb", "gpu_memory_limit_mb", "gpu_compute_share_milli", "isolation_mode",
                    "min_cuda_version", "required_precision", "optimized_for", "graph_optimization_level", "device_id",
                    "gpu_device_ids", "strategy"});
  HardwareRequirements h;
  h.preferred_provider = r.string("preferred_provider").value_or("");
  h.fallback_providers = r.strings("fallback_providers");
  h.min_memory_mb = r.u64("min_memory_mb");
  h.min_vram_mb = r.u64("min_vram_mb");
  h.gpu_memory_reservation_mb = r.u64("gpu_memory_reservation_mb");
  h.gpu_memory_limit_mb = r.u64("gpu_memory_limit_mb");
  h.gpu_compute_share_milli = r.u32("gpu_compute_share_milli");
  h.isolation_mode = r.string("isolation_mode").value_or("");
  h.min_cuda_version = r.string("min_cuda_version").value_or("");
  h.required_precision = r.string("required_precision").value_or("");
  h.optimized_for = r.strings("optimized_for");
  h.graph_optimization_level = r.string("graph_optimization_level").value_or("");
  if (const json* id = r.find("device_id")) h.device_id = JsonFields::i32_at(*id, r.where("device_id"));
  if (const json* ids = r.find("gpu_device_ids")) {
    if (!ids->is_array()) internal::fail_field(r.where("gpu_device_ids"), "an array of integers", *ids);
    for (size_t i = 0; i < ids->size(); ++i) {
      h.gpu_device_ids.push_back(JsonFields::i32_at((*ids)[i], r.where("gpu_device_ids") + "[" + std::to_string(i) + "]"));
    }
  }
  h.strategy = r.string("strategy").value_or("");
  return h;
}

DynamicBatchingOptions parse_dynamic_batching(const json& object, std::string_view source) {
  JsonFields r(object, "serving.dynamic_batching", source);
  r.reject_unknown({"max_batch_size", "preferred_batch_sizes", "max_queue_delay", "max_queue", "queue_timeout",
                    "balance_instances"});
  DynamicBatchingOptions b;
  b.max_batch_size = r.u32("max_batch_size", 1, 1u << 20).value_or(b.max_batch_size);
  if (const json* sizes = r.find("preferred_batch_sizes")) {
    const std::string where = r.where("preferred_batch_sizes");
    if (!sizes->is_array()) internal::fail_field(where, "an array of batch sizes", *sizes);
    for (size_t i = 0; i < sizes->size(); ++i) {
      const int32_t size = JsonFields::i32_at((*sizes)[i], where + "[" + std::to_string(i) + "]");
      if (size < 1 || static_cast<uint32_t>(size) > b.max_batch_size) {
        internal::fail_field(where + "[" + std::to_string(i) + "]",
                             "a size in 1..max_batch_size (" + std::to_string(b.max_batch_size) + ")", (*sizes)[i]);
      }
      b.preferred_batch_sizes.push_back(static_cast<uint32_t>(size));
    }
  }
  b.max_queue_delay = r.duration_us("max_queue_delay").value_or(b.max_queue_delay);
  b.max_queue = r.u32("max_queue", 1).value_or(b.max_queue);
  b.queue_timeout = r.duration("queue_timeout").value_or(b.queue_timeout);
  b.balance_instances = r.boolean("balance_instances").value_or(b.balance_instances);
  return b;
}

ServingConfig parse_serving(const json& object, std::string_view source) {
  JsonFields r(object, "serving", source);
  r.reject_unknown({"max_concurrency", "max_queue", "queue_timeout", "request_timeout", "warmup", "pin", "idle_ttl",
                    "dynamic_batching"});
  ServingConfig s;
  s.max_concurrency = r.u32("max_concurrency", 1);
  s.max_queue = r.u32("max_queue");
  s.queue_timeout = r.duration("queue_timeout");
  s.request_timeout = r.duration("request_timeout");
  s.warmup = r.boolean("warmup");
  s.pin = r.boolean("pin");
  s.idle_ttl = r.duration("idle_ttl");
  if (const json* batching = r.object("dynamic_batching")) s.dynamic_batching = parse_dynamic_batching(*batching, source);
  return s;
}

void parse_schedule(const JsonFields& r, const json* schedule, CronJob& job) {
  const std::string where = r.where("schedule");
  if (schedule == nullptr) throw Error::invalid_input(where, "required field is missing");
  if (schedule->is_string()) {
    job.cron_expression = schedule->get<std::string>();
    if (internal::split_blank(job.cron_expression).size() != 6) {
      internal::fail_field(where, "a cron expression of 6 fields \"<sec> <min> <hour> <dom> <mon> <dow>\"", *schedule);
    }
    return;
  }
  if (!schedule->is_object()) internal::fail_field(where, "a cron string or {\"interval_secs\": N}", *schedule);
  JsonFields sr(*schedule, r.path("schedule"), r.source());
  sr.reject_unknown({"interval_secs"});
  job.interval_secs = sr.u64("interval_secs", 1);
  if (!job.interval_secs) throw Error::invalid_input(sr.where("interval_secs"), "required field is missing");
}

CronJob parse_cron_job(const json& v, const std::string& prefix, std::string_view source) {
  JsonFields r(v, prefix, source);
  r.reject_unknown({"id", "schedule", "input", "additional_inputs", "priority", "force_cpu", "overflow_policy"});
  CronJob job;
  job.id = r.required_string("id");
  parse_schedule(r, r.find("schedule"), job);
  if (const json* in = r.find("input")) job.input_json = in->dump();
  if (const json* in = r.find("additional_inputs")) {
    if (!in->is_array()) internal::fail_field(r.where("additional_inputs"), "an array", *in);
    job.additional_inputs_json = in->dump();
  }
  if (r.one_of("priority", {"throughput", "latency_critical"}).value_or("") == "latency_critical") {
    job.priority = CronJob::Priority::kLatencyCritical;
  }
  job.force_cpu = r.boolean("force_cpu").value_or(false);
  if (r.one_of("overflow_policy", {"skip_if_busy", "block"}).value_or("") == "block") {
    job.overflow_policy = CronJob::OverflowPolicy::kBlock;
  }
  return job;
}

// model_file is joined to the extraction directory; a path that could leave it is refused
// here, before any file is touched.
void check_model_file(const std::string& model_file, std::string_view source) {
  std::filesystem::path p(model_file);
  bool escapes = p.is_absolute() || p.has_root_name() || p.has_root_directory();
  for (const auto& part : p) escapes = escapes || part == "..";
  if (escapes) {
    throw Error::invalid_input(internal::field_location(source, "model_file"),
                               "expected a path relative to the package root without \"..\", got \"" + model_file + "\"");
  }
}

// The manifest's own keys; any other key holding an object is a backend section.
const std::set<std::string, std::less<>>& known_fields() {
  static const std::set<std::string, std::less<>> kKnown = {
      "project_name", "framework", "version",  "created_at", "model_file", "metadata", "hardware_requirements",
      "cron_jobs",    "format",    "model_type", "task",     "threads",    "serving"};
  return kKnown;
}

void collect_backend_sections(const json& root, std::string_view source, Manifest& m) {
  for (const auto& [key, value] : root.items()) {
    if (known_fields().count(key)) continue;
    if (!value.is_object()) {
      std::string known;
      for (const auto& k : known_fields()) known += (known.empty() ? "" : ", ") + k;
      throw Error::invalid_input(internal::field_location(source, key),
                                 "unknown field (known: " + known + ", and backend sections as objects)");
    }
    m.backend_sections[key] = value.dump();
  }
}

Manifest parse_root(const json& root, std::string_view source) {
  JsonFields r(root, "", source);
  Manifest m;
  m.project_name = r.required_string("project_name");
  m.format = r.string("format").value_or("");
  // The original requires framework; `format` (0.1.1) may name the backend instead.
  m.framework = m.format.empty() ? r.required_string("framework") : r.string("framework").value_or("");
  m.version = r.required_string("version");
  if (r.find("created_at") == nullptr) throw Error::invalid_input(r.where("created_at"), "required field is missing");
  m.created_at = r.string("created_at").value_or("");  // the original allows "" (synthesised manifests)
  m.model_file = r.required_string("model_file");
  check_model_file(m.model_file, source);
  if (const json* meta = r.find("metadata")) m.metadata_json = meta->dump();
  if (const json* hw = r.object("hardware_requirements")) m.hardware_requirements = parse_requirements(*hw, source);
  if (const json* jobs = r.find("cron_jobs")) {
    if (!jobs->is_array()) internal::fail_field(r.where("cron_jobs"), "an array", *jobs);
    for (size_t i = 0; i < jobs->size(); ++i) {
      std::string prefix = "cron_jobs[" + std::to_string(i) + "]";
      if (!(*jobs)[i].is_object()) internal::fail_field(internal::field_location(source, prefix), "an object", (*jobs)[i]);
      m.cron_jobs.push_back(parse_cron_job((*jobs)[i], prefix, source));
    }
  }
  m.model_type = r.string("model_type").value_or("");
  m.task = r.string("task").value_or("");
  m.threads = r.i32("threads", 0, 4096);
  if (const json* serving = r.object("serving")) m.serving = parse_serving(*serving, source);
  collect_backend_sections(root, source, m);
  return m;
}

}  // namespace

HardwareRequirements HardwareRequirements::cpu_only() {
  HardwareRequirements h;
  h.preferred_provider = "cpu";
  h.required_precision = "fp32";
  h.graph_optimization_level = "all";
  h.device_id = 0;
  h.strategy = "round-robin";
  return h;
}

HardwareRequirements HardwareRequirements::gpu_with_cpu_fallback(std::string gpu) {
  HardwareRequirements h = cpu_only();
  h.preferred_provider = std::move(gpu);
  h.fallback_providers = {"cpu"};
  return h;
}

std::optional<uint64_t> HardwareRequirements::requested_gpu_memory_mb() const {
  if (gpu_memory_reservation_mb) return gpu_memory_reservation_mb;
  if (gpu_memory_limit_mb) return gpu_memory_limit_mb;
  return min_vram_mb;
}

std::string HardwareRequirements::requested_isolation_mode() const {
  std::string mode(internal::trim(isolation_mode));
  return mode.empty() ? "best_effort" : mode;
}

std::optional<bool> Manifest::metadata_bool(std::string_view dotted_path) const {
  if (metadata_json.empty()) return std::nullopt;
  json node = json::parse(metadata_json, nullptr, /*allow_exceptions=*/false);
  if (node.is_discarded()) throw Error::invalid_input("metadata", "is not valid JSON");
  for (const std::string& key : internal::split(dotted_path, '.')) {
    if (!node.is_object() || !node.contains(key)) return std::nullopt;
    node = json(node[key]);
  }
  if (node.is_null()) return std::nullopt;
  if (!node.is_boolean()) {
    throw Error::invalid_input("metadata." + std::string(dotted_path), "expected a boolean, got " + internal::describe_json(node));
  }
  return node.get<bool>();
}

Manifest parse_manifest(std::string_view json_text, std::string_view source) {
  const json root = internal::parse_json_document(json_text, source);
  if (!root.is_object()) {
    throw Error::invalid_input(std::string(source),
                               "expected a JSON object at the root, got " + internal::describe_json(root));
  }
  return parse_root(root, source);
}

Manifest read_manifest(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error::not_found("manifest not found", path.string());
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in.good() && !in.eof()) throw Error::model_load("cannot read manifest", path.string());
  return parse_manifest(text.str(), path.string());
}

Manifest synthesize_manifest(const std::filesystem::path& model_file, std::string_view format) {
  Manifest m;
  m.framework = std::string(format);
  m.format = std::string(format);
  m.project_name = model_file.stem().string();
  m.version = "1.0.0";
  m.model_file = model_file.filename().string();
  return m;
}

// Parses JSON text held in a Manifest field, naming the field if it is not JSON.
json embedded_json(const std::string& text, const std::string& field) {
  json v = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) throw Error::invalid_input(field, "is not valid JSON text");
  return v;
}

// Durations are written in seconds, as parse_duration reads them back.
json serving_json(const ServingConfig& s) {
  json out = json::object();
  const auto put = [&out](const char* key, const auto& v) { if (v) out[key] = *v; };
  const auto seconds = [&out](const char* key, const std::optional<std::chrono::milliseconds>& d) {
    if (d) out[key] = static_cast<double>(d->count()) / 1000.0;
  };
  put("max_concurrency", s.max_concurrency);
  put("max_queue", s.max_queue);
  seconds("queue_timeout", s.queue_timeout);
  seconds("request_timeout", s.request_timeout);
  put("warmup", s.warmup);
  put("pin", s.pin);
  seconds("idle_ttl", s.idle_ttl);
  if (const auto& b = s.dynamic_batching) {
    out["dynamic_batching"] = {{"max_batch_size", b->max_batch_size},
                               {"preferred_batch_sizes", b->preferred_batch_sizes},
                               {"max_queue_delay", static_cast<double>(b->max_queue_delay.count()) / 1e6},
                               {"max_queue", b->max_queue},
                               {"queue_timeout", static_cast<double>(b->queue_timeout.count()) / 1000.0},
                               {"balance_instances", b->balance_instances}};
  }
  return out;
}

std::string manifest_to_json(const Manifest& m) {
  json root = {{"project_name", m.project_name}, {"version", m.version}, {"created_at", m.created_at},
               {"model_file", m.model_file}};
  if (!m.framework.empty()) root["framework"] = m.framework;
  if (!m.metadata_json.empty()) root["metadata"] = embedded_json(m.metadata_json, "metadata_json");
  const HardwareRequirements& h = m.hardware_requirements;
  json hw = json::object();
  auto put_str = [&hw](const char* k, const std::string& v) { if (!v.empty()) hw[k] = v; };
  auto put_opt = [&hw](const char* k, const auto& v) { if (v) hw[k] = *v; };
  put_str("preferred_provider", h.preferred_provider);
  if (!h.fallback_providers.empty()) hw["fallback_providers"] = h.fallback_providers;
  put_opt("min_memory_mb", h.min_memory_mb);
  put_opt("min_vram_mb", h.min_vram_mb);
  put_opt("gpu_memory_reservation_mb", h.gpu_memory_reservation_mb);
  put_opt("gpu_memory_limit_mb", h.gpu_memory_limit_mb);
  put_opt("gpu_compute_share_milli", h.gpu_compute_share_milli);
  put_str("isolation_mode", h.isolation_mode);
  put_str("min_cuda_version", h.min_cuda_version);
  put_str("required_precision", h.required_precision);
  if (!h.optimized_for.empty()) hw["optimized_for"] = h.optimized_for;
  put_str("graph_optimization_level", h.graph_optimization_level);
  put_opt("device_id", h.device_id);
  if (!h.gpu_device_ids.empty()) hw["gpu_device_ids"] = h.gpu_device_ids;
  put_str("strategy", h.strategy);
  root["hardware_requirements"] = hw;
  json jobs = json::array();
  for (const CronJob& j : m.cron_jobs) {
    json job = {{"id", j.id}, {"force_cpu", j.force_cpu},
                {"priority", j.priority == CronJob::Priority::kThroughput ? "throughput" : "latency_critical"},
                {"overflow_policy", j.overflow_policy == CronJob::OverflowPolicy::kBlock ? "block" : "skip_if_busy"}};
    job["schedule"] = j.interval_secs ? json{{"interval_secs", *j.interval_secs}} : json(j.cron_expression);
    if (!j.input_json.empty()) job["input"] = embedded_json(j.input_json, "cron_jobs.input_json");
    if (!j.additional_inputs_json.empty()) {
      job["additional_inputs"] = embedded_json(j.additional_inputs_json, "cron_jobs.additional_inputs_json");
    }
    jobs.push_back(std::move(job));
  }
  if (!jobs.empty()) root["cron_jobs"] = std::move(jobs);
  if (!m.format.empty()) root["format"] = m.format;
  if (!m.model_type.empty()) root["model_type"] = m.model_type;
  if (!m.task.empty()) root["task"] = m.task;
  if (m.threads) root["threads"] = *m.threads;
  if (json serving = serving_json(m.serving); !serving.empty()) root["serving"] = std::move(serving);
  for (const auto& [name, section] : m.backend_sections) root[name] = embedded_json(section, name);
  // Invalid UTF-8 in a field set by the caller is replaced rather than thrown as a
  // nlohmann exception.
  return root.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace kapsl
