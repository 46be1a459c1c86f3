// How llama.cpp's own log lines reach kapsl's "backends" logger: levels mapped, and the
// lines of a decode held back until its return code says whether they are errors (an
// aborted decode — its requests were cancelled — is not a backend error).
#include <gtest/gtest.h>

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

#include "core/backend_log.h"
#include "gguf/llama_backend.h"
#include "llama.h"

namespace kapsl::gguf {
namespace {

class LlamaLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ensure_llama_backend();
    logger_ = &internal::backend_logger();
    saved_level_ = logger_->level();
    logger_->set_level(spdlog::level::trace);
    logger_->sinks().push_back(sink_);
  }
  void TearDown() override {
    logger_->sinks().pop_back();
    logger_->set_level(saved_level_);
  }
  static void llama_logs(ggml_log_level level, const char* text) { log_as_llama(level, text); }
  // The captured lines as "level: text".
  std::vector<std::string> lines() {
    std::vector<std::string> out;
    for (const auto& m : sink_->last_raw()) {
      out.push_back(std::string(spdlog::level::to_string_view(m.level).data()) + ": " +
                    std::string(m.payload.data(), m.payload.size()));
    }
    return out;
  }

  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  spdlog::logger* logger_ = nullptr;
  spdlog::level::level_enum saved_level_ = spdlog::level::info;
};

TEST_F(LlamaLogTest, LevelsAreMappedAndInfoIsDebug) {
  llama_logs(GGML_LOG_LEVEL_ERROR, "bad thing\n");
  llama_logs(GGML_LOG_LEVEL_WARN, "odd thing\n");
  llama_logs(GGML_LOG_LEVEL_INFO, "loading\n");
  EXPECT_EQ(lines(), (std::vector<std::string>{"error: llama.cpp: bad thing", "warning: llama.cpp: odd thing",
                                               "debug: llama.cpp: loading"}));
}

TEST_F(LlamaLogTest, AnAbortedDecodeLogsItsFailureAtDebug) {
  {
    DeferredDecodeLog log;
    llama_logs(GGML_LOG_LEVEL_ERROR, "graph_compute: failed with error 1\n");
    llama_logs(GGML_LOG_LEVEL_WARN, "decode: removing memory module entries\n");
    EXPECT_TRUE(lines().empty());  // held until the outcome is known
    log.finish(2);
  }
  EXPECT_EQ(lines(), (std::vector<std::string>{"debug: llama.cpp: graph_compute: failed with error 1",
                                               "debug: llama.cpp: decode: removing memory module entries"}));
}

TEST_F(LlamaLogTest, AFailedDecodeLogsItsErrorsAsErrors) {
  {
    DeferredDecodeLog log;
    llama_logs(GGML_LOG_LEVEL_ERROR, "failed to compute graph\n");
    log.finish(-3);
  }
  {
    DeferredDecodeLog log;  // finish() not called: the lines are logged at their level
    llama_logs(GGML_LOG_LEVEL_WARN, "something\n");
  }
  llama_logs(GGML_LOG_LEVEL_ERROR, "after the scope\n");  // no longer held
  EXPECT_EQ(lines(), (std::vector<std::string>{"error: llama.cpp: failed to compute graph",
                                               "warning: llama.cpp: something", "error: llama.cpp: after the scope"}));
}

}  // namespace
}  // namespace kapsl::gguf
