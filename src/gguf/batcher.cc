#include "gguf/batcher.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <utility>

#include "gguf/llama_backend.h"
#include "gguf/sampling.h"
#include "kapsl/error.h"

namespace kapsl::gguf {

struct Batcher::Sequence {
  // Fixed at start.
  Slot* slot = nullptr;
  std::vector<int32_t> prompt;
  std::unique_ptr<TokenSampler> sampler;
  const GenerationOptions* options = nullptr;
  const StopSignal* stop = nullptr;
  bool every_token = true;
  // start_shared's followers: the sequence whose prompt decode they copy; null once they
  // have (or decode the prompt themselves).
  std::shared_ptr<Sequence> leader;

  // The batcher thread's alone.
  size_t prompt_done = 0;      // prompt tokens in the KV cache, reused or decoded
  uint64_t ticket = 0;         // admission order: prompts are served first come first
  size_t chunk = 0;            // prompt tokens it gets in the batch being built
  size_t in_batch = 0;         // its tokens in the batch being built or decoded
  int32_t logits_index = -1;   // its row of logits in that batch; -1: none (prompt goes on)
  int32_t pending = -1;        // the sampled token to decode next; -1 while the prompt decodes
  uint32_t n_sampled = 0;
  bool retired_by_batcher = false;

  std::atomic<bool> stop_requested{false};  // set by the request thread

  // mu protects what the batcher hands back to the request thread.
  internal::Mutex mu;
  internal::CondVar ready;
  std::deque<int32_t> tokens GUARDED_BY(mu);
  std::deque<StepLogprobs> logprobs GUARDED_BY(mu);  // one per token, with options->logprobs
  bool retired GUARDED_BY(mu) = false;
  Run::Report report GUARDED_BY(mu);

  // Why it must stop now, or kNone. Read from llama.cpp's compute threads too.
  FinishReason stop_reason() const {
    if (stop->cancelled()) return FinishReason::kCancelled;
    if (stop->expired()) return FinishReason::kTimeout;
    if (stop_requested.load(std::memory_order_acquire)) return FinishReason::kStop;
    return FinishReason::kNone;
  }
};

// --- Run: the request thread's side.

Batcher::Run::~Run() {
  request_stop();
  internal::MutexLock lock(&seq_->mu);
  while (!seq_->retired) seq_->ready.wait(&seq_->mu);
}

std::optional<int32_t> Batcher::Run::next(StepLogprobs* logprobs) {
  internal::MutexLock lock(&seq_->mu);
  while (seq_->tokens.empty() && !seq_->retired) seq_->ready.wait(&seq_->mu);
  if (seq_->tokens.empty()) return std::nullopt;
  const int32_t token = seq_->tokens.front();
  seq_->tokens.pop_front();
  if (!seq_->logprobs.empty()) {
    if (logprobs != nullptr) *logprobs = std::move(seq_->logprobs.front());
    seq_->logprobs.pop_front();
  }
  return token;
}

void Batcher::Run::request_stop() { seq_->stop_requested.store(true, std::memory_order_release); }

Batcher::Run::Report Batcher::Run::report() const {
  internal::MutexLock lock(&seq_->mu);
  return seq_->report;
}

// --- Batcher.

Batcher::Batcher(llama_context_ptr ctx, ThreadpoolPtr threads, const llama_vocab* vocab, uint32_t n_batch,
                 std::function<void()> check_workers)
    : threads_(std::move(threads)),
      ctx_(std::move(ctx)),
      vocab_(vocab),
      n_batch_(n_batch),
      check_workers_(std::move(check_workers)),
      batch_(static_cast<int32_t>(n_batch)) {
  llama_set_abort_callback(ctx_.get(), abort_callback, this);
  thread_ = std::thread([this] { loop(); });
}

Batcher::~Batcher() {
  {
    internal::MutexLock lock(&mu_);
    shutdown_ = true;
  }
  work_.notify_one();
  thread_.join();
}

std::unique_ptr<Batcher::Run> Batcher::start(Slot& slot, std::span<const int32_t> prompt,
                                             std::unique_ptr<TokenSampler> sampler,
                                             const GenerationOptions& options, const StopSignal& stop,
                                             bool every_token) {
  Slot* const slots[] = {&slot};
  std::vector<std::unique_ptr<TokenSampler>> samplers;
  samplers.push_back(std::move(sampler));
  return std::move(start_shared(slots, prompt, std::move(samplers), options, stop, every_token).front());
}

std::vector<std::unique_ptr<Batcher::Run>> Batcher::start_shared(std::span<Slot* const> slots,
                                                                 std::span<const int32_t> prompt,
                                                                 std::vector<std::unique_ptr<TokenSampler>> samplers,
                                                                 const GenerationOptions& options,
                                                                 const StopSignal& stop, bool every_token) {
  // A recurrent model's state cannot be cut back to the prompt's last token: each decodes.
  const bool share = slots.size() > 1 && !llama_model_is_recurrent(llama_get_model(ctx_.get()));
  std::vector<std::shared_ptr<Sequence>> seqs;
  for (size_t i = 0; i < slots.size(); ++i) {
    auto seq = std::make_shared<Sequence>();
    seq->slot = slots[i];
    seq->prompt.assign(prompt.begin(), prompt.end());
    seq->sampler = std::move(samplers[i]);
    seq->options = &options;
    seq->stop = &stop;
    seq->every_token = every_token;
    if (share && i > 0) seq->leader = seqs.front();
    seqs.push_back(std::move(seq));
  }
  {
    internal::MutexLock lock(&mu_);
    incoming_.insert(incoming_.end(), seqs.begin(), seqs.end());
  }
  work_.notify_one();
  std::vector<std::unique_ptr<Run>> runs;
  for (auto& seq : seqs) runs.push_back(std::make_unique<Run>(std::move(seq)));
  return runs;
}

void Batcher::loop() {
  while (true) {
    std::vector<std::shared_ptr<Sequence>> arrived;
    {
      internal::MutexLock lock(&mu_);
      while (!shutdown_ && incoming_.empty() && active_.empty()) work_.wait(&mu_);
      if (shutdown_ && incoming_.empty() && active_.empty()) return;
      arrived.swap(incoming_);
    }
    for (auto& seq : arrived) {
      seq->ticket = next_ticket_++;
      try {
        admit(*seq);
      } catch (...) {
        retire(*seq, FinishReason::kNone, std::current_exception());
      }
      active_.push_back(std::move(seq));
    }
    if (!arrived.empty()) {
      std::sort(active_.begin(), active_.end(), [](const auto& x, const auto& y) { return x->slot->seq < y->slot->seq; });
    }
    retire_stopped();
    std::erase_if(active_, [](const auto& s) { return s->retired_by_batcher; });
    if (active_.empty()) continue;
    if (workers_lost_) {
      for (const auto& seq : active_) fail_lost(*seq);
      active_.clear();
      continue;
    }
    try {
      step();
    } catch (...) {  // e.g. bad_alloc: the batch's requests fail, the others go on
      for (Sequence* s : in_batch_) {
        if (!s->retired_by_batcher) retire(*s, FinishReason::kNone, std::current_exception());
      }
    }
    in_batch_.clear();
    std::erase_if(active_, [](const auto& s) { return s->retired_by_batcher; });
  }
}

// Keeps the longest prefix the slot's cache shares with the prompt, but leaves at least one
// prompt token to decode so that there are logits to sample from.
void Batcher::admit(Sequence& s) {
  Slot& slot = *s.slot;
  const auto mismatch = std::mismatch(slot.cached.begin(), slot.cached.end(), s.prompt.begin(), s.prompt.end());
  size_t keep = static_cast<size_t>(mismatch.first - slot.cached.begin());
  if (keep == s.prompt.size()) --keep;
  llama_memory_t mem = llama_get_memory(ctx_.get());
  if (!llama_memory_seq_rm(mem, slot.seq, static_cast<llama_pos>(keep), -1)) {
    llama_memory_seq_rm(mem, slot.seq, -1, -1);  // recurrent models cannot cut part-way
    keep = 0;
  }
  slot.cached.resize(keep);
  s.prompt_done = keep;
  if (keep + 1 == s.prompt.size()) s.leader = nullptr;  // nothing to copy
  internal::MutexLock lock(&s.mu);
  s.report.decoded_prompt = s.prompt.size() - keep;
}

// A follower whose leader has decoded the prompt takes a copy of the leader's cache, cut
// back to all but the prompt's last token. One whose leader retired first decodes alone.
void Batcher::copy_from_leader(Sequence& s) {
  const Sequence& leader = *s.leader;
  if (!leader.retired_by_batcher && leader.prompt_done < leader.prompt.size()) return;  // not yet
  s.leader = nullptr;
  const std::vector<int32_t>& held = leader.slot->cached;
  const size_t keep = s.prompt.size() - 1;
  if (held.size() < keep || !std::equal(s.prompt.begin(), s.prompt.begin() + static_cast<ptrdiff_t>(keep), held.begin())) {
    return;  // the leader's decode failed: its cache holds no prompt
  }
  llama_memory_t mem = llama_get_memory(ctx_.get());
  llama_memory_seq_rm(mem, s.slot->seq, -1, -1);
  llama_memory_seq_cp(mem, leader.slot->seq, s.slot->seq, -1, -1);
  llama_memory_seq_rm(mem, s.slot->seq, static_cast<llama_pos>(keep), -1);
  s.slot->cached.assign(s.prompt.begin(), s.prompt.begin() + static_cast<ptrdiff_t>(keep));
  s.prompt_done = keep;
  internal::MutexLock lock(&s.mu);
  s.report.decoded_prompt = 1;
}

void Batcher::retire_stopped() {
  for (const auto& s : active_) {
    if (s->retired_by_batcher) continue;
    if (const FinishReason r = s->stop_reason(); r != FinishReason::kNone) retire(*s, r);
  }
}

// One batch of at most n_batch tokens: the next token of every generating sequence (each
// waits on nothing else), and prompt chunks from what is left, in arrival order. Tokens go
// in sequence id order because llama.cpp splits a batch over per-sequence KV streams into
// ubatches of consecutive, increasing sequence ids only: {2, 0, 3, 1} would take two.
void Batcher::step() {
  llama_batch& b = batch_.batch;
  b.n_tokens = 0;
  auto add = [&](Sequence& s, int32_t token, bool logits) {
    const int32_t i = b.n_tokens++;
    b.token[i] = token;
    b.pos[i] = static_cast<llama_pos>(s.slot->cached.size() + s.in_batch);
    b.n_seq_id[i] = 1;
    b.seq_id[i][0] = s.slot->seq;
    b.logits[i] = logits;
    ++s.in_batch;
    if (logits) s.logits_index = i;
  };
  // Prompt tokens each prefilling sequence gets: what generation leaves, first come first.
  prefilling_.clear();
  uint32_t prompt_budget = n_batch_;
  for (const auto& s : active_) {
    s->in_batch = 0;
    s->logits_index = -1;
    s->chunk = 0;
    if (s->leader) copy_from_leader(*s);
    if (s->leader) continue;  // still waiting for its leader's prompt
    if (s->pending < 0) prefilling_.push_back(s.get());
    else if (prompt_budget > 0) --prompt_budget;
  }
  std::sort(prefilling_.begin(), prefilling_.end(), [](auto* x, auto* y) { return x->ticket < y->ticket; });
  for (Sequence* s : prefilling_) {
    s->chunk = std::min<size_t>(prompt_budget, s->prompt.size() - s->prompt_done);
    prompt_budget -= static_cast<uint32_t>(s->chunk);
  }
  uint32_t budget = n_batch_;
  for (const auto& s : active_) {  // in sequence id order
    if (s->pending >= 0 && budget > 0) {
      add(*s, s->pending, true);
      --budget;
    }
    for (size_t k = 0; k < s->chunk; ++k) {
      const size_t at = s->prompt_done + k;
      add(*s, s->prompt[at], at + 1 == s->prompt.size());
    }
    if (s->in_batch > 0) in_batch_.push_back(s.get());
  }
  if (b.n_tokens == 0) return;  // only followers waiting for a leader that just retired
  DeferredDecodeLog log;
  const int32_t rc = llama_decode(ctx_.get(), b);
  log.finish(rc);
  if (rc != 0) {
    fail_batch(rc);
    return;
  }
  if (check_workers_ && !workers_lost_) {
    try {
      check_workers_();
    } catch (...) {
      workers_lost_ = std::current_exception();
    }
  }
  if (workers_lost_) {
    for (Sequence* s : in_batch_) fail_lost(*s);
    return;
  }
  for (Sequence* s : in_batch_) decoded(*s);
}

// After a successful decode: records what the KV cache now holds, then samples if the
// sequence has logits in this batch.
void Batcher::decoded(Sequence& s) {
  std::vector<int32_t>& cached = s.slot->cached;
  if (s.pending >= 0) {
    cached.push_back(s.pending);
    s.pending = -1;
  } else {
    const auto first = s.prompt.begin() + static_cast<ptrdiff_t>(s.prompt_done);
    cached.insert(cached.end(), first, first + static_cast<ptrdiff_t>(s.in_batch));
    s.prompt_done += s.in_batch;
  }
  if (s.logits_index < 0) return;
  const Clock::time_point decode_end = Clock::now();
  int32_t token = -1;
  std::optional<StepLogprobs> logprobs;
  try {  // a grammar's sampler may throw: that fails its request only
    token = s.sampler->sample(ctx_.get(), s.logits_index);
    if (s.options->logprobs) {
      logprobs = step_logprobs(llama_get_logits_ith(ctx_.get(), s.logits_index), llama_vocab_n_tokens(vocab_), token,
                               s.options->top_logprobs);
    }
  } catch (...) {
    retire(s, FinishReason::kNone, std::current_exception());
    return;
  }
  {
    internal::MutexLock lock(&s.mu);
    if (logprobs) s.logprobs.push_back(std::move(*logprobs));
    if (s.n_sampled == 0) {
      s.report.prompt_end = decode_end;
      s.report.first_token = Clock::now();
    }
    s.tokens.push_back(token);
  }
  ++s.n_sampled;
  if (s.every_token) s.ready.notify_all();
  if (is_stop_token(vocab_, *s.options, token)) {
    retire(s, FinishReason::kStop);
  } else if (s.n_sampled >= s.options->max_new_tokens) {
    retire(s, FinishReason::kLength);
  } else {
    s.pending = token;
  }
}

// A failed or aborted decode may leave some of the batch's ubatches in the cache: the
// batch's sequences start over. An abort means every one of them had to stop anyway.
void Batcher::fail_batch(int32_t rc) {
  llama_memory_t mem = llama_get_memory(ctx_.get());
  std::exception_ptr error;
  if (rc != 2) {
    try {
      throw_decode_error(rc, "decoding a batch of " + std::to_string(batch_.batch.n_tokens) + " tokens");
    } catch (...) {
      error = std::current_exception();
    }
  }
  for (Sequence* s : in_batch_) {
    llama_memory_seq_rm(mem, s->slot->seq, -1, -1);
    s->slot->cached.clear();
    const FinishReason r = s->stop_reason();
    retire(*s, r == FinishReason::kNone ? FinishReason::kCancelled : r, error);
  }
}

// A decode through an RPC worker that stopped answering completes with garbage (ggml-rpc
// skips what it cannot send): nothing of it may be sampled, and the context's cache is no
// longer whole, so this and every later request fails until the pool replaces the engine.
void Batcher::fail_lost(Sequence& s) {
  if (s.retired_by_batcher) return;
  s.slot->cached.clear();
  retire(s, FinishReason::kNone, workers_lost_);
}

// Hands the sequence back to its request thread. The batcher does not touch it afterwards
// except to drop it from active_.
void Batcher::retire(Sequence& s, FinishReason reason, std::exception_ptr error) {
  s.retired_by_batcher = true;
  {
    internal::MutexLock lock(&s.mu);
    s.retired = true;
    s.report.reason = reason;
    s.report.error = std::move(error);
  }
  s.ready.notify_all();
}

bool Batcher::abort_callback(void* data) noexcept {
  const auto* self = static_cast<const Batcher*>(data);
  if (self->in_batch_.empty()) return false;
  return std::all_of(self->in_batch_.begin(), self->in_batch_.end(),
                     [](const Sequence* s) { return s->stop_reason() != FinishReason::kNone; });
}

}  // namespace kapsl::gguf
