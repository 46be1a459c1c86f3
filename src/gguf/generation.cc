// One request's generation, on the request's thread: hands the prompt to the engine's
// Batcher (which reuses the slot's cached prefix, decodes the rest batched with the other
// slots' work, and samples) and turns the tokens it samples into text: UTF-8 assembly,
// stop strings, the stream callback, usage.
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "gguf/batcher.h"
#include "gguf/engine_impl.h"
#include "gguf/sampling.h"
#include "gguf/stop_strings.h"
#include "gguf/utf8.h"
#include "kapsl/error.h"
#include "llama.h"

namespace kapsl::gguf {
namespace {

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// The state of one request's output: bytes -> valid UTF-8 -> stop-string filter -> the
// reply's parser (chats) -> caller.
class OutputStream {
 public:
  // `parser`: the reply's own (PreparedGeneration::parser, or a fresh one per reply).
  OutputStream(const PreparedGeneration& p, std::shared_ptr<ReplyParser> parser, StreamCallback on_chunk)
      : stops_(p.options.stop), on_chunk_(std::move(on_chunk)), chat_(p.chat), parser_(std::move(parser)) {}

  // Adds a token's piece (and its log probabilities, when asked for). Returns false if
  // the caller's callback asked to stop.
  bool add(int32_t token, std::string_view piece, std::optional<GeneratedLogprob> logprob) {
    pending_tokens_.push_back(token);
    if (logprob) {
      pending_logprobs_.push_back(*logprob);
      all_logprobs_.push_back(std::move(*logprob));
    }
    return emit(stops_.push(utf8_.push(piece)));
  }
  bool stopped_by_string() const { return stops_.stopped(); }
  bool cancelled_by_callback() const { return callback_cancelled_; }
  // Releases what is held back; the callback sees it unless it already said stop. A chat's
  // reply is then parsed as final, and what its parser held back goes out in a last chunk.
  void finish(GenerateResult* result) {
    emit(stops_.push(utf8_.finish()) + stops_.finish());
    if (!chat_) return;
    std::vector<ChatDelta> rest;
    if (parser_ != nullptr) {
      result->message = parser_->finish(&rest);
    } else {
      result->message = ChatMessage{"assistant", text_, {}, {}, {}, {}};
    }
    if (!rest.empty() && on_chunk_ && !callback_cancelled_) {
      StreamChunk chunk;
      chunk.chat = std::move(rest);
      on_chunk_(chunk);
    }
  }
  std::string take_text() { return std::move(text_); }
  std::vector<GeneratedLogprob> take_logprobs() { return std::move(all_logprobs_); }

 private:
  bool emit(std::string piece) {
    if (piece.empty()) return true;
    text_ += piece;
    std::vector<ChatDelta> deltas;
    if (parser_ != nullptr && !on_chunk_) parser_->append(piece);  // parsed once, at the end
    else if (parser_ != nullptr) deltas = parser_->push(piece);
    else if (chat_) deltas.push_back(ChatDelta{piece, {}, -1, {}});
    if (on_chunk_ && !callback_cancelled_) {
      StreamChunk chunk{std::move(piece), std::move(pending_tokens_), {}, std::move(deltas),
                        std::move(pending_logprobs_)};
      pending_tokens_.clear();
      pending_logprobs_.clear();
      callback_cancelled_ = !on_chunk_(chunk);
    }
    return !callback_cancelled_;
  }

  Utf8Assembler utf8_;
  StopStringFilter stops_;
  const StreamCallback on_chunk_;
  std::vector<int32_t> pending_tokens_;
  std::vector<GeneratedLogprob> pending_logprobs_;  // of pending_tokens_
  std::vector<GeneratedLogprob> all_logprobs_;
  std::string text_;
  bool callback_cancelled_ = false;
  const bool chat_;
  const std::shared_ptr<ReplyParser> parser_;
};

struct Timeline {
  Clock::time_point start;
  Clock::time_point prompt_start;
  Clock::time_point prompt_end;
  std::optional<Clock::time_point> first_token;
};

void fill_usage(GenerationUsage* u, const Timeline& t, size_t decoded_prompt, Clock::time_point end) {
  if (t.first_token) u->time_to_first_token_s = seconds_between(t.start, *t.first_token);
  const double prompt_s = seconds_between(t.prompt_start, t.prompt_end);
  if (prompt_s > 0) u->prompt_tokens_per_s = static_cast<double>(decoded_prompt) / prompt_s;
  const double gen_s = seconds_between(t.prompt_end, end);
  if (gen_s > 0) u->generation_tokens_per_s = u->completion_tokens / gen_s;
}

GeneratedLogprob generated_logprob(const llama_vocab* vocab, int32_t token, const std::string& piece,
                                   const StepLogprobs& step) {
  GeneratedLogprob out{{token, step.sampled, piece}, {}};
  for (const auto& [id, logprob] : step.top) out.top.push_back({id, logprob, token_to_piece(vocab, id, true)});
  return out;
}

// Hands one sampled token to `out`; returns why it ends the output, or kNone.
FinishReason output_token(const GgufEngine::Impl& impl, const PreparedGeneration& p, int32_t token,
                          const StepLogprobs& step, OutputStream* out) {
  if (is_stop_token(impl.vocab, p.options, token)) return FinishReason::kStop;
  // A tool-call format's special tokens (e.g. <tool_call>) are text its parser reads.
  const bool special = std::find(p.preserved_tokens.begin(), p.preserved_tokens.end(), token) != p.preserved_tokens.end();
  const std::string piece = token_to_piece(impl.vocab, token, special);
  std::optional<GeneratedLogprob> logprob;
  if (p.options.logprobs) logprob = generated_logprob(impl.vocab, token, piece, step);
  if (!out->add(token, piece, std::move(logprob))) return FinishReason::kCancelled;
  return out->stopped_by_string() ? FinishReason::kStop : FinishReason::kNone;
}

// Turns the batcher's tokens into text until a stop condition; returns why it stopped.
// Tokens the batcher sampled before it saw this thread's stop are dropped.
FinishReason consume(const GgufEngine::Impl& impl, Batcher::Run& run, const PreparedGeneration& p,
                     OutputStream* out, GenerateResult* result) {
  const GenerationOptions& o = p.options;
  FinishReason reason = FinishReason::kNone;
  StepLogprobs step;
  while (const std::optional<int32_t> token = run.next(&step)) {
    if (reason != FinishReason::kNone) continue;
    result->tokens.push_back(*token);
    ++result->usage.completion_tokens;
    reason = output_token(impl, p, *token, step, out);
    if (reason == FinishReason::kNone && result->usage.completion_tokens >= o.max_new_tokens) {
      reason = FinishReason::kLength;
    }
    if (reason != FinishReason::kNone) run.request_stop();
  }
  if (reason != FinishReason::kNone) return reason;
  const Batcher::Run::Report report = run.report();
  if (report.error) std::rethrow_exception(report.error);
  reason = report.reason;
  // The batcher saw a stop this thread had not: a cancellation or deadline, or nothing
  // left to say why (the cause was cleared since).
  return reason == FinishReason::kNone || reason == FinishReason::kStop ? FinishReason::kCancelled : reason;
}

}  // namespace

std::vector<GenerateResult> generate_in_slots(const GgufEngine::Impl& impl, std::span<Slot* const> slots,
                                              const PreparedGeneration& prepared, const GenerateRequest& request,
                                              const ReplyStreamCallback& on_chunk, Clock::time_point start) {
  const GenerationOptions& o = prepared.options;
  const StopSignal stop{&request.cancel, request.deadline};
  const Clock::time_point prompt_start = Clock::now();
  std::vector<std::unique_ptr<Batcher::Run>> runs;
  if (o.max_new_tokens > 0) {
    std::vector<std::unique_ptr<TokenSampler>> samplers;
    for (size_t i = 0; i < slots.size(); ++i) {
      GenerationOptions reply = o;
      if (o.seed != GenerationOptions::kRandomSeed) reply.seed = o.seed + static_cast<uint32_t>(i);
      samplers.push_back(make_token_sampler(reply, prepared.constraint, impl.model.get(), impl.info.n_ctx,
                                            prepared.prompt, impl.constraint_tables));
    }
    const bool every_token = on_chunk || !o.stop.empty();
    runs = impl.batcher->start_shared(slots, prepared.prompt, std::move(samplers), o, stop, every_token);
  }
  std::vector<GenerateResult> results(slots.size());
  bool cancelled = false;  // by the callback: every reply stops
  for (size_t i = 0; i < results.size(); ++i) {
    GenerateResult& result = results[i];
    result.usage.prompt_tokens = static_cast<uint32_t>(prepared.prompt.size());
    std::shared_ptr<ReplyParser> parser = prepared.parser;
    if (parser && i > 0) parser = parser->fresh();
    StreamCallback callback;
    if (on_chunk) callback = [&on_chunk, i](const StreamChunk& c) { return on_chunk(static_cast<uint32_t>(i), c); };
    OutputStream out(prepared, std::move(parser), std::move(callback));
    Timeline t{start, prompt_start, Clock::now(), std::nullopt};
    FinishReason reason = runs.empty() ? FinishReason::kLength : FinishReason::kCancelled;
    size_t decoded_prompt = 0;
    if (!runs.empty() && !cancelled) {
      reason = consume(impl, *runs[i], prepared, &out, &result);
      const Batcher::Run::Report report = runs[i]->report();
      t.prompt_end = report.prompt_end.value_or(Clock::now());
      t.first_token = report.first_token;
      decoded_prompt = report.decoded_prompt;
      result.usage.cached_prompt_tokens = static_cast<uint32_t>(prepared.prompt.size() - decoded_prompt);
      cancelled = out.cancelled_by_callback();
      if (cancelled) {
        for (const auto& run : runs) run->request_stop();
      }
    }
    out.finish(&result);
    result.text = out.take_text();
    result.logprobs = out.take_logprobs();
    result.usage.finish_reason = reason;
    fill_usage(&result.usage, t, decoded_prompt, Clock::now());
  }
  return results;
}

}  // namespace kapsl::gguf
