#include "gguf/grammar_prefilter.h"

#include <cmath>
#include <string>
#include <unordered_map>

#include "gguf/engine_impl.h"

namespace kapsl::gguf {
namespace {

// Bytes in a UTF-8 character by its lead byte's high nibble, as llama.cpp's grammar
// decodes it: 0 for a continuation byte, which cannot start one.
constexpr int kCharLength[16] = {1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 3, 4};

int char_length(char lead) { return kCharLength[static_cast<uint8_t>(lead) >> 4]; }

// Where `piece`'s whole characters end, as llama.cpp's grammar decodes it from a clean
// state (continuation bytes taken as they come, unchecked, as it does): none if the piece
// starts with a continuation byte. The last may be the piece's end.
std::vector<size_t> char_ends(std::string_view piece) {
  std::vector<size_t> ends;
  for (size_t pos = 0; pos < piece.size();) {
    const int length = char_length(piece[pos]);
    if (length == 0 || piece.size() - pos < static_cast<size_t>(length)) break;
    pos += static_cast<size_t>(length);
    ends.push_back(pos);
  }
  return ends;
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

const TokenPrefixTree::Tree& TokenPrefixTree::of(const llama_vocab* vocab) const {
  std::call_once(once_, [&] {
    const auto n = static_cast<size_t>(llama_vocab_n_tokens(vocab));
    std::vector<std::string> pieces(n);  // as the grammar sees them; empty for tokens outside the tree
    std::unordered_map<std::string_view, int32_t> by_text;
    for (size_t i = 0; i < n; ++i) {
      const auto id = static_cast<int32_t>(i);
      if (!is_plain_text(vocab, id)) continue;
      std::string piece = token_to_piece(vocab, id, true);
      // The grammar reads a piece up to a NUL: such a piece is left out of the tree.
      if (piece.find('\0') != std::string::npos || char_ends(piece).empty()) continue;
      pieces[i] = std::move(piece);
      by_text.emplace(pieces[i], id);
    }
    std::vector<int32_t> parent(n, -1);
    std::vector<uint32_t> n_children(n + 1, 0);
    for (size_t i = 0; i < n; ++i) {
      if (pieces[i].empty()) {
        tree_.first.push_back(static_cast<int32_t>(i));
        continue;
      }
      const std::string_view text = pieces[i];
      const std::vector<size_t> ends = char_ends(text);
      for (auto end = ends.rbegin(); end != ends.rend() && parent[i] < 0; ++end) {
        if (*end == text.size()) continue;  // a proper prefix only
        const auto found = by_text.find(text.substr(0, *end));
        if (found != by_text.end()) parent[i] = found->second;
      }
      if (parent[i] < 0) {
        tree_.first.push_back(static_cast<int32_t>(i));
      } else {
        ++n_children[static_cast<size_t>(parent[i])];
      }
    }
    tree_.children_begin.assign(n + 1, 0);
    for (size_t i = 0; i < n; ++i) tree_.children_begin[i + 1] = tree_.children_begin[i] + n_children[i];
    tree_.children.resize(tree_.children_begin[n]);
    std::vector<uint32_t> filled(tree_.children_begin.begin(), tree_.children_begin.end() - 1);
    for (size_t i = 0; i < n; ++i) {
      if (parent[i] >= 0) tree_.children[filled[static_cast<size_t>(parent[i])]++] = static_cast<int32_t>(i);
    }
  });
  return tree_;
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

void GrammarPrefilter::taken(llama_sampler* grammar, const float* logits, std::vector<llama_token_data>* out) {
  const size_t n = tree_.children_begin.size() - 1;
  is_taken_.assign(n, 0);
  level_.clear();
  // Shown with logit 0, not their own: a token the model itself gives -inf must not pass
  // for one the grammar refused, or its children would go unseen.
  for (const int32_t id : tree_.first) level_.push_back({id, 0.0f, 0.0f});
  while (!level_.empty()) {
    llama_token_data_array shown = {level_.data(), level_.size(), -1, false};
    llama_sampler_apply(grammar, &shown);
    next_.clear();
    for (const llama_token_data& t : level_) {
      if (std::isinf(t.logit) && t.logit < 0) continue;
      const auto id = static_cast<size_t>(t.id);
      is_taken_[id] = 1;
      for (uint32_t c = tree_.children_begin[id]; c < tree_.children_begin[id + 1]; ++c) {
        next_.push_back({tree_.children[c], 0.0f, 0.0f});
      }
    }
    level_.swap(next_);
  }
  out->clear();
  for (size_t i = 0; i < n; ++i) {
    if (is_taken_[i] != 0) out->push_back({static_cast<llama_token>(i), logits[i], 0.0f});
  }
}

}  // namespace kapsl::gguf
