// Package manifests (metadata.json) as parse_manifest reads them from a folder, an .aimod
// package or a model repository: every key checked, unknown keys refused.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_util.h"
#include "kapsl/manifest.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  kapsl::fuzz::expect_clean([&] { kapsl::parse_manifest(text); });
  return 0;
}
