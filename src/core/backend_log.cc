#include "core/backend_log.h"

namespace kapsl::internal {

spdlog::logger& backend_logger() {
  // spdlog's registry is process-wide already; one logger for every backend lives there.
  static const std::shared_ptr<spdlog::logger> logger = [] {
    if (auto existing = spdlog::get("backends")) return existing;
    const auto& sinks = spdlog::default_logger()->sinks();
    auto made = std::make_shared<spdlog::logger>("backends", sinks.begin(), sinks.end());
    made->set_level(spdlog::default_logger()->level());
    spdlog::register_logger(made);
    return made;
  }();
  return *logger;
}

}  // namespace kapsl::internal
