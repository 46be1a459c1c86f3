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

#include "model_loader.h"

namespace kapsl::cli {

// A command line that parses but makes no sense ("--input x" without "=FILE").
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Adds --provider, --device, --threads to `cmd`, writing into `flags`.
void add_load_flags(CLI::App& cmd, LoadFlags& flags);

void register_version(CLI::App& app);
void register_devices(CLI::App& app);
void register_info(CLI::App& app);
void register_run(CLI::App& app);
void register_generate(CLI::App& app);
void register_embed(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_bench(CLI::App& app);
void register_serve(CLI::App& app);

// Runs the kapsl CLI on argv; returns the process exit code.
int run_cli(int argc, char** argv);

}  // namespace kapsl::cli

#endif  // KAPSL_TOOLS_KAPSL_COMMANDS_H_
