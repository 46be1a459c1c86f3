// OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions (streamed as
// server-sent events ending with "data: [DONE]") and /v1/embeddings. Routes ask the engine
// for a capability — TextGenerator for generation, Embedder for embeddings — and never check
// which backend a model uses. Errors use OpenAI's {"error": {...}} shape.
//
// Generation goes through generation_route.h (prompt checks before any byte is sent,
// streams that stop when their client leaves); this file holds OpenAI's shapes.
#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "kapsl/embedding.h"
#include "kapsl/error.h"
#include "kapsl/text_generation.h"
#include "server/generation_route.h"
#include "server/openai_logprobs.h"
#include "server/openai_params.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;
using server::ApiStyle;
using server::EngineRole;
using server::Outcome;
using ModelCall = Server::Impl::ModelCall;

namespace {

// A generation that ended normally: "length" or "stop" (cut ones are errors).
const char* openai_finish_reason(FinishReason reason) { return reason == FinishReason::kLength ? "length" : "stop"; }

Embedder& embedder_of(Engine& engine, const server::RepositoryModel& model) {
  Embedder* embedder = engine.embedder();
  if (embedder == nullptr) {
    throw Error::invalid_input("model '" + model.name + "' does not produce embeddings",
                               "its task is " + model.resolved->task + " (backend " + model.resolved->backend->name() + ")");
  }
  return *embedder;
}

using server::Generation;
using server::dump;

json usage_json(const GenerationUsage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens}}}};
}

// A chat that ended normally by calling tools finishes with "tool_calls".
const char* finish_reason_of(const GenerateResult& r) {
  const bool called = r.message && !r.message->tool_calls.empty();
  return called && r.usage.finish_reason == FinishReason::kStop ? "tool_calls" : openai_finish_reason(r.usage.finish_reason);
}

// A chunk of the stream around one choice.
json stream_chunk(const Generation& g, json choice) {
  return {{"id", g.id},
          {"object", g.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", g.created},
          {"model", g.model},
          {"choices", json::array({std::move(choice)})}};
}

// A choice of a chunk: a chat's delta, or a completion's text.
json stream_choice(const Generation& g, uint32_t index, json delta_or_text, const char* finish_reason) {
  json choice = {{"index", index}, {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  if (g.chat) {
    choice["delta"] = std::move(delta_or_text);
  } else {
    choice["text"] = std::move(delta_or_text);
  }
  choice["logprobs"] = nullptr;
  return choice;
}

json tool_call_json(const ToolCall& c) {
  return {{"id", c.id}, {"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}};
}

// A chat delta as OpenAI streams it: a tool call's first delta carries its id and name.
json delta_json(const ChatDelta& d) {
  json delta = json::object();
  if (!d.content.empty()) delta["content"] = d.content;
  if (!d.reasoning_content.empty()) delta["reasoning_content"] = d.reasoning_content;
  if (d.tool_call_index >= 0) {
    json call = {{"index", d.tool_call_index}, {"function", {{"arguments", d.tool_call.arguments}}}};
    if (!d.tool_call.name.empty()) {
      call["id"] = d.tool_call.id;
      call["type"] = "function";
      call["function"]["name"] = d.tool_call.name;
    }
    delta["tool_calls"] = json::array({std::move(call)});
  }
  return delta;
}

json message_json(const ChatMessage& m) {
  // OpenAI's content is null when the reply is tool calls alone.
  json msg = {{"role", "assistant"},
              {"content", m.content.empty() && !m.tool_calls.empty() ? json(nullptr) : json(m.content)}};
  if (!m.reasoning_content.empty()) msg["reasoning_content"] = m.reasoning_content;
  if (!m.tool_calls.empty()) {
    json calls = json::array();
    for (const ToolCall& c : m.tool_calls) calls.push_back(tool_call_json(c));
    msg["tool_calls"] = std::move(calls);
  }
  return msg;
}

// A choice's "logprobs": null unless the request asked for them.
json logprobs_json(const Generation& g, std::span<const GeneratedLogprob> logprobs, size_t* text_offset) {
  if (!g.request.options.logprobs) return nullptr;
  return g.chat ? server::chat_logprobs_json(logprobs) : server::completion_logprobs_json(logprobs, text_offset);
}

json choice_json(const Generation& g, uint32_t index, const GenerateResult& r) {
  json choice = {{"index", index}, {"finish_reason", finish_reason_of(r)}};
  if (g.chat) {
    choice["message"] = r.message ? message_json(*r.message) : json{{"role", "assistant"}, {"content", r.text}};
  } else {
    choice["text"] = r.text;
  }
  size_t text_offset = 0;
  choice["logprobs"] = logprobs_json(g, r.logprobs, &text_offset);
  return choice;
}

json full_response(const Generation& g, const std::vector<GenerateResult>& replies) {
  json choices = json::array();
  for (size_t i = 0; i < replies.size(); ++i) choices.push_back(choice_json(g, static_cast<uint32_t>(i), replies[i]));
  return {{"id", g.id},
          {"object", g.chat ? "chat.completion" : "text_completion"},
          {"created", g.created},
          {"model", g.model},
          {"choices", std::move(choices)},
          {"usage", usage_json(server::total_usage(replies))}};
}

json error_event(const Error& e) {
  const int status = server::status_for(e.code(), ApiStyle::kOpenAi);
  const char* code = e.code() == ErrorCode::kTimeout       ? "timeout"
                     : e.code() == ErrorCode::kUnavailable ? "server_shutting_down"
                                                           : nullptr;
  return {{"error",
           {{"message", e.message()},
            {"type", status >= 500 ? "server_error" : "invalid_request_error"},
            {"param", nullptr},
            {"code", code ? json(code) : json(nullptr)}}}};
}

// OpenAI's chunks, as data-only events ending with "data: [DONE]".
class OpenAiStream final : public server::StreamFormat {
 public:
  OpenAiStream(const Generation& g, bool include_usage) : g_(g), include_usage_(include_usage) {}
  std::string start() override { return opening(0); }
  std::string reply(uint32_t index) override {
    std::string frames = flush_logprobs();
    index_ = index;
    text_offset_ = 0;
    return frames + opening(index);
  }
  void logprobs(std::span<const GeneratedLogprob> logprobs) override {
    pending_logprobs_.insert(pending_logprobs_.end(), logprobs.begin(), logprobs.end());
  }
  std::string delta(const std::string& text) override {
    return server::sse(stream_chunk(g_, choice(g_.chat ? json{{"content", text}} : json(text), nullptr)));
  }
  std::string chat_delta(const ChatDelta& d) override { return server::sse(stream_chunk(g_, choice(delta_json(d), nullptr))); }
  std::string finish(const std::vector<GenerateResult>& replies) override {
    std::string frames = flush_logprobs();
    for (size_t i = 0; i < replies.size(); ++i) {
      index_ = static_cast<uint32_t>(i);
      frames += server::sse(stream_chunk(g_, choice(empty(), finish_reason_of(replies[i]))));
    }
    if (include_usage_) {
      json usage = stream_chunk(g_, json());
      usage["choices"] = json::array();
      usage["usage"] = usage_json(server::total_usage(replies));
      frames += server::sse(usage);
    }
    return frames + kDone;
  }
  std::string error(const Error& e) override { return server::sse(error_event(e)) + kDone; }

 private:
  static constexpr const char* kDone = "data: [DONE]\n\n";
  // A chunk's choice, with the log probabilities of the tokens streamed since the last
  // (a chat's parser may hold text back, so tokens and deltas need not line up).
  json choice(json delta_or_text, const char* finish_reason) {
    json c = stream_choice(g_, index_, std::move(delta_or_text), finish_reason);
    if (!pending_logprobs_.empty()) {
      c["logprobs"] = logprobs_json(g_, pending_logprobs_, &text_offset_);
      pending_logprobs_.clear();
    }
    return c;
  }

  json empty() const { return g_.chat ? json::object() : json(""); }
  // A chat reply's first chunk carries its role.
  std::string opening(uint32_t index) const {
    if (!g_.chat) return "";
    return server::sse(stream_chunk(g_, stream_choice(g_, index, {{"role", "assistant"}, {"content", ""}}, nullptr)));
  }
  // The current reply's log probabilities not yet sent, in a chunk of their own.
  std::string flush_logprobs() {
    if (pending_logprobs_.empty()) return "";
    return server::sse(stream_chunk(g_, choice(empty(), nullptr)));
  }

  Generation g_;  // its id, model, kind and options; the request itself is not run
  bool include_usage_;
  uint32_t index_ = 0;  // the reply being streamed
  std::vector<GeneratedLogprob> pending_logprobs_;
  size_t text_offset_ = 0;
};

std::string base64(std::span<const std::byte> bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = std::to_integer<uint32_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= std::to_integer<uint32_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) v |= std::to_integer<uint32_t>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

}  // namespace

namespace {

// The request body as a JSON object, read within the body budget; the caller keeps `lease`
// for as long as it keeps the document.
json read_object(Server::Impl& s, const httplib::Request& req, const httplib::ContentReader& reader,
                 server::BodyBudget::Lease& lease) {
  return server::parse_object(s.read_body(req, reader, lease));
}

// Completions and chat completions.
server::GenerationApi openai_api(bool chat) {
  return {[chat](const json& body, std::string_view raw) { return server::parse_generation_body(body, chat, raw); },
          chat ? "chatcmpl-" : "cmpl-",
          [](const Generation& g, const server::GenerationBody& parsed) {
            return std::make_unique<OpenAiStream>(g, parsed.sampling.include_usage);
          },
          full_response};
}

void embeddings_route(Server::Impl& s, const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader) {
  auto lease = s.bodies.lease();
  const json body = read_object(s, req, reader, lease);
  const std::string name = server::model_field(body);
  server::RepositoryModel model = s.find_model(name);  // an unknown model is a 404 before anything else
  const server::EmbeddingsBody parsed = server::parse_embeddings_body(body);
  ModelCall call = s.begin_call(std::move(model), EngineRole::kEmbed, req);
  const Embeddings result = server::run_counted(s, call, [&] {
    Embedder& embedder = embedder_of(*call.engine, call.model);
    // Truncating to fewer dimensions is only meaningful for models trained for it: refused.
    if (parsed.dimensions && *parsed.dimensions != static_cast<int64_t>(embedder.embedding_size())) {
      throw Error::invalid_input("'dimensions'", "model '" + name + "' gives " +
                                                     std::to_string(embedder.embedding_size()) +
                                                     " dimensions and cannot give others");
    }
    EmbedOptions options;
    options.deadline = call.deadline;
    options.cancel = call.cancel;
    return embedder.embed(parsed.inputs, options);
  });
  s.finish_call(call, Outcome::kSuccess);
  call.stats->prompt_tokens.fetch_add(result.prompt_tokens, std::memory_order_relaxed);
  json data = json::array();
  for (size_t i = 0; i < result.vectors.size(); ++i) {
    json e = {{"object", "embedding"}, {"index", i}};
    if (parsed.base64) e["embedding"] = base64(std::as_bytes(std::span(result.vectors[i])));
    else e["embedding"] = result.vectors[i];
    data.push_back(std::move(e));
  }
  const json out = {{"object", "list"},
                    {"data", std::move(data)},
                    {"model", name},
                    {"usage", {{"prompt_tokens", result.prompt_tokens}, {"total_tokens", result.prompt_tokens}}}};
  res.set_content(dump(out), "application/json");
}

// Whether /v1/models lists the model: its task generates text, embeds or reranks.
bool speaks_openai(const server::RepositoryModel& m) {
  return m.resolved->task == "generate" || m.resolved->task == "embed" || m.resolved->task == "rerank";
}

json model_card(const server::RepositoryModel& m) {
  std::error_code ec;
  const auto mtime = std::filesystem::last_write_time(m.resolved->package.model_path, ec);
  int64_t created = 0;
  if (!ec) {
    const auto sys = std::chrono::file_clock::to_sys(mtime);
    created = std::chrono::duration_cast<std::chrono::seconds>(sys.time_since_epoch()).count();
  }
  return {{"id", m.name}, {"object", "model"}, {"created", created}, {"owned_by", "kapsl"}};
}

}  // namespace

void Server::Impl::register_openai_routes() {
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    guarded(res, ApiStyle::kOpenAi, [&] {
      json data = json::array();
      for (const auto& m : repository.list()) {
        if (speaks_openai(m)) data.push_back(model_card(m));
      }
      res.set_content(dump({{"object", "list"}, {"data", std::move(data)}}), "application/json");
    });
  });
  http.Get(R"(/v1/models/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    guarded(res, ApiStyle::kOpenAi, [&] {
      const auto model = find_model(req.matches[1]);
      if (!speaks_openai(model)) throw Error::not_found("unknown model '" + model.name + "'");
      res.set_content(dump(model_card(model)), "application/json");
    });
  });
  using Reader = const httplib::ContentReader&;
  http.Post("/v1/completions", [this, completions = openai_api(false)](const httplib::Request& req,
                                                                       httplib::Response& res, Reader reader) {
    guarded(res, ApiStyle::kOpenAi, [&] { server::serve_generation(*this, req, res, reader, completions); });
  });
  http.Post("/v1/chat/completions", [this, chat = openai_api(true)](const httplib::Request& req, httplib::Response& res,
                                                                    Reader reader) {
    guarded(res, ApiStyle::kOpenAi, [&] { server::serve_generation(*this, req, res, reader, chat); });
  });
  http.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res, Reader reader) {
    guarded(res, ApiStyle::kOpenAi, [&] { embeddings_route(*this, req, res, reader); });
  });
}

}  // namespace kapsl
