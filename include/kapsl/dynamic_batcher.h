// DynamicBatcher: an Engine that merges concurrent requests into one execution, as Triton's
// dynamic batcher does.
//
// What it does. Each infer() call joins a queue. An execution takes the oldest request and
// every later one of the same layout (input names, dtypes, and every dimension but the
// first) while the rows — the sum of the first dimensions — fit max_batch_size, and runs
// them through the inner engine's infer_batch, which concatenates them along the first
// dimension, runs the model once and splits the outputs back. An execution starts when its
// rows reach max_batch_size, when they reach one of preferred_batch_sizes (the largest one
// the queue allows, taking requests in order), or when its oldest request has waited
// max_queue_delay — whichever comes first. With balance_instances (the default) and
// several execution threads idle, the waiting rows are shared among them: each execution
// then takes its share, and is full at that share. A request that cannot join (a scalar input, more
// rows than max_batch_size) runs alone at once; one that fails fails only itself, as
// infer_batch promises.
//
// Requests keep their own deadline and cancellation: while queued they leave the queue
// with kTimeout / kCancelled within a few milliseconds; inside an execution the inner
// engine stops the execution and runs the others again alone (infer_batch's contract).
//
// Which models. Every input and output must be a tensor whose first dimension is dynamic
// (-1 in model_info()); the batcher refuses others at construction (kInvalidInput) rather
// than merging requests along a dimension that is not a batch.
//
// Results carry ComputeTiming (engine.h): the time queued here, the execution's requests
// and rows, and which one result counts the execution.
//
// Thread-safety: safe for concurrent use without external synchronization, as every Engine.
// The destructor fails queued requests with kUnavailable and joins the execution threads.
#ifndef KAPSL_DYNAMIC_BATCHER_H_
#define KAPSL_DYNAMIC_BATCHER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "kapsl/engine.h"

namespace kapsl {

struct DynamicBatchingOptions {
  uint32_t max_batch_size = 8;                  // most rows (sum of dim 0) per execution; >= 1
  std::vector<uint32_t> preferred_batch_sizes;  // rows at which an execution starts at once; each <= max
  std::chrono::microseconds max_queue_delay{500};  // longest the oldest request waits for company
  uint32_t max_queue = 64;                      // requests waiting; one more fails with kOverloaded
  std::chrono::milliseconds queue_timeout{0};   // longest wait before an execution takes it (kTimeout); 0 = none
  uint32_t instances = 1;                       // executions running at once (Triton's instance count); >= 1
  // With several instances idle, share what waits among them instead of giving it all to
  // one: on CPU one batch on one instance is rarely faster than its parts on several, and a
  // lone request then runs at once. false = Triton's policy (one instance takes up to the
  // whole batch, and a lone request waits max_queue_delay).
  bool balance_instances = true;
};

// Why `engine` cannot be batched along dimension 0 ("input 'x' has shape [1, 3]: its first
// dimension is fixed", or that it generates text, which it batches itself), or "" if it can.
std::string batching_refusal(Engine& engine);

class DynamicBatcher final : public Engine {
 public:
  // Starts `options.instances` execution threads over `inner`.
  // Throws Error(kInvalidInput) if the options are out of range or batching_refusal(*inner)
  // is not empty.
  DynamicBatcher(std::shared_ptr<Engine> inner, const DynamicBatchingOptions& options);
  ~DynamicBatcher() override;

  // Queues the request and waits for its execution. Throws as the inner engine does, and
  // kOverloaded (queue full), kTimeout (queue_timeout or the request's deadline passed
  // while queued), kCancelled, kUnavailable (the batcher is being destroyed).
  InferenceResult infer(const InferenceRequest& request) override;
  // The caller's own batch goes to the inner engine as it is.
  std::vector<BatchItemResult> infer_batch(std::span<const InferenceRequest> requests) override;
  void warmup() override;
  // The inner engine's, with `queued` counting requests waiting here too.
  EngineMetrics metrics() const override;
  const ModelInfo& model_info() const override;
  Health health_check() const override;
  uint64_t resident_bytes() const override;
  TextGenerator* text_generator() noexcept override;
  Embedder* embedder() noexcept override;
  Reranker* reranker() noexcept override;

  const DynamicBatchingOptions& options() const noexcept;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_DYNAMIC_BATCHER_H_
