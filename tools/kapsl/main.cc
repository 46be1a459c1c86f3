// kapsl: run ONNX and GGUF models from the command line. See `kapsl --help`.
#include "commands.h"

int main(int argc, char** argv) { return kapsl::cli::run_cli(argc, argv); }
