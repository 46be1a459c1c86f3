#include "onnx/test_models.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

namespace kapsl::testing {

void set_type(::onnx::ValueInfoProto* v, int elem_type, const std::vector<int64_t>& dims) {
  auto* t = v->mutable_type()->mutable_tensor_type();
  t->set_elem_type(elem_type);
  auto* shape = t->mutable_shape();
  for (size_t i = 0; i < dims.size(); ++i) {
    auto* d = shape->add_dim();
    if (dims[i] >= 0) d->set_dim_value(dims[i]);
    else d->set_dim_param(i == 0 ? "N" : "d" + std::to_string(i));
  }
}

GraphBuilder::GraphBuilder(std::string name, int64_t opset) {
  model_.set_ir_version(8);
  model_.set_producer_name("kapsl-tests");
  auto* op = model_.add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  model_.mutable_graph()->set_name(std::move(name));
}

GraphBuilder& GraphBuilder::input(const std::string& name, int elem_type, const std::vector<int64_t>& dims) {
  auto* v = model_.mutable_graph()->add_input();
  v->set_name(name);
  set_type(v, elem_type, dims);
  return *this;
}

GraphBuilder& GraphBuilder::output(const std::string& name, int elem_type, const std::vector<int64_t>& dims) {
  auto* v = model_.mutable_graph()->add_output();
  v->set_name(name);
  set_type(v, elem_type, dims);
  return *this;
}

::onnx::NodeProto& GraphBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                    const std::vector<std::string>& outputs) {
  auto* n = model_.mutable_graph()->add_node();
  n->set_op_type(op);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return *n;
}

GraphBuilder& GraphBuilder::float_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                              const std::vector<float>& values) {
  auto* t = model_.mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(::onnx::TensorProto::FLOAT);
  for (auto d : dims) t->add_dims(d);
  t->set_raw_data(values.data(), values.size() * sizeof(float));
  return *this;
}

std::string GraphBuilder::serialize() const { return model_.SerializeAsString(); }

std::string add_model(const std::vector<int64_t>& dims) {
  GraphBuilder g("add");
  g.input("a", ::onnx::TensorProto::FLOAT, dims).input("b", ::onnx::TensorProto::FLOAT, dims);
  g.output("c", ::onnx::TensorProto::FLOAT, dims);
  g.node("Add", {"a", "b"}, {"c"});
  return g.serialize();
}

std::string matmul_relu_model(int64_t k) {
  GraphBuilder g("matmul_relu");
  std::mt19937 rng(42);
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  std::vector<float> w(static_cast<size_t>(k * k));
  for (auto& x : w) x = dist(rng);
  g.float_initializer("W", {k, k}, w);
  g.input("x", ::onnx::TensorProto::FLOAT, {-1, k}).output("y", ::onnx::TensorProto::FLOAT, {-1, k});
  g.node("MatMul", {"x", "W"}, {"xw"});
  g.node("Relu", {"xw"}, {"y"});
  return g.serialize();
}

std::string identity_model(int elem_type, const std::vector<int64_t>& dims) {
  GraphBuilder g("identity");
  g.input("x", elem_type, dims).output("y", elem_type, dims);
  g.node("Identity", {"x"}, {"y"});
  return g.serialize();
}

std::string embedding_lookup_model(int64_t vocab, int64_t dim) {
  GraphBuilder g("embedding_lookup");
  g.input("input_ids", ::onnx::TensorProto::INT64, {-1, -1}).input("attention_mask", ::onnx::TensorProto::INT64, {-1, -1});
  g.output("hidden", ::onnx::TensorProto::FLOAT, {-1, -1, dim});
  std::vector<float> table;
  for (int64_t i = 0; i < vocab; ++i) {
    for (int64_t j = 0; j < dim; ++j) table.push_back(static_cast<float>(i) + static_cast<float>(j) / 10.0f);
  }
  g.float_initializer("table", {vocab, dim}, table);
  g.node("Gather", {"table", "input_ids"}, {"hidden"});
  return g.serialize();
}

std::string two_output_model() {
  GraphBuilder g("two_outputs");
  g.input("x", ::onnx::TensorProto::FLOAT, {-1, 3});
  g.output("relu", ::onnx::TensorProto::FLOAT, {-1, 3}).output("neg", ::onnx::TensorProto::FLOAT, {-1, 3});
  g.node("Relu", {"x"}, {"relu"});
  g.node("Neg", {"x"}, {"neg"});
  return g.serialize();
}

std::string passthrough_model() {
  GraphBuilder g("passthrough");
  g.input("x", ::onnx::TensorProto::FLOAT, {-1, 3});
  g.output("x", ::onnx::TensorProto::FLOAT, {-1, 3}).output("relu", ::onnx::TensorProto::FLOAT, {-1, 3});
  g.node("Relu", {"x"}, {"relu"});
  return g.serialize();
}

std::string loop_model() {
  GraphBuilder g("loop");
  auto* graph = g.model().mutable_graph();
  auto* c = graph->add_initializer();
  c->set_name("cond");
  c->set_data_type(::onnx::TensorProto::BOOL);
  c->add_int32_data(1);
  g.input("trip", ::onnx::TensorProto::INT64, {}).input("x", ::onnx::TensorProto::FLOAT, {1});
  g.output("y", ::onnx::TensorProto::FLOAT, {1});
  auto& loop = g.node("Loop", {"trip", "cond", "x"}, {"y"});
  auto* attr = loop.add_attribute();
  attr->set_name("body");
  attr->set_type(::onnx::AttributeProto::GRAPH);
  auto* body = attr->mutable_g();
  body->set_name("body");
  set_type(body->add_input(), ::onnx::TensorProto::INT64, {});
  body->mutable_input(0)->set_name("i");
  set_type(body->add_input(), ::onnx::TensorProto::BOOL, {});
  body->mutable_input(1)->set_name("c_in");
  set_type(body->add_input(), ::onnx::TensorProto::FLOAT, {1});
  body->mutable_input(2)->set_name("x_in");
  set_type(body->add_output(), ::onnx::TensorProto::BOOL, {});
  body->mutable_output(0)->set_name("c_out");
  set_type(body->add_output(), ::onnx::TensorProto::FLOAT, {1});
  body->mutable_output(1)->set_name("x_out");
  auto* id = body->add_node();
  id->set_op_type("Identity");
  id->add_input("c_in");
  id->add_output("c_out");
  auto* neg = body->add_node();  // Neg twice keeps x bounded while still doing work
  neg->set_op_type("Neg");
  neg->add_input("x_in");
  neg->add_output("x_out");
  return g.serialize();
}

std::string llm_inputs_model() {
  GraphBuilder g("llm_inputs");
  g.input("input_ids", ::onnx::TensorProto::INT64, {-1, -1});
  g.input("attention_mask", ::onnx::TensorProto::INT64, {-1, -1});
  g.input("position_ids", ::onnx::TensorProto::INT64, {-1, -1});
  g.input("past_key_values.0.key", ::onnx::TensorProto::FLOAT, {-1, 2, -1, 8});
  g.output("mask_out", ::onnx::TensorProto::INT64, {-1, -1});
  g.output("pos_out", ::onnx::TensorProto::INT64, {-1, -1});
  g.output("past_out", ::onnx::TensorProto::FLOAT, {-1, 2, -1, 8});
  g.node("Identity", {"attention_mask"}, {"mask_out"});
  g.node("Identity", {"position_ids"}, {"pos_out"});
  g.node("Identity", {"past_key_values.0.key"}, {"past_out"});
  return g.serialize();
}

::onnx::ModelProto external_data_model(int64_t k, const std::string& data_file) {
  GraphBuilder g("external");
  auto* w = g.model().mutable_graph()->add_initializer();
  w->set_name("W");
  w->set_data_type(::onnx::TensorProto::FLOAT);
  w->add_dims(k);
  w->add_dims(k);
  w->set_data_location(::onnx::TensorProto::EXTERNAL);
  auto* loc = w->add_external_data();
  loc->set_key("location");
  loc->set_value(data_file);
  g.input("x", ::onnx::TensorProto::FLOAT, {1, k}).output("y", ::onnx::TensorProto::FLOAT, {1, k});
  g.node("MatMul", {"x", "W"}, {"y"});
  return g.model();
}

std::string write_file(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw std::runtime_error("cannot write " + path);
  return path;
}

std::string test_data_path(const std::string& name) {
  const char* root = std::getenv("KAPSL_TEST_DATA");
  return std::string(root ? root : "/tmp/kapsl-test-data") + "/onnx/" + name;
}

}  // namespace kapsl::testing
