#include "kapsl/engine_pool.h"

#include <spdlog/spdlog.h>

#include <time.h>

#include <chrono>
#include <utility>

#include "pool/pool_impl.h"

namespace kapsl {

using internal::PoolCounters;

// ---- EnginePool: forwards to Impl -------------------------------------------------------

EnginePool::EnginePool(PoolConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
EnginePool::~EnginePool() = default;

std::shared_ptr<Engine> EnginePool::get(const EngineKey& key) { return impl_->get(key); }
std::shared_ptr<Engine> EnginePool::get_or_load(const EngineKey& key, const EngineLoader& loader,
                                                const EntryOptions& entry) {
  return impl_->get_or_load(key, loader, /*count_lookup=*/true, entry);
}
void EnginePool::put(const EngineKey& key, std::shared_ptr<Engine> engine, const EntryOptions& entry) {
  impl_->put(key, std::move(engine), entry);
}
bool EnginePool::remove(const EngineKey& key) { return impl_->remove(key); }
size_t EnginePool::clear() { return impl_->clear(); }
bool EnginePool::pin(const EngineKey& key) { return impl_->set_pinned(key, true); }
bool EnginePool::unpin(const EngineKey& key) { return impl_->set_pinned(key, false); }
bool EnginePool::contains(const EngineKey& key) const { return impl_->contains(key); }
size_t EnginePool::size() const { return impl_->size(); }
void EnginePool::set_eviction_callback(EvictionCallback callback) { impl_->set_callback(std::move(callback)); }
void EnginePool::clear_eviction_callback() { impl_->set_callback(nullptr); }
WarmupReport EnginePool::warmup(const std::vector<EngineKey>& keys, const EngineLoader& loader) {
  return impl_->warmup(keys, loader);
}
SweepReport EnginePool::sweep() { return impl_->sweep(); }
PoolMetrics EnginePool::metrics() const { return impl_->metrics(); }
std::vector<PoolEntryInfo> EnginePool::entries() const { return impl_->entries(); }
const PoolConfig& EnginePool::config() const { return impl_->config(); }

// ---- Impl: lookups, removals, callbacks --------------------------------------------------

namespace internal {

Clock::time_point coarse_now() noexcept {
#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
  // Same origin as CLOCK_MONOTONIC, which libstdc++'s steady_clock (kapsl::Clock) reads.
  timespec ts{};
  if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) == 0) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::seconds(ts.tv_sec) +
                                                                         std::chrono::nanoseconds(ts.tv_nsec)));
  }
#endif
  return Clock::now();
}

Health check_health(const Engine& engine) noexcept {
  try {
    return engine.health_check();
  } catch (const std::exception& e) {
    return Health{false, std::string("health_check threw: ") + e.what()};
  } catch (...) {
    return Health{false, "health_check threw a non-standard exception"};
  }
}

}  // namespace internal

EnginePool::Impl::Impl(PoolConfig config) : config_(std::move(config)), ledger_(std::make_shared<internal::ByteLedger>()) {
  config_.validate();
  if (config_.health_check_interval.count() > 0) sweeper_ = std::thread([this] { run_sweeper(); });
}

EnginePool::Impl::~Impl() {
  {
    internal::MutexLock lock(&sweeper_mu_);
    stopping_ = true;
  }
  sweeper_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
}

std::optional<EnginePool::Impl::Hit> EnginePool::Impl::promote(const EngineKey& key, Clock::time_point now) {
  internal::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return std::nullopt;
  lru_.splice(lru_.begin(), lru_, it->second);
  it->second->last_use = now;
  return Hit{it->second->handed, it->second->serial};
}

std::shared_ptr<Engine> EnginePool::Impl::lookup(const EngineKey& key, bool count) {
  std::optional<Hit> hit = promote(key, now());
  if (hit && config_.health_check_on_get) {
    const Health health = internal::check_health(*hit->handed);
    if (!health.ok) {
      remove_unhealthy(key, hit->serial, health.reason);
      hit.reset();  // drop our copy before the callback's engine is released
      deliver();
    }
  }
  if (count) PoolCounters::bump(hit ? counters_.hits : counters_.misses);
  return hit ? std::move(hit->handed) : nullptr;
}

std::shared_ptr<Engine> EnginePool::Impl::get(const EngineKey& key) { return lookup(key, /*count=*/true); }

bool EnginePool::Impl::remove_unhealthy(const EngineKey& key, uint64_t serial, const std::string& why) {
  PoolCounters::bump(counters_.health_failures);
  spdlog::warn("EnginePool: engine {} failed its health check: {}", key.to_string(), why);
  internal::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end() || it->second->serial != serial) return false;  // already gone or replaced
  depart_locked(it->second, EvictionReason::kHealth);
  return true;
}

void EnginePool::Impl::depart_locked(Lru::iterator it, EvictionReason reason) {
  // Nobody else holds it, so it dies right after the callback: free its bytes now so that
  // an admission racing with the delivery sees the room.
  if (it->idle()) it->charge->release();
  departures_.push_back({it->key, std::move(it->handed), reason});
  PoolCounters::bump(counters_.departures[static_cast<size_t>(reason)]);
  index_.erase(it->key);
  lru_.erase(it);
}

bool EnginePool::Impl::remove(const EngineKey& key) {
  {
    internal::MutexLock lock(&mu_);
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    depart_locked(it->second, EvictionReason::kRemoved);
  }
  deliver();
  return true;
}

size_t EnginePool::Impl::clear() {
  size_t n = 0;
  {
    internal::MutexLock lock(&mu_);
    n = lru_.size();
    while (!lru_.empty()) depart_locked(std::prev(lru_.end()), EvictionReason::kCleared);
  }
  deliver();
  return n;
}

bool EnginePool::Impl::set_pinned(const EngineKey& key, bool pinned) {
  internal::MutexLock lock(&mu_);
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  it->second->pinned = pinned;
  return true;
}

bool EnginePool::Impl::contains(const EngineKey& key) const {
  internal::MutexLock lock(&mu_);
  return index_.count(key) != 0;
}

size_t EnginePool::Impl::size() const {
  internal::MutexLock lock(&mu_);
  return lru_.size();
}

void EnginePool::Impl::set_callback(EvictionCallback callback) {
  auto shared = callback ? std::make_shared<const EvictionCallback>(std::move(callback)) : nullptr;
  internal::MutexLock lock(&mu_);
  callback_ = std::move(shared);
}

namespace {

void invoke(const EvictionCallback* callback, const internal::Departure& d) noexcept {
  if (callback == nullptr) return;
  try {
    (*callback)(d.key, d.engine, d.reason);
  } catch (const std::exception& e) {
    spdlog::error("EnginePool: eviction callback for {} ({}) threw: {}", d.key.to_string(),
                  eviction_reason_name(d.reason), e.what());
  } catch (...) {
    spdlog::error("EnginePool: eviction callback for {} ({}) threw a non-standard exception", d.key.to_string(),
                  eviction_reason_name(d.reason));
  }
}

}  // namespace

void EnginePool::Impl::deliver() {
  internal::MutexLock lock(&mu_);
  // One deliverer at a time keeps callbacks in departure order; the others' departures
  // are already queued and the running deliverer picks them up before it stops.
  if (delivering_) return;
  delivering_ = true;
  while (!departures_.empty()) {
    std::deque<internal::Departure> batch;
    batch.swap(departures_);
    std::shared_ptr<const EvictionCallback> callback = callback_;
    lock.unlock();
    for (const internal::Departure& d : batch) {
      spdlog::debug("EnginePool: {} left the pool ({})", d.key.to_string(), eviction_reason_name(d.reason));
      invoke(callback.get(), d);
    }
    batch.clear();  // engines nobody else holds are destroyed here, outside the lock
    lock.lock();
  }
  delivering_ = false;
}

}  // namespace kapsl
