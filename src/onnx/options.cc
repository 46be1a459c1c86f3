#include "onnx/options.h"

#include <array>
#include <cstdlib>
#include <string>
#include <utility>

#include "core/strings.h"
#include "kapsl/error.h"
#include "onnx/ort_error.h"

namespace kapsl::onnx {
namespace {

[[noreturn]] void bad_field(std::string_view field, std::string_view expected, std::string_view got) {
  throw Error::invalid_input("OnnxOptions." + std::string(field) + " is invalid",
                             "expected " + std::string(expected) + ", got '" + std::string(got) + "'");
}

OrtLoggingLevel parse_log_level(std::string_view level) {
  static constexpr std::array<std::pair<std::string_view, OrtLoggingLevel>, 5> kLevels = {{
      {"verbose", ORT_LOGGING_LEVEL_VERBOSE},
      {"info", ORT_LOGGING_LEVEL_INFO},
      {"warning", ORT_LOGGING_LEVEL_WARNING},
      {"error", ORT_LOGGING_LEVEL_ERROR},
      {"fatal", ORT_LOGGING_LEVEL_FATAL},
  }};
  for (const auto& [name, value] : kLevels) {
    if (name == level) return value;
  }
  bad_field("log_level", "one of verbose, info, warning, error, fatal", level);
}

ExecutionMode parse_execution_mode(std::string_view mode) {
  if (mode == "sequential") return ORT_SEQUENTIAL;
  if (mode == "parallel") return ORT_PARALLEL;
  bad_field("execution_mode", "sequential or parallel", mode);
}

void check_threads(std::string_view field, const std::optional<int>& n) {
  if (n && *n < 0) bad_field(field, "unset, 0 (ONNX Runtime's default) or a positive count", std::to_string(*n));
}

}  // namespace

GraphOptimizationLevel parse_graph_optimization_level(std::string_view level) {
  const std::string key = internal::lower_trimmed(level);
  if (key == "disable" || key == "0") return ORT_DISABLE_ALL;
  if (key == "basic" || key == "1") return ORT_ENABLE_BASIC;
  if (key == "extended" || key == "2") return ORT_ENABLE_EXTENDED;
  if (key == "all" || key == "3" || key == "99") return ORT_ENABLE_ALL;
  bad_field("graph_optimization_level", "one of disable, basic, extended, all, 0, 1, 2, 3, 99", level);
}

std::optional<bool> env_bool(const char* name) {
  const char* raw = std::getenv(name);
  if (raw == nullptr) return std::nullopt;
  const std::string v = internal::lower_trimmed(raw);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  return std::nullopt;
}

OnnxOptions resolve_options(const OnnxOptions& options) {
  OnnxOptions r = options;
  r.provider = internal::lower_trimmed(options.provider);
  r.log_level = internal::lower_trimmed(options.log_level);
  r.execution_mode = internal::lower_trimmed(options.execution_mode);
  if (r.device_id < 0) bad_field("device_id", "a device index >= 0", std::to_string(r.device_id));
  parse_graph_optimization_level(r.graph_optimization_level);
  parse_log_level(r.log_level);
  parse_execution_mode(r.execution_mode);
  check_threads("intra_op_threads", r.intra_op_threads);
  check_threads("inter_op_threads", r.inter_op_threads);
  if (!r.inter_op_threads) r.inter_op_threads = 1;
  if (!r.memory_pattern) r.memory_pattern = env_bool("KAPSL_ORT_MEMORY_PATTERN").value_or(true);
  if (!r.cpu_mem_arena) r.cpu_mem_arena = !env_bool("KAPSL_ORT_DISABLE_CPU_MEM_ARENA").value_or(false);
  return r;
}

Ort::SessionOptions make_session_options(const OnnxOptions& o) {
  return ort_call(Phase::kOther, "cannot build ONNX Runtime session options", [&] {
    Ort::SessionOptions s;
    s.SetGraphOptimizationLevel(parse_graph_optimization_level(o.graph_optimization_level));
    s.SetExecutionMode(parse_execution_mode(o.execution_mode));
    s.SetLogSeverityLevel(static_cast<int>(parse_log_level(o.log_level)));
    if (o.intra_op_threads) {
      s.SetIntraOpNumThreads(*o.intra_op_threads);
      s.SetInterOpNumThreads(o.inter_op_threads.value_or(1));
    } else {
      s.DisablePerSessionThreads();  // run on the process-wide pool of ort_env()
    }
    if (*o.memory_pattern) s.EnableMemPattern(); else s.DisableMemPattern();
    if (!*o.cpu_mem_arena) s.DisableCpuMemArena();
    if (!o.optimized_model_path.empty()) s.SetOptimizedModelFilePath(o.optimized_model_path.c_str());
    return s;
  });
}

}  // namespace kapsl::onnx
