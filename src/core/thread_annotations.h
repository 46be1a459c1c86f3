// Clang thread-safety annotations (as LevelDB's port/thread_annotations.h): members carry
// GUARDED_BY(mu_), helpers that need a lock carry EXCLUSIVE_LOCKS_REQUIRED(mu_). Under
// Clang they are checked by -Wthread-safety; under GCC they expand to nothing and serve as
// documentation the compiler keeps in sync with the code it can check.
//
// Thread-safety: macros only; nothing to synchronize.
#ifndef KAPSL_SRC_CORE_THREAD_ANNOTATIONS_H_
#define KAPSL_SRC_CORE_THREAD_ANNOTATIONS_H_

#if defined(__clang__)
#define KAPSL_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define KAPSL_THREAD_ANNOTATION_(x)
#endif

#ifndef GUARDED_BY
#define GUARDED_BY(x) KAPSL_THREAD_ANNOTATION_(guarded_by(x))
#endif
#ifndef PT_GUARDED_BY
#define PT_GUARDED_BY(x) KAPSL_THREAD_ANNOTATION_(pt_guarded_by(x))
#endif
#ifndef EXCLUSIVE_LOCKS_REQUIRED
#define EXCLUSIVE_LOCKS_REQUIRED(...) KAPSL_THREAD_ANNOTATION_(exclusive_locks_required(__VA_ARGS__))
#endif
#ifndef SHARED_LOCKS_REQUIRED
#define SHARED_LOCKS_REQUIRED(...) KAPSL_THREAD_ANNOTATION_(shared_locks_required(__VA_ARGS__))
#endif
#ifndef LOCKS_EXCLUDED
#define LOCKS_EXCLUDED(...) KAPSL_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#endif
#ifndef ACQUIRED_AFTER
#define ACQUIRED_AFTER(...) KAPSL_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#endif
#ifndef ACQUIRED_BEFORE
#define ACQUIRED_BEFORE(...) KAPSL_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))
#endif
#ifndef NO_THREAD_SAFETY_ANALYSIS
#define NO_THREAD_SAFETY_ANALYSIS KAPSL_THREAD_ANNOTATION_(no_thread_safety_analysis)
#endif

#endif  // KAPSL_SRC_CORE_THREAD_ANNOTATIONS_H_
