#include "kapsl/manifest.h"

#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/strings.h"
#include "kapsl/error.h"

namespace kapsl {
namespace {

using nlohmann::json;

constexpr int kMaxJsonDepth = 64;

// A short rendering of a JSON value for "got ..." in messages; long values are cut so a
// hostile manifest cannot make the message huge.
std::string describe(const json& v) {
  std::string type = v.type_name();
  std::string text = v.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return type + " " + text;
}

// Reads typed fields of one JSON object, naming `prefix.field` in every error.
class FieldReader {
 public:
  FieldReader(const json& object, std::string prefix, std::string_view source)
      : object_(object), prefix_(std::move(prefix)), source_(source) {}

  std::string path(std::string_view field) const {
    return prefix_.empty() ? std::string(field) : prefix_ + "." + std::string(field);
  }

  [[noreturn]] void fail(const std::string& field_path, std::string_view expected, const json& got) const {
    throw Error::invalid_input(std::string(source_) + ": " + field_path,
                               "expected " + std::string(expected) + ", got " + describe(got));
  }

  // A present, non-null field, or nullptr.
  const json* find(std::string_view field) const {
    auto it = object_.find(field);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  std::string required_string(std::string_view field) const {
    const json* v = find(field);
    if (v == nullptr) {
      throw Error::invalid_input(std::string(source_) + ": " + path(field), "required field is missing");
    }
    std::string s = string_at(*v, path(field));
    if (internal::trim(s).empty()) {
      throw Error::invalid_input(std::string(source_) + ": " + path(field), "expected a non-empty string, got \"\"");
    }
    return s;
  }

  std::string optional_string(std::string_view field) const {
    const json* v = find(field);
    return v == nullptr ? std::string() : string_at(*v, path(field));
  }

  std::string string_at(const json& v, const std::string& field_path) const {
    if (!v.is_string()) fail(field_path, "a string", v);
    return v.get<std::string>();
  }

  std::vector<std::string> string_array(std::string_view field) const {
    std::vector<std::string> out;
    const json* v = find(field);
    if (v == nullptr) return out;
    if (!v->is_array()) fail(path(field), "an array of strings", *v);
    for (size_t i = 0; i < v->size(); ++i) {
      out.push_back(string_at((*v)[i], path(field) + "[" + std::to_string(i) + "]"));
    }
    return out;
  }

  std::optional<uint64_t> optional_u64(std::string_view field, uint64_t max = std::numeric_limits<uint64_t>::max()) const {
    const json* v = find(field);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_unsigned() || v->get<uint64_t>() > max) {
      fail(path(field), "an integer in [0, " + std::to_string(max) + "]", *v);
    }
    return v->get<uint64_t>();
  }

  int32_t i32_at(const json& v, const std::string& field_path) const {
    constexpr int64_t lo = std::numeric_limits<int32_t>::min();
    constexpr int64_t hi = std::numeric_limits<int32_t>::max();
    bool ok = v.is_number_integer() &&
              (v.is_number_unsigned() ? v.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                      : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi);
    if (!ok) fail(field_path, "a 32-bit integer", v);
    return static_cast<int32_t>(v.get<int64_t>());
  }

  bool optional_bool(std::string_view field, bool fallback) const {
    const json* v = find(field);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) fail(path(field), "a boolean", *v);
    return v->get<bool>();
  }

  const json* object_field(std::string_view field) const {
    const json* v = find(field);
    if (v != nullptr && !v->is_object()) fail(path(field), "an object", *v);
    return v;
  }

  std::string_view source() const { return source_; }

 private:
  const json& object_;
  std::string prefix_;
  std::string_view source_;
};

HardwareRequirements parse_requirements(const json& object, std::string_view source) {
  FieldReader r(object, "hardware_requirements", source);
  HardwareRequirements h;
  h.preferred_provider = r.optional_string("preferred_provider");
  h.fallback_providers = r.string_array("fallback_providers");
  h.min_memory_mb = r.optional_u64("min_memory_mb");
  h.min_vram_mb = r.optional_u64("min_vram_mb");
  h.gpu_memory_reservation_mb = r.optional_u64("gpu_memory_reservation_mb");
  h.gpu_memory_limit_mb = r.optional_u64("gpu_memory_limit_mb");
  if (auto share = r.optional_u64("gpu_compute_share_milli", std::numeric_limits<uint32_t>::max())) {
    h.gpu_compute_share_milli = static_cast<uint32_t>(*share);
  }
  h.isolation_mode = r.optional_string("isolation_mode");
  h.min_cuda_version = r.optional_string("min_cuda_version");
  h.required_precision = r.optional_string("required_precision");
  h.optimized_for = r.string_array("optimized_for");
  h.graph_optimization_level = r.optional_string("graph_optimization_level");
  if (const json* id = r.find("device_id")) h.device_id = r.i32_at(*id, r.path("device_id"));
  if (const json* ids = r.find("gpu_device_ids")) {
    if (!ids->is_array()) r.fail(r.path("gpu_device_ids"), "an array of integers", *ids);
    for (size_t i = 0; i < ids->size(); ++i) {
      h.gpu_device_ids.push_back(r.i32_at((*ids)[i], r.path("gpu_device_ids") + "[" + std::to_string(i) + "]"));
    }
  }
  h.strategy = r.optional_string("strategy");
  return h;
}

void parse_schedule(const FieldReader& r, const json* schedule, CronJob& job) {
  const std::string field = r.path("schedule");
  if (schedule == nullptr) {
    throw Error::invalid_input(std::string(r.source()) + ": " + field, "required field is missing");
  }
  if (schedule->is_string()) {
    job.cron_expression = schedule->get<std::string>();
    if (internal::split_blank(job.cron_expression).size() != 6) {
      r.fail(field, "a cron expression of 6 fields \"<sec> <min> <hour> <dom> <mon> <dow>\"", *schedule);
    }
    return;
  }
  if (!schedule->is_object()) r.fail(field, "a cron string or {\"interval_secs\": N}", *schedule);
  FieldReader sr(*schedule, field, r.source());
  job.interval_secs = sr.optional_u64("interval_secs");
  if (!job.interval_secs || *job.interval_secs == 0) {
    sr.fail(sr.path("interval_secs"), "a positive integer", schedule->value("interval_secs", json()));
  }
}

CronJob parse_cron_job(const json& v, const std::string& prefix, std::string_view source) {
  FieldReader r(v, prefix, source);
  CronJob job;
  job.id = r.required_string("id");
  parse_schedule(r, r.find("schedule"), job);
  if (const json* in = r.find("input")) job.input_json = in->dump();
  if (const json* in = r.find("additional_inputs")) {
    if (!in->is_array()) r.fail(r.path("additional_inputs"), "an array", *in);
    job.additional_inputs_json = in->dump();
  }
  std::string priority = internal::to_lower(internal::trim(r.optional_string("priority")));
  if (priority == "latency_critical") {
    job.priority = CronJob::Priority::kLatencyCritical;
  } else if (!priority.empty() && priority != "throughput") {
    r.fail(r.path("priority"), "\"throughput\" or \"latency_critical\"", v["priority"]);
  }
  job.force_cpu = r.optional_bool("force_cpu", false);
  std::string overflow = internal::to_lower(internal::trim(r.optional_string("overflow_policy")));
  if (overflow == "block") {
    job.overflow_policy = CronJob::OverflowPolicy::kBlock;
  } else if (!overflow.empty() && overflow != "skip_if_busy") {
    r.fail(r.path("overflow_policy"), "\"skip_if_busy\" or \"block\"", v["overflow_policy"]);
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
    throw Error::invalid_input(std::string(source) + ": model_file",
                               "expected a path relative to the package root without \"..\", got \"" + model_file + "\"");
  }
}

Manifest parse_root(const json& root, std::string_view source) {
  FieldReader r(root, "", source);
  Manifest m;
  m.project_name = r.required_string("project_name");
  m.framework = r.required_string("framework");
  m.version = r.required_string("version");
  if (r.find("created_at") == nullptr) {
    throw Error::invalid_input(std::string(source) + ": created_at", "required field is missing");
  }
  m.created_at = r.optional_string("created_at");  // the original allows "" (synthesised manifests)
  m.model_file = r.required_string("model_file");
  check_model_file(m.model_file, source);
  if (const json* meta = r.find("metadata")) m.metadata_json = meta->dump();
  if (const json* hw = r.object_field("hardware_requirements")) m.hardware_requirements = parse_requirements(*hw, source);
  if (const json* jobs = r.find("cron_jobs")) {
    if (!jobs->is_array()) r.fail("cron_jobs", "an array", *jobs);
    for (size_t i = 0; i < jobs->size(); ++i) {
      std::string prefix = "cron_jobs[" + std::to_string(i) + "]";
      if (!(*jobs)[i].is_object()) r.fail(prefix, "an object", (*jobs)[i]);
      m.cron_jobs.push_back(parse_cron_job((*jobs)[i], prefix, source));
    }
  }
  m.format = r.optional_string("format");
  m.model_type = r.optional_string("model_type");
  m.task = r.optional_string("task");
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
    throw Error::invalid_input("metadata." + std::string(dotted_path), "expected a boolean, got " + describe(node));
  }
  return node.get<bool>();
}

Manifest parse_manifest(std::string_view json_text, std::string_view source) {
  json root;
  // dump() and the destructor recurse, so a hostile, deeply nested manifest is refused
  // while parsing instead of exhausting the stack later.
  auto limit_depth = [source](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) {
      throw Error::invalid_input(std::string(source) + ": not accepted",
                                 "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    return true;
  };
  try {
    root = json::parse(json_text, limit_depth);
  } catch (const json::parse_error& e) {
    throw Error::invalid_input(std::string(source) + ": not valid JSON",
                               "syntax error at byte " + std::to_string(e.byte));
  }
  if (!root.is_object()) {
    throw Error::invalid_input(std::string(source), "expected a JSON object at the root, got " + describe(root));
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

Manifest synthesize_manifest(const std::filesystem::path& model_file) {
  std::string ext = internal::to_lower(model_file.extension().string());
  Manifest m;
  if (ext == ".gguf") {
    m.framework = "gguf";
  } else if (ext == ".onnx") {
    m.framework = "onnx";
  } else {
    throw Error::invalid_input("cannot tell the model format of " + model_file.string(),
                               "expected a .onnx or .gguf extension or an .aimod package, got \"" + ext + "\"");
  }
  m.format = m.framework;
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

std::string manifest_to_json(const Manifest& m) {
  json root = {{"project_name", m.project_name}, {"framework", m.framework}, {"version", m.version},
               {"created_at", m.created_at}, {"model_file", m.model_file}};
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
  // Invalid UTF-8 in a field set by the caller is replaced rather than thrown as a
  // nlohmann exception.
  return root.dump(2, ' ', false, json::error_handler_t::replace);
}

}  // namespace kapsl
