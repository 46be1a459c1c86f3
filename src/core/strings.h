// Small string helpers shared by kapsl's parsers (dtype names, ONNX options, manifests, devices).
#ifndef KAPSL_CORE_STRINGS_H_
#define KAPSL_CORE_STRINGS_H_

#include <string>
#include <string_view>
#include <vector>

namespace kapsl::internal {

// `s` without leading and trailing blanks (space, tab, CR, LF, VT, FF).
std::string_view trim(std::string_view s);
// ASCII lower case; other bytes unchanged.
std::string to_lower(std::string_view s);
// to_lower(trim(s)): how kapsl compares names given by people ("  FP32 " == "fp32").
std::string lower_trimmed(std::string_view s);
// Pieces between each `sep`, empty pieces kept ("a..b" -> "a", "", "b").
std::vector<std::string> split(std::string_view s, char sep);
// The pieces with `sep` between them ({"a", "b"}, ", " -> "a, b").
std::string join(const std::vector<std::string>& pieces, std::string_view sep);
// Blank-separated words, empty pieces dropped.
std::vector<std::string> split_blank(std::string_view s);
// The value of environment variable `name`, or "" if unset.
std::string env_or_empty(const char* name);

}  // namespace kapsl::internal

#endif  // KAPSL_CORE_STRINGS_H_
