#include "core/thread_stripe.h"

#include <atomic>

namespace kapsl::internal {

size_t this_thread_stripe() noexcept {
  static std::atomic<size_t> next{0};
  thread_local const size_t stripe = next.fetch_add(1, std::memory_order_relaxed) % kThreadStripes;
  return stripe;
}

}  // namespace kapsl::internal
