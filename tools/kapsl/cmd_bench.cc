// kapsl bench MODEL: latency and throughput of a model. Text generators: prompt processing
// and generation speed. Other engines: repeated runs on synthesised inputs at a list of
// concurrency levels, in process (optionally through infer_batch) or, with --url, against
// a running KServe v2 server over HTTP JSON, HTTP binary tensors or gRPC.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <random>
#include <thread>

#include "commands.h"
#include "input_flags.h"
#include "progress.h"
#include "remote_client.h"
#include "tensor_io.h"

namespace kapsl::cli {
namespace {

struct BenchArgs {
  std::string model;
  int runs = 100;
  double duration_s = 0;
  int warmup = 5;
  std::vector<int> concurrency{1};
  int batch = 1;
  int prompt_tokens = 128;
  int gen_tokens = 32;
  std::string url;       // a running server instead of a local model
  std::string protocol = "http";
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

// One call as a worker makes it: "" on success, else the error.
using Call = std::function<std::string()>;

struct Level {
  std::vector<double> latencies_ms;  // successful calls
  double wall_s = 0;
  uint64_t errors = 0;
  std::string first_error;
};

// Runs `concurrency` workers, each with its own Call from make_call, `warmup` calls each
// and then until `runs` calls in all or `duration_s` seconds.
Level run_level(int concurrency, const BenchArgs& a, const std::function<Call()>& make_call) {
  std::vector<Call> calls;
  for (int i = 0; i < concurrency; ++i) calls.push_back(make_call());
  for (auto& call : calls) {
    for (int i = 0; i < a.warmup; ++i) call();
  }
  Level level;
  std::atomic<int> issued{0};
  std::mutex mu;
  ProgressBar bar("bench C=" + std::to_string(concurrency), stderr_is_terminal());
  const auto start = Clock::now();
  const auto done = [&] {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    return a.duration_s > 0 ? elapsed >= a.duration_s : issued.fetch_add(1) >= a.runs;
  };
  const auto worker = [&](Call& call) {
    while (!done()) {
      const auto t0 = Clock::now();
      std::string error = call();
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      std::lock_guard lock(mu);
      if (!error.empty()) {
        if (level.errors++ == 0) level.first_error = std::move(error);
        continue;
      }
      level.latencies_ms.push_back(ms);
      const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
      bar.update(a.duration_s > 0 ? elapsed / a.duration_s : static_cast<double>(level.latencies_ms.size()) / a.runs);
    }
  };
  std::vector<std::thread> threads;
  for (int i = 1; i < concurrency; ++i) threads.emplace_back(worker, std::ref(calls[static_cast<size_t>(i)]));
  worker(calls[0]);
  for (auto& t : threads) t.join();
  level.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
  return level;
}

// One line per level: requests/s (each call is `per_call` requests) and latency percentiles.
void print_level(int concurrency, const Level& l, int per_call) {
  const auto& lat = l.latencies_ms;
  std::printf("concurrency %d: %.1f infer/s, latency ms p50 %.3f p90 %.3f p99 %.3f max %.3f, %zu calls, %llu errors\n",
              concurrency, static_cast<double>(lat.size()) * per_call / l.wall_s, percentile(lat, 0.5),
              percentile(lat, 0.9), percentile(lat, 0.99), percentile(lat, 1.0), lat.size(),
              static_cast<unsigned long long>(l.errors));
  if (l.errors > 0) std::printf("  first error: %s\n", terminal_safe(l.first_error).c_str());
  std::fflush(stdout);
}

std::string describe_inputs(const InferenceRequest& req) {
  std::string shapes;
  for (const auto& in : req.inputs) {
    shapes += (shapes.empty() ? "" : ", ") + terminal_safe(in.name) + " " + std::string(dtype_name(in.tensor.dtype())) +
              " " + shape_to_string(in.tensor.shape());
  }
  return shapes;
}

// A call of the engine on `req`, or of infer_batch on `batch` copies of it.
Call engine_call(Engine& engine, const std::vector<InferenceRequest>& batch) {
  return [&engine, &batch] {
    try {
      if (batch.size() == 1) {
        engine.infer(batch[0]);
      } else {
        for (const auto& item : engine.infer_batch(batch)) {
          if (!item.ok()) return std::string(item.error->what());
        }
      }
      return std::string();
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
}

void bench_infer(const BenchArgs& a, const std::shared_ptr<Engine>& engine) {
  const std::vector<InferenceRequest> batch(static_cast<size_t>(a.batch), build_request(a.in, engine->model_info()));
  std::printf("inputs %s; threads per run %s%s\n", describe_inputs(batch[0]).c_str(), threads_of(*engine).c_str(),
              a.batch > 1 ? (", infer_batch of " + std::to_string(a.batch) + " requests per call").c_str() : "");
  for (int c : a.concurrency) print_level(c, run_level(c, a, [&] { return engine_call(*engine, batch); }), a.batch);
}

void bench_remote(const BenchArgs& a) {
  RemoteTarget target{a.url, a.model, parse_protocol(a.protocol), ""};
  if (const char* key = std::getenv("KAPSL_API_KEY"); key != nullptr) target.api_key = key;
  const RemoteModel remote(target);
  const InferenceRequest req = build_request(a.in, remote.info());
  std::printf("server %s, model %s, %s; inputs %s\n", terminal_safe(a.url).c_str(), terminal_safe(a.model).c_str(),
              protocol_name(target.protocol), describe_inputs(req).c_str());
  for (int c : a.concurrency) {
    const Level level = run_level(c, a, [&] {
      std::shared_ptr<RemoteModel::Connection> connection = remote.connect(req);
      return Call([connection] { return connection->send(); });
    });
    print_level(c, level, 1);
  }
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
  auto* cmd = app.add_subcommand("bench", "measure latency and throughput of a model, or of a model on a running server");
  cmd->add_option("model", a->model, "model file, model folder (metadata.json) or .aimod package; with --url, the "
                                     "model's name on the server");
  cmd->add_option("--model", a->model, "the model (as the positional argument)");
  cmd->add_option("--url", a->url, "bench a running KServe v2 server instead: http://host:port (grpc: host:port); "
                                   "KAPSL_API_KEY is sent as its key");
  cmd->add_option("--protocol", a->protocol, "with --url: http (JSON tensors), binary (HTTP, binary tensors) or grpc")
      ->capture_default_str()->check(CLI::IsMember({"http", "binary", "grpc"}));
  cmd->add_option("-r,--runs", a->runs, "calls per concurrency level (generations for text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-d,--duration", a->duration_s, "seconds per concurrency level instead (not text generators)")->check(CLI::NonNegativeNumber);
  cmd->add_option("-w,--warmup", a->warmup, "warm-up calls per worker")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("-C,--concurrency", a->concurrency, "callers at once, a list: 1,4,16 (not text generators)")
      ->delimiter(',')->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", a->batch, "local models: each call is one infer_batch of this many copies of the request")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-p,--prompt-tokens", a->prompt_tokens, "prompt length (text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-n,--gen-tokens", a->gen_tokens, "tokens to generate (text generators)")->capture_default_str()->check(CLI::PositiveNumber);
  add_load_flags(*cmd, a->load, /*text=*/true);
  add_input_flags(*cmd, a->in, "random");
  cmd->callback([a, &context] {
    if (a->model.empty()) throw UsageError("bench: name a model (a path, or with --url the model's name on the server)");
    if (!a->url.empty()) return bench_remote(*a);
    if (a->protocol != "http") throw UsageError("--protocol needs --url");
    const std::shared_ptr<Engine> engine = load_model(context, a->model, a->load).engine;
    if (engine->text_generator() != nullptr) bench_generation(*a, *engine);
    else bench_infer(*a, engine);
  });
}

}  // namespace kapsl::cli
