#include "server/kserve_tensors.h"

#include <bit>
#include <charconv>
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

// Shortest text that reads back as the same value (std::to_chars), with ".0" on integral
// values as nlohmann writes them, and null for NaN and infinities (JSON has none).
template <typename F>
void append_real(F v, std::string& out) {
  if (!std::isfinite(v)) {
    out += "null";
    return;
  }
  char buf[32];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  const std::string_view text(buf, static_cast<size_t>(end - buf));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";
}

template <typename I>
void append_integer(I v, std::string& out) {
  char buf[24];
  const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, end);
}

template <typename T, typename Append>
void append_each(const Tensor& t, std::string& out, Append&& append) {
  bool first = true;
  for (const T v : t.data<T>()) {
    if (!first) out += ',';
    first = false;
    append(v, out);
  }
}

// The tensor's elements as a flat JSON array, written straight into `out`: float32 in its
// own shortest form (not the double it widens to), so large outputs encode several times
// faster than through a JSON DOM and read back as the same float32.
void append_data_json(const Tensor& t, std::string& out) {
  out += '[';
  const auto real = [](auto v, std::string& o) { append_real(v, o); };
  const auto integer = [](auto v, std::string& o) { append_integer(v, o); };
  switch (t.dtype()) {
    case DType::kFloat32: append_each<float>(t, out, real); break;
    case DType::kFloat64: append_each<double>(t, out, real); break;
    case DType::kInt8: append_each<int8_t>(t, out, integer); break;
    case DType::kInt16: append_each<int16_t>(t, out, integer); break;
    case DType::kInt32: append_each<int32_t>(t, out, integer); break;
    case DType::kInt64: append_each<int64_t>(t, out, integer); break;
    case DType::kUInt8: append_each<uint8_t>(t, out, integer); break;
    case DType::kUInt16: append_each<uint16_t>(t, out, integer); break;
    case DType::kUInt32: append_each<uint32_t>(t, out, integer); break;
    case DType::kUInt64: append_each<uint64_t>(t, out, integer); break;
    case DType::kFloat16:
    case DType::kBFloat16:
      for (size_t i = 0; i < t.byte_size(); i += 2) {
        uint16_t v;
        std::memcpy(&v, t.bytes().data() + i, 2);
        if (i > 0) out += ',';
        append_real(t.dtype() == DType::kFloat16 ? fp16_to_float(v) : bf16_to_float(v), out);
      }
      break;
    case DType::kBool:
      for (size_t i = 0; i < t.byte_size(); ++i) out += (i > 0 ? "," : "") + std::string(t.bytes()[i] != std::byte{0} ? "true" : "false");
      break;
    case DType::kString:
      for (size_t i = 0; i < t.strings().size(); ++i) {
        if (i > 0) out += ',';
        out += json(t.strings()[i]).dump(-1, ' ', false, json::error_handler_t::replace);
      }
      break;
  }
  out += ']';
}

// A JSON string literal (invalid UTF-8 replaced).
std::string quoted(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

std::string shape_json(const Shape& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ',';
    append_integer(shape[i], out);
  }
  return out + "]";
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

namespace {

// One tensor entry of a request's "inputs" or a response's "outputs", keys in nlohmann's
// (alphabetical) order as the rest of the protocol's bodies: its data as JSON, or with
// `as_binary` its raw bytes appended to `binary` and their size as binary_data_size.
void append_tensor_entry(const std::string& name, const Tensor& tensor, bool as_binary, std::string& body,
                         std::string& binary) {
  body += "{";
  if (!as_binary) {
    body += "\"data\":";
    append_data_json(tensor, body);
    body += ',';
  }
  body += "\"datatype\":\"" + std::string(kserve_datatype(tensor.dtype())) + "\",\"name\":" + quoted(name);
  if (as_binary) {
    const size_t before = binary.size();
    append_raw(tensor, binary);
    body += ",\"parameters\":{\"binary_data_size\":" + std::to_string(binary.size() - before) + "}";
  }
  body += ",\"shape\":" + shape_json(tensor.shape()) + "}";
}

KServeBody with_binary(std::string body, std::string binary, bool has_binary) {
  KServeBody out;
  out.body = std::move(body);
  if (has_binary) {
    out.header_length = out.body.size();
    out.body += binary;
  }
  return out;
}

}  // namespace

KServeBody encode_infer_request(const std::vector<NamedTensor>& inputs, bool binary) {
  std::string body = "{\"inputs\":[";
  std::string raw;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (i > 0) body += ',';
    append_tensor_entry(inputs[i].name, inputs[i].tensor, binary, body, raw);
  }
  body += binary ? "],\"parameters\":{\"binary_data_output\":true}}" : "]}";
  return with_binary(std::move(body), std::move(raw), binary);
}

// Written directly rather than through a JSON DOM: a DOM of a large output costs more than
// the model run.
KServeBody encode_infer_response(const std::string& model, const std::string& version, const KServeRequest& request,
                                 const std::vector<NamedTensor>& outputs) {
  std::string body = "{";
  if (!request.id.empty()) body += "\"id\":" + quoted(request.id) + ",";
  body += "\"model_name\":" + quoted(model) + ",\"model_version\":" + quoted(version) + ",\"outputs\":[";
  std::string binary;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const auto& [name, tensor] = outputs[i];
    if (i > 0) body += ',';
    append_tensor_entry(name, tensor, request.all_binary || request.binary_outputs.count(name) > 0, body, binary);
  }
  body += "]}";
  return with_binary(std::move(body), std::move(binary), request.all_binary || !request.binary_outputs.empty());
}

}  // namespace kapsl::server
