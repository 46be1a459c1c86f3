#include "pool/byte_ledger.h"

#include <algorithm>
#include <cassert>
#include <utility>

namespace kapsl::internal {

void ByteLedger::charge(int device, uint64_t bytes) {
  MutexLock lock(&mu_);
  Device& d = devices_[device];
  d.charged += bytes;
  d.peak = std::max(d.peak, d.charged);
}

void ByteLedger::discharge(int device, uint64_t bytes) {
  MutexLock lock(&mu_);
  Device& d = devices_[device];
  assert(d.charged >= bytes);
  d.charged -= std::min(d.charged, bytes);
}

uint64_t ByteLedger::charged(int device) const {
  MutexLock lock(&mu_);
  auto it = devices_.find(device);
  return it == devices_.end() ? 0 : it->second.charged;
}

std::map<int, ByteLedger::Device> ByteLedger::snapshot() const {
  MutexLock lock(&mu_);
  return devices_;
}

Charge::Charge(std::shared_ptr<ByteLedger> ledger, int device, uint64_t bytes)
    : ledger_(std::move(ledger)), device_(device), bytes_(bytes) {
  ledger_->charge(device_, bytes_);
}

void Charge::release() noexcept {
  if (live_.exchange(false, std::memory_order_acq_rel)) ledger_->discharge(device_, bytes_);
}

namespace {

struct TrackingDeleter {
  std::shared_ptr<Engine> engine;
  std::shared_ptr<Charge> charge;
  void operator()(Engine*) noexcept {
    charge->release();
    // Drop the engine here rather than with the control block, so that it is destroyed on
    // the thread that released the last copy.
    engine.reset();
  }
};

}  // namespace

std::shared_ptr<Engine> make_tracked(std::shared_ptr<Engine> engine, std::shared_ptr<Charge> charge) {
  Engine* raw = engine.get();
  return std::shared_ptr<Engine>(raw, TrackingDeleter{std::move(engine), std::move(charge)});
}

std::shared_ptr<Engine> untracked(std::shared_ptr<Engine> engine) {
  if (auto* d = std::get_deleter<TrackingDeleter>(engine); d != nullptr && d->engine) return d->engine;
  return engine;
}

}  // namespace kapsl::internal
