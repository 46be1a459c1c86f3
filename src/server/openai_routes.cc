// OpenAI-compatible routes: /v1/models, /v1/completions, /v1/chat/completions (streamed as
// server-sent events ending with "data: [DONE]") and /v1/embeddings. Routes ask the engine
// for a capability — TextGenerator for generation, Embedder for embeddings — and never check
// which backend a model uses. Errors use OpenAI's {"error": {...}} shape.
//
// Prompts are tokenized and checked against the context in the handler, before any byte of
// a stream is sent, so that a prompt that cannot fit is a 400 and not a broken stream. A
// streamed generation runs inside cpp-httplib's chunked content provider on the request's
// worker thread; when a write fails (the client went away) the stream callback returns
// false, which cancels the generation.
#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "kapsl/embedding.h"
#include "kapsl/error.h"
#include "kapsl/text_generation.h"
#include "server/openai_params.h"
#include "server/server_impl.h"

namespace kapsl {

using json = nlohmann::json;
using server::ApiStyle;
using server::EngineRole;
using server::Outcome;

namespace {

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// A generation that ended normally: "length" or "stop" (cut ones are errors: ended_early).
const char* openai_finish_reason(FinishReason reason) { return reason == FinishReason::kLength ? "length" : "stop"; }

TextGenerator& generator_of(Engine& engine, const server::RepositoryModel& model) {
  TextGenerator* generator = engine.text_generator();
  if (generator == nullptr) {
    throw Error::invalid_input("model '" + model.name + "' does not generate text",
                               "its task is " + model.resolved->task + " (backend " + model.resolved->backend->name() + ")");
  }
  return *generator;
}

Embedder& embedder_of(Engine& engine, const server::RepositoryModel& model) {
  Embedder* embedder = engine.embedder();
  if (embedder == nullptr) {
    throw Error::invalid_input("model '" + model.name + "' does not produce embeddings",
                               "its task is " + model.resolved->task + " (backend " + model.resolved->backend->name() + ")");
  }
  return *embedder;
}

// A generation prepared in the handler: tokens checked against the context.
struct Generation {
  bool chat = false;
  std::string id;
  std::string model;
  int64_t created = 0;
  bool include_usage = false;
  GenerateRequest request;
};

json usage_json(const GenerationUsage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

// One streamed chunk (or the final one when finish_reason is set).
json stream_chunk(const Generation& g, const std::string& text, const char* finish_reason, bool role) {
  json choice = {{"index", 0}, {"finish_reason", finish_reason ? json(finish_reason) : json(nullptr)}};
  if (g.chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (!text.empty() || role) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", g.id},
          {"object", g.chat ? "chat.completion.chunk" : "text_completion"},
          {"created", g.created},
          {"model", g.model},
          {"choices", json::array({choice})}};
}

json full_response(const Generation& g, const GenerateResult& r) {
  json choice = {{"index", 0}, {"finish_reason", openai_finish_reason(r.usage.finish_reason)}};
  if (g.chat) {
    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  } else {
    choice["text"] = r.text;
    choice["logprobs"] = nullptr;
  }
  return {{"id", g.id},
          {"object", g.chat ? "chat.completion" : "text_completion"},
          {"created", g.created},
          {"model", g.model},
          {"choices", json::array({choice})},
          {"usage", usage_json(r.usage)}};
}

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

using ModelCall = Server::Impl::ModelCall;

// Runs `body`; an Error it throws is counted as the call's outcome and rethrown.
template <typename F>
auto within(Server::Impl& s, ModelCall& call, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    s.finish_call(call, Server::Impl::outcome_for(e));
    throw;
  }
}

using ChatOrPrompt = decltype(server::GenerationBody::input);

Generation prepare(ModelCall& call, const ChatOrPrompt& input, const std::string& chat_template,
                   const server::SamplingRequest& sampling) {
  TextGenerator& generator = generator_of(*call.engine, call.model);
  Generation g;
  g.chat = std::holds_alternative<std::vector<ChatMessage>>(input);
  std::vector<int32_t> tokens;
  if (g.chat) {
    const auto& messages = std::get<std::vector<ChatMessage>>(input);
    tokens = generator.tokenize(generator.apply_chat_template(messages, true, chat_template), true, true);
  } else if (const auto* text = std::get_if<std::string>(&std::get<server::CompletionPrompt>(input))) {
    tokens = generator.tokenize(*text, true, true);
  } else {
    tokens = std::get<std::vector<int32_t>>(std::get<server::CompletionPrompt>(input));
    generator.detokenize(tokens);  // throws kInvalidInput for an id outside the vocabulary
  }
  if (tokens.empty()) throw Error::invalid_input("the prompt is empty");
  const uint32_t n_ctx = generator.text_info().context_size;
  if (tokens.size() >= n_ctx) {
    throw Error::invalid_input("the prompt does not fit the context",
                               std::to_string(tokens.size()) + " tokens >= n_ctx " + std::to_string(n_ctx));
  }
  const auto room = static_cast<uint32_t>(n_ctx - tokens.size());
  if (sampling.max_tokens && *sampling.max_tokens > room) {
    throw Error::invalid_input("max_tokens does not fit the context", std::to_string(tokens.size()) + " prompt tokens + " +
                                                                        std::to_string(*sampling.max_tokens) +
                                                                        " > n_ctx " + std::to_string(n_ctx));
  }
  g.id = std::string(g.chat ? "chatcmpl-" : "cmpl-") + server::current_request().request_id;
  g.model = call.model.name;
  g.created = unix_now();
  g.include_usage = sampling.include_usage;
  g.request.prompt = std::move(tokens);
  g.request.options = sampling.options;
  // OpenAI's defaults: 16 tokens for completions, up to the context for chat.
  g.request.options.max_new_tokens = sampling.max_tokens.value_or(g.chat ? room : std::min<uint32_t>(16, room));
  g.request.deadline = call.deadline;
  g.request.cancel = call.cancel;
  return g;
}

// The error a generation cut short stands for, or nullopt if it ended normally: its
// deadline (504), the server's shutdown (503), or its client leaving (499, unseen).
std::optional<Error> ended_early(const Server::Impl& s, FinishReason reason) {
  if (reason == FinishReason::kTimeout) return Error::timeout("the request's deadline passed during generation");
  if (reason != FinishReason::kCancelled) return std::nullopt;
  if (s.draining.load()) return Error::unavailable("the server is shutting down", "the generation was cut short");
  return Error::cancelled("the client went away");
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

struct StreamJob {
  Server::Impl* server;
  ModelCall call;
  Generation g;
  bool ran = false;
};

bool write_event(httplib::DataSink& sink, const std::string& data) {
  const std::string event = "data: " + data + "\n\n";
  return sink.write(event.data(), event.size());
}

// Streams the whole generation; returns false if the client went away.
// Starts the connection's read clock for its next request when the stream ends, however
// it ends (the logger, called before the body is written, leaves streams to this).
struct NextRequestClock {
  server::ConnectionDeadlines& deadlines;
  ~NextRequestClock() { deadlines.response_done(); }
};

bool run_stream(StreamJob& job, httplib::DataSink& sink) {
  if (job.ran) return false;
  job.ran = true;
  const NextRequestClock clock{job.server->deadlines};
  bool client_gone = job.g.chat && !write_event(sink, dump(stream_chunk(job.g, "", nullptr, true)));
  GenerateResult result;
  const auto start = Clock::now();
  try {
    TextGenerator& generator = generator_of(*job.call.engine, job.call.model);
    result = generator.generate(job.g.request, [&](const StreamChunk& chunk) {
      if (client_gone) return false;
      if (chunk.text.empty()) return true;
      client_gone = !write_event(sink, dump(stream_chunk(job.g, chunk.text, nullptr, false)));
      return !client_gone;
    });
  } catch (const Error& e) {
    job.server->finish_call(job.call, Server::Impl::outcome_for(e));
    server::current_request().error = e.message();
    write_event(sink, dump(error_event(e)));
    write_event(sink, "[DONE]");
    sink.done();
    return true;
  }
  server::record_generation(*job.call.stats, result.usage, start);
  if (client_gone) {
    job.server->finish_call(job.call, Outcome::kCancelled);
    return false;
  }
  // Headers are sent: a cut generation ends with an error event, not a normal finish.
  if (const auto cut = ended_early(*job.server, result.usage.finish_reason)) {
    job.server->finish_call(job.call, Server::Impl::outcome_for(*cut));
    server::current_request().error = cut->message();
    write_event(sink, dump(error_event(*cut)));
    write_event(sink, "[DONE]");
    sink.done();
    return true;
  }
  job.server->finish_call(job.call, Outcome::kSuccess);
  write_event(sink, dump(stream_chunk(job.g, "", openai_finish_reason(result.usage.finish_reason), false)));
  if (job.g.include_usage) {
    json usage = stream_chunk(job.g, "", nullptr, false);
    usage["choices"] = json::array();
    usage["usage"] = usage_json(result.usage);
    write_event(sink, dump(usage));
  }
  write_event(sink, "[DONE]");
  sink.done();
  return true;
}

}  // namespace

namespace {

// The request body as a JSON object, read within the body budget; the caller keeps `lease`
// for as long as it keeps the document.
json read_object(Server::Impl& s, const httplib::Request& req, const httplib::ContentReader& reader,
                 server::BodyBudget::Lease& lease) {
  return server::parse_object(s.read_body(req, reader, lease));
}

void generate_route(Server::Impl& s, const httplib::Request& req, httplib::Response& res,
                    const httplib::ContentReader& reader, bool chat) {
  auto lease = s.bodies.lease();
  const json body = read_object(s, req, reader, lease);
  const std::string name = server::model_field(body);
  server::RepositoryModel model = s.find_model(name);  // an unknown model is a 404 before anything else
  const server::GenerationBody parsed = server::parse_generation_body(body, chat);
  const server::SamplingRequest& sampling = parsed.sampling;
  ModelCall call = s.begin_call(std::move(model), EngineRole::kMain, req);
  Generation g = within(s, call, [&] { return prepare(call, parsed.input, parsed.chat_template, sampling); });
  if (sampling.stream) {
    auto job = std::make_shared<StreamJob>(StreamJob{&s, std::move(call), std::move(g)});
    server::current_request().streams = true;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider("text/event-stream",
                                     [job](size_t, httplib::DataSink& sink) { return run_stream(*job, sink); });
    return;
  }
  // The running-calls watcher cancels it if the client leaves while it generates.
  const auto start = Clock::now();
  const GenerateResult result =
      within(s, call, [&] { return generator_of(*call.engine, call.model).generate(g.request); });
  server::record_generation(*call.stats, result.usage, start);
  if (const auto cut = ended_early(s, result.usage.finish_reason)) {
    s.finish_call(call, Server::Impl::outcome_for(*cut));
    throw *cut;
  }
  s.finish_call(call, Outcome::kSuccess);
  res.set_content(dump(full_response(g, result)), "application/json");
}

void embeddings_route(Server::Impl& s, const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader) {
  auto lease = s.bodies.lease();
  const json body = read_object(s, req, reader, lease);
  const std::string name = server::model_field(body);
  server::RepositoryModel model = s.find_model(name);  // an unknown model is a 404 before anything else
  const server::EmbeddingsBody parsed = server::parse_embeddings_body(body);
  ModelCall call = s.begin_call(std::move(model), EngineRole::kEmbed, req);
  const Embeddings result = within(s, call, [&] {
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

// Whether /v1/models lists the model: its task generates text or embeds.
bool speaks_openai(const server::RepositoryModel& m) {
  return m.resolved->task == "generate" || m.resolved->task == "embed";
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
  http.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res, Reader reader) {
    guarded(res, ApiStyle::kOpenAi, [&] { generate_route(*this, req, res, reader, false); });
  });
  http.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res, Reader reader) {
    guarded(res, ApiStyle::kOpenAi, [&] { generate_route(*this, req, res, reader, true); });
  });
  http.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res, Reader reader) {
    guarded(res, ApiStyle::kOpenAi, [&] { embeddings_route(*this, req, res, reader); });
  });
}

}  // namespace kapsl
