// infer_batch: one ONNX Runtime run for requests that differ only in dim 0, else one each.
#include <cstring>
#include <utility>

#include "core/batch_layout.h"
#include "kapsl/onnx_engine.h"
#include "onnx/engine_impl.h"

namespace kapsl {
namespace {

bool dynamic_dim0(const std::vector<onnx::IoSpec>& specs) {
  for (const auto& s : specs) {
    if (s.kind != ONNX_TYPE_TENSOR || s.shape.empty() || s.shape[0] >= 0) return false;
  }
  return true;
}

Tensor concat_dim0(std::span<const InferenceRequest> requests, size_t input) {
  const Tensor& first = requests[0].inputs[input].tensor;
  Shape shape = first.shape();
  shape[0] = 0;
  for (const auto& r : requests) shape[0] += r.inputs[input].tensor.shape()[0];
  Tensor out = Tensor::zeros(first.dtype(), shape);
  size_t offset = 0;
  for (const auto& r : requests) {
    const Tensor& t = r.inputs[input].tensor;
    if (t.dtype() == DType::kString) {
      std::copy(t.strings().begin(), t.strings().end(), out.mutable_strings().begin() + static_cast<long>(offset));
      offset += t.strings().size();
    } else if (t.byte_size() > 0) {
      std::memcpy(out.mutable_bytes().data() + offset, t.bytes().data(), t.byte_size());
      offset += t.byte_size();
    }
  }
  return out;
}

// Rows [begin, begin + count) of dim 0 of `t`.
Tensor slice_dim0(const Tensor& t, int64_t begin, int64_t count) {
  Shape shape = t.shape();
  const int64_t rows = shape[0];
  shape[0] = count;
  const auto per_row = static_cast<size_t>(rows == 0 ? 0 : t.element_count() / rows);
  const auto first = static_cast<size_t>(begin) * per_row;
  const auto n = static_cast<size_t>(count) * per_row;
  if (t.dtype() == DType::kString) {
    return Tensor::from_strings(std::move(shape), {t.strings().begin() + static_cast<long>(first),
                                                   t.strings().begin() + static_cast<long>(first + n)});
  }
  const size_t size = dtype_size(t.dtype());
  return Tensor::from_bytes(t.dtype(), std::move(shape), t.bytes().subspan(first * size, n * size));
}

// Splits the joint result into one per request, or nullopt if an output's dim 0 is not
// the joint batch (the model's dim 0 was dynamic but not a batch dimension).
std::optional<std::vector<InferenceResult>> split(const InferenceResult& joint, std::span<const InferenceRequest> requests,
                                                  int64_t total) {
  for (const auto& o : joint.outputs) {
    if (o.tensor.shape().empty() || o.tensor.shape()[0] != total) return std::nullopt;
  }
  std::vector<InferenceResult> parts(requests.size());
  int64_t begin = 0;
  for (size_t i = 0; i < requests.size(); ++i) {
    const int64_t rows = requests[i].inputs[0].tensor.shape()[0];
    for (const auto& o : joint.outputs) parts[i].outputs.push_back({o.name, slice_dim0(o.tensor, begin, rows)});
    begin += rows;
  }
  return parts;
}

}  // namespace

std::vector<BatchItemResult> OnnxEngine::infer_batch(std::span<const InferenceRequest> requests) {
  std::vector<BatchItemResult> items(requests.size());
  bool batchable = requests.size() > 1 && !requests[0].inputs.empty() && dynamic_dim0(impl_->inputs()) &&
                   dynamic_dim0(impl_->outputs());
  for (size_t i = 1; batchable && i < requests.size(); ++i) batchable = internal::same_batch_layout(requests[0], requests[i]);
  if (batchable) {
    try {
      const auto started = Clock::now();
      InferenceRequest joint;
      joint.output_names = requests[0].output_names;
      int64_t total = 0;
      for (const auto& r : requests) total += r.inputs[0].tensor.shape()[0];
      for (size_t k = 0; k < requests[0].inputs.size(); ++k) {
        joint.add_input(requests[0].inputs[k].name, concat_dim0(requests, k));
      }
      auto scope = impl_->counters_.begin();
      const auto joined = Clock::now();
      const InferenceResult result = impl_->run(joint, requests);
      const auto ran = Clock::now();
      auto parts = split(result, requests, total);
      if (parts) {
        scope.succeed();
        ComputeTiming timing = *result.timing;
        timing.input_s += std::chrono::duration<double>(joined - started).count();
        timing.output_s += std::chrono::duration<double>(Clock::now() - ran).count();
        timing.batch_requests = static_cast<uint32_t>(requests.size());
        for (size_t i = 0; i < requests.size(); ++i) {
          items[i].result = std::move((*parts)[i]);
          items[i].result->timing = timing;
          timing.counts_execution = false;  // the first item counts the execution
        }
        return items;
      }
      scope.succeed();  // the run was fine; only its outputs are not per-row
    } catch (const Error&) {
      // Fall through: run each request alone so that each gets its own result or error.
    }
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    try {
      items[i].result = infer(requests[i]);
    } catch (const Error& e) {
      items[i].error = e;
    }
  }
  return items;
}

}  // namespace kapsl
