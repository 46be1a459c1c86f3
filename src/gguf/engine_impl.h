// GgufEngine::Impl: the state behind a GgufEngine, and the functions of the files that
// implement it (load in gguf_engine.cc, generation.cc, embeddings.cc, vocab.cc).
//
// Everything here is fixed after load except the slots, which SlotPool hands out, and the
// counters, which are atomics.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_GGUF_ENGINE_IMPL_H_
#define KAPSL_SRC_GGUF_ENGINE_IMPL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/request_counters.h"
#include "gguf/batcher.h"
#include "gguf/chat_format.h"
#include "gguf/slots.h"
#include "kapsl/gguf_engine.h"
#include "llama-cpp.h"

namespace kapsl {

struct GgufEngine::Impl {
  GgufOptions options;
  llama_model_ptr model;
  const llama_vocab* vocab = nullptr;   // owned by model
  GgufModelInfo info;
  TextModelInfo text_info;  // the backend-neutral part of info
  ModelInfo model_info;
  uint64_t kv_bytes = 0;                // KV caches of all slots
  internal::RequestCounters counters;
  // The engine's Jinja chat templates; null when chats render through llama.cpp's C++
  // templates (options.chat_template names one, or the model's own is not Jinja that
  // llama.cpp can run).
  std::unique_ptr<gguf::ChatTemplates> chat_templates;
  gguf::ConstraintTables constraint_tables;  // for constrained samplers
  std::unique_ptr<gguf::SlotPool> slots;  // null for a vocab-only engine
  // Generation engines: decodes every slot's work in shared batches. Declared after slots
  // so that it stops before they are freed.
  std::unique_ptr<gguf::Batcher> batcher;
};

namespace gguf {

// --- load.cc. Physical cores from /proc/cpuinfo; the logical count when that is unavailable.
int32_t physical_cores();

// --- vocab.cc. All throw kInvalidInput on bad input, as GgufEngine's methods document.
std::vector<int32_t> tokenize(const llama_vocab* vocab, std::string_view text, bool add_special, bool parse_special);
std::string token_to_piece(const llama_vocab* vocab, int32_t token, bool special);
std::string detokenize(const llama_vocab* vocab, std::span<const int32_t> tokens, bool special);
std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages, bool add_assistant);
// The template chats use unless a request names one: options.chat_template, else the
// model's own, else "chatml" (llama-server's fallback).
const std::string& effective_chat_template(const GgufEngine::Impl& impl);

// --- prompt.cc. A generation request made ready to run.
struct PreparedGeneration {
  std::vector<int32_t> prompt;
  GenerationOptions options;              // the request's, plus the chat format's stop strings
  OutputConstraint constraint;            // from json_schema / grammar, or the chat format
  std::vector<int32_t> preserved_tokens;  // special tokens whose text the output keeps
  bool chat = false;                      // the prompt was a ChatPrompt: the reply is parsed
  std::shared_ptr<ReplyParser> parser;    // chats with a Jinja template; else content is the text
};
// Renders `chat` with its template, the engine's Jinja templates, or a C++ template.
// Throws kInvalidInput (bad template, messages it cannot take, tools without Jinja).
RenderedChat render_chat(const GgufEngine::Impl& impl, const ChatPrompt& chat, const GenerationOptions& options,
                         bool add_assistant);
// Tokenizes (and for chats renders) the prompt and builds its constraint. Throws
// kInvalidInput for an empty prompt, ids out of range, a bad schema; it does not check the
// context.
PreparedGeneration prepare_generation(const GgufEngine::Impl& impl, const GenerateRequest& request);
// At load: the engine's Jinja templates (see Impl::chat_templates). Throws kInvalidInput if
// a template given in the options does not parse.
void load_chat_templates(GgufEngine::Impl& impl);

// --- generation.cc. Runs a prepared request whose prompt fits n_ctx with max_new_tokens
// through impl.batcher: one reply per leased slot, the prompt decoded once
// (Batcher::start_shared). `start` is when the call began.
std::vector<GenerateResult> generate_in_slots(const GgufEngine::Impl& impl, std::span<Slot* const> slots,
                                              const PreparedGeneration& prepared, const GenerateRequest& request,
                                              const ReplyStreamCallback& on_chunk, Clock::time_point start);

// --- gguf_devices.cc. The GPU device `provider` names, number `device_id`; throws
// kUnavailable if this build has none.
ggml_backend_dev_t find_gpu_device(const std::string& provider, int device_id);

// --- embeddings.cc. One pooled embedding per tokenized text, on the leased `slot`.
std::vector<std::vector<float>> embed_in_slot(const GgufEngine::Impl& impl, Slot& slot,
                                              const std::vector<std::vector<int32_t>>& texts, bool normalize);
// The tokens a reranking model reads for one query-document pair: its GGUF "rerank"
// template with {query} and {document} filled in, else BOS query EOS SEP document EOS,
// each as the vocabulary asks (llama-server's format_prompt_rerank).
std::vector<int32_t> rerank_tokens(const GgufEngine::Impl& impl, std::string_view query, std::string_view document);

}  // namespace gguf
}  // namespace kapsl

#endif  // KAPSL_SRC_GGUF_ENGINE_IMPL_H_
