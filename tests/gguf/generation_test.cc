// Text generation: golden output against llama.cpp's C API, sampling, every stop
// condition, streaming, cancellation, deadlines, context limits and the Engine path.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gguf/sampling.h"
#include "gguf/utf8.h"
#include "kapsl/gguf_engine.h"
#include "llama-cpp.h"
#include "test_models.h"

namespace kapsl {
namespace {

using std::chrono::milliseconds;

constexpr int32_t kSpmBos = 1, kSpmEos = 2;
// SPM byte-fallback tokens: <0x00> is id 3, so byte b is 3 + b.
constexpr int32_t byte_token(uint8_t b) { return 3 + b; }

using kapsl::testing::code_of;

GenerationOptions greedy(uint32_t max_new_tokens) {
  GenerationOptions o;
  o.temperature = 0;
  o.max_new_tokens = max_new_tokens;
  return o;
}

// llama.cpp's reference loop (as llama-simple): greedy sampling, one decode per token.
std::vector<int32_t> reference_greedy(const std::string& path, const std::string& prompt, int n_new) {
  llama_backend_init();
  llama_model_ptr model(llama_model_load_from_file(path.c_str(), llama_model_default_params()));
  EXPECT_TRUE(model);
  const llama_vocab* vocab = llama_model_get_vocab(model.get());
  std::vector<llama_token> tokens(prompt.size() + 8);
  const int n = llama_tokenize(vocab, prompt.c_str(), static_cast<int32_t>(prompt.size()), tokens.data(),
                               static_cast<int32_t>(tokens.size()), true, true);
  EXPECT_GT(n, 0);
  tokens.resize(static_cast<size_t>(n));
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_threads = cp.n_threads_batch = 1;
  llama_context_ptr ctx(llama_init_from_model(model.get(), cp));
  llama_sampler_ptr sampler(llama_sampler_chain_init(llama_sampler_chain_default_params()));
  llama_sampler_chain_add(sampler.get(), llama_sampler_init_greedy());
  std::vector<int32_t> out;
  llama_batch batch = llama_batch_get_one(tokens.data(), static_cast<int32_t>(tokens.size()));
  for (int i = 0; i < n_new; ++i) {
    EXPECT_EQ(llama_decode(ctx.get(), batch), 0);
    llama_token t = llama_sampler_sample(sampler.get(), ctx.get(), -1);
    out.push_back(t);
    if (llama_vocab_is_eog(vocab, t)) break;
    tokens.assign(1, t);
    batch = llama_batch_get_one(tokens.data(), 1);
  }
  return out;
}

class GgufGenerationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GgufOptions o;
    o.n_ctx = 512;
    o.n_threads = 1;  // as the reference; one thread also keeps tests fast on a loaded machine
    engine_ = GgufEngine::load(testing::tiny_spm_model(), o);
  }
  static void TearDownTestSuite() { engine_.reset(); }
  // One engine for the suite: loading is the slow part, and reuse across tests also
  // exercises the slot's KV cache reuse.
  static std::unique_ptr<GgufEngine> engine_;
};
std::unique_ptr<GgufEngine> GgufGenerationTest::engine_;

TEST_F(GgufGenerationTest, GreedyMatchesLlamaCppTokenForToken) {
  const std::string prompt = "Hello, my name is";
  const auto expected = reference_greedy(testing::tiny_spm_model(), prompt, 32);
  ASSERT_FALSE(expected.empty());
  GenerationOptions o = greedy(32);
  const GenerateResult r = engine_->generate(prompt, o);
  EXPECT_EQ(r.tokens, expected);
  EXPECT_EQ(r.usage.prompt_tokens, 6u);
}

TEST_F(GgufGenerationTest, GreedyShortcutEqualsTheSamplerChain) {
  // Plain greedy requests take the argmax of the logits without llama.cpp's sampler chain;
  // a zero logit bias forces the chain (logit bias, then greedy) on the same logits.
  const GenerationOptions plain = greedy(24);
  GenerationOptions chained = plain;
  chained.logit_bias = {{7, 0.0f}};
  EXPECT_EQ(engine_->generate("Once upon a time", chained).tokens, engine_->generate("Once upon a time", plain).tokens);
}

TEST(GgufArgmaxTest, PicksWhatLlamaCppsGreedySamplerPicks) {
  // llama.cpp's greedy sampler: the first strictly greater logit wins.
  const auto reference = [](const std::vector<float>& v) {
    int32_t best = 0;
    for (int32_t i = 1; i < static_cast<int32_t>(v.size()); ++i) {
      if (v[static_cast<size_t>(i)] > v[static_cast<size_t>(best)]) best = i;
    }
    return best;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::mt19937 rng(3);
  for (const size_t n : {1u, 2u, 7u, 8u, 9u, 17u, 100u, 32000u}) {
    for (int trial = 0; trial < 50; ++trial) {
      std::vector<float> v(n);
      for (auto& x : v) x = static_cast<float>(rng() % 5);  // many ties
      if (trial % 5 == 1) v[rng() % n] = nan;
      if (trial % 5 == 2) v[0] = nan;
      if (trial % 5 == 3) v[rng() % n] = inf;
      if (trial % 5 == 4) v[rng() % n] = -0.0f;
      EXPECT_EQ(gguf::argmax_token(v.data(), static_cast<int32_t>(n)), reference(v)) << "n " << n << " trial " << trial;
    }
  }
}

TEST_F(GgufGenerationTest, TokenPromptEqualsTextPrompt) {
  const auto from_text = engine_->generate("Hello, my name is", greedy(16));
  GenerateRequest req;
  req.prompt = std::vector<int32_t>{kSpmBos, 15043, 29892, 590, 1024, 338};
  req.options = greedy(16);
  EXPECT_EQ(engine_->generate(req).tokens, from_text.tokens);
}

TEST_F(GgufGenerationTest, KvCacheReuseDoesNotChangeOutput) {
  const auto first = engine_->generate("The quick brown fox", greedy(12));
  engine_->generate("The quick brown cat jumps", greedy(5));  // shares a prefix
  EXPECT_EQ(engine_->generate("The quick brown fox", greedy(12)).tokens, first.tokens);
  EXPECT_EQ(engine_->generate("The quick brown fox", greedy(12)).tokens, first.tokens);  // full-prefix hit
}

TEST_F(GgufGenerationTest, PromptLongerThanBatchIsDecodedInChunks) {
  GgufOptions o;
  o.n_ctx = 512;
  o.n_batch = 16;
  o.n_ubatch = 16;
  o.n_threads = 1;
  auto small_batch = GgufEngine::load(testing::tiny_spm_model(), o);
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "word" + std::to_string(i) + " ";
  const auto r = small_batch->generate(prompt, greedy(4));
  EXPECT_GT(r.usage.prompt_tokens, 100u);
  EXPECT_EQ(r.usage.completion_tokens, 4u);
}

TEST_F(GgufGenerationTest, SameSeedSameOutputDifferentSeedDifferentOutput) {
  GenerationOptions o;
  o.temperature = 1.5f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.min_p = 0.0f;
  o.max_new_tokens = 24;
  o.ignore_eos = true;
  o.seed = 1234;
  const auto a = engine_->generate("Once upon a time", o);
  const auto b = engine_->generate("Once upon a time", o);
  EXPECT_EQ(a.tokens, b.tokens);
  o.seed = 4321;
  EXPECT_NE(engine_->generate("Once upon a time", o).tokens, a.tokens);
}

TEST_F(GgufGenerationTest, SamplingOptionsAreApplied) {
  GenerationOptions o;
  o.temperature = 0.9f;
  o.top_k = 1;  // top-k 1 is greedy whatever the temperature
  o.max_new_tokens = 12;
  o.seed = 5;
  EXPECT_EQ(engine_->generate("Once upon a time", o).tokens, engine_->generate("Once upon a time", greedy(12)).tokens);
  // A strong repetition penalty over the whole window forbids repeating any token.
  GenerationOptions p = greedy(20);
  p.ignore_eos = true;
  p.repetition_penalty = 1e6f;
  p.penalty_last_n = -1;
  const auto r = engine_->generate("a", p);
  std::vector<int32_t> sorted = r.tokens;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
}

size_t repeated_trigrams(const std::vector<int32_t>& t) {
  std::set<std::vector<int32_t>> seen;
  size_t repeats = 0;
  for (size_t i = 0; i + 3 <= t.size(); ++i) repeats += !seen.insert({t.begin() + i, t.begin() + i + 3}).second;
  return repeats;
}

// llama-server's samplers, beyond OpenAI's.
TEST_F(GgufGenerationTest, LlamaServerSamplersAreApplied) {
  GenerationOptions o = greedy(48);
  o.ignore_eos = true;
  const auto plain = engine_->generate("the the the", o);
  ASSERT_GT(repeated_trigrams(plain.tokens), 0u) << "the model no longer loops: pick another prompt";
  // DRY with a huge multiplier: no token may extend a repetition of two tokens.
  o.dry_multiplier = 1000.0f;
  o.dry_base = 2.0f;
  o.dry_allowed_length = 2;
  o.dry_sequence_breakers.clear();
  EXPECT_EQ(repeated_trigrams(engine_->generate("the the the", o).tokens), 0u);

  // Top-n-sigma with a tiny n keeps only the likeliest token: greedy, whatever the seed.
  GenerationOptions sigma = greedy(12);
  sigma.temperature = 1.5f;
  sigma.top_n_sigma = 1e-4f;
  sigma.seed = 3;
  EXPECT_EQ(engine_->generate("Once upon a time", sigma).tokens,
            engine_->generate("Once upon a time", greedy(12)).tokens);

  // Mirostat, typical-p, XTC and dynamic temperature draw reproducibly from their seed.
  for (const auto& set : std::vector<std::function<void(GenerationOptions&)>>{
           [](GenerationOptions& g) { g.mirostat = 2; }, [](GenerationOptions& g) { g.mirostat = 1; },
           [](GenerationOptions& g) { g.typical_p = 0.5f; },
           [](GenerationOptions& g) {
             g.xtc_probability = 1.0f;
             g.xtc_threshold = 0.01f;
           },
           [](GenerationOptions& g) { g.dynatemp_range = 0.5f; }}) {
    GenerationOptions g = greedy(16);
    g.temperature = 1.0f;
    g.seed = 9;
    set(g);
    const auto a = engine_->generate("Once upon a time", g);
    EXPECT_EQ(a.tokens.size(), 16u);
    EXPECT_EQ(engine_->generate("Once upon a time", g).tokens, a.tokens);
  }
}

TEST_F(GgufGenerationTest, InvalidSamplingOptionsAreRejected) {
  GenerationOptions o = greedy(4);
  o.temperature = -1;
  EXPECT_EQ(code_of([&] { engine_->generate("a", o); }), ErrorCode::kInvalidInput);
  o = greedy(4);
  o.top_p = 1.5f;
  EXPECT_EQ(code_of([&] { engine_->generate("a", o); }), ErrorCode::kInvalidInput);
  for (const auto& set : std::vector<std::function<void(GenerationOptions&)>>{
           [](GenerationOptions& g) { g.mirostat = 3; }, [](GenerationOptions& g) { g.typical_p = 0.0f; },
           [](GenerationOptions& g) { g.dry_base = 0.5f; }, [](GenerationOptions& g) { g.xtc_threshold = 2.0f; },
           [](GenerationOptions& g) { g.dry_sequence_breakers = {""}; }}) {
    o = greedy(4);
    set(o);
    EXPECT_EQ(code_of([&] { engine_->generate("a", o); }), ErrorCode::kInvalidInput);
  }
  o = greedy(4);
  o.logit_bias = {{40000, 1.0f}};
  EXPECT_EQ(code_of([&] { engine_->generate("a", o); }), ErrorCode::kInvalidInput);
  GenerateRequest bad_ids;
  bad_ids.prompt = std::vector<int32_t>{1, -3};
  EXPECT_EQ(code_of([&] { engine_->generate(bad_ids); }), ErrorCode::kInvalidInput);
  bad_ids.prompt = std::vector<int32_t>{};
  EXPECT_EQ(code_of([&] { engine_->generate(bad_ids); }), ErrorCode::kInvalidInput);
}

TEST_F(GgufGenerationTest, StopsAtMaxNewTokens) {
  GenerationOptions o = greedy(7);
  o.ignore_eos = true;
  const auto r = engine_->generate("Hello", o);
  EXPECT_EQ(r.tokens.size(), 7u);
  EXPECT_EQ(r.usage.completion_tokens, 7u);
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kLength);
}

TEST_F(GgufGenerationTest, StopsOnEndOfGenerationToken) {
  GenerationOptions o = greedy(10);
  o.logit_bias = {{kSpmEos, 100.0f}};
  const auto r = engine_->generate("Hello", o);
  EXPECT_EQ(r.tokens, std::vector<int32_t>{kSpmEos});
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kStop);
  o.ignore_eos = true;
  const auto ignored = engine_->generate("Hello", o);
  EXPECT_EQ(ignored.tokens.size(), 10u);
  EXPECT_EQ(ignored.usage.finish_reason, FinishReason::kLength);
}

TEST_F(GgufGenerationTest, StopsOnEveryEogTokenNotOnlyEos) {
  auto phi3 = GgufEngine::load(testing::tiny_phi3_model(), {.n_ctx = 256, .n_threads = 1});
  const auto& info = phi3->gguf_info();
  for (int32_t eog : info.eog_tokens) {
    if (eog == info.eos_token) continue;
    GenerationOptions o = greedy(10);
    o.logit_bias = {{eog, 100.0f}};
    const auto r = phi3->generate("Hello", o);
    EXPECT_EQ(r.tokens, std::vector<int32_t>{eog});
    EXPECT_EQ(r.usage.finish_reason, FinishReason::kStop);
  }
}

TEST_F(GgufGenerationTest, StopsOnStopTokenIds) {
  GenerationOptions o = greedy(24);
  o.ignore_eos = true;
  const auto full = engine_->generate("Hello there", o);
  ASSERT_EQ(full.tokens.size(), 24u);
  const int32_t stop = full.tokens[5];
  o.stop_token_ids = {stop};
  const auto r = engine_->generate("Hello there", o);
  const auto first = std::find(full.tokens.begin(), full.tokens.end(), stop);
  EXPECT_EQ(r.tokens, std::vector<int32_t>(full.tokens.begin(), first + 1));
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kStop);
}

TEST_F(GgufGenerationTest, StopStringIsNotReturnedNorStreamed) {
  GenerationOptions o = greedy(40);
  o.ignore_eos = true;
  const auto full = engine_->generate("Hello there", o);
  ASSERT_GT(full.text.size(), 12u);
  // A stop string from the middle of the output, found across token boundaries.
  const std::string stop = full.text.substr(full.text.size() / 2, 3);
  ASSERT_TRUE(gguf::is_valid_utf8(stop));
  o.stop = {stop};
  std::string streamed;
  const auto r = engine_->generate(GenerateRequest{"Hello there", o, {}, {}}, [&](const StreamChunk& c) {
    streamed += c.text;
    return true;
  });
  EXPECT_EQ(r.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(streamed, r.text);
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kStop);
  EXPECT_EQ(r.text.find(stop), std::string::npos);
}

// Byte-fallback tokens force characters split across tokens: biases make the greedy
// sampler emit the bytes of "€" (E2 82 AC) in a cycle, a presence penalty over the last
// two tokens moving it to the next byte.
TEST_F(GgufGenerationTest, StreamedPiecesAreValidUtf8WithByteFallbackTokens) {
  GenerationOptions o = greedy(12);
  o.ignore_eos = true;
  o.logit_bias = {{byte_token(0xE2), 200.0f}, {byte_token(0x82), 180.0f}, {byte_token(0xAC), 160.0f}};
  o.presence_penalty = 100.0f;
  o.penalty_last_n = 2;
  std::vector<std::string> pieces;
  const auto r = engine_->generate(GenerateRequest{"Price:", o, {}, {}}, [&](const StreamChunk& c) {
    pieces.push_back(c.text);
    return true;
  });
  EXPECT_EQ(r.text, "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC");
  ASSERT_EQ(pieces.size(), 4u);  // one piece per completed character, none for partial bytes
  for (const std::string& p : pieces) {
    EXPECT_TRUE(gguf::is_valid_utf8(p));
    EXPECT_EQ(p, "\xE2\x82\xAC");
  }
}

TEST_F(GgufGenerationTest, InvalidByteSequencesBecomeReplacementCharacters) {
  GenerationOptions o = greedy(3);
  o.ignore_eos = true;
  o.logit_bias = {{byte_token(0xE2), 100.0f}};  // E2 E2 E2: never a valid character
  std::string streamed;
  const auto r = engine_->generate(GenerateRequest{"x", o, {}, {}}, [&](const StreamChunk& c) {
    EXPECT_TRUE(gguf::is_valid_utf8(c.text));
    streamed += c.text;
    return true;
  });
  EXPECT_EQ(r.text, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(streamed, r.text);
}

TEST_F(GgufGenerationTest, CallbackReturningFalseCancels) {
  GenerationOptions o = greedy(50);
  o.ignore_eos = true;
  int chunks = 0;
  const auto r = engine_->generate(GenerateRequest{"Hello", o, {}, {}}, [&](const StreamChunk&) { return ++chunks < 3; });
  EXPECT_EQ(chunks, 3);
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kCancelled);
  EXPECT_LT(r.usage.completion_tokens, 50u);
}

TEST_F(GgufGenerationTest, CancellationTokenStopsMidGeneration) {
  GenerateRequest req{"Hello", greedy(200), {}, {}};
  req.options.ignore_eos = true;
  int chunks = 0;
  const auto r = engine_->generate(req, [&](const StreamChunk&) {
    if (++chunks == 5) req.cancel.cancel();
    return true;
  });
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kCancelled);
  EXPECT_GE(r.usage.completion_tokens, 5u);
  EXPECT_LT(r.usage.completion_tokens, 200u);
}

TEST_F(GgufGenerationTest, CancellationAbortsPromptDecode) {
  // Cancelled before the call: the prompt is never decoded.
  GenerateRequest req{"Hello world, this prompt is decoded first", greedy(10), {}, {}};
  req.cancel.cancel();
  const auto r = engine_->generate(req);
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(r.tokens.empty());
  // The slot is usable afterwards and its cache was not corrupted.
  EXPECT_EQ(engine_->generate("Hello, my name is", greedy(8)).tokens,
            engine_->generate("Hello, my name is", greedy(8)).tokens);
}

TEST_F(GgufGenerationTest, DeadlineEndsGeneration) {
  GenerateRequest req{"Hello", greedy(480), Clock::now() + milliseconds(30), {}};
  req.options.ignore_eos = true;
  int chunks = 0;
  const auto r = engine_->generate(req, [&](const StreamChunk&) {
    if (++chunks == 2) std::this_thread::sleep_for(milliseconds(40));  // the deadline passes here
    return true;
  });
  EXPECT_EQ(r.usage.finish_reason, FinishReason::kTimeout);
  EXPECT_LT(r.usage.completion_tokens, 480u);
  GenerateRequest expired{"Hello", greedy(10), Clock::now() - milliseconds(1), {}};
  EXPECT_EQ(engine_->generate(expired).usage.finish_reason, FinishReason::kTimeout);
}

TEST_F(GgufGenerationTest, ContextOverflowIsRejectedBeforeAnyWork) {
  const auto before = engine_->metrics();
  EXPECT_EQ(code_of([&] { engine_->generate("Hello", greedy(511)); }), ErrorCode::kInvalidInput);  // 2 + 511 > 512
  const auto after = engine_->metrics();
  EXPECT_EQ(after.prompt_tokens, before.prompt_tokens);
  EXPECT_EQ(after.failures, before.failures + 1);
  GenerationOptions fits = greedy(510);  // 2 + 510 = 512
  fits.logit_bias = {{kSpmEos, 100.0f}};  // accepted; no need to generate them all
  EXPECT_NO_THROW(engine_->generate("Hello", fits));
}

TEST_F(GgufGenerationTest, UsageIsReported) {
  GenerationOptions o = greedy(16);
  o.ignore_eos = true;
  const auto r = engine_->generate("Hello, my name is", o);
  EXPECT_EQ(r.usage.prompt_tokens, 6u);
  EXPECT_EQ(r.usage.completion_tokens, 16u);
  EXPECT_GT(r.usage.time_to_first_token_s, 0.0);
  EXPECT_GT(r.usage.prompt_tokens_per_s, 0.0);
  EXPECT_GT(r.usage.generation_tokens_per_s, 0.0);
  const auto m = engine_->metrics();
  EXPECT_GT(m.generated_tokens, 0u);
  EXPECT_GT(m.time_to_first_token.count, 0u);
  EXPECT_EQ(m.resident_bytes, engine_->resident_bytes());
}

TEST_F(GgufGenerationTest, TokenizeDetokenize) {
  const auto ids = engine_->tokenize("Hello, my name is");
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 15043, 29892, 590, 1024, 338}));
  // As llama_detokenize: SPM's space prefix is stripped from a first token, not after BOS.
  EXPECT_EQ(engine_->detokenize(ids), " Hello, my name is");
  EXPECT_EQ(engine_->detokenize(engine_->tokenize("Hello, my name is", false)), "Hello, my name is");
  EXPECT_EQ(engine_->tokenize("Hello", false).front(), 15043);
  EXPECT_EQ(engine_->detokenize(std::vector<int32_t>{kSpmBos, 15043}, true), "<s> Hello");
  EXPECT_EQ(code_of([&] { engine_->detokenize(std::vector<int32_t>{32000}); }), ErrorCode::kInvalidInput);
}

TEST_F(GgufGenerationTest, ChatTemplates) {
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "Hi"}};
  const std::string chatml = engine_->apply_chat_template(chat, true, "chatml");
  EXPECT_EQ(chatml, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  // None in the model: chatml, as llama-server falls back to.
  EXPECT_EQ(engine_->apply_chat_template(chat), chatml);
  EXPECT_EQ(engine_->model_info().metadata.at("chat_template"), "chatml (the model has none)");
  // The options' template wins over the model's and the fallback; a request's over both.
  auto llama3 = GgufEngine::load(testing::tiny_phi3_model(), {.n_ctx = 256, .chat_template = "llama3", .n_threads = 1});
  EXPECT_NE(llama3->apply_chat_template(chat).find("<|start_header_id|>user<|end_header_id|>"), std::string::npos);
  EXPECT_EQ(llama3->apply_chat_template(chat, true, "chatml"), chatml);
  EXPECT_EQ(llama3->model_info().metadata.at("chat_template"), "given in the options");
  EXPECT_EQ(code_of([&] { engine_->apply_chat_template(chat, true, "no-such-template"); }), ErrorCode::kInvalidInput);
  auto phi3 = GgufEngine::load(testing::tiny_phi3_model(), {.n_ctx = 256, .n_threads = 1});
  const std::string rendered = phi3->apply_chat_template(chat);
  EXPECT_NE(rendered.find("<|user|>"), std::string::npos) << rendered;
  GenerateRequest req{ChatPrompt{chat, {}}, greedy(4), {}, {}};
  const auto r = phi3->generate(req);
  EXPECT_EQ(r.usage.prompt_tokens, phi3->tokenize(rendered, true, true).size());
}

TEST_F(GgufGenerationTest, InferTakesAStringOrBytesAndReturnsText) {
  auto req = InferenceRequest::with_main_input(Tensor::from_string("Hello, my name is"));
  req.generation = greedy(8);
  const auto r = engine_->infer(req);
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].name, "text");
  EXPECT_EQ(r.outputs[0].tensor.strings().front(), engine_->generate("Hello, my name is", greedy(8)).text);
  ASSERT_TRUE(r.usage.has_value());
  const std::string bytes = "Hello, my name is";
  auto byte_req = InferenceRequest::with_main_input(
      Tensor::from_vector<uint8_t>({static_cast<int64_t>(bytes.size())}, std::vector<uint8_t>(bytes.begin(), bytes.end())));
  byte_req.generation = greedy(8);
  EXPECT_EQ(engine_->infer(byte_req).outputs[0].tensor.strings(), r.outputs[0].tensor.strings());
}

TEST_F(GgufGenerationTest, InferEmptyGenerationIsAValidResult) {
  auto req = InferenceRequest::with_main_input(Tensor::from_string("Hello"));
  req.generation = greedy(0);
  auto r = engine_->infer(req);
  EXPECT_EQ(r.outputs[0].tensor.strings(), std::vector<std::string>{""});
  EXPECT_EQ(r.usage->finish_reason, FinishReason::kLength);
  req.generation = greedy(5);
  req.generation.logit_bias = {{kSpmEos, 100.0f}};  // EOS at once
  r = engine_->infer(req);
  EXPECT_EQ(r.outputs[0].tensor.strings(), std::vector<std::string>{""});
  EXPECT_EQ(r.usage->finish_reason, FinishReason::kStop);
}

TEST_F(GgufGenerationTest, InferRejectsBadInputAndThrowsOnCancelAndDeadline) {
  auto bad = InferenceRequest::with_main_input(Tensor::from_vector<uint8_t>({2}, std::vector<uint8_t>{0xC3, 0x28}));
  EXPECT_EQ(code_of([&] { engine_->infer(bad); }), ErrorCode::kInvalidInput);
  auto wrong = InferenceRequest::with_main_input(Tensor::from_vector<float>({1}, std::vector<float>{1.0f}));
  EXPECT_EQ(code_of([&] { engine_->infer(wrong); }), ErrorCode::kInvalidInput);
  auto cancelled = InferenceRequest::with_main_input(Tensor::from_string("Hello"));
  cancelled.generation = greedy(8);
  cancelled.cancel.cancel();
  EXPECT_EQ(code_of([&] { engine_->infer(cancelled); }), ErrorCode::kCancelled);
  auto late = InferenceRequest::with_main_input(Tensor::from_string("Hello"));
  late.generation = greedy(8);
  late.deadline = Clock::now() - milliseconds(1);
  EXPECT_EQ(code_of([&] { engine_->infer(late); }), ErrorCode::kTimeout);
}

TEST_F(GgufGenerationTest, InferStreamCallbackStopIsNotAnError) {
  auto req = InferenceRequest::with_main_input(Tensor::from_string("Hello"));
  req.generation = greedy(30);
  req.generation.ignore_eos = true;
  std::string streamed;
  const auto r = engine_->infer_stream(req, [&](const StreamChunk& c) {
    streamed += c.text;
    return false;
  });
  EXPECT_EQ(r.usage->finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(r.outputs[0].tensor.strings().front().substr(0, streamed.size()), streamed);
}

}  // namespace
}  // namespace kapsl
