#include "gguf/stop_strings.h"

#include <gtest/gtest.h>

namespace kapsl::gguf {
namespace {

TEST(StopStringFilterTest, PassesTextThroughWithoutStops) {
  StopStringFilter f({});
  EXPECT_EQ(f.push("hello "), "hello ");
  EXPECT_EQ(f.push("world"), "world");
  EXPECT_FALSE(f.stopped());
}

TEST(StopStringFilterTest, StopsAndDropsTheStopString) {
  StopStringFilter f({"END"});
  EXPECT_EQ(f.push("abc END def"), "abc ");
  EXPECT_TRUE(f.stopped());
  EXPECT_EQ(f.push("more"), "");
  EXPECT_EQ(f.finish(), "");
}

TEST(StopStringFilterTest, HoldsBackAPossibleStartAcrossPieces) {
  StopStringFilter f({"</s>"});
  EXPECT_EQ(f.push("x<"), "x");
  EXPECT_EQ(f.push("/"), "");
  EXPECT_EQ(f.push("s"), "");
  EXPECT_EQ(f.push(">tail"), "");
  EXPECT_TRUE(f.stopped());
}

TEST(StopStringFilterTest, ReleasesHeldTextWhenItCannotStartAStop) {
  StopStringFilter f({"</s>"});
  EXPECT_EQ(f.push("a</"), "a");
  EXPECT_EQ(f.push("b"), "</b");
  EXPECT_FALSE(f.stopped());
}

TEST(StopStringFilterTest, FinishReleasesHeldText) {
  StopStringFilter f({"STOP"});
  EXPECT_EQ(f.push("abcST"), "abc");
  EXPECT_EQ(f.finish(), "ST");
}

TEST(StopStringFilterTest, EarliestOfSeveralStopsWins) {
  StopStringFilter f({"cd", "b"});
  EXPECT_EQ(f.push("abcd"), "a");
}

TEST(StopStringFilterTest, NeverSplitsAMultiByteCharacter) {
  // The stop string starts with the first byte of "é" (C3 A9) but not with "é".
  StopStringFilter f({"\xC3\xA8x"});
  EXPECT_EQ(f.push("a\xC3\xA9"), "a\xC3\xA9");
  EXPECT_EQ(f.push("\xC3\xA8"), "");
  EXPECT_EQ(f.push("y"), "\xC3\xA8y");
}

}  // namespace
}  // namespace kapsl::gguf
