// `kapsl serve`: the HTTP inference server (include/kapsl/server.h) from the command line.
//
// Options come from a JSON config file (--config) and flags; a flag given on the command
// line wins over the file. SIGINT and SIGTERM start a graceful shutdown.
#include <malloc.h>
#include <pthread.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "kapsl/error.h"
#include "kapsl/server.h"

namespace kapsl::cli {

namespace {

using json = nlohmann::json;

struct ServeFlags {
  std::string models;
  std::string model;       // one model's storage (KServe's /mnt/models), instead of --models
  std::string model_name;  // its name
  std::string config;
  std::string host = "127.0.0.1";
  int port = 8080;
  int grpc_port = -1;
  std::string api_key_file;
  std::vector<std::string> pin;
  size_t max_models = 0;         // 0 = the config's or PoolConfig's default
  double ttl_s = -1;             // < 0 = the config's or the default
  std::string memory_budget;     // device 0 byte budget, e.g. "8GiB"
  uint32_t max_concurrency = 4;
  uint32_t max_queue = 16;
  double queue_timeout_s = 30;
  double request_timeout_s = 0;
  size_t max_body_mib = 64;
  size_t max_inflight_body_mib = 512;
  double read_timeout_s = 10;
  size_t http_max_threads = 0;
  double shutdown_timeout_s = 10;
  std::optional<int> threads;
  std::optional<uint32_t> ctx_size;
  std::optional<uint32_t> parallel;
  std::string chat_template;
  LoadFlags split;         // --rpc, --tensor-split, --gpu-layers
  bool reranking = false;  // the rerank task for models whose manifest names none
  std::optional<uint32_t> max_batch_size;  // dynamic batching for models that can batch
  std::optional<double> batch_delay_us;
  size_t http_threads = 32;
  bool quiet = false;
};

json read_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error::not_found("cannot read the config file", path);
  std::stringstream text;
  text << in.rdbuf();
  json doc = json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw Error::invalid_input("the config file is not a JSON object", path);
  return doc;
}

// The key is the file's first line without surrounding whitespace: editors and `echo` add
// newlines, Windows ones add "\r", and a key that cannot match any header locks everyone out.
std::string read_key_file(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) throw Error::invalid_input("cannot read an API key from", path);
  const auto first = line.find_first_not_of(" \t\r\f\v");
  if (first == std::string::npos) throw Error::invalid_input("the API key file's first line is empty", path);
  return line.substr(first, line.find_last_not_of(" \t\r\f\v") - first + 1);
}

// Config-file "server" values for the flags the command line did not set.
void apply_config(const json& server, const CLI::App& cmd, ServeFlags& f) {
  const auto take = [&](const char* key, const char* flag, auto& field) {
    if (server.contains(key) && cmd.count(flag) == 0) server.at(key).get_to(field);
  };
  take("models", "--models", f.models);
  take("model", "--model", f.model);
  take("model_name", "--model-name", f.model_name);
  take("host", "--host", f.host);
  take("port", "--port", f.port);
  take("grpc_port", "--grpc-port", f.grpc_port);
  take("pin", "--pin", f.pin);
  take("max_concurrency", "--max-concurrency", f.max_concurrency);
  take("max_queue", "--max-queue", f.max_queue);
  take("queue_timeout", "--queue-timeout", f.queue_timeout_s);
  take("request_timeout", "--request-timeout", f.request_timeout_s);
  take("max_body_mib", "--max-body-mib", f.max_body_mib);
  take("max_inflight_body_mib", "--max-inflight-body-mib", f.max_inflight_body_mib);
  take("read_timeout", "--read-timeout", f.read_timeout_s);
  take("http_max_threads", "--http-max-threads", f.http_max_threads);
  take("shutdown_timeout", "--shutdown-timeout", f.shutdown_timeout_s);
  const auto take_optional = [&](const char* key, const char* flag, auto& field) {
    if (server.contains(key) && cmd.count(flag) == 0) field = server.at(key).get<typename std::decay_t<decltype(field)>::value_type>();
  };
  take_optional("threads", "--threads", f.threads);
  take_optional("ctx_size", "--ctx-size", f.ctx_size);
  take_optional("parallel", "--parallel", f.parallel);
  take("chat_template", "--chat-template", f.chat_template);
  take_optional("max_batch_size", "--max-batch-size", f.max_batch_size);
  take_optional("batch_delay_us", "--batch-delay-us", f.batch_delay_us);
  take("http_threads", "--http-threads", f.http_threads);
  take("api_key_file", "--api-key-file", f.api_key_file);
}

PoolConfig pool_config(json pool, const ServeFlags& f) {
  if (f.max_models > 0) {
    pool["max_size"] = f.max_models;
    if (!pool.contains("min_size")) pool["min_size"] = std::min<size_t>(1, f.max_models);
  }
  if (f.ttl_s >= 0) pool["ttl"] = f.ttl_s;
  if (!f.memory_budget.empty()) pool["device_byte_budgets"] = {{"0", f.memory_budget}};
  return PoolConfig::from_json(pool.dump());
}

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Model defaults: the config file's "model_defaults", then the backend flags over them.
std::string model_defaults(const json& config, const ServeFlags& f) {
  json defaults = config.value("model_defaults", json::object());
  if (!defaults.is_object()) throw Error::invalid_input("the config file's model_defaults", "expected an object");
  LoadFlags flags;
  flags.threads = f.threads;
  flags.ctx_size = f.ctx_size;
  flags.parallel = f.parallel;
  flags.chat_template = f.chat_template;
  flags.rpc_workers = f.split.rpc_workers;
  flags.tensor_split = f.split.tensor_split;
  flags.gpu_layers = f.split.gpu_layers;
  if (f.reranking) flags.task = "rerank";
  defaults.merge_patch(json::parse(overrides_for(flags)));
  if (f.max_batch_size || f.batch_delay_us) {  // the rest of dynamic_batching keeps its defaults
    json& batching = defaults["serving"]["dynamic_batching"];
    if (f.max_batch_size) batching["max_batch_size"] = *f.max_batch_size;
    if (f.batch_delay_us) batching["max_queue_delay"] = *f.batch_delay_us / 1e6;
  }
  return defaults.dump();
}

ServerOptions server_options(const CLI::App& cmd, ServeFlags f, const CliContext& context) {
  json config = f.config.empty() ? json::object() : read_config(f.config);
  apply_config(config.value("server", json::object()), cmd, f);
  if (f.models.empty() == f.model.empty()) {
    throw UsageError("give --models DIR (a repository) or --model PATH (one model), not both "
                     "(or \"server\": {\"models\": ...} in --config)");
  }
  if (!f.model_name.empty() && f.model.empty()) throw UsageError("--model-name names the model of --model");
  ServerOptions o;
  o.model_repository = f.model.empty() ? f.models : f.model;
  o.single_model = !f.model.empty();
  o.single_model_name = f.model_name;
  o.host = f.host;
  o.port = f.port;
  o.grpc_port = f.grpc_port;
  if (const char* env = std::getenv("KAPSL_API_KEY"); env != nullptr && *env != '\0') o.api_key = env;
  if (!f.api_key_file.empty()) o.api_key = read_key_file(f.api_key_file);
  o.pinned_models = f.pin;
  o.pool = pool_config(config.value("pool", json::object()), f);
  o.max_concurrency = f.max_concurrency;
  o.max_queue = f.max_queue;
  o.queue_timeout = ms(f.queue_timeout_s);
  o.request_timeout = ms(f.request_timeout_s);
  o.max_body_bytes = f.max_body_mib << 20;
  // Unless given, room for at least one body of the largest size (each counts 3x its size).
  o.max_inflight_body_bytes =
      (cmd.count("--max-inflight-body-mib") ? f.max_inflight_body_mib : std::max(f.max_inflight_body_mib, 3 * f.max_body_mib))
      << 20;
  o.read_timeout = ms(f.read_timeout_s);
  o.http_max_threads = f.http_max_threads;
  o.shutdown_timeout = ms(f.shutdown_timeout_s);
  o.backends = context.factory().shared_backends();
  o.model_defaults = model_defaults(config, f);
  o.http_threads = f.http_threads;
  o.log_requests = !f.quiet;
  return o;
}

// Serves until SIGINT or SIGTERM. The signals are blocked in every thread (the mask is
// inherited) and taken by one thread with sigwait, so shutdown runs in ordinary code
// rather than in a signal handler.
void serve(const ServerOptions& options) {
  // Request bodies are large, short-lived and allocated on many worker threads. glibc's
  // default raises its mmap threshold to the largest block freed (up to 32 MiB), after
  // which such blocks come from per-thread arenas and their pages stay with the process;
  // measured: six 64 MiB bodies left 240 MiB resident. A fixed threshold keeps every large
  // block in its own mapping, given back to the system when freed. It is 16 MiB, not
  // lower: llama.cpp's grammar sampler allocates and frees vectors of 32 bytes per
  // vocabulary token for each constrained token (4.8 MiB for a 151,936-token vocabulary),
  // and at 1 MiB each was mapped and unmapped, which halved constrained generation's speed.
  mallopt(M_MMAP_THRESHOLD, 16 << 20);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  Server server(options);
  server.start();
  std::fprintf(stderr, "kapsl serve: listening on http://%s:%d (Ctrl-C to stop)\n", options.host.c_str(), server.port());
  std::thread waiter([&server, signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    std::fprintf(stderr, "kapsl serve: %s received, shutting down\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server.shutdown();
  });
  server.wait();
  waiter.join();
}

}  // namespace

void register_serve(CLI::App& app, const CliContext& context) {
  auto flags = std::make_shared<ServeFlags>();
  CLI::App* cmd = app.add_subcommand("serve", "serve a model repository, or one model, over HTTP (KServe v2, OpenAI, Prometheus)");
  ServeFlags& f = *flags;
  cmd->add_option("--models", f.models, "model repository: model files, folders with metadata.json, .aimod packages");
  cmd->add_option("--model", f.model,
                  "serve one model instead: a model file, a folder with metadata.json, or a folder holding one model "
                  "(KServe's /mnt/models)");
  cmd->add_option("--model-name", f.model_name, "the name --model is served under (default: its file or folder name)");
  cmd->add_option("--config", f.config,
                  "JSON config: {\"server\": {...}, \"pool\": {...}, \"model_defaults\": {...}}; flags win");
  cmd->add_option("--host", f.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", f.port, "port (0 = any free port)")->capture_default_str();
  cmd->add_option("--grpc-port", f.grpc_port, "KServe v2 over gRPC on this port (0 = any free port; -1 = off)")
      ->capture_default_str();
  cmd->add_option("--api-key-file", f.api_key_file, "file whose first line is the API key (or set KAPSL_API_KEY)");
  cmd->add_option("--pin", f.pin, "load this model at start and never evict it (repeatable)");
  cmd->add_option("--max-models", f.max_models, "engines the pool holds at once (default 5)");
  cmd->add_option("--ttl", f.ttl_s, "unload a model idle this many seconds (0 = never; default 60)");
  cmd->add_option("--memory-budget", f.memory_budget, "byte budget for resident models, e.g. 8GiB");
  cmd->add_option("--max-concurrency", f.max_concurrency, "requests running at once per model")->capture_default_str();
  cmd->add_option("--max-queue", f.max_queue, "requests waiting per model; more get 503/429")->capture_default_str();
  cmd->add_option("--queue-timeout", f.queue_timeout_s, "seconds a request may wait in the queue")->capture_default_str();
  cmd->add_option("--request-timeout", f.request_timeout_s, "inference deadline in seconds (0 = none)")->capture_default_str();
  cmd->add_option("--max-body-mib", f.max_body_mib, "largest request body in MiB, any transfer encoding")
      ->capture_default_str()->check(CLI::Range(size_t{1}, size_t{1} << 20));
  cmd->add_option("--max-inflight-body-mib", f.max_inflight_body_mib,
                  "memory request bodies being read and parsed may hold, each counted 3x its size; more get 503/429")
      ->capture_default_str();
  cmd->add_option("--read-timeout", f.read_timeout_s,
                  "seconds to receive one request's headers and body, however slowly sent; then the connection closes")
      ->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--shutdown-timeout", f.shutdown_timeout_s, "seconds to let requests finish on shutdown")->capture_default_str();
  cmd->add_option("-t,--threads", f.threads, "threads per engine, unless a manifest says (0 = the backend's default)");
  cmd->add_option("-c,--ctx-size", f.ctx_size, "GGUF context per slot, unless a manifest says (0 = min(trained, 4096))");
  cmd->add_option("--parallel", f.parallel, "GGUF slots per model, unless a manifest says (default 1)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--chat-template", f.chat_template,
                  "GGUF chat template, unless a manifest says: a name llama.cpp knows (chatml, llama3, ...) or a file "
                  "holding the template (default: the model's own, else chatml)");
  add_split_flags(*cmd, f.split);
  cmd->add_flag("--reranking", f.reranking,
               "load models for reranking (/v1/rerank), unless a manifest names a task (as llama-server --reranking)");
  cmd->add_option("--max-batch-size", f.max_batch_size,
                  "dynamic batching: merge concurrent requests into executions of up to N rows, for every model "
                  "whose first dimension is a batch (unless its manifest says)")
      ->check(CLI::Range(1u, 1u << 20));
  cmd->add_option("--batch-delay-us", f.batch_delay_us,
                  "dynamic batching: microseconds a request may wait for others to join (default 500)")
      ->check(CLI::Range(0.0, 1e7));
  cmd->add_option("--http-threads", f.http_threads, "HTTP worker threads")->capture_default_str();
  cmd->add_option("--http-max-threads", f.http_max_threads, "HTTP worker threads while all are busy (0 = 8x --http-threads)");
  cmd->add_flag("-q,--quiet", f.quiet, "no per-request log lines");
  cmd->callback([cmd, flags, &context] {
    const ServerOptions options = server_options(*cmd, *flags, context);
    // An operator wants the backends' warnings too (a model's odd metadata); -v shows more.
    const auto backends = spdlog::get("backends");
    const auto backends_level = backends ? backends->level() : spdlog::level::off;
    if (options.log_requests) spdlog::set_level(spdlog::level::info);
    if (backends) backends->set_level(backends_level == spdlog::level::off ? spdlog::level::warn : backends_level);
    serve(options);
  });
}

}  // namespace kapsl::cli
