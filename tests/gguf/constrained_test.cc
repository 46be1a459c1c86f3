// Constrained output and tool calls on the random-weight SPM model (no chat template, so
// chats go through kapsl's chatml-with-tools fallback): whatever the weights say, the
// output must match the schema or grammar, end within max_new_tokens, and parse.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gguf/sampling.h"
#include "kapsl/gguf_engine.h"
#include "test_models.h"

namespace kapsl {
namespace {

using json = nlohmann::json;
using kapsl::testing::code_of;

class ConstrainedGenerationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    GgufOptions o;
    o.n_ctx = 2048;
    o.n_threads = 1;
    engine_ = GgufEngine::load(testing::tiny_spm_model(), o);
  }
  static void TearDownTestSuite() { engine_.reset(); }

  static GenerateResult run(Prompt prompt, GenerationOptions o, const StreamCallback& on_chunk = {}) {
    GenerateRequest request;
    request.prompt = std::move(prompt);
    request.options = std::move(o);
    return engine_->generate(request, on_chunk);
  }
  static std::unique_ptr<GgufEngine> engine_;
};
std::unique_ptr<GgufEngine> ConstrainedGenerationTest::engine_;

GenerationOptions sampled(uint32_t seed, uint32_t max_new_tokens) {
  GenerationOptions o;
  o.seed = seed;
  o.temperature = 1.0f;
  o.max_new_tokens = max_new_tokens;
  return o;
}

TEST_F(ConstrainedGenerationTest, JsonSchemaOutputParsesAndHasTheRequiredFields) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    GenerationOptions o = sampled(seed, 600);
    o.json_schema = R"({"type":"object","properties":{"id":{"type":"integer"},"tags":{"type":"array",
      "items":{"enum":["x","y"]},"maxItems":3},"name":{"type":"string"}},"required":["id","tags","name"]})";
    const auto r = run(std::string("Data:"), o);
    ASSERT_EQ(r.usage.finish_reason, FinishReason::kStop) << r.text;
    const json doc = json::parse(r.text);
    EXPECT_TRUE(doc["id"].is_number_integer()) << r.text;
    EXPECT_TRUE(doc["tags"].is_array() && doc["tags"].size() <= 3) << r.text;
    EXPECT_TRUE(doc["name"].is_string()) << r.text;
  }
}

// An open string is closed, and the object ended, in the last tokens of the budget.
TEST_F(ConstrainedGenerationTest, TheClosingReserveEndsTheOutputWithinTheBudget) {
  for (uint32_t seed = 1; seed <= 4; ++seed) {
    GenerationOptions o = sampled(seed, 40);
    o.top_k = 0;
    o.json_schema = R"({"type":"object","properties":{"text":{"type":"string"}},"required":["text"]})";
    const auto r = run(std::string("Data:"), o);
    EXPECT_EQ(r.usage.finish_reason, FinishReason::kStop) << r.text;
    EXPECT_LE(r.usage.completion_tokens, 40u);
    EXPECT_TRUE(json::parse(r.text)["text"].is_string()) << r.text;
  }
}

// Inside a string, } and ] are only more text: the reserve must end the string first. (A
// random model's long key once spent the whole reserve on "}}]]" and never closed it.)
TEST_F(ConstrainedGenerationTest, TheClosingReserveEndsAStringBeforeItsBrackets) {
  for (uint32_t seed = 1; seed <= 16; ++seed) {
    GenerationOptions o = sampled(seed, 48);
    o.top_k = 0;
    o.logit_bias = {{engine_->tokenize("}", false).back(), 8.0f}, {engine_->tokenize("]", false).back(), 8.0f}};
    o.json_schema = R"({"type":"object"})";  // json_object
    const auto r = run(std::string("Data:"), o);
    EXPECT_LE(r.usage.completion_tokens, 48u);
    EXPECT_TRUE(json::accept(r.text)) << "seed " << seed << ": " << r.text;
  }
}

TEST_F(ConstrainedGenerationTest, AGrammarLimitsTheOutput) {
  GenerationOptions o = sampled(3, 16);
  o.grammar = R"(root ::= ("yes" | "no") "!")";
  for (const Prompt& p : {Prompt(std::string("Well?")), Prompt(ChatPrompt{{{"user", "Well?"}}})}) {
    const auto r = run(p, o);
    EXPECT_TRUE(r.text == "yes!" || r.text == "no!") << r.text;
  }
}

TEST_F(ConstrainedGenerationTest, BadConstraintsAreRefusedBeforeGenerating) {
  const auto refused = [&](const std::string& grammar, const std::string& schema) {
    GenerationOptions o = sampled(1, 8);
    o.grammar = grammar;
    o.json_schema = schema;
    return code_of([&] { run(std::string("x"), o); });
  };
  EXPECT_EQ(refused(R"(root ::= "open)", ""), ErrorCode::kInvalidInput);
  EXPECT_EQ(refused(R"(root ::= "a"{1,100000})", ""), ErrorCode::kInvalidInput);
  EXPECT_EQ(refused(R"(root ::= "a")", R"({"type":"object"})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(refused("", "{not json"), ErrorCode::kInvalidInput);
  EXPECT_EQ(refused("", R"({"$ref":"#/definitions/missing"})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(refused(std::string(gguf::kMaxGrammarBytes + 1, ' ') + "root ::= \"a\"", ""), ErrorCode::kInvalidInput);
  // The engine is still usable.
  EXPECT_FALSE(run(std::string("x"), sampled(1, 4)).text.empty());
}

TEST(GrammarRepetitions, CountsInLiteralsClassesAndCommentsAreNotRepetitions) {
  EXPECT_NO_THROW(gguf::check_grammar_limits(R"(root ::= "a"{0,4096} [0-9]{4})"));
  EXPECT_NO_THROW(gguf::check_grammar_limits(R"(root ::= "{99999}" [{] # {99999}
x ::= "\"{9999999}")"));
  EXPECT_THROW(gguf::check_grammar_limits(R"(root ::= "a"{4097})"), Error);
  EXPECT_THROW(gguf::check_grammar_limits(R"(root ::= "a"{1, 99999999999999999999})"), Error);
  EXPECT_THROW(gguf::check_grammar_limits(R"(root ::= "a"{5,3})"), Error);  // llama.cpp would loop for ever
  std::string many = "root ::= x\n";
  for (int i = 0; i < 20; ++i) many += "r" + std::to_string(i) + " ::= \"a\"{4000}\n";
  EXPECT_THROW(gguf::check_grammar_limits(many), Error);  // 80000 copies in all
  EXPECT_THROW(gguf::check_grammar_limits(std::string(65, '(') + std::string(65, ')')), Error);
}

ChatPrompt weather_chat(ToolChoice choice) {
  ChatPrompt chat;
  chat.messages = {{"user", "Weather in Paris?"}};
  chat.tools = {{"get_weather", "The weather in a city",
                 R"({"type":"object","properties":{"city":{"type":"string","maxLength":16},
                     "unit":{"enum":["c","f"]}},"required":["city","unit"]})"}};
  chat.tool_choice = choice;
  return chat;
}

// The streamed deltas assemble, as OpenAI's clients assemble them, into the final message.
TEST_F(ConstrainedGenerationTest, ARequiredToolCallIsParsedAndStreamedAsDeltas) {
  std::vector<ChatDelta> deltas;
  const auto r = run(weather_chat(ToolChoice::kRequired), sampled(5, 300), [&](const StreamChunk& c) {
    deltas.insert(deltas.end(), c.chat.begin(), c.chat.end());
    return true;
  });
  ASSERT_TRUE(r.message.has_value());
  ASSERT_EQ(r.message->tool_calls.size(), 1u) << r.text;
  const ToolCall& call = r.message->tool_calls[0];
  EXPECT_EQ(call.name, "get_weather");
  EXPECT_EQ(call.id.rfind("call_", 0), 0u);
  const json args = json::parse(call.arguments);
  EXPECT_TRUE(args["unit"] == "c" || args["unit"] == "f") << call.arguments;
  EXPECT_NE(r.text.find("<tool_call>"), std::string::npos) << r.text;
  EXPECT_TRUE(r.message->content.empty()) << r.message->content;
  ToolCall assembled;
  for (const ChatDelta& d : deltas) {
    if (d.tool_call_index < 0) continue;
    EXPECT_EQ(d.tool_call_index, 0);
    if (!d.tool_call.name.empty()) assembled = d.tool_call;
    else assembled.arguments += d.tool_call.arguments;
  }
  EXPECT_EQ(assembled.id, call.id);
  EXPECT_EQ(assembled.name, call.name);
  EXPECT_EQ(assembled.arguments, call.arguments);
}

TEST_F(ConstrainedGenerationTest, ToolChoiceNoneAnswersWithText) {
  const auto r = run(weather_chat(ToolChoice::kNone), sampled(5, 8));
  ASSERT_TRUE(r.message.has_value());
  EXPECT_TRUE(r.message->tool_calls.empty());
  EXPECT_EQ(r.message->content, r.text);
}

// A conversation holding a call and its result renders through the template, and the
// call's arguments are in the prompt.
TEST_F(ConstrainedGenerationTest, ToolHistoryRenders) {
  ChatPrompt chat = weather_chat(ToolChoice::kAuto);
  ChatMessage call{"assistant", ""};
  call.tool_calls = {{"call_1", "get_weather", R"({"city":"Paris","unit":"c"})"}};
  ChatMessage result{"tool", R"({"temperature":21})"};
  result.tool_call_id = "call_1";
  chat.messages.push_back(call);
  chat.messages.push_back(result);
  GenerateRequest request{chat, sampled(1, 4), {}, {}};
  const std::string rendered = engine_->detokenize(engine_->prompt_tokens(request), true);
  EXPECT_NE(rendered.find("Paris"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("temperature"), std::string::npos) << rendered;
  EXPECT_NE(rendered.find("get_weather"), std::string::npos) << rendered;
}

TEST_F(ConstrainedGenerationTest, ToolsNeedAJinjaTemplate) {
  ChatPrompt chat = weather_chat(ToolChoice::kRequired);
  chat.chat_template = "llama3";  // llama.cpp's C++ template: roles and text only
  EXPECT_EQ(code_of([&] { run(chat, sampled(1, 4)); }), ErrorCode::kInvalidInput);
}

}  // namespace
}  // namespace kapsl
