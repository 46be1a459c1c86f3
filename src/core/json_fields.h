// Typed reading of JSON documents people write (manifests, backend options sections, pool
// and server configs), with one error format everywhere: every failure is
// Error(kInvalidInput) naming the document, the field path ("serving.max_queue",
// "hardware_requirements.fallback_providers[1]"), what was expected and what was given.
//
// Thread-safety: JsonFields only reads the object it is given; const methods may run
// concurrently. The free functions are thread-safe.
#ifndef KAPSL_SRC_CORE_JSON_FIELDS_H_
#define KAPSL_SRC_CORE_JSON_FIELDS_H_

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kapsl::internal {

// Parses `text`, refusing nesting deeper than `max_depth` and, if max_values > 0, more
// than max_values values — scalars, arrays, objects and keys alike — while parsing (dump()
// and the destructor recurse, and a DOM node costs 16 bytes or more, so a hostile document
// must be stopped before it is built).
// Throws Error(kInvalidInput) "<source>: not valid JSON" with the byte offset, or naming
// the limit.
nlohmann::json parse_json_document(std::string_view text, std::string_view source, int max_depth = 64,
                                   uint64_t max_values = 0);

// A short rendering of a value for "got ..." in messages, cut so that a hostile document
// cannot make a message huge: 'string "abc"', 'number 5'.
std::string describe_json(const nlohmann::json& value);

// "<source>: <path>" (or just the path when source is empty): where a field is, for messages.
std::string field_location(std::string_view source, std::string_view path);

// Throws Error(kInvalidInput) "<where>: expected <expected>, got <describe_json(got)>".
[[noreturn]] void fail_field(std::string_view where, std::string_view expected, const nlohmann::json& got);

// Seconds as a non-negative number, or a string with a unit: "500us", "500ms", "60s", "5m",
// "1h". Throws naming `where`. parse_duration rounds to the nearest millisecond.
std::chrono::milliseconds parse_duration(std::string_view where, const nlohmann::json& value);
std::chrono::microseconds parse_duration_us(std::string_view where, const nlohmann::json& value);

// Bytes as a non-negative integer, or a string with a unit: "512MiB", "8GiB", "1GB".
// Throws naming `where`.
uint64_t parse_bytes(std::string_view where, const nlohmann::json& value);

// Reads the fields of one JSON object at `path` of document `source`. A field that is
// absent or null counts as absent.
class JsonFields {
 public:
  // REQUIRES: `object` outlives this reader.
  JsonFields(const nlohmann::json& object, std::string path, std::string_view source = {});

  // "path.field" (or "field" at the root).
  std::string path(std::string_view field) const;
  // Where `field` is, for messages: field_location(source, path(field)).
  std::string where(std::string_view field) const;
  std::string_view source() const { return source_; }

  // Throws naming the first key not in `known`, and listing the known ones.
  void reject_unknown(const std::vector<std::string_view>& known) const;

  const nlohmann::json* find(std::string_view field) const;
  // The field if it is an object; throws if it is present and not one.
  const nlohmann::json* object(std::string_view field) const;

  // Throws if missing, not a string, or blank.
  std::string required_string(std::string_view field) const;
  std::optional<std::string> string(std::string_view field) const;
  // One of `allowed`, compared trimmed and case-insensitively; returns the allowed spelling.
  std::optional<std::string> one_of(std::string_view field, std::initializer_list<std::string_view> allowed) const;
  std::vector<std::string> strings(std::string_view field) const;
  std::optional<bool> boolean(std::string_view field) const;
  std::optional<uint64_t> u64(std::string_view field, uint64_t min = 0,
                              uint64_t max = std::numeric_limits<uint64_t>::max()) const;
  std::optional<uint32_t> u32(std::string_view field, uint32_t min = 0,
                              uint32_t max = std::numeric_limits<uint32_t>::max()) const;
  std::optional<int32_t> i32(std::string_view field, int32_t min = std::numeric_limits<int32_t>::min(),
                             int32_t max = std::numeric_limits<int32_t>::max()) const;
  std::optional<double> number(std::string_view field, double min, double max) const;
  std::optional<std::chrono::milliseconds> duration(std::string_view field) const;
  std::optional<std::chrono::microseconds> duration_us(std::string_view field) const;
  std::optional<uint64_t> bytes(std::string_view field) const;

  // An int32 read from any value (array elements), naming `where`.
  static int32_t i32_at(const nlohmann::json& value, std::string_view where);
  static std::string string_at(const nlohmann::json& value, std::string_view where);

 private:
  const nlohmann::json& object_;
  std::string path_;
  std::string source_;
};

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_CORE_JSON_FIELDS_H_
