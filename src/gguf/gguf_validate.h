// Validation of a GGUF file before llama.cpp reads it.
//
// llama.cpp trusts a file's header and tensor table more than it should (a count or offset
// beyond the file can abort the process or read out of bounds), so kapsl checks them first:
// the magic, the version, that the KV and tensor counts fit in the file, that the KV and
// tensor tables parse, and that every tensor's data lies inside the file.
//
// Thread-safety: safe for concurrent use without external synchronization.
#ifndef KAPSL_SRC_GGUF_GGUF_VALIDATE_H_
#define KAPSL_SRC_GGUF_GGUF_VALIDATE_H_

#include <cstdint>
#include <string>

namespace kapsl::gguf {

struct GgufFileFacts {
  uint32_t version = 0;
  int64_t n_tensors = 0;
  int64_t n_kv = 0;
  uint64_t file_bytes = 0;
  std::string architecture;  // general.architecture
  std::string name;          // general.name, or ""
};

// Checks `path` as described above and returns what it read.
// Throws kModelLoad naming the file and what is wrong with it (missing, not a regular file,
// not GGUF, truncated, unsupported version, corrupt tables, tensor data out of bounds, no
// architecture).
GgufFileFacts validate_gguf_file(const std::string& path);

}  // namespace kapsl::gguf

#endif  // KAPSL_SRC_GGUF_GGUF_VALIDATE_H_
