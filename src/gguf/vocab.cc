// Tokenization, detokenization and chat templates: thin wrappers over llama.cpp's vocab
// API, which is thread-safe, with its "buffer too small" protocol handled once here.
#include <climits>
#include <string>
#include <vector>

#include "gguf/engine_impl.h"
#include "kapsl/error.h"
#include "llama.h"

namespace kapsl::gguf {

std::vector<int32_t> tokenize(const llama_vocab* vocab, std::string_view text, bool add_special, bool parse_special) {
  if (text.size() > static_cast<size_t>(INT32_MAX / 2)) {
    throw Error::invalid_input("text too long to tokenize", std::to_string(text.size()) + " bytes");
  }
  const auto len = static_cast<int32_t>(text.size());
  std::vector<int32_t> tokens(text.size() + 2);
  // Wraps llama_tokenize; a negative count means "needs that many".
  int32_t n = llama_tokenize(vocab, text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()),
                             add_special, parse_special);
  if (n == INT32_MIN) throw Error::invalid_input("text too long to tokenize", std::to_string(text.size()) + " bytes");
  if (n < 0) {
    tokens.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), len, tokens.data(), static_cast<int32_t>(tokens.size()), add_special,
                       parse_special);
    if (n < 0) throw Error::backend("llama_tokenize failed", "returned " + std::to_string(n));
  }
  tokens.resize(static_cast<size_t>(n));
  return tokens;
}

std::string token_to_piece(const llama_vocab* vocab, int32_t token, bool special) {
  std::string piece(16, '\0');
  int32_t n = llama_token_to_piece(vocab, token, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
  if (n < 0) {
    piece.resize(static_cast<size_t>(-n));
    n = llama_token_to_piece(vocab, token, piece.data(), static_cast<int32_t>(piece.size()), 0, special);
    if (n < 0) throw Error::backend("llama_token_to_piece failed", "token " + std::to_string(token));
  }
  piece.resize(static_cast<size_t>(n));
  return piece;
}

std::string detokenize(const llama_vocab* vocab, std::span<const int32_t> tokens, bool special) {
  const int32_t n_vocab = llama_vocab_n_tokens(vocab);
  for (int32_t t : tokens) {
    if (t < 0 || t >= n_vocab) {
      throw Error::invalid_input("token id out of range",
                                 "expected 0 <= id < " + std::to_string(n_vocab) + ", got " + std::to_string(t));
    }
  }
  if (tokens.size() > static_cast<size_t>(INT32_MAX / 64)) throw Error::invalid_input("too many tokens to detokenize");
  const auto count = static_cast<int32_t>(tokens.size());
  std::string text(tokens.size() * 8 + 16, '\0');
  // Wraps llama_detokenize; a negative count means "needs that many bytes".
  int32_t n = llama_detokenize(vocab, tokens.data(), count, text.data(), static_cast<int32_t>(text.size()), false,
                               special);
  if (n < 0) {
    text.resize(static_cast<size_t>(-n));
    n = llama_detokenize(vocab, tokens.data(), count, text.data(), static_cast<int32_t>(text.size()), false, special);
    if (n < 0) throw Error::backend("llama_detokenize failed", "returned " + std::to_string(n));
  }
  text.resize(static_cast<size_t>(n));
  return text;
}

const std::string& effective_chat_template(const GgufEngine::Impl& impl) {
  static const std::string kChatml = "chatml";
  if (!impl.options.chat_template.empty()) return impl.options.chat_template;
  return impl.info.chat_template.empty() ? kChatml : impl.info.chat_template;
}

std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_assistant) {
  std::vector<llama_chat_message> chat;
  size_t total = 0;
  for (const ChatMessage& m : messages) {
    chat.push_back({m.role.c_str(), m.content.c_str()});
    total += m.role.size() + m.content.size();
  }
  std::string out(2 * total + 256, '\0');
  // Wraps llama_chat_apply_template; returns the full length even when it did not fit.
  int32_t n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_assistant, out.data(),
                                        static_cast<int32_t>(out.size()));
  if (n < 0) {
    throw Error::invalid_input("chat template not supported by llama.cpp",
                               "template starts with \"" + tmpl.substr(0, 60) + "\"");
  }
  if (static_cast<size_t>(n) > out.size()) {
    out.resize(static_cast<size_t>(n));
    n = llama_chat_apply_template(tmpl.c_str(), chat.data(), chat.size(), add_assistant, out.data(), n);
    if (n < 0) throw Error::backend("llama_chat_apply_template failed on its second call");
  }
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace kapsl::gguf
