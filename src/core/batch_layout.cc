#include "core/batch_layout.h"

#include <algorithm>

namespace kapsl::internal {

bool same_batch_layout(const InferenceRequest& a, const InferenceRequest& b) {
  if (a.inputs.size() != b.inputs.size() || a.output_names != b.output_names) return false;
  for (size_t i = 0; i < a.inputs.size(); ++i) {
    const Shape& x = a.inputs[i].tensor.shape();
    const Shape& y = b.inputs[i].tensor.shape();
    if (a.inputs[i].name != b.inputs[i].name || a.inputs[i].tensor.dtype() != b.inputs[i].tensor.dtype() || x.empty() ||
        x.size() != y.size() || !std::equal(x.begin() + 1, x.end(), y.begin() + 1)) {
      return false;
    }
  }
  return true;
}

}  // namespace kapsl::internal
