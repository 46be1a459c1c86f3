// The sweep: health checks outside the lock, then idle expiry; and the thread running it.
#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

#include "kapsl/engine_pool.h"
#include "pool/pool_impl.h"

namespace kapsl {

namespace {

struct Target {
  EngineKey key;
  uint64_t serial;
  std::shared_ptr<Engine> engine;  // not the handed pointer: checking is not using
};

}  // namespace

SweepReport EnginePool::Impl::sweep() {
  std::vector<Target> targets;
  {
    internal::MutexLock lock(&mu_);
    targets.reserve(lru_.size());
    for (const internal::PoolEntry& e : lru_) targets.push_back({e.key, e.serial, e.engine});
  }
  SweepReport report;
  for (const Target& t : targets) {
    ++report.checked;
    const Health health = internal::check_health(*t.engine);
    if (!health.ok && remove_unhealthy(t.key, t.serial, health.reason)) ++report.unhealthy;
  }
  targets.clear();  // engines removed meanwhile may die here, outside the lock
  {
    const Clock::time_point t = now();
    internal::MutexLock lock(&mu_);
    report.expired = expire_idle_locked(t);
  }
  deliver();
  return report;
}

size_t EnginePool::Impl::expire_idle_locked(Clock::time_point now) {
  // A held engine is in use: its idle time starts when its users let go, which the sweep
  // sees as "held at the last sweep".
  for (internal::PoolEntry& e : lru_) {
    if (!e.idle()) e.last_use = now;
  }
  size_t expired = 0;
  for (auto it = lru_.end(); lru_.size() > config_.min_size && it != lru_.begin();) {
    --it;
    const std::chrono::milliseconds ttl = it->ttl.value_or(config_.ttl);
    if (it->pinned || !it->idle() || ttl.count() <= 0 || now - it->last_use < ttl) continue;
    auto victim = it++;  // step back onto the next entry before erasing this one
    depart_locked(victim, EvictionReason::kTtl);
    ++expired;
  }
  return expired;
}

void EnginePool::Impl::run_sweeper() {
  internal::MutexLock lock(&sweeper_mu_);
  while (true) {
    // One interval, cut short when the destructor sets stopping_.
    const auto deadline = std::chrono::steady_clock::now() + config_.health_check_interval;
    bool timed_out = false;
    while (!stopping_ && !timed_out) timed_out = !sweeper_cv_.wait_until(&sweeper_mu_, deadline);
    if (stopping_) return;
    lock.unlock();
    try {
      sweep();
    } catch (const std::exception& e) {  // bad_alloc; the next sweep may fare better
      spdlog::error("EnginePool: sweep failed: {}", e.what());
    }
    lock.lock();
  }
}

}  // namespace kapsl
