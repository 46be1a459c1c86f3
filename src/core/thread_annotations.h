// Clang thread-safety annotations (as LevelDB's port/thread_annotations.h and Clang's
// "Thread Safety Analysis" documentation): a mutex type is a CAPABILITY whose lock() and
// unlock() ACQUIRE() and RELEASE() it, and MutexLock a SCOPED_CAPABILITY (core/mutex.h).
// Members carry GUARDED_BY(mu_); helpers that need a lock carry REQUIRES(mu_) (the older
// spelling EXCLUSIVE_LOCKS_REQUIRED(mu_) means the same). Under Clang they are checked by
// -Wthread-safety (on in every Clang build, see cmake/KapslWarnings.cmake); under GCC they
// expand to nothing and serve as documentation the Clang build keeps in sync with the code.
//
// Thread-safety: macros only; nothing to synchronize.
#ifndef KAPSL_SRC_CORE_THREAD_ANNOTATIONS_H_
#define KAPSL_SRC_CORE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define KAPSL_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define KAPSL_THREAD_ANNOTATION_(x)
#endif

// --- On types: what a lock is.

// A class whose objects are locks; `x` names the kind in messages ("mutex").
#ifndef CAPABILITY
#define CAPABILITY(x) KAPSL_THREAD_ANNOTATION_(capability(x))
#endif
// An RAII class that holds the capabilities its constructor acquires until it is destroyed.
#ifndef SCOPED_CAPABILITY
#define SCOPED_CAPABILITY KAPSL_THREAD_ANNOTATION_(scoped_lockable)
#endif

// --- On data: which lock protects it.

#ifndef GUARDED_BY
#define GUARDED_BY(x) KAPSL_THREAD_ANNOTATION_(guarded_by(x))
#endif
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) KAPSL_THREAD_ANNOTATION_(pt_guarded_by(x))
#endif
#ifndef ACQUIRED_AFTER
#define ACQUIRED_AFTER(...) KAPSL_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#endif
#ifndef ACQUIRED_BEFORE
#define ACQUIRED_BEFORE(...) KAPSL_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#endif

// --- On functions: what they need, take and give back.

// The caller must hold the capabilities (exclusively / shared).
#ifndef REQUIRES
#define REQUIRES(...) KAPSL_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#endif
#ifndef REQUIRES_SHARED
#define REQUIRES_SHARED(...) KAPSL_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#endif
// The function acquires / releases the capabilities (none named: `this`, on a lock's own
// methods and a scoped capability's).
#ifndef ACQUIRE
#define ACQUIRE(...) KAPSL_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#endif
#ifndef ACQUIRE_SHARED
#define ACQUIRE_SHARED(...) KAPSL_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#endif
#ifndef RELEASE
#define RELEASE(...) KAPSL_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#endif
#ifndef RELEASE_SHARED
#define RELEASE_SHARED(...) KAPSL_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#endif
// Acquires the capabilities when it returns `ok` (the first argument: true or false).
#ifndef TRY_ACQUIRE
#define TRY_ACQUIRE(...) KAPSL_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#endif
// The caller must not hold the capabilities (the function takes them itself).
#ifndef EXCLUDES
#define EXCLUDES(...) KAPSL_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#endif
// A run-time check that the capability is held: after the call the analysis assumes it is.
#ifndef ASSERT_CAPABILITY
#define ASSERT_CAPABILITY(x) KAPSL_THREAD_ANNOTATION_(assert_capability(x))
#endif
// The function returns (a reference to) the capability `x`.
#ifndef RETURN_CAPABILITY
#define RETURN_CAPABILITY(x) KAPSL_THREAD_ANNOTATION_(lock_returned(x))
#endif
// Turns the analysis off for one function; say why beside it.
#ifndef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS KAPSL_THREAD_ANNOTATION_(no_thread_safety_analysis)
#endif

// --- The older spellings (LevelDB's), kept as aliases.

#ifndef EXCLUSIVE_LOCKS_REQUIRED
#define EXCLUSIVE_LOCKS_REQUIRED(...) REQUIRES(__VA_ARGS__)
#endif
#ifndef SHARED_LOCKS_REQUIRED
#define SHARED_LOCKS_REQUIRED(...) REQUIRES_SHARED(__VA_ARGS__)
#endif
#ifndef LOCKS_EXCLUDED
#define LOCKS_EXCLUDED(...) EXCLUDES(__VA_ARGS__)
#endif

#endif  // KAPSL_SRC_CORE_THREAD_ANNOTATIONS_H_
