// PoolConfig::from_json and validate.
#include <nlohmann/json.hpp>

#include <charconv>
#include <functional>
#include <string>
#include <unordered_map>

#include "core/json_fields.h"
#include "kapsl/error.h"
#include "kapsl/pool_config.h"

namespace kapsl {

namespace {

using Json = nlohmann::json;
using std::chrono::milliseconds;

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

milliseconds parse_duration(const std::string& field, const Json& j) {
  return internal::parse_duration("PoolConfig." + field, j);
}

uint64_t parse_bytes(const std::string& field, const Json& j) { return internal::parse_bytes("PoolConfig." + field, j); }

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
