// A one-line progress bar on stderr, drawn only when stderr is a terminal, so piped and
// redirected output stays clean.
//
// Thread-safety: not thread-safe: one thread at a time.
#ifndef KAPSL_TOOLS_KAPSL_PROGRESS_H_
#define KAPSL_TOOLS_KAPSL_PROGRESS_H_

#include <chrono>
#include <string>

namespace kapsl::cli {

class ProgressBar {
 public:
  // Draws nothing unless `enabled` (use stderr_is_terminal()).
  ProgressBar(std::string label, bool enabled);
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  // Erases the bar.
  ~ProgressBar();

  // Redraws at `fraction` in [0, 1], at most every 50 ms (and always at 1).
  void update(double fraction);

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_;
};

bool stderr_is_terminal();

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_PROGRESS_H_
