#include "server/openai_logprobs.h"

#include <cmath>
#include <limits>

namespace kapsl::server {

using json = nlohmann::json;

namespace {

// JSON has no -Infinity: a token the model rules out entirely gets the lowest float.
double finite(float logprob) {
  return std::isfinite(logprob) ? logprob : std::numeric_limits<float>::lowest();
}

json token_json(const TokenLogprob& t) {
  json bytes = json::array();
  for (const char c : t.piece) bytes.push_back(static_cast<unsigned char>(c));
  return {{"token", t.piece}, {"logprob", finite(t.logprob)}, {"bytes", std::move(bytes)}};
}

}  // namespace

json chat_logprobs_json(std::span<const GeneratedLogprob> logprobs) {
  json content = json::array();
  for (const GeneratedLogprob& l : logprobs) {
    json entry = token_json(l.sampled);
    json top = json::array();
    for (const TokenLogprob& t : l.top) top.push_back(token_json(t));
    entry["top_logprobs"] = std::move(top);
    content.push_back(std::move(entry));
  }
  return {{"content", std::move(content)}, {"refusal", nullptr}};
}

json completion_logprobs_json(std::span<const GeneratedLogprob> logprobs, size_t* text_offset) {
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const GeneratedLogprob& l : logprobs) {
    tokens.push_back(l.sampled.piece);
    token_logprobs.push_back(finite(l.sampled.logprob));
    json top = json::object();
    for (const TokenLogprob& t : l.top) top[t.piece] = finite(t.logprob);
    top_logprobs.push_back(std::move(top));
    offsets.push_back(*text_offset);
    *text_offset += l.sampled.piece.size();
  }
  return {{"tokens", std::move(tokens)},
          {"token_logprobs", std::move(token_logprobs)},
          {"top_logprobs", std::move(top_logprobs)},
          {"text_offset", std::move(offsets)}};
}

}  // namespace kapsl::server
