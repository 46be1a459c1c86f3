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

float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  float value;
  if (exp == 0) {
    value = std::ldexp(static_cast<float>(mant), -24);
  } else if (exp == 31) {
    value = mant ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    value = std::ldexp(static_cast<float>(mant | 0x400), static_cast<int>(exp) - 25);
  }
  return sign ? -value : value;
}

// Round-to-nearest-even float -> half via the float's bits.
uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000);
  const int32_t exp = static_cast<int32_t>((x >> 23) & 0xFF) - 127 + 15;
  uint32_t mant = x & 0x7FFFFF;
  if (((x >> 23) & 0xFF) == 0xFF) return sign | 0x7C00 | (mant ? 0x200 : 0);
  if (exp >= 31) return sign | 0x7C00;
  if (exp <= 0) {
    if (exp < -10) return sign;
    mant |= 0x800000;
    const uint32_t shift = static_cast<uint32_t>(14 - exp);
    uint32_t h = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) ++h;
    return static_cast<uint16_t>(sign | h);
  }
  uint32_t h = (static_cast<uint32_t>(exp) << 10) | (mant >> 13);
  const uint32_t rem = mant & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return static_cast<uint16_t>(sign | h);
}

void set_element(Tensor& t, size_t i, double v) {
  auto* p = t.mutable_bytes().data() + i * dtype_size(t.dtype());
  const auto store = [p](auto value) { std::memcpy(p, &value, sizeof(value)); };
  switch (t.dtype()) {
    case DType::kFloat32: store(static_cast<float>(v)); break;
    case DType::kFloat64: store(v); break;
    case DType::kFloat16: store(float_to_half(static_cast<float>(v))); break;
    case DType::kBFloat16: {
      const float f = static_cast<float>(v);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      store(static_cast<uint16_t>((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16));
      break;
    }
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
    if (!leaves[i]->is_number() && !leaves[i]->is_boolean()) {
      throw Error::invalid_input(what + ": value " + std::to_string(i) + " is " + leaves[i]->dump() + ", not a number");
    }
    set_element(t, i, leaves[i]->is_boolean() ? (leaves[i]->get<bool>() ? 1.0 : 0.0) : leaves[i]->get<double>());
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

double element_as_double(const Tensor& t, size_t i) {
  const auto* p = t.bytes().data() + i * dtype_size(t.dtype());
  const auto load = [p](auto zero) {
    decltype(zero) v;
    std::memcpy(&v, p, sizeof(v));
    return static_cast<double>(v);
  };
  switch (t.dtype()) {
    case DType::kFloat32: return load(float{});
    case DType::kFloat64: return load(double{});
    case DType::kFloat16: return half_to_float(static_cast<uint16_t>(load(uint16_t{})));
    case DType::kBFloat16: {
      const uint32_t bits = static_cast<uint32_t>(load(uint16_t{})) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::kInt8: return load(int8_t{});
    case DType::kInt16: return load(int16_t{});
    case DType::kInt32: return load(int32_t{});
    case DType::kInt64: return load(int64_t{});
    case DType::kUInt8: return load(uint8_t{});
    case DType::kUInt16: return load(uint16_t{});
    case DType::kUInt32: return load(uint32_t{});
    case DType::kUInt64: return load(uint64_t{});
    case DType::kBool: return load(uint8_t{});
    case DType::kString: return 0;
  }
  return 0;
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

nlohmann::json tensor_to_json(const std::string& name, const Tensor& t) {
  nlohmann::json data = nlohmann::json::array();
  for (size_t i = 0; i < static_cast<size_t>(t.element_count()); ++i) {
    if (t.dtype() == DType::kString) data.push_back(t.strings()[i]);
    else if (t.dtype() == DType::kBool) data.push_back(element_as_double(t, i) != 0);
    else data.push_back(element_as_double(t, i));
  }
  return {{"name", name}, {"dtype", dtype_name(t.dtype())}, {"shape", t.shape()}, {"data", std::move(data)}};
}

}  // namespace kapsl::cli
