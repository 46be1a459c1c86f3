// A prefilter for llama.cpp's grammar sampler: when a grammar must be applied to the whole
// vocabulary (the chain's pick broke it), most tokens can be ruled out by their first
// character alone, at a fraction of the cost.
//
// Why it is exact: llama.cpp's grammar takes a token when some grammar stack can consume
// the token's characters one by one, so a token it takes has a first character that some
// stack takes. A "probe" token made of that one character alone is taken exactly when some
// stack takes the character. So: apply the grammar to one probe per first character, then
// to the tokens whose probe it took (and to every token that has no probe); the tokens it
// takes are the same as when it is applied to the whole vocabulary, in the same order.
//
// Inside a UTF-8 character (the last token ended part-way through one) it still holds: the
// grammar then refuses every token that starts with a whole character, probes included.
// It does not hold where the grammar names tokens (<[id]>, <|name|>, !<...>), which match
// by id, not text, nor for a lazy grammar, which takes every token until triggered and
// replays text then: for those, the prefilter is not used.
// Tokens that are not plain text (control, user-defined, unknown, unused, end of
// generation) and pieces that do not start with a whole character are never ruled out.
//
// Thread-safety: FirstCharGroups is safe for concurrent use (computed once, on first use);
// a GrammarPrefilter belongs to one request's sampler, one thread at a time.
#ifndef KAPSL_SRC_GGUF_GRAMMAR_PREFILTER_H_
#define KAPSL_SRC_GGUF_GRAMMAR_PREFILTER_H_

#include <cstdint>
#include <limits>
#include <mutex>
#include <string_view>
#include <vector>

#include "llama-cpp.h"

namespace kapsl::gguf {

// The vocabulary's plain-text tokens grouped by their first character (as llama.cpp's
// grammar decodes it), for the characters that start two tokens or more and are a token
// on their own.
class FirstCharGroups {
 public:
  static constexpr uint32_t kNoGroup = std::numeric_limits<uint32_t>::max();
  struct Groups {
    std::vector<uint32_t> group_of;  // by token id: its group, or kNoGroup (never ruled out)
    std::vector<int32_t> probes;     // by group: the token that is its character alone
  };
  const Groups& of(const llama_vocab* vocab) const;

 private:
  mutable std::once_flag once_;
  mutable Groups groups_;
};

// Whether a GBNF grammar has token elements (<[id]>, <name>, !<...>) outside its literals,
// character classes and comments. Errs towards true.
bool grammar_refers_to_tokens(std::string_view gbnf);

class GrammarPrefilter {
 public:
  // `groups` is borrowed.
  explicit GrammarPrefilter(const FirstCharGroups::Groups& groups)
      : groups_(groups), probe_taken_(groups.probes.size()) {}

  // Fills `out` with {id, logits[id]} for every token `grammar` might take, ascending by
  // id, after applying `grammar` to the probes.
  void candidates(llama_sampler* grammar, const float* logits, std::vector<llama_token_data>* out);

 private:
  const FirstCharGroups::Groups& groups_;
  std::vector<llama_token_data> probe_data_;
  std::vector<uint8_t> probe_taken_;  // by group
};

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_GRAMMAR_PREFILTER_H_
