// `kapsl serve` with a backend registered by this test alone: ServerOptions::backends takes
// the registry, and the third backend's models are listed, loaded through the factory with
// fallback, described (with the load report) and run over KServe v2, with no edit to the
// server.
#include <gtest/gtest.h>

#include <httplib.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "kapsl/server.h"
#include "support/scale_backend.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

using nlohmann::json;

TEST(ServerBackendsTest, ThirdBackendIsServed) {
  testing::TempDir repo;
  std::ofstream(repo.path() / "triple.scale") << "3";
  std::filesystem::create_directories(repo.path() / "shifted");
  std::ofstream(repo.path() / "shifted" / "m.scale") << "2";
  std::ofstream(repo.path() / "shifted" / "metadata.json")
      << R"({"project_name":"shifted","format":"scale","version":"4","created_at":"","model_file":"m.scale",)"
         R"("hardware_requirements":{"preferred_provider":"fakegpu","fallback_providers":["cpu"]},)"
         R"("scale":{"offset":0.5}})";
  ServerOptions options;
  options.model_repository = repo.path().string();
  options.port = 0;
  options.log_requests = false;
  options.backends = testing::backends_with_scale();
  Server server(options);
  server.start();
  httplib::Client client("127.0.0.1", server.port());

  auto index = client.Post("/v2/repository/index", "{}", "application/json");
  ASSERT_TRUE(index);
  EXPECT_EQ(json::parse(index->body).size(), 2u);

  const std::string request =
      R"({"inputs":[{"name":"x","shape":[3],"datatype":"FP32","data":[1,2,3]}]})";
  auto infer = client.Post("/v2/models/triple/infer", request, "application/json");
  ASSERT_TRUE(infer);
  ASSERT_EQ(infer->status, 200) << infer->body;
  EXPECT_EQ(json::parse(infer->body)["outputs"][0]["data"], json::parse("[3.0, 6.0, 9.0]"));

  auto shifted = client.Post("/v2/models/shifted/infer", request, "application/json");
  ASSERT_TRUE(shifted);
  ASSERT_EQ(shifted->status, 200) << shifted->body;
  EXPECT_EQ(json::parse(shifted->body)["outputs"][0]["data"], json::parse("[2.5, 4.5, 6.5]"));

  auto metadata = client.Get("/v2/models/shifted");
  ASSERT_TRUE(metadata);
  const json m = json::parse(metadata->body);
  EXPECT_EQ(m["platform"], "kapsl_test_scale");
  EXPECT_EQ(m["versions"], json::parse(R"(["4"])"));
  EXPECT_EQ(m["load_report"]["backend"], "scale");
  EXPECT_EQ(m["load_report"]["provider"], "cpu");
  EXPECT_EQ(m["load_report"]["failures"][0]["provider"], "fakegpu");
  EXPECT_EQ(m["load_report"]["options"]["offset"], 0.5);

  // Not a text generator: the OpenAI routes say so instead of guessing.
  auto chat = client.Post("/v1/chat/completions", R"({"model":"triple","messages":[{"role":"user","content":"hi"}]})",
                          "application/json");
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->status, 400);
  EXPECT_NE(chat->body.find("does not generate text"), std::string::npos) << chat->body;
  server.shutdown();
}

}  // namespace
}  // namespace kapsl
