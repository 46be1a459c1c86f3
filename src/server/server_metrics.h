// ServerMetrics: the server's own per-model counters and latency histograms, and the
// Prometheus text rendering of them together with the pool's metrics and process memory.
//
// Per model: requests by outcome, queue / compute / total latency, time to first token,
// prompt and generated tokens. In-flight and queued counts come from Admission and pool
// figures from EnginePool::metrics() at render time, so they are never stale.
//
// Thread-safety: safe for concurrent use without external synchronization. Recording costs
// a few relaxed atomic adds; model() takes a lock only the first time a model is seen.
#ifndef KAPSL_SRC_SERVER_SERVER_METRICS_H_
#define KAPSL_SRC_SERVER_SERVER_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "kapsl/engine.h"
#include "kapsl/engine_pool.h"
#include "kapsl/metrics.h"
#include "server/request_admission.h"

#include "core/mutex.h"
#include "core/thread_annotations.h"

namespace kapsl::server {

// How a request for a model ended.
enum class Outcome { kSuccess, kClientError, kRejected, kFailure, kCancelled, kTimeout };
inline constexpr size_t kOutcomeCount = 6;
// "success", "client_error", "rejected", "failure", "cancelled", "timeout".
const char* outcome_name(Outcome outcome) noexcept;

// The HTTP edge's figures at scrape time.
struct HttpFigures {
  size_t open_connections = 0;
  uint64_t read_timeouts = 0;       // connections closed for a request that took too long to arrive
  uint64_t client_disconnects = 0;  // calls cancelled because their client left
  size_t inflight_body_bytes = 0;   // BodyBudget in use
};

struct ModelStats {
  std::array<std::atomic<uint64_t>, kOutcomeCount> outcomes{};
  LatencyHistogram queue;         // waiting for admission, then in the dynamic batcher's queue
  LatencyHistogram compute;       // getting the engine (loading included) and running it
  LatencyHistogram compute_input;   // engines that measure (ComputeTiming): inputs bound, batch joined
  LatencyHistogram compute_infer;   // the model's run
  LatencyHistogram compute_output;  // outputs converted, batch split
  LatencyHistogram batch_rows{batch_size_bounds()};  // rows per execution (observations are counts, not seconds)
  std::atomic<uint64_t> executions{0};               // model executions (one per batch)
  LatencyHistogram total;         // from the request's arrival to its last byte
  LatencyHistogram first_token;   // text generation: arrival to first token
  std::atomic<uint64_t> prompt_tokens{0};
  std::atomic<uint64_t> generated_tokens{0};

  void count(Outcome outcome) noexcept { outcomes[static_cast<size_t>(outcome)].fetch_add(1, std::memory_order_relaxed); }
  static std::vector<double> batch_size_bounds();  // 1, 2, 4, ... 1024
};

// Records an engine's ComputeTiming of one successful request: its input/infer/output
// times, and the execution once per execution.
void record_timing(ModelStats& stats, const ComputeTiming& timing);

// Counts a generation's tokens and its time to first token (`generate_start` is when the
// generation began; the request's arrival is current_request().start).
void record_generation(ModelStats& stats, const GenerationUsage& usage, Clock::time_point generate_start);

class ServerMetrics {
 public:
  ServerMetrics() = default;
  ServerMetrics(const ServerMetrics&) = delete;
  ServerMetrics& operator=(const ServerMetrics&) = delete;

  // The stats of `model`, created on first use. The reference lives as long as *this.
  ModelStats& model(const std::string& name);
  // Counts one HTTP response by status code.
  void count_http(int status) noexcept;
  // Counts one gRPC call by status code (0 OK .. 16 UNAUTHENTICATED).
  void count_grpc(int code) noexcept;

  // Everything in Prometheus text format 0.0.4.
  std::string render(const PoolMetrics& pool, const std::map<std::string, Admission::Counts>& admission,
                     const HttpFigures& http) const;

 private:
  void render_models(std::string& out, const std::map<std::string, Admission::Counts>& admission) const;

  mutable internal::Mutex mu_;  // guards models_ (the map, not the stats it points to)
  std::map<std::string, std::unique_ptr<ModelStats>> models_ GUARDED_BY(mu_);  // stats never move
  std::array<std::atomic<uint64_t>, 6> http_by_class_{};        // 1xx..5xx, other
  std::array<std::atomic<uint64_t>, 17> grpc_by_code_{};         // gRPC status codes 0..16
};

// Appends a histogram in Prometheus form (name_bucket{le=...} cumulative, _sum, _count).
// `labels` is "" or 'model="m"'.
void append_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const HistogramSnapshot& h);
// A label value escaped for the text format (backslash, quote, newline).
std::string escape_label(const std::string& value);
// Resident and virtual memory of this process in bytes, from /proc/self/statm (0 if unreadable).
struct ProcessMemory {
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
};
ProcessMemory process_memory();

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_SERVER_METRICS_H_
