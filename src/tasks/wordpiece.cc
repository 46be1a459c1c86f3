#include "tasks/wordpiece.h"

#include <fstream>

#include "kapsl/error.h"

namespace kapsl::internal {
namespace {

constexpr uint64_t kMaxVocabBytes = uint64_t{64} << 20;
constexpr size_t kMaxWordChars = 100;  // BERT's max_input_chars_per_word
constexpr char32_t kInvalid = 0xFFFD;

// Decodes UTF-8; each invalid or truncated sequence becomes U+FFFD.
std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    char32_t cp = len == 1 ? b : len == 2 ? (b & 0x1F) : len == 3 ? (b & 0x0F) : (b & 0x07);
    bool ok = len > 0 && i + static_cast<size_t>(len) <= s.size();
    for (int k = 1; ok && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
      ok = (c >> 6) == 2;
      cp = (cp << 6) | (c & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    ok = ok && cp >= kMin[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    out.push_back(ok ? cp : kInvalid);
    i += ok ? static_cast<size_t>(len) : 1;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0xA0 || c == 0x3000 || (c >= 0x2000 && c <= 0x200A);
}

bool is_control(char32_t c) { return (c < 0x20 && !is_whitespace(c)) || (c >= 0x7F && c < 0xA0); }

// BERT counts every ASCII non-alphanumeric printable as punctuation, plus Unicode's
// general and CJK punctuation blocks.
bool is_punctuation(char32_t c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
         (c >= 0x2010 && c <= 0x205E) || (c >= 0x3001 && c <= 0x303F) || (c >= 0xFF01 && c <= 0xFF0F) ||
         c == 0xA1 || c == 0xA7 || c == 0xAB || c == 0xB6 || c == 0xB7 || c == 0xBB || c == 0xBF;
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2CEAF) || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

char32_t lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;  // Latin-1 capitals
  return c;
}

// BERT's basic tokenizer: words split on whitespace, punctuation and CJK ideographs.
std::vector<std::u32string> basic_words(const std::u32string& text, bool lowercase) {
  std::vector<std::u32string> words;
  std::u32string word;
  const auto flush = [&] {
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
  };
  for (char32_t c : text) {
    if (c == 0 || is_control(c)) continue;
    if (is_whitespace(c)) {
      flush();
    } else if (is_punctuation(c) || is_cjk(c)) {
      flush();
      words.push_back(std::u32string(1, c));
    } else {
      word.push_back(lowercase ? lower(c) : c);
    }
  }
  flush();
  return words;
}

}  // namespace

WordPiece::WordPiece(WordPieceConfig config) : config_(std::move(config)) {
  const std::string shown = config_.vocab.string();
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(config_.vocab, ec);
  if (ec) throw Error::invalid_input("tokenizer vocabulary " + shown, "cannot be read: " + ec.message());
  if (size > kMaxVocabBytes) throw Error::invalid_input("tokenizer vocabulary " + shown, "larger than 64 MiB");
  std::ifstream in(config_.vocab, std::ios::binary);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ids_.emplace(line, static_cast<int32_t>(tokens_.size()));  // the first of duplicates wins
    tokens_.push_back(line);
  }
  if (tokens_.empty()) throw Error::invalid_input("tokenizer vocabulary " + shown, "has no tokens");
  unk_ = id("[UNK]");
  if (unk_ < 0) throw Error::invalid_input("tokenizer vocabulary " + shown, "has no [UNK] token");
  cls_ = id("[CLS]");
  sep_ = id("[SEP]");
  pad_ = std::max(id("[PAD]"), 0);
}

int32_t WordPiece::id(const std::string& piece) const {
  const auto it = ids_.find(piece);
  return it == ids_.end() ? -1 : it->second;
}

std::vector<int32_t> WordPiece::encode_word(const std::u32string& word) const {
  if (word.size() > kMaxWordChars) return {unk_};
  std::vector<int32_t> pieces;
  for (size_t start = 0; start < word.size();) {
    int32_t found = -1;
    size_t end = word.size();
    for (; end > start; --end) {
      std::string piece = start > 0 ? "##" : "";
      for (size_t i = start; i < end; ++i) append_utf8(piece, word[i]);
      if ((found = id(piece)) >= 0) break;
    }
    if (found < 0) return {unk_};
    pieces.push_back(found);
    start = end;
  }
  return pieces;
}

std::vector<int32_t> WordPiece::encode(std::string_view text) const {
  const size_t specials = (cls_ >= 0 ? 1 : 0) + (sep_ >= 0 ? 1 : 0);
  const size_t room = config_.max_tokens > specials ? config_.max_tokens - specials : 0;
  std::vector<int32_t> ids;
  if (cls_ >= 0) ids.push_back(cls_);
  const size_t limit = room + (cls_ >= 0 ? 1 : 0);
  for (const auto& word : basic_words(decode_utf8(text), config_.lowercase)) {
    for (int32_t piece : encode_word(word)) {
      if (ids.size() < limit) ids.push_back(piece);
    }
    if (ids.size() >= limit) break;
  }
  if (sep_ >= 0) ids.push_back(sep_);
  return ids;
}

}  // namespace kapsl::internal
