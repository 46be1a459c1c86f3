#include "kapsl/tensor.h"

#include <bit>
#include <cmath>

#include <array>
#include <cstring>
#include <limits>
#include <utility>

#include "core/strings.h"

namespace kapsl {
namespace {

struct DTypeName {
  std::string_view name;
  DType dtype;
};

// Canonical names first (dtype_name reads the first entry of each dtype), then aliases.
constexpr std::array<DTypeName, 35> kNames = {{
    {"float32", DType::kFloat32},   {"float64", DType::kFloat64}, {"float16", DType::kFloat16},
    {"bfloat16", DType::kBFloat16}, {"int8", DType::kInt8},       {"int16", DType::kInt16},
    {"int32", DType::kInt32},       {"int64", DType::kInt64},     {"uint8", DType::kUInt8},
    {"uint16", DType::kUInt16},     {"uint32", DType::kUInt32},   {"uint64", DType::kUInt64},
    {"bool", DType::kBool},         {"string", DType::kString},   {"fp32", DType::kFloat32},
    {"f32", DType::kFloat32},       {"float", DType::kFloat32},   {"fp64", DType::kFloat64},
    {"f64", DType::kFloat64},       {"double", DType::kFloat64},  {"fp16", DType::kFloat16},
    {"f16", DType::kFloat16},       {"half", DType::kFloat16},    {"bf16", DType::kBFloat16},
    {"i8", DType::kInt8},           {"i16", DType::kInt16},       {"i32", DType::kInt32},
    {"i64", DType::kInt64},         {"u8", DType::kUInt8},        {"u16", DType::kUInt16},
    {"u32", DType::kUInt32},        {"u64", DType::kUInt64},      {"boolean", DType::kBool},
    {"utf8", DType::kString},       {"str", DType::kString},
}};

// The element count of a numeric tensor of `dtype` and `shape` held in `got` bytes, for
// from_bytes and adopt. Throws Error(kInvalidInput) for kString, a bad shape or a length
// that does not match.
int64_t checked_numeric_elements(DType dtype, std::span<const int64_t> shape, size_t got) {
  if (dtype == DType::kString) {
    throw Error::invalid_input("string tensors hold strings, not bytes", "use Tensor::from_strings");
  }
  const size_t expected = byte_size(dtype, shape);
  const int64_t n = element_count(shape);
  if (got != expected) {
    throw Error::invalid_input("data length mismatch for shape " + shape_to_string(shape),
                               "expected " + std::to_string(expected) + " bytes (" + std::to_string(n) + " " +
                                   std::string(dtype_name(dtype)) + " values) but got " + std::to_string(got) +
                                   " bytes");
  }
  return n;
}

}  // namespace

std::string_view dtype_name(DType dtype) noexcept {
  for (const auto& n : kNames) {
    if (n.dtype == dtype) return n.name;
  }
  return "unknown";
}

std::optional<DType> parse_dtype(std::string_view name) {
  const std::string key = internal::lower_trimmed(name);
  for (const auto& n : kNames) {
    if (n.name == key) return n.dtype;
  }
  return std::nullopt;
}

DType dtype_from_name(std::string_view name) {
  if (auto d = parse_dtype(name)) return *d;
  throw Error::invalid_input("unknown dtype '" + std::string(name) + "'",
                             "expected one of float32, float64, float16, bfloat16, int8, int16, int32, int64, "
                             "uint8, uint16, uint32, uint64, bool, string (or an alias such as fp32, i64, utf8)");
}

size_t dtype_size(DType dtype) noexcept {
  switch (dtype) {
    case DType::kFloat64:
    case DType::kInt64:
    case DType::kUInt64: return 8;
    case DType::kFloat32:
    case DType::kInt32:
    case DType::kUInt32: return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt16:
    case DType::kUInt16: return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool: return 1;
    case DType::kString: return 0;
  }
  return 0;
}

int64_t element_count(std::span<const int64_t> shape) {
  int64_t n = 1;
  bool empty = false;
  for (size_t i = 0; i < shape.size(); ++i) {
    const int64_t d = shape[i];
    if (d < 0) {
      throw Error::invalid_input("invalid shape " + shape_to_string(shape),
                                 "dimension " + std::to_string(i) + " is " + std::to_string(d) +
                                     ", expected >= 0");
    }
    if (d == 0) empty = true;
    // Keep checking overflow of the non-zero dims so that [0, 2^62, 2^62] is still rejected:
    // a shape whose product cannot be represented is malformed even if it holds nothing.
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) {
      throw Error::invalid_input("invalid shape " + shape_to_string(shape), "element count overflows int64");
    }
    if (d != 0) n *= d;
  }
  return empty ? 0 : n;
}

size_t byte_size(DType dtype, std::span<const int64_t> shape) {
  const auto n = static_cast<uint64_t>(element_count(shape));
  const size_t size = dtype_size(dtype);
  if (size != 0 && n > std::numeric_limits<size_t>::max() / size) {
    throw Error::invalid_input("invalid shape " + shape_to_string(shape), "byte size overflows size_t");
  }
  return static_cast<size_t>(n) * size;
}

std::string shape_to_string(std::span<const int64_t> shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Tensor TensorView::to_tensor() const {
  Shape s(shape.begin(), shape.end());
  if (dtype == DType::kString) return Tensor::from_strings(std::move(s), {strings.begin(), strings.end()});
  return Tensor::from_bytes(dtype, std::move(s), bytes);
}

Tensor::Tensor() : Tensor(DType::kFloat32, Shape{0}, 0) {}

Tensor::Tensor(DType dtype, Shape shape, int64_t elements)
    : dtype_(dtype), shape_(std::move(shape)), elements_(elements), bytes_size_(0) {
  if (dtype_ == DType::kString) {
    strings_.resize(static_cast<size_t>(elements_));
  } else {
    bytes_size_ = static_cast<size_t>(elements_) * dtype_size(dtype_);
    if (bytes_size_ > 0) bytes_.reset(std::make_unique_for_overwrite<std::byte[]>(bytes_size_).release());
  }
}

Tensor::Tensor(const Tensor& other) : Tensor(other.dtype_, other.shape_, other.elements_) {
  if (bytes_size_ > 0) std::memcpy(bytes_.get(), other.bytes_.get(), bytes_size_);
  strings_ = other.strings_;
}

Tensor& Tensor::operator=(const Tensor& other) {
  if (this != &other) *this = Tensor(other);
  return *this;
}

Tensor::Tensor(Tensor&& other) noexcept
    : dtype_(other.dtype_),
      shape_(std::move(other.shape_)),
      elements_(other.elements_),
      bytes_size_(other.bytes_size_),
      bytes_(std::move(other.bytes_)),
      strings_(std::move(other.strings_)) {
  // An empty shape, not Shape{0}, which would allocate on every move (see tensor.h).
  other.shape_.clear();
  other.elements_ = 0;
  other.bytes_size_ = 0;
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    dtype_ = other.dtype_;
    shape_ = std::move(other.shape_);
    elements_ = other.elements_;
    bytes_size_ = other.bytes_size_;
    bytes_ = std::move(other.bytes_);
    strings_ = std::move(other.strings_);
    other.shape_.clear();
    other.elements_ = 0;
    other.bytes_size_ = 0;
  }
  return *this;
}

Tensor::~Tensor() = default;

Tensor Tensor::zeros(DType dtype, Shape shape) {
  kapsl::byte_size(dtype, shape);  // validates shape and byte count
  const int64_t n = kapsl::element_count(shape);
  Tensor t(dtype, std::move(shape), n);
  if (t.bytes_size_ > 0) std::memset(t.bytes_.get(), 0, t.bytes_size_);
  return t;
}

Tensor Tensor::from_bytes(DType dtype, Shape shape, std::span<const std::byte> bytes) {
  const int64_t n = checked_numeric_elements(dtype, shape, bytes.size());
  Tensor t(dtype, std::move(shape), n);
  if (!bytes.empty()) std::memcpy(t.bytes_.get(), bytes.data(), bytes.size());
  return t;
}

Tensor Tensor::adopt(DType dtype, Shape shape, std::span<std::byte> bytes, ReleaseFn release, void* context) {
  if (release == nullptr) throw Error::invalid_input("Tensor::adopt needs a release function");
  // Owned from the start, so that a throw below gives the buffer back too.
  std::unique_ptr<std::byte, Releaser> owned(bytes.data(), Releaser{release, context});
  if (!owned) release(context);  // unique_ptr never releases a null pointer: give it back now
  const int64_t n = checked_numeric_elements(dtype, shape, bytes.size());
  Tensor t(dtype, std::move(shape), 0);  // zero elements: allocates nothing
  t.elements_ = n;
  t.bytes_size_ = bytes.size();
  t.bytes_ = std::move(owned);
  return t;
}

void Tensor::Releaser::operator()(std::byte* bytes) const noexcept {
  if (release != nullptr) {
    release(context);
  } else {
    delete[] bytes;
  }
}

Tensor Tensor::from_strings(Shape shape, std::vector<std::string> values) {
  const int64_t n = kapsl::element_count(shape);
  if (static_cast<uint64_t>(n) != values.size()) {
    throw Error::invalid_input("string count mismatch for shape " + shape_to_string(shape),
                               "expected " + std::to_string(n) + " strings but got " + std::to_string(values.size()));
  }
  Tensor t(DType::kString, std::move(shape), 0);
  t.elements_ = n;
  t.strings_ = std::move(values);
  return t;
}

Tensor Tensor::from_string(std::string value) {
  std::vector<std::string> v;
  v.push_back(std::move(value));
  return from_strings(Shape{1}, std::move(v));
}

TensorView Tensor::view() const noexcept {
  return TensorView{dtype_, shape_, bytes(), strings_};
}

void Tensor::reshape(Shape shape) {
  const int64_t n = kapsl::element_count(shape);
  if (n != elements_) {
    throw Error::invalid_input("cannot reshape " + shape_to_string(shape_) + " to " + shape_to_string(shape),
                               "element counts differ (" + std::to_string(elements_) + " vs " + std::to_string(n) +
                                   ")");
  }
  shape_ = std::move(shape);
}

void Tensor::check_element_type(std::optional<DType> requested) const {
  if (!requested || *requested != dtype_) {
    throw Error::invalid_input("tensor element type mismatch", "tensor is " + std::string(dtype_name(dtype_)) +
                                                                   ", accessed as " +
                                                                   std::string(requested ? dtype_name(*requested)
                                                                                         : "a non-numeric type"));
  }
}

bool operator==(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype() || a.shape() != b.shape()) return false;
  if (a.dtype() == DType::kString) return a.strings() == b.strings();
  const auto x = a.bytes();
  const auto y = b.bytes();
  return x.size() == y.size() && (x.empty() || std::memcmp(x.data(), y.data(), x.size()) == 0);
}

// IEEE half <-> float, round to nearest even; NaN and infinities kept.
uint16_t float_to_fp16(float f) noexcept {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t abs = x & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) return static_cast<uint16_t>(sign | 0x7C00u | (abs > 0x7F800000u ? 0x200u : 0u));
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);  // overflows to infinity
  if (abs < 0x38800000u) {  // subnormal or zero in half
    const float scaled = std::bit_cast<float>(abs) * 16777216.0f;  // 2^24: half subnormal units
    return static_cast<uint16_t>(sign | static_cast<uint32_t>(std::nearbyint(scaled)));
  }
  const uint32_t rounded = abs + 0x0FFFu + ((abs >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
}

float fp16_to_float(uint16_t h) noexcept {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  float magnitude;
  if (exp == 0) magnitude = static_cast<float>(mant) / 16777216.0f;
  else if (exp == 31) magnitude = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else magnitude = std::bit_cast<float>(((exp + 112u) << 23) | (mant << 13));
  return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
}

uint16_t float_to_bf16(float f) noexcept {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t b) noexcept { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }


}  // namespace kapsl
