// Slots: the bounded set of llama.cpp contexts an engine generates with, and the bounded
// queue of requests waiting for one.
//
// A Slot is one llama_context (its own KV cache of n_ctx tokens) plus the tokens that cache
// holds, so the next request on the slot can keep the common prefix and decode only the
// rest. SlotPool hands out slots by RAII Lease; when all are busy, up to max_queue callers
// wait (FIFO is not promised), and one more fails with kOverloaded. The pool's mutex is
// held only while taking or returning a slot, never while a slot is in use.
//
// Each slot's context has an abort callback that reads the slot's current StopSignal, so a
// cancelled or expired request stops llama_decode part-way through a long prompt.
// Continuous batching would map slots to sequence ids of one shared context; Lease and the
// cached-token bookkeeping would stay as they are.
//
// Thread-safety: SlotPool is safe for concurrent use without external synchronization; a
// Slot belongs to the one thread holding its Lease.
#ifndef KAPSL_SRC_GGUF_SLOTS_H_
#define KAPSL_SRC_GGUF_SLOTS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "core/request_counters.h"
#include "core/thread_annotations.h"
#include "ggml-cpu.h"
#include "kapsl/request.h"
#include "llama-cpp.h"

namespace kapsl::gguf {

// What may stop the request a slot is running. Read by the abort callback from llama.cpp's
// worker threads, hence only atomics and values fixed before decoding starts.
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

struct Slot {
  // The context's compute threads, kept between decodes: without an attached pool ggml
  // starts and joins its threads on every llama_decode (measured: about 6% of tg32 on 2
  // threads). Declared before ctx so that ctx, which uses it, is destroyed first.
  ThreadpoolPtr threads;
  llama_context_ptr ctx;
  std::vector<int32_t> cached;             // tokens whose KV sequence 0 of ctx holds, in order
  std::atomic<const StopSignal*> stop{nullptr};  // the running request's; null when idle
};

// Wraps llama_set_abort_callback's callback: true when the slot's request must stop.
bool slot_abort_callback(void* slot) noexcept;

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

  size_t size() const { return slots_.size(); }
  // Every slot, for sizes and teardown. REQUIRES: no lease outstanding for mutation.
  const std::vector<std::unique_ptr<Slot>>& slots() const { return slots_; }

 private:
  void release(Slot* slot);

  const std::vector<std::unique_ptr<Slot>> slots_;
  const uint32_t max_queue_;
  internal::RequestCounters* counters_;
  // mu_ protects the free list and the number of waiters.
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<Slot*> free_ GUARDED_BY(mu_);
  uint32_t waiting_ GUARDED_BY(mu_) = 0;
};

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_SLOTS_H_
