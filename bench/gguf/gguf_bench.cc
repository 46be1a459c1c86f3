// kapsl-gguf-bench: GgufEngine's prompt-processing and generation speed, measured as
// llama-bench measures llama.cpp, plus load time and time to first token.
//
//   pp<N>: a prompt of N random tokens (a new one per repetition, so the slot's prefix
//          cache cannot help), one generated token; tokens/s = N / prompt decode time.
//   tg<N>: a one-token prompt then N + 1 greedy tokens; tokens/s = N decodes / the time
//          from the end of the prompt to the end (N + 1 samples included, a small handicap:
//          llama-bench decodes without sampling).
//   ttft:  time to first token of the pp prompt (queue + decode + first sample).
//   load:  GgufEngine::load wall time.
// Each figure is the mean over --reps repetitions after one warm-up, as llama-bench's
// avg_ts. Output: one JSON object on stdout.
//
// Usage: kapsl-gguf-bench MODEL [--threads N] [--pp N] [--tg N] [--reps N]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "kapsl/gguf_engine.h"

namespace {

struct Args {
  std::string model;
  int32_t threads = 2;
  uint32_t pp = 128;
  uint32_t tg = 32;
  int reps = 5;
  uint32_t ctx = 0;  // 0: the engine's default
};

bool parse(int argc, char** argv, Args* a) {
  if (argc < 2) return false;
  a->model = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    const long v = std::strtol(argv[i + 1], nullptr, 10);
    if (v <= 0) return false;
    if (flag == "--threads") a->threads = static_cast<int32_t>(v);
    else if (flag == "--pp") a->pp = static_cast<uint32_t>(v);
    else if (flag == "--tg") a->tg = static_cast<uint32_t>(v);
    else if (flag == "--reps") a->reps = static_cast<int>(v);
    else if (flag == "--ctx") a->ctx = static_cast<uint32_t>(v);
    else return false;
  }
  return true;
}

std::vector<int32_t> random_prompt(uint32_t n, int32_t n_vocab, std::mt19937* gen) {
  std::uniform_int_distribution<int32_t> dist(100, n_vocab - 1);  // skip control and byte tokens
  std::vector<int32_t> tokens(n);
  for (auto& t : tokens) t = dist(*gen);
  return tokens;
}

kapsl::GenerationUsage run(kapsl::GgufEngine& engine, std::vector<int32_t> prompt, uint32_t n_new) {
  kapsl::GenerateRequest req;
  req.prompt = std::move(prompt);
  req.options.temperature = 0;
  req.options.ignore_eos = true;
  req.options.max_new_tokens = n_new;
  return engine.generate(req).usage;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  if (!parse(argc, argv, &a)) {
    std::fprintf(stderr, "usage: kapsl-gguf-bench MODEL [--threads N] [--pp N] [--tg N] [--reps N]\n");
    return 2;
  }
  try {
    kapsl::GgufOptions o;
    o.n_threads = a.threads;
    o.n_ctx = a.ctx;
    const auto t0 = std::chrono::steady_clock::now();
    auto engine = kapsl::GgufEngine::load(a.model, o);
    const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int32_t n_vocab = engine->gguf_info().n_vocab;
    std::mt19937 gen(1);
    run(*engine, random_prompt(a.pp, n_vocab, &gen), a.tg + 1);  // warm-up, as llama-bench
    double pp_sum = 0, tg_sum = 0, ttft_sum = 0;
    for (int r = 0; r < a.reps; ++r) {
      const auto pp = run(*engine, random_prompt(a.pp, n_vocab, &gen), 1);
      pp_sum += pp.prompt_tokens_per_s;
      ttft_sum += pp.time_to_first_token_s;
      const auto tg = run(*engine, random_prompt(1, n_vocab, &gen), a.tg + 1);
      // usage counts tg + 1 tokens over tg decodes; report decodes per second.
      tg_sum += tg.generation_tokens_per_s * a.tg / (a.tg + 1);
    }
    std::printf("{\"pp\": %u, \"tg\": %u, \"threads\": %d, \"pp_ts\": %.3f, \"tg_ts\": %.3f, \"ttft_ms\": %.3f, "
                "\"load_ms\": %.3f, \"llama\": \"%s\"}\n",
                a.pp, a.tg, a.threads, pp_sum / a.reps, tg_sum / a.reps, 1e3 * ttft_sum / a.reps, 1e3 * load_s,
                kapsl::GgufEngine::llama_version().c_str());
  } catch (const kapsl::Error& e) {
    std::fprintf(stderr, "kapsl-gguf-bench: %s\n", e.to_string().c_str());
    return 1;
  }
  return 0;
}
