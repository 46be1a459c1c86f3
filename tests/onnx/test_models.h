// Small ONNX models for the ONNX tests and benchmarks, built with onnx_proto at run time
// (never committed).
//
// Thread-safety: not thread-safe: one thread at a time (GraphBuilder); the free functions are
// safe for concurrent use without external synchronization.
#ifndef KAPSL_TESTS_ONNX_TEST_MODELS_H_
#define KAPSL_TESTS_ONNX_TEST_MODELS_H_

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kapsl::testing {

// Dims: >= 0 fixed, -1 a symbolic dim ("N" for dim 0, "d<i>" otherwise).
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string name, int64_t opset = 17);
  GraphBuilder& input(const std::string& name, int elem_type, const std::vector<int64_t>& dims);
  GraphBuilder& output(const std::string& name, int elem_type, const std::vector<int64_t>& dims);
  ::onnx::NodeProto& node(const std::string& op, const std::vector<std::string>& inputs,
                        const std::vector<std::string>& outputs);
  GraphBuilder& float_initializer(const std::string& name, const std::vector<int64_t>& dims,
                                  const std::vector<float>& values);
  ::onnx::ModelProto& model() { return model_; }
  std::string serialize() const;

 private:
  ::onnx::ModelProto model_;
};

void set_type(::onnx::ValueInfoProto* v, int elem_type, const std::vector<int64_t>& dims);

// c = a + b, float, both of shape `dims`.
std::string add_model(const std::vector<int64_t>& dims);
// y = Relu(x @ W), x [N, k], W [k, k] random but fixed.
std::string matmul_relu_model(int64_t k);
// y = Identity(x) for ONNX element type `elem_type`, x of shape `dims`.
std::string identity_model(int elem_type, const std::vector<int64_t>& dims);
// A sentence encoder's shape with no encoder: hidden [N, S, dim] = table[input_ids], where
// table[i][j] = i + j / 10; attention_mask int64 [N, S] is declared and unused.
std::string embedding_lookup_model(int64_t vocab, int64_t dim);
// relu = Relu(x), neg = Neg(x), x float [N, 3].
std::string two_output_model();
// Outputs x itself (a graph output that is a graph input) and relu = Relu(x), x float [N, 3].
std::string passthrough_model();
// y = Neg applied `trip` times to x (trip int64 scalar, x float [1]). With a trip of 2^62
// it never ends unless terminated.
std::string loop_model();
// input_ids, attention_mask, position_ids int64 [B, S], past_key_values.0.key float
// [B, 2, P, 8]; outputs mask_out, pos_out, past_out: Identity of the last three.
std::string llm_inputs_model();
// y = x @ W with W (k x k floats, W[i][j] = i + j) stored in `data_file` beside the model.
::onnx::ModelProto external_data_model(int64_t k, const std::string& data_file);
// Writes `bytes` to `path` (creating directories). Returns path.
std::string write_file(const std::string& path, const std::string& bytes);
// $KAPSL_TEST_DATA/onnx/<name>, or /tmp/kapsl-test-data/onnx/<name>.
std::string test_data_path(const std::string& name);

}  // namespace kapsl::testing

#endif  // KAPSL_TESTS_ONNX_TEST_MODELS_H_
