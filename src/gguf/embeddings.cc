// Embeddings: texts are packed into batches (one sequence id each, up to the context's
// n_seq_max and n_batch tokens), decoded once per batch, and pooled as the model says.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "gguf/engine_impl.h"
#include "gguf/rpc_client.h"
#include "gguf/llama_backend.h"
#include "kapsl/error.h"
#include "llama.h"

namespace kapsl::gguf {
namespace {

// Owns a llama_batch from llama_batch_init (llama-cpp.h has no owner for batches).
class BatchOwner {
 public:
  explicit BatchOwner(int32_t n_tokens) : batch_(llama_batch_init(n_tokens, 0, 1)) {}
  BatchOwner(const BatchOwner&) = delete;
  BatchOwner& operator=(const BatchOwner&) = delete;
  ~BatchOwner() { llama_batch_free(batch_); }

  void add(int32_t token, int32_t pos, int32_t seq) {
    const int32_t i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = pos;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = seq;
    batch_.logits[i] = 1;  // every token outputs: mean pooling of "none" models needs them all
  }
  const llama_batch& get() const { return batch_; }

 private:
  llama_batch batch_;
};

void l2_normalize(std::vector<float>* v) {
  double sum = 0;
  for (float x : *v) sum += static_cast<double>(x) * x;
  if (sum <= 0) return;
  const auto inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& x : *v) x *= inv;
}

// Mean of the per-token embeddings of the tokens [first, first + n) of the batch, for
// models whose metadata asks for no pooling.
std::vector<float> mean_of_tokens(llama_context* ctx, int32_t first, size_t n, size_t n_embd) {
  std::vector<float> out(n_embd, 0.0f);
  for (size_t i = 0; i < n; ++i) {
    const float* e = llama_get_embeddings_ith(ctx, first + static_cast<int32_t>(i));
    if (e == nullptr) throw Error::backend("llama.cpp returned no token embedding");
    for (size_t d = 0; d < n_embd; ++d) out[d] += e[d];
  }
  for (float& x : out) x /= static_cast<float>(n);
  return out;
}

void run_batch(const GgufEngine::Impl& impl, Slot& slot, const BatchOwner& batch) {
  llama_memory_clear(llama_get_memory(slot.own.ctx.get()), true);
  slot.cached.clear();
  const bool encoder_only = llama_model_has_encoder(impl.model.get()) && !llama_model_has_decoder(impl.model.get());
  const int32_t rc = encoder_only ? llama_encode(slot.own.ctx.get(), batch.get()) : llama_decode(slot.own.ctx.get(), batch.get());
  if (rc != 0) throw_decode_error(rc, "computing embeddings");
  throw_if_rpc_workers_lost(impl.options.rpc_workers);
}

// Embeds texts [begin, end) as one batch and appends the results to `out`.
void embed_group(const GgufEngine::Impl& impl, Slot& slot, const std::vector<std::vector<int32_t>>& texts,
                 size_t begin, size_t end, bool normalize, std::vector<std::vector<float>>* out) {
  size_t total = 0;
  for (size_t i = begin; i < end; ++i) total += texts[i].size();
  BatchOwner batch(static_cast<int32_t>(total));
  for (size_t i = begin; i < end; ++i) {
    for (size_t p = 0; p < texts[i].size(); ++p) {
      batch.add(texts[i][p], static_cast<int32_t>(p), static_cast<int32_t>(i - begin));
    }
  }
  run_batch(impl, slot, batch);
  const size_t n_embd = impl.info.n_embd;
  const enum llama_pooling_type pooling = llama_pooling_type(slot.own.ctx.get());
  const bool pooled = pooling != LLAMA_POOLING_TYPE_NONE;
  // Rank pooling gives the classification head's outputs, not a vector of n_embd.
  const size_t n_pooled = pooling == LLAMA_POOLING_TYPE_RANK ? std::max<uint32_t>(1, llama_model_n_cls_out(impl.model.get()))
                                                             : n_embd;
  int32_t first = 0;
  for (size_t i = begin; i < end; ++i) {
    std::vector<float> v;
    if (pooled) {
      const float* e = llama_get_embeddings_seq(slot.own.ctx.get(), static_cast<int32_t>(i - begin));
      if (e == nullptr) throw Error::backend("llama.cpp returned no pooled embedding");
      v.assign(e, e + n_pooled);
    } else {
      v = mean_of_tokens(slot.own.ctx.get(), first, texts[i].size(), n_embd);
    }
    first += static_cast<int32_t>(texts[i].size());
    if (normalize) l2_normalize(&v);
    out->push_back(std::move(v));
  }
}

}  // namespace

std::vector<int32_t> rerank_tokens(const GgufEngine::Impl& impl, std::string_view query, std::string_view document) {
  const llama_vocab* vocab = impl.vocab;
  if (const char* tmpl = llama_model_chat_template(impl.model.get(), "rerank")) {
    std::string prompt = tmpl;
    for (const auto& [key, value] : {std::pair{std::string_view("{query}"), query}, {"{document}", document}}) {
      for (size_t at = prompt.find(key); at != std::string::npos; at = prompt.find(key, at + value.size())) {
        prompt.replace(at, key.size(), value);
      }
    }
    return tokenize(vocab, prompt, false, true);
  }
  const llama_token eos = llama_vocab_eos(vocab) != LLAMA_TOKEN_NULL ? llama_vocab_eos(vocab) : llama_vocab_sep(vocab);
  std::vector<int32_t> out;
  if (llama_vocab_get_add_bos(vocab)) out.push_back(llama_vocab_bos(vocab));
  const std::vector<int32_t> q = tokenize(vocab, query, false, false);
  out.insert(out.end(), q.begin(), q.end());
  if (llama_vocab_get_add_eos(vocab)) out.push_back(eos);
  if (llama_vocab_get_add_sep(vocab)) out.push_back(llama_vocab_sep(vocab));
  const std::vector<int32_t> d = tokenize(vocab, document, false, false);
  out.insert(out.end(), d.begin(), d.end());
  if (llama_vocab_get_add_eos(vocab)) out.push_back(eos);
  return out;
}

std::vector<std::vector<float>> embed_in_slot(const GgufEngine::Impl& impl, Slot& slot,
                                              const std::vector<std::vector<int32_t>>& texts, bool normalize) {
  const size_t max_tokens = std::min<size_t>(impl.options.n_batch, impl.info.n_ctx);
  const size_t max_seqs = llama_n_seq_max(slot.own.ctx.get());
  std::vector<std::vector<float>> out;
  size_t begin = 0;
  while (begin < texts.size()) {
    size_t end = begin, tokens = 0;
    while (end < texts.size() && end - begin < max_seqs && tokens + texts[end].size() <= max_tokens) {
      tokens += texts[end++].size();
    }
    embed_group(impl, slot, texts, begin, end, normalize, &out);
    begin = end;
  }
  return out;
}

}  // namespace kapsl::gguf
