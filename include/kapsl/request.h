// An inference request: named input tensors, the outputs wanted, a deadline, a
// cancellation token and, for text generation, the generation options.
//
// Requests are plain values owned by the caller; an Engine only reads them during a call.
// The original kapsl's single unnamed "main" input is kept as a convenience: an input whose
// name is empty (kMainInput) is bound to the model's first input.
//
// Thread-safety: const methods may run concurrently; others need external synchronization.
// CancellationToken is the exception: it is safe for concurrent use without external
// synchronization, and copies share one flag.
#ifndef KAPSL_REQUEST_H_
#define KAPSL_REQUEST_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "kapsl/tensor.h"

namespace kapsl {

using Clock = std::chrono::steady_clock;

// The name of the unnamed "main" input, bound to the model's first input.
inline constexpr const char* kMainInput = "";

// A shared cancellation flag. Copies share the flag; cancel() from any thread makes every
// copy report is_cancelled(). Engines poll it between steps (tokens, runs) and, where the
// backend allows, interrupt a step in progress.
class CancellationToken {
 public:
  CancellationToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}

  void cancel() noexcept { flag_->store(true, std::memory_order_release); }
  bool is_cancelled() const noexcept { return flag_->load(std::memory_order_acquire); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

// Per-request options for text generation (GGUF engines). Ignored by other engines.
struct GenerationOptions {
  // --- What to generate
  uint32_t max_new_tokens = 512;         // at most this many new tokens; 0 = none
  std::vector<std::string> stop;         // stop strings; the match is not returned
  std::vector<int32_t> stop_token_ids;   // stop on these tokens (besides end-of-generation)
  bool ignore_eos = false;               // do not stop on end-of-generation tokens

  // --- Sampling. The defaults are llama.cpp's; the stages run in llama-server's order:
  // logit bias, penalties, DRY, top-n-sigma, top-k, typical-p, top-p, min-p, XTC,
  // temperature, then a seeded draw (or Mirostat, which replaces top-n-sigma to XTC).
  float temperature = 0.8f;              // 0 = greedy (argmax)
  int32_t top_k = 40;                    // 0 = disabled
  float top_p = 0.95f;                   // 1 = disabled
  float min_p = 0.05f;                   // 0 = disabled
  float typical_p = 1.0f;                // locally typical sampling; 1 = disabled
  float top_n_sigma = -1.0f;             // keep logits within n standard deviations of the top; <= 0 = disabled
  float xtc_probability = 0.0f;          // XTC: chance of removing the top choices; 0 = disabled
  float xtc_threshold = 0.1f;            // XTC: the probability a choice needs to be removed; > 0.5 = disabled
  float dynatemp_range = 0.0f;           // dynamic temperature in [t - range, t + range] by entropy; 0 = disabled
  float dynatemp_exponent = 1.0f;
  int32_t mirostat = 0;                  // 1 or 2: Mirostat v1 / v2 with mirostat_tau, mirostat_eta; 0 = off
  float mirostat_tau = 5.0f;             // target surprise
  float mirostat_eta = 0.1f;             // learning rate
  // DRY ("don't repeat yourself"): penalises tokens that extend a repeated sequence longer
  // than dry_allowed_length, by dry_multiplier * dry_base ^ (length - allowed).
  float dry_multiplier = 0.0f;           // 0 = disabled
  float dry_base = 1.75f;
  int32_t dry_allowed_length = 2;
  int32_t dry_penalty_last_n = -1;       // tokens it looks back; -1 = whole context
  std::vector<std::string> dry_sequence_breakers = {"\n", ":", "\"", "*"};  // repetitions stop at these
  float repetition_penalty = 1.0f;       // 1 = disabled
  float presence_penalty = 0.0f;         // 0 = disabled
  float frequency_penalty = 0.0f;        // 0 = disabled
  int32_t penalty_last_n = 64;           // tokens the penalties look back; -1 = whole context
  uint32_t seed = kRandomSeed;           // same seed + same prompt => same output
  std::vector<std::pair<int32_t, float>> logit_bias;  // (token id, bias added to its logit)

  // --- Constrained output. At most one of the two; the output then always matches it,
  // whatever the weights — unless max_new_tokens (or a stop) cuts it first.
  std::string grammar;      // a GBNF grammar (llama.cpp's format; its rule "root" is matched)
  std::string json_schema;  // a JSON Schema, as JSON text; "{}" = any JSON object

  // --- Log probabilities of the output (GenerateResult::logprobs, StreamChunk::logprobs).
  bool logprobs = false;      // each generated token's log probability under the model
  uint32_t top_logprobs = 0;  // and the most likely tokens at each step: 0 to kMaxTopLogprobs

  static constexpr uint32_t kRandomSeed = 0xFFFFFFFFu;  // seed from the clock
  static constexpr uint32_t kMaxTopLogprobs = 20;       // OpenAI's limit
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

struct InferenceRequest {
  // Inputs by model input name; kMainInput ("") binds to the model's first input.
  std::vector<NamedTensor> inputs;
  // Outputs to return, by name; empty = every output of the model.
  std::vector<std::string> output_names;

  std::string request_id;  // for logs and metrics; may be empty
  std::optional<Clock::time_point> deadline;  // past it the engine stops with kTimeout
  CancellationToken cancel;  // cancel() stops the request with kCancelled
  GenerationOptions generation;

  // A request with one main input.
  static InferenceRequest with_main_input(Tensor tensor);
  // Appends a named input; returns *this for chaining.
  InferenceRequest& add_input(std::string name, Tensor tensor);
  // Sets deadline = now + timeout; returns *this for chaining.
  InferenceRequest& set_timeout(std::chrono::milliseconds timeout);

  // The input with this name, or nullptr.
  const Tensor* find_input(std::string_view name) const;
  // True if the deadline has passed. Without a deadline the clock is not read: the check
  // runs on every call.
  bool expired() const { return deadline && Clock::now() >= *deadline; }
  bool expired(Clock::time_point now) const { return deadline && now >= *deadline; }
  // Throws Error(kCancelled) if cancelled, Error(kTimeout) if the deadline has passed.
  void throw_if_stopped() const;
};

}  // namespace kapsl

#endif  // KAPSL_REQUEST_H_
