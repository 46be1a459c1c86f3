// Striping per-thread counters: a thread adds to its own stripe (a cache-line-aligned copy
// of the counters) and readers sum the stripes, so that threads counting at once do not
// pass one cache line back and forth on every add.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_CORE_THREAD_STRIPE_H_
#define KAPSL_SRC_CORE_THREAD_STRIPE_H_

#include <cstddef>

namespace kapsl::internal {

inline constexpr size_t kThreadStripes = 8;

// The calling thread's stripe, 0 .. kThreadStripes - 1. Threads get stripes round-robin in
// the order they first ask, so up to kThreadStripes threads have one each.
size_t this_thread_stripe() noexcept;

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_CORE_THREAD_STRIPE_H_
