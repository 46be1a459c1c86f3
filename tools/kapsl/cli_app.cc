#include <cstdio>

#include <spdlog/spdlog.h>

#include "commands.h"
#include "kapsl/error.h"
#include "kapsl/version.h"

namespace kapsl::cli {

void add_load_flags(CLI::App& cmd, LoadFlags& flags) {
  cmd.add_option("--provider", flags.provider, "ONNX execution provider (cpu, cuda, tensorrt, ...)")
      ->capture_default_str();
  cmd.add_option("--device", flags.device_id, "accelerator index")->check(CLI::NonNegativeNumber);
  cmd.add_option("-t,--threads", flags.threads, "threads (0 = the backend's default)")->check(CLI::NonNegativeNumber);
}

namespace {

// One line: what went wrong and what to do.
std::string hint_for(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kNotFound: return " (check the path)";
    case ErrorCode::kModelLoad: return " (is it a valid model file?)";
    case ErrorCode::kUnavailable: return " (try --provider cpu)";
    default: return "";
  }
}

}  // namespace

int run_cli(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  CLI::App app{"kapsl: run ONNX and GGUF models (kapsl " + std::string(version_string()) + ")", "kapsl"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("kapsl ") + version_string());
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "log what the backends say");
  app.parse_complete_callback([&verbose] {
    if (verbose) spdlog::set_level(spdlog::level::info);
  });
  register_version(app);
  register_devices(app);
  register_info(app);
  register_run(app);
  register_generate(app);
  register_embed(app);
  register_tokenize(app);
  register_bench(app);
  register_serve(app);
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
