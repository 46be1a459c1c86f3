// WordPiece: BERT's tokenizer, read from the vocab.txt a BERT-style model ships, so that an
// ONNX encoder served with the "embed" task can take text, not only token ids.
//
// What it does, as BERT's reference tokenizer: control characters are dropped, whitespace
// separates words, every punctuation character and every CJK ideograph is a word of its
// own, optional lower-casing; then each word is split greedily into the longest vocabulary
// pieces, continuations prefixed "##" (a word that cannot be split, or longer than 100
// characters, becomes [UNK]). [CLS] and [SEP] wrap the result when the vocabulary has them.
// Limits, documented in docs/model-config.md: lower-casing covers ASCII and Latin-1 letters
// only, and accents are not stripped (no Unicode normalisation), so "uncased" vocabularies
// tokenize accented text differently from Hugging Face's tokenizer.
//
// Thread-safety: immutable after load; const methods may run concurrently.
#ifndef KAPSL_SRC_TASKS_WORDPIECE_H_
#define KAPSL_SRC_TASKS_WORDPIECE_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace kapsl::internal {

struct WordPieceConfig {
  std::filesystem::path vocab;  // vocab.txt: one token per line, id = line number from 0
  bool lowercase = true;        // for "uncased" vocabularies
  uint32_t max_tokens = 512;    // longer inputs are cut (before [SEP])
};

class WordPiece {
 public:
  // Reads the vocabulary. Throws Error(kInvalidInput) naming the file if it cannot be read,
  // is larger than 64 MiB, has no tokens, or lacks "[UNK]".
  explicit WordPiece(WordPieceConfig config);

  // The ids of `text`, at most max_tokens. Invalid UTF-8 bytes count as [UNK].
  std::vector<int32_t> encode(std::string_view text) const;

  int32_t vocab_size() const { return static_cast<int32_t>(tokens_.size()); }
  int32_t pad_id() const { return pad_; }
  const WordPieceConfig& config() const { return config_; }

 private:
  std::vector<int32_t> encode_word(const std::u32string& word) const;
  int32_t id(const std::string& piece) const;

  WordPieceConfig config_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t unk_ = -1, cls_ = -1, sep_ = -1, pad_ = 0;
};

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_TASKS_WORDPIECE_H_
