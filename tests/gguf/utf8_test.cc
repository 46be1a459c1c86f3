#include "gguf/utf8.h"

#include <gtest/gtest.h>

#include <string>

namespace kapsl::gguf {
namespace {

TEST(Utf8AssemblerTest, HoldsASplitCharacterUntilItIsComplete) {
  Utf8Assembler a;
  EXPECT_EQ(a.push("a\xE2"), "a");
  EXPECT_EQ(a.push("\x82"), "");
  EXPECT_EQ(a.push("\xAC" "b"), "\xE2\x82\xAC" "b");
  EXPECT_EQ(a.finish(), "");
}

TEST(Utf8AssemblerTest, FourByteCharacterOneByteAtATime) {
  Utf8Assembler a;
  const std::string emoji = "\xF0\x9F\x98\x80";
  std::string out;
  for (char c : emoji) out += a.push(std::string(1, c));
  EXPECT_EQ(out, emoji);
}

TEST(Utf8AssemblerTest, InvalidBytesBecomeReplacementCharacters) {
  Utf8Assembler a;
  EXPECT_EQ(a.push("\x80" "a"), "\xEF\xBF\xBD" "a");   // stray continuation
  EXPECT_EQ(a.push("\xC3" "b"), "\xEF\xBF\xBD" "b");   // lead without continuation
  EXPECT_EQ(a.push("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");  // overlong
  EXPECT_EQ(a.push("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

// A cut-off sequence is one U+FFFD, however many of its bytes came (its maximal subpart,
// as the Unicode standard advises and Python, WHATWG and llama-server's JSON do), not one
// per byte.
TEST(Utf8AssemblerTest, ACutOffSequenceIsOneReplacementCharacter) {
  Utf8Assembler a;
  EXPECT_EQ(a.push("\xE2\x80" "O"), "\xEF\xBF\xBD" "O");
  EXPECT_EQ(a.push("\xF0\x9F\x98" "x"), "\xEF\xBF\xBD" "x");
  EXPECT_EQ(a.push("\xF0\x9F"), "");  // maybe the rest comes in the next piece
  EXPECT_EQ(a.push("\xE2\x82\xAC"), "\xEF\xBF\xBD" "\xE2\x82\xAC");  // it did not
}

TEST(Utf8AssemblerTest, FinishFlushesAnIncompleteCharacterAsReplacement) {
  Utf8Assembler a;
  EXPECT_EQ(a.push("x\xE2\x82"), "x");
  EXPECT_EQ(a.finish(), "\xEF\xBF\xBD");
  EXPECT_EQ(a.finish(), "");
}

TEST(Utf8ValidTest, AcceptsValidRejectsInvalid) {
  EXPECT_TRUE(is_valid_utf8("h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"));
  EXPECT_FALSE(is_valid_utf8("\xE2\x82"));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // above U+10FFFF
}

}  // namespace
}  // namespace kapsl::gguf
