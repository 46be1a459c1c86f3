// ByteLedger: the bytes each device's admitted engines hold, for the pool's byte budgets.
//
// An engine is charged when the pool admits it and discharged exactly once: when the last
// copy the pool handed out is released (TrackingDeleter), or earlier, when the pool evicts
// it while no caller holds it (the pool then destroys it right after the callback). So an
// engine evicted while still in use keeps counting until its users let go. The ledger is
// shared with the deleters because they may run after the pool is gone.
//
// Thread-safety: safe for concurrent use without external synchronization. Lock order:
// the pool's mutex, then the ledger's; deleters take only the ledger's.
#ifndef KAPSL_SRC_POOL_BYTE_LEDGER_H_
#define KAPSL_SRC_POOL_BYTE_LEDGER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "core/mutex.h"
#include "core/thread_annotations.h"
#include "kapsl/engine.h"

namespace kapsl::internal {

class ByteLedger {
 public:
  struct Device {
    uint64_t charged = 0;
    uint64_t peak = 0;
  };

  void charge(int device, uint64_t bytes);
  void discharge(int device, uint64_t bytes);
  uint64_t charged(int device) const;
  std::map<int, Device> snapshot() const;

 private:
  mutable Mutex mu_;  // guards devices_
  std::map<int, Device> devices_ GUARDED_BY(mu_);
};

// One admitted engine's charge; released at most once, by whichever comes first.
class Charge {
 public:
  Charge(std::shared_ptr<ByteLedger> ledger, int device, uint64_t bytes);
  Charge(const Charge&) = delete;
  Charge& operator=(const Charge&) = delete;
  void release() noexcept;

 private:
  std::shared_ptr<ByteLedger> ledger_;
  int device_;
  uint64_t bytes_;
  std::atomic<bool> live_{true};
};

// Wraps an engine in the shared_ptr the pool hands out: when the last copy goes, the
// charge is released and the pool's reference to the engine dropped.
std::shared_ptr<Engine> make_tracked(std::shared_ptr<Engine> engine, std::shared_ptr<Charge> charge);

// The engine behind a pointer made by make_tracked (a caller putting back what get handed
// out), or `engine` itself; so that wrappers do not nest and keep old charges alive.
std::shared_ptr<Engine> untracked(std::shared_ptr<Engine> engine);

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_POOL_BYTE_LEDGER_H_
