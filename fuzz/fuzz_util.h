// What the fuzz targets share: the contract they check, quiet loggers, and scratch files
// for the parsers that read from a path.
//
// The contract: a parser given any bytes either succeeds or throws kapsl::Error (which the
// server turns into a 4xx and the CLI into a one-line message). Any other exception, a
// crash, a leak, a sanitizer report or a timeout escapes to libFuzzer, which saves the
// input as a crash.
//
// Thread-safety: libFuzzer runs one input at a time per process; so do these helpers.
#ifndef KAPSL_FUZZ_FUZZ_UTIL_H_
#define KAPSL_FUZZ_FUZZ_UTIL_H_

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "kapsl/error.h"

namespace kapsl::fuzz {

// With KAPSL_FUZZ_VERBOSE set, prints "accepted" or "refused: <message>" for each input
// (to see what a seed or a crash input does); otherwise does nothing.
void report(const kapsl::Error* refused);

// Runs `parse`; a kapsl::Error is the expected answer to bad input, anything else escapes.
template <class F>
void expect_clean(F&& parse) {
  try {
    parse();
    report(nullptr);
  } catch (const kapsl::Error& e) {
    report(&e);
  }
}

// Every target's LLVMFuzzerInitialize (defined once, in fuzz_util.cc, linked into each
// target with report()): turns off kapsl's and the backends' log lines, since parsers that
// log their refusals would spend the run writing to stderr.
void quiet_logs();

// A directory of this process's own — under /dev/shm where it exists, so that an execution
// writes no disk — created on first use and removed at exit.
const std::filesystem::path& scratch_dir();

// Writes the input to scratch_dir()/name (replacing it) and returns the path.
std::filesystem::path write_scratch(std::string_view name, const uint8_t* data, size_t size);

}  // namespace kapsl::fuzz

#endif  // KAPSL_FUZZ_FUZZ_UTIL_H_
