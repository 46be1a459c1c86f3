// The generation path every text route shares — OpenAI's completions, chat completions and
// Responses, Anthropic's Messages: the prompt rendered, tokenized and checked against the
// context before any byte is sent (so that a prompt that cannot fit is a 400, not a broken
// stream), then the generation run whole, or streamed as one API's server-sent events.
//
// A streamed generation runs inside cpp-httplib's chunked content provider on the
// request's worker thread; when a write fails (the client went away) the stream callback
// returns false, which cancels the generation. A generation cut by its deadline or by
// shutdown is an error (504, 503), in a stream an error event in the API's shape.
//
// Thread-safety: each function serves one request on its worker thread.
#ifndef KAPSL_SRC_SERVER_GENERATION_ROUTE_H_
#define KAPSL_SRC_SERVER_GENERATION_ROUTE_H_

#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "kapsl/text_generation.h"
#include "server/openai_params.h"
#include "server/server_impl.h"

namespace kapsl::server {

// A generation checked in the handler: its tokens fit the context.
struct Generation {
  bool chat = false;
  std::string id;
  std::string model;
  int64_t created = 0;  // Unix seconds
  uint32_t prompt_tokens = 0;
  uint32_t n = 1;  // replies (OpenAI's `n`): generated together, the prompt decoded once
  GenerateRequest request;
};

using ChatOrPrompt = std::variant<ChatPrompt, CompletionPrompt, InfillPrompt>;

// The call's engine as a text generator; kInvalidInput if it does not generate text.
TextGenerator& generator_of(Engine& engine, const RepositoryModel& model);

// Renders and tokenizes `input` (a chat through its template, with its tools, a completion
// prompt, or an infill's code around the cursor) as the engine will, and checks it and
// max_tokens against the context. Without max_tokens a chat or an infill may fill the
// context, a completion gets OpenAI's 16 tokens.
// `id` names the generation. Throws kInvalidInput; the caller counts the failure
// (run_counted).
Generation prepare_generation(Server::Impl::ModelCall& call, const ChatOrPrompt& input, const SamplingRequest& sampling,
                              std::string id);

// The reply's text: a chat's parsed content (without reasoning or tool-call markup), else
// the generated text.
const std::string& reply_text(const GenerateResult& result);

// Runs `body`; an Error it throws is counted as the call's outcome and rethrown.
template <typename F>
auto run_counted(Server::Impl& s, Server::Impl::ModelCall& call, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    s.finish_call(call, Server::Impl::outcome_for(e));
    throw;
  }
}

// Runs the generation whole (its g.n replies) and counts the call: a cut one throws its error.
std::vector<GenerateResult> run_generation(Server::Impl& s, Server::Impl::ModelCall& call, const Generation& g);

// The usage of all replies to one prompt: the prompt counted once, their tokens summed;
// the first reply's timings and cached prompt tokens, and its finish reason (the first
// that was cut, if one was).
GenerationUsage total_usage(const std::vector<GenerateResult>& replies);

// What a streamed generation sends, in one API's shape, as whole SSE frames (sse()).
class StreamFormat {
 public:
  virtual ~StreamFormat() = default;
  virtual std::string start() = 0;                                // before any text
  virtual std::string delta(const std::string& text) = 0;        // a piece of text
  // A piece of a chat's parsed reply. APIs that carry neither reasoning nor tool calls
  // (the default) send its content through delta().
  virtual std::string chat_delta(const ChatDelta& d) { return d.content.empty() ? "" : delta(d.content); }
  // The log probabilities of a chunk's tokens, before its deltas; APIs without them ignore them.
  virtual void logprobs(std::span<const GeneratedLogprob> /*logprobs*/) {}
  // The reply the next chunks belong to (g.n > 1: OpenAI only), before its first chunk;
  // returns frames that end the previous reply's part.
  virtual std::string reply(uint32_t /*index*/) { return ""; }
  virtual std::string finish(const std::vector<GenerateResult>& replies) = 0;  // a normal end
  virtual std::string error(const Error& error) = 0;             // a failure or a cut
};

// Answers `res` with the generation streamed in `format`; the call is counted when the
// stream ends.
void stream_generation(Server::Impl& s, Server::Impl::ModelCall call, Generation g, std::unique_ptr<StreamFormat> format,
                       httplib::Response& res);

// One text API: how its body is read, what its generations are called, and its shapes.
struct GenerationApi {
  // The body, parsed and as text; throws kInvalidInput naming the field.
  std::function<GenerationBody(const nlohmann::json&, std::string_view raw)> parse;
  std::string id_prefix;                                        // "chatcmpl-", "msg_", "resp_", ...
  std::function<std::unique_ptr<StreamFormat>(const Generation&, const GenerationBody&)> stream;
  std::function<nlohmann::json(const Generation&, const std::vector<GenerateResult>&)> whole;
  // Without a "model" field the repository's only text generator serves (llama-server's
  // own routes, whose clients name none).
  bool model_optional = false;
};

// A text route from body to answer: the body read within the budget, the model found (404
// before anything else), the body parsed, the call admitted, the generation prepared, then
// run whole or streamed.
void serve_generation(Server::Impl& s, const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader, const GenerationApi& api);

// One server-sent event: "event: NAME\n" when a name is given, then "data: DATA\n\n".
std::string sse(const nlohmann::json& data, std::string_view event = {});
// JSON text with invalid UTF-8 replaced.
std::string dump(const nlohmann::json& j);
int64_t unix_now();

}  // namespace kapsl::server

#endif  // KAPSL_SRC_SERVER_GENERATION_ROUTE_H_
