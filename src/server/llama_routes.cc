// llama-server's text utilities, with its request and response shapes, for every model
// whose engine generates text (the TextGenerator capability):
//   POST /tokenize        {"content": "text" | [text or ids, ...], "add_special": false,
//                          "parse_special": true, "with_pieces": false}
//                         -> {"tokens": [ids]} or {"tokens": [{"id", "piece"}]}
//   POST /detokenize      {"tokens": [ids]} -> {"content": "text"}
//   POST /apply-template  {"messages": [...], "tools"?, "chat_template"?} -> {"prompt": "text"}
// llama-server serves one model and takes no "model" field; kapsl takes one, and without
// it uses the repository's only text generator. Errors use the OpenAI error shape, as
// llama-server's do.
#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "gguf/utf8.h"
#include "kapsl/text_generation.h"
#include "server/generation_route.h"
#include "server/openai_params.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;

namespace {

using Impl = Server::Impl;

// The engine of the model the body names, or of the repository's only text generator.
std::shared_ptr<Engine> text_engine(Impl& s, const json& body, TextGenerator** text) {
  server::RepositoryModel model;
  if (body.contains("model")) {
    model = s.find_model(server::model_field(body));
  } else {
    std::vector<server::RepositoryModel> generators;
    for (auto& m : s.repository.list()) {
      if (m.resolved->task == "generate") generators.push_back(std::move(m));
    }
    if (generators.size() != 1) {
      throw Error::invalid_input("'model' is required", "the repository holds " + std::to_string(generators.size()) +
                                                            " text-generation models");
    }
    model = std::move(generators[0]);
  }
  std::shared_ptr<Engine> engine = s.host.acquire(model, server::EngineRole::kMain);
  *text = engine->text_generator();
  if (*text == nullptr) throw Error::invalid_input("model '" + model.name + "' does not generate text");
  return engine;
}

// llama-server's tokenize_mixed: strings tokenized (special tokens added to the first
// only), token ids taken as they are.
std::vector<int32_t> tokenize_content(const TextGenerator& text, const json& content, bool add_special, bool parse_special) {
  if (content.is_string()) return text.tokenize(content.get<std::string>(), add_special, parse_special);
  if (!content.is_array()) throw Error::invalid_input("'content' must be a string or an array of strings and token ids");
  std::vector<int32_t> tokens;
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    if (part.is_string()) {
      const auto piece = text.tokenize(part.get<std::string>(), add_special && i == 0, parse_special);
      tokens.insert(tokens.end(), piece.begin(), piece.end());
    } else if (part.is_number_integer() && part.get<int64_t>() >= 0 && part.get<int64_t>() < text.text_info().vocab_size) {
      tokens.push_back(part.get<int32_t>());
    } else {
      throw Error::invalid_input("'content[" + std::to_string(i) + "]'", "expected a string or a token id in [0, " +
                                                                            std::to_string(text.text_info().vocab_size) + ")");
    }
  }
  return tokens;
}

void tokenize(Impl& s, const json& body, std::string_view, httplib::Response& res) {
  server::only_fields(body, {"model", "content", "add_special", "parse_special", "with_pieces"}, "tokenize");
  TextGenerator* text = nullptr;
  const auto engine = text_engine(s, body, &text);
  json tokens = json::array();
  if (body.contains("content")) {
    const auto ids = tokenize_content(*text, body["content"], server::flag(body, "add_special", false), server::flag(body, "parse_special", true));
    if (!server::flag(body, "with_pieces", false)) {
      tokens = ids;
    } else {
      for (const int32_t id : ids) {
        const std::string piece = text->detokenize(std::span(&id, 1), /*special=*/true);
        json shown = piece;
        if (!gguf::is_valid_utf8(piece)) {  // as llama-server: its bytes
          shown = json::array();
          for (const unsigned char c : piece) shown.push_back(static_cast<int>(c));
        }
        tokens.push_back({{"id", id}, {"piece", std::move(shown)}});
      }
    }
  }
  res.set_content(server::dump({{"tokens", std::move(tokens)}}), "application/json");
}

void detokenize(Impl& s, const json& body, std::string_view, httplib::Response& res) {
  server::only_fields(body, {"model", "tokens"}, "detokenize");
  TextGenerator* text = nullptr;
  const auto engine = text_engine(s, body, &text);
  std::string content;
  if (body.contains("tokens")) {
    const json& ids = body["tokens"];
    if (!ids.is_array()) throw Error::invalid_input("'tokens' must be an array of token ids");
    std::vector<int32_t> tokens;
    for (const json& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= text->text_info().vocab_size) {
        throw Error::invalid_input("'tokens'", "expected token ids in [0, " + std::to_string(text->text_info().vocab_size) +
                                                   "), got " + id.dump().substr(0, 32));
      }
      tokens.push_back(id.get<int32_t>());
    }
    content = text->detokenize(tokens, /*special=*/true);
  }
  res.set_content(server::dump({{"content", content}}), "application/json");
}

void apply_template(Impl& s, const json& body, std::string_view raw, httplib::Response& res) {
  server::check_fields(body, {"messages", "chat_template"});
  TextGenerator* text = nullptr;
  const auto engine = text_engine(s, body, &text);
  ChatPrompt chat;
  chat.messages = server::parse_messages(body);
  server::parse_tools(body, &chat, raw);
  if (const auto it = body.find("chat_template"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) throw Error::invalid_input("'chat_template' must be a template name or template text");
    chat.chat_template = it->get<std::string>();
  }
  res.set_content(server::dump({{"prompt", text->apply_chat_template(chat, true)}}), "application/json");
}

}  // namespace

void Server::Impl::register_llama_routes() {
  using Handler = void (*)(Impl&, const json&, std::string_view raw, httplib::Response&);
  const auto route = [this](Handler handler) {
    return [this, handler](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      guarded(res, server::ApiStyle::kOpenAi, [&] {
        auto lease = bodies.lease();
        const std::string raw = read_body(req, reader, lease);
        handler(*this, server::parse_object(raw), raw, res);
      });
    };
  };
  http.Post("/tokenize", route(tokenize));
  http.Post("/detokenize", route(detokenize));
  http.Post("/apply-template", route(apply_template));
}

}  // namespace kapsl
