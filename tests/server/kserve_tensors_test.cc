// KServe v2 tensor parsing and encoding: JSON (flat, nested), Triton's binary extension
// (numeric and length-prefixed BYTES), and the errors malformed requests must produce.
#include "server/kserve_tensors.h"

#include <cstring>
#include <limits>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kapsl/error.h"

namespace kapsl::server {
namespace {

using json = nlohmann::json;

ErrorCode code_of(std::string_view body, std::optional<size_t> header = std::nullopt) {
  try {
    parse_infer_request(body, header);
  } catch (const Error& e) {
    return e.code();
  }
  return ErrorCode::kBackend;  // "no error" for these tests
}

TEST(KServeTensorsTest, ParsesFlatAndNestedJson) {
  const auto r = parse_infer_request(
      R"({"id":"a","inputs":[{"name":"x","shape":[2,2],"datatype":"INT32","data":[[1,2],[3,4]]},
          {"name":"s","shape":[1],"datatype":"BYTES","data":["hi"]}],
          "outputs":[{"name":"y","parameters":{"binary_data":true}}]})",
      std::nullopt);
  EXPECT_EQ(r.id, "a");
  ASSERT_EQ(r.inputs.size(), 2u);
  EXPECT_EQ(r.inputs[0].tensor, Tensor::from_vector<int32_t>({2, 2}, {1, 2, 3, 4}));
  EXPECT_EQ(r.inputs[1].tensor.strings().front(), "hi");
  EXPECT_EQ(r.output_names, std::vector<std::string>{"y"});
  EXPECT_EQ(r.binary_outputs.count("y"), 1u);
}

TEST(KServeTensorsTest, ParsesBinaryData) {
  const std::string header =
      R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}},
                   {"name":"s","shape":[2],"datatype":"BYTES","parameters":{"binary_data_size":11}}]})";
  std::string body = header;
  const float xs[2] = {1.5f, -2.0f};
  body.append(reinterpret_cast<const char*>(xs), 8);
  const uint32_t n1 = 2, n2 = 1;
  body.append(reinterpret_cast<const char*>(&n1), 4).append("ab");
  body.append(reinterpret_cast<const char*>(&n2), 4).append("c");
  const auto r = parse_infer_request(body, header.size());
  EXPECT_EQ(r.inputs[0].tensor, Tensor::from_vector<float>({2}, {1.5f, -2.0f}));
  EXPECT_EQ(r.inputs[1].tensor.strings(), (std::vector<std::string>{"ab", "c"}));
}

TEST(KServeTensorsTest, RefusesMalformedRequests) {
  EXPECT_EQ(code_of("{"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of("[]"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","data":[1]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"FP99","data":[1]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT8","data":[128]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"UINT8","data":[-1]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"INT32","data":[1.5]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BOOL","data":[1]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":[1]}]})"), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(R"({"inputs":[{"name":"x","shape":[9999999999,9999999999],"datatype":"FP32","data":[]}]})"),
            ErrorCode::kInvalidInput);
  // Binary data: header longer than the body, too little data, data left over.
  EXPECT_EQ(code_of("{}", 10), ErrorCode::kInvalidInput);
  const std::string h = R"({"inputs":[{"name":"x","shape":[2],"datatype":"FP32","parameters":{"binary_data_size":8}}]})";
  EXPECT_EQ(code_of(h + "1234", h.size()), ErrorCode::kInvalidInput);
  EXPECT_EQ(code_of(h + "123456789", h.size()), ErrorCode::kInvalidInput);
  const std::string s = R"({"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","parameters":{"binary_data_size":5}}]})";
  EXPECT_EQ(code_of(s + std::string("\x09\0\0\0a", 5), s.size()), ErrorCode::kInvalidInput);
}

// Found in review: each input's declared shape was checked against the body alone, so 4096
// inputs of [500000] FP64 in a 1 MiB body preallocated 16 GiB. The inputs now share one
// allowance, and every typed allocation is announced to the reserve hook first.
TEST(KServeTensorsTest, InputsShareOneAllowanceAndAllocationsAreReserved) {
  json inputs = json::array();
  for (int i = 0; i < 200; ++i) {
    inputs.push_back({{"name", "x" + std::to_string(i)}, {"shape", {1000}}, {"datatype", "FP64"}, {"data", json::array()}});
  }
  const std::string many = json{{"inputs", inputs}}.dump();
  ASSERT_LT(many.size(), 14000u);  // room for about 7,000 values in all, not 200 x 1,000
  size_t reserved = 0;
  try {
    parse_infer_request(many, std::nullopt, [&](size_t bytes) { reserved += bytes; });
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidInput);
    EXPECT_NE(std::string(e.what()).find("the request can hold at most"), std::string::npos) << e.what();
  }
  EXPECT_LE(reserved, many.size() / 2 * 8);  // what was allocated before the refusal
  // A valid request reserves exactly its typed data; a refusing hook stops the parse.
  const std::string one = R"({"inputs":[{"name":"x","shape":[2,2],"datatype":"INT64","data":[0,1,1,0]}]})";
  reserved = 0;
  EXPECT_EQ(parse_infer_request(one, std::nullopt, [&](size_t bytes) { reserved += bytes; }).inputs.size(), 1u);
  EXPECT_EQ(reserved, 4u * 8u);
  EXPECT_THROW(parse_infer_request(one, std::nullopt, [](size_t) { throw Error::overloaded("budget spent"); }), Error);
}

TEST(KServeTensorsTest, HalfFloatsRoundTripThroughJson) {
  const auto r = parse_infer_request(R"({"inputs":[{"name":"h","shape":[4],"datatype":"FP16","data":[1.0,-2.5,0.0,65504]},
                                                   {"name":"b","shape":[1],"datatype":"BF16","data":[3.0]}]})",
                                     std::nullopt);
  uint16_t h[4];
  std::memcpy(h, r.inputs[0].tensor.bytes().data(), 8);
  EXPECT_EQ(h[0], 0x3C00);
  EXPECT_EQ(h[1], 0xC100);
  EXPECT_EQ(h[2], 0x0000);
  EXPECT_EQ(h[3], 0x7BFF);
  uint16_t b;
  std::memcpy(&b, r.inputs[1].tensor.bytes().data(), 2);
  EXPECT_EQ(b, 0x4040);
  const auto out = encode_infer_response("m", "1", r, r.inputs);
  const json doc = json::parse(out.body);
  EXPECT_EQ(doc["outputs"][0]["data"], json({1.0, -2.5, 0.0, 65504.0}));
  EXPECT_EQ(doc["outputs"][1]["data"], json({3.0}));
  EXPECT_FALSE(out.header_length.has_value());
}

TEST(KServeTensorsTest, EncodesBinaryOutputs) {
  KServeRequest request;
  request.all_binary = true;
  std::vector<NamedTensor> outputs;
  outputs.push_back({"y", Tensor::from_vector<int64_t>({2}, {7, 8})});
  outputs.push_back({"s", Tensor::from_strings({1}, {"xyz"})});
  const auto out = encode_infer_response("m", "1", request, outputs);
  ASSERT_TRUE(out.header_length.has_value());
  const json doc = json::parse(out.body.substr(0, *out.header_length));
  EXPECT_EQ(doc["outputs"][0]["parameters"]["binary_data_size"], 16);
  EXPECT_EQ(doc["outputs"][1]["parameters"]["binary_data_size"], 7);
  const std::string binary = out.body.substr(*out.header_length);
  ASSERT_EQ(binary.size(), 23u);
  int64_t first = 0;
  std::memcpy(&first, binary.data(), 8);
  EXPECT_EQ(first, 7);
  EXPECT_EQ(binary.substr(20), "xyz");
}

}  // namespace
}  // namespace kapsl::server

namespace kapsl::server {
namespace {

// Every float32 reads back bit for bit from its JSON text (written in float32's own
// shortest form), integers stay exact, and what JSON cannot hold is null.
TEST(KServeTensorsTest, EncodedJsonReadsBackExactly) {
  const std::vector<float> floats = {0.1f, -0.0f, 3.0f, 1e-45f, 3.4028235e38f, -1.17549435e-38f, 16777217.0f,
                                     std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
  const std::vector<int64_t> ints = {std::numeric_limits<int64_t>::min(), -1, 0, std::numeric_limits<int64_t>::max()};
  const std::vector<NamedTensor> outputs = {
      {"f", Tensor::from_vector<float>({3, 3}, floats)},
      {"d", Tensor::from_vector<double>({2}, {0.1, 1e308})},
      {"i", Tensor::from_vector<int64_t>({4}, ints)},
      {"u", Tensor::from_vector<uint64_t>({1}, {std::numeric_limits<uint64_t>::max()})},
      {"b", Tensor::from_vector<bool>({2}, {true, false})},
      {"s", Tensor::from_strings({2}, {"quote \" and \\ and \n", std::string("\xff", 1)})}};
  KServeRequest request;
  request.id = "r\"1";
  const json doc = json::parse(encode_infer_response("m\"", "1", request, outputs).body);
  EXPECT_EQ(doc["id"], "r\"1");
  EXPECT_EQ(doc["model_name"], "m\"");
  const json& f = doc["outputs"][0];
  EXPECT_EQ(f["datatype"], "FP32");
  EXPECT_EQ(f["shape"], json::parse("[3,3]"));
  for (size_t i = 0; i < 7; ++i) {
    const float back = f["data"][i].get<float>();
    EXPECT_EQ(std::memcmp(&back, &floats[i], sizeof back), 0) << i << ": " << f["data"][i].dump();
  }
  EXPECT_TRUE(f["data"][7].is_null());
  EXPECT_TRUE(f["data"][8].is_null());
  EXPECT_TRUE(f["data"][2].is_number_float()) << "3.0 must stay a float: " << f["data"][2].dump();
  EXPECT_EQ(doc["outputs"][1]["data"], json::parse("[0.1, 1e308]"));
  EXPECT_EQ(doc["outputs"][2]["data"].get<std::vector<int64_t>>(), ints);
  EXPECT_EQ(doc["outputs"][3]["data"][0].get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(doc["outputs"][4]["data"], json::parse("[true, false]"));
  EXPECT_EQ(doc["outputs"][5]["data"][0], "quote \" and \\ and \n");
  EXPECT_EQ(doc["outputs"][5]["data"][1], "\xef\xbf\xbd");  // invalid UTF-8 replaced
}

// What a client encodes (kapsl bench --url) is what the server parses.
TEST(KServeTensorsTest, EncodedRequestsParseBackToTheSameTensors) {
  const std::vector<NamedTensor> inputs = {{"x", Tensor::from_vector<float>({2, 2}, {0.1f, -2, 3e-3f, 7})},
                                           {"s", Tensor::from_strings({1}, {"text"})}};
  for (const bool binary : {false, true}) {
    const KServeBody body = encode_infer_request(inputs, binary);
    const KServeRequest parsed = parse_infer_request(body.body, body.header_length);
    ASSERT_EQ(parsed.inputs.size(), 2u);
    EXPECT_EQ(parsed.inputs[0].tensor, inputs[0].tensor) << binary;
    EXPECT_EQ(parsed.inputs[1].tensor, inputs[1].tensor) << binary;
    EXPECT_EQ(parsed.all_binary, binary);
  }
}

}  // namespace
}  // namespace kapsl::server
