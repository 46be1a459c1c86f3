// RunWatcher: stops ONNX Runtime runs whose requests are cancelled or past their deadline.
//
// ONNX Runtime's Run cannot poll a kapsl CancellationToken, but it stops (between nodes,
// subgraphs included) once its RunOptions' terminate flag is set, and that flag may be set
// from another thread. One process-wide thread does it for every engine: while runs are
// registered it wakes every kPollInterval, and a run whose requests include a cancelled or
// expired one gets SetTerminate(). When nothing has been registered for kParkAfter it sleeps
// until the next registration, so an idle process has no wake-ups.
//
// Registration is per thread: each thread that runs gets a slot, listed once for the
// thread's life. A run publishes its RunOptions and requests in its own thread's slot with
// one atomic store and takes them back with one compare-and-swap; the watcher borrows a
// slot for its check by swapping its state from running to checking and back, and a run
// ending meanwhile waits the few instructions that takes. (A mutex per slot cost four
// atomic read-modify-writes per run.) Runs on different threads share nothing; the
// process-wide mutex is taken only when a thread first runs, when it exits, and to wake a
// parked watcher.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_ONNX_RUN_WATCHER_H_
#define KAPSL_SRC_ONNX_RUN_WATCHER_H_

#include <onnxruntime_cxx_api.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/request.h"

namespace kapsl::onnx {

class RunWatcher {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{1};
  static constexpr std::chrono::milliseconds kParkAfter{200};

  // The watch state of one thread's runs. `state` hands the other fields back and forth:
  // the slot's thread owns them while kIdle, the watcher while kChecking, and while
  // kRunning they are published and only read.
  struct Slot {
    enum State : int { kIdle, kRunning, kChecking };
    std::atomic<int> state{kIdle};
    Ort::RunOptions* run = nullptr;
    std::span<const InferenceRequest> requests;
    bool terminated = false;  // the watcher set run's terminate flag
  };

  // Registers a run for its lifetime. `requests` and `run` are borrowed and must outlive it.
  // On destruction, a terminate flag the watcher set is cleared again, so `run` can be reused.
  class Watch {
   public:
    Watch(Ort::RunOptions& run, std::span<const InferenceRequest> requests);
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    ~Watch();

   private:
    Slot* slot_;
  };

  static RunWatcher& instance();
  ~RunWatcher();

 private:
  class SlotHolder;  // the thread_local owner that lists and unlists a thread's slot

  RunWatcher() = default;
  void list(const std::shared_ptr<Slot>& slot);
  void unlist(const Slot* slot);
  void wake_if_parked();
  void loop();
  bool check_slots(Clock::time_point now) REQUIRES(mu_);  // true if any run is watched

  // mu_ guards slots_, thread_ and stop_, and parked_'s transitions to false.
  internal::Mutex mu_;
  internal::CondVar cv_;
  std::vector<std::shared_ptr<Slot>> slots_ GUARDED_BY(mu_);
  std::atomic<bool> parked_{false};
  bool stop_ GUARDED_BY(mu_) = false;
  std::thread thread_ GUARDED_BY(mu_);  // started when the first slot is listed
};

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_RUN_WATCHER_H_
