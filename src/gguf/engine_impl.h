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
  std::unique_ptr<gguf::SlotPool> slots;  // null for a vocab-only engine
  // Generation engines: decodes every slot's work in shared batches. Declared after slots
  // so that it stops before they are freed.
  std::unique_ptr<gguf::Batcher> batcher;
};

namespace gguf {

// --- vocab.cc. All throw kInvalidInput on bad input, as GgufEngine's methods document.
std::vector<int32_t> tokenize(const llama_vocab* vocab, std::string_view text, bool add_special, bool parse_special);
std::string token_to_piece(const llama_vocab* vocab, int32_t token, bool special);
std::string detokenize(const llama_vocab* vocab, std::span<const int32_t> tokens, bool special);
std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages, bool add_assistant);
// The template chats use unless a request names one: options.chat_template, else the
// model's own, else "chatml" (llama-server's fallback).
const std::string& effective_chat_template(const GgufEngine::Impl& impl);

// --- generation.cc. Runs a request whose prompt tokens are validated (non-empty, in range,
// fitting n_ctx with max_new_tokens) on the leased `slot` through impl.batcher. `start` is
// when the call began.
GenerateResult generate_in_slot(const GgufEngine::Impl& impl, Slot& slot, std::span<const int32_t> prompt,
                                const GenerateRequest& request, const StreamCallback& on_chunk,
                                Clock::time_point start);

// --- gguf_devices.cc. The GPU device `provider` names, number `device_id`; throws
// kUnavailable if this build has none.
ggml_backend_dev_t find_gpu_device(const std::string& provider, int device_id);

// --- embeddings.cc. One pooled embedding per tokenized text, on the leased `slot`.
std::vector<std::vector<float>> embed_in_slot(const GgufEngine::Impl& impl, Slot& slot,
                                              const std::vector<std::vector<int32_t>>& texts, bool normalize);

}  // namespace gguf
}  // namespace kapsl

#endif  // KAPSL_SRC_GGUF_ENGINE_IMPL_H_
