#include <cstdio>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.h"
#include "kapsl/error.h"
#include "kapsl/version.h"

namespace kapsl::cli {

namespace {

// What to do, where the code alone says it: the message says what went wrong.
std::string hint_for(const Error& e) { return e.code() == ErrorCode::kNotFound ? " (check the path)" : ""; }

}  // namespace

int run_cli(int argc, char** argv, std::shared_ptr<const BackendRegistry> backends) {
  // Diagnostics go to stderr: stdout carries results (JSON, tensors, generated text). The
  // backend libraries' own messages (ONNX Runtime, llama.cpp) go through the "backends"
  // logger, shown only with -v (kapsl serve shows their warnings).
  if (!spdlog::get("kapsl")) spdlog::set_default_logger(spdlog::stderr_color_mt("kapsl"));
  if (!spdlog::get("backends")) spdlog::stderr_color_mt("backends");
  spdlog::set_level(spdlog::level::warn);
  spdlog::get("backends")->set_level(spdlog::level::off);
  const CliContext context(backends ? std::move(backends) : builtin_backends());
  CLI::App app{"kapsl: run ONNX and GGUF models (kapsl " + std::string(version_string()) + ")", "kapsl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("kapsl ") + version_string());
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log what the backends say");
  app.parse_complete_callback([&verbose] {
    if (!verbose) return;
    spdlog::set_level(spdlog::level::info);
    spdlog::get("backends")->set_level(spdlog::level::info);
  });
  register_version(app, context);
  register_devices(app, context);
  register_info(app, context);
  register_run(app, context);
  register_generate(app, context);
  register_embed(app, context);
  register_tokenize(app, context);
  register_bench(app, context);
  register_serve(app, context);
  register_worker(app, context);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "kapsl: usage error: %s (see kapsl --help)\n", e.what());
    return 2;
  } catch (const Error& e) {
    std::fprintf(stderr, "kapsl: error: %s%s\n", e.message().c_str(), hint_for(e).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kapsl: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace kapsl::cli
