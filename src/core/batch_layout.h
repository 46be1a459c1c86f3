// Whether two requests can be joined along their first dimension: the test the dynamic
// batcher uses to group requests and OnnxEngine::infer_batch to run a group as one.
//
// Thread-safety: a pure function of its arguments.
#ifndef KAPSL_SRC_CORE_BATCH_LAYOUT_H_
#define KAPSL_SRC_CORE_BATCH_LAYOUT_H_

#include "kapsl/request.h"

namespace kapsl::internal {

// Same input names (in order), dtypes, ranks >= 1, every dimension but the first, and the
// same requested outputs.
bool same_batch_layout(const InferenceRequest& a, const InferenceRequest& b);

}  // namespace kapsl::internal

#endif  // KAPSL_SRC_CORE_BATCH_LAYOUT_H_
