// The CLI's code path with a backend registered by this test alone: run_cli() takes the
// registry, and `kapsl run`, `info` and `version` use the third backend without any edit to
// the CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "support/scale_backend.h"
#include "support/test_util.h"

namespace kapsl::cli {
namespace {

using ::testing::HasSubstr;

struct Captured {
  int code = -1;
  std::string out;
};

Captured run(std::vector<std::string> args) {
  args.insert(args.begin(), "kapsl");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  ::testing::internal::CaptureStdout();
  Captured c;
  c.code = run_cli(static_cast<int>(argv.size()), argv.data(), kapsl::testing::backends_with_scale());
  c.out = ::testing::internal::GetCapturedStdout();
  return c;
}

TEST(CliBackendsTest, ThirdBackendRunsThroughTheCli) {
  kapsl::testing::TempDir dir;
  const std::string model = (dir.path() / "triple.scale").string();
  std::ofstream(model) << "3";
  const Captured version = run({"version"});
  EXPECT_EQ(version.code, 0);
  EXPECT_THAT(version.out, HasSubstr("scale        scale 1.0 (test backend) (providers: fakegpu, cpu)"));
  const Captured r = run({"run", model, "--fill", "ones", "--json"});
  ASSERT_EQ(r.code, 0);
  EXPECT_EQ(nlohmann::json::parse(r.out)["outputs"][0]["data"][0], 3.0);
  const Captured info = run({"info", "--json", model, "--provider", "fakegpu"});
  ASSERT_EQ(info.code, 0);
  const auto j = nlohmann::json::parse(info.out);
  EXPECT_EQ(j["backend"], "scale");
  EXPECT_EQ(j["load_report"]["provider"], "cpu");
  EXPECT_EQ(j["load_report"]["failures"][0]["provider"], "fakegpu");
  EXPECT_EQ(run({"generate", model, "-p", "hi"}).code, 1);  // not a text generator
}

}  // namespace
}  // namespace kapsl::cli
