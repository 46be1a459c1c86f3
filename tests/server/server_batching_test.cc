// Dynamic batching through `kapsl serve`: concurrent KServe requests to a model whose
// manifest asks for batching share one execution, each gets its own rows back, and the
// metrics count requests and executions apart. The batch is deterministic: a long
// max_queue_delay and exactly max_batch_size concurrent requests.
#include <gtest/gtest.h>

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <future>

#include <nlohmann/json.hpp>

#include "kapsl/server.h"
#include "onnx/test_models.h"
#include "support/test_util.h"

namespace kapsl {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

class ServerBatchingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(repo_.path() / "mm");
    testing::write_file((repo_.path() / "mm" / "model.onnx").string(), testing::matmul_relu_model(4));
    std::ofstream(repo_.path() / "mm" / "metadata.json") << R"({
      "project_name": "mm", "format": "onnx", "version": "1", "created_at": "", "model_file": "model.onnx",
      "serving": {"max_concurrency": 1, "dynamic_batching": {"max_batch_size": 4, "max_queue_delay": "30s"}}})";
    testing::write_file((repo_.path() / "plain.onnx").string(), testing::matmul_relu_model(4));
    testing::write_file((repo_.path() / "fixed" / "model.onnx").string(),
                        testing::identity_model(::onnx::TensorProto::FLOAT, {2, 2}));
    std::ofstream(repo_.path() / "fixed" / "metadata.json") << R"({
      "project_name": "fixed", "format": "onnx", "version": "1", "created_at": "", "model_file": "model.onnx",
      "serving": {"dynamic_batching": {"max_batch_size": 4}}})";
    ServerOptions options;
    options.model_repository = repo_.path().string();
    options.port = 0;
    options.log_requests = false;
    server_ = std::make_unique<Server>(options);
    server_->start();
  }

  json infer(const std::string& model, float v) {
    httplib::Client client("127.0.0.1", server_->port());
    client.set_read_timeout(60s);
    const json body = {{"inputs", {{{"name", "x"}, {"shape", {1, 4}}, {"datatype", "FP32"}, {"data", {v, -v, 2 * v, 1}}}}}};
    const auto res = client.Post("/v2/models/" + model + "/infer", body.dump(), "application/json");
    if (!res || res->status != 200) return {{"error", res ? res->body : httplib::to_string(res.error())}};
    return json::parse(res->body);
  }

  std::string metrics() {
    httplib::Client client("127.0.0.1", server_->port());
    return client.Get("/metrics")->body;
  }

  testing::TempDir repo_;
  std::unique_ptr<Server> server_;
};

bool has_line(const std::string& text, const std::string& line) { return text.find("\n" + line + "\n") != std::string::npos; }

TEST_F(ServerBatchingTest, ConcurrentRequestsShareOneExecutionAndGetTheirOwnRows) {
  std::vector<std::future<json>> calls;
  for (int i = 0; i < 4; ++i) calls.push_back(std::async(std::launch::async, [this, i] { return infer("mm", float(i + 1)); }));
  for (int i = 0; i < 4; ++i) {
    const json batched = calls[static_cast<size_t>(i)].get();
    ASSERT_TRUE(batched.contains("outputs")) << batched.dump();
    // The same weights unbatched (a second copy of the model without a manifest).
    const json alone = infer("plain", float(i + 1));
    ASSERT_TRUE(alone.contains("outputs")) << alone.dump();
    EXPECT_EQ(batched["outputs"][0]["data"], alone["outputs"][0]["data"]) << "request " << i;
  }
  const std::string m = metrics();
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_requests_total{model="mm",outcome="success"} 4)")) << m;
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_executions_total{model="mm"} 1)"));
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_batch_size_bucket{model="mm",le="2"} 0)"));
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_batch_size_bucket{model="mm",le="4"} 1)"));
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_batch_size_sum{model="mm"} 4)"));
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_compute_infer_duration_seconds_count{model="mm"} 4)"));
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_executions_total{model="plain"} 4)"));
  EXPECT_TRUE(has_line(m, R"(kapsl_inference_batch_size_sum{model="plain"} 4)"));

  httplib::Client client("127.0.0.1", server_->port());
  const json meta = json::parse(client.Get("/v2/models/mm")->body);
  const std::string notes = meta["load_report"]["notes"].dump();
  EXPECT_NE(notes.find("dynamic batching: up to 4 rows"), std::string::npos) << meta.dump();
}

TEST_F(ServerBatchingTest, AModelWithoutABatchDimensionIsServedUnbatchedAndSaysWhy) {
  httplib::Client client("127.0.0.1", server_->port());
  const auto res = client.Post("/v2/models/fixed/infer",
                               R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3,4]}]})",
                               "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  const json meta = json::parse(client.Get("/v2/models/fixed")->body);
  EXPECT_NE(meta["load_report"]["notes"].dump().find("dynamic batching off: input 'x' has shape [2, 2]"), std::string::npos)
      << meta.dump();
}

}  // namespace
}  // namespace kapsl
