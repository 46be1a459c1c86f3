#include "gguf/gguf_validate.h"

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <system_error>

#include "gguf.h"
#include "gguf/llama_backend.h"
#include "kapsl/error.h"

namespace kapsl::gguf {
namespace {

// The fixed GGUF header: magic, version, tensor count, KV count.
constexpr size_t kHeaderBytes = 4 + 4 + 8 + 8;
// The smallest encodings: a KV is a key length (8), a 1-byte key, a type (4) and a 1-byte
// value; a tensor info is a name length (8), n_dims (4), one dimension (8), a type (4) and
// an offset (8).
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
constexpr uint64_t kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;

struct GgufDeleter {
  void operator()(gguf_context* ctx) const noexcept { gguf_free(ctx); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;

Error bad_file(const std::string& path, const std::string& why) {
  return Error::model_load("cannot load GGUF model '" + path + "'", why);
}

template <typename T>
T read_le(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // kapsl requires a little-endian host, as GGUF is
  return v;
}

uint64_t regular_file_size(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw bad_file(path, "no such file");
  if (!std::filesystem::is_regular_file(status)) throw bad_file(path, "not a regular file");
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw bad_file(path, "cannot read its size: " + ec.message());
  return size;
}

void check_header(const std::string& path, uint64_t file_bytes, GgufFileFacts* facts) {
  std::array<unsigned char, kHeaderBytes> h{};
  std::ifstream in(path, std::ios::binary);
  if (!in) throw bad_file(path, "cannot open it for reading");
  in.read(reinterpret_cast<char*>(h.data()), static_cast<std::streamsize>(h.size()));
  const auto got = static_cast<size_t>(in.gcount());
  if (got >= 4 && std::memcmp(h.data(), "GGUF", 4) != 0) {
    throw bad_file(path, "not a GGUF file (the first 4 bytes are not \"GGUF\")");
  }
  if (got < kHeaderBytes) {
    throw bad_file(path, "truncated: " + std::to_string(file_bytes) + " bytes, shorter than the " +
                             std::to_string(kHeaderBytes) + "-byte GGUF header");
  }
  facts->version = read_le<uint32_t>(h.data() + 4);
  if ((facts->version & 0xFFFFu) == 0 && facts->version != 0) {
    throw bad_file(path, "big-endian GGUF files are not supported");
  }
  if (facts->version != 2 && facts->version != 3) {
    throw bad_file(path, "unsupported GGUF version " + std::to_string(facts->version) + " (supported: 2, 3)");
  }
  facts->n_tensors = read_le<int64_t>(h.data() + 8);
  facts->n_kv = read_le<int64_t>(h.data() + 16);
  const uint64_t room = file_bytes - kHeaderBytes;
  if (facts->n_tensors < 0 || facts->n_kv < 0 ||
      static_cast<uint64_t>(facts->n_tensors) > room / kMinTensorInfoBytes ||
      static_cast<uint64_t>(facts->n_kv) > room / kMinKvBytes ||
      static_cast<uint64_t>(facts->n_tensors) * kMinTensorInfoBytes +
              static_cast<uint64_t>(facts->n_kv) * kMinKvBytes > room) {
    throw bad_file(path, "corrupt header: it declares " + std::to_string(facts->n_tensors) + " tensors and " +
                             std::to_string(facts->n_kv) + " key-value pairs, more than a file of " +
                             std::to_string(file_bytes) + " bytes can hold (truncated?)");
  }
}

std::string string_value(const gguf_context* ctx, const char* key) {
  const int64_t id = gguf_find_key(ctx, key);
  if (id < 0 || gguf_get_kv_type(ctx, id) != GGUF_TYPE_STRING) return {};
  return gguf_get_val_str(ctx, id);
}

void check_tensor_data(const std::string& path, const gguf_context* ctx, uint64_t file_bytes) {
  const uint64_t data_offset = gguf_get_data_offset(ctx);
  for (int64_t i = 0; i < gguf_get_n_tensors(ctx); ++i) {
    const uint64_t begin = data_offset + gguf_get_tensor_offset(ctx, i);
    const uint64_t size = gguf_get_tensor_size(ctx, i);
    if (begin > file_bytes || size > file_bytes - begin) {
      throw bad_file(path, "truncated: tensor '" + std::string(gguf_get_tensor_name(ctx, i)) + "' needs bytes [" +
                               std::to_string(begin) + ", " + std::to_string(begin + size) +
                               ") but the file has " + std::to_string(file_bytes) + " bytes");
    }
  }
}

}  // namespace

GgufFileFacts validate_gguf_file(const std::string& path) {
  GgufFileFacts facts;
  facts.file_bytes = regular_file_size(path);
  check_header(path, facts.file_bytes, &facts);
  ensure_llama_backend();  // so that gguf's own error lines reach our logger
  clear_llama_error();
  gguf_init_params params = {/*no_alloc=*/true, /*ctx=*/nullptr};
  GgufPtr ctx(gguf_init_from_file(path.c_str(), params));
  if (!ctx) {
    const std::string why = last_llama_error();
    throw bad_file(path, "corrupt key-value or tensor table" + (why.empty() ? std::string() : ": " + why));
  }
  check_tensor_data(path, ctx.get(), facts.file_bytes);
  facts.architecture = string_value(ctx.get(), "general.architecture");
  if (facts.architecture.empty()) throw bad_file(path, "no general.architecture string in its metadata");
  facts.name = string_value(ctx.get(), "general.name");
  return facts;
}

}  // namespace kapsl::gguf
