// PoolConfig::from_json and validate.
#include <nlohmann/json.hpp>

#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <string>
#include <unordered_map>

#include "kapsl/error.h"
#include "kapsl/pool_config.h"

namespace kapsl {

namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

constexpr double kMaxSeconds = 1e9;  // ~31 years; beyond it milliseconds would overflow soon

[[noreturn]] void bad_field(const std::string& field, const std::string& expected, const std::string& got) {
  throw Error::invalid_input("PoolConfig." + field + ": expected " + expected, "got " + got);
}

std::string shown(const Json& j) { return j.dump() + " (" + j.type_name() + ")"; }

size_t parse_size(const std::string& field, const Json& j) {
  if (!j.is_number_unsigned()) bad_field(field, "a non-negative integer", shown(j));
  return j.get<size_t>();
}

bool parse_bool(const std::string& field, const Json& j) {
  if (!j.is_boolean()) bad_field(field, "true or false", shown(j));
  return j.get<bool>();
}

// Splits "12.5GiB" into 12.5 and "GiB"; false if there is no leading number.
bool split_number(const std::string& text, double& number, std::string& unit) {
  size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) ++end;
  if (end == 0) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + end, number);
  if (ec != std::errc() || ptr != text.data() + end) return false;
  unit = text.substr(end);
  return true;
}

milliseconds parse_duration(const std::string& field, const Json& j) {
  const std::string expected = "seconds as a non-negative number, or a string like \"500ms\", \"60s\", \"5m\", \"1h\"";
  double seconds = 0;
  if (j.is_number()) {
    seconds = j.get<double>();
  } else if (j.is_string()) {
    static const std::unordered_map<std::string, double> kUnits = {{"ms", 1e-3}, {"s", 1}, {"", 1}, {"m", 60}, {"h", 3600}};
    double number = 0;
    std::string unit;
    const std::string text = j.get<std::string>();
    auto u = kUnits.end();
    if (!split_number(text, number, unit) || (u = kUnits.find(unit)) == kUnits.end()) bad_field(field, expected, shown(j));
    seconds = number * u->second;
  } else {
    bad_field(field, expected, shown(j));
  }
  if (!std::isfinite(seconds) || seconds < 0 || seconds > kMaxSeconds) bad_field(field, expected, shown(j));
  return milliseconds(static_cast<int64_t>(std::llround(seconds * 1000.0)));
}

uint64_t parse_bytes(const std::string& field, const Json& j) {
  const std::string expected = "bytes as a positive integer, or a string like \"512MiB\", \"8GiB\", \"1GB\"";
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (!j.is_string()) bad_field(field, expected, shown(j));
  static const std::unordered_map<std::string, double> kUnits = {
      {"", 1},          {"B", 1},         {"KB", 1e3},         {"MB", 1e6},         {"GB", 1e9},
      {"TB", 1e12},     {"KiB", 1024.0},  {"MiB", 1048576.0},  {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  double number = 0;
  std::string unit;
  auto u = kUnits.end();
  if (!split_number(j.get<std::string>(), number, unit) || (u = kUnits.find(unit)) == kUnits.end()) {
    bad_field(field, expected, shown(j));
  }
  const double bytes = number * u->second;
  if (!std::isfinite(bytes) || bytes >= 1.8e19) bad_field(field, expected, shown(j));
  return static_cast<uint64_t>(std::llround(bytes));
}

std::map<int, uint64_t> parse_budgets(const Json& j) {
  if (!j.is_object()) bad_field("device_byte_budgets", "an object of device id -> bytes", shown(j));
  std::map<int, uint64_t> budgets;
  for (const auto& [name, value] : j.items()) {
    int id = 0;
    const auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (name.empty() || ec != std::errc() || ptr != name.data() + name.size()) {
      bad_field("device_byte_budgets", "integer device ids as keys", "\"" + name + "\"");
    }
    budgets[id] = parse_bytes("device_byte_budgets[" + name + "]", value);
  }
  return budgets;
}

using FieldParser = std::function<void(PoolConfig&, const std::string&, const Json&)>;

const std::unordered_map<std::string, FieldParser>& field_parsers() {
  static const std::unordered_map<std::string, FieldParser> kParsers = {
      {"max_size", [](PoolConfig& c, const std::string& f, const Json& j) { c.max_size = parse_size(f, j); }},
      {"min_size", [](PoolConfig& c, const std::string& f, const Json& j) { c.min_size = parse_size(f, j); }},
      {"warmup_size", [](PoolConfig& c, const std::string& f, const Json& j) { c.warmup_size = parse_size(f, j); }},
      {"ttl", [](PoolConfig& c, const std::string& f, const Json& j) { c.ttl = parse_duration(f, j); }},
      {"health_check_interval",
       [](PoolConfig& c, const std::string& f, const Json& j) { c.health_check_interval = parse_duration(f, j); }},
      {"load_failure_backoff",
       [](PoolConfig& c, const std::string& f, const Json& j) { c.load_failure_backoff = parse_duration(f, j); }},
      {"health_check_on_get",
       [](PoolConfig& c, const std::string& f, const Json& j) { c.health_check_on_get = parse_bool(f, j); }},
      {"warmup_enabled", [](PoolConfig& c, const std::string& f, const Json& j) { c.warmup_enabled = parse_bool(f, j); }},
      {"device_byte_budgets", [](PoolConfig& c, const std::string&, const Json& j) { c.device_byte_budgets = parse_budgets(j); }},
  };
  return kParsers;
}

}  // namespace

PoolConfig PoolConfig::from_json(std::string_view json) {
  Json doc;
  try {
    doc = Json::parse(json);
  } catch (const Json::exception& e) {
    throw Error::invalid_input("PoolConfig: not valid JSON", e.what());
  }
  if (!doc.is_object()) throw Error::invalid_input("PoolConfig: expected a JSON object", "got " + shown(doc));
  PoolConfig config;
  const auto& parsers = field_parsers();
  for (const auto& [name, value] : doc.items()) {
    auto p = parsers.find(name);
    if (p == parsers.end()) throw Error::invalid_input("PoolConfig: unknown field \"" + name + "\"");
    p->second(config, name, value);
  }
  config.validate();
  return config;
}

void PoolConfig::validate() const {
  if (max_size == 0) bad_field("max_size", "at least 1", "0");
  if (min_size > max_size) {
    bad_field("min_size", "at most max_size (" + std::to_string(max_size) + ")", std::to_string(min_size));
  }
  const auto check = [](const char* field, milliseconds d) {
    if (d.count() < 0) bad_field(field, "a non-negative duration", std::to_string(d.count()) + " ms");
  };
  check("ttl", ttl);
  check("health_check_interval", health_check_interval);
  check("load_failure_backoff", load_failure_backoff);
  for (const auto& [id, bytes] : device_byte_budgets) {
    if (bytes == 0) {
      bad_field("device_byte_budgets[" + std::to_string(id) + "]", "a positive byte count (omit the device for no budget)",
                "0");
    }
  }
}

}  // namespace kapsl
