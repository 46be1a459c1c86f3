// Admission: per-model concurrency, the bounded queue, queue timeouts and close(); and the
// constant-time API key comparison.
#include "server/request_admission.h"

#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "kapsl/error.h"
#include "server/http_util.h"

namespace kapsl::server {
namespace {

using namespace std::chrono_literals;

ErrorCode admit_error(Admission& a, const std::string& model, const AdmissionLimits& limits) {
  try {
    a.admit(model, limits);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kBackend;  // admitted
}

TEST(AdmissionTest, FullQueueIsRefusedAtOnce) {
  Admission a;
  const AdmissionLimits limits{1, 0, 10s};
  auto t = a.admit("m", limits);
  EXPECT_EQ(a.counts("m").running, 1u);
  EXPECT_EQ(admit_error(a, "m", limits), ErrorCode::kOverloaded);
  auto other = a.admit("other", limits);  // limits are per model
  t.release();
  auto again = a.admit("m", limits);
  EXPECT_EQ(a.counts("m").running, 1u);
}

TEST(AdmissionTest, QueuedRequestRunsWhenATurnFrees) {
  Admission a;
  const AdmissionLimits limits{1, 1, 10s};
  auto first = a.admit("m", limits);
  auto waiter = std::async(std::launch::async, [&] { return a.admit("m", limits); });
  while (a.counts("m").waiting == 0) std::this_thread::yield();
  EXPECT_EQ(admit_error(a, "m", limits), ErrorCode::kOverloaded);  // the one queue place is taken
  first.release();
  auto second = waiter.get();
  EXPECT_EQ(a.counts("m").running, 1u);
  EXPECT_EQ(a.counts("m").waiting, 0u);
}

TEST(AdmissionTest, QueueTimeoutIsOverloaded) {
  Admission a;
  const AdmissionLimits limits{1, 4, 1ms};
  auto first = a.admit("m", limits);
  EXPECT_EQ(admit_error(a, "m", limits), ErrorCode::kOverloaded);
  EXPECT_EQ(a.counts("m").waiting, 0u);
}

TEST(AdmissionTest, CloseWakesWaitersAndRefusesNewcomers) {
  Admission a;
  const AdmissionLimits limits{1, 4, 60s};
  auto first = a.admit("m", limits);
  auto waiter = std::async(std::launch::async, [&] { return admit_error(a, "m", limits); });
  while (a.counts("m").waiting == 0) std::this_thread::yield();
  a.close();
  EXPECT_EQ(waiter.get(), ErrorCode::kUnavailable);
  EXPECT_EQ(admit_error(a, "n", limits), ErrorCode::kUnavailable);
}

TEST(AdmissionTest, EachModelHasItsOwnLimits) {
  Admission a;
  const AdmissionLimits one{1, 0, 10s}, two{2, 0, 10s};
  auto m1 = a.admit("m", one);
  EXPECT_EQ(admit_error(a, "m", one), ErrorCode::kOverloaded);
  auto big1 = a.admit("big", two);
  auto big2 = a.admit("big", two);
  EXPECT_EQ(admit_error(a, "big", two), ErrorCode::kOverloaded);
  EXPECT_EQ(a.counts("big").running, 2u);
  // New limits apply from the next call: "m" may now run two.
  auto m2 = a.admit("m", two);
  EXPECT_EQ(a.counts("m").running, 2u);
}

TEST(AuthTest, ConstantTimeEquals) {
  EXPECT_TRUE(constant_time_equals("secret", "secret"));
  EXPECT_FALSE(constant_time_equals("secret", "secreT"));
  EXPECT_FALSE(constant_time_equals("secret", "secret2"));
  EXPECT_FALSE(constant_time_equals("", "x"));
  EXPECT_TRUE(constant_time_equals("", ""));
}

TEST(HttpUtilTest, StatusMapping) {
  EXPECT_EQ(status_for(ErrorCode::kOverloaded, ApiStyle::kKServe), 503);
  EXPECT_EQ(status_for(ErrorCode::kOverloaded, ApiStyle::kOpenAi), 429);
  EXPECT_EQ(status_for(ErrorCode::kInvalidInput, ApiStyle::kOpenAi), 400);
  EXPECT_EQ(status_for(ErrorCode::kNotFound, ApiStyle::kKServe), 404);
  EXPECT_EQ(style_for_path("/v1/chat/completions"), ApiStyle::kOpenAi);
  EXPECT_EQ(style_for_path("/v2/models/x"), ApiStyle::kKServe);
}

}  // namespace
}  // namespace kapsl::server
