// A program that creates its own Ort::Env before its first OnnxEngine: ONNX Runtime hands
// kapsl that environment (one per process), which has no shared thread pool. Engines must
// still load and run. A separate binary, because the environment is process-wide.
#include <gtest/gtest.h>
#include <onnxruntime_cxx_api.h>

#include "kapsl/onnx_engine.h"
#include "onnx/test_models.h"

namespace kapsl {
namespace {

TEST(OnnxEnvironment, EnginesWorkWhenTheProgramCreatedTheOrtEnvFirst) {
  Ort::Env own(ORT_LOGGING_LEVEL_WARNING, "program");
  const std::string model = testing::add_model({1, 4});
  for (int i = 0; i < 2; ++i) {  // the second load takes the remembered fallback directly
    auto engine = OnnxEngine::load_from_memory(std::as_bytes(std::span(model.data(), model.size())));
    InferenceRequest r;
    r.add_input("a", Tensor::from_vector<float>({1, 4}, {1, 2, 3, 4}));
    r.add_input("b", Tensor::from_vector<float>({1, 4}, {1, 1, 1, 1}));
    EXPECT_EQ(engine->infer(r).outputs.at(0).tensor, Tensor::from_vector<float>({1, 4}, {2, 3, 4, 5}));
  }
}

}  // namespace
}  // namespace kapsl
