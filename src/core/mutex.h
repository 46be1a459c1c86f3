// Mutex, MutexLock and CondVar: std::mutex and std::condition_variable annotated for
// Clang's thread-safety analysis (as LevelDB's port::Mutex, MutexLock and port::CondVar).
// libstdc++'s std::mutex is not a capability, so Clang ignores GUARDED_BY(mu_) on a
// std::mutex; on a Mutex, -Wthread-safety checks every access to the guarded members, every
// REQUIRES(mu_) helper's callers and every lock and unlock (see core/thread_annotations.h).
//
// Locks are taken through MutexLock, an RAII guard; it may release and retake its mutex
// (unlock() / lock()) for work that must run without it, and gives it back when destroyed
// if it holds it then. CondVar waits with the caller's Mutex held, as REQUIRES(mu) says:
// the analysis cannot see that a predicate lambda runs under the lock, so wait in an
// explicit loop in the annotated function:
//
//   MutexLock lock(&mu_);
//   while (!done_) cv_.wait(&mu_);
//
// wait_for() and wait_until() return false once the time is up (std::cv_status::timeout);
// a wait with a deadline loops until its condition holds or wait_until() returns false.
// Waits may wake spuriously, as std::condition_variable's do.
//
// Thread-safety: safe for concurrent use without external synchronization (Mutex and
// CondVar are the synchronization); a MutexLock belongs to the thread that made it.
#ifndef KAPSL_SRC_CORE_MUTEX_H_
#define KAPSL_SRC_CORE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/thread_annotations.h"

namespace kapsl::internal {

class CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Tells the analysis that the caller holds the mutex, where it cannot see that (std::mutex
  // has no owner to check at run time, so this costs nothing and checks nothing).
  void assert_held() const ASSERT_CAPABILITY(this) {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->lock(); }
  ~MutexLock() RELEASE() {
    if (locked_) mu_->unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Releases the mutex for a while. REQUIRES: held by this guard.
  void unlock() RELEASE() {
    mu_->unlock();
    locked_ = false;
  }
  // Takes it again. REQUIRES: released by unlock().
  void lock() ACQUIRE() {
    mu_->lock();
    locked_ = true;
  }

 private:
  Mutex* const mu_;
  bool locked_ = true;
};

class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Releases `mu` while it waits for a notification (or a spurious wake-up) and holds it
  // again when it returns.
  void wait(Mutex* mu) REQUIRES(mu) {
    Adopted held(mu);
    cv_.wait(held.lock);
  }
  // As wait(), for at most `timeout`. False if the time ran out.
  template <class Rep, class Period>
  bool wait_for(Mutex* mu, const std::chrono::duration<Rep, Period>& timeout) REQUIRES(mu) {
    Adopted held(mu);
    return cv_.wait_for(held.lock, timeout) == std::cv_status::no_timeout;
  }
  // As wait(), until `deadline`. False if it has passed.
  template <class C, class D>
  bool wait_until(Mutex* mu, const std::chrono::time_point<C, D>& deadline) REQUIRES(mu) {
    Adopted held(mu);
    return cv_.wait_until(held.lock, deadline) == std::cv_status::no_timeout;
  }

  void notify_one() noexcept { cv_.notify_one(); }
  void notify_all() noexcept { cv_.notify_all(); }

 private:
  // The caller's locked mutex as the std::unique_lock std::condition_variable waits with;
  // released (not unlocked) afterwards, even if the wait throws, so the caller's MutexLock
  // keeps owning it.
  struct Adopted {
    explicit Adopted(Mutex* mu) : lock(mu->mu_, std::adopt_lock) {}
    ~Adopted() { lock.release(); }
    Adopted(const Adopted&) = delete;
    Adopted& operator=(const Adopted&) = delete;
    std::unique_lock<std::mutex> lock;
  };

  std::condition_variable cv_;
};

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_CORE_MUTEX_H_
