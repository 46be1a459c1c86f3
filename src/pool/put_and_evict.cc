// put(), and the choice of victims for max_size and for a device's byte budget.
#include <algorithm>
#include <utility>

#include "kapsl/engine_pool.h"
#include "pool/pool_impl.h"

namespace kapsl {

using internal::PoolCounters;

// Victims chosen under the lock before anything changes, so that a refused admission
// leaves the pool untouched.
struct EnginePool::Impl::Plan {
  std::optional<Lru::iterator> replaced;
  std::vector<Lru::iterator> for_bytes;
  std::vector<Lru::iterator> for_capacity;

  bool chosen(Lru::iterator it) const {
    return (replaced && *replaced == it) || std::find(for_bytes.begin(), for_bytes.end(), it) != for_bytes.end() ||
           std::find(for_capacity.begin(), for_capacity.end(), it) != for_capacity.end();
  }
};

internal::Prepared EnginePool::Impl::prepare(std::shared_ptr<Engine> engine, const EntryOptions& entry) const {
  internal::Prepared p;
  p.entry = entry;
  p.engine = internal::untracked(std::move(engine));
  p.bytes = p.engine->resident_bytes();
  return p;
}

namespace {

Error refusal(const EngineKey& key, uint64_t bytes, const std::string& why) {
  return Error::resource_exhausted("EnginePool: cannot admit " + key.to_string() + " (" + std::to_string(bytes) + " bytes)",
                                   why);
}

}  // namespace

uint64_t EnginePool::Impl::choose_bytes_victims_locked(int device, uint64_t need, Plan& plan) {
  // Only idle victims free bytes now; evicting one in use would only lose the entry.
  const auto evictable = [&](Lru::iterator it) {
    return it->key.device_id == device && !it->pinned && it->idle() && !plan.chosen(it);
  };
  // The coldest idle entry that alone frees enough costs one engine where strict LRU
  // order might take several small ones first (anchors §6, omlx PR#3306).
  for (auto it = lru_.end(); it != lru_.begin();) {
    --it;
    if (evictable(it) && it->bytes >= need) {
      plan.for_bytes.push_back(it);
      return it->bytes;
    }
  }
  uint64_t freed = 0;
  for (auto it = lru_.end(); freed < need && it != lru_.begin();) {
    --it;
    if (!evictable(it)) continue;
    plan.for_bytes.push_back(it);
    freed += it->bytes;
  }
  return freed;
}

void EnginePool::Impl::plan_bytes_locked(const EngineKey& key, uint64_t bytes, Plan& plan) {
  auto budget_it = config_.device_byte_budgets.find(key.device_id);
  if (budget_it == config_.device_byte_budgets.end()) return;
  const uint64_t budget = budget_it->second;
  const std::string device = "device " + std::to_string(key.device_id);
  if (bytes > budget) throw refusal(key, bytes, "it alone exceeds " + device + "'s byte budget of " + std::to_string(budget));
  const uint64_t charged = ledger_->charged(key.device_id);
  const uint64_t replaced = (plan.replaced && (*plan.replaced)->idle()) ? (*plan.replaced)->bytes : 0;
  if (charged + bytes <= budget + replaced) return;
  const uint64_t need = charged + bytes - budget - replaced;
  const uint64_t freed = choose_bytes_victims_locked(key.device_id, need, plan);
  if (freed < need) {
    throw refusal(key, bytes, device + " has " + std::to_string(charged) + " of " + std::to_string(budget) +
                                  " bytes charged and only " + std::to_string(freed + replaced) +
                                  " can be freed (the rest is pinned or in use)");
  }
}

void EnginePool::Impl::plan_capacity_locked(const EngineKey& key, Plan& plan) {
  size_t after = lru_.size() + 1 - (plan.replaced ? 1 : 0) - plan.for_bytes.size();
  // Two passes from the least recently used end: idle entries first, then those in use.
  for (int pass = 0; pass < 2 && after > config_.max_size; ++pass) {
    for (auto it = lru_.end(); after > config_.max_size && it != lru_.begin();) {
      --it;
      if (it->pinned || plan.chosen(it) || (pass == 0 && !it->idle())) continue;
      plan.for_capacity.push_back(it);
      --after;
    }
  }
  if (after > config_.max_size) {
    throw Error::resource_exhausted("EnginePool: cannot admit " + key.to_string(),
                                    "the pool is full (max_size " + std::to_string(config_.max_size) +
                                        ") and every entry is pinned");
  }
}

EnginePool::Impl::Plan EnginePool::Impl::plan_locked(const EngineKey& key, uint64_t bytes) {
  Plan plan;
  if (auto it = index_.find(key); it != index_.end()) plan.replaced = it->second;
  plan_bytes_locked(key, bytes, plan);
  plan_capacity_locked(key, plan);
  return plan;
}

std::shared_ptr<Engine> EnginePool::Impl::admit_locked(const EngineKey& key, internal::Prepared& prepared,
                                                       Clock::time_point now) {
  Plan plan;
  try {
    plan = plan_locked(key, prepared.bytes);
  } catch (const Error&) {
    PoolCounters::bump(counters_.rejections);
    throw;
  }
  bool pinned = prepared.entry.pin;
  if (plan.replaced) {
    pinned = pinned || (*plan.replaced)->pinned;
    depart_locked(*plan.replaced, EvictionReason::kReplaced);
  }
  for (Lru::iterator it : plan.for_bytes) depart_locked(it, EvictionReason::kBytes);
  for (Lru::iterator it : plan.for_capacity) depart_locked(it, EvictionReason::kCapacity);

  auto charge = std::make_shared<internal::Charge>(ledger_, key.device_id, prepared.bytes);
  internal::PoolEntry entry{key,    internal::make_tracked(prepared.engine, charge),
                            std::move(prepared.engine), charge, prepared.bytes, now, pinned, prepared.entry.ttl,
                            next_serial_++};
  lru_.push_front(std::move(entry));
  index_[key] = lru_.begin();
  failed_loads_.erase(key);
  return lru_.front().handed;
}

void EnginePool::Impl::put(const EngineKey& key, std::shared_ptr<Engine> engine, const EntryOptions& entry) {
  if (!engine) throw Error::invalid_input("EnginePool::put: engine is null", key.to_string());
  if (key.model_id.empty()) throw Error::invalid_input("EnginePool::put: key.model_id is empty");
  internal::Prepared prepared = prepare(std::move(engine), entry);
  std::shared_ptr<Engine> handed;
  {
    internal::MutexLock lock(&mu_);
    handed = admit_locked(key, prepared, now());
  }
  handed.reset();  // not a user: the caller gave the engine away
  deliver();
}

}  // namespace kapsl
