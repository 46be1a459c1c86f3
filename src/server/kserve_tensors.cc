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
        data.push_back(t.dtype() == DType::kFloat16 ? fp16_to_float(v) : bf16_to_float(v));
      }
      break;
    case DType::kBool: for (std::byte b : t.bytes()) data.push_back(b != std::byte{0}); break;
    case DType::kString: for (const auto& s : t.strings()) data.push_back(s); break;
  }
  return data;
}

}  // namespace

void append_raw(const Tensor& t, std::string& out) {
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

Tensor tensor_from_raw(DType dtype, const Shape& shape, std::string_view bytes, const std::string& where) {
  if (dtype != DType::kString) {
    try {  // checks the size against the shape before allocating
      return Tensor::from_bytes(dtype, shape, std::as_bytes(std::span(bytes.data(), bytes.size())));
    } catch (const Error& e) {
      throw Error::invalid_input(where, e.message());
    }
  }
  std::vector<std::string> values;
  const int64_t expected = element_count(shape);
  while (!bytes.empty()) {
    if (bytes.size() < 4) throw Error::invalid_input(where, "BYTES raw data ends inside a length prefix");
    uint32_t n;
    std::memcpy(&n, bytes.data(), 4);
    bytes.remove_prefix(4);
    if (n > bytes.size()) {
      throw Error::invalid_input(where, "BYTES element of " + std::to_string(n) + " bytes runs past the data");
    }
    if (static_cast<int64_t>(values.size()) >= expected) throw Error::invalid_input(where, "more BYTES elements than its shape holds");
    values.emplace_back(bytes.substr(0, n));
    bytes.remove_prefix(n);
  }
  if (static_cast<int64_t>(values.size()) != expected) {
    throw Error::invalid_input(where, "shape " + shape_to_string(shape) + " needs " + std::to_string(expected) +
                                          " BYTES elements but data has " + std::to_string(values.size()));
  }
  return Tensor::from_strings(shape, std::move(values));
}

KServeBody encode_infer_request(const std::vector<NamedTensor>& inputs, bool binary) {
  json doc = {{"inputs", json::array()}};
  std::string raw;
  for (const auto& [name, tensor] : inputs) {
    json in = {{"name", name}, {"datatype", kserve_datatype(tensor.dtype())}, {"shape", tensor.shape()}};
    if (binary) {
      const size_t before = raw.size();
      append_raw(tensor, raw);
      in["parameters"] = {{"binary_data_size", raw.size() - before}};
    } else {
      in["data"] = data_as_json(tensor);
    }
    doc["inputs"].push_back(std::move(in));
  }
  if (binary) doc["parameters"] = {{"binary_data_output", true}};
  KServeBody out;
  out.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  if (binary) {
    out.header_length = out.body.size();
    out.body += raw;
  }
  return out;
}

KServeBody encode_infer_response(const std::string& model, const std::string& version, const KServeRequest& request,
                                     const std::vector<NamedTensor>& outputs) {
  json doc = {{"model_name", model}, {"model_version", version}, {"outputs", json::array()}};
  if (!request.id.empty()) doc["id"] = request.id;
  std::string binary;
  for (const auto& [name, tensor] : outputs) {
    json out = {{"name", name}, {"datatype", kserve_datatype(tensor.dtype())}, {"shape", tensor.shape()}};
    if (request.all_binary || request.binary_outputs.count(name)) {
      const size_t before = binary.size();
      append_raw(tensor, binary);
      out["parameters"] = {{"binary_data_size", binary.size() - before}};
    } else {
      out["data"] = data_as_json(tensor);
    }
    doc["outputs"].push_back(std::move(out));
  }
  KServeBody response;
  response.body = doc.dump(-1, ' ', false, json::error_handler_t::replace);
  if (request.all_binary || !request.binary_outputs.empty()) {
    response.header_length = response.body.size();
    response.body += binary;
  }
  return response;
}

}  // namespace kapsl::server
