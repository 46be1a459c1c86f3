// Tensors: element types, shapes, an owning Tensor and a borrowing TensorView.
//
// A tensor is a dtype, a shape and its elements in row-major (C) order. Numeric elements
// are stored in the host's byte order, which kapsl requires to be little-endian (checked at
// compile time), so the bytes of a Tensor are also its little-endian wire form. Strings
// are stored one std::string per element (UTF-8 by convention, not checked).
//
// Shapes: rank 0 is a scalar with one element. A dimension of 0 is valid and makes the
// tensor empty (ONNX uses such tensors). Negative dimensions are rejected. In a *model's*
// declared shape (TensorInfo), -1 marks a dynamic dimension; a concrete tensor never has one.
//
// Ownership: Tensor owns its elements; copying copies them, moving is cheap (it allocates
// nothing, and leaves a tensor with no elements and an empty shape). Its numeric
// elements live either in a buffer it allocated or in one it adopted from a runtime
// (Tensor::adopt), which spares a backend copying its outputs. TensorView borrows the
// elements of a Tensor (or of any buffer), is cheap to copy, and must not outlive what it
// borrows.
//
// Thread-safety: const methods may run concurrently; others need external synchronization.
#ifndef KAPSL_TENSOR_H_
#define KAPSL_TENSOR_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "kapsl/error.h"

static_assert(std::endian::native == std::endian::little, "kapsl assumes a little-endian host");

namespace kapsl {

enum class DType : uint8_t {
  kFloat32,
  kFloat64,
  kFloat16,   // IEEE 754 half, stored as its 16 bits
  kBFloat16,  // bfloat16, stored as its 16 bits
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kUInt8,
  kUInt16,
  kUInt32,
  kUInt64,
  kBool,    // one byte per element, 0 or 1
  kString,  // one std::string per element
};

// The canonical lower-case name: "float32", "float16", "bfloat16", "int64", "bool",
// "string", ...
std::string_view dtype_name(DType dtype) noexcept;

// Parses a dtype name, case-insensitively, ignoring surrounding blanks. Accepts the
// canonical names and the aliases fp32, f32, float, fp64, f64, double, fp16, f16, half,
// bf16, i8, i16, i32, i64, u8, u16, u32, u64, boolean, utf8, str.
// Returns std::nullopt for anything else.
std::optional<DType> parse_dtype(std::string_view name);

// Like parse_dtype, but throws Error(kInvalidInput) naming the input and the accepted names.
DType dtype_from_name(std::string_view name);

// Bytes per element; sizeof(std::string) has no meaning on the wire, so kString gives 0.
size_t dtype_size(DType dtype) noexcept;

using Shape = std::vector<int64_t>;

// Number of elements of a concrete shape (1 for rank 0, 0 if any dimension is 0).
// Throws Error(kInvalidInput) if a dimension is negative or the product overflows int64.
int64_t element_count(std::span<const int64_t> shape);

// element_count(shape) * dtype_size(dtype) as a byte count. Throws Error(kInvalidInput) on
// a bad shape or if the byte count overflows size_t. Zero for kString.
size_t byte_size(DType dtype, std::span<const int64_t> shape);

// "[1, 3, -1]", for messages.
std::string shape_to_string(std::span<const int64_t> shape);

// The 16-bit float dtypes' bits from and to float, rounding to nearest even; NaN and the
// infinities are kept, and values beyond the type's range become infinities. Never throw.
uint16_t float_to_fp16(float value) noexcept;
float fp16_to_float(uint16_t bits) noexcept;
uint16_t float_to_bf16(float value) noexcept;
float bf16_to_float(uint16_t bits) noexcept;

// The C++ element type of each numeric dtype (uint16_t for the 16-bit floats, uint8_t for
// bool). Used by Tensor::data<T>() to check that T matches the dtype.
template <typename T>
constexpr std::optional<DType> dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::kFloat32;
  else if constexpr (std::is_same_v<T, double>) return DType::kFloat64;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::kInt8;
  else if constexpr (std::is_same_v<T, int16_t>) return DType::kInt16;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::kInt32;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::kInt64;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::kUInt8;
  else if constexpr (std::is_same_v<T, uint16_t>) return DType::kUInt16;
  else if constexpr (std::is_same_v<T, uint32_t>) return DType::kUInt32;
  else if constexpr (std::is_same_v<T, uint64_t>) return DType::kUInt64;
  else if constexpr (std::is_same_v<T, bool>) return DType::kBool;
  else return std::nullopt;
}

class Tensor;

// A borrowed tensor: dtype, shape and elements owned by someone else. Valid only while the
// owner is alive and unchanged. For kString, `strings` holds the elements and `bytes` is
// empty; otherwise `bytes` holds them.
struct TensorView {
  DType dtype = DType::kFloat32;
  std::span<const int64_t> shape;
  std::span<const std::byte> bytes;
  std::span<const std::string> strings;

  int64_t element_count() const { return kapsl::element_count(shape); }
  // Deep copy into an owning Tensor, validated as Tensor::from_bytes / from_strings do.
  Tensor to_tensor() const;
};

class Tensor {
 public:
  // An empty float32 tensor of shape [0].
  Tensor();

  Tensor(const Tensor& other);
  Tensor& operator=(const Tensor& other);
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  ~Tensor();

  // A tensor of `dtype` and `shape` whose numeric elements are zero (strings are empty).
  // Throws Error(kInvalidInput) on a bad shape.
  static Tensor zeros(DType dtype, Shape shape);

  // A numeric tensor whose elements are copied from `bytes`.
  // Throws Error(kInvalidInput) on a bad shape, if dtype is kString, or if bytes.size() is
  // not element_count * dtype_size ("expected N bytes (E float32 values) but got M").
  static Tensor from_bytes(DType dtype, Shape shape, std::span<const std::byte> bytes);

  // A string tensor. Throws Error(kInvalidInput) if values.size() != element_count(shape).
  static Tensor from_strings(Shape shape, std::vector<std::string> values);

  // A rank-1 string tensor holding one string: the usual form of a text prompt.
  static Tensor from_string(std::string value);

  // Gives back an adopted buffer; `context` is the one given to adopt().
  using ReleaseFn = void (*)(void* context) noexcept;

  // A numeric tensor whose elements are the `bytes` someone else allocated (a runtime's
  // output buffer), used in place. The tensor takes the buffer over at the call: it calls
  // release(context) exactly once, when it is destroyed or assigned to (also if adopt
  // throws, and never if it is moved from). The buffer must stay valid and unchanged by
  // others until then and be aligned for the dtype. A copy of the tensor copies the
  // elements into a buffer of its own.
  // Throws as from_bytes does, and Error(kInvalidInput) if release is null (the buffer is
  // then not taken over).
  static Tensor adopt(DType dtype, Shape shape, std::span<std::byte> bytes, ReleaseFn release, void* context);

  // A numeric tensor from typed values. Throws as from_bytes does.
  template <typename T>
  static Tensor from_vector(Shape shape, const std::vector<T>& values) {
    static_assert(dtype_of<T>().has_value(), "not a numeric element type");
    if constexpr (std::is_same_v<T, bool>) {
      std::vector<uint8_t> b(values.begin(), values.end());
      return from_bytes(DType::kBool, std::move(shape), std::as_bytes(std::span(b)));
    } else {
      return from_bytes(*dtype_of<T>(), std::move(shape), std::as_bytes(std::span(values)));
    }
  }

  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  int64_t element_count() const noexcept { return elements_; }
  // Bytes of numeric elements; 0 for strings.
  size_t byte_size() const noexcept { return bytes_size_; }

  std::span<const std::byte> bytes() const noexcept { return {bytes_.get(), bytes_size_}; }
  std::span<std::byte> mutable_bytes() noexcept { return {bytes_.get(), bytes_size_}; }
  const std::vector<std::string>& strings() const noexcept { return strings_; }
  std::vector<std::string>& mutable_strings() noexcept { return strings_; }

  // The elements as T. REQUIRES: dtype_of<T>() == dtype(); throws Error(kInvalidInput)
  // naming both dtypes otherwise.
  template <typename T>
  std::span<const T> data() const {
    check_element_type(dtype_of<T>());
    return {reinterpret_cast<const T*>(bytes_.get()), static_cast<size_t>(elements_)};
  }
  template <typename T>
  std::span<T> mutable_data() {
    check_element_type(dtype_of<T>());
    return {reinterpret_cast<T*>(bytes_.get()), static_cast<size_t>(elements_)};
  }

  TensorView view() const noexcept;

  // Reinterprets the same elements under another shape with the same element count.
  // Throws Error(kInvalidInput) if the counts differ.
  void reshape(Shape shape);

 private:
  // Frees the elements: delete[] for the tensor's own buffer, `release` for an adopted one.
  // (Constructors, not member initializers: std::unique_ptr checks that its deleter is
  // default-constructible while Tensor is still incomplete.)
  struct Releaser {
    Releaser() noexcept : release(nullptr), context(nullptr) {}
    Releaser(ReleaseFn fn, void* ctx) noexcept : release(fn), context(ctx) {}
    void operator()(std::byte* bytes) const noexcept;

    ReleaseFn release;  // null: the buffer is the tensor's own new[] allocation
    void* context;
  };

  Tensor(DType dtype, Shape shape, int64_t elements);
  void check_element_type(std::optional<DType> requested) const;

  DType dtype_;
  Shape shape_;
  int64_t elements_;
  size_t bytes_size_;
  // Numeric dtypes. Own buffers are 16-byte aligned by operator new.
  std::unique_ptr<std::byte, Releaser> bytes_;
  std::vector<std::string> strings_;  // kString
};

// Element-wise equality of dtype, shape and elements (bitwise for floats).
bool operator==(const Tensor& a, const Tensor& b);

}  // namespace kapsl

#endif  // KAPSL_TENSOR_H_
