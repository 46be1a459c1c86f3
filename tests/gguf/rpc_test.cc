// GgufOptions::rpc_workers on loopback: a worker in a child process (serve_rpc_worker) takes
// some of tiny-spm's layers, placement says which, and llama.cpp's own load log agrees;
// workers that refuse, hang up or never answer fail the load's check with kUnavailable, and
// one killed mid-generation fails the engine (requests and health) until it is loaded again.
// Across real network hops: rpc_split_netns.py.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/backend_log.h"
#include "gguf/llama_backend.h"
#include "gguf/rpc_client.h"
#include "kapsl/error.h"
#include "kapsl/gguf_engine.h"
#include "kapsl/rpc_worker.h"
#include "test_models.h"

namespace kapsl::gguf {
namespace {

using std::chrono::milliseconds;

// A loopback TCP socket: listening (connections wait in its backlog, never answered) or,
// when closed, a port where nothing listens.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(bool listen) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    if (listen) ::listen(fd_, 4);
  }
  ~LoopbackSocket() { close(); }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }
  RpcEndpoint endpoint() const { return {"127.0.0.1", port_}; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// serve_rpc_worker in a child process on a free loopback port, killed on destruction.
class WorkerProcess {
 public:
  WorkerProcess() {
    LoopbackSocket probe(false);
    endpoint_ = probe.endpoint();
    probe.close();
    start();
  }
  ~WorkerProcess() { kill(); }
  std::string endpoint() const { return endpoint_.text(); }

  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  // On the same port: the worker is back.
  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test that dies must not leave its worker behind
      const int null = open("/dev/null", O_WRONLY);  // ggml's server prints each connection
      dup2(null, STDOUT_FILENO);
      RpcWorkerOptions o;
      o.port = endpoint_.port;
      o.n_threads = 1;
      try {
        serve_rpc_worker(o);
      } catch (...) {
      }
      _exit(1);
    }
    for (int i = 0; i < 300; ++i) {
      try {
        check_rpc_worker(endpoint_, milliseconds(1000));
        return;
      } catch (const Error&) {
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
    ADD_FAILURE() << "the worker did not answer";
  }

 private:
  RpcEndpoint endpoint_;
  pid_t pid_ = -1;
};

GenerationOptions greedy(uint32_t n) { return testing::greedy_ignoring_eos(n); }

void expect_unavailable(const RpcEndpoint& worker, const std::string& why) {
  try {
    check_rpc_worker(worker, milliseconds(300));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable);
    EXPECT_NE(std::string(e.what()).find(worker.text()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << e.what();
  }
}

TEST(RpcEndpointTest, ParsesHostAndPort) {
  const RpcEndpoint e = parse_rpc_endpoint("10.0.0.2:50052");
  EXPECT_EQ(e.host, "10.0.0.2");
  EXPECT_EQ(e.port, 50052);
  EXPECT_EQ(parse_rpc_endpoint("worker-1:1").text(), "worker-1:1");
  for (const char* bad : {"10.0.0.2", ":50052", "10.0.0.2:", "h:0", "h:65536", "h:12a", "h:-1", "h:0000050052"}) {
    EXPECT_THROW(parse_rpc_endpoint(bad), Error) << bad;
  }
}

TEST(RpcEndpointTest, WorkersThatCannotServeFailTheCheck) {
  LoopbackSocket nothing(false);
  const RpcEndpoint refused = nothing.endpoint();
  nothing.close();
  expect_unavailable(refused, "refused");
  LoopbackSocket silent(true);  // connects (the backlog), never answers
  expect_unavailable(silent.endpoint(), "within the timeout");
  LoopbackSocket hangs_up(true);
  std::thread closer([&] { ::close(::accept(hangs_up.fd(), nullptr, nullptr)); });
  expect_unavailable(hangs_up.endpoint(), "");  // closed, or reset: the handshake was unread
  closer.join();
}

TEST(LayerPlacementTest, MirrorsLlamaCppsSplit) {
  // 4 layers + output over two equal devices: [0, 2.5) and [2.5, 5) of the 5.
  auto p = layer_placement(4, -1, {1, 1}, {"RPC0", "RPC1"}, {"a:1", "b:2"});
  EXPECT_EQ(describe_placement(p), "CPU: input; RPC0 (a:1): layers 0-2; RPC1 (b:2): layer 3, output");
  // Only the last 3 (two layers and the output) offloaded.
  p = layer_placement(4, 3, {1, 3}, {"RPC0", "CUDA0"}, {"a:1", ""});
  EXPECT_EQ(describe_placement(p), "CPU: input, layers 0-1; RPC0 (a:1): layer 2; CUDA0: layer 3, output");
  EXPECT_EQ(describe_placement(layer_placement(2, 0, {}, {}, {})), "CPU: input, layers 0-1, output");
}

class RpcSplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_llama_backend();
    logger_ = &internal::backend_logger();
    saved_level_ = logger_->level();
  }
  void TearDown() override { logger_->set_level(saved_level_); }

  // The devices llama.cpp's load log says it put layers on: "layer   0 assigned to device RPC0".
  std::vector<std::string> assigned_devices(const std::function<void()>& load) {
    auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(4096);
    std::vector<spdlog::level::level_enum> sink_levels;
    for (auto& s : logger_->sinks()) {  // the console keeps showing what it showed
      sink_levels.push_back(s->level());
      s->set_level(std::max(s->level(), saved_level_));
    }
    logger_->set_level(spdlog::level::trace);
    logger_->sinks().push_back(sink);
    load();
    logger_->sinks().pop_back();
    logger_->set_level(saved_level_);
    for (size_t i = 0; i < sink_levels.size(); ++i) logger_->sinks()[i]->set_level(sink_levels[i]);
    std::vector<std::string> out;
    for (const auto& line : sink->last_formatted()) {
      const auto at = line.find("assigned to device ");
      if (at == std::string::npos) continue;
      const auto name = line.substr(at + 19);
      out.push_back(name.substr(0, name.find(',')));
    }
    return out;
  }

  spdlog::logger* logger_ = nullptr;
  spdlog::level::level_enum saved_level_ = spdlog::level::info;
};

TEST_F(RpcSplitTest, AWorkerTakesTheLastLayersAndGenerationIsUnchanged) {
  GgufOptions local;
  local.n_threads = 1;
  auto engine = GgufEngine::load(testing::tiny_spm_model(), local);
  const GenerateResult expected = engine->generate("The quick brown fox", greedy(24));
  engine.reset();

  WorkerProcess worker;
  GgufOptions split = local;
  split.rpc_workers = {worker.endpoint()};
  split.n_gpu_layers = 2;  // layer 1 and the output
  std::vector<std::string> devices = assigned_devices([&] { engine = GgufEngine::load(testing::tiny_spm_model(), split); });
  const std::string rpc = engine->gguf_info().placement.back().device;
  EXPECT_EQ(describe_placement(engine->gguf_info().placement),
            "CPU: input, layer 0; " + rpc + " (" + worker.endpoint() + "): layer 1, output");
  EXPECT_EQ(devices, (std::vector<std::string>{"CPU", rpc, rpc})) << "llama.cpp's own assignment of layers 0, 1, output";
  EXPECT_EQ(engine->model_info().metadata.at("placement"), describe_placement(engine->gguf_info().placement));
  EXPECT_EQ(engine->generate("The quick brown fox", greedy(24)).tokens, expected.tokens);
  engine.reset();  // before the worker goes: freeing remote buffers needs it
}

void expect_worker_lost(const std::function<void()>& call, const std::string& worker) {
  try {
    call();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find(worker), std::string::npos) << e.what();
  }
}

TEST_F(RpcSplitTest, ALostWorkerFailsTheEngineUntilItIsLoadedAgain) {
  GgufOptions o;
  o.n_threads = 1;
  auto engine = GgufEngine::load(testing::tiny_spm_model(), o);
  const GenerateResult expected = engine->generate("The quick brown fox", greedy(24));
  WorkerProcess worker;
  o.rpc_workers = {worker.endpoint()};
  engine = GgufEngine::load(testing::tiny_spm_model(), o);
  EXPECT_TRUE(engine->health_check().ok);
  int chunks = 0;
  const auto kill_on_third = [&](const StreamChunk&) {
    if (++chunks == 3) worker.kill();
    return true;
  };
  expect_worker_lost([&] { engine->generate("The quick brown fox", greedy(2000), kill_on_third); }, worker.endpoint());
  EXPECT_LT(chunks, 10) << "the generation ends at the first decode after the loss";
  const Health health = engine->health_check();
  EXPECT_FALSE(health.ok);
  EXPECT_NE(health.reason.find(worker.endpoint()), std::string::npos) << health.reason;
  expect_worker_lost([&] { engine->generate("Hello", greedy(4)); }, worker.endpoint());
  engine.reset();  // frees what lived on the worker without it: no abort, no hang
  expect_worker_lost([&] { GgufEngine::load(testing::tiny_spm_model(), o); }, worker.endpoint());  // still down
  worker.start();
  engine = GgufEngine::load(testing::tiny_spm_model(), o);
  EXPECT_TRUE(engine->health_check().ok);
  EXPECT_EQ(engine->generate("The quick brown fox", greedy(24)).tokens, expected.tokens);
  engine.reset();
}

TEST_F(RpcSplitTest, ASplitThatDoesNotFitTheDevicesIsRefused) {
  WorkerProcess worker;
  GgufOptions o;
  o.n_threads = 1;
  o.rpc_workers = {worker.endpoint()};
  o.tensor_split = {1, 1};  // one worker device, two shares
  try {
    GgufEngine::load(testing::tiny_spm_model(), o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("tensor_split"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kapsl::gguf
