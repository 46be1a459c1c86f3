// llama-server's text utilities, with its request and response shapes, for every model
// whose engine generates text (the TextGenerator capability):
//   POST /tokenize        {"content": "text" | [text or ids, ...], "add_special": false,
//                          "parse_special": true, "with_pieces": false}
//                         -> {"tokens": [ids]} or {"tokens": [{"id", "piece"}]}
//   POST /detokenize      {"tokens": [ids]} -> {"content": "text"}
//   POST /apply-template  {"messages": [...], "tools"?, "chat_template"?} -> {"prompt": "text"}
//   POST /infill          {"input_prefix", "input_suffix", "input_extra"?, "prompt"?, "stream"?,
//                          sampling fields} -> {"content", "stop": true, "stop_type",
//                          "tokens_predicted", "tokens_evaluated", ...}, or events of
//                          {"content", "stop": false} ending with the whole answer
//                          (infill_prompt.h: the prompt)
// llama-server serves one model and takes no "model" field; kapsl takes one, and without
// it uses the repository's only text generator. Errors use the OpenAI error shape, as
// llama-server's do.
#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "gguf/utf8.h"
#include "kapsl/text_generation.h"
#include "server/generation_route.h"
#include "server/infill_prompt.h"
#include "server/openai_params.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;

namespace {

using Impl = Server::Impl;
using server::Generation;

// The engine of the model the body names, or of the repository's only text generator.
std::shared_ptr<Engine> text_engine(Impl& s, const json& body, TextGenerator** text) {
  const server::RepositoryModel model = s.named_or_only_generator(body);
  std::shared_ptr<Engine> engine = s.host.acquire(model, server::EngineRole::kMain);
  *text = engine->text_generator();
  if (*text == nullptr) throw Error::invalid_input("model '" + model.name + "' does not generate text");
  return engine;
}

void tokenize(Impl& s, const json& body, std::string_view, httplib::Response& res) {
  server::only_fields(body, {"model", "content", "add_special", "parse_special", "with_pieces"}, "tokenize");
  TextGenerator* text = nullptr;
  const auto engine = text_engine(s, body, &text);
  json tokens = json::array();
  if (body.contains("content")) {
    const auto ids = server::tokenize_content(*text, body["content"], server::flag(body, "add_special", false), server::flag(body, "parse_special", true));
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

const char* stop_type(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "eos";
    case FinishReason::kLength: return "limit";
    default: return "none";
  }
}

// llama-server's final answer to a completion of its own (not OpenAI's) shape.
json infill_answer(const Generation& g, const GenerateResult& r, const std::string& content) {
  const GenerationUsage& u = r.usage;
  const double predicted_ms = u.generation_tokens_per_s > 0 ? 1000.0 * u.completion_tokens / u.generation_tokens_per_s : 0;
  const uint32_t evaluated = u.prompt_tokens - std::min(u.prompt_tokens, u.cached_prompt_tokens);
  const double prompt_ms = u.prompt_tokens_per_s > 0 ? 1000.0 * evaluated / u.prompt_tokens_per_s : 0;
  return {{"index", 0}, {"content", content}, {"tokens", json::array()}, {"stop", true}, {"model", g.model},
          {"tokens_predicted", u.completion_tokens}, {"tokens_evaluated", u.prompt_tokens},
          {"tokens_cached", u.cached_prompt_tokens}, {"truncated", false}, {"stop_type", stop_type(u.finish_reason)},
          {"stopping_word", ""},
          {"timings", {{"prompt_n", evaluated}, {"prompt_ms", prompt_ms}, {"prompt_per_second", u.prompt_tokens_per_s},
                       {"predicted_n", u.completion_tokens}, {"predicted_ms", predicted_ms},
                       {"predicted_per_second", u.generation_tokens_per_s}}}};
}

class InfillStream final : public server::StreamFormat {
 public:
  explicit InfillStream(const Generation& g) : g_(g) {}
  std::string start() override { return ""; }
  std::string delta(const std::string& text) override {
    return server::sse({{"index", 0}, {"content", text}, {"tokens", json::array()}, {"stop", false},
                        {"tokens_evaluated", g_.prompt_tokens}});
  }
  std::string finish(const std::vector<GenerateResult>& replies) override {
    return server::sse(infill_answer(g_, replies.front(), ""));
  }
  std::string error(const Error& e) override {
    const int status = server::status_for(e.code(), server::ApiStyle::kOpenAi);
    return server::sse({{"error", {{"code", status}, {"message", e.message()},
                                   {"type", status >= 500 ? "server_error" : "invalid_request_error"}}}});
  }

 private:
  Generation g_;
};

server::GenerationApi infill_api() {
  server::GenerationApi api{[](const json& body, std::string_view) { return server::parse_infill_body(body); }, "infill-",
                            [](const Generation& g, const server::GenerationBody&) {
                              return std::make_unique<InfillStream>(g);
                            },
                            [](const Generation& g, const std::vector<GenerateResult>& replies) {
                              return infill_answer(g, replies.front(), replies.front().text);
                            }};
  api.model_optional = true;
  return api;
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
  http.Post("/infill", [this, api = infill_api()](const httplib::Request& req, httplib::Response& res,
                                                  const httplib::ContentReader& reader) {
    guarded(res, server::ApiStyle::kOpenAi, [&] { server::serve_generation(*this, req, res, reader, api); });
  });
}

}  // namespace kapsl
