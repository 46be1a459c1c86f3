// `kapsl worker`: lends this host's devices to a kapsl (or llama.cpp) on another host over
// ggml's RPC protocol (kapsl/rpc_worker.h).
#include <cstdio>
#include <memory>

#include "commands.h"
#include "kapsl/rpc_worker.h"

namespace kapsl::cli {
namespace {

constexpr const char* kSecurityNote =
    "The RPC protocol has no authentication and no encryption, and any client that reaches the port can make "
    "this host allocate memory and run computations: bind to a private address that only the serving hosts reach.";

bool is_loopback(const std::string& host) { return host.rfind("127.", 0) == 0; }

}  // namespace

void register_worker(CLI::App& app, const CliContext& /*context*/) {
  auto options = std::make_shared<RpcWorkerOptions>();
  auto* cmd = app.add_subcommand(
      "worker", std::string("lend this host's CPU (or GPU) to a kapsl on another host: the GGUF model's layers it is "
                            "given run here (ggml RPC server; `kapsl serve --rpc HOST:PORT`). ") +
                    kSecurityNote);
  cmd->add_option("--host", options->host, "IPv4 address to listen on; a private one")->capture_default_str();
  cmd->add_option("--port", options->port, "port to listen on")->capture_default_str();
  cmd->add_option("-t,--threads", options->n_threads, "CPU compute threads (0 = physical cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--cache", options->cache_dir,
                  "folder that keeps the tensors received, by hash, so that a client reloading the same model sends "
                  "hashes instead of weights (default: no cache)");
  cmd->add_option("--device", options->devices, "ggml devices to lend, e.g. CUDA0,CUDA1 (default: the GPUs, else the CPU)")
      ->delimiter(',');
  cmd->callback([options] {
    if (!is_loopback(options->host)) std::fprintf(stderr, "kapsl worker: warning: %s\n", kSecurityNote);
    serve_rpc_worker(*options);
  });
}

}  // namespace kapsl::cli
