#include "kapsl/tensor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>

namespace kapsl {
namespace {

using ::testing::HasSubstr;

template <typename F>
Error capture(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected kapsl::Error";
  return Error::backend("no error thrown");
}

TEST(DTypeTest, CanonicalNamesRoundTrip) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16, DType::kInt8, DType::kInt16,
                  DType::kInt32, DType::kInt64, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64,
                  DType::kBool, DType::kString}) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d) << dtype_name(d);
  }
}

TEST(DTypeTest, AliasesAreCaseInsensitiveAndTrimmed) {
  EXPECT_EQ(parse_dtype("FP32"), DType::kFloat32);
  EXPECT_EQ(parse_dtype(" fp16 "), DType::kFloat16);
  EXPECT_EQ(parse_dtype("Fp64"), DType::kFloat64);
  EXPECT_EQ(parse_dtype("i32"), DType::kInt32);
  EXPECT_EQ(parse_dtype("I64"), DType::kInt64);
  EXPECT_EQ(parse_dtype("u8"), DType::kUInt8);
  EXPECT_EQ(parse_dtype("UTF8"), DType::kString);
  EXPECT_EQ(parse_dtype("string"), DType::kString);
  EXPECT_EQ(parse_dtype("bf16"), DType::kBFloat16);
  EXPECT_EQ(parse_dtype("BOOL"), DType::kBool);
}

TEST(DTypeTest, UnknownNamesAreRejectedWithTheName) {
  EXPECT_EQ(parse_dtype("float8"), std::nullopt);
  EXPECT_EQ(parse_dtype(""), std::nullopt);
  const Error e = capture([] { dtype_from_name("complex64"); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  EXPECT_THAT(e.message(), HasSubstr("complex64"));
  EXPECT_THAT(e.message(), HasSubstr("float32"));
}

TEST(DTypeTest, Sizes) {
  EXPECT_EQ(dtype_size(DType::kFloat32), 4u);
  EXPECT_EQ(dtype_size(DType::kFloat64), 8u);
  EXPECT_EQ(dtype_size(DType::kFloat16), 2u);
  EXPECT_EQ(dtype_size(DType::kBFloat16), 2u);
  EXPECT_EQ(dtype_size(DType::kBool), 1u);
  EXPECT_EQ(dtype_size(DType::kUInt64), 8u);
  EXPECT_EQ(dtype_size(DType::kString), 0u);
}

TEST(ShapeTest, ElementCounts) {
  EXPECT_EQ(element_count(Shape{}), 1);  // scalar
  EXPECT_EQ(element_count(Shape{2, 3}), 6);
  EXPECT_EQ(element_count(Shape{0}), 0);
  EXPECT_EQ(element_count(Shape{3, 0, 5}), 0);
}

TEST(ShapeTest, NegativeDimensionIsRejectedNamingIt) {
  const Error e = capture([] { element_count(Shape{2, -1}); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  EXPECT_THAT(e.message(), HasSubstr("dimension 1 is -1"));
}

TEST(ShapeTest, OverflowIsRejected) {
  constexpr int64_t big = std::numeric_limits<int64_t>::max();
  EXPECT_THAT(capture([] { element_count(Shape{big, big}); }).message(), HasSubstr("overflows int64"));
  // Overflow is a malformed shape even when another dimension is zero.
  EXPECT_THAT(capture([] { element_count(Shape{0, big, 2}); }).message(), HasSubstr("overflows"));
  // Fits int64 elements but not size_t bytes.
  EXPECT_THAT(capture([] { byte_size(DType::kFloat64, Shape{big / 2}); }).message(), HasSubstr("overflows size_t"));
}

TEST(TensorTest, FromBytesChecksLength) {
  std::vector<float> three = {1, 2, 3};
  const Error e = capture([&] { Tensor::from_bytes(DType::kFloat32, {2, 2}, std::as_bytes(std::span(three))); });
  EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
  EXPECT_THAT(e.message(), HasSubstr("expected 16 bytes (4 float32 values) but got 12 bytes"));
}

TEST(TensorTest, FromVectorRoundTripsEveryNumericType) {
  EXPECT_EQ(Tensor::from_vector<float>({2}, {1.5f, -2}).data<float>()[1], -2.0f);
  EXPECT_EQ(Tensor::from_vector<double>({1}, {3.25}).data<double>()[0], 3.25);
  EXPECT_EQ(Tensor::from_vector<int8_t>({1}, {-7}).data<int8_t>()[0], -7);
  EXPECT_EQ(Tensor::from_vector<int16_t>({1}, {-300}).data<int16_t>()[0], -300);
  EXPECT_EQ(Tensor::from_vector<int32_t>({1}, {1 << 20}).data<int32_t>()[0], 1 << 20);
  EXPECT_EQ(Tensor::from_vector<int64_t>({1}, {int64_t{1} << 40}).data<int64_t>()[0], int64_t{1} << 40);
  EXPECT_EQ(Tensor::from_vector<uint8_t>({1}, {255}).data<uint8_t>()[0], 255);
  EXPECT_EQ(Tensor::from_vector<uint16_t>({1}, {65535}).data<uint16_t>()[0], 65535);
  EXPECT_EQ(Tensor::from_vector<uint32_t>({1}, {4000000000u}).data<uint32_t>()[0], 4000000000u);
  EXPECT_EQ(Tensor::from_vector<uint64_t>({1}, {~uint64_t{0}}).data<uint64_t>()[0], ~uint64_t{0});
  const Tensor b = Tensor::from_vector<bool>({3}, {true, false, true});
  EXPECT_EQ(b.dtype(), DType::kBool);
  EXPECT_EQ(b.byte_size(), 3u);
  EXPECT_EQ(std::to_integer<int>(b.bytes()[2]), 1);
}

TEST(TensorTest, LittleEndianLayout) {
  const Tensor t = Tensor::from_vector<uint32_t>({1}, {0x04030201u});
  ASSERT_EQ(t.bytes().size(), 4u);
  EXPECT_EQ(std::to_integer<int>(t.bytes()[0]), 1);
  EXPECT_EQ(std::to_integer<int>(t.bytes()[3]), 4);
}

TEST(TensorTest, ScalarAndZeroSized) {
  const Tensor scalar = Tensor::from_vector<float>({}, {42});
  EXPECT_EQ(scalar.element_count(), 1);
  EXPECT_TRUE(scalar.shape().empty());
  const Tensor empty = Tensor::zeros(DType::kInt64, {3, 0});
  EXPECT_EQ(empty.element_count(), 0);
  EXPECT_EQ(empty.byte_size(), 0u);
  EXPECT_EQ(Tensor::from_bytes(DType::kFloat32, {0, 4}, {}).element_count(), 0);
}

TEST(TensorTest, WrongElementTypeAccessIsAnError) {
  const Tensor t = Tensor::zeros(DType::kFloat32, {2});
  const Error e = capture([&] { (void)t.data<int32_t>(); });
  EXPECT_THAT(e.message(), HasSubstr("tensor is float32, accessed as int32"));
}

TEST(TensorTest, Float16AndBFloat16AreAccessedAsBits) {
  const Tensor t = Tensor::zeros(DType::kFloat16, {2});
  EXPECT_EQ(t.byte_size(), 4u);
  EXPECT_THROW((void)t.data<uint16_t>(), Error);  // uint16 is its own dtype
  std::vector<uint16_t> bits = {0x3C00, 0xC000};  // 1.0, -2.0
  const Tensor h = Tensor::from_bytes(DType::kFloat16, {2}, std::as_bytes(std::span(bits)));
  EXPECT_EQ(h, Tensor::from_bytes(DType::kFloat16, {2}, std::as_bytes(std::span(bits))));
}

TEST(TensorTest, Strings) {
  const Tensor t = Tensor::from_strings({2}, {"héllo", ""});
  EXPECT_EQ(t.dtype(), DType::kString);
  EXPECT_EQ(t.element_count(), 2);
  EXPECT_EQ(t.strings()[0], "héllo");
  EXPECT_THAT(capture([] { Tensor::from_strings({3}, {"a"}); }).message(),
              HasSubstr("expected 3 strings but got 1"));
  EXPECT_THAT(capture([] { Tensor::from_bytes(DType::kString, {1}, {}); }).message(), HasSubstr("from_strings"));
  EXPECT_EQ(Tensor::from_string("prompt").shape(), Shape{1});
  EXPECT_EQ(Tensor::zeros(DType::kString, {2}).strings(), (std::vector<std::string>{"", ""}));
}

TEST(TensorTest, CopyIsDeepAndMoveLeavesEmpty) {
  Tensor a = Tensor::from_vector<int32_t>({2}, {1, 2});
  Tensor b = a;
  b.mutable_data<int32_t>()[0] = 9;
  EXPECT_EQ(a.data<int32_t>()[0], 1);
  Tensor c = std::move(a);
  EXPECT_EQ(c.data<int32_t>()[1], 2);
  EXPECT_EQ(a.element_count(), 0);  // NOLINT(bugprone-use-after-move): moved-from state is documented
}

// A buffer allocated outside kapsl, counting its releases.
struct ForeignBuffer {
  alignas(16) std::byte bytes[8] = {};
  int releases = 0;
  static void release(void* self) noexcept { ++static_cast<ForeignBuffer*>(self)->releases; }
  std::span<std::byte> span() { return bytes; }
};

TEST(TensorTest, AdoptedBufferIsUsedInPlaceAndReleasedOnce) {
  ForeignBuffer buffer;
  {
    Tensor t = Tensor::adopt(DType::kInt32, {2}, buffer.span(), ForeignBuffer::release, &buffer);
    t.mutable_data<int32_t>()[1] = 7;
    int32_t second = 0;
    std::memcpy(&second, buffer.bytes + 4, 4);
    EXPECT_EQ(second, 7);  // the tensor writes the adopted bytes themselves
    Tensor copy = t;       // a copy owns a buffer of its own
    copy.mutable_data<int32_t>()[1] = 8;
    EXPECT_EQ(t.data<int32_t>()[1], 7);
    Tensor moved = std::move(t);  // the buffer moves with it, unreleased
    EXPECT_EQ(buffer.releases, 0);
    EXPECT_EQ(moved.data<int32_t>()[1], 7);
    moved = Tensor::zeros(DType::kFloat32, {1});  // assignment releases the adopted buffer
    EXPECT_EQ(buffer.releases, 1);
  }
  EXPECT_EQ(buffer.releases, 1);
}

TEST(TensorTest, AdoptReleasesTheBufferWhenItThrows) {
  ForeignBuffer buffer;
  EXPECT_THAT(capture([&] { Tensor::adopt(DType::kInt32, {3}, buffer.span(), ForeignBuffer::release, &buffer); })
                  .message(),
              HasSubstr("data length mismatch"));
  EXPECT_EQ(buffer.releases, 1);
  EXPECT_THAT(capture([&] { Tensor::adopt(DType::kString, {1}, buffer.span(), ForeignBuffer::release, &buffer); })
                  .message(),
              HasSubstr("from_strings"));
  EXPECT_EQ(buffer.releases, 2);
  ForeignBuffer empty;
  EXPECT_EQ(Tensor::adopt(DType::kFloat32, {0}, {}, ForeignBuffer::release, &empty).element_count(), 0);
  EXPECT_EQ(empty.releases, 1);
  EXPECT_THAT(capture([&] { Tensor::adopt(DType::kInt32, {2}, buffer.span(), nullptr, &buffer); }).message(),
              HasSubstr("release function"));
  EXPECT_EQ(buffer.releases, 2);  // not taken over
}

TEST(TensorTest, ViewAndBack) {
  const Tensor a = Tensor::from_vector<float>({2, 1}, {1, 2});
  const TensorView v = a.view();
  EXPECT_EQ(v.element_count(), 2);
  EXPECT_EQ(v.to_tensor(), a);
  const Tensor s = Tensor::from_strings({1}, {"x"});
  EXPECT_EQ(s.view().to_tensor(), s);
}

TEST(TensorTest, Reshape) {
  Tensor t = Tensor::zeros(DType::kFloat32, {2, 3});
  t.reshape({3, 2});
  EXPECT_EQ(t.shape(), (Shape{3, 2}));
  EXPECT_THAT(capture([&] { t.reshape({4}); }).message(), HasSubstr("element counts differ"));
}

TEST(TensorTest, EqualityComparesEverything) {
  EXPECT_FALSE(Tensor::zeros(DType::kFloat32, {2}) == Tensor::zeros(DType::kInt32, {2}));
  EXPECT_FALSE(Tensor::zeros(DType::kFloat32, {2}) == Tensor::zeros(DType::kFloat32, {1, 2}));
  EXPECT_FALSE(Tensor::from_vector<float>({1}, {1}) == Tensor::from_vector<float>({1}, {2}));
}

}  // namespace
}  // namespace kapsl
