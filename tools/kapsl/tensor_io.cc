#include "tensor_io.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "npy.h"

namespace kapsl::cli {
namespace {

void set_element(Tensor& t, size_t i, double v) {
  auto* p = t.mutable_bytes().data() + i * dtype_size(t.dtype());
  const auto store = [p](auto value) { std::memcpy(p, &value, sizeof(value)); };
  switch (t.dtype()) {
    case DType::kFloat32: store(static_cast<float>(v)); break;
    case DType::kFloat64: store(v); break;
    case DType::kFloat16: store(float_to_fp16(static_cast<float>(v))); break;
    case DType::kBFloat16: store(float_to_bf16(static_cast<float>(v))); break;
    case DType::kInt8: store(static_cast<int8_t>(v)); break;
    case DType::kInt16: store(static_cast<int16_t>(v)); break;
    case DType::kInt32: store(static_cast<int32_t>(v)); break;
    case DType::kInt64: store(static_cast<int64_t>(v)); break;
    case DType::kUInt8: store(static_cast<uint8_t>(v)); break;
    case DType::kUInt16: store(static_cast<uint16_t>(v)); break;
    case DType::kUInt32: store(static_cast<uint32_t>(v)); break;
    case DType::kUInt64: store(static_cast<uint64_t>(v)); break;
    case DType::kBool: store(static_cast<uint8_t>(v != 0)); break;
    case DType::kString: break;
  }
}

bool is_integer_dtype(DType d) {
  return d == DType::kInt8 || d == DType::kInt16 || d == DType::kInt32 || d == DType::kInt64 || d == DType::kUInt8 ||
         d == DType::kUInt16 || d == DType::kUInt32 || d == DType::kUInt64;
}

// An integer JSON value into an integer element, exactly (never through double), or an
// error naming the value if the dtype cannot hold it.
void set_integer(Tensor& t, size_t i, const nlohmann::json& v, const std::string& what) {
  auto* p = t.mutable_bytes().data() + i * dtype_size(t.dtype());
  const auto fits = [&](auto type_tag) {
    using T = decltype(type_tag);
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    const int64_t x = v.get<int64_t>();
    if constexpr (std::is_unsigned_v<T>) return x >= 0 && static_cast<uint64_t>(x) <= std::numeric_limits<T>::max();
    else return x >= std::numeric_limits<T>::min() && x <= std::numeric_limits<T>::max();
  };
  const auto store = [&](auto type_tag) {
    using T = decltype(type_tag);
    if (!fits(type_tag)) {
      throw Error::invalid_input(what + ": value " + std::to_string(i) + " (" + v.dump() + ") is out of range for " +
                                 std::string(dtype_name(t.dtype())));
    }
    const T x = v.is_number_unsigned() ? static_cast<T>(v.get<uint64_t>()) : static_cast<T>(v.get<int64_t>());
    std::memcpy(p, &x, sizeof x);
  };
  switch (t.dtype()) {
    case DType::kInt8: store(int8_t{}); break;
    case DType::kInt16: store(int16_t{}); break;
    case DType::kInt32: store(int32_t{}); break;
    case DType::kInt64: store(int64_t{}); break;
    case DType::kUInt8: store(uint8_t{}); break;
    case DType::kUInt16: store(uint16_t{}); break;
    case DType::kUInt32: store(uint32_t{}); break;
    case DType::kUInt64: store(uint64_t{}); break;
    default: break;
  }
}

// Appends the leaves of a nested JSON array to `out`, recording the shape on the way down.
void flatten(const nlohmann::json& j, size_t depth, Shape& shape, std::vector<const nlohmann::json*>& out,
             const std::string& what) {
  if (!j.is_array()) {
    if (depth != shape.size()) throw Error::invalid_input(what + ": ragged array (mixed nesting depth)");
    out.push_back(&j);
    return;
  }
  if (depth == shape.size()) shape.push_back(static_cast<int64_t>(j.size()));
  else if (depth > shape.size() || shape[depth] != static_cast<int64_t>(j.size()))
    throw Error::invalid_input(what + ": ragged array (rows of different lengths at depth " + std::to_string(depth) + ")");
  for (const auto& e : j) flatten(e, depth + 1, shape, out, what);
}

}  // namespace

Tensor tensor_from_json(const nlohmann::json& j, const TensorInfo* declared, const std::string& what) {
  DType dtype = declared && declared->dtype_known ? declared->dtype : DType::kFloat32;
  const nlohmann::json* data = &j;
  std::optional<Shape> shape;
  if (j.is_object()) {
    if (!j.contains("data")) throw Error::invalid_input(what + ": object has no \"data\" field");
    if (j.contains("dtype")) dtype = dtype_from_name(j.at("dtype").get<std::string>());
    if (j.contains("shape")) shape = j.at("shape").get<Shape>();
    data = &j.at("data");
  }
  Shape nested;
  std::vector<const nlohmann::json*> leaves;
  flatten(*data, 0, nested, leaves, what);
  if (!data->is_array()) nested = {};
  const Shape final_shape = shape ? *shape : nested;
  if (static_cast<uint64_t>(element_count(final_shape)) != leaves.size()) {
    throw Error::invalid_input(what + ": shape " + shape_to_string(final_shape) + " needs " +
                               std::to_string(element_count(final_shape)) + " values, got " + std::to_string(leaves.size()));
  }
  if (dtype == DType::kString) {
    std::vector<std::string> s;
    for (const auto* leaf : leaves) {
      if (!leaf->is_string()) throw Error::invalid_input(what + ": string tensor holds a non-string value");
      s.push_back(leaf->get<std::string>());
    }
    return Tensor::from_strings(final_shape, std::move(s));
  }
  Tensor t = Tensor::zeros(dtype, final_shape);
  for (size_t i = 0; i < leaves.size(); ++i) {
    const nlohmann::json& v = *leaves[i];
    if (!v.is_number() && !v.is_boolean()) {
      throw Error::invalid_input(what + ": value " + std::to_string(i) + " is " + v.dump() + ", not a number");
    }
    if (is_integer_dtype(dtype) && v.is_number_integer()) set_integer(t, i, v, what);
    else if (is_integer_dtype(dtype) && v.is_number_float()) {
      throw Error::invalid_input(what + ": value " + std::to_string(i) + " (" + v.dump() + ") is not an integer");
    } else set_element(t, i, v.is_boolean() ? (v.get<bool>() ? 1.0 : 0.0) : v.get<double>());
  }
  return t;
}

Tensor read_tensor_file(const std::string& path, const TensorInfo* declared) {
  if (path.size() > 5 && path.ends_with(".json")) {
    std::ifstream in(path);
    if (!in) throw Error::not_found("cannot open '" + path + "'");
    nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) throw Error::invalid_input("'" + path + "' is not valid JSON");
    try {
      return tensor_from_json(j, declared, path);
    } catch (const nlohmann::json::exception& e) {
      throw Error::invalid_input(path, e.what());
    }
  }
  return npy_load(path);
}

Fill parse_fill(const std::string& name) {
  if (name == "zeros") return Fill::kZeros;
  if (name == "ones") return Fill::kOnes;
  if (name == "random") return Fill::kRandom;
  throw Error::invalid_input("unknown fill '" + name + "'", "expected zeros, ones or random");
}

Shape parse_shape_text(const std::string& text) {
  if (text.empty() || text == "scalar") return {};
  Shape shape;
  std::string norm = text;
  std::replace(norm.begin(), norm.end(), 'x', ',');
  std::istringstream in(norm);
  std::string tok;
  while (std::getline(in, tok, ',')) {
    if (tok.empty() || tok.size() > 18 || tok.find_first_not_of("0123456789") != std::string::npos) {
      throw Error::invalid_input("invalid shape '" + text + "'", "expected dimensions like 1x3x224x224");
    }
    shape.push_back(std::stoll(tok));
  }
  return shape;
}

Tensor synthesize_tensor(const TensorInfo& info, Fill fill, uint64_t seed, const Shape* shape_override) {
  Shape shape = shape_override ? *shape_override : info.shape;
  if (!shape_override) {
    for (auto& d : shape) d = d < 0 ? 1 : d;
  }
  const DType dtype = info.dtype_known ? info.dtype : DType::kFloat32;
  Tensor t = Tensor::zeros(dtype, shape);
  if (dtype == DType::kString) {
    for (auto& s : t.mutable_strings()) s = fill == Fill::kZeros ? "" : "kapsl";
    return t;
  }
  std::mt19937_64 rng(seed);
  const bool is_float = dtype == DType::kFloat32 || dtype == DType::kFloat64 || dtype == DType::kFloat16 ||
                        dtype == DType::kBFloat16;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> small(0, 9);
  for (size_t i = 0; i < static_cast<size_t>(t.element_count()); ++i) {
    double v = fill == Fill::kZeros ? 0.0 : 1.0;
    if (fill == Fill::kRandom) v = is_float ? unit(rng) : dtype == DType::kBool ? small(rng) % 2 : small(rng);
    set_element(t, i, v);
  }
  return t;
}

namespace {

// Calls `f` with element i of a numeric tensor loaded as its own type (bool as uint8_t,
// the 16-bit floats as their bits, uint16_t).
template <class F>
auto with_element(const Tensor& t, size_t i, F&& f) {
  const std::byte* p = t.bytes().data() + i * dtype_size(t.dtype());
  const auto load = [&](auto x) {
    std::memcpy(&x, p, sizeof x);
    return f(x);
  };
  switch (t.dtype()) {
    case DType::kFloat32: return load(float{});
    case DType::kFloat64: return load(double{});
    case DType::kFloat16: case DType::kBFloat16: return load(uint16_t{});
    case DType::kInt8: return load(int8_t{});
    case DType::kInt16: return load(int16_t{});
    case DType::kInt32: return load(int32_t{});
    case DType::kInt64: return load(int64_t{});
    case DType::kUInt8: case DType::kBool: return load(uint8_t{});
    case DType::kUInt16: return load(uint16_t{});
    case DType::kUInt32: return load(uint32_t{});
    default: return load(uint64_t{});
  }
}

}  // namespace

double element_as_double(const Tensor& t, size_t i) {
  if (t.dtype() == DType::kString) return 0;
  const double v = with_element(t, i, [](auto x) { return static_cast<double>(x); });
  if (t.dtype() == DType::kFloat16) return fp16_to_float(static_cast<uint16_t>(v));
  if (t.dtype() == DType::kBFloat16) return bf16_to_float(static_cast<uint16_t>(v));
  return v;
}

namespace {

std::string format_value(const Tensor& t, size_t i) {
  if (t.dtype() == DType::kString) {
    return nlohmann::json(t.strings()[i]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::ostringstream s;
  s.precision(6);
  s << element_as_double(t, i);
  return s.str();
}

}  // namespace

std::string terminal_safe(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7f) {
      out += c;
      continue;
    }
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[u >> 4];
    out += kHex[u & 0xf];
  }
  return out;
}

std::string summarize_tensor(const Tensor& t, size_t max_values) {
  const auto n = static_cast<size_t>(t.element_count());
  std::ostringstream out;
  out << dtype_name(t.dtype()) << " " << shape_to_string(t.shape());
  if (n > max_values && t.dtype() != DType::kString) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const double v = element_as_double(t, i);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      sum += v;
    }
    out << "  min " << lo << " max " << hi << " mean " << sum / static_cast<double>(n);
  }
  out << "  [";
  const size_t head = n > max_values ? max_values / 2 : n;
  for (size_t i = 0; i < head; ++i) out << (i ? ", " : "") << format_value(t, i);
  if (n > max_values) {
    out << ", ...";
    for (size_t i = n - max_values / 4; i < n; ++i) out << ", " << format_value(t, i);
  }
  out << "]";
  return out.str();
}

// An integer element exactly: JSON numbers are arbitrary-precision text, doubles are not.
nlohmann::json integer_element(const Tensor& t, size_t i) {
  return with_element(t, i, [](auto x) { return nlohmann::json(x); });
}

nlohmann::json tensor_to_json(const std::string& name, const Tensor& t) {
  nlohmann::json data = nlohmann::json::array();
  for (size_t i = 0; i < static_cast<size_t>(t.element_count()); ++i) {
    if (t.dtype() == DType::kString) data.push_back(t.strings()[i]);
    else if (t.dtype() == DType::kBool) data.push_back(element_as_double(t, i) != 0);
    else if (is_integer_dtype(t.dtype())) data.push_back(integer_element(t, i));
    else data.push_back(element_as_double(t, i));
  }
  return {{"name", name}, {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data", std::move(data)}};
}

}  // namespace kapsl::cli
