#include "tensor_io.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kapsl::cli {
namespace {

using ::testing::HasSubstr;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.message();
  }
  return "no error";
}

TEST(TensorJsonTest, ObjectFormWithDtypeAndShape) {
  const auto j = nlohmann::json::parse(R"({"dtype": "int64", "shape": [2, 2], "data": [1, 2, 3, 4]})");
  const Tensor t = tensor_from_json(j, nullptr, "x");
  EXPECT_EQ(t.dtype(), DType::kInt64);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  EXPECT_EQ(t.data<int64_t>()[3], 4);
}

TEST(TensorJsonTest, BareNestedArrayTakesTheDeclaredDtype) {
  TensorInfo info;
  info.dtype = DType::kFloat16;
  const Tensor t = tensor_from_json(nlohmann::json::parse("[[1.5, 2], [3, -4]]"), &info, "x");
  EXPECT_EQ(t.dtype(), DType::kFloat16);
  EXPECT_EQ(t.shape(), (Shape{2, 2}));
  EXPECT_DOUBLE_EQ(element_as_double(t, 0), 1.5);
  EXPECT_DOUBLE_EQ(element_as_double(t, 3), -4.0);
  EXPECT_TRUE(tensor_from_json(nlohmann::json::parse("3.5"), nullptr, "x").shape().empty());
}

TEST(TensorJsonTest, StringsAndBools) {
  const Tensor s = tensor_from_json(nlohmann::json::parse(R"({"dtype":"string","data":["a","b"]})"), nullptr, "x");
  EXPECT_EQ(s.strings(), (std::vector<std::string>{"a", "b"}));
  const Tensor b = tensor_from_json(nlohmann::json::parse(R"({"dtype":"bool","data":[true,false]})"), nullptr, "x");
  EXPECT_EQ(element_as_double(b, 0), 1.0);
}

TEST(TensorJsonTest, MalformedInputsAreErrors) {
  EXPECT_THAT(error_of([] { tensor_from_json(nlohmann::json::parse("[[1, 2], [3]]"), nullptr, "in.json"); }),
              HasSubstr("ragged"));
  EXPECT_THAT(error_of([] { tensor_from_json(nlohmann::json::parse(R"({"shape":[3],"data":[1]})"), nullptr, "in.json"); }),
              HasSubstr("needs 3 values, got 1"));
  EXPECT_THAT(error_of([] { tensor_from_json(nlohmann::json::parse(R"(["a", 1])"), nullptr, "in.json"); }),
              HasSubstr("not a number"));
  EXPECT_THAT(error_of([] { tensor_from_json(nlohmann::json::parse(R"({"dtype":"cplx","data":[1]})"), nullptr, "x"); }),
              HasSubstr("unknown dtype 'cplx'"));
  EXPECT_THAT(error_of([] { tensor_from_json(nlohmann::json::parse(R"({"dtype":"f32"})"), nullptr, "x"); }),
              HasSubstr("no \"data\""));
  EXPECT_THAT(error_of([] { read_tensor_file("/nonexistent/x.json", nullptr); }), HasSubstr("cannot open"));
}

TEST(ShapeTextTest, ParsesAndRejects) {
  EXPECT_EQ(parse_shape_text("1x3x224x224"), (Shape{1, 3, 224, 224}));
  EXPECT_EQ(parse_shape_text("2,5"), (Shape{2, 5}));
  EXPECT_EQ(parse_shape_text("scalar"), Shape{});
  EXPECT_THAT(error_of([] { parse_shape_text("1x-3"); }), HasSubstr("invalid shape '1x-3'"));
  EXPECT_THAT(error_of([] { parse_fill("pink"); }), HasSubstr("zeros, ones or random"));
}

TEST(SynthesizeTest, DynamicDimsBecomeOneAndSeedsRepeat) {
  TensorInfo info;
  info.dtype = DType::kInt64;
  info.shape = {-1, 4};
  const Tensor a = synthesize_tensor(info, Fill::kRandom, 7, nullptr);
  EXPECT_EQ(a.shape(), (Shape{1, 4}));
  EXPECT_EQ(a, synthesize_tensor(info, Fill::kRandom, 7, nullptr));
  for (int64_t v : a.data<int64_t>()) EXPECT_TRUE(v >= 0 && v < 10);
  const Shape override_shape{3, 4};
  EXPECT_EQ(synthesize_tensor(info, Fill::kOnes, 0, &override_shape).data<int64_t>()[11], 1);
}

TEST(SummaryTest, ShortTensorsPrintEveryValueLongOnesAreSummarised) {
  EXPECT_EQ(summarize_tensor(Tensor::from_vector<float>({2}, {1, 2.5})), "float32 [2]  [1, 2.5]");
  std::vector<int32_t> v(100);
  for (int i = 0; i < 100; ++i) v[static_cast<size_t>(i)] = i;
  const std::string s = summarize_tensor(Tensor::from_vector<int32_t>({100}, v));
  EXPECT_THAT(s, HasSubstr("min 0 max 99 mean 49.5"));
  EXPECT_THAT(s, HasSubstr("7, ..., 96, 97, 98, 99]"));
  EXPECT_EQ(tensor_to_json("y", Tensor::from_vector<float>({1}, {0.5}))["data"][0], 0.5);
}

}  // namespace
}  // namespace kapsl::cli
