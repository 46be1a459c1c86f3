// builtin_backends(): the registry every front end starts from.
#include "kapsl/backend.h"
#include "kapsl/gguf_engine.h"
#include "kapsl/onnx_engine.h"

namespace kapsl {

std::shared_ptr<BackendRegistry> builtin_backends() {
  auto registry = std::make_shared<BackendRegistry>();
  registry->add(onnx_backend());
  registry->add(gguf_backend());
  return registry;
}

}  // namespace kapsl
