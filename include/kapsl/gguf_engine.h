// GgufEngine: a GGUF model run by llama.cpp — text generation (prompt text, token ids or
// chat messages), streaming, tokenization and embeddings — behind the Engine interface.
//
// A GgufEngine is made only by GgufEngine::load, which returns a loaded engine or throws;
// destroying it frees the model and its contexts. llama.cpp is initialised once per process
// (on the first load) and its log is routed to spdlog; any number of different models may be
// loaded at the same time, each its own engine.
//
// Slots and continuous batching. An engine serves `n_parallel` requests at once, one per
// slot; a slot is one sequence of the engine's llama.cpp context, with a KV cache of n_ctx
// tokens of its own, and remembers the tokens it holds, so a request whose prompt starts
// like the slot's previous one only decodes the new suffix. One engine thread decodes for
// all slots together: each llama_decode carries the next token of every generating request
// plus chunks of new prompts (at most n_batch tokens), so four requests cost little more
// than one on a memory-bound CPU. When all slots are busy a request waits in a queue of at
// most `max_queue`, and beyond that fails with kOverloaded. A request's output does not
// depend on what else shares its batches (each slot has its own KV stream).
//
// Front ends do not use this header: they ask an Engine for its TextGenerator and Embedder
// capabilities. It is for programs that want llama.cpp's facts (gguf_info()) or load a
// GGUF file directly.
//
// Thread-safety: safe for concurrent use without external synchronization. Stream callbacks
// and the load progress callback run on the calling thread; sampling runs on the engine's
// thread.
#ifndef KAPSL_GGUF_ENGINE_H_
#define KAPSL_GGUF_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "kapsl/embedding.h"
#include "kapsl/engine.h"
#include "kapsl/request.h"
#include "kapsl/reranker.h"
#include "kapsl/text_generation.h"

namespace kapsl {

// Load-time options. Per-request options are GenerationOptions (request.h).
struct GgufOptions {
  // --- Behaviour
  uint32_t n_ctx = 0;             // context (KV cache) tokens per slot; 0 = min(trained context, 4096)
  uint32_t n_parallel = 1;        // slots: requests generating at the same time (>= 1)
  uint32_t max_queue = 64;        // requests waiting for a slot; one more fails with kOverloaded
  bool embeddings = false;        // load for embed(); generation is then unavailable
  bool reranking = false;         // load for rerank() (implies embeddings): the model's ranking head
  bool vocab_only = false;        // load only the tokenizer: tokenize/detokenize/chat templates work
  std::function<bool(float)> progress = {};  // load progress in [0, 1]; return false to abort (kCancelled)
  // The chat template: a name llama.cpp knows ("chatml", "llama3", "mistral-v7", ...) or
  // template text. "" = the model's own (tokenizer.chat_template), and "chatml" for a model
  // without one, as llama-server does. A request may still name its own.
  std::string chat_template = {};

  // Where layers run: "cpu" (no offload), or a GPU backend compiled into llama.cpp ("cuda",
  // "vulkan", "metal"; see gguf_devices()), whose n_gpu_layers layers go to its device
  // number `device_id`. kUnavailable if the build has no such device.
  std::string provider = "cpu";
  int device_id = 0;

  // Hosts lending their devices over ggml's RPC protocol: "host:port" of a `kapsl worker`
  // (or llama.cpp's rpc-server) each. The model's layers are split over the workers'
  // devices (and the provider's GPU, which comes after them); with n_gpu_layers below the
  // layer count, the first layers stay on this host's CPU. Each worker is checked with
  // ggml-rpc's handshake, within rpc_timeout_ms, before llama.cpp connects to it, and a
  // worker that is down or silent fails the load with kUnavailable. The RPC protocol has no
  // authentication or encryption: list private addresses only (docs/scale-out.md).
  //
  // A worker lost after the load (its connection fails) fails the requests in flight and
  // every later one with kUnavailable, and health_check() with it, so that an EnginePool
  // drops the engine and loads the model again on the next request: that load fails with
  // kUnavailable until the worker answers again. This needs the ggml-rpc edit that
  // scripts/bootstrap-deps applies (stock ggml-rpc ends the process). A worker that stops
  // without closing its connection (a frozen host) stalls the engine until TCP gives up.
  // A worker serves one client at a time.
  std::vector<std::string> rpc_workers = {};
  uint32_t rpc_timeout_ms = 5000;
  // The share of the offloaded layers each device takes, in device order (workers' devices,
  // then the provider's GPU); empty = in proportion to each device's free memory, as
  // llama.cpp does. The placement is in GgufModelInfo::placement.
  std::vector<float> tensor_split = {};

  // --- Performance
  uint32_t n_batch = 2048;        // most tokens per llama_decode, all slots together (>= n_parallel)
  uint32_t n_ubatch = 512;        // physical batch size (<= n_batch)
  int32_t n_threads = 0;          // compute threads of the engine (all slots); 0 = physical cores
  int32_t n_gpu_layers = -1;      // layers offloaded to the GPU and RPC devices, -1 = all (ignored for
                                  // "cpu" without rpc_workers)
  bool use_mmap = true;           // memory-map the file rather than read it
  bool use_mlock = false;         // lock the weights in RAM
  std::string flash_attention = "auto";  // "auto", "on" or "off"
  std::string kv_cache_type = "f16";     // K and V cache element type: "f32", "f16", "bf16", "q8_0", "q4_0"
};

// Where a part of the model lives: a run of layers on one device.
struct GgufPlacement {
  std::string device;      // ggml's device name: "CPU", "RPC0", "CUDA0", ...
  std::string host;        // "host:port" of the RPC worker holding it, "" = this host
  uint32_t first_layer = 0;
  uint32_t n_layers = 0;   // repeating layers [first_layer, first_layer + n_layers)
  bool input = false;      // holds the token embeddings (always this host's CPU)
  bool output = false;     // holds the output layer
};

// Facts about the loaded model, from its GGUF metadata and llama.cpp.
struct GgufModelInfo {
  std::string architecture;       // general.architecture, e.g. "llama"
  std::string description;        // llama.cpp's one-line description, e.g. "llama ?B F16"
  uint64_t n_params = 0;          // parameters
  uint64_t size_bytes = 0;        // bytes of all weight tensors
  uint32_t n_ctx_train = 0;       // context the model was trained with
  uint32_t n_ctx = 0;             // context per slot in use
  uint32_t n_embd = 0;            // embedding width (the length of embed() vectors)
  uint32_t n_layer = 0;
  int32_t n_vocab = 0;            // vocabulary size
  int32_t bos_token = -1;         // -1 = none
  int32_t eos_token = -1;         // -1 = none
  std::vector<int32_t> eog_tokens;  // every end-of-generation token (EOS, EOT, <|im_end|>, ...)
  bool has_chat_template = false;   // tokenizer.chat_template present
  std::string chat_template;        // its text ("" if absent)
  std::string pooling;              // embeddings pooling in use: "none", "mean", "cls", "last", "rank"
  std::vector<GgufPlacement> placement;  // where the layers are, in layer order (empty if vocab_only)
};

class Backend;

// The "gguf" Backend (backend.h): .gguf files for the tasks "generate" and "embed" (a
// GgufEngine loaded with embeddings = true), configured by the manifest's "gguf" section
// (docs/model-config.md). builtin_backends() registers it.
std::shared_ptr<const Backend> gguf_backend();

// The GPU providers this llama.cpp build offers ("cuda", "vulkan", ...), lower case; empty
// for a CPU-only build. Initialises llama.cpp if needed. Never throws except bad_alloc.
std::vector<std::string> gguf_gpu_providers();

class GgufEngine final : public Engine, public TextGenerator, public Embedder, public Reranker {
 public:
  // Loads `path`. Validates the GGUF header and tensor table before llama.cpp reads it.
  // Throws: kModelLoad (no such file, not GGUF, truncated, unsupported version,
  // unsupported architecture, llama.cpp refused it: the message says why), kInvalidInput
  // (a bad option, named with the expected and the given value), kUnavailable (the
  // provider has no device in this build), kCancelled (progress returned false),
  // kResourceExhausted (a context could not be allocated).
  static std::unique_ptr<GgufEngine> load(const std::string& path, const GgufOptions& options = {});

  ~GgufEngine() override;

  // "v0.5.0 (ggml 0.25.1)": the llama.cpp this library was built with. Never throws.
  static std::string llama_version();

  // --- TextGenerator (text_generation.h). Generation waits for a free slot (kOverloaded
  // when the queue is full); text that may begin a stop string is held back from on_chunk
  // until it cannot. Generation on an embeddings or vocab-only engine throws kUnavailable.
  // Chat templates are those llama_chat_apply_template recognises. The slot stays usable
  // after any error.
  GenerateResult generate(const GenerateRequest& request, const StreamCallback& on_chunk = {}) override;
  std::vector<GenerateResult> generate_n(const GenerateRequest& request, uint32_t n,
                                         const ReplyStreamCallback& on_chunk = {}) override;
  uint32_t max_parallel_replies() const override;  // n_parallel
  // Shorthand for generate({prompt, options}).
  GenerateResult generate(const std::string& prompt, const GenerationOptions& options = {},
                          const StreamCallback& on_chunk = {});
  using TextGenerator::apply_chat_template;
  std::string apply_chat_template(const ChatPrompt& chat, bool add_assistant_prompt = true) const override;
  std::vector<int32_t> prompt_tokens(const GenerateRequest& request) const override;
  // Wraps llama_tokenize.
  std::vector<int32_t> tokenize(std::string_view text, bool add_special = true,
                                bool parse_special = false) const override;
  // Wraps llama_detokenize.
  std::string detokenize(std::span<const int32_t> tokens, bool special = false) const override;
  const TextModelInfo& text_info() const override;

  // --- Embedder (embedding.h), for engines loaded with embeddings = true. Inputs are
  // pooled as the model's metadata says (mean when it says none) and decoded in batches of
  // up to n_batch tokens; one input may hold at most min(n_batch, n_ctx) tokens. Throws
  // kUnavailable on an engine not loaded with embeddings.
  Embeddings embed(std::span<const EmbeddingInput> inputs, const EmbedOptions& options = {}) override;
  uint32_t embedding_size() const override;
  // Shorthand: the vectors of texts.
  std::vector<std::vector<float>> embed(std::span<const std::string> texts, bool normalize = true);

  // --- Reranker (reranker.h), for engines loaded with reranking = true: query-document
  // pairs are decoded in batches as embeddings are, with llama.cpp's rank pooling; the
  // score is the first output of the model's classification head. Throws kUnavailable on
  // an engine not loaded for reranking.
  RerankScores rerank(std::string_view query, std::span<const std::string> documents,
                      const EmbedOptions& options = {}) override;

  // Every fact llama.cpp gives about the model (architecture, parameters, ...). The
  // backend-neutral ones are in text_info() and model_info().metadata.
  const GgufModelInfo& gguf_info() const;

  // --- Engine
  // Input: the main input (or "prompt"): a string tensor holding one prompt, or a uint8
  // tensor of UTF-8 bytes. Output "text": a string tensor of shape [1]; an empty generation
  // is a valid result. Generation options, deadline and cancellation come from the request;
  // unlike generate(), cancellation and the deadline throw kCancelled / kTimeout (the Engine
  // contract). Embeddings engines take a string tensor of texts and return float32
  // "embeddings" of shape [n, n_embd].
  InferenceResult infer(const InferenceRequest& request) override;
  // Streams text pieces as generate() does; on_chunk returning false ends with kCancelled.
  InferenceResult infer_stream(const InferenceRequest& request, const StreamCallback& on_chunk) override;
  void warmup() override;
  EngineMetrics metrics() const override;
  const ModelInfo& model_info() const override;
  Health health_check() const override;
  // Weights plus the KV caches of every slot.
  uint64_t resident_bytes() const override;
  // Every engine but an embeddings one is a TextGenerator (a vocab-only engine tokenizes
  // and renders templates, and its generate() throws kUnavailable); embeddings engines are
  // Embedders.
  TextGenerator* text_generator() noexcept override;
  Embedder* embedder() noexcept override;
  Reranker* reranker() noexcept override;

  struct Impl;  // internal, src/gguf/engine_impl.h

  // Only load() can make the key, so only load() constructs engines.
  class ConstructionKey {
    friend class GgufEngine;
    ConstructionKey() = default;
  };
  GgufEngine(ConstructionKey key, std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kapsl

#endif  // KAPSL_GGUF_ENGINE_H_
