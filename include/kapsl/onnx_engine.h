// OnnxEngine: an Engine that runs one ONNX model with ONNX Runtime.
//
// An OnnxEngine owns one ONNX Runtime session and everything derived from the model's
// metadata. It is made only by load() or load_from_memory(), which return a ready engine or
// throw; destroying it releases the session. Requests, their tensors and their tokens are
// borrowed for the duration of a call; results are returned by value and owned by the caller.
//
// Inputs are bound by name and checked against the model before ONNX Runtime sees them
// (names, dtype, rank, fixed dimensions); the unnamed main input (kMainInput) binds to the
// model's first input. Every ONNX tensor element type kapsl has a DType for is supported,
// strings and empty tensors included. Sequence-of-tensor inputs and outputs are flattened
// into tensors named "<name>[0]", "<name>[1]", ...; an optional output that holds nothing is
// left out of the result.
//
// Threads. By default every engine in the process shares one ONNX Runtime thread pool
// (created once, sized by default_shared_intra_op_threads()), so N engines do not start N
// pools that oversubscribe the machine; concurrent infer calls each run on their caller's
// thread plus that pool. Where that pool would have one thread (small machines), each run
// simply runs on its caller's thread, which starts no thread and skips the pool's dispatch.
// Setting OnnxOptions::intra_op_threads gives the engine its own pool.
// (ONNX Runtime allows one environment per process: if the program created an Ort::Env
// before its first engine, that environment has no shared pool, and engines get their own
// pool of the same size instead.)
// Cancellation tokens and deadlines are watched by one process-wide watcher thread that
// terminates the affected run through ONNX Runtime's RunOptions terminate flag.
//
// Thread-safety: safe for concurrent use without external synchronization. infer calls run
// in parallel without a lock around ONNX Runtime's Run.
#ifndef KAPSL_ONNX_ENGINE_H_
#define KAPSL_ONNX_ENGINE_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "kapsl/engine.h"

namespace kapsl {

class Backend;

// The "onnx" Backend (backend.h): .onnx and .ort files for the tasks "forward" (outputs as
// the model gives them), "classify" (row softmax, optional labels) and "embed" (mean
// pooling, optional WordPiece tokenizer), configured by the manifest's "onnx" section
// (docs/model-config.md). builtin_backends() registers it.
std::shared_ptr<const Backend> onnx_backend();

// Load-time options. Fields whose type is std::optional fall back, when unset, to the
// environment variable named in their comment and then to the stated default; a value set
// here always wins over the environment. Boolean variables accept 1/true/yes/on and
// 0/false/no/off (trimmed, any case); any other value is ignored.
struct OnnxOptions {
  // --- Behaviour
  // Execution provider, case-insensitive: "cpu", "cuda", "tensorrt" (CUDA registered after it
  // for the nodes TensorRT rejects), "rocm", "openvino", "coreml", "directml", "webgpu".
  std::string provider = "cpu";
  // Accelerator index for cuda, tensorrt, rocm, directml; ignored by the others. >= 0.
  int device_id = 0;
  // ONNX Runtime's log level for this session: "verbose", "info", "warning", "error",
  // "fatal" (case-insensitive).
  std::string log_level = "warning";
  // Opt-in convenience for decoder LLM exports: fill missing inputs whose name contains
  // "attention_mask" (ones), "position_ids" (0..seq-1 per row) or starts with
  // "past_key_values" (empty past: dim 2 = 0), in the model's dtype, with batch and sequence
  // length taken from the first input. Off: a missing input is an error.
  bool auto_fill_llm_inputs = false;

  // --- Performance
  // "disable", "basic", "extended", "all" or "0", "1", "2", "3", "99", case-insensitive;
  // "3" and "99" mean "all" (ORT_ENABLE_ALL).
  std::string graph_optimization_level = "all";
  // Threads per run. Unset: use the process-wide shared pool (see
  // default_shared_intra_op_threads). n >= 1: the session gets its own pool of n threads
  // (caller included). 0: ONNX Runtime's default, one thread per core.
  std::optional<int> intra_op_threads;
  // Threads for running independent nodes in parallel (only with execution_mode
  // "parallel"). Unset: 1. 0: ONNX Runtime's default.
  std::optional<int> inter_op_threads;
  // "sequential" (default) or "parallel" (independent branches run concurrently).
  std::string execution_mode = "sequential";
  // ONNX Runtime's memory-pattern planning. Unset: KAPSL_ORT_MEMORY_PATTERN, else true.
  std::optional<bool> memory_pattern;
  // ONNX Runtime's CPU memory arena. Unset: off if KAPSL_ORT_DISABLE_CPU_MEM_ARENA is true,
  // else on.
  std::optional<bool> cpu_mem_arena;
  // If not empty, ONNX Runtime writes the optimised model here at load time (a cache that a
  // later load may use with graph_optimization_level "disable").
  std::string optimized_model_path;
};

class OnnxEngine final : public Engine {
 public:
  // Loads the ONNX model at `path`; external data files are read from beside it.
  // Returns a ready engine. Throws: kInvalidInput (a bad option, naming the field, the
  // accepted values and the given one), kUnavailable (the provider is not compiled into
  // ONNX Runtime or cannot initialise; the message names the provider and the reason),
  // kModelLoad (missing, truncated or corrupt file, not an ONNX model, unsupported opset,
  // missing external data; the message names the path and gives ONNX Runtime's reason).
  static std::unique_ptr<OnnxEngine> load(const std::string& path, const OnnxOptions& options = {});

  // Loads a model held in memory; the bytes are copied by ONNX Runtime and may be freed
  // after the call. The model cannot refer to external data files. Throws as load() does,
  // the path being "<memory>".
  static std::unique_ptr<OnnxEngine> load_from_memory(std::span<const std::byte> model,
                                                      const OnnxOptions& options = {});

  // The providers compiled into the linked ONNX Runtime, as kapsl names ("cpu", "cuda",
  // "tensorrt", "webgpu", ...); names kapsl does not know are lower-cased without their
  // "ExecutionProvider" suffix. Compiled in does not mean usable: load() still checks.
  static std::vector<std::string> available_providers();

  // ONNX Runtime's version string, e.g. "1.29.0".
  static std::string runtime_version();

  // Intra-op threads of the shared pool: 1 on machines with up to 4 hardware threads, else
  // half the hardware threads, at most 8. Measured on 2 cores (docs/benchmarks-onnx.md): a
  // second thread per run costs concurrent callers throughput (7 % on a BERT-style
  // encoder, 40 % on a tiny model) and made large models 2-3x slower on a loaded machine;
  // only a lone caller of a large model on an idle machine gains (1.3-1.8x lower latency),
  // and can ask for it with OnnxOptions::intra_op_threads. The shared pool's size is
  // KAPSL_ORT_SHARED_THREADS instead if that is a positive integer when the first engine
  // is loaded; this function returns the default regardless.
  static int default_shared_intra_op_threads();

  ~OnnxEngine() override;

  // Runs the model. Throws: kInvalidInput (unknown or duplicate input name, missing input,
  // wrong dtype, wrong rank, fixed dimension mismatch, unknown output name; each naming the
  // input or output with expected vs got), kCancelled (the token was cancelled, before or
  // during the run), kTimeout (the deadline passed, before or during the run), kInference
  // (ONNX Runtime failed on a valid request). The engine keeps serving after any of them.
  InferenceResult infer(const InferenceRequest& request) override;

  // Runs all requests in one ONNX Runtime run, concatenated along dim 0, when they name the
  // same inputs with the same dtypes and the same shapes except dim 0, request the same
  // outputs, and every model input and output has a dynamic dim 0; otherwise, or if the
  // joint run fails, runs them one by one. One item per request, errors per request.
  std::vector<BatchItemResult> infer_batch(std::span<const InferenceRequest> requests) override;

  // Runs once on zero-filled inputs synthesised from the model's metadata (dynamic dims = 1,
  // strings empty). Throws as infer() does.
  void warmup() override;

  EngineMetrics metrics() const override;
  const ModelInfo& model_info() const override;
  Health health_check() const override;
  // The model's bytes (the .onnx file, or the in-memory model) as the weights' share of the
  // resident memory. Not counted: external data files, arenas, per-run buffers.
  uint64_t resident_bytes() const override;

  // The resolved options this engine runs with (environment variables applied).
  const OnnxOptions& options() const noexcept;

  class Impl;  // defined in src/onnx/
  // Only load() and load_from_memory() can make the key, so only they construct engines.
  class ConstructionKey {
    friend class OnnxEngine;
    ConstructionKey() = default;
  };
  OnnxEngine(ConstructionKey key, std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_ONNX_ENGINE_H_
