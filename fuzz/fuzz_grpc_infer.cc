// KServe v2 gRPC ModelInferRequest messages (proto/grpc_predict_v2.proto) as the gRPC
// endpoint gets them once gRPC has parsed the bytes: inputs from typed or raw contents,
// then the response built back from them, both forms.
#include <cstddef>
#include <cstdint>

#include "fuzz_util.h"
#include "server/grpc_tensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  inference::ModelInferRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  kapsl::fuzz::expect_clean([&] {
    const auto inputs = kapsl::server::inputs_from_grpc(request);
    for (const bool raw : {false, true}) {
      inference::ModelInferResponse response;
      kapsl::server::outputs_to_grpc(inputs, raw, response);
      response.SerializeAsString();
    }
  });
  return 0;
}
