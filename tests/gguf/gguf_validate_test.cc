// Each class of bad model file gives kModelLoad with its reason, never a crash or abort.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kapsl/gguf_engine.h"
#include "test_models.h"

namespace kapsl {
namespace {

namespace fs = std::filesystem;

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

std::string write_file(const std::string& name, const std::vector<char>& bytes) {
  const fs::path path = testing::scratch_dir("validate") / name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path.string();
}

template <typename T>
void poke(std::vector<char>* bytes, size_t offset, T value) {
  std::memcpy(bytes->data() + offset, &value, sizeof value);
}

// Loads `path` and returns the kModelLoad message; fails the test on anything else.
std::string load_error(const std::string& path, const GgufOptions& options = {}) {
  try {
    GgufEngine::load(path, options);
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kModelLoad) << e.to_string();
    return e.message();
  }
  ADD_FAILURE() << "loading " << path << " succeeded";
  return {};
}

class GgufValidateTest : public ::testing::Test {
 protected:
  std::vector<char> good_ = read_file(testing::tiny_spm_model());
};

TEST_F(GgufValidateTest, TheGoodFileLoads) {
  ASSERT_GT(good_.size(), 1000u);
  EXPECT_NO_THROW(GgufEngine::load(write_file("good.gguf", good_)));
}

TEST_F(GgufValidateTest, MissingFile) {
  EXPECT_NE(load_error("/nonexistent/model.gguf").find("no such file"), std::string::npos);
}

TEST_F(GgufValidateTest, DirectoryIsNotAModel) {
  EXPECT_NE(load_error(testing::scratch_dir("validate").string()).find("not a regular file"), std::string::npos);
}

TEST_F(GgufValidateTest, NotGguf) {
  const std::string text = "this is a text file, not a model\n";
  const std::string msg = load_error(write_file("text.gguf", std::vector<char>(text.begin(), text.end())));
  EXPECT_NE(msg.find("not a GGUF file"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, TruncatedHeader) {
  const std::string msg = load_error(write_file("short.gguf", std::vector<char>(good_.begin(), good_.begin() + 10)));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, UnsupportedVersions) {
  for (uint32_t version : {1u, 4u, 99u}) {
    auto bytes = good_;
    poke<uint32_t>(&bytes, 4, version);
    const std::string msg = load_error(write_file("version.gguf", bytes));
    EXPECT_NE(msg.find("unsupported GGUF version " + std::to_string(version)), std::string::npos) << msg;
  }
}

TEST_F(GgufValidateTest, TensorCountBeyondTheFile) {
  auto bytes = good_;
  poke<int64_t>(&bytes, 8, int64_t{1} << 40);
  const std::string msg = load_error(write_file("tensors.gguf", bytes));
  EXPECT_NE(msg.find("corrupt header"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, KeyValueCountBeyondTheFile) {
  auto bytes = good_;
  poke<int64_t>(&bytes, 16, int64_t{1} << 50);
  const std::string msg = load_error(write_file("kv.gguf", bytes));
  EXPECT_NE(msg.find("corrupt header"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, NegativeCount) {
  auto bytes = good_;
  poke<int64_t>(&bytes, 8, -5);
  EXPECT_NE(load_error(write_file("negative.gguf", bytes)).find("corrupt header"), std::string::npos);
}

TEST_F(GgufValidateTest, CorruptKeyValueTable) {
  auto bytes = good_;
  poke<uint64_t>(&bytes, 24, uint64_t{1} << 60);  // the first key's length
  const std::string msg = load_error(write_file("kvtable.gguf", bytes));
  EXPECT_NE(msg.find("corrupt key-value or tensor table"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, TruncatedTensorData) {
  const auto cut = std::vector<char>(good_.begin(), good_.begin() + static_cast<ptrdiff_t>(good_.size() * 6 / 10));
  const std::string msg = load_error(write_file("cut.gguf", cut));
  EXPECT_NE(msg.find("truncated: tensor"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, UnsupportedArchitecture) {
  auto bytes = good_;
  const std::string key = "general.architecture";
  auto it = std::search(bytes.begin(), bytes.end(), key.begin(), key.end());
  ASSERT_NE(it, bytes.end());
  // key, then type (u32) and string length (u64), then "llama": rename it "llamb".
  const size_t value = static_cast<size_t>(it - bytes.begin()) + key.size() + 4 + 8;
  ASSERT_EQ(std::string(bytes.data() + value, 5), "llama");
  bytes[value + 4] = 'b';
  const std::string msg = load_error(write_file("arch.gguf", bytes));
  EXPECT_NE(msg.find("llamb"), std::string::npos) << msg;
}

TEST_F(GgufValidateTest, VocabOnlyFileRefusedAsAFullModel) {
  // A valid GGUF without weights: llama.cpp itself refuses it; the reason is passed on.
  const std::string msg = load_error(testing::llama_vocab_dir() + "/ggml-vocab-llama-spm.gguf");
  EXPECT_NE(msg.find("llama.cpp could not load"), std::string::npos) << msg;
}

}  // namespace
}  // namespace kapsl
