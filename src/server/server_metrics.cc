// Prometheus text rendering (format 0.0.4) of the server's, the pool's and the process's
// metrics. Names follow Prometheus conventions (base units, counters end in _total) and
// mirror Triton's where one exists: kapsl_inference_queue_duration_seconds is Triton's
// nv_inference_queue_duration_us as a histogram in seconds.
#include <charconv>
#include <cstdio>
#include <fstream>
#include <unistd.h>

#include "server/server_metrics.h"

#include "server/http_util.h"

namespace kapsl::server {

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

void family(std::string& out, const std::string& name, const char* type, const char* help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void sample(std::string& out, const std::string& name, const std::string& labels, double value) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += " " + number(value) + "\n";
}

std::string with(const std::string& labels, const std::string& extra) {
  return labels.empty() ? extra : labels + "," + extra;
}

void render_pool(std::string& out, const PoolMetrics& pool) {
  const std::pair<const char*, uint64_t> counters[] = {
      {"hits", pool.hits},     {"misses", pool.misses},         {"loads", pool.loads},
      {"load_failures", pool.load_failures}, {"rejections", pool.rejections},
      {"health_failures", pool.health_failures}};
  for (const auto& [what, value] : counters) {
    const std::string name = std::string("kapsl_pool_") + what + "_total";
    family(out, name, "counter", "Engine pool counter (see engine_pool.h, PoolMetrics).");
    sample(out, name, "", static_cast<double>(value));
  }
  family(out, "kapsl_pool_evictions_total", "counter", "Engines that left the pool, by reason.");
  for (size_t i = 0; i < kEvictionReasonCount; ++i) {
    const std::string reason = eviction_reason_name(static_cast<EvictionReason>(i));
    sample(out, "kapsl_pool_evictions_total", "reason=\"" + reason + "\"", static_cast<double>(pool.departures[i]));
  }
  family(out, "kapsl_pool_load_duration_seconds", "histogram", "Duration of successful model loads.");
  append_histogram(out, "kapsl_pool_load_duration_seconds", "", pool.load_time);
  family(out, "kapsl_pool_entries", "gauge", "Engines resident in the pool.");
  sample(out, "kapsl_pool_entries", "", static_cast<double>(pool.entries));
  family(out, "kapsl_pool_loads_in_flight", "gauge", "Model loads running now.");
  sample(out, "kapsl_pool_loads_in_flight", "", static_cast<double>(pool.loads_in_flight));
  family(out, "kapsl_pool_resident_bytes", "gauge", "Bytes held by admitted engines, per device.");
  for (const auto& d : pool.devices) {
    sample(out, "kapsl_pool_resident_bytes", "device=\"" + std::to_string(d.device_id) + "\"",
           static_cast<double>(d.resident_bytes));
  }
  family(out, "kapsl_pool_budget_bytes", "gauge", "Configured byte budget per device (0 = none).");
  for (const auto& d : pool.devices) {
    sample(out, "kapsl_pool_budget_bytes", "device=\"" + std::to_string(d.device_id) + "\"",
           static_cast<double>(d.budget_bytes));
  }
}

void render_process(std::string& out) {
  const ProcessMemory mem = process_memory();
  family(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  sample(out, "process_resident_memory_bytes", "", static_cast<double>(mem.resident_bytes));
  family(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
  sample(out, "process_virtual_memory_bytes", "", static_cast<double>(mem.virtual_bytes));
}

}  // namespace

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

void append_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const HistogramSnapshot& h) {
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
    cumulative += i < h.counts.size() ? h.counts[i] : 0;
    sample(out, name + "_bucket", with(labels, "le=\"" + number(h.upper_bounds[i]) + "\""),
           static_cast<double>(cumulative));
  }
  sample(out, name + "_bucket", with(labels, "le=\"+Inf\""), static_cast<double>(h.count));
  sample(out, name + "_sum", labels, h.sum);
  sample(out, name + "_count", labels, static_cast<double>(h.count));
}

ProcessMemory process_memory() {
  std::ifstream statm("/proc/self/statm");
  uint64_t pages_virtual = 0, pages_resident = 0;
  if (!(statm >> pages_virtual >> pages_resident)) return {};
  const auto page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  return {pages_resident * page, pages_virtual * page};
}

const char* outcome_name(Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::kSuccess: return "success";
    case Outcome::kClientError: return "client_error";
    case Outcome::kRejected: return "rejected";
    case Outcome::kFailure: return "failure";
    case Outcome::kCancelled: return "cancelled";
    case Outcome::kTimeout: return "timeout";
  }
  return "unknown";
}

ModelStats& ServerMetrics::model(const std::string& name) {
  internal::MutexLock lock(&mu_);
  auto& slot = models_[name];
  if (!slot) slot = std::make_unique<ModelStats>();
  return *slot;
}

void ServerMetrics::count_http(int status) noexcept {
  const size_t cls = status >= 100 && status < 600 ? static_cast<size_t>(status / 100 - 1) : 5;
  http_by_class_[cls].fetch_add(1, std::memory_order_relaxed);
}

void ServerMetrics::count_grpc(int code) noexcept {
  if (code >= 0 && static_cast<size_t>(code) < grpc_by_code_.size()) {
    grpc_by_code_[static_cast<size_t>(code)].fetch_add(1, std::memory_order_relaxed);
  }
}

void ServerMetrics::render_models(std::string& out, const std::map<std::string, Admission::Counts>& admission) const {
  internal::MutexLock lock(&mu_);
  family(out, "kapsl_inference_requests_total", "counter", "Inference requests by model and outcome.");
  for (const auto& [name, s] : models_) {
    for (size_t i = 0; i < kOutcomeCount; ++i) {
      sample(out, "kapsl_inference_requests_total",
             "model=\"" + escape_label(name) + "\",outcome=\"" + outcome_name(static_cast<Outcome>(i)) + "\"",
             static_cast<double>(s->outcomes[i].load(std::memory_order_relaxed)));
    }
  }
  const std::pair<const char*, LatencyHistogram ModelStats::*> histograms[] = {
      {"kapsl_inference_queue_duration_seconds", &ModelStats::queue},
      {"kapsl_inference_compute_duration_seconds", &ModelStats::compute},
      {"kapsl_inference_request_duration_seconds", &ModelStats::total},
      {"kapsl_inference_time_to_first_token_seconds", &ModelStats::first_token},
      {"kapsl_inference_compute_input_duration_seconds", &ModelStats::compute_input},
      {"kapsl_inference_compute_infer_duration_seconds", &ModelStats::compute_infer},
      {"kapsl_inference_compute_output_duration_seconds", &ModelStats::compute_output}};
  for (const auto& [metric, member] : histograms) {
    family(out, metric, "histogram",
           "Inference latency per model (queue, compute, total, first token; the engine's input, infer, output).");
    for (const auto& [name, s] : models_) {
      append_histogram(out, metric, "model=\"" + escape_label(name) + "\"", ((*s).*member).snapshot());
    }
  }
  family(out, "kapsl_inference_batch_size", "histogram", "Rows (dim 0) per model execution, batched or not.");
  for (const auto& [name, s] : models_) {
    append_histogram(out, "kapsl_inference_batch_size", "model=\"" + escape_label(name) + "\"", s->batch_rows.snapshot());
  }
  family(out, "kapsl_inference_executions_total", "counter",
         "Model executions per model; with dynamic batching one serves several requests (Triton's "
         "nv_inference_exec_count).");
  for (const auto& [name, s] : models_) {
    sample(out, "kapsl_inference_executions_total", "model=\"" + escape_label(name) + "\"",
           static_cast<double>(s->executions.load(std::memory_order_relaxed)));
  }
  const std::pair<const char*, std::atomic<uint64_t> ModelStats::*> tokens[] = {
      {"kapsl_inference_prompt_tokens_total", &ModelStats::prompt_tokens},
      {"kapsl_inference_generated_tokens_total", &ModelStats::generated_tokens}};
  for (const auto& [metric, member] : tokens) {
    family(out, metric, "counter", "Text-generation tokens per model (prompt, generated).");
    for (const auto& [name, s] : models_) {
      sample(out, metric, "model=\"" + escape_label(name) + "\"", static_cast<double>(((*s).*member).load()));
    }
  }
  family(out, "kapsl_inference_in_flight_requests", "gauge", "Requests running per model.");
  for (const auto& [name, c] : admission) sample(out, "kapsl_inference_in_flight_requests", "model=\"" + escape_label(name) + "\"", c.running);
  family(out, "kapsl_inference_queued_requests", "gauge", "Requests waiting for a turn per model.");
  for (const auto& [name, c] : admission) sample(out, "kapsl_inference_queued_requests", "model=\"" + escape_label(name) + "\"", c.waiting);
}

std::vector<double> ModelStats::batch_size_bounds() {
  std::vector<double> bounds;
  for (double b = 1; b <= 1024; b *= 2) bounds.push_back(b);
  return bounds;
}

void record_timing(ModelStats& stats, const ComputeTiming& timing) {
  stats.compute_input.record(timing.input_s);
  stats.compute_infer.record(timing.infer_s);
  stats.compute_output.record(timing.output_s);
  if (!timing.counts_execution) return;
  stats.executions.fetch_add(1, std::memory_order_relaxed);
  stats.batch_rows.record(static_cast<double>(timing.batch_rows));
}

void record_generation(ModelStats& stats, const GenerationUsage& usage, Clock::time_point generate_start) {
  stats.prompt_tokens.fetch_add(usage.prompt_tokens, std::memory_order_relaxed);
  stats.generated_tokens.fetch_add(usage.completion_tokens, std::memory_order_relaxed);
  if (usage.completion_tokens == 0) return;
  const double before = std::chrono::duration<double>(generate_start - current_request().start).count();
  stats.first_token.record(before + usage.time_to_first_token_s);
}

std::string ServerMetrics::render(const PoolMetrics& pool, const std::map<std::string, Admission::Counts>& admission,
                                  const HttpFigures& http) const {
  std::string out;
  out.reserve(16384);
  render_models(out, admission);
  render_pool(out, pool);
  render_process(out);
  family(out, "kapsl_http_responses_total", "counter", "HTTP responses by status class.");
  const char* classes[] = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"};
  for (size_t i = 0; i < http_by_class_.size(); ++i) {
    sample(out, "kapsl_http_responses_total", std::string("code=\"") + classes[i] + "\"",
           static_cast<double>(http_by_class_[i].load(std::memory_order_relaxed)));
  }
  family(out, "kapsl_grpc_responses_total", "counter", "gRPC calls by status code.");
  static constexpr const char* kGrpcCodes[] = {
      "OK",       "CANCELLED",          "UNKNOWN",          "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED", "NOT_FOUND",
      "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
      "UNIMPLEMENTED", "INTERNAL",       "UNAVAILABLE",      "DATA_LOSS",          "UNAUTHENTICATED"};
  for (size_t i = 0; i < grpc_by_code_.size(); ++i) {
    sample(out, "kapsl_grpc_responses_total", std::string("code=\"") + kGrpcCodes[i] + "\"",
           static_cast<double>(grpc_by_code_[i].load(std::memory_order_relaxed)));
  }
  family(out, "kapsl_http_open_connections", "gauge", "HTTP connections open now.");
  sample(out, "kapsl_http_open_connections", "", static_cast<double>(http.open_connections));
  family(out, "kapsl_http_read_timeouts_total", "counter",
         "Connections closed because a request's headers and body took longer than the read timeout.");
  sample(out, "kapsl_http_read_timeouts_total", "", static_cast<double>(http.read_timeouts));
  family(out, "kapsl_http_client_disconnects_total", "counter",
         "Requests cancelled because their client closed its connection before the answer.");
  sample(out, "kapsl_http_client_disconnects_total", "", static_cast<double>(http.client_disconnects));
  family(out, "kapsl_http_inflight_body_bytes", "gauge",
         "Memory charged to request bodies being read and parsed (three times their size).");
  sample(out, "kapsl_http_inflight_body_bytes", "", static_cast<double>(http.inflight_body_bytes));
  return out;
}

}  // namespace kapsl::server
