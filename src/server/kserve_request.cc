// parse_infer_request: a KServe v2 request body in one streaming pass over its JSON
// (nlohmann's SAX interface), so that its cost is bounded by the body before any work:
//   - no recursion and at most kMaxDepth containers open at once, so nesting cannot exhaust
//     the stack (the old DOM flattening crashed at ~100,000 levels);
//   - tensor data goes straight into the tensor's buffer, typed, with no DOM: memory is
//     the tensor itself, allocated once when the datatype and shape are known and checked
//     against what the body can hold ("shape":[500000000] with one value fails at once);
//   - integers stay exact (int64 and uint64 never pass through double); floats out of
//     their datatype's range are refused, not turned into infinities;
//   - unknown fields are refused, as the protocol defines every field.
// Data that comes before its datatype is counted and checked, and filled by a second pass
// over the header (clients send datatype first; this only costs when they do not).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <variant>

#include <nlohmann/json.hpp>

#include "kapsl/error.h"
#include "server/kserve_tensors.h"

namespace kapsl::server {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxDepth = 40;       // root, inputs, an input, 32 levels of data, ...
constexpr size_t kMaxDataDepth = 32;   // nesting of one input's data arrays
constexpr size_t kMaxParameters = 64;  // keys of one parameters object
constexpr size_t kMaxInputs = 4096;    // inputs, and outputs, of one request

[[noreturn]] void bad(const std::string& where, const std::string& what) { throw Error::invalid_input(where, what); }

using Leaf = std::variant<int64_t, uint64_t, double, bool, std::string>;

std::string leaf_text(const Leaf& v) {
  std::string text = std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::string>) return "\"" + x.substr(0, 40) + "\"";
        else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        else return json(x).dump();
      },
      v);
  return text;
}

template <typename T>
T integer_leaf(const Leaf& v, const std::string& where) {
  if (const auto* s = std::get_if<int64_t>(&v)) {
    if constexpr (std::is_unsigned_v<T>) {
      if (*s >= 0 && static_cast<uint64_t>(*s) <= std::numeric_limits<T>::max()) return static_cast<T>(*s);
    } else if (*s >= std::numeric_limits<T>::min() && *s <= std::numeric_limits<T>::max()) {
      return static_cast<T>(*s);
    }
  } else if (const auto* u = std::get_if<uint64_t>(&v)) {
    if (*u <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(*u);
  } else {
    bad(where, "expected integer data but got " + leaf_text(v));
  }
  bad(where, "value " + leaf_text(v) + " is out of range for its datatype");
}

double float_leaf(const Leaf& v, const std::string& where, double limit) {
  double d = 0;
  if (const auto* s = std::get_if<int64_t>(&v)) d = static_cast<double>(*s);
  else if (const auto* u = std::get_if<uint64_t>(&v)) d = static_cast<double>(*u);
  else if (const auto* f = std::get_if<double>(&v)) d = *f;
  else bad(where, "expected numeric data but got " + leaf_text(v));
  if (!(std::abs(d) <= limit)) bad(where, "value " + leaf_text(v) + " is out of range for its datatype");
  return d;
}

// One input as it is read.
struct InputState {
  std::string name;
  std::optional<DType> dtype;
  std::optional<Shape> shape;
  std::optional<size_t> binary_size;
  json parameters = json::object();
  bool has_data = false;
  bool deferred = false;   // data came before the datatype: counted, filled by the second pass
  bool skip_data = false;  // second pass: this input is already filled
  uint64_t count = 0;      // data values read
  std::optional<Tensor> tensor;  // preallocated when datatype and shape preceded the data
  std::string bytes;             // otherwise: numeric values, growing
  size_t bytes_reserved = 0;     // of `bytes`, charged to the request's reserve hook
  std::vector<std::string> strings;

  std::string where() const { return "input '" + name + "'"; }
};

// Writes value number `index` of `in` (numeric datatypes) at `out`, checked.
void write_numeric(const InputState& in, const Leaf& v, std::byte* out) {
  const std::string where = in.where();
  const auto put = [out](auto x) { std::memcpy(out, &x, sizeof x); };
  switch (*in.dtype) {
    case DType::kFloat32: put(static_cast<float>(float_leaf(v, where, std::numeric_limits<float>::max()))); break;
    case DType::kFloat64: put(float_leaf(v, where, std::numeric_limits<double>::max())); break;
    case DType::kFloat16: put(float_to_fp16(static_cast<float>(float_leaf(v, where, 65504.0)))); break;
    case DType::kBFloat16: put(float_to_bf16(static_cast<float>(float_leaf(v, where, 3.3895313892515355e38)))); break;
    case DType::kInt8: put(integer_leaf<int8_t>(v, where)); break;
    case DType::kInt16: put(integer_leaf<int16_t>(v, where)); break;
    case DType::kInt32: put(integer_leaf<int32_t>(v, where)); break;
    case DType::kInt64: put(integer_leaf<int64_t>(v, where)); break;
    case DType::kUInt8: put(integer_leaf<uint8_t>(v, where)); break;
    case DType::kUInt16: put(integer_leaf<uint16_t>(v, where)); break;
    case DType::kUInt32: put(integer_leaf<uint32_t>(v, where)); break;
    case DType::kUInt64: put(integer_leaf<uint64_t>(v, where)); break;
    case DType::kBool: {
      const auto* b = std::get_if<bool>(&v);
      if (b == nullptr) bad(where, "expected true or false but got " + leaf_text(v));
      put(static_cast<uint8_t>(*b ? 1 : 0));
      break;
    }
    case DType::kString: break;  // not numeric
  }
}

class Reader final : public nlohmann::json_sax<json> {
 public:
  enum class Frame { kRoot, kRootParams, kInputs, kInput, kShape, kInputParams, kData, kOutputs, kOutput, kOutputParams };

  // `values_left`: the data values every input together may still store (what the header
  // can hold), shared by both passes; `reserve`: told of each typed allocation before it
  // is made. `second_pass`: only the inputs marked deferred are filled.
  Reader(KServeRequest& request, std::vector<InputState>& inputs, uint64_t& values_left, const ReserveBytes& reserve,
         bool second_pass)
      : request_(request), inputs_(inputs), values_left_(values_left), reserve_(reserve), second_pass_(second_pass) {}

  bool start_object(std::size_t) override {
    const Frame top = stack_.empty() ? Frame::kRoot : stack_.back().frame;
    if (stack_.empty()) return push(Frame::kRoot);
    if (top == Frame::kRoot && key_ == "parameters") return push(Frame::kRootParams);
    if (top == Frame::kInputs) return begin_input();
    if (top == Frame::kInput && key_ == "parameters") return push(Frame::kInputParams);
    if (top == Frame::kOutputs) return begin_output();
    if (top == Frame::kOutput && key_ == "parameters") return push(Frame::kOutputParams);
    unexpected("an object");
  }

  bool key(string_t& k) override {
    const Frame top = stack_.back().frame;
    static const std::vector<std::string> kRootKeys = {"id", "parameters", "inputs", "outputs"};
    static const std::vector<std::string> kInputKeys = {"name", "shape", "datatype", "parameters", "data"};
    static const std::vector<std::string> kOutputKeys = {"name", "parameters"};
    const std::vector<std::string>* known = top == Frame::kRoot     ? &kRootKeys
                                            : top == Frame::kInput  ? &kInputKeys
                                            : top == Frame::kOutput ? &kOutputKeys
                                                                    : nullptr;
    if (known != nullptr && std::find(known->begin(), known->end(), k) == known->end()) {
      bad(where(), "unknown field \"" + k.substr(0, 64) + "\"");
    }
    if (known == nullptr && ++stack_.back().keys > kMaxParameters) bad(where(), "more than 64 parameters");
    key_ = std::move(k);
    return true;
  }

  bool start_array(std::size_t) override {
    const Frame top = stack_.empty() ? Frame::kRoot : stack_.back().frame;
    if (top == Frame::kRoot && key_ == "inputs") return push(Frame::kInputs);
    if (top == Frame::kRoot && key_ == "outputs") return push(Frame::kOutputs);
    if (top == Frame::kInput && key_ == "shape") {
      if (!second_pass_) current().shape = Shape{};
      return push(Frame::kShape);
    }
    if (top == Frame::kInput && key_ == "data") return begin_data();
    if (top == Frame::kData) {
      if (++data_depth_ > kMaxDataDepth) bad(inputs_.back().where(), "data nested deeper than 32 levels");
      return push(Frame::kData);
    }
    unexpected("an array");
  }

  bool end_object() override {
    const Frame top = stack_.back().frame;
    stack_.pop_back();
    if (second_pass_) return true;
    if (top == Frame::kInput) end_input();
    if (top == Frame::kOutput && request_.output_names.back().empty()) bad("each output", "needs a string 'name'");
    return true;
  }

  bool end_array() override {
    if (stack_.back().frame == Frame::kData) --data_depth_;
    stack_.pop_back();
    return true;
  }

  bool null() override {
    if (!stack_.empty() && stack_.back().frame == Frame::kData) bad(where(), "null in data");
    return scalar(json(nullptr));
  }
  bool boolean(bool v) override { return value(Leaf(v), json(v)); }
  bool number_integer(number_integer_t v) override { return value(Leaf(int64_t{v}), json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return value(Leaf(uint64_t{v}), json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return value(Leaf(double{v}), json(v)); }
  bool string(string_t& v) override {
    if (!stack_.empty() && stack_.back().frame == Frame::kData) return data(Leaf(std::move(v)));
    return scalar(json(std::move(v)));
  }
  bool binary(binary_t&) override { unexpected("binary data"); }

  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception&) override {
    throw Error::invalid_input("the request body is not valid JSON", "syntax error at byte " + std::to_string(position));
  }

 private:
  struct Entry {
    Frame frame;
    size_t keys = 0;
  };

  bool push(Frame f) {
    if (stack_.size() >= kMaxDepth) bad("the request body", "JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
    stack_.push_back({f});
    key_.clear();
    return true;
  }

  [[noreturn]] void unexpected(const std::string& what) const { bad(where(), what + " is not allowed here"); }

  std::string where() const {
    if (stack_.empty()) return "the request body";
    switch (stack_.back().frame) {
      case Frame::kInput:
      case Frame::kShape:
      case Frame::kInputParams:
      case Frame::kData: return "input " + std::to_string(inputs_.size() - 1) + " ('" + inputs_.back().name + "')";
      case Frame::kOutput:
      case Frame::kOutputParams: return "output " + std::to_string(request_.output_names.size() - 1);
      case Frame::kRootParams: return "'parameters'";
      default: return "the request body";
    }
  }

  bool begin_input() {
    if (inputs_.size() >= kMaxInputs && !second_pass_) bad("'inputs'", "more than 4096 inputs");
    if (second_pass_) {
      inputs_[next_input_].skip_data = !inputs_[next_input_].deferred;
      inputs_[next_input_].count = 0;
      ++next_input_;
    } else {
      inputs_.emplace_back();
    }
    return push(Frame::kInput);
  }

  bool begin_output() {
    if (request_.output_names.size() >= kMaxInputs && !second_pass_) bad("'outputs'", "more than 4096 outputs");
    if (!second_pass_) request_.output_names.emplace_back();
    return push(Frame::kOutput);
  }

  InputState& current() { return second_pass_ ? inputs_[next_input_ - 1] : inputs_.back(); }

  bool begin_data() {
    InputState& in = current();
    data_depth_ = 1;
    if (in.has_data && !second_pass_) bad(in.where(), "has 'data' twice");
    in.has_data = true;
    if (in.skip_data) return push(Frame::kData);
    if (!in.dtype) {
      in.deferred = true;
      return push(Frame::kData);
    }
    if (in.shape && in.dtype != DType::kString) {
      const int64_t n = element_count(*in.shape);  // throws on overflow
      take_values(in, static_cast<uint64_t>(n), "shape " + shape_to_string(*in.shape) + " needs " + std::to_string(n) +
                                                    " elements");
      if (reserve_) reserve_(static_cast<size_t>(n) * dtype_size(*in.dtype));
      in.tensor = Tensor::zeros(*in.dtype, *in.shape);
    }
    return push(Frame::kData);
  }

  // Counts `n` values against what the whole request can hold, before they are stored.
  void take_values(const InputState& in, uint64_t n, const std::string& what) {
    if (n > values_left_) {
      bad(in.where(), what + ", but the request can hold at most " + std::to_string(values_left_) + " more");
    }
    values_left_ -= n;
  }

  bool data(Leaf v) {
    InputState& in = current();
    if (in.skip_data || (in.deferred && !second_pass_)) {
      ++in.count;
      return true;
    }
    if (*in.dtype == DType::kString) {
      auto* s = std::get_if<std::string>(&v);
      if (s == nullptr) bad(in.where(), "expected string data but got " + leaf_text(v));
      in.strings.push_back(std::move(*s));
    } else if (in.tensor) {
      if (static_cast<int64_t>(in.count) >= in.tensor->element_count()) {
        bad(in.where(), "shape " + shape_to_string(in.tensor->shape()) + " needs " +
                            std::to_string(in.tensor->element_count()) + " values but data has more");
      }
      write_numeric(in, v, in.tensor->mutable_bytes().data() + in.count * dtype_size(*in.dtype));
    } else {  // the shape comes later: grow, charging the reserve hook 64 KiB at a time
      take_values(in, 1, "data has more values");
      const size_t at = in.bytes.size();
      if (at + dtype_size(*in.dtype) > in.bytes_reserved) {
        if (reserve_) reserve_(kReserveStep);
        in.bytes_reserved += kReserveStep;
      }
      in.bytes.resize(at + dtype_size(*in.dtype));
      write_numeric(in, v, reinterpret_cast<std::byte*>(in.bytes.data() + at));
    }
    ++in.count;
    return true;
  }

  bool value(Leaf v, json j) {
    if (!stack_.empty() && stack_.back().frame == Frame::kData) return data(std::move(v));
    if (!stack_.empty() && stack_.back().frame == Frame::kShape) {
      if (second_pass_) return true;
      const int64_t* d = std::get_if<int64_t>(&v);
      const uint64_t* u = std::get_if<uint64_t>(&v);
      if (!(d && *d >= 0) && !(u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
        bad(where(), "'shape' must be an array of non-negative integers, got " + leaf_text(v));
      }
      current().shape->push_back(d ? *d : static_cast<int64_t>(*u));
      return true;
    }
    return scalar(std::move(j));
  }

  bool scalar(json v) {
    if (stack_.empty()) bad("the request body", "must be a JSON object");
    if (second_pass_) return true;  // the first pass took every scalar
    const Frame top = stack_.back().frame;
    if (top == Frame::kRootParams || top == Frame::kInputParams || top == Frame::kOutputParams) {
      json& params = top == Frame::kRootParams ? request_.parameters : parameters_of(top);
      params[key_] = std::move(v);
      return true;
    }
    if (!v.is_string()) bad(where(), "'" + key_ + "' must be a string");
    std::string s = v.get<std::string>();
    if (top == Frame::kRoot && key_ == "id") request_.id = std::move(s);
    else if (top == Frame::kInput && key_ == "name") inputs_.back().name = std::move(s);
    else if (top == Frame::kInput && key_ == "datatype") set_dtype(s);
    else if (top == Frame::kOutput && key_ == "name") request_.output_names.back() = std::move(s);
    else unexpected("a string");
    return true;
  }

  json& parameters_of(Frame top) {
    if (top == Frame::kInputParams) return current().parameters;
    return output_parameters_[request_.output_names.size() - 1];
  }

  void set_dtype(const std::string& s) {
    const auto dtype = dtype_from_kserve(s);
    if (!dtype) bad(where(), "unknown datatype '" + s.substr(0, 40) + "'");
    inputs_.back().dtype = dtype;
  }

  void end_input() {
    InputState& in = current();
    if (in.name.empty()) bad("each input", "must be an object with a string 'name'");
    if (!in.dtype) bad(in.where(), "'datatype' must be a string");
    if (!in.shape) bad(in.where(), "'shape' must be an array of non-negative integers");
    if (const auto it = in.parameters.find("binary_data_size"); it != in.parameters.end()) {
      if (!it->is_number_unsigned()) bad(in.where(), "'binary_data_size' must be a non-negative integer");
      in.binary_size = it->get<size_t>();
      in.parameters.erase(it);
    }
    if (in.binary_size && in.has_data) bad(in.where(), "has both 'data' and parameters.binary_data_size");
    if (!in.binary_size && !in.has_data) bad(in.where(), "has neither 'data' nor parameters.binary_data_size");
  }

 public:
  std::map<size_t, json> output_parameters_;

 private:
  static constexpr size_t kReserveStep = 64 << 10;

  KServeRequest& request_;
  std::vector<InputState>& inputs_;
  uint64_t& values_left_;
  const ReserveBytes& reserve_;
  const bool second_pass_;
  std::vector<Entry> stack_;
  std::string key_;
  size_t data_depth_ = 0;
  size_t next_input_ = 0;
};

// The finished tensor of a JSON-data input; the count must match the shape.
Tensor finish_data(InputState& in) {
  const int64_t expected = element_count(*in.shape);
  if (static_cast<int64_t>(in.count) != expected) {
    bad(in.where(), "shape " + shape_to_string(*in.shape) + " needs " + std::to_string(expected) +
                        " elements but data has " + std::to_string(in.count));
  }
  if (in.tensor) return std::move(*in.tensor);
  if (*in.dtype == DType::kString) return Tensor::from_strings(*in.shape, std::move(in.strings));
  Tensor t = Tensor::from_bytes(*in.dtype, *in.shape, std::as_bytes(std::span(in.bytes.data(), in.bytes.size())));
  std::string().swap(in.bytes);
  return t;
}

// The binary part: each input with binary_data_size takes its bytes, in input order.
Tensor from_binary(const InputState& in, std::string_view& binary) {
  const size_t size = *in.binary_size;
  if (size > binary.size()) bad(in.where(), "binary_data_size " + std::to_string(size) + " exceeds the binary data left");
  const std::string_view bytes = binary.substr(0, size);
  binary.remove_prefix(size);
  return tensor_from_raw(*in.dtype, *in.shape, bytes, in.where());
}

void apply_output_parameters(KServeRequest& request, const std::map<size_t, json>& parameters) {
  if (const auto it = request.parameters.find("binary_data_output"); it != request.parameters.end()) {
    if (!it->is_boolean()) bad("'parameters'", "'binary_data_output' must be true or false");
    request.all_binary = it->get<bool>();
    request.parameters.erase(it);
  }
  for (const auto& [index, params] : parameters) {
    for (const auto& [key, value] : params.items()) {
      if (key != "binary_data") bad("output " + std::to_string(index), "unknown parameter \"" + key + "\"");
      if (!value.is_boolean()) bad("output " + std::to_string(index), "'binary_data' must be true or false");
      if (value.get<bool>()) request.binary_outputs.insert(request.output_names[index]);
    }
  }
}

}  // namespace

KServeRequest parse_infer_request(std::string_view body, std::optional<size_t> header_length,
                                  const ReserveBytes& reserve) {
  if (header_length && *header_length > body.size()) {
    throw Error::invalid_input("Inference-Header-Content-Length " + std::to_string(*header_length) +
                               " exceeds the body of " + std::to_string(body.size()) + " bytes");
  }
  const std::string_view header = header_length ? body.substr(0, *header_length) : body;
  std::string_view binary = header_length ? body.substr(*header_length) : std::string_view{};
  KServeRequest request;
  request.parameters = json::object();
  std::vector<InputState> inputs;
  uint64_t values_left = header.size() / 2 + 1;  // a value and a comma each
  Reader first(request, inputs, values_left, reserve, false);
  if (!json::sax_parse(header, &first)) throw Error::invalid_input("the request body is not valid JSON");
  if (inputs.empty()) throw Error::invalid_input("'inputs' must be a non-empty array");
  if (std::any_of(inputs.begin(), inputs.end(), [](const InputState& in) { return in.deferred; })) {
    KServeRequest again;
    again.parameters = json::object();
    Reader second(again, inputs, values_left, reserve, true);
    json::sax_parse(header, &second);
  }
  apply_output_parameters(request, first.output_parameters_);
  for (InputState& in : inputs) {
    Tensor t = in.binary_size ? from_binary(in, binary) : finish_data(in);
    request.inputs.push_back({in.name, std::move(t)});
  }
  if (!binary.empty()) {
    throw Error::invalid_input(std::to_string(binary.size()) + " bytes of binary data are not claimed by any input");
  }
  return request;
}

}  // namespace kapsl::server
