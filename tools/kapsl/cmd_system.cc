// kapsl version and kapsl devices: what this build is linked with and what it can run on.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kapsl/gguf_engine.h"
#include "kapsl/onnx_engine.h"
#include "kapsl/version.h"

namespace kapsl::cli {
namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

void register_version(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "print the versions of kapsl and the libraries it runs on");
  cmd->callback([] {
    std::printf("kapsl        %s\n", version_string());
    std::printf("onnxruntime  %s (providers: %s)\n", OnnxEngine::runtime_version().c_str(),
                joined(OnnxEngine::available_providers()).c_str());
    std::printf("llama.cpp    %s\n", GgufEngine::llama_version().c_str());
  });
}

void register_devices(CLI::App& app) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("devices", "show the devices found and the providers ONNX Runtime offers");
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([json] {
    const auto providers = OnnxEngine::available_providers();
    if (*json) {
      std::cout << nlohmann::json({{"onnxruntime_providers", providers}}).dump(2) << "\n";
      return;
    }
    std::printf("onnxruntime providers: %s\n", joined(providers).c_str());
  });
}

}  // namespace kapsl::cli
