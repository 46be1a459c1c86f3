// SHA-256 (FIPS 180-4), for content-addressing extracted packages. Self-contained so the
// library does not need a crypto dependency for one hash.
#ifndef KAPSL_SRC_PACKAGE_SHA256_H_
#define KAPSL_SRC_PACKAGE_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace kapsl::internal {

// Incremental hasher. Not thread-safe: one thread at a time.
class Sha256 {
 public:
  Sha256();
  // Adds bytes to the message.
  void update(std::span<const std::byte> data);
  void update(std::string_view text) { update(std::as_bytes(std::span(text.data(), text.size()))); }
  // Ends the message and returns the digest. REQUIRES: called once.
  std::array<uint8_t, 32> finish();
  // finish() as 64 lower-case hex digits.
  std::string finish_hex();

 private:
  void compress(const uint8_t* block);

  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> buffer_{};
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
};

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_PACKAGE_SHA256_H_
