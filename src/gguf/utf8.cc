#include "gguf/utf8.h"

#include <cstdint>

namespace kapsl::gguf {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

enum class Scan { kComplete, kIncomplete, kInvalid };

// Examines the character starting at s[0]. On kComplete sets *len to its byte length; on
// kInvalid to the length of its maximal subpart (the longest start of a valid sequence, at
// least 1), which becomes one U+FFFD, as the Unicode standard advises and WHATWG, Python
// and llama-server do. The ranges are RFC 3629's: they exclude overlong forms, surrogates
// and code points above U+10FFFF, so an accepted sequence is always a valid character.
Scan scan_char(std::string_view s, size_t* len) noexcept {
  *len = 1;
  const auto b0 = static_cast<uint8_t>(s[0]);
  if (b0 < 0x80) {
    *len = 1;
    return Scan::kComplete;
  }
  size_t n = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) n = 3, lo = 0xA0;
  else if (b0 == 0xED) n = 3, hi = 0x9F;
  else if (b0 >= 0xE1 && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) n = 4, lo = 0x90;
  else if (b0 == 0xF4) n = 4, hi = 0x8F;
  else if (b0 >= 0xF1 && b0 <= 0xF3) n = 4;
  else return Scan::kInvalid;
  for (size_t i = 1; i < n; ++i) {
    if (i >= s.size()) return Scan::kIncomplete;
    const auto b = static_cast<uint8_t>(s[i]);
    const uint8_t min = i == 1 ? lo : 0x80, max = i == 1 ? hi : 0xBF;
    if (b < min || b > max) {
      *len = i;
      return Scan::kInvalid;
    }
  }
  *len = n;
  return Scan::kComplete;
}

}  // namespace

std::string Utf8Assembler::push(std::string_view bytes) {
  pending_.append(bytes);
  std::string out;
  std::string_view rest = pending_;
  while (!rest.empty()) {
    size_t len = 0;
    const Scan scan = scan_char(rest, &len);
    if (scan == Scan::kIncomplete) break;
    if (scan == Scan::kInvalid) {
      out.append(kReplacement);
      rest.remove_prefix(len);
      continue;
    }
    out.append(rest.substr(0, len));
    rest.remove_prefix(len);
  }
  pending_ = std::string(rest);
  return out;
}

std::string Utf8Assembler::finish() {
  std::string out = pending_.empty() ? std::string() : std::string(kReplacement);
  pending_.clear();
  return out;
}

bool is_valid_utf8(std::string_view text) noexcept {
  while (!text.empty()) {
    size_t len = 0;
    if (scan_char(text, &len) != Scan::kComplete) return false;
    text.remove_prefix(len);
  }
  return true;
}

}  // namespace kapsl::gguf
