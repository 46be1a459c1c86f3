// kapsl bench MODEL: latency and throughput of a model. Text generators: prompt processing
// and generation speed. Other engines: repeated runs on synthesised inputs at a concurrency
// level.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <random>
#include <thread>

#include "commands.h"
#include "input_flags.h"
#include "progress.h"
#include "tensor_io.h"

namespace kapsl::cli {
namespace {

struct BenchArgs {
  std::string model;
  int runs = 100;
  double duration_s = 0;
  int warmup = 5;
  int concurrency = 1;
  int prompt_tokens = 128;
  int gen_tokens = 32;
  LoadFlags load;
  InputFlags in;
};

// The threads the engine computes with, as its backend reports them.
std::string threads_of(const Engine& engine) {
  const auto& meta = engine.model_info().metadata;
  const auto it = meta.find("threads");
  return it == meta.end() ? std::string("?") : it->second;
}

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))];
}

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

// Runs `req` from `concurrency` threads until `runs` calls or `duration_s` seconds.
std::vector<double> timed_runs(Engine& engine, const InferenceRequest& req, const BenchArgs& a, double* wall_s) {
  std::atomic<int> issued{0};
  std::mutex mu;
  std::vector<double> latencies;
  ProgressBar bar("bench", stderr_is_terminal());
  const auto start = Clock::now();
  const auto done = [&] {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    return a.duration_s > 0 ? elapsed >= a.duration_s : issued.fetch_add(1) >= a.runs;
  };
  const auto worker = [&] {
    while (!done()) {
      const auto t0 = Clock::now();
      engine.infer(req);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      std::lock_guard lock(mu);
      latencies.push_back(ms);
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      bar.update(a.duration_s > 0 ? elapsed / a.duration_s : static_cast<double>(latencies.size()) / a.runs);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < a.concurrency; ++i) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();
  *wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return latencies;
}

void bench_infer(const BenchArgs& a, const std::shared_ptr<Engine>& engine) {
  const InferenceRequest req = build_request(a.in, engine->model_info());
  for (int i = 0; i < a.warmup; ++i) engine->infer(req);
  double wall = 0;
  const auto lat = timed_runs(*engine, req, a, &wall);
  std::string shapes;
  for (const auto& in : req.inputs) shapes += (shapes.empty() ? "" : ", ") + terminal_safe(in.name) + " " + shape_to_string(in.tensor.shape());
  std::printf("inputs %s\n", shapes.c_str());
  std::printf("runs %zu, concurrency %d, threads per run %s, wall %.2f s\n", lat.size(), a.concurrency,
              threads_of(*engine).c_str(), wall);
  std::printf("latency ms: p50 %.3f  p90 %.3f  p99 %.3f  max %.3f\n", percentile(lat, 0.5), percentile(lat, 0.9),
              percentile(lat, 0.99), percentile(lat, 1.0));
  std::printf("throughput: %.1f runs/s\n", static_cast<double>(lat.size()) / wall);
}

void bench_generation(const BenchArgs& a, Engine& engine) {
  TextGenerator& text = text_generator_of(engine, a.model, "bench");
  const int32_t n_vocab = text.text_info().vocab_size;
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> token(100, std::max(101, n_vocab - 1));
  std::vector<double> pp, tg, ttft;
  ProgressBar bar("bench", stderr_is_terminal());
  const int reps = std::max(1, std::min(a.runs, 1000));
  for (int r = 0; r < reps + std::min(a.warmup, 1); ++r) {
    std::vector<int32_t> prompt(static_cast<size_t>(a.prompt_tokens));
    for (auto& t : prompt) t = token(rng);  // fresh tokens: no KV-cache prefix reuse between runs
    GenerateRequest req{prompt, {}, std::nullopt, {}};
    req.options.max_new_tokens = static_cast<uint32_t>(a.gen_tokens);
    req.options.temperature = 0;
    req.options.ignore_eos = true;
    const GenerateResult res = text.generate(req);
    if (r < std::min(a.warmup, 1)) continue;
    pp.push_back(res.usage.prompt_tokens_per_s);
    tg.push_back(res.usage.generation_tokens_per_s);
    ttft.push_back(res.usage.time_to_first_token_s * 1e3);
    bar.update(static_cast<double>(pp.size()) / reps);
  }
  const auto& meta = engine.model_info().metadata;
  const auto description = meta.find("description");
  std::printf("model %s, %d runs, threads %s\n",
              description != meta.end() ? description->second.c_str() : engine.model_info().name.c_str(), reps,
              threads_of(engine).c_str());
  std::printf("pp%d: %.1f tok/s (median)\n", a.prompt_tokens, median(pp));
  std::printf("tg%d: %.1f tok/s (median)\n", a.gen_tokens, median(tg));
  std::printf("time to first token: %.1f ms (median)\n", median(ttft));
}

}  // namespace

void register_bench(CLI::App& app, const CliContext& context) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand("bench", "measure latency and throughput");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package")->required();
  cmd->add_option("-r,--runs", a->runs, "runs (calls, or generations for text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-d,--duration", a->duration_s, "run for this many seconds instead (not text generators)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-w,--warmup", a->warmup, "warm-up runs")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-C,--concurrency", a->concurrency, "threads calling the engine (not text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-p,--prompt-tokens", a->prompt_tokens, "prompt length (text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-n,--gen-tokens", a->gen_tokens, "tokens to generate (text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  add_load_flags(*cmd, a->load, /*text=*/true);
  add_input_flags(*cmd, a->in, "random");
  cmd->callback([a, &context] {
    const std::shared_ptr<Engine> engine = load_model(context, a->model, a->load).engine;
    if (engine->text_generator() != nullptr) bench_generation(*a, *engine);
    else bench_infer(*a, engine);
  });
}

}  // namespace kapsl::cli
