// Paths of the test models generated at build time (tests/gguf/CMakeLists.txt) and of
// llama.cpp's vocab files, and a scratch directory for corrupted copies.
#ifndef KAPSL_TESTS_GGUF_TEST_MODELS_H_
#define KAPSL_TESTS_GGUF_TEST_MODELS_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <filesystem>
#include <string>

#include "kapsl/error.h"
#include "kapsl/request.h"

namespace kapsl::testing {

inline std::string test_data_dir() {
  const char* dir = std::getenv("KAPSL_TEST_DATA");
  return dir != nullptr ? dir : "test-data";
}

// tiny-spm.gguf: llama architecture, 2 layers, n_embd 64, llama-spm tokenizer (byte fallback).
inline std::string tiny_spm_model() { return test_data_dir() + "/tiny-spm.gguf"; }
// tiny-phi3.gguf: 1 layer, phi-3 tokenizer with a chat template and several EOG tokens.
inline std::string tiny_phi3_model() { return test_data_dir() + "/tiny-phi3.gguf"; }
// tiny-embed.gguf: like tiny-spm with llama.pooling_type = mean.
inline std::string tiny_embed_model() { return test_data_dir() + "/tiny-embed.gguf"; }
// tiny-embed-nopool.gguf: the same weights as tiny-embed.gguf, without a pooling key.
inline std::string tiny_embed_nopool_model() { return test_data_dir() + "/tiny-embed-nopool.gguf"; }
// Qwen3-Reranker's shape (qwen3 architecture, rank pooling, a yes/no classification head).
inline std::string tiny_rerank_model() { return test_data_dir() + "/tiny-rerank.gguf"; }

inline std::string llama_vocab_dir() { return std::string(KAPSL_LLAMA_SOURCE_DIR) + "/models"; }

// A per-test scratch directory under the build's test data.
inline std::filesystem::path scratch_dir(const std::string& name) {
  auto dir = std::filesystem::path(test_data_dir()) / "scratch" / name;
  std::filesystem::create_directories(dir);
  return dir;
}

// The code of the kapsl::Error that fn throws; a test failure if it throws none.
inline ErrorCode code_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  ADD_FAILURE() << "no error thrown";
  return ErrorCode::kBackend;
}

// Greedy sampling of exactly n tokens (end-of-generation tokens do not stop it).
inline GenerationOptions greedy_ignoring_eos(uint32_t n) {
  GenerationOptions o;
  o.temperature = 0;
  o.max_new_tokens = n;
  o.ignore_eos = true;
  return o;
}

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_GGUF_TEST_MODELS_H_
