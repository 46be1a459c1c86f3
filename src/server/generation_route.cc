// The shared generation path of the text routes: prepare, run whole, or stream through a
// StreamFormat.
#include "server/generation_route.h"

#include <algorithm>
#include <chrono>

namespace kapsl::server {

using json = nlohmann::json;

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string sse(const json& data, std::string_view event) {
  std::string frame;
  if (!event.empty()) frame = "event: " + std::string(event) + "\n";
  return frame + "data: " + dump(data) + "\n\n";
}

TextGenerator& generator_of(Engine& engine, const RepositoryModel& model) {
  TextGenerator* generator = engine.text_generator();
  if (generator == nullptr) {
    throw Error::invalid_input("model '" + model.name + "' does not generate text",
                               "its task is " + model.resolved->task + " (backend " + model.resolved->backend->name() + ")");
  }
  return *generator;
}

namespace {

Prompt prompt_of(const ChatOrPrompt& input, const TextGenerator& generator, const SamplingRequest& sampling) {
  if (const auto* chat = std::get_if<ChatPrompt>(&input)) return *chat;
  if (const auto* infill = std::get_if<InfillPrompt>(&input)) {
    return infill_tokens(generator, *infill, sampling.max_tokens.value_or(0));
  }
  return std::visit([](const auto& p) { return Prompt(p); }, std::get<CompletionPrompt>(input));
}

bool ended_early_reason(FinishReason reason) {
  return reason == FinishReason::kTimeout || reason == FinishReason::kCancelled;
}

// The error a generation cut short stands for, or nullopt if it ended normally: its
// deadline (504), the server's shutdown (503), or its client leaving (499, unseen).
std::optional<Error> ended_early(const Server::Impl& s, FinishReason reason) {
  if (reason == FinishReason::kTimeout) return Error::timeout("the request's deadline passed during generation");
  if (reason != FinishReason::kCancelled) return std::nullopt;
  if (s.draining.load()) return Error::unavailable("the server is shutting down", "the generation was cut short");
  return Error::cancelled("the client went away");
}

struct StreamJob {
  Server::Impl* server;
  Server::Impl::ModelCall call;
  Generation g;
  std::unique_ptr<StreamFormat> format;
  bool ran = false;
};

// Starts the connection's read clock for its next request when the stream ends, however
// it ends (the logger, called before the body is written, leaves streams to this).
struct NextRequestClock {
  ConnectionDeadlines& deadlines;
  ~NextRequestClock() { deadlines.response_done(); }
};

bool write(httplib::DataSink& sink, const std::string& frames) {
  return frames.empty() || sink.write(frames.data(), frames.size());
}

// Ends the stream with `error` in the format's shape, counted as its outcome.
bool fail_stream(StreamJob& job, httplib::DataSink& sink, const Error& error) {
  job.server->finish_call(job.call, Server::Impl::outcome_for(error));
  current_request().error = error.message();
  write(sink, job.format->error(error));
  sink.done();
  return true;
}

// Streams the whole generation; returns false if the client went away.
bool run_stream(StreamJob& job, httplib::DataSink& sink) {
  if (job.ran) return false;
  job.ran = true;
  const NextRequestClock clock{job.server->deadlines};
  bool client_gone = !write(sink, job.format->start());
  std::vector<GenerateResult> replies;
  const auto start = Clock::now();
  uint32_t current_reply = 0;
  try {
    TextGenerator& generator = generator_of(*job.call.engine, job.call.model);
    replies = generator.generate_n(job.g.request, job.g.n, [&](uint32_t reply, const StreamChunk& chunk) {
      if (client_gone) return false;
      std::string frames;
      if (reply != current_reply) frames = job.format->reply(current_reply = reply);
      if (!chunk.logprobs.empty()) job.format->logprobs(chunk.logprobs);
      if (job.g.chat) {
        for (const ChatDelta& d : chunk.chat) frames += job.format->chat_delta(d);
      } else if (!chunk.text.empty()) {
        frames = job.format->delta(chunk.text);
      }
      client_gone = !write(sink, frames);
      return !client_gone;
    });
  } catch (const Error& e) {
    return fail_stream(job, sink, e);
  }
  const GenerationUsage usage = total_usage(replies);
  record_generation(*job.call.stats, usage, start);
  if (client_gone) {
    job.server->finish_call(job.call, Outcome::kCancelled);
    return false;
  }
  // Headers are sent: a cut generation ends with an error event, not a normal finish.
  if (const auto cut = ended_early(*job.server, usage.finish_reason)) return fail_stream(job, sink, *cut);
  job.server->finish_call(job.call, Outcome::kSuccess);
  write(sink, job.format->finish(replies));
  sink.done();
  return true;
}

}  // namespace

const std::string& reply_text(const GenerateResult& result) {
  return result.message ? result.message->content : result.text;
}

Generation prepare_generation(Server::Impl::ModelCall& call, const ChatOrPrompt& input, const SamplingRequest& sampling,
                              std::string id) {
  TextGenerator& generator = generator_of(*call.engine, call.model);
  Generation g;
  g.chat = std::holds_alternative<ChatPrompt>(input);
  g.request.prompt = prompt_of(input, generator, sampling);
  g.request.options = sampling.options;
  const std::vector<int32_t> tokens = generator.prompt_tokens(g.request);
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
  g.id = std::move(id);
  g.model = call.model.name;
  g.created = unix_now();
  g.prompt_tokens = static_cast<uint32_t>(tokens.size());
  if (sampling.n > generator.max_parallel_replies()) {
    throw Error::invalid_input("'n' is more than model '" + call.model.name + "' generates at once",
                               "expected at most " + std::to_string(generator.max_parallel_replies()) +
                                   " (its n_parallel), got " + std::to_string(sampling.n));
  }
  g.n = sampling.n;
  // OpenAI's defaults: 16 tokens for completions, up to the context for chat (and, as
  // llama-server, for an infill).
  const bool to_the_end = g.chat || std::holds_alternative<InfillPrompt>(input);
  g.request.options.max_new_tokens = sampling.max_tokens.value_or(to_the_end ? room : std::min<uint32_t>(16, room));
  g.request.deadline = call.deadline;
  g.request.cancel = call.cancel;
  return g;
}

GenerationUsage total_usage(const std::vector<GenerateResult>& replies) {
  if (replies.empty()) return {};
  GenerationUsage total = replies.front().usage;
  for (size_t i = 1; i < replies.size(); ++i) {
    const GenerationUsage& u = replies[i].usage;
    total.completion_tokens += u.completion_tokens;
    if (ended_early_reason(u.finish_reason) && !ended_early_reason(total.finish_reason)) {
      total.finish_reason = u.finish_reason;
    }
  }
  return total;
}

std::vector<GenerateResult> run_generation(Server::Impl& s, Server::Impl::ModelCall& call, const Generation& g) {
  // The running-calls watcher cancels it if the client leaves while it generates.
  const auto start = Clock::now();
  std::vector<GenerateResult> replies =
      run_counted(s, call, [&] { return generator_of(*call.engine, call.model).generate_n(g.request, g.n); });
  const GenerationUsage usage = total_usage(replies);
  record_generation(*call.stats, usage, start);
  if (const auto cut = ended_early(s, usage.finish_reason)) {
    s.finish_call(call, Server::Impl::outcome_for(*cut));
    throw *cut;
  }
  s.finish_call(call, Outcome::kSuccess);
  return replies;
}

void stream_generation(Server::Impl& s, Server::Impl::ModelCall call, Generation g, std::unique_ptr<StreamFormat> format,
                       httplib::Response& res) {
  auto job = std::make_shared<StreamJob>(StreamJob{&s, std::move(call), std::move(g), std::move(format)});
  current_request().streams = true;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider("text/event-stream",
                                   [job](size_t, httplib::DataSink& sink) { return run_stream(*job, sink); });
}

void serve_generation(Server::Impl& s, const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader, const GenerationApi& api) {
  auto lease = s.bodies.lease();
  const std::string raw = s.read_body(req, reader, lease);
  const json body = parse_object(raw);
  // An unknown model is a 404 before anything else.
  RepositoryModel model = api.model_optional ? s.named_or_only_generator(body) : s.find_model(model_field(body));
  const GenerationBody parsed = api.parse(body, raw);
  Server::Impl::ModelCall call = s.begin_call(std::move(model), EngineRole::kMain, req);
  const std::string id = api.id_prefix + current_request().request_id;
  Generation g = run_counted(
      s, call, [&] { return prepare_generation(call, parsed.input, parsed.sampling, id); });
  if (parsed.sampling.stream) {
    auto format = api.stream(g, parsed);
    stream_generation(s, std::move(call), std::move(g), std::move(format), res);
    return;
  }
  const std::vector<GenerateResult> replies = run_generation(s, call, g);
  res.set_content(dump(api.whole(g, replies)), "application/json");
}

}  // namespace kapsl::server
