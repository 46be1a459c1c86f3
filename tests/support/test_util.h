// Helpers shared by the test suites: expected errors, temporary folders.
#ifndef KAPSL_TESTS_SUPPORT_TEST_UTIL_H_
#define KAPSL_TESTS_SUPPORT_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>

#include "kapsl/error.h"

namespace kapsl::testing {

// Runs `fn`, expects it to throw kapsl::Error with `code` and a message containing every
// one of `parts`.
inline void expect_error(const std::function<void()>& fn, ErrorCode code,
                         std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "expected Error(" << error_code_name(code) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.to_string();
    for (const std::string& p : parts) EXPECT_NE(e.message().find(p), std::string::npos) << "'" << p << "' not in: " << e.message();
  }
}

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("kapsl-test-" + std::to_string(rd()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_SUPPORT_TEST_UTIL_H_
