#include "server/infill_prompt.h"

#include <algorithm>
#include <iterator>
#include <string_view>

#include "kapsl/error.h"
#include "server/body_fields.h"

namespace kapsl::server {

using json = nlohmann::json;

namespace {

// llama-server's default batch, which its FIM budget is cut from.
constexpr int64_t kInfillBatch = 2048;

void append(std::vector<int32_t>* to, const std::vector<int32_t>& tokens) {
  to->insert(to->end(), tokens.begin(), tokens.end());
}

// The string `field` of `object`, or `fallback` when it is absent or null.
std::string optional_string(const json& object, const char* field, const std::string& where, std::string fallback) {
  const auto it = object.find(field);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_string()) bad(where, "a string", *it);
  return it->get<std::string>();
}

const json& required_content(const json& body, const char* field) {
  const auto it = body.find(field);
  if (it == body.end()) throw Error::invalid_input(std::string("'") + field + "' is required", "the code around the cursor");
  if (!it->is_string() && !it->is_array()) bad(field, "a string or an array of strings and token ids", *it);
  return *it;
}

// The other files, after the repository's name: each behind a separator and its name, or
// behind a plain-text marker where the vocabulary has no separator.
std::vector<int32_t> extra_tokens(const TextGenerator& text, const InfillPrompt& p) {
  const TextModelInfo::FimTokens& fim = text.text_info().fim;
  std::vector<int32_t> extra;
  if (fim.repository >= 0) {
    extra.push_back(fim.repository);
    append(&extra, text.tokenize("myproject\n", false, false));
  }
  for (const auto& [name, body] : p.extra) {
    if (fim.separator >= 0) {
      extra.push_back(fim.separator);
      append(&extra, text.tokenize(name + "\n", false, false));
    } else {
      append(&extra, text.tokenize("\n\n--- snippet ---\n\n", false, false));
    }
    append(&extra, text.tokenize(body, false, false));
  }
  if (fim.separator >= 0) {
    extra.push_back(fim.separator);
    append(&extra, text.tokenize("filename\n", false, false));
  }
  return extra;
}

}  // namespace

InfillPrompt parse_infill_prompt(const json& body) {
  InfillPrompt p;
  p.prefix = required_content(body, "input_prefix");
  p.suffix = required_content(body, "input_suffix");
  if (const auto it = body.find("input_extra"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) bad("input_extra", "an array of {\"filename\", \"text\"}", *it);
    if (it->size() > kMaxInfillExtra) {
      throw Error::invalid_input("'input_extra' has too many files", "at most " + std::to_string(kMaxInfillExtra));
    }
    for (const json& file : *it) {
      if (!file.is_object()) bad("input_extra[]", "an object {\"filename\", \"text\"}", file);
      for (const auto& [key, value] : file.items()) {
        if (key != "filename" && key != "text") bad("input_extra[]", "only 'filename' and 'text'", file);
      }
      p.extra.emplace_back(optional_string(file, "filename", "input_extra[].filename", "tmp"),
                           string_field(file, "text", "input_extra[]"));
    }
  }
  p.prompt = optional_string(body, "prompt", "prompt", "");
  return p;
}

GenerationBody parse_infill_body(const json& body) {
  GenerationBody out;
  if (body.contains("model")) out.model = model_field(body);
  out.input = parse_infill_prompt(body);
  constexpr std::string_view kOwnFields[] = {"model", "stream", "input_prefix", "input_suffix", "input_extra", "prompt"};
  json sampling = json::object();  // the other fields: no copy of the code
  for (const auto& [key, value] : body.items()) {
    if (std::find(std::begin(kOwnFields), std::end(kOwnFields), key) == std::end(kOwnFields)) sampling[key] = value;
  }
  out.sampling = parse_sampling(sampling, /*kserve=*/true);  // refuses all but sampling fields
  out.sampling.stream = flag(body, "stream", false);
  return out;
}

std::vector<int32_t> infill_tokens(const TextGenerator& text, const InfillPrompt& p, uint32_t max_tokens) {
  const TextModelInfo& info = text.text_info();
  if (info.fim.prefix < 0 || info.fim.suffix < 0 || info.fim.middle < 0) {
    throw Error::invalid_input("this model does not fill in the middle",
                               "its vocabulary has no FIM prefix, suffix and middle tokens");
  }
  std::vector<int32_t> prefix = tokenize_content(text, p.prefix, false, false, "input_prefix");
  std::vector<int32_t> suffix = tokenize_content(text, p.suffix, false, false, "input_suffix");
  const std::vector<int32_t> prompt = text.tokenize(p.prompt, false, true);
  const std::vector<int32_t> extra = extra_tokens(text, p);
  // The prefix's end and the suffix's start are what matter most: 3/4 and 1/4 of a batch.
  const auto prefix_take = std::min<int64_t>(static_cast<int64_t>(prefix.size()), 3 * (kInfillBatch / 4));
  const auto suffix_take = std::min<int64_t>(
      static_cast<int64_t>(suffix.size()),
      std::max<int64_t>(0, kInfillBatch / 4 - (2 + static_cast<int64_t>(prompt.size()))));
  const auto extra_take = std::min<int64_t>(
      std::max<int64_t>(0, static_cast<int64_t>(info.context_size) - kInfillBatch - 2 * static_cast<int64_t>(max_tokens)),
      static_cast<int64_t>(extra.size()));
  std::vector<int32_t> tokens(extra.end() - extra_take, extra.end());
  if (info.adds_bos && info.bos_token >= 0) tokens.push_back(info.bos_token);
  tokens.push_back(info.fim.prefix);
  tokens.insert(tokens.end(), prefix.end() - prefix_take, prefix.end());
  append(&tokens, prompt);
  tokens.push_back(info.fim.suffix);
  tokens.insert(tokens.end(), suffix.begin(), suffix.begin() + suffix_take);
  tokens.push_back(info.fim.middle);
  return tokens;
}

std::vector<int32_t> tokenize_content(const TextGenerator& text, const json& content, bool add_special,
                                      bool parse_special, const std::string& field) {
  if (content.is_string()) return text.tokenize(content.get<std::string>(), add_special, parse_special);
  if (!content.is_array()) throw Error::invalid_input("'" + field + "' must be a string or an array of strings and token ids");
  const int32_t n_vocab = text.text_info().vocab_size;
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    if (part.is_string()) {
      append(&tokens, text.tokenize(part.get<std::string>(), add_special && i == 0, parse_special));
    } else if (part.is_number_integer() && part.get<int64_t>() >= 0 && part.get<int64_t>() < n_vocab) {
      tokens.push_back(part.get<int32_t>());
    } else {
      throw Error::invalid_input("'" + field + "[" + std::to_string(i) + "]'",
                                 "expected a string or a token id in [0, " + std::to_string(n_vocab) + ")");
    }
  }
  return tokens;
}

}  // namespace kapsl::server
