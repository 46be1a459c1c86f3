// .npy round trips against real NumPy (Debian's python3-numpy, run as /usr/bin/python3):
// files NumPy writes are read back element for element, and files we write are checked by
// NumPy, for every dtype a .npy can hold.
#include "npy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace kapsl::cli {
namespace {

namespace fs = std::filesystem;

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kapsl-npy-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs a Python snippet with numpy imported as np and `d` = the test directory.
  void python(const std::string& code) {
    const fs::path script = dir_ / "script.py";
    std::ofstream(script) << "import numpy as np, sys\nd = sys.argv[1]\n" << code << "\n";
    const std::string cmd = "/usr/bin/python3 " + script.string() + " " + dir_.string();
    ASSERT_EQ(std::system(cmd.c_str()), 0) << code;
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  fs::path dir_;
};

TEST_F(NpyTest, ReadsEveryDtypeNumPyWrites) {
  python(R"(
for t in ['bool','int8','int16','int32','int64','uint8','uint16','uint32','uint64','float16','float32','float64']:
    np.save(f'{d}/{t}.npy', (np.arange(6) % 2 if t == 'bool' else np.arange(6) - (0 if t[0] in 'ub' else 2)).astype(t).reshape(2, 3))
np.save(f'{d}/big.npy', np.arange(4, dtype='>i4'))
np.save(f'{d}/fortran.npy', np.asfortranarray(np.arange(6, dtype='float32').reshape(2, 3)))
np.save(f'{d}/unicode.npy', np.array(['héllo', '', 'wörld']))
np.save(f'{d}/bytes.npy', np.array([b'ab', b'c']))
np.save(f'{d}/scalar.npy', np.float64(2.5))
np.save(f'{d}/empty.npy', np.zeros((0, 4), dtype='int64'))
)");
  EXPECT_EQ(npy_load(path("int64.npy")).data<int64_t>()[0], -2);
  EXPECT_EQ(npy_load(path("uint16.npy")).data<uint16_t>()[5], 5);
  EXPECT_EQ(npy_load(path("float32.npy")).shape(), (Shape{2, 3}));
  EXPECT_EQ(npy_load(path("float64.npy")).data<double>()[3], 1.0);
  EXPECT_EQ(npy_load(path("float16.npy")).dtype(), DType::kFloat16);
  EXPECT_EQ(npy_load(path("bool.npy")).dtype(), DType::kBool);
  EXPECT_EQ(npy_load(path("int8.npy")).data<int8_t>()[0], -2);
  EXPECT_EQ(npy_load(path("uint64.npy")).data<uint64_t>()[4], 4u);
  EXPECT_EQ(npy_load(path("big.npy")).data<int32_t>()[3], 3);
  const Tensor f = npy_load(path("fortran.npy"));  // C order after reading
  EXPECT_EQ(std::vector<float>(f.data<float>().begin(), f.data<float>().end()),
            (std::vector<float>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(npy_load(path("unicode.npy")).strings(), (std::vector<std::string>{"héllo", "", "wörld"}));
  EXPECT_EQ(npy_load(path("bytes.npy")).strings(), (std::vector<std::string>{"ab", "c"}));
  EXPECT_TRUE(npy_load(path("scalar.npy")).shape().empty());
  EXPECT_EQ(npy_load(path("empty.npy")).shape(), (Shape{0, 4}));
}

TEST_F(NpyTest, NumPyReadsWhatWeWrite) {
  npy_save(path("f32.npy"), Tensor::from_vector<float>({2, 2}, {1, 2, 3, 4}));
  npy_save(path("i8.npy"), Tensor::from_vector<int8_t>({3}, {-1, 0, 1}));
  npy_save(path("u32.npy"), Tensor::from_vector<uint32_t>({}, {7}));
  npy_save(path("b.npy"), Tensor::from_vector<bool>({2}, {true, false}));
  npy_save(path("s.npy"), Tensor::from_strings({2}, {"αβ", "c"}));
  npy_save(path("e.npy"), Tensor::zeros(DType::kFloat64, {0, 3}));
  std::vector<uint16_t> bf16 = {0x3F80, 0xC000};  // 1.0, -2.0
  npy_save(path("bf16.npy"), Tensor::from_bytes(DType::kBFloat16, {2}, std::as_bytes(std::span(bf16))));
  python(R"(
assert np.load(f'{d}/f32.npy').tolist() == [[1, 2], [3, 4]]
assert np.load(f'{d}/i8.npy').dtype == np.int8 and np.load(f'{d}/i8.npy').tolist() == [-1, 0, 1]
assert np.load(f'{d}/u32.npy').shape == () and int(np.load(f'{d}/u32.npy')) == 7
assert np.load(f'{d}/b.npy').tolist() == [True, False]
assert np.load(f'{d}/s.npy').tolist() == ['αβ', 'c']
assert np.load(f'{d}/e.npy').shape == (0, 3)
assert np.load(f'{d}/bf16.npy').tolist() == [1.0, -2.0]
)");
}

TEST_F(NpyTest, RoundTripsEveryDtype) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kInt8, DType::kInt16, DType::kInt32,
                  DType::kInt64, DType::kUInt8, DType::kUInt16, DType::kUInt32, DType::kUInt64, DType::kBool}) {
    Tensor t = Tensor::zeros(d, {2, 3});
    for (size_t i = 0; i < t.byte_size(); ++i) t.mutable_bytes()[i] = std::byte(d == DType::kBool ? i % 2 : i * 7);
    EXPECT_EQ(npy_parse(npy_serialize(t)), t) << dtype_name(d);
  }
  const Tensor s = Tensor::from_strings({1, 3}, {"x", "🙂", ""});  // "" once passed memcpy a null (fuzzing)
  EXPECT_EQ(npy_parse(npy_serialize(s)), s);
  // Found by fuzzing: bytes that are not UTF-8 (from an '|S' file) and NULs inside a string.
  const Tensor bytes = Tensor::from_strings({2}, {std::string("ab\0 ", 4), "\xf6\xa0" "b"});
  EXPECT_EQ(npy_parse(npy_serialize(bytes)), bytes);
  EXPECT_NE(npy_serialize(bytes).find("'|S4'"), std::string::npos);
  const Tensor nul_inside = Tensor::from_strings({1}, {std::string("a\0b", 3)});
  EXPECT_EQ(npy_parse(npy_serialize(nul_inside)), nul_inside);
  EXPECT_NE(npy_serialize(nul_inside).find("'<U3'"), std::string::npos);
}

TEST(NpyErrorTest, MalformedInputIsAnErrorNamingTheProblem) {
  const std::string good = npy_serialize(Tensor::from_vector<float>({2}, {1, 2}));
  const auto message = [](std::string_view bytes) {
    try {
      npy_parse(bytes, "x.npy");
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
      return e.message();
    }
    return std::string("no error");
  };
  EXPECT_THAT(message("not numpy"), ::testing::HasSubstr("magic"));
  EXPECT_THAT(message(good.substr(0, good.size() - 1)), ::testing::HasSubstr("truncated"));
  EXPECT_THAT(message(good + "xx"), ::testing::HasSubstr("bytes, expected 8"));
  EXPECT_THAT(message(good.substr(0, 20)), ::testing::HasSubstr("truncated header"));
  std::string v9 = good;
  v9[6] = 9;
  EXPECT_THAT(message(v9), ::testing::HasSubstr("version 9"));
  std::string obj = good;
  obj.replace(obj.find("<f4"), 3, "|O8");
  EXPECT_THAT(message(obj), ::testing::HasSubstr("pickles"));
  // Found by fuzzing: a key with nothing after its ':' read past the header.
  std::string header = "{'descr':";
  header.append(35 - header.size(), ' ');
  const std::string no_value = std::string("\x93NUMPY\x01\x00", 8) + char(header.size()) + '\0' + header;
  EXPECT_THAT(message(no_value), ::testing::HasSubstr("malformed header"));
  // Found by fuzzing: zero-width strings declared a billion elements backed by no data.
  std::string zero_width = npy_serialize(Tensor::from_strings({1}, {"a"}));
  zero_width.replace(zero_width.find("(1,)"), 4, "(999999999,)");
  zero_width.replace(zero_width.find("<U1"), 3, "<U0");
  EXPECT_THAT(message(zero_width), ::testing::HasSubstr("zero-width string dtype"));
  std::string cplx = good;
  cplx.replace(cplx.find("<f4"), 3, "<c8");
  EXPECT_THAT(message(cplx), ::testing::HasSubstr("unsupported dtype"));
  std::string huge = good;
  huge.replace(huge.find("(2,)"), 4, "(9999999999999999,)");
  EXPECT_THAT(message(huge), ::testing::HasSubstr("x.npy"));
}

}  // namespace
}  // namespace kapsl::cli
