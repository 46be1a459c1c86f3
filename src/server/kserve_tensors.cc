#include "server/kserve_tensors.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "kapsl/error.h"

namespace kapsl::server {

using json = nlohmann::json;

namespace {

struct DTypeName {
  DType dtype;
  const char* name;
};
constexpr DTypeName kNames[] = {
    {DType::kBool, "BOOL"},     {DType::kUInt8, "UINT8"},   {DType::kUInt16, "UINT16"}, {DType::kUInt32, "UINT32"},
    {DType::kUInt64, "UINT64"}, {DType::kInt8, "INT8"},     {DType::kInt16, "INT16"},   {DType::kInt32, "INT32"},
    {DType::kInt64, "INT64"},   {DType::kFloat16, "FP16"},  {DType::kFloat32, "FP32"},  {DType::kFloat64, "FP64"},
    {DType::kString, "BYTES"},  {DType::kBFloat16, "BF16"}};

// IEEE half <-> float, round to nearest even; NaN and infinities kept.
uint16_t float_to_half(float f) {
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

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
  float magnitude;
  if (exp == 0) magnitude = static_cast<float>(mant) / 16777216.0f;
  else if (exp == 31) magnitude = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  else magnitude = std::bit_cast<float>(((exp + 112u) << 23) | (mant << 13));
  return std::bit_cast<float>(std::bit_cast<uint32_t>(magnitude) | sign);
}

uint16_t float_to_bf16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

[[noreturn]] void bad(const std::string& input, const std::string& what) {
  throw Error::invalid_input("input '" + input + "'", what);
}

void flatten(const json& data, std::vector<const json*>& out) {
  if (data.is_array()) {
    for (const auto& item : data) flatten(item, out);
  } else {
    out.push_back(&data);
  }
}

template <typename T>
T integer_element(const json& v, const std::string& input) {
  if (!v.is_number_integer()) bad(input, "expected integer data but got " + v.dump());
  if constexpr (std::is_unsigned_v<T>) {
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u <= std::numeric_limits<T>::max()) return static_cast<T>(u);
    } else if (v.get<int64_t>() >= 0 && static_cast<uint64_t>(v.get<int64_t>()) <= std::numeric_limits<T>::max()) {
      return static_cast<T>(v.get<int64_t>());
    }
  } else if (!v.is_number_unsigned() || v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())) {
    const auto s = v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
    if (s >= std::numeric_limits<T>::min() && s <= std::numeric_limits<T>::max()) return static_cast<T>(s);
  }
  bad(input, "value " + v.dump() + " is out of range for its datatype");
}

double float_element(const json& v, const std::string& input) {
  if (!v.is_number()) bad(input, "expected numeric data but got " + v.dump());
  return v.get<double>();
}

template <typename T>
void fill(Tensor& t, const std::vector<const json*>& items, const std::string& input) {
  auto out = t.mutable_data<T>();
  for (size_t i = 0; i < items.size(); ++i) {
    if constexpr (std::is_floating_point_v<T>) out[i] = static_cast<T>(float_element(*items[i], input));
    else out[i] = integer_element<T>(*items[i], input);
  }
}

Tensor tensor_from_json(DType dtype, Shape shape, const json& data, const std::string& input) {
  std::vector<const json*> items;
  flatten(data, items);
  Tensor t = Tensor::zeros(dtype, shape);
  if (static_cast<int64_t>(items.size()) != t.element_count()) {
    bad(input, "shape " + shape_to_string(shape) + " needs " + std::to_string(t.element_count()) +
                   " elements but data has " + std::to_string(items.size()));
  }
  switch (dtype) {
    case DType::kFloat32: fill<float>(t, items, input); break;
    case DType::kFloat64: fill<double>(t, items, input); break;
    case DType::kInt8: fill<int8_t>(t, items, input); break;
    case DType::kInt16: fill<int16_t>(t, items, input); break;
    case DType::kInt32: fill<int32_t>(t, items, input); break;
    case DType::kInt64: fill<int64_t>(t, items, input); break;
    case DType::kUInt8: fill<uint8_t>(t, items, input); break;
    case DType::kUInt16: fill<uint16_t>(t, items, input); break;
    case DType::kUInt32: fill<uint32_t>(t, items, input); break;
    case DType::kUInt64: fill<uint64_t>(t, items, input); break;
    case DType::kFloat16:
    case DType::kBFloat16: {
      // 16-bit floats have no C++ element type here; write their bits through the bytes.
      auto out = t.mutable_bytes();
      for (size_t i = 0; i < items.size(); ++i) {
        const auto f = static_cast<float>(float_element(*items[i], input));
        const uint16_t bits = dtype == DType::kFloat16 ? float_to_half(f) : float_to_bf16(f);
        std::memcpy(out.data() + 2 * i, &bits, 2);
      }
      break;
    }
    case DType::kBool: {
      auto out = t.mutable_bytes();
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i]->is_boolean()) bad(input, "expected true or false but got " + items[i]->dump());
        out[i] = std::byte{items[i]->get<bool>() ? uint8_t{1} : uint8_t{0}};
      }
      break;
    }
    case DType::kString: {
      auto& out = t.mutable_strings();
      for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i]->is_string()) bad(input, "expected string data but got " + items[i]->dump());
        out[i] = items[i]->get<std::string>();
      }
      break;
    }
  }
  return t;
}

Tensor strings_from_binary(Shape shape, std::string_view bytes, const std::string& input) {
  std::vector<std::string> values;
  while (!bytes.empty()) {
    if (bytes.size() < 4) bad(input, "BYTES binary data ends inside a length prefix");
    uint32_t n;
    std::memcpy(&n, bytes.data(), 4);
    bytes.remove_prefix(4);
    if (n > bytes.size()) bad(input, "BYTES element of " + std::to_string(n) + " bytes runs past the data");
    values.emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  const int64_t expected = element_count(shape);
  if (static_cast<int64_t>(values.size()) != expected) {
    bad(input, "shape " + shape_to_string(shape) + " needs " + std::to_string(expected) + " BYTES elements but data has " +
                   std::to_string(values.size()));
  }
  return Tensor::from_strings(std::move(shape), std::move(values));
}

Shape parse_shape(const json& input, const std::string& name) {
  const auto it = input.find("shape");
  if (it == input.end() || !it->is_array()) bad(name, "'shape' must be an array of non-negative integers");
  Shape shape;
  for (const auto& d : *it) {
    if (!d.is_number_integer() || d.get<int64_t>() < 0) bad(name, "'shape' must be an array of non-negative integers");
    shape.push_back(d.get<int64_t>());
  }
  element_count(shape);  // throws on overflow
  return shape;
}

std::optional<size_t> binary_size(const json& item) {
  const auto params = item.find("parameters");
  if (params == item.end() || !params->is_object()) return std::nullopt;
  const auto size = params->find("binary_data_size");
  if (size == params->end()) return std::nullopt;
  if (!size->is_number_integer() || size->get<int64_t>() < 0) {
    throw Error::invalid_input("'binary_data_size' must be a non-negative integer");
  }
  return size->get<size_t>();
}

// Parses one input; `binary` is the unread binary data, consumed from the front.
NamedTensor parse_input(const json& input, std::string_view& binary) {
  if (!input.is_object() || !input.contains("name") || !input["name"].is_string()) {
    throw Error::invalid_input("each input must be an object with a string 'name'");
  }
  const std::string name = input["name"].get<std::string>();
  if (!input.contains("datatype") || !input["datatype"].is_string()) bad(name, "'datatype' must be a string");
  const auto dtype = dtype_from_kserve(input["datatype"].get<std::string>());
  if (!dtype) bad(name, "unknown datatype '" + input["datatype"].get<std::string>() + "'");
  Shape shape = parse_shape(input, name);
  if (const auto size = binary_size(input)) {
    if (*size > binary.size()) bad(name, "binary_data_size " + std::to_string(*size) + " exceeds the binary data left");
    const std::string_view bytes = binary.substr(0, *size);
    binary.remove_prefix(*size);
    if (*dtype == DType::kString) return {name, strings_from_binary(std::move(shape), bytes, name)};
    return {name, Tensor::from_bytes(*dtype, std::move(shape), std::as_bytes(std::span(bytes.data(), bytes.size())))};
  }
  if (!input.contains("data")) bad(name, "has neither 'data' nor parameters.binary_data_size");
  return {name, tensor_from_json(*dtype, std::move(shape), input["data"], name)};
}

void parse_outputs(const json& doc, KServeRequest& request) {
  if (const auto params = doc.find("parameters"); params != doc.end() && params->is_object()) {
    request.all_binary = params->value("binary_data_output", false);
  }
  const auto outputs = doc.find("outputs");
  if (outputs == doc.end()) return;
  if (!outputs->is_array()) throw Error::invalid_input("'outputs' must be an array");
  for (const auto& out : *outputs) {
    if (!out.is_object() || !out.contains("name") || !out["name"].is_string()) {
      throw Error::invalid_input("each output must be an object with a string 'name'");
    }
    const std::string name = out["name"].get<std::string>();
    request.output_names.push_back(name);
    const auto params = out.find("parameters");
    if (params != out.end() && params->is_object() && params->value("binary_data", false)) {
      request.binary_outputs.insert(name);
    }
  }
}

}  // namespace

const char* kserve_datatype(DType dtype) noexcept {
  for (const auto& n : kNames) {
    if (n.dtype == dtype) return n.name;
  }
  return "BYTES";
}

std::optional<DType> dtype_from_kserve(std::string_view datatype) {
  for (const auto& n : kNames) {
    if (datatype == n.name) return n.dtype;
  }
  return std::nullopt;
}

KServeRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length) {
  if (header_length && *header_length > body.size()) {
    throw Error::invalid_input("Inference-Header-Content-Length " + std::to_string(*header_length) +
                               " exceeds the body of " + std::to_string(body.size()) + " bytes");
  }
  const std::string_view header = header_length ? body.substr(0, *header_length) : body;
  std::string_view binary = header_length ? body.substr(*header_length) : std::string_view{};
  const json doc = json::parse(header, nullptr, false);
  if (doc.is_discarded()) throw Error::invalid_input("the request body is not valid JSON");
  if (!doc.is_object()) throw Error::invalid_input("the request body must be a JSON object");
  KServeRequest request;
  if (const auto id = doc.find("id"); id != doc.end() && id->is_string()) request.id = id->get<std::string>();
  const auto inputs = doc.find("inputs");
  if (inputs == doc.end() || !inputs->is_array() || inputs->empty()) {
    throw Error::invalid_input("'inputs' must be a non-empty array");
  }
  for (const auto& input : *inputs) request.inputs.push_back(parse_input(input, binary));
  if (!binary.empty()) {
    throw Error::invalid_input(std::to_string(binary.size()) + " bytes of binary data are not claimed by any input");
  }
  parse_outputs(doc, request);
  return request;
}

namespace {

json data_as_json(const Tensor& t) {
  json data = json::array();
  switch (t.dtype()) {
    case DType::kFloat32: for (float v : t.data<float>()) data.push_back(v); break;
    case DType::kFloat64: for (double v : t.data<double>()) data.push_back(v); break;
    case DType::kInt8: for (int8_t v : t.data<int8_t>()) data.push_back(v); break;
    case DType::kInt16: for (int16_t v : t.data<int16_t>()) data.push_back(v); break;
    case DType::kInt32: for (int32_t v : t.data<int32_t>()) data.push_back(v); break;
    case DType::kInt64: for (int64_t v : t.data<int64_t>()) data.push_back(v); break;
    case DType::kUInt8: for (uint8_t v : t.data<uint8_t>()) data.push_back(v); break;
    case DType::kUInt16: for (uint16_t v : t.data<uint16_t>()) data.push_back(v); break;
    case DType::kUInt32: for (uint32_t v : t.data<uint32_t>()) data.push_back(v); break;
    case DType::kUInt64: for (uint64_t v : t.data<uint64_t>()) data.push_back(v); break;
    case DType::kFloat16:
    case DType::kBFloat16:
      for (size_t i = 0; i < t.byte_size(); i += 2) {
        uint16_t v;
        std::memcpy(&v, t.bytes().data() + i, 2);
        data.push_back(t.dtype() == DType::kFloat16 ? half_to_float(v) : bf16_to_float(v));
      }
      break;
    case DType::kBool: for (std::byte b : t.bytes()) data.push_back(b != std::byte{0}); break;
    case DType::kString: for (const auto& s : t.strings()) data.push_back(s); break;
  }
  return data;
}

void append_binary(const Tensor& t, std::string& out) {
  if (t.dtype() != DType::kString) {
    out.append(reinterpret_cast<const char*>(t.bytes().data()), t.byte_size());
    return;
  }
  for (const auto& s : t.strings()) {
    const auto n = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += s;
  }
}

}  // namespace

KServeResponse encode_infer_response(const std::string& model, const std::string& version, const KServeRequest& request,
                                     const std::vector<NamedTensor>& outputs) {
  json doc = {{"model_name", model}, {"model_version", version}, {"outputs", json::array()}};
  if (!request.id.empty()) doc["id"] = request.id;
  std::string binary;
  for (const auto& [name, tensor] : outputs) {
    json out = {{"name", name}, {"datatype", kserve_datatype(tensor.dtype())}, {"shape", tensor.shape()}};
    if (request.all_binary || request.binary_outputs.count(name)) {
      const size_t before = binary.size();
      append_binary(tensor, binary);
      out["parameters"] = {{"binary_data_size", binary.size() - before}};
    } else {
      out["data"] = data_as_json(tensor);
    }
    doc["outputs"].push_back(std::move(out));
  }
  KServeResponse response;
  response.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  if (request.all_binary || !request.binary_outputs.empty()) {
    response.header_length = response.body.size();
    response.body += binary;
  }
  return response;
}

}  // namespace kapsl::server
