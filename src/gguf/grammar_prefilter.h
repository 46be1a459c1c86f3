// The tokens llama.cpp's grammar takes, found without showing it the whole vocabulary.
//
// When a constrained sampler must apply its grammar to every token (the chain's pick broke
// it), most of the work is wasted: in a JSON key or between values the grammar takes a
// handful of 151,936 tokens. But a grammar that takes a token takes every prefix of it:
// it takes a token when some grammar stack can consume the token's characters one by one,
// and the stacks that consume a text consume its prefixes. So the plain-text tokens form
// a tree, each under the longest other token its text starts with (" hello" under
// " hell", " hell" under " h", " h" under " "), and only the children of a token the
// grammar takes can be taken: GrammarPrefilter applies the grammar to the tree's roots,
// then to the children of what it took, level by level. The tokens it takes are exactly
// those it takes from the whole vocabulary.
//
// Where the output so far ends inside a UTF-8 character, the grammar refuses every token
// that starts with a whole character, the roots included, and takes only tokens that
// start with the rest of one: those are never in the tree, and always shown to it.
// Tokens that are not plain text (control, user-defined, unknown, unused, end of
// generation) are not in the tree either. It does not hold where the grammar names tokens
// (<[id]>, <|name|>, !<...>), which match by id, not text, nor for a lazy grammar, which
// takes every token until triggered and replays text then: the prefilter is not used there.
//
// Thread-safety: TokenPrefixTree is safe for concurrent use (built once, on first use); a
// GrammarPrefilter belongs to one request's sampler, one thread at a time.
#ifndef KAPSL_SRC_GGUF_GRAMMAR_PREFILTER_H_
#define KAPSL_SRC_GGUF_GRAMMAR_PREFILTER_H_

#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

#include "llama-cpp.h"

namespace kapsl::gguf {

// The vocabulary's plain-text tokens that start with a whole character, each under the
// longest other such token its text starts with (cut at a character boundary).
class TokenPrefixTree {
 public:
  struct Tree {
    std::vector<int32_t> first;             // the tree's roots, and the tokens outside it
    std::vector<uint32_t> children_begin;   // by token id, n_vocab + 1 offsets into children
    std::vector<int32_t> children;          // ascending id under each parent
  };
  const Tree& of(const llama_vocab* vocab) const;

 private:
  mutable std::once_flag once_;
  mutable Tree tree_;
};

// Whether a GBNF grammar has token elements (<[id]>, <name>, !<...>) outside its literals,
// character classes and comments. Errs towards true.
bool grammar_refers_to_tokens(std::string_view gbnf);

class GrammarPrefilter {
 public:
  // `tree` is borrowed.
  explicit GrammarPrefilter(const TokenPrefixTree::Tree& tree) : tree_(tree) {}

  // Fills `out` with {id, logits[id]} for every token `grammar` takes, ascending by id.
  void taken(llama_sampler* grammar, const float* logits, std::vector<llama_token_data>* out);

 private:
  const TokenPrefixTree::Tree& tree_;
  // Scratch: the tokens shown to the grammar at once, the next level, what it took by id.
  std::vector<llama_token_data> level_;
  std::vector<llama_token_data> next_;
  std::vector<uint8_t> is_taken_;
};

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_GRAMMAR_PREFILTER_H_
