// WordPiece: BERT's splitting rules on a small vocabulary written by the test.
#include "tasks/wordpiece.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/test_util.h"

namespace kapsl::internal {
namespace {

using kapsl::testing::expect_error;

class WordPieceTest : public ::testing::Test {
 protected:
  WordPiece tokenizer(const std::string& vocab, bool lowercase = true, uint32_t max_tokens = 512) {
    const auto path = dir_.path() / "vocab.txt";
    std::ofstream(path, std::ios::binary) << vocab;
    return WordPiece(WordPieceConfig{path, lowercase, max_tokens});
  }
  kapsl::testing::TempDir dir_;
};

// Ids by line: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 un=4 ##aff=5 ##able=6 ,=7 hello=8 中=9 é=10
const char* kVocab = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able\n,\nhello\n\xE4\xB8\xAD\n\xC3\xA9\n";

TEST_F(WordPieceTest, GreedyLongestPiecesWithContinuations) {
  const WordPiece w = tokenizer(kVocab);
  EXPECT_EQ(w.encode("unaffable"), (std::vector<int32_t>{2, 4, 5, 6, 3}));
  EXPECT_EQ(w.encode("  UnAffable,hello "), (std::vector<int32_t>{2, 4, 5, 6, 7, 8, 3}));
  EXPECT_EQ(w.vocab_size(), 11);
  EXPECT_EQ(w.pad_id(), 0);
}

TEST_F(WordPieceTest, UnknownWordsPunctuationCjkAndControlCharacters) {
  const WordPiece w = tokenizer(kVocab);
  EXPECT_EQ(w.encode("unx"), (std::vector<int32_t>{2, 1, 3}));  // no piece covers "x": the whole word is [UNK]
  EXPECT_EQ(w.encode("hello\xE4\xB8\xADhello"), (std::vector<int32_t>{2, 8, 9, 8, 3}));  // CJK splits words
  EXPECT_EQ(w.encode("hel\x01lo"), (std::vector<int32_t>{2, 8, 3}));  // control characters are dropped
  EXPECT_EQ(w.encode("\xC3\x89"), (std::vector<int32_t>{2, 10, 3}));  // Latin-1 capitals lower-case
  EXPECT_EQ(w.encode("\xFF\xFEhello"), (std::vector<int32_t>{2, 1, 3}));  // invalid UTF-8 is [UNK], never a crash
  EXPECT_EQ(w.encode(std::string(300, 'u')), (std::vector<int32_t>{2, 1, 3}));  // over 100 characters
  EXPECT_EQ(w.encode(""), (std::vector<int32_t>{2, 3}));
}

TEST_F(WordPieceTest, CasedVocabulariesKeepCaseAndLongInputsAreCut) {
  EXPECT_EQ(tokenizer(kVocab, false).encode("Hello"), (std::vector<int32_t>{2, 1, 3}));
  const WordPiece w = tokenizer(kVocab, true, 4);
  EXPECT_EQ(w.encode("hello hello hello hello"), (std::vector<int32_t>{2, 8, 8, 3}));
}

TEST_F(WordPieceTest, BadVocabulariesAreRefused) {
  expect_error([&] { tokenizer("a\nb\n"); }, ErrorCode::kInvalidInput, {"vocab.txt", "[UNK]"});
  expect_error([&] { tokenizer(""); }, ErrorCode::kInvalidInput, {"vocab.txt", "no tokens"});
  expect_error([&] { WordPiece(WordPieceConfig{dir_.path() / "missing.txt"}); }, ErrorCode::kInvalidInput,
               {"missing.txt"});
}

}  // namespace
}  // namespace kapsl::internal
