// Keys, reason names, metrics and introspection.
#include <functional>
#include <map>

#include "kapsl/engine_pool.h"
#include "pool/pool_impl.h"

namespace kapsl {

std::string EngineKey::to_string() const { return "'" + model_id + "'@" + std::to_string(device_id); }

size_t EngineKeyHash::operator()(const EngineKey& key) const noexcept {
  const size_t h = std::hash<std::string>{}(key.model_id);
  return h ^ (std::hash<int>{}(key.device_id) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

const char* eviction_reason_name(EvictionReason reason) noexcept {
  switch (reason) {
    case EvictionReason::kCapacity: return "capacity";
    case EvictionReason::kBytes: return "bytes";
    case EvictionReason::kTtl: return "ttl";
    case EvictionReason::kHealth: return "health";
    case EvictionReason::kRemoved: return "removed";
    case EvictionReason::kReplaced: return "replaced";
    case EvictionReason::kCleared: return "cleared";
  }
  return "unknown";
}

double PoolMetrics::hit_rate() const {
  const uint64_t total = hits + misses;
  return total == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(total);
}

uint64_t PoolMetrics::evictions() const {
  return departures_for(EvictionReason::kCapacity) + departures_for(EvictionReason::kBytes) +
         departures_for(EvictionReason::kTtl) + departures_for(EvictionReason::kHealth);
}

PoolMetrics EnginePool::Impl::metrics() const {
  PoolMetrics m;
  const auto load = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  m.hits = load(counters_.hits);
  m.misses = load(counters_.misses);
  m.loads = load(counters_.loads);
  m.load_failures = load(counters_.load_failures);
  m.rejections = load(counters_.rejections);
  m.health_failures = load(counters_.health_failures);
  for (size_t i = 0; i < kEvictionReasonCount; ++i) m.departures[i] = load(counters_.departures[i]);
  m.load_time = load_time_.snapshot();

  std::map<int, DeviceBytes> devices;
  for (const auto& [id, budget] : config_.device_byte_budgets) devices[id].budget_bytes = budget;
  {
    internal::MutexLock lock(&mu_);
    m.entries = lru_.size();
    m.loads_in_flight = flights_.size();
    for (const internal::PoolEntry& e : lru_) ++devices[e.key.device_id].entries;
  }
  for (const auto& [id, d] : ledger_->snapshot()) {
    devices[id].resident_bytes = d.charged;
    devices[id].peak_bytes = d.peak;
  }
  for (auto& [id, d] : devices) {
    d.device_id = id;
    m.devices.push_back(d);
  }
  return m;
}

std::vector<PoolEntryInfo> EnginePool::Impl::entries() const {
  std::vector<PoolEntryInfo> out;
  internal::MutexLock lock(&mu_);
  out.reserve(lru_.size());
  for (const internal::PoolEntry& e : lru_) {
    out.push_back({e.key, e.bytes, e.last_use, e.pinned, e.handed.use_count() - 1});
  }
  return out;
}

}  // namespace kapsl
