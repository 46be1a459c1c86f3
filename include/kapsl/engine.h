// Engine: one loaded model behind one interface, whatever the backend.
//
// Lifecycle. An engine exists only loaded: a backend's factory function (OnnxEngine::load,
// GgufEngine::load, BackendFactory::create) returns a std::unique_ptr<Engine> that is ready
// to serve, or throws Error. There is no init() and no unload(): destroying the engine
// unloads the model and joins every thread the engine started. Hot reload = load a new
// engine and swap it in (EnginePool::put).
//
// Concurrency. Engines are safe for concurrent use without external synchronization:
// every method may be called from several threads at once, including several infer calls
// on one engine. Backends run them in parallel where the library allows it (ONNX Runtime's
// Run) or in a bounded set of slots (llama.cpp contexts); a request that finds no slot and
// no room in the engine's queue fails with kOverloaded. The destructor must not run while a
// call is in progress (callers hold the engine by std::shared_ptr, as EnginePool does).
//
// Errors. Methods throw kapsl::Error; see each method for the codes. A failed call leaves
// the engine usable unless health_check() says otherwise.
//
// Ownership. Requests and callbacks are borrowed for the duration of the call; results are
// returned by value and owned by the caller.
#ifndef KAPSL_ENGINE_H_
#define KAPSL_ENGINE_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kapsl/error.h"
#include "kapsl/metrics.h"
#include "kapsl/request.h"
#include "kapsl/tensor.h"

namespace kapsl {

class Embedder;       // embedding.h
class Reranker;       // reranker.h
class TextGenerator;  // text_generation.h

// A model input or output as the model declares it.
struct TensorInfo {
  std::string name;
  DType dtype = DType::kFloat32;
  bool dtype_known = true;  // false if the backend's type has no kapsl DType
  Shape shape;              // -1 = dynamic dimension; empty = scalar (or unknown rank)
  std::vector<std::string> dim_names;  // symbolic names of dynamic dims where known, else ""
  bool is_tensor = true;    // false for sequences, maps and optionals (ONNX)
};

struct ModelInfo {
  std::string backend;    // the Backend that loaded it: "onnx", "gguf", ...
  std::string name;       // model name from its metadata, or the file stem
  std::string version;    // model version where the format has one, else ""
  std::string path;       // the file it was loaded from ("" if loaded from memory)
  std::string provider;   // execution provider in use ("cpu", "cuda", ...)
  std::vector<TensorInfo> inputs;
  std::vector<TensorInfo> outputs;
  std::map<std::string, std::string> metadata;  // backend-specific facts, e.g. "architecture"
  uint64_t file_bytes = 0;                      // size of the model file(s)
};

// Usage and outcome of one text generation.
enum class FinishReason { kNone, kStop, kLength, kCancelled, kTimeout };
const char* finish_reason_name(FinishReason reason) noexcept;  // "stop", "length", ...

struct GenerationUsage {
  uint32_t prompt_tokens = 0;
  uint32_t completion_tokens = 0;
  // Prompt tokens this call did not decode: kept from the slot's cache of an earlier
  // request, or copied from another reply's decode (TextGenerator::generate_n).
  uint32_t cached_prompt_tokens = 0;
  FinishReason finish_reason = FinishReason::kNone;
  double time_to_first_token_s = 0;  // from the start of the call
  double prompt_tokens_per_s = 0;
  double generation_tokens_per_s = 0;
};

// Where one result's time went, set by engines that measure it (ONNX; DynamicBatcher adds
// the queue and the batch). An execution that served several requests gives each of them
// its input/infer/output times; exactly one of its results has counts_execution set, so
// that summing those counts executions.
struct ComputeTiming {
  double queue_s = 0;            // waiting in a DynamicBatcher for an execution
  double input_s = 0;            // inputs checked, joined into a batch and bound
  double infer_s = 0;            // the model's run
  double output_s = 0;           // outputs converted and split per request
  uint32_t batch_requests = 1;   // requests the execution served
  int64_t batch_rows = 0;        // rows (dim 0) it ran; 0 where the model has no batch dim
  bool counts_execution = true;  // the one result of its execution that counts it
};

struct InferenceResult {
  std::vector<NamedTensor> outputs;      // in the model's output order
  std::optional<GenerationUsage> usage;  // set by text-generation engines
  std::optional<ComputeTiming> timing;   // set by engines that measure it

  // The output with this name, or nullptr.
  const Tensor* find_output(std::string_view name) const;
};

// A call of a tool the model was offered (see ChatPrompt in text_generation.h).
struct ToolCall {
  std::string id;         // unique within the reply ("call_..."), assigned by the engine
  std::string name;       // the tool's name
  std::string arguments;  // its arguments, as JSON text
};

// What one stream chunk adds to a chat reply, once the reply is parsed into its parts
// (answer text, reasoning, tool calls): the shape of OpenAI's streamed deltas.
struct ChatDelta {
  std::string content;            // appended to the answer
  std::string reasoning_content;  // appended to the reasoning ("thinking")
  int32_t tool_call_index = -1;   // >= 0: this delta extends tool call number N
  ToolCall tool_call;             // id and name the first time call N appears; arguments appended
};

// A token and its log probability under the model: the log-softmax of the model's logits
// at that step, before the sampler's penalties, temperature and constraints (what
// llama-server reports by default), so a greedy reply shows how sure the model was.
struct TokenLogprob {
  int32_t token = -1;
  float logprob = 0.0f;
  std::string piece;  // the token's bytes; may be part of a UTF-8 character
};

// One generated token's log probability, and the most likely tokens at that step.
struct GeneratedLogprob {
  TokenLogprob sampled;
  std::vector<TokenLogprob> top;  // GenerationOptions::top_logprobs tokens, most likely first
};

// One piece of a streamed result. Text engines send one chunk per piece of valid UTF-8
// text; other engines send their outputs in a single final chunk.
struct StreamChunk {
  std::string text;                   // never a partial UTF-8 character
  std::vector<int32_t> tokens;        // token ids behind `text`, where known
  std::vector<NamedTensor> outputs;   // tensor outputs, for non-text engines
  // Chat prompts only: what `text` adds to the parsed reply. May be empty while the parser
  // waits to see whether text is markup (a tool call opening, say); the final chunk of a
  // stream flushes it.
  std::vector<ChatDelta> chat = {};
  // With GenerationOptions::logprobs: one per token of `tokens`.
  std::vector<GeneratedLogprob> logprobs = {};
};

// Called once per chunk on the calling thread. Return false to stop: the call then ends
// with FinishReason::kCancelled rather than an error.
using StreamCallback = std::function<bool(const StreamChunk&)>;

// The result of one item of a batch: a result or an error, never both.
struct BatchItemResult {
  std::optional<InferenceResult> result;
  std::optional<Error> error;
  bool ok() const { return result.has_value(); }
};

struct EngineMetrics {
  uint64_t requests = 0;        // calls completed (ok or not)
  uint64_t failures = 0;        // calls that threw, except cancellations and timeouts
  uint64_t cancelled = 0;       // calls ended by cancellation
  uint64_t timeouts = 0;        // calls ended by their deadline
  uint64_t in_flight = 0;       // calls running now
  uint64_t queued = 0;          // calls waiting for a slot now
  uint64_t prompt_tokens = 0;       // text engines
  uint64_t generated_tokens = 0;    // text engines
  HistogramSnapshot latency;        // whole-call latency of completed calls
  HistogramSnapshot time_to_first_token;  // text engines
  uint64_t resident_bytes = 0;      // estimate of the memory the engine holds
  std::chrono::system_clock::time_point collected_at;  // when this snapshot was taken
};

struct Health {
  bool ok = true;
  std::string reason;  // why not ok
};

class Engine {
 public:
  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Unloads the model and joins the engine's threads. REQUIRES: no call in progress.
  virtual ~Engine() = default;

  // Runs one request and returns every output (or those named in output_names).
  // Throws: kInvalidInput (unknown, missing or mismatched inputs or outputs, named with
  // expected vs got), kCancelled, kTimeout, kOverloaded, kResourceExhausted, kInference.
  virtual InferenceResult infer(const InferenceRequest& request) = 0;

  // Runs several requests and returns one item per request, in order; a bad request fails
  // only its own item. The default runs them one by one; backends batch where they can.
  // Throws only if the whole batch cannot run (e.g. kOverloaded).
  virtual std::vector<BatchItemResult> infer_batch(std::span<const InferenceRequest> requests);

  // Runs one request, passing pieces of the result to `on_chunk` as they are produced.
  // Returns the same result infer() would (text engines: the whole text). If on_chunk
  // returns false the call stops early and returns what was produced, with usage's
  // finish_reason kCancelled. The default calls infer() and sends one chunk with the outputs.
  // Throws as infer() does; an exception thrown by on_chunk propagates unchanged.
  virtual InferenceResult infer_stream(const InferenceRequest& request, const StreamCallback& on_chunk);

  // Runs the model once on synthetic inputs so that the first real request does not pay
  // for lazy initialisation. Throws as infer() does.
  virtual void warmup() = 0;

  // A snapshot of the engine's counters. Cheap; never throws.
  virtual EngineMetrics metrics() const = 0;

  // The model's description. The reference stays valid for the engine's lifetime.
  virtual const ModelInfo& model_info() const = 0;

  // Whether the engine can serve. Cheap, never blocks on running requests, never throws.
  virtual Health health_check() const = 0;

  // Estimate of the bytes the engine holds (weights, caches, arenas). Cheap; never throws.
  virtual uint64_t resident_bytes() const = 0;

  // --- Capabilities: what the engine can do besides infer(), or nullptr when it cannot.
  // Front ends dispatch on these, never on a backend's engine type. The pointer is valid
  // for the engine's lifetime; an engine that wraps another forwards the inner one's.
  // Never throw.

  // Text generation, tokenization and chat templates (text_generation.h).
  virtual TextGenerator* text_generator() noexcept { return nullptr; }
  // Embeddings of texts or token ids (embedding.h).
  virtual Embedder* embedder() noexcept { return nullptr; }
  // Relevance scores of documents for a query (reranker.h).
  virtual Reranker* reranker() noexcept { return nullptr; }
};

}  // namespace kapsl

#endif  // KAPSL_ENGINE_H_
