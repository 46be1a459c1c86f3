// RunWatcher: stops ONNX Runtime runs whose requests are cancelled or past their deadline.
//
// ONNX Runtime's Run cannot poll a kapsl CancellationToken, but it stops (between nodes,
// subgraphs included) once its RunOptions' terminate flag is set, and that flag may be set
// from another thread. One process-wide thread does it for every engine: while runs are
// registered it wakes every kPollInterval, and a run whose requests include a cancelled or
// expired one gets SetTerminate(). When nothing has been registered for kParkAfter it sleeps
// until the next registration, so an idle process has no wake-ups; registration itself only
// takes a mutex (and wakes the thread only when it is parked), which keeps it off the
// per-run cost.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_ONNX_RUN_WATCHER_H_
#define KAPSL_SRC_ONNX_RUN_WATCHER_H_

#include <onnxruntime_cxx_api.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "kapsl/request.h"

namespace kapsl::onnx {

class RunWatcher {
 public:
  static constexpr std::chrono::milliseconds kPollInterval{1};
  static constexpr std::chrono::milliseconds kParkAfter{200};

  // Registers a run for its lifetime. `requests` and `run` are borrowed and must outlive it.
  // On destruction, a terminate flag the watcher set is cleared again, so `run` can be reused.
  class Watch {
   public:
    Watch(Ort::RunOptions& run, std::span<const InferenceRequest> requests);
    Watch(const Watch&) = delete;
    Watch& operator=(const Watch&) = delete;
    ~Watch();

   private:
    friend class RunWatcher;
    Ort::RunOptions* run_;
    std::span<const InferenceRequest> requests_;
    bool terminated_ = false;  // guarded by the watcher's mutex
  };

  static RunWatcher& instance();
  ~RunWatcher();

 private:
  RunWatcher() = default;
  void add(Watch* w);
  void remove(Watch* w);
  void loop();
  void check_locked(Clock::time_point now);  // REQUIRES: mu_ held

  // mu_ guards watches_, parked_, stop_ and every Watch::terminated_.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Watch*> watches_;
  bool parked_ = false;
  bool stop_ = false;
  std::thread thread_;  // started on the first add()
};

}  // namespace kapsl::onnx

#endif  // KAPSL_SRC_ONNX_RUN_WATCHER_H_
