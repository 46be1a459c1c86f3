// Running an external command with a hard timeout, for device probes (nvidia-smi,
// rocm-smi). The command never blocks its caller past the timeout: on expiry its whole
// process group is killed and reaped.
#ifndef KAPSL_SRC_DEVICES_SUBPROCESS_H_
#define KAPSL_SRC_DEVICES_SUBPROCESS_H_

#include <chrono>
#include <string>
#include <vector>

namespace kapsl::internal {

struct CommandResult {
  bool started = false;    // false: the program was not found or could not be executed
  bool timed_out = false;  // killed after the timeout
  int exit_code = -1;      // the exit status when it exited normally, else -1
  std::string output;      // stdout (stderr is discarded), at most max_output bytes
  std::string error;       // why it did not start or did not finish, for notes

  bool ok() const { return started && !timed_out && exit_code == 0; }
};

// Runs argv[0] (searched in PATH) with the given arguments, stdin from /dev/null.
// Never throws except std::bad_alloc.
CommandResult run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                          size_t max_output = 1 << 20);

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_DEVICES_SUBPROCESS_H_
