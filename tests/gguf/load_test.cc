// Loading options, model facts and the vocab-only mode.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "kapsl/gguf_engine.h"
#include "test_models.h"

namespace kapsl {
namespace {

using kapsl::testing::code_of;

TEST(GgufLoadTest, ModelFactsFromMetadata) {
  auto engine = GgufEngine::load(testing::tiny_spm_model());
  const GgufModelInfo& info = engine->gguf_info();
  EXPECT_EQ(info.architecture, "llama");
  EXPECT_EQ(info.n_params, 4178240u);  // dependencies.md §4.1: 64 x 2 layers, 32000 tokens
  EXPECT_GT(info.size_bytes, 8'000'000u);
  EXPECT_EQ(info.n_ctx_train, 2048u);
  EXPECT_EQ(info.n_ctx, 2048u);  // min(trained 2048, 4096)
  EXPECT_EQ(info.n_vocab, 32000);
  EXPECT_EQ(info.n_embd, 64u);
  EXPECT_EQ(info.n_layer, 2u);
  EXPECT_EQ(info.bos_token, 1);
  EXPECT_EQ(info.eos_token, 2);
  EXPECT_NE(std::find(info.eog_tokens.begin(), info.eog_tokens.end(), 2), info.eog_tokens.end());
  EXPECT_FALSE(info.has_chat_template);
  const ModelInfo& mi = engine->model_info();
  EXPECT_EQ(mi.backend, "gguf");
  EXPECT_EQ(mi.name, "tiny-random-llama");
  EXPECT_EQ(mi.metadata.at("architecture"), "llama");
  EXPECT_EQ(mi.metadata.at("vocab_size"), "32000");
  EXPECT_EQ(mi.outputs.at(0).name, "text");
  // Weights plus a 2048-token F16 KV cache: 2 layers x 2048 x (K + V) x 64 x 2 bytes.
  EXPECT_EQ(engine->resident_bytes(), info.size_bytes + 2u * 2048u * 2u * 64u * 2u);
}

TEST(GgufLoadTest, OptionsShapeTheContextAndKvCache) {
  GgufOptions o;
  o.n_ctx = 256;
  o.n_parallel = 3;
  o.kv_cache_type = "f32";
  auto engine = GgufEngine::load(testing::tiny_spm_model(), o);
  EXPECT_EQ(engine->gguf_info().n_ctx, 256u);
  EXPECT_EQ(engine->resident_bytes(), engine->gguf_info().size_bytes + 3u * 2u * 256u * 2u * 64u * 4u);
}

TEST(GgufLoadTest, ChatTemplateFacts) {
  auto engine = GgufEngine::load(testing::tiny_phi3_model());
  EXPECT_TRUE(engine->gguf_info().has_chat_template);
  EXPECT_GE(engine->gguf_info().eog_tokens.size(), 2u);  // <|endoftext|>, <|end|>, ...
}

TEST(GgufLoadTest, BadOptionsNameTheField) {
  const auto expect_field = [](GgufOptions o, const std::string& field) {
    try {
      GgufEngine::load(testing::tiny_spm_model(), o);
      ADD_FAILURE() << field << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      EXPECT_NE(e.message().find(field), std::string::npos) << e.message();
    }
  };
  expect_field({.n_parallel = 0}, "n_parallel");
  expect_field({.n_batch = 64, .n_ubatch = 128}, "n_ubatch");
  expect_field({.n_parallel = 4, .n_batch = 2, .n_ubatch = 2}, "n_parallel");
  expect_field({.n_threads = -2}, "n_threads");
  expect_field({.flash_attention = "sometimes"}, "flash_attention");
  expect_field({.kv_cache_type = "f8"}, "kv_cache_type");
  expect_field({.flash_attention = "off", .kv_cache_type = "q8_0"}, "kv_cache_type");
}

TEST(GgufLoadTest, ProgressIsReportedAndCanAbort) {
  std::atomic<float> last{-1};
  GgufOptions o;
  o.progress = [&](float p) {
    last = p;
    return true;
  };
  GgufEngine::load(testing::tiny_spm_model(), o);
  EXPECT_FLOAT_EQ(last.load(), 1.0f);
  o.progress = [](float) { return false; };
  EXPECT_EQ(code_of([&] { GgufEngine::load(testing::tiny_spm_model(), o); }), ErrorCode::kCancelled);
  o.progress = [](float) -> bool { throw std::runtime_error("callback failure"); };
  EXPECT_EQ(code_of([&] { GgufEngine::load(testing::tiny_spm_model(), o); }), ErrorCode::kCancelled);
}

TEST(GgufLoadTest, VocabOnlyTokenizesButCannotGenerate) {
  auto engine = GgufEngine::load(testing::llama_vocab_dir() + "/ggml-vocab-llama-spm.gguf", {.vocab_only = true});
  EXPECT_EQ(engine->tokenize("Hello, my name is"), (std::vector<int32_t>{1, 15043, 29892, 590, 1024, 338}));
  EXPECT_EQ(code_of([&] { engine->generate("Hello"); }), ErrorCode::kUnavailable);
}

TEST(GgufLoadTest, WarmupRunsOneRequestAndTheEngineIsHealthy) {
  auto engine = GgufEngine::load(testing::tiny_spm_model(), {.n_ctx = 128, .n_threads = 1});
  EXPECT_TRUE(engine->health_check().ok);
  engine->warmup();
  const auto m = engine->metrics();
  EXPECT_EQ(m.requests, 1u);
  EXPECT_EQ(m.generated_tokens, 1u);
  EXPECT_EQ(m.failures, 0u);
}

TEST(GgufLoadTest, LlamaVersion) {
  const std::string v = GgufEngine::llama_version();
  EXPECT_EQ(v.rfind("v0.5.0 (ggml ", 0), 0u) << v;
}

}  // namespace
}  // namespace kapsl
