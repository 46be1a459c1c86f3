// Slots: the bounded set of sequences an engine serves at once, and the bounded queue of
// requests waiting for one.
//
// A Slot remembers the tokens its KV sequence holds, so the next request on the slot can
// keep the common prefix and decode only the rest. In a generation engine a slot is one
// sequence id of the Batcher's shared context; in an embeddings engine it is a context of
// its own (embeddings of a whole batch of texts need one context at a time).
// SlotPool hands out slots by RAII Lease; when all are busy, up to max_queue callers wait
// (FIFO is not promised), and one more fails with kOverloaded. The pool's mutex is held only
// while taking or returning a slot, never while a slot is in use.
//
// Thread-safety: SlotPool is safe for concurrent use without external synchronization; a
// Slot belongs to the one thread holding its Lease (and, during a generation, to the
// Batcher's thread, which the lease holder waits for).
#ifndef KAPSL_SRC_GGUF_SLOTS_H_
#define KAPSL_SRC_GGUF_SLOTS_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "core/mutex.h"
#include "core/request_counters.h"
#include "core/thread_annotations.h"
#include "ggml-cpu.h"
#include "kapsl/request.h"
#include "llama-cpp.h"

namespace kapsl::gguf {

// What may stop a request. Read by abort callbacks from llama.cpp's worker threads, hence
// only atomics and values fixed before decoding starts.
struct StopSignal {
  const CancellationToken* cancel = nullptr;
  std::optional<Clock::time_point> deadline;

  bool cancelled() const { return cancel != nullptr && cancel->is_cancelled(); }
  bool expired() const { return deadline && Clock::now() >= *deadline; }
};

// Owns a ggml CPU thread pool.
struct ThreadpoolDeleter {
  void operator()(ggml_threadpool* pool) const noexcept;
};
using ThreadpoolPtr = std::unique_ptr<ggml_threadpool, ThreadpoolDeleter>;

// A llama_context and the compute threads it is attached to. Without an attached pool ggml
// starts and joins its threads on every llama_decode. `threads` is declared first so that
// the context, which uses it, is destroyed first.
struct ComputeContext {
  ThreadpoolPtr threads;
  llama_context_ptr ctx;
};

struct Slot {
  llama_seq_id seq = 0;          // its KV sequence: in the Batcher's context, or 0 of `own`
  ComputeContext own;            // embeddings engines only
  std::vector<int32_t> cached;   // tokens the KV sequence holds, in order
};

class SlotPool {
 public:
  class Lease {
   public:
    Lease(SlotPool* pool, Slot* slot) : pool_(pool), slot_(slot) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_->release(slot_); }
    Slot& slot() const { return *slot_; }

   private:
    SlotPool* pool_;
    Slot* slot_;
  };

  // `counters` (borrowed, must outlive the pool) gets queue-length updates.
  SlotPool(std::vector<std::unique_ptr<Slot>> slots, uint32_t max_queue, internal::RequestCounters* counters);
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  // Takes a free slot, waiting in the queue if none is. Throws kOverloaded (queue full),
  // kCancelled / kTimeout (stopped while waiting).
  std::unique_ptr<Lease> acquire(const StopSignal& stop);
  // Takes `n` slots at once (never some of them while waiting for the rest, so that two
  // such callers cannot hold each other up), as acquire() does. A caller waiting for
  // several may be passed by callers that need fewer. REQUIRES: 1 <= n <= size().
  std::vector<std::unique_ptr<Lease>> acquire(const StopSignal& stop, size_t n);

  size_t size() const { return slots_.size(); }
  // Every slot, for sizes and teardown. REQUIRES: no lease outstanding for mutation.
  const std::vector<std::unique_ptr<Slot>>& slots() const { return slots_; }

 private:
  std::vector<Slot*> take(const StopSignal& stop, size_t n);
  void release(Slot* slot);

  const std::vector<std::unique_ptr<Slot>> slots_;
  const uint32_t max_queue_;
  internal::RequestCounters* counters_;
  // mu_ protects the free list and the number of waiters.
  internal::Mutex mu_;
  internal::CondVar freed_;
  std::vector<Slot*> free_ GUARDED_BY(mu_);
  uint32_t waiting_ GUARDED_BY(mu_) = 0;
};

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_SLOTS_H_
