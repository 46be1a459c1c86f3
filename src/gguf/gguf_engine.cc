// GgufEngine's public methods: argument checks, slot leases and request accounting around
// the work in generation.cc, embeddings.cc and vocab.cc, and the Engine interface.
#include "kapsl/gguf_engine.h"

#include <string>
#include <utility>
#include <vector>

#include "ggml.h"
#include "gguf/engine_impl.h"
#include "gguf/rpc_client.h"
#include "gguf/sampling.h"
#include "gguf/utf8.h"
#include "kapsl/error.h"
#include "llama.h"

#ifndef KAPSL_LLAMA_VERSION
#define KAPSL_LLAMA_VERSION "unknown"
#endif

namespace kapsl {
namespace gguf {

std::unique_ptr<GgufEngine::Impl> load_impl(const std::string& path, const GgufOptions& options);

std::string pooling_name(enum llama_pooling_type type) {
  switch (type) {
    case LLAMA_POOLING_TYPE_NONE: return "none";
    case LLAMA_POOLING_TYPE_MEAN: return "mean";
    case LLAMA_POOLING_TYPE_CLS: return "cls";
    case LLAMA_POOLING_TYPE_LAST: return "last";
    case LLAMA_POOLING_TYPE_RANK: return "rank";
    default: return "unspecified";
  }
}

namespace {

// Runs `fn` as one accounted call: counted, and classified by the error it throws.
template <typename Fn>
auto accounted(internal::RequestCounters& counters, Fn&& fn) {
  auto scope = counters.begin();
  try {
    return fn(scope);
  } catch (const Error& e) {
    scope.fail(e.code());
    throw;
  }
}

void require_generation(const GgufEngine::Impl& impl) {
  if (impl.options.vocab_only) throw Error::unavailable("this GGUF engine was loaded vocab-only: it cannot generate");
  if (impl.options.embeddings) {
    throw Error::unavailable("this GGUF engine was loaded with embeddings = true: use embed(), not generation");
  }
}

void check_fits_context(const GgufEngine::Impl& impl, size_t n_prompt, uint32_t max_new_tokens) {
  if (n_prompt + max_new_tokens > impl.info.n_ctx) {
    throw Error::invalid_input("prompt plus max_new_tokens exceed the context",
                               std::to_string(n_prompt) + " prompt tokens + " + std::to_string(max_new_tokens) +
                                   " new tokens > n_ctx " + std::to_string(impl.info.n_ctx));
  }
}

std::string prompt_from_request(const InferenceRequest& request) {
  const Tensor* t = request.find_input(kMainInput);
  if (t == nullptr) t = request.find_input("prompt");
  if (t == nullptr) throw Error::invalid_input("missing input", "expected the main input or \"prompt\"");
  std::string text;
  if (t->dtype() == DType::kString) {
    if (t->element_count() != 1) {
      throw Error::invalid_input("input \"prompt\" must hold one string",
                                 "got shape " + shape_to_string(t->shape()));
    }
    text = t->strings().front();
  } else if (t->dtype() == DType::kUInt8) {
    const auto bytes = t->bytes();
    text.assign(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  } else {
    throw Error::invalid_input("input \"prompt\" has the wrong dtype",
                               "expected string or uint8 (UTF-8 bytes), got " + std::string(dtype_name(t->dtype())));
  }
  if (!gguf::is_valid_utf8(text)) throw Error::invalid_input("input \"prompt\" is not valid UTF-8");
  return text;
}

}  // namespace
}  // namespace gguf

GgufEngine::GgufEngine(ConstructionKey, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufEngine::~GgufEngine() = default;

std::unique_ptr<GgufEngine> GgufEngine::load(const std::string& path, const GgufOptions& options) {
  return std::make_unique<GgufEngine>(ConstructionKey{}, gguf::load_impl(path, options));
}

std::string GgufEngine::llama_version() { return std::string("v") + KAPSL_LLAMA_VERSION + " (ggml " + ggml_version() + ")"; }

const GgufModelInfo& GgufEngine::gguf_info() const { return impl_->info; }
const TextModelInfo& GgufEngine::text_info() const { return impl_->text_info; }
uint32_t GgufEngine::embedding_size() const { return impl_->info.n_embd; }
TextGenerator* GgufEngine::text_generator() noexcept { return impl_->options.embeddings ? nullptr : this; }
Embedder* GgufEngine::embedder() noexcept {
  return impl_->options.embeddings && !impl_->options.reranking ? this : nullptr;
}
Reranker* GgufEngine::reranker() noexcept { return impl_->options.reranking ? this : nullptr; }

GenerateResult GgufEngine::generate(const std::string& prompt, const GenerationOptions& options,
                                    const StreamCallback& on_chunk) {
  GenerateRequest request;
  request.prompt = prompt;
  request.options = options;
  return generate(request, on_chunk);
}

GenerateResult GgufEngine::generate(const GenerateRequest& request, const StreamCallback& on_chunk) {
  ReplyStreamCallback reply_chunk;
  if (on_chunk) reply_chunk = [&on_chunk](uint32_t, const StreamChunk& chunk) { return on_chunk(chunk); };
  return std::move(generate_n(request, 1, reply_chunk).front());
}

uint32_t GgufEngine::max_parallel_replies() const { return impl_->options.n_parallel; }

std::vector<GenerateResult> GgufEngine::generate_n(const GenerateRequest& request, uint32_t n,
                                                   const ReplyStreamCallback& on_chunk) {
  return gguf::accounted(impl_->counters, [&](internal::RequestCounters::Scope& scope) {
    gguf::require_generation(*impl_);
    gguf::validate_generation_options(request.options, impl_->info.n_vocab);
    if (n == 0 || n > impl_->slots->size()) {
      throw Error::invalid_input("the number of replies is out of range", "expected 1 to " +
                                 std::to_string(impl_->slots->size()) + " (the engine's n_parallel), got " +
                                 std::to_string(n));
    }
    const gguf::PreparedGeneration prepared = gguf::prepare_generation(*impl_, request);
    gguf::check_fits_context(*impl_, prepared.prompt.size(), request.options.max_new_tokens);
    const auto leases = impl_->slots->acquire({&request.cancel, request.deadline}, n);
    std::vector<gguf::Slot*> slots;
    for (const auto& lease : leases) slots.push_back(&lease->slot());
    std::vector<GenerateResult> results =
        gguf::generate_in_slots(*impl_, slots, prepared, request, on_chunk, scope.start());
    uint32_t completion_tokens = 0;
    for (const GenerateResult& r : results) completion_tokens += r.usage.completion_tokens;
    impl_->counters.add_tokens(results[0].usage.prompt_tokens, completion_tokens);
    if (!results[0].tokens.empty()) impl_->counters.record_time_to_first_token(results[0].usage.time_to_first_token_s);
    auto ended = [&](FinishReason reason) {
      return std::any_of(results.begin(), results.end(), [&](const auto& r) { return r.usage.finish_reason == reason; });
    };
    if (ended(FinishReason::kCancelled)) scope.fail(ErrorCode::kCancelled);
    else if (ended(FinishReason::kTimeout)) scope.fail(ErrorCode::kTimeout);
    else scope.succeed();
    return results;
  });
}

std::string GgufEngine::apply_chat_template(const ChatPrompt& chat, bool add_assistant_prompt) const {
  return gguf::render_chat(*impl_, chat, GenerationOptions{}, add_assistant_prompt).prompt;
}

std::vector<int32_t> GgufEngine::prompt_tokens(const GenerateRequest& request) const {
  gguf::validate_generation_options(request.options, impl_->info.n_vocab);
  gguf::PreparedGeneration prepared = gguf::prepare_generation(*impl_, request);
  gguf::check_constraint(prepared.constraint, impl_->model.get(), prepared.prompt);  // refused now, too
  return std::move(prepared.prompt);
}

std::vector<int32_t> GgufEngine::tokenize(std::string_view text, bool add_special, bool parse_special) const {
  return gguf::tokenize(impl_->vocab, text, add_special, parse_special);
}

std::string GgufEngine::detokenize(std::span<const int32_t> tokens, bool special) const {
  return gguf::detokenize(impl_->vocab, tokens, special);
}

namespace gguf {
namespace {

// Embeds the token sequences `make_tokens` returns (checked against the model's limits) as
// one accounted call: the errors of making them are counted too.
template <typename MakeTokens>
Embeddings embed_tokens(GgufEngine::Impl& impl, MakeTokens&& make_tokens, const EmbedOptions& options) {
  return accounted(impl.counters, [&](internal::RequestCounters::Scope& scope) {
    const std::vector<std::vector<int32_t>> tokens = make_tokens();
    const size_t max_tokens = std::min<size_t>(impl.options.n_batch, impl.info.n_ctx);
    Embeddings out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].empty() || tokens[i].size() > max_tokens) {
        throw Error::invalid_input("input " + std::to_string(i) + " cannot be embedded",
                                   "expected 1.." + std::to_string(max_tokens) + " tokens, got " +
                                       std::to_string(tokens[i].size()));
      }
      out.prompt_tokens += tokens[i].size();
    }
    const auto lease = impl.slots->acquire({&options.cancel, options.deadline});
    out.vectors = embed_in_slot(impl, lease->slot(), tokens, options.normalize);
    impl.counters.add_tokens(static_cast<uint32_t>(out.prompt_tokens), 0);
    scope.succeed();
    return out;
  });
}

}  // namespace
}  // namespace gguf

Embeddings GgufEngine::embed(std::span<const EmbeddingInput> inputs, const EmbedOptions& options) {
  return gguf::embed_tokens(*impl_, [&] {
    if (embedder() == nullptr) {
      throw Error::unavailable(impl_->options.reranking ? "this GGUF engine was loaded for reranking: use rerank()"
                                                        : "this GGUF engine was not loaded with embeddings = true");
    }
    std::vector<std::vector<int32_t>> tokens;
    for (const EmbeddingInput& input : inputs) {
      if (const auto* text = std::get_if<std::string>(&input)) {
        tokens.push_back(tokenize(*text, true, false));
      } else {
        tokens.push_back(std::get<std::vector<int32_t>>(input));
        detokenize(tokens.back());  // checks every id is in range
      }
    }
    return tokens;
  }, options);
}

RerankScores GgufEngine::rerank(std::string_view query, std::span<const std::string> documents,
                                const EmbedOptions& options) {
  EmbedOptions raw = options;
  raw.normalize = false;  // the head's outputs are scores
  const Embeddings outputs = gguf::embed_tokens(*impl_, [&] {
    if (!impl_->options.reranking) throw Error::unavailable("this GGUF engine was not loaded for reranking");
    if (documents.empty()) throw Error::invalid_input("there are no documents to rerank");
    std::vector<std::vector<int32_t>> pairs;
    for (const std::string& document : documents) pairs.push_back(gguf::rerank_tokens(*impl_, query, document));
    return pairs;
  }, raw);
  RerankScores out;
  out.prompt_tokens = outputs.prompt_tokens;
  for (const std::vector<float>& v : outputs.vectors) out.scores.push_back(v.at(0));
  return out;
}

std::vector<std::vector<float>> GgufEngine::embed(std::span<const std::string> texts, bool normalize) {
  const std::vector<EmbeddingInput> inputs(texts.begin(), texts.end());
  EmbedOptions options;
  options.normalize = normalize;
  return embed(inputs, options).vectors;
}

InferenceResult GgufEngine::infer(const InferenceRequest& request) { return infer_stream(request, {}); }

InferenceResult GgufEngine::infer_stream(const InferenceRequest& request, const StreamCallback& on_chunk) {
  InferenceResult out;
  if (impl_->options.embeddings) {
    const Tensor* t = request.find_input(kMainInput);
    if (t == nullptr) t = request.find_input("texts");
    if (t == nullptr || t->dtype() != DType::kString) {
      throw Error::invalid_input("an embeddings engine needs a string input \"texts\"");
    }
    const auto vectors = embed(t->strings(), true);
    std::vector<float> flat;
    for (const auto& v : vectors) flat.insert(flat.end(), v.begin(), v.end());
    out.outputs.push_back({"embeddings", Tensor::from_vector<float>(
                                             {static_cast<int64_t>(vectors.size()), impl_->info.n_embd}, flat)});
    if (on_chunk) on_chunk(StreamChunk{{}, {}, out.outputs, {}});
    return out;
  }
  GenerateRequest g;
  g.prompt = gguf::prompt_from_request(request);
  g.options = request.generation;
  g.deadline = request.deadline;
  g.cancel = request.cancel;
  GenerateResult r = generate(g, on_chunk);
  // The Engine contract: cancellation and deadlines are errors; a callback's "stop" is not.
  if (r.usage.finish_reason == FinishReason::kTimeout) throw Error::timeout("deadline passed during generation");
  if (r.usage.finish_reason == FinishReason::kCancelled && request.cancel.is_cancelled()) {
    throw Error::cancelled("request cancelled during generation");
  }
  out.outputs.push_back({"text", Tensor::from_string(std::move(r.text))});
  out.usage = r.usage;
  return out;
}

void GgufEngine::warmup() {
  if (impl_->options.vocab_only) return;
  if (impl_->options.embeddings) {
    const std::string text = "warmup";
    embed(std::span(&text, 1), false);
    return;
  }
  GenerationOptions o;
  o.max_new_tokens = 1;
  o.temperature = 0;
  generate(GenerateRequest{std::vector<int32_t>{impl_->info.bos_token >= 0 ? impl_->info.bos_token : 0}, o, {}, {}});
}

EngineMetrics GgufEngine::metrics() const {
  EngineMetrics m = impl_->counters.snapshot();
  m.resident_bytes = resident_bytes();
  return m;
}

const ModelInfo& GgufEngine::model_info() const { return impl_->model_info; }

Health GgufEngine::health_check() const {
  const auto lost = gguf::rpc_workers_lost(impl_->options.rpc_workers);
  return lost ? Health{false, lost->message()} : Health{};
}

uint64_t GgufEngine::resident_bytes() const { return impl_->info.size_bytes + impl_->kv_bytes; }

}  // namespace kapsl
