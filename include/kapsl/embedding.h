// Embedder: the capability of an engine that turns texts (or token ids) into vectors —
// sentence embeddings for search and retrieval — whatever backend it runs on.
//
// Front ends ask an Engine for it (Engine::embedder()) and get nullptr when the engine has
// none. The GGUF backend implements it for models loaded with the "embed" task; the ONNX
// backend's "embed" task (mean pooling over an encoder's hidden states) implements it too,
// tokenizing text with the model's WordPiece vocabulary when its manifest names one.
//
// Ownership: the Embedder is part of its engine; the pointer is valid for the engine's
// lifetime. Inputs are borrowed for the call; results are values owned by the caller.
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_EMBEDDING_H_
#define KAPSL_EMBEDDING_H_

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kapsl/request.h"

namespace kapsl {

// One input: text, or token ids already produced by the model's tokenizer.
using EmbeddingInput = std::variant<std::string, std::vector<int32_t>>;

struct EmbedOptions {
  bool normalize = true;  // L2-normalise each vector
  std::optional<Clock::time_point> deadline;  // past it the call fails with kTimeout
  CancellationToken cancel;                   // cancel() makes it fail with kCancelled
};

struct Embeddings {
  std::vector<std::vector<float>> vectors;  // one per input, in order, embedding_size() long
  uint64_t prompt_tokens = 0;               // tokens read over all inputs
};

class Embedder {
 public:
  // One vector per input. Throws: kInvalidInput (an empty input, one longer than the model
  // takes, a token id out of range, text for a model that has no tokenizer: each naming
  // the input's index), kOverloaded, kTimeout, kCancelled, kInference / kBackend.
  virtual Embeddings embed(std::span<const EmbeddingInput> inputs, const EmbedOptions& options = {}) = 0;

  // The length of every vector. Never throws.
  virtual uint32_t embedding_size() const = 0;

 protected:
  ~Embedder() = default;  // owned and destroyed through its Engine
};

}  // namespace kapsl

#endif  // KAPSL_EMBEDDING_H_
