#include "core/json_fields.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <unordered_map>

#include "core/strings.h"
#include "kapsl/error.h"

namespace kapsl::internal {

using nlohmann::json;

namespace {

constexpr double kMaxSeconds = 1e9;  // ~31 years; beyond it milliseconds would soon overflow

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

// The number `value` states in `units` ("5m" -> 5 * 60), or nullopt.
std::optional<double> with_unit(const json& value, const std::unordered_map<std::string, double>& units) {
  if (value.is_number()) return value.get<double>();
  if (!value.is_string()) return std::nullopt;
  double number = 0;
  std::string unit;
  if (!split_number(value.get<std::string>(), number, unit)) return std::nullopt;
  const auto u = units.find(unit);
  if (u == units.end()) return std::nullopt;
  return number * u->second;
}

}  // namespace

json parse_json_document(std::string_view text, std::string_view source, int max_depth, uint64_t max_values) {
  uint64_t values = 0;
  auto limit_depth = [source, max_depth, max_values, &values](int depth, json::parse_event_t event, json&) {
    if (depth > max_depth) {
      throw Error::invalid_input(std::string(source) + ": not accepted",
                                 "JSON nested deeper than " + std::to_string(max_depth) + " levels");
    }
    // Containers and keys cost a node each too: `[[],[],...]` is as large as `[1,1,...]`.
    const bool counts = event != json::parse_event_t::object_end && event != json::parse_event_t::array_end;
    if (max_values > 0 && counts && ++values > max_values) {
      throw Error::invalid_input(std::string(source) + ": not accepted",
                                 "more than " + std::to_string(max_values) + " JSON values");
    }
    return true;
  };
  try {
    return json::parse(text, limit_depth);
  } catch (const json::parse_error& e) {
    throw Error::invalid_input(std::string(source) + ": not valid JSON", "syntax error at byte " + std::to_string(e.byte));
  } catch (const json::out_of_range&) {
    // nlohmann throws this for a number beyond a double (1e400); found by fuzzing.
    throw Error::invalid_input(std::string(source) + ": not accepted", "a number beyond the range of a double");
  }
}

std::string describe_json(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return std::string(value.type_name()) + " " + text;
}

std::string field_location(std::string_view source, std::string_view path) {
  if (source.empty()) return std::string(path);
  if (path.empty()) return std::string(source);
  return std::string(source) + ": " + std::string(path);
}

void fail_field(std::string_view where, std::string_view expected, const json& got) {
  throw Error::invalid_input(where, "expected " + std::string(expected) + ", got " + describe_json(got));
}

std::chrono::microseconds parse_duration_us(std::string_view where, const json& value) {
  static const std::unordered_map<std::string, double> kUnits = {
      {"us", 1e-6}, {"ms", 1e-3}, {"s", 1}, {"", 1}, {"m", 60}, {"h", 3600}};
  const auto seconds = with_unit(value, kUnits);
  if (!seconds || !std::isfinite(*seconds) || *seconds < 0 || *seconds > kMaxSeconds) {
    fail_field(where, "seconds as a non-negative number, or a string like \"500us\", \"500ms\", \"60s\", \"5m\", \"1h\"",
               value);
  }
  return std::chrono::microseconds(static_cast<int64_t>(std::llround(*seconds * 1e6)));
}

std::chrono::milliseconds parse_duration(std::string_view where, const json& value) {
  const auto us = parse_duration_us(where, value);
  return std::chrono::milliseconds((us.count() + 500) / 1000);
}

uint64_t parse_bytes(std::string_view where, const json& value) {
  static const std::unordered_map<std::string, double> kUnits = {
      {"", 1},      {"B", 1},        {"KB", 1e3},         {"MB", 1e6},           {"GB", 1e9},
      {"TB", 1e12}, {"KiB", 1024.0}, {"MiB", 1048576.0}, {"GiB", 1073741824.0}, {"TiB", 1099511627776.0}};
  if (value.is_number_unsigned()) return value.get<uint64_t>();
  const auto bytes = value.is_string() ? with_unit(value, kUnits) : std::nullopt;
  if (!bytes || !std::isfinite(*bytes) || *bytes < 0 || *bytes >= 1.8e19) {
    fail_field(where, "bytes as a non-negative integer, or a string like \"512MiB\", \"8GiB\", \"1GB\"", value);
  }
  return static_cast<uint64_t>(std::llround(*bytes));
}

JsonFields::JsonFields(const json& object, std::string path, std::string_view source)
    : object_(object), path_(std::move(path)), source_(source) {}

std::string JsonFields::path(std::string_view field) const {
  return path_.empty() ? std::string(field) : path_ + "." + std::string(field);
}

std::string JsonFields::where(std::string_view field) const { return field_location(source_, path(field)); }

void JsonFields::reject_unknown(const std::vector<std::string_view>& known) const {
  for (const auto& [key, value] : object_.items()) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || key == k;
    if (ok) continue;
    std::string list;
    for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    std::string shown = json(key).dump(-1, ' ', false, json::error_handler_t::replace);
    if (shown.size() > 64) shown = shown.substr(0, 61) + "...";
    throw Error::invalid_input(field_location(source_, path_.empty() ? "the root object" : path_),
                               "unknown field " + shown + " (known: " + list + ")");
  }
}

const json* JsonFields::find(std::string_view field) const {
  auto it = object_.find(field);
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

const json* JsonFields::object(std::string_view field) const {
  const json* v = find(field);
  if (v != nullptr && !v->is_object()) fail_field(where(field), "an object", *v);
  return v;
}

std::string JsonFields::string_at(const json& value, std::string_view where) {
  if (!value.is_string()) fail_field(where, "a string", value);
  return value.get<std::string>();
}

int32_t JsonFields::i32_at(const json& value, std::string_view where) {
  constexpr int64_t lo = std::numeric_limits<int32_t>::min();
  constexpr int64_t hi = std::numeric_limits<int32_t>::max();
  const bool ok = value.is_number_integer() && (value.is_number_unsigned()
                                                    ? value.get<uint64_t>() <= static_cast<uint64_t>(hi)
                                                    : value.get<int64_t>() >= lo && value.get<int64_t>() <= hi);
  if (!ok) fail_field(where, "a 32-bit integer", value);
  return static_cast<int32_t>(value.get<int64_t>());
}

std::string JsonFields::required_string(std::string_view field) const {
  const json* v = find(field);
  if (v == nullptr) throw Error::invalid_input(where(field), "required field is missing");
  std::string s = string_at(*v, where(field));
  if (trim(s).empty()) fail_field(where(field), "a non-empty string", *v);
  return s;
}

std::optional<std::string> JsonFields::string(std::string_view field) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  return string_at(*v, where(field));
}

std::optional<std::string> JsonFields::one_of(std::string_view field,
                                              std::initializer_list<std::string_view> allowed) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  std::string list;
  for (std::string_view a : allowed) {
    if (v->is_string() && lower_trimmed(v->get<std::string>()) == a) return std::string(a);
    list += (list.empty() ? "\"" : ", \"") + std::string(a) + "\"";
  }
  fail_field(where(field), "one of " + list, *v);
}

std::vector<std::string> JsonFields::strings(std::string_view field) const {
  std::vector<std::string> out;
  const json* v = find(field);
  if (v == nullptr) return out;
  if (!v->is_array()) fail_field(where(field), "an array of strings", *v);
  for (size_t i = 0; i < v->size(); ++i) out.push_back(string_at((*v)[i], where(field) + "[" + std::to_string(i) + "]"));
  return out;
}

std::optional<bool> JsonFields::boolean(std::string_view field) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) fail_field(where(field), "true or false", *v);
  return v->get<bool>();
}

std::optional<uint64_t> JsonFields::u64(std::string_view field, uint64_t min, uint64_t max) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_unsigned() || v->get<uint64_t>() < min || v->get<uint64_t>() > max) {
    const bool open_ended = max == std::numeric_limits<uint64_t>::max();
    const std::string at_most = open_ended ? "" : " (at most " + std::to_string(max) + ")";
    fail_field(where(field),
               min == 1   ? "a positive integer" + at_most
               : min == 0 ? "a non-negative integer" + at_most
                          : "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]",
               *v);
  }
  return v->get<uint64_t>();
}

std::optional<uint32_t> JsonFields::u32(std::string_view field, uint32_t min, uint32_t max) const {
  const auto v = u64(field, min, max);
  return v ? std::optional<uint32_t>(static_cast<uint32_t>(*v)) : std::nullopt;
}

std::optional<int32_t> JsonFields::i32(std::string_view field, int32_t min, int32_t max) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  const int32_t n = i32_at(*v, where(field));
  if (n < min || n > max) {
    fail_field(where(field), "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", *v);
  }
  return n;
}

std::optional<double> JsonFields::number(std::string_view field, double min, double max) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number() || !(v->get<double>() >= min && v->get<double>() <= max)) {
    fail_field(where(field), "a number in [" + std::to_string(min) + ", " + std::to_string(max) + "]", *v);
  }
  return v->get<double>();
}

std::optional<std::chrono::milliseconds> JsonFields::duration(std::string_view field) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  return parse_duration(where(field), *v);
}

std::optional<std::chrono::microseconds> JsonFields::duration_us(std::string_view field) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  return parse_duration_us(where(field), *v);
}

std::optional<uint64_t> JsonFields::bytes(std::string_view field) const {
  const json* v = find(field);
  if (v == nullptr) return std::nullopt;
  return parse_bytes(where(field), *v);
}

}  // namespace kapsl::internal
