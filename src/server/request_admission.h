// Admission: bounded concurrency and a bounded, timed queue per model, each model with its
// own limits (its manifest's "serving" section over the server's defaults).
//
// admit() lets a request run when fewer than max_concurrency requests of its model are
// running; otherwise it waits in the model's queue (at most max_queue waiters, each at most
// queue_timeout) and is refused with Error(kOverloaded) when the queue is full or the wait
// times out. The limits a call passes apply from that call on. A Ticket holds the turn and gives it back when destroyed. close() refuses
// every later admit() with Error(kUnavailable) ("shutting down") and wakes the waiters.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_SERVER_REQUEST_ADMISSION_H_
#define KAPSL_SRC_SERVER_REQUEST_ADMISSION_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/mutex.h"
#include "core/thread_annotations.h"

namespace kapsl::server {

struct AdmissionLimits {
  uint32_t max_concurrency = 4;              // running at once per model, >= 1
  uint32_t max_queue = 16;                   // waiting per model
  std::chrono::milliseconds queue_timeout{30000};  // longest wait
};

class Admission {
  struct Gate {
    uint32_t running = 0;
    uint32_t waiting = 0;
    uint32_t max_concurrency = 1;  // the latest limits admit() was given
    internal::CondVar cv;  // signalled when a turn is given back, and on close()
  };

 public:
  // A turn to run. Movable; gives the turn back when destroyed.
  class Ticket {
   public:
    Ticket() = default;
    Ticket(Ticket&& other) noexcept : owner_(other.owner_), gate_(other.gate_) { other.owner_ = nullptr; }
    Ticket& operator=(Ticket&& other) noexcept;
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    ~Ticket() { release(); }
    void release() noexcept;

   private:
    friend class Admission;
    Ticket(Admission* owner, Gate* gate) : owner_(owner), gate_(gate) {}
    Admission* owner_ = nullptr;
    Gate* gate_ = nullptr;
  };

  struct Counts {
    uint32_t running = 0;
    uint32_t waiting = 0;
  };

  Admission() = default;
  Admission(const Admission&) = delete;
  Admission& operator=(const Admission&) = delete;

  // A turn for `model` under `limits`, after waiting if need be. Throws Error(kOverloaded)
  // (queue full or waited queue_timeout) or Error(kUnavailable) (closed).
  Ticket admit(const std::string& model, const AdmissionLimits& limits);
  // Counts for `model` (zeros if it never had a request).
  Counts counts(std::string_view model) const;
  // Counts for every model that had a request.
  std::map<std::string, Counts> all_counts() const;
  // Running requests over all models.
  uint32_t total_running() const;
  // Refuses every later admit() and wakes the waiters, which are refused too.
  void close();

 private:
  void give_back(Gate* gate) noexcept;

  // mu_ guards every gate's counts and limit, and closed_.
  mutable internal::Mutex mu_;
  std::map<std::string, Gate, std::less<>> gates_ GUARDED_BY(mu_);  // nodes never move
  bool closed_ GUARDED_BY(mu_) = false;
};

// BodyBudget: the memory request bodies may hold while they are read and parsed, over all
// models. A request takes a Lease and grows it as its body arrives (and as its tensors are
// allocated); a growth past the budget fails, and the request is refused (503/429) instead
// of reading on — or 413 when it could not fit in the whole budget. The lease gives its
// bytes back when destroyed.
class BodyBudget {
 public:
  // What a body byte costs while read, reserved before the body is parsed: the byte itself,
  // one more for what parsing builds (a JSON DOM, whose size the value limit also bounds;
  // KServe names and strings) and one more for a KServe request's typed tensors, which are
  // charged beyond that allowance only (parse_infer_request's reserve hook; see reserve_in).
  // Reserving the tensors' usual share up front keeps requests admitted together from each
  // holding a body and all failing for want of tensor memory.
  static constexpr size_t kBodyCost = 3;

  class Lease {
   public:
    explicit Lease(BodyBudget* budget) : budget_(budget) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { budget_->give_back(bytes_); }
    // Takes `more` bytes; false (and nothing taken) if the budget cannot spare them.
    bool grow(size_t more) {
      if (!budget_->take(more)) return false;
      bytes_ += more;
      return true;
    }
    // Whether `more` bytes could ever be granted: the lease's own and `more` within the limit.
    bool could_grow(size_t more) const { return more <= budget_->limit_ && bytes_ <= budget_->limit_ - more; }

   private:
    BodyBudget* budget_;
    size_t bytes_ = 0;
  };

  explicit BodyBudget(size_t limit) : limit_(limit) {}
  Lease lease() { return Lease(this); }
  size_t in_use() const noexcept { return used_.load(std::memory_order_relaxed); }

 private:
  bool take(size_t n) {
    size_t used = used_.load(std::memory_order_relaxed);
    do {
      if (n > limit_ || used > limit_ - n) return false;
    } while (!used_.compare_exchange_weak(used, used + n, std::memory_order_relaxed));
    return true;
  }
  void give_back(size_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }

  const size_t limit_;
  std::atomic<size_t> used_{0};
};

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_REQUEST_ADMISSION_H_
