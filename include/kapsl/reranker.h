// Reranker: the capability of an engine that scores how relevant documents are to a query
// with a model trained for it — a cross-encoder such as bge-reranker, jina-reranker or
// Qwen3-Reranker — whatever backend it runs on.
//
// Front ends ask an Engine for it (Engine::reranker()) and get nullptr when the engine has
// none. The GGUF backend implements it for models loaded with the "rerank" task (llama.cpp's
// rank pooling, as llama-server --reranking).
//
// Ownership: the Reranker is part of its engine; the pointer is valid for the engine's
// lifetime. Inputs are borrowed for the call; results are values owned by the caller.
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_RERANKER_H_
#define KAPSL_RERANKER_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/embedding.h"

namespace kapsl {

struct RerankScores {
  std::vector<float> scores;  // one per document, in order; higher is more relevant
  uint64_t prompt_tokens = 0;  // tokens read over all query-document pairs
};

class Reranker {
 public:
  // Scores each document against `query`: the model reads the two as one input (its GGUF
  // "rerank" template if it has one, else BOS query EOS SEP document EOS, each as the
  // vocabulary asks: llama-server's prompt) and its ranking head gives the score, on the
  // model's own scale. options.normalize is ignored. Throws: kInvalidInput (no documents, a
  // pair longer than the model takes: naming the document's index), kOverloaded, kTimeout,
  // kCancelled, kBackend.
  virtual RerankScores rerank(std::string_view query, std::span<const std::string> documents,
                              const EmbedOptions& options = {}) = 0;

 protected:
  ~Reranker() = default;  // owned and destroyed through its Engine
};

}  // namespace kapsl

#endif  // KAPSL_RERANKER_H_
