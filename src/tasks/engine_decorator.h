// Task decorators: an Engine that owns another and post-processes its outputs (the
// classify and embed tasks of kapsl-backends 0.1.1). The ONNX backend wraps its engines in
// them for the "classify" and "embed" tasks.
#ifndef KAPSL_SRC_TASKS_ENGINE_DECORATOR_H_
#define KAPSL_SRC_TASKS_ENGINE_DECORATOR_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kapsl/embedding.h"
#include "kapsl/engine.h"
#include "tasks/wordpiece.h"

namespace kapsl::internal {

// Delegates everything to the inner engine except the output post-processing, which
// subclasses implement in post_process(). Runs batches through the inner engine's
// infer_batch so its real batching is kept; a post-processing error fails only its item.
// Thread-safety: safe for concurrent use without external synchronization, as the inner
// engine is (post_process must be a pure function of its arguments).
class EngineDecorator : public Engine {
 public:
  // `task` is recorded in model_info().metadata["task"].
  EngineDecorator(std::unique_ptr<Engine> inner, const std::string& task);

  InferenceResult infer(const InferenceRequest& request) override;
  std::vector<BatchItemResult> infer_batch(std::span<const InferenceRequest> requests) override;
  void warmup() override { inner_->warmup(); }
  EngineMetrics metrics() const override { return inner_->metrics(); }
  const ModelInfo& model_info() const override { return info_; }
  Health health_check() const override { return inner_->health_check(); }
  uint64_t resident_bytes() const override { return inner_->resident_bytes(); }
  TextGenerator* text_generator() noexcept override { return inner_->text_generator(); }
  Embedder* embedder() noexcept override { return inner_->embedder(); }
  Reranker* reranker() noexcept override { return inner_->reranker(); }

 protected:
  // Turns the inner result into this engine's result. Throws Error(kInference) naming the
  // output when it does not have the shape or dtype the task needs.
  virtual InferenceResult post_process(const InferenceRequest& request, InferenceResult inner) const = 0;

  // The request the inner engine should see instead of `request`, or nullopt to pass it
  // unchanged. post_process still gets the caller's request.
  virtual std::optional<InferenceRequest> adapt_request(const InferenceRequest&) const { return std::nullopt; }

  const Engine& inner() const { return *inner_; }
  // Runs the inner engine on `request` as it is (no adapt_request, no post_process).
  InferenceResult inner_infer(const InferenceRequest& request) { return inner_->infer(request); }

  ModelInfo info_;  // the inner engine's, with the task added; subclasses adjust outputs

 private:
  // post_process, keeping the inner result's timing unless post_process set its own.
  InferenceResult post_processed(const InferenceRequest& request, InferenceResult inner) const;

  std::unique_ptr<Engine> inner_;
};

// Row-wise softmax over [B, C] (or [C], returned as [1, C]) float32 logits; with
// `apply_softmax` false the logits pass through, reshaped the same way. With `labels` (one
// per class), a second output "label" (string [B]) names each row's most likely class.
class ClassifyEngine final : public EngineDecorator {
 public:
  // Throws Error(kModelLoad) if the inner model's first output is known not to be float32
  // of rank 1 or 2, or its class count is known and differs from the number of labels.
  ClassifyEngine(std::unique_ptr<Engine> inner, bool apply_softmax, std::vector<std::string> labels = {});

  // The computation, for tests: `logits` float32 [C] or [B, C]. Throws Error(kInference).
  static Tensor classify(const Tensor& logits, bool apply_softmax, const std::string& name);
  // The label of each row's largest value ([B] strings). Throws Error(kInference) if the
  // row length differs from labels.size().
  static Tensor top_labels(const Tensor& scores, const std::vector<std::string>& labels);

 private:
  InferenceResult post_process(const InferenceRequest& request, InferenceResult inner) const override;
  // "label" is this engine's output, not the inner model's: asked for, it asks for the logits.
  std::optional<InferenceRequest> adapt_request(const InferenceRequest& request) const override;
  bool apply_softmax_;
  std::vector<std::string> labels_;
};

// Sentence embeddings: [B, S, D] float32 hidden states mean-pooled over S, weighted by the
// request's attention mask (the first input whose name contains "attention_mask" and has
// B*S elements; all ones if none), then L2-normalised if `normalize`; [B, D] outputs are
// taken as already pooled.
//
// As an Embedder it builds the encoder's inputs itself: token ids (given, or from the
// WordPiece tokenizer when there is one) padded into input_ids [B, S], with attention_mask,
// token_type_ids (zeros) and position_ids (0..S-1) where the model declares them, in the
// dtype it declares.
class EmbedEngine final : public EngineDecorator, public Embedder {
 public:
  // `tokenizer` may be null (token-id inputs only). Throws Error(kModelLoad) if the inner
  // model's first output is known not to be float32 of rank 2 or 3.
  EmbedEngine(std::unique_ptr<Engine> inner, bool normalize, std::shared_ptr<const WordPiece> tokenizer = nullptr);

  // The pooling, for tests. `mask` may be null. Throws Error(kInference).
  static Tensor mean_pool(const Tensor& hidden, const Tensor* mask, bool normalize, const std::string& name);

  // --- Embedder
  Embeddings embed(std::span<const EmbeddingInput> inputs, const EmbedOptions& options) override;
  uint32_t embedding_size() const override;
  Embedder* embedder() noexcept override { return this; }

 private:
  InferenceResult post_process(const InferenceRequest& request, InferenceResult inner) const override;
  // Drops attention-mask inputs the model does not declare: the mask is the wrapper's input
  // then, and OnnxEngine refuses unknown inputs.
  std::optional<InferenceRequest> adapt_request(const InferenceRequest& request) const override;
  // The ids of each input, checked to be non-empty.
  std::vector<std::vector<int32_t>> token_ids(std::span<const EmbeddingInput> inputs) const;
  // The encoder request for padded ids.
  InferenceRequest encoder_request(const std::vector<std::vector<int32_t>>& ids) const;

  bool normalize_;
  std::shared_ptr<const WordPiece> tokenizer_;
};

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_TASKS_ENGINE_DECORATOR_H_
