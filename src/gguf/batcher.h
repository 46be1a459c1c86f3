// Batcher: continuous batching of one engine's generation requests.
//
// The engine's slots are sequence ids of one shared llama_context (one KV cache holding
// n_parallel sequences). One thread, the batcher's, owns that context: each step it builds
// one llama_batch from the next token of every generating sequence plus prompt chunks of
// newly admitted ones (at most n_batch tokens in all), decodes it, samples each sequence
// that has logits, and hands the sampled tokens to the request threads. A request thread
// turns its tokens into text (UTF-8 assembly, stop strings, stream callback); when it
// decides to stop, it says so and the batcher retires the sequence at the next step.
//
// Why one thread: llama_decode on one context is not re-entrant, and a dedicated thread
// lets a sequence's next token join the next batch without waiting for its request thread
// (which may be blocked in a stream callback writing to a slow client).
//
// Stopping. The batcher itself retires a sequence on an end-of-generation or stop token id,
// at max_new_tokens, when its StopSignal fires (cancelled / deadline) and on decode errors.
// A decode is aborted part-way (llama.cpp's abort callback) only when every sequence in its
// batch must stop, so one request's cancellation never costs another its progress.
//
// Thread-safety: safe for concurrent use without external synchronization. A Run belongs to
// the thread that started it.
#ifndef KAPSL_SRC_GGUF_BATCHER_H_
#define KAPSL_SRC_GGUF_BATCHER_H_

#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "gguf/sampling.h"
#include "gguf/slots.h"
#include "kapsl/request.h"
#include "llama-cpp.h"

namespace kapsl::gguf {

// Owns a llama_batch of up to `capacity` tokens, one sequence id each.
struct OwnedBatch {
  explicit OwnedBatch(int32_t capacity) : batch(llama_batch_init(capacity, 0, 1)) {}
  OwnedBatch(const OwnedBatch&) = delete;
  OwnedBatch& operator=(const OwnedBatch&) = delete;
  ~OwnedBatch() { llama_batch_free(batch); }
  llama_batch batch;
};

class Batcher {
 public:
  struct Sequence;  // one running request; batcher.cc

  // One request's run on one slot: the stream of tokens the batcher samples for it.
  class Run {
   public:
    explicit Run(std::shared_ptr<Sequence> seq) : seq_(std::move(seq)) {}
    Run(const Run&) = delete;
    Run& operator=(const Run&) = delete;
    // Asks the batcher to retire the sequence and waits until it has: the slot is then
    // the caller's again.
    ~Run();

    // Blocks for the next sampled token; nullopt once the batcher has retired the sequence
    // (every token was delivered before that). Without `every_token` (see start) it may
    // block until retirement and then deliver them all. With options.logprobs, `logprobs`
    // (if given) receives the token's.
    std::optional<int32_t> next(StepLogprobs* logprobs = nullptr);
    // Asks the batcher to stop generating; tokens already sampled may still arrive.
    void request_stop();

    // What the batcher reports once it has retired the sequence.
    struct Report {
      FinishReason reason = FinishReason::kNone;  // why the batcher retired it
      std::exception_ptr error;                   // the error that retired it (rethrow it), if any
      std::optional<Clock::time_point> prompt_end;   // when the prompt's decode ended, if it did
      std::optional<Clock::time_point> first_token;  // when the first token was sampled, if one was
      size_t decoded_prompt = 0;  // prompt tokens decoded (the rest came from the slot's cache)
    };
    // REQUIRES: next() returned nullopt.
    Report report() const;

   private:
    std::shared_ptr<Sequence> seq_;
  };

  // Takes ownership of `ctx` (n_seq_max >= number of slots, unified KV cache) and of the
  // thread pool it computes with, and starts the batcher's thread. `check_workers`, if
  // given, throws when an RPC worker of the model stopped answering: it runs after each
  // decode, since a decode through a lost worker returns garbage, not an error. From the
  // first throw on, every request fails with what it threw.
  Batcher(llama_context_ptr ctx, ThreadpoolPtr threads, const llama_vocab* vocab, uint32_t n_batch,
          std::function<void()> check_workers = {});
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;
  // Stops the thread. REQUIRES: no Run outstanding.
  ~Batcher();

  llama_context* context() const { return ctx_.get(); }

  // Starts generating for `prompt` (non-empty, fitting the slot's context with
  // max_new_tokens) on the leased `slot`, sampling with `sampler`. `options` and `stop` are
  // borrowed and must outlive the Run. `every_token`: the caller needs each token as it
  // comes (to stream it, or to look for stop strings); otherwise it is woken only at the
  // end, which spares a thread wake-up per token on a machine whose cores all compute.
  // REQUIRES: options.max_new_tokens > 0.
  std::unique_ptr<Run> start(Slot& slot, std::span<const int32_t> prompt, std::unique_ptr<TokenSampler> sampler,
                             const GenerationOptions& options, const StopSignal& stop, bool every_token);

  // Starts one generation of the same prompt per slot, as start() does, sampling slot i
  // with samplers[i]; for OpenAI's `n`. The prompt is decoded once, on slots[0]: each other
  // slot waits for that decode, copies its KV cache (a whole-stream copy, as llama.cpp
  // copies between per-slot streams) and decodes only the prompt's last token, for logits
  // of its own. A slot whose cache already holds the prompt but its last token does not
  // wait. REQUIRES: samplers.size() == slots.size() >= 1.
  std::vector<std::unique_ptr<Run>> start_shared(std::span<Slot* const> slots, std::span<const int32_t> prompt,
                                                 std::vector<std::unique_ptr<TokenSampler>> samplers,
                                                 const GenerationOptions& options, const StopSignal& stop,
                                                 bool every_token);

 private:
  void loop();
  void admit(Sequence& s);
  void copy_from_leader(Sequence& s);
  void step();
  void decoded(Sequence& s);
  void retire(Sequence& s, FinishReason reason, std::exception_ptr error = nullptr);
  void retire_stopped();
  void fail_batch(int32_t rc);
  void fail_lost(Sequence& s);
  static bool abort_callback(void* batcher) noexcept;

  const ThreadpoolPtr threads_;
  const llama_context_ptr ctx_;
  const llama_vocab* const vocab_;
  const uint32_t n_batch_;
  const std::function<void()> check_workers_;

  // mu_ protects what request threads hand to the batcher's thread.
  internal::Mutex mu_;
  internal::CondVar work_;
  std::vector<std::shared_ptr<Sequence>> incoming_ GUARDED_BY(mu_);
  bool shutdown_ GUARDED_BY(mu_) = false;

  // The batcher thread's own state.
  std::vector<std::shared_ptr<Sequence>> active_;  // in sequence id order
  uint64_t next_ticket_ = 0;
  std::exception_ptr workers_lost_;  // set once a worker is lost: every request fails with it
  std::vector<Sequence*> in_batch_;  // also read by abort_callback during llama_decode
  std::vector<Sequence*> prefilling_;  // step()'s scratch, kept to spare an allocation per step
  OwnedBatch batch_;
  std::thread thread_;
};

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_BATCHER_H_
