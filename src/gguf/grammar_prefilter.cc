#include "gguf/grammar_prefilter.h"

#include <cmath>
#include <optional>
#include <string>
#include <unordered_map>

#include "gguf/engine_impl.h"

namespace kapsl::gguf {
namespace {

// Bytes in a UTF-8 character by its lead byte's high nibble, as llama.cpp's grammar
// decodes it: 0 for a continuation byte, which cannot start one.
constexpr int kCharLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};

int char_length(char lead) { return kCharLength[static_cast<uint8_t>(lead) >> 4]; }

struct FirstChar {
  uint32_t code_point;
  size_t bytes;
};

// The first character of `piece` as llama.cpp's grammar decodes it from a clean state
// (continuation bytes are taken as they come, unchecked, as it does); none if the piece
// starts with a continuation byte or a NUL, or ends inside that character.
std::optional<FirstChar> first_char(std::string_view piece) {
  if (piece.empty() || piece[0] == '\0') return std::nullopt;
  const int length = char_length(piece[0]);
  if (length == 0 || piece.size() < static_cast<size_t>(length)) return std::nullopt;
  uint32_t value = static_cast<uint8_t>(piece[0]) & ((1u << (8 - length)) - 1);
  for (int i = 1; i < length; ++i) {
    if (piece[i] == '\0') return std::nullopt;
    value = (value << 6) + (static_cast<uint8_t>(piece[i]) & 0x3F);
  }
  return FirstChar{value, static_cast<size_t>(length)};
}

// Plain text, matched by the grammar through its characters alone.
bool is_plain_text(const llama_vocab* vocab, int32_t id) {
  const auto attr = static_cast<uint32_t>(llama_vocab_get_attr(vocab, id));
  constexpr uint32_t kText = LLAMA_TOKEN_ATTR_NORMAL | LLAMA_TOKEN_ATTR_BYTE;
  constexpr uint32_t kNotText = LLAMA_TOKEN_ATTR_CONTROL | LLAMA_TOKEN_ATTR_USER_DEFINED | LLAMA_TOKEN_ATTR_UNKNOWN |
                                LLAMA_TOKEN_ATTR_UNUSED;
  return (attr & kText) != 0 && (attr & kNotText) == 0 && !llama_vocab_is_eog(vocab, id);
}

// Skips a literal or a character class starting at g[i] (its opening quote or bracket);
// returns the index of its closing one (or g.size()).
size_t skip_quoted(std::string_view g, size_t i, char close) {
  for (++i; i < g.size() && g[i] != close; ++i) {
    if (g[i] == '\\') ++i;
  }
  return i;
}

}  // namespace

const FirstCharGroups::Groups& FirstCharGroups::of(const llama_vocab* vocab) const {
  std::call_once(once_, [&] {
    struct Char {
      uint32_t tokens = 0;
      int32_t alone = -1;  // the token that is this character alone
      uint32_t group = kNoGroup;
    };
    const auto n = static_cast<size_t>(llama_vocab_n_tokens(vocab));
    std::vector<std::optional<uint32_t>> first(n);
    std::unordered_map<uint32_t, Char> chars;
    for (size_t i = 0; i < n; ++i) {
      const auto id = static_cast<int32_t>(i);
      if (!is_plain_text(vocab, id)) continue;
      const std::string piece = token_to_piece(vocab, id, true);  // as the grammar sees it
      const std::optional<FirstChar> c = first_char(piece);
      if (!c) continue;
      first[i] = c->code_point;
      Char& stats = chars[c->code_point];
      ++stats.tokens;
      if (piece.size() == c->bytes && stats.alone < 0) stats.alone = id;
    }
    groups_.group_of.assign(n, kNoGroup);
    for (size_t i = 0; i < n; ++i) {
      if (!first[i]) continue;
      Char& c = chars[*first[i]];
      if (c.tokens < 2 || c.alone < 0) continue;  // a group of one saves nothing; no probe, no group
      if (c.group == kNoGroup) {
        c.group = static_cast<uint32_t>(groups_.probes.size());
        groups_.probes.push_back(c.alone);
      }
      groups_.group_of[i] = c.group;
    }
  });
  return groups_;
}

bool grammar_refers_to_tokens(std::string_view g) {
  for (size_t i = 0; i < g.size(); ++i) {
    switch (g[i]) {
      case '#': i = std::min(g.find('\n', i), g.size()); break;
      case '"': i = skip_quoted(g, i, '"'); break;
      case '[': i = skip_quoted(g, i, ']'); break;
      case '<':
      case '!': return true;
      default: break;
    }
  }
  return false;
}

void GrammarPrefilter::candidates(llama_sampler* grammar, const float* logits, std::vector<llama_token_data>* out) {
  probe_data_.clear();
  for (const int32_t probe : groups_.probes) probe_data_.push_back({probe, 0.0f, 0.0f});
  llama_token_data_array probes = {probe_data_.data(), probe_data_.size(), -1, false};
  llama_sampler_apply(grammar, &probes);
  for (size_t g = 0; g < probe_data_.size(); ++g) {
    const float logit = probe_data_[g].logit;
    probe_taken_[g] = !(std::isinf(logit) && logit < 0);
  }
  out->clear();
  for (size_t i = 0; i < groups_.group_of.size(); ++i) {
    const uint32_t g = groups_.group_of[i];
    if (g == FirstCharGroups::kNoGroup || probe_taken_[g]) out->push_back({static_cast<llama_token>(i), logits[i], 0.0f});
  }
}

}  // namespace kapsl::gguf
