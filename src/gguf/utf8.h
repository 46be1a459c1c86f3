// Utf8Assembler: turns the bytes of token pieces into valid UTF-8 text.
//
// A token may hold only part of a multi-byte character (byte-fallback tokens such as
// <0xE2>), so the bytes of a character can arrive in several pieces. push() returns the
// longest valid prefix of everything received and keeps an incomplete trailing character
// for the next piece; bytes that can never form a valid character (a stray continuation
// byte, an overlong form, a surrogate, a sequence cut off) become U+FFFD, one for each
// maximal subpart (Unicode's advice: "\xE2\x80" then "O" is one U+FFFD, then "O").
// finish() flushes a character that was left incomplete as U+FFFD.
//
// Thread-safety: not thread-safe: one thread at a time.
#ifndef KAPSL_SRC_GGUF_UTF8_H_
#define KAPSL_SRC_GGUF_UTF8_H_

#include <string>
#include <string_view>

namespace kapsl::gguf {

class Utf8Assembler {
 public:
  // Appends `bytes` and returns the text that is now complete (possibly "").
  std::string push(std::string_view bytes);
  // Returns what is still held back, as U+FFFD, and resets.
  std::string finish();

 private:
  std::string pending_;  // an incomplete character's leading bytes, at most 3
};

// True if `text` is valid UTF-8.
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_UTF8_H_
