#include "npy.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

namespace kapsl::cli {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";

struct Descr {
  DType dtype = DType::kFloat32;
  bool big_endian = false;
  char kind = 'f';     // NumPy kind: b i u f U S
  size_t item = 4;     // bytes per element in the file
};

[[noreturn]] void bad(std::string_view what, std::string_view problem) {
  throw Error::invalid_input(std::string(what) + " is not a valid .npy file", problem);
}

Descr parse_descr(std::string_view d, std::string_view what) {
  Descr out;
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) {
    out.big_endian = d[0] == '>';
    d.remove_prefix(1);
  }
  if (d == "?") d = "b1";
  if (d.size() < 2) bad(what, "unsupported dtype descr '" + std::string(d) + "'");
  out.kind = d[0];
  size_t n = 0;
  for (char c : d.substr(1)) {
    if (c < '0' || c > '9' || n > 1'000'000) bad(what, "unsupported dtype descr '" + std::string(d) + "'");
    n = n * 10 + static_cast<size_t>(c - '0');
  }
  out.item = n;
  const auto pick = [&](DType t, size_t want) {
    if (n != want) bad(what, "unsupported dtype descr '" + std::string(d) + "'");
    out.dtype = t;
  };
  switch (out.kind) {
    case 'b': pick(DType::kBool, 1); break;
    case 'i': pick(n == 1 ? DType::kInt8 : n == 2 ? DType::kInt16 : n == 4 ? DType::kInt32 : DType::kInt64,
                   n == 1 || n == 2 || n == 4 ? n : 8); break;
    case 'u': pick(n == 1 ? DType::kUInt8 : n == 2 ? DType::kUInt16 : n == 4 ? DType::kUInt32 : DType::kUInt64,
                   n == 1 || n == 2 || n == 4 ? n : 8); break;
    case 'f': pick(n == 2 ? DType::kFloat16 : n == 4 ? DType::kFloat32 : DType::kFloat64, n == 2 || n == 4 ? n : 8);
      break;
    case 'U': out.dtype = DType::kString; out.item = n * 4; break;
    case 'S': out.dtype = DType::kString; break;
    case 'O': bad(what, "object arrays are Python pickles and are not supported");
    default: bad(what, "unsupported dtype descr '" + std::string(d) + "' (complex, datetime and void are not supported)");
  }
  // Zero-width strings would let a header declare any element count with no data behind
  // it (found by fuzzing); NumPy itself writes at least 'U1'/'S1'.
  if (out.dtype == DType::kString && n == 0) bad(what, "zero-width string dtype '" + std::string(d) + "'");
  return out;
}

// The value text after 'key': in the header dict, up to the next top-level ',' or '}'.
std::string_view dict_value(std::string_view header, std::string_view key, std::string_view what) {
  const std::string quoted = "'" + std::string(key) + "'";
  size_t p = header.find(quoted);
  if (p == std::string_view::npos) bad(what, "header has no '" + std::string(key) + "'");
  p = header.find(':', p + quoted.size());
  if (p == std::string_view::npos) bad(what, "malformed header");
  std::string_view rest = header.substr(p + 1);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  if (rest.empty()) bad(what, "malformed header");  // a key with no value: found by fuzzing
  const size_t end = rest.front() == '(' ? rest.find(')') + 1 : rest.find_first_of(",}");
  if (end == std::string_view::npos || end == 0) bad(what, "malformed header");
  return rest.substr(0, end);
}

Shape parse_shape(std::string_view t, std::string_view what) {
  if (t.size() < 2 || t.front() != '(' || t.back() != ')') bad(what, "malformed shape " + std::string(t));
  Shape shape;
  std::string inner(t.substr(1, t.size() - 2));
  std::replace(inner.begin(), inner.end(), ',', ' ');
  std::istringstream in(inner);
  std::string tok;
  while (in >> tok) {
    if (tok.find_first_not_of("0123456789") != std::string::npos || tok.size() > 18) {
      bad(what, "malformed shape " + std::string(t));
    }
    shape.push_back(std::stoll(tok));
  }
  return shape;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Decodes UTF-8, replacing invalid sequences with U+FFFD.
std::vector<uint32_t> utf8_to_utf32(std::string_view s) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1F) : len == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; ok && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    out.push_back(ok ? cp : 0xFFFD);
    i += ok ? len : 1;
  }
  return out;
}

uint32_t load_u32(const char* p, bool big_endian) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return big_endian ? __builtin_bswap32(v) : v;
}

std::string decode_string(const char* p, const Descr& d) {
  std::string s;
  if (d.kind == 'S') {
    s.assign(p, d.item);
    s.erase(s.find_last_not_of('\0') + 1);
    return s;
  }
  // NumPy drops trailing NULs only: one inside the string is part of it.
  size_t n = d.item / 4;
  while (n > 0 && load_u32(p + 4 * (n - 1), d.big_endian) == 0) --n;
  for (size_t k = 0; k < n; ++k) append_utf8(s, load_u32(p + 4 * k, d.big_endian));
  return s;
}

// True if `s` is UTF-8 that UTF-32 holds exactly (no invalid, overlong or surrogate
// sequences): such strings are written as '<U' (NumPy's str), others as '|S' (bytes).
bool fits_utf32(std::string_view s) {
  std::string again;
  for (const uint32_t cp : utf8_to_utf32(s)) append_utf8(again, cp);
  return again == s;
}

// Offset, in elements, of C-order element `i` in a Fortran-order array of `shape`.
size_t fortran_index(size_t i, const Shape& shape) {
  size_t off = 0, stride = 1;
  std::vector<size_t> idx(shape.size());
  for (size_t k = shape.size(); k-- > 0;) {
    idx[k] = i % static_cast<size_t>(shape[k]);
    i /= static_cast<size_t>(shape[k]);
  }
  for (size_t k = 0; k < shape.size(); ++k) {
    off += idx[k] * stride;
    stride *= static_cast<size_t>(shape[k]);
  }
  return off;
}

Tensor decode_body(std::string_view body, const Descr& d, Shape shape, bool fortran, std::string_view what) {
  size_t n = 0;
  try {
    n = byte_size(DType::kUInt8, shape);  // element count, overflow-checked
  } catch (const Error& e) {
    bad(what, e.message());
  }
  if (d.item != 0 && n > body.size() / d.item) bad(what, "data is truncated");
  if (body.size() != n * d.item) bad(what, "data has " + std::to_string(body.size()) + " bytes, expected " +
                                               std::to_string(n * d.item));
  const auto src = [&](size_t i) { return body.data() + (fortran ? fortran_index(i, shape) : i) * d.item; };
  if (d.dtype == DType::kString) {
    std::vector<std::string> values(n);
    for (size_t i = 0; i < n; ++i) values[i] = decode_string(src(i), d);
    return Tensor::from_strings(std::move(shape), std::move(values));
  }
  Tensor t = Tensor::zeros(d.dtype, shape);
  auto* dst = reinterpret_cast<char*>(t.mutable_bytes().data());
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(dst + i * d.item, src(i), d.item);
    if (d.big_endian) std::reverse(dst + i * d.item, dst + (i + 1) * d.item);
  }
  return t;
}

std::string descr_for(const Tensor& t, size_t* item) {
  switch (t.dtype()) {
    case DType::kFloat32: case DType::kBFloat16: *item = 4; return "<f4";
    case DType::kFloat64: *item = 8; return "<f8";
    case DType::kFloat16: *item = 2; return "<f2";
    case DType::kInt8: *item = 1; return "|i1";
    case DType::kInt16: *item = 2; return "<i2";
    case DType::kInt32: *item = 4; return "<i4";
    case DType::kInt64: *item = 8; return "<i8";
    case DType::kUInt8: *item = 1; return "|u1";
    case DType::kUInt16: *item = 2; return "<u2";
    case DType::kUInt32: *item = 4; return "<u4";
    case DType::kUInt64: *item = 8; return "<u8";
    case DType::kBool: *item = 1; return "|b1";
    case DType::kString: break;
  }
  const auto& strings = t.strings();
  size_t width = 1;
  if (!std::all_of(strings.begin(), strings.end(), fits_utf32)) {
    for (const auto& s : strings) width = std::max(width, s.size());
    *item = width;
    return "|S" + std::to_string(width);
  }
  for (const auto& s : strings) width = std::max(width, utf8_to_utf32(s).size());
  *item = width * 4;
  return "<U" + std::to_string(width);
}

// Python's repr of a shape tuple: "()", "(3,)", "(2, 3)".
std::string shape_tuple(const Shape& shape) {
  if (shape.size() == 1) return "(" + std::to_string(shape[0]) + ",)";
  std::string out = "(";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + ")";
}

std::string encode_body(const Tensor& t, std::string_view descr, size_t item) {
  if (t.dtype() == DType::kString) {
    std::string body(t.strings().size() * item, '\0');
    for (size_t i = 0; i < t.strings().size(); ++i) {
      const std::string& s = t.strings()[i];
      if (descr[1] == 'S') {
        s.copy(body.data() + i * item, s.size());
        continue;
      }
      const auto cps = utf8_to_utf32(s);
      if (!cps.empty()) std::memcpy(body.data() + i * item, cps.data(), cps.size() * 4);  // "" has no data()
    }
    return body;
  }
  if (t.dtype() == DType::kBFloat16) {  // widen: bfloat16 is the top half of a float32
    std::string body(static_cast<size_t>(t.element_count()) * 4, '\0');
    const auto* src = reinterpret_cast<const uint16_t*>(t.bytes().data());
    for (size_t i = 0; i < static_cast<size_t>(t.element_count()); ++i) {
      const uint32_t bits = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(body.data() + 4 * i, &bits, 4);
    }
    return body;
  }
  return {reinterpret_cast<const char*>(t.bytes().data()), t.bytes().size()};
}

}  // namespace

Tensor npy_parse(std::string_view bytes, std::string_view what) {
  if (bytes.size() < 10 || bytes.substr(0, 6) != kMagic) bad(what, "missing the \\x93NUMPY magic");
  const int major = static_cast<unsigned char>(bytes[6]);
  if (major < 1 || major > 3) bad(what, "unsupported format version " + std::to_string(major));
  size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  size_t start = 10;
  if (major >= 2) {
    if (bytes.size() < 12) bad(what, "truncated header");
    header_len = load_u32(bytes.data() + 8, false);
    start = 12;
  }
  if (bytes.size() - start < header_len) bad(what, "truncated header");
  const std::string_view header = bytes.substr(start, header_len);
  std::string_view descr = dict_value(header, "descr", what);
  if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"')) bad(what, "descr is not a string");
  const Descr d = parse_descr(descr.substr(1, descr.size() - 2), what);
  const std::string_view fortran = dict_value(header, "fortran_order", what);
  if (fortran != "True" && fortran != "False") bad(what, "fortran_order is neither True nor False");
  Shape shape = parse_shape(dict_value(header, "shape", what), what);
  return decode_body(bytes.substr(start + header_len), d, std::move(shape), fortran == "True", what);
}

std::string npy_serialize(const Tensor& tensor) {
  size_t item = 0;
  const std::string descr = descr_for(tensor, &item);
  std::string header = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape_tuple(tensor.shape()) + ", }";
  const bool v2 = header.size() + 11 > 65535;
  const size_t prefix = v2 ? 12 : 10;
  header.append(63 - (prefix + header.size()) % 64, ' ');
  header += '\n';
  std::string out(kMagic);
  out += static_cast<char>(v2 ? 2 : 1);
  out += '\0';
  const auto len = static_cast<uint32_t>(header.size());
  out.append(reinterpret_cast<const char*>(&len), v2 ? 4 : 2);
  return out + header + encode_body(tensor, descr, item);
}

Tensor npy_load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error::not_found("cannot open '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  return npy_parse(ss.str(), path);
}

void npy_save(const std::string& path, const Tensor& tensor) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  const std::string bytes = npy_serialize(tensor);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw Error::backend("cannot write '" + path + "'");
}

}  // namespace kapsl::cli
