// Tokenizer conformance: llama.cpp's own test vectors (models/ggml-vocab-*.gguf.inp/.out),
// tokenized through GgufEngine loaded vocab-only, as llama.cpp's test-tokenizer-0 does
// (add_special = false, parse_special = false).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "kapsl/gguf_engine.h"
#include "test_models.h"

namespace kapsl {
namespace {

namespace fs = std::filesystem;

struct VocabCase {
  std::string text;
  std::vector<int32_t> expected;
};

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The format of test-tokenizer-0.cpp: inputs separated by "\n__ggml_vocab_test__\n", one
// line of space-separated ids per input.
std::vector<VocabCase> read_cases(const fs::path& inp, const fs::path& out) {
  const std::string raw = slurp(inp);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::ifstream lines(out);
  std::vector<VocabCase> cases;
  std::string line;
  for (size_t i = 0; std::getline(lines, line); ++i) {
    if (i >= inputs.size()) break;
    VocabCase c{inputs[i], {}};
    std::istringstream ids(line);
    for (int32_t id; ids >> id;) c.expected.push_back(id);
    cases.push_back(std::move(c));
  }
  EXPECT_EQ(cases.size(), inputs.size()) << inp;
  return cases;
}

std::vector<std::string> vocab_files_with_vectors() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(testing::llama_vocab_dir())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("ggml-vocab-", 0) != 0 || entry.path().extension() != ".gguf") continue;
    if (fs::exists(entry.path().string() + ".inp") && fs::exists(entry.path().string() + ".out")) names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

class TokenizerConformanceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerConformanceTest, MatchesLlamaCppVectors) {
  const fs::path vocab = fs::path(testing::llama_vocab_dir()) / GetParam();
  auto engine = GgufEngine::load(vocab.string(), {.vocab_only = true});
  const auto cases = read_cases(vocab.string() + ".inp", vocab.string() + ".out");
  ASSERT_FALSE(cases.empty());
  size_t failures = 0;
  for (const VocabCase& c : cases) {
    const std::vector<int32_t> got = engine->tokenize(c.text, false, false);
    if (got != c.expected) {
      ++failures;
      ADD_FAILURE() << GetParam() << ": \"" << c.text << "\" tokenized differently";
    }
  }
  EXPECT_EQ(failures, 0u) << "of " << cases.size() << " vectors";
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, TokenizerConformanceTest, ::testing::ValuesIn(vocab_files_with_vectors()),
                         [](const ::testing::TestParamInfo<std::string>& p) {
                           std::string name = p.param.substr(11, p.param.size() - 11 - 5);
                           for (char& ch : name) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return name;
                         });

TEST(TokenizerConformanceSetTest, FindsTheVocabFiles) {
  // llama.cpp v0.5.0 ships 15 vocab files with vectors; fail loudly if the tree moved.
  EXPECT_GE(vocab_files_with_vectors().size(), 10u);
}

}  // namespace
}  // namespace kapsl
