// kapsl version and kapsl devices: what this build runs on — the backends and their
// libraries, the devices probed, and the providers each backend offers.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "kapsl/version.h"

namespace kapsl::cli {
namespace {

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string mib(uint64_t bytes) {
  return bytes == 0 ? std::string("?") : std::to_string(bytes >> 20) + " MiB";
}

nlohmann::json device_json(const Device& d) {
  return {{"backend", device_backend_name(d.backend)}, {"id", d.id},
          {"name", d.name},                            {"memory_total_bytes", d.memory_total_bytes},
          {"memory_free_bytes", d.memory_free_bytes},  {"compute_units", d.compute_units},
          {"driver_version", d.driver_version},        {"cuda_version", d.cuda_version},
          {"compute_capability", d.compute_capability}, {"pci_bus_id", d.pci_bus_id}};
}

nlohmann::json devices_json(const BackendFactory& factory) {
  const DeviceInfo& info = factory.devices();
  nlohmann::json j = {{"cpu",
                       {{"model", info.cpu.model_name},
                        {"logical_cores", info.cpu.logical_cores},
                        {"physical_cores", info.cpu.physical_cores},
                        {"memory_total_bytes", info.cpu.memory_total_bytes},
                        {"memory_available_bytes", info.cpu.memory_available_bytes},
                        {"features", info.cpu.features}}},
                      {"os", info.os_type + " " + info.os_release},
                      {"devices", nlohmann::json::array()},
                      {"notes", info.notes},
                      {"backends", nlohmann::json::object()}};
  for (const Device& d : info.devices) j["devices"].push_back(device_json(d));
  for (const auto& b : factory.backends().backends()) j["backends"][b->name()] = {{"providers", b->providers()}};
  return j;
}

void print_devices(const BackendFactory& factory) {
  const DeviceInfo& info = factory.devices();
  std::printf("cpu       %s: %u cores (%u physical), %s RAM (%s available)\n", info.cpu.model_name.c_str(),
              info.cpu.logical_cores, info.cpu.physical_cores, mib(info.cpu.memory_total_bytes).c_str(),
              mib(info.cpu.memory_available_bytes).c_str());
  for (const Device& d : info.devices) {
    if (d.backend == DeviceBackend::kCpu) continue;
    std::printf("%-9s %d: %s, %s (%s free)%s\n", device_backend_name(d.backend), d.id, d.name.c_str(),
                mib(d.memory_total_bytes).c_str(), mib(d.memory_free_bytes).c_str(),
                d.cuda_version.empty() ? "" : (", CUDA " + d.cuda_version).c_str());
  }
  for (const auto& note : info.notes) std::printf("note      %s\n", note.c_str());
  for (const auto& b : factory.backends().backends()) {
    std::printf("backend   %s: providers %s\n", b->name().c_str(), joined(b->providers()).c_str());
  }
}

}  // namespace

void register_version(CLI::App& app, const CliContext& context) {
  auto* cmd = app.add_subcommand("version", "print the versions of kapsl and the backends' libraries");
  cmd->callback([&context] {
    std::printf("kapsl        %s\n", version_string());
    for (const auto& b : context.backends().backends()) {
      std::printf("%-12s %s (providers: %s)\n", b->name().c_str(), b->version().c_str(), joined(b->providers()).c_str());
    }
  });
}

void register_devices(CLI::App& app, const CliContext& context) {
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("devices", "show the devices found and the providers each backend offers");
  cmd->add_flag("--json", *json, "print JSON");
  cmd->callback([json, &context] {
    if (*json) {
      std::cout << devices_json(context.factory()).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      return;
    }
    print_devices(context.factory());
  });
}

}  // namespace kapsl::cli
