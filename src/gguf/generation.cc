// The generation loop of one request on one slot: reuse the slot's cached prefix, decode
// the rest of the prompt in n_batch chunks, then sample, filter and stream token by token.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "gguf/engine_impl.h"
#include "gguf/llama_backend.h"
#include "gguf/sampling.h"
#include "gguf/stop_strings.h"
#include "gguf/utf8.h"
#include "kapsl/error.h"
#include "llama.h"

namespace kapsl::gguf {
namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Drops the slot's cache after `keep` tokens; falls back to clearing it all when llama.cpp
// cannot cut a sequence part-way (recurrent models).
void trim_cache(Slot& slot, size_t keep) {
  llama_memory_t mem = llama_get_memory(slot.ctx.get());
  const bool trimmed = llama_memory_seq_rm(mem, 0, static_cast<llama_pos>(keep), -1);
  if (!trimmed) {
    llama_memory_clear(mem, true);
    keep = 0;
  }
  slot.cached.resize(keep);
}

// Keeps the longest prefix the slot's cache shares with `prompt`, but at least one prompt
// token is left to decode so that there are logits to sample from. Returns its length.
size_t reuse_prefix(Slot& slot, std::span<const int32_t> prompt) {
  const auto mismatch = std::mismatch(slot.cached.begin(), slot.cached.end(), prompt.begin(), prompt.end());
  size_t common = static_cast<size_t>(mismatch.first - slot.cached.begin());
  if (common == prompt.size()) --common;
  trim_cache(slot, common);
  return slot.cached.size();
}

// The state of one request's output: bytes -> valid UTF-8 -> stop-string filter -> caller.
class OutputStream {
 public:
  OutputStream(const GenerationOptions& o, const StreamCallback& on_chunk) : stops_(o.stop), on_chunk_(on_chunk) {}

  // Adds a token's piece. Returns false if the caller's callback asked to stop.
  bool add(int32_t token, std::string_view piece) {
    pending_tokens_.push_back(token);
    return emit(stops_.push(utf8_.push(piece)));
  }
  bool stopped_by_string() const { return stops_.stopped(); }
  bool cancelled_by_callback() const { return callback_cancelled_; }
  // Releases what is held back; the callback sees it unless it already said stop.
  void finish() { emit(stops_.push(utf8_.finish()) + stops_.finish()); }
  std::string take_text() { return std::move(text_); }

 private:
  bool emit(std::string piece) {
    if (piece.empty()) return true;
    text_ += piece;
    if (on_chunk_ && !callback_cancelled_) {
      StreamChunk chunk{std::move(piece), std::move(pending_tokens_), {}};
      pending_tokens_.clear();
      callback_cancelled_ = !on_chunk_(chunk);
    }
    return !callback_cancelled_;
  }

  Utf8Assembler utf8_;
  StopStringFilter stops_;
  const StreamCallback& on_chunk_;
  std::vector<int32_t> pending_tokens_;
  std::string text_;
  bool callback_cancelled_ = false;
};

FinishReason stop_reason(const StopSignal& stop) {
  if (stop.cancelled()) return FinishReason::kCancelled;
  if (stop.expired()) return FinishReason::kTimeout;
  return FinishReason::kNone;
}

bool is_stop_token(const llama_vocab* vocab, const GenerationOptions& o, int32_t token) {
  if (!o.ignore_eos && llama_vocab_is_eog(vocab, token)) return true;
  return std::find(o.stop_token_ids.begin(), o.stop_token_ids.end(), token) != o.stop_token_ids.end();
}

struct Timeline {
  Clock::time_point start;
  Clock::time_point prompt_start;
  Clock::time_point prompt_end;
  std::optional<Clock::time_point> first_token;
};

void fill_usage(GenerationUsage* u, const Timeline& t, size_t decoded_prompt, Clock::time_point end) {
  if (t.first_token) u->time_to_first_token_s = seconds_between(t.start, *t.first_token);
  const double prompt_s = seconds_between(t.prompt_start, t.prompt_end);
  if (prompt_s > 0) u->prompt_tokens_per_s = static_cast<double>(decoded_prompt) / prompt_s;
  const double gen_s = seconds_between(t.prompt_end, end);
  if (gen_s > 0) u->generation_tokens_per_s = u->completion_tokens / gen_s;
}

// Samples until a stop condition; returns why it stopped.
FinishReason sample_loop(const GgufEngine::Impl& impl, Slot& slot, const GenerateRequest& request,
                         const StopSignal& stop, OutputStream* out, GenerateResult* result, Timeline* t) {
  const GenerationOptions& o = request.options;
  llama_sampler_ptr sampler = make_sampler_chain(o, impl.vocab, impl.info.n_ctx);
  while (true) {
    if (FinishReason r = stop_reason(stop); r != FinishReason::kNone) return r;
    const int32_t token = llama_sampler_sample(sampler.get(), slot.ctx.get(), -1);
    if (!t->first_token) t->first_token = Clock::now();
    result->tokens.push_back(token);
    ++result->usage.completion_tokens;
    if (is_stop_token(impl.vocab, o, token)) return FinishReason::kStop;
    if (!out->add(token, token_to_piece(impl.vocab, token, false))) return FinishReason::kCancelled;
    if (out->stopped_by_string()) return FinishReason::kStop;
    if (result->usage.completion_tokens >= o.max_new_tokens) return FinishReason::kLength;
    const int32_t next[1] = {token};
    if (!decode_tokens(slot, next, impl.options.n_batch)) return stop_reason(stop);
  }
}

}  // namespace

bool decode_tokens(Slot& slot, std::span<const int32_t> tokens, uint32_t n_batch) {
  for (size_t i = 0; i < tokens.size(); i += n_batch) {
    const size_t n = std::min<size_t>(n_batch, tokens.size() - i);
    // llama_batch_get_one takes a mutable pointer but only reads the tokens.
    auto* data = const_cast<int32_t*>(tokens.data() + i);
    const int32_t rc = llama_decode(slot.ctx.get(), llama_batch_get_one(data, static_cast<int32_t>(n)));
    if (rc != 0) {
      // Failed or aborted decodes may leave some ubatches in the cache: start over next time.
      llama_memory_clear(llama_get_memory(slot.ctx.get()), true);
      slot.cached.clear();
      if (rc == 2) return false;
      throw_decode_error(rc, "decoding " + std::to_string(n) + " tokens");
    }
    slot.cached.insert(slot.cached.end(), tokens.begin() + static_cast<ptrdiff_t>(i),
                       tokens.begin() + static_cast<ptrdiff_t>(i + n));
  }
  return true;
}

GenerateResult generate_in_slot(const GgufEngine::Impl& impl, Slot& slot, std::span<const int32_t> prompt,
                                const GenerateRequest& request, const StreamCallback& on_chunk,
                                Clock::time_point start) {
  GenerateResult result;
  result.usage.prompt_tokens = static_cast<uint32_t>(prompt.size());
  const StopSignal stop{&request.cancel, request.deadline};
  slot.stop.store(&stop, std::memory_order_release);
  Timeline t{start, Clock::now(), Clock::now(), std::nullopt};
  OutputStream out(request.options, on_chunk);
  FinishReason reason = FinishReason::kLength;
  size_t decoded_prompt = 0;
  if (request.options.max_new_tokens > 0) {
    const size_t reused = reuse_prefix(slot, prompt);
    decoded_prompt = prompt.size() - reused;
    const bool done = decode_tokens(slot, prompt.subspan(reused), impl.options.n_batch);
    t.prompt_end = Clock::now();
    reason = done ? sample_loop(impl, slot, request, stop, &out, &result, &t) : stop_reason(stop);
  }
  slot.stop.store(nullptr, std::memory_order_release);
  if (reason == FinishReason::kNone) reason = FinishReason::kCancelled;  // aborted, cause since cleared
  out.finish();
  result.text = out.take_text();
  result.usage.finish_reason = reason;
  fill_usage(&result.usage, t, decoded_prompt, Clock::now());
  return result;
}

}  // namespace kapsl::gguf
