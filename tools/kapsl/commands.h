// The kapsl subcommands. Each register_* adds one subcommand (with its flags) to the app;
// its callback runs the command, printing results to stdout and diagnostics to stderr.
//
// Exit codes: 0 ok; 1 runtime error (a kapsl::Error: bad model, bad input file, ...);
// 2 usage error (UsageError or a CLI11 parse error).
#ifndef KAPSL_TOOLS_KAPSL_COMMANDS_H_
#define KAPSL_TOOLS_KAPSL_COMMANDS_H_

#include <stdexcept>
#include <string>

#include <CLI/CLI.hpp>

#include "kapsl/text_generation.h"
#include "load_flags.h"

namespace kapsl::cli {

// A command line that parses but makes no sense ("--input x" without "=FILE").
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The engine's TextGenerator; throws Error(kInvalidInput) naming `command` if it has none.
TextGenerator& text_generator_of(Engine& engine, const std::string& model, const char* command);

// Each command loads models through context.factory(), and dispatches on an engine's
// capabilities (TextGenerator, Embedder), never on its backend.
void register_version(CLI::App& app, const CliContext& context);
void register_devices(CLI::App& app, const CliContext& context);
void register_info(CLI::App& app, const CliContext& context);
void register_run(CLI::App& app, const CliContext& context);
void register_generate(CLI::App& app, const CliContext& context);
void register_embed(CLI::App& app, const CliContext& context);
void register_tokenize(CLI::App& app, const CliContext& context);
void register_bench(CLI::App& app, const CliContext& context);
void register_serve(CLI::App& app, const CliContext& context);
void register_worker(CLI::App& app, const CliContext& context);

// Runs the kapsl CLI on argv with the backends of `backends` (null = builtin_backends());
// returns the process exit code.
int run_cli(int argc, char** argv, std::shared_ptr<const BackendRegistry> backends = nullptr);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_COMMANDS_H_
