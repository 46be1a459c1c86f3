// DynamicBatcher: a queue of waiting requests, execution threads that take compatible
// ones together, and the inner engine's infer_batch that runs them as one.
#include "kapsl/dynamic_batcher.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <utility>

#include "core/batch_layout.h"
#include "core/mutex.h"

namespace kapsl {
namespace {

using internal::CondVar;
using internal::Mutex;
using internal::MutexLock;

// How often a queued caller looks at its cancellation token, which has no callback.
constexpr auto kCancelPoll = std::chrono::milliseconds(5);

double seconds(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); }

// The rows a request adds to a batch: the first dimension its inputs share, or 0 if it
// cannot join one (no inputs, a scalar, differing first dimensions, an empty batch).
int64_t rows_of(const InferenceRequest& r) {
  if (r.inputs.empty()) return 0;
  int64_t rows = -1;
  for (const auto& in : r.inputs) {
    const Shape& shape = in.tensor.shape();
    if (shape.empty() || (rows >= 0 && shape[0] != rows)) return 0;
    rows = shape[0];
  }
  return rows;
}

void release_nothing(void*) noexcept {}

// The request with its numeric inputs borrowed, not copied: the caller waits for the
// execution, so the bytes outlive it. Strings (and empty tensors) are copied.
InferenceRequest borrowed(const InferenceRequest& r) {
  InferenceRequest out;
  out.inputs.reserve(r.inputs.size());
  for (const auto& in : r.inputs) {
    const Tensor& t = in.tensor;
    if (t.dtype() == DType::kString || t.byte_size() == 0) {
      out.inputs.push_back(in);
      continue;
    }
    auto bytes = t.bytes();
    std::span<std::byte> data(const_cast<std::byte*>(bytes.data()), bytes.size());  // only read
    out.inputs.push_back({in.name, Tensor::adopt(t.dtype(), t.shape(), data, release_nothing, nullptr)});
  }
  out.output_names = r.output_names;
  out.request_id = r.request_id;
  out.deadline = r.deadline;
  out.cancel = r.cancel;
  out.generation = r.generation;
  return out;
}

std::string describe_refusal(const char* role, const TensorInfo& t) {
  const std::string what = std::string(role) + " '" + t.name + "'";
  if (!t.is_tensor) return what + " is not a tensor";
  if (t.shape.empty()) return what + " is a scalar or of unknown rank";
  if (t.shape[0] != -1) return what + " has shape " + shape_to_string(t.shape) + ": its first dimension is fixed";
  return "";
}

}  // namespace

std::string batching_refusal(Engine& engine) {
  if (engine.text_generator() != nullptr) return "a text generator batches its own tokens (slots)";
  const ModelInfo& info = engine.model_info();
  if (info.inputs.empty()) return "the model declares no inputs";
  for (const auto& t : info.inputs) {
    if (std::string why = describe_refusal("input", t); !why.empty()) return why;
  }
  for (const auto& t : info.outputs) {
    if (std::string why = describe_refusal("output", t); !why.empty()) return why;
  }
  return "";
}

class DynamicBatcher::Impl {
 public:
  Impl(std::shared_ptr<Engine> inner, const DynamicBatchingOptions& options)
      : inner_(std::move(inner)), options_(options), idle_(options.instances) {
    for (uint32_t i = 0; i < options_.instances; ++i) threads_.emplace_back([this] { execute_loop(); });
  }

  ~Impl() {
    {
      MutexLock lock(&mu_);
      stopping_ = true;
      for (Pending* p : queue_) p->wake.notify_one();
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
  }

  InferenceResult infer(const InferenceRequest& request);

  uint64_t queued() const {
    MutexLock lock(&mu_);
    return queue_.size();
  }

  const std::shared_ptr<Engine> inner_;
  const DynamicBatchingOptions options_;

 private:
  enum class State { kQueued, kRunning, kDone };

  // One waiting call; lives on its caller's stack, which waits until it is kDone or has
  // taken it off the queue itself.
  struct Pending {
    Pending(const InferenceRequest* r, int64_t n) : request(r), rows(n), enqueued(Clock::now()) {}
    const InferenceRequest* request;
    int64_t rows;
    Clock::time_point enqueued;
    State state = State::kQueued;
    CondVar wake;
    std::optional<InferenceResult> result;
    std::optional<Error> error;
  };

  // The requests an execution would take now, and whether it should start now.
  struct Selection {
    std::vector<size_t> positions;  // in queue_
    bool start = false;
    Clock::time_point wait_until;  // when start is false
  };

  Selection select(Clock::time_point now) const REQUIRES(mu_);
  // The most rows the next execution takes: max_batch_size, or with balance_instances and
  // other instances idle, the rows of the requests that `joins` shared among the idle ones.
  template <typename Joins>
  int64_t row_limit(const Joins& joins) const REQUIRES(mu_);
  bool preferred(int64_t rows) const;
  void execute_loop();
  void execute(const std::vector<Pending*>& batch);
  InferenceResult wait(Pending& p) REQUIRES(mu_);
  [[noreturn]] void leave_queue(Pending& p, Error error) REQUIRES(mu_);

  mutable Mutex mu_;
  CondVar work_;  // the queue grew, or stopping_
  std::deque<Pending*> queue_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  uint32_t idle_ GUARDED_BY(mu_);  // execution threads not running an execution
  std::vector<std::thread> threads_;
};

bool DynamicBatcher::Impl::preferred(int64_t rows) const {
  const auto& sizes = options_.preferred_batch_sizes;
  return std::find(sizes.begin(), sizes.end(), static_cast<uint64_t>(rows)) != sizes.end();
}

DynamicBatcher::Impl::Selection DynamicBatcher::Impl::select(Clock::time_point now) const {
  Selection s;
  const Pending* head = queue_.front();
  const auto joins = [&](const Pending* p) {  // a stopped request is left for its caller to remove
    const InferenceRequest& r = *p->request;
    return !r.cancel.is_cancelled() && !r.expired(now) && internal::same_batch_layout(*head->request, r);
  };
  const int64_t limit = row_limit(joins);
  int64_t rows = 0;
  size_t preferred_count = 0;  // the longest prefix of positions whose rows are preferred
  bool full = false;           // no later compatible request fits
  for (size_t i = 0; i < queue_.size() && !full; ++i) {
    const Pending* p = queue_[i];
    if (!joins(p)) continue;
    full = rows + p->rows > limit;
    if (full) break;
    rows += p->rows;
    s.positions.push_back(i);
    if (preferred(rows)) preferred_count = s.positions.size();
    full = rows >= limit;
  }
  s.wait_until = head->enqueued + options_.max_queue_delay;
  if (full) {
    s.start = true;
  } else if (preferred_count > 0) {
    s.positions.resize(preferred_count);
    s.start = true;
  } else {
    s.start = now >= s.wait_until;
  }
  s.start = s.start && !s.positions.empty();
  return s;
}

template <typename Joins>
int64_t DynamicBatcher::Impl::row_limit(const Joins& joins) const {
  const int64_t max = options_.max_batch_size;
  if (!options_.balance_instances || idle_ <= 1) return max;
  int64_t waiting = 0;
  for (const Pending* p : queue_) {
    if (joins(p)) waiting += p->rows;
  }
  const int64_t share = (waiting + idle_ - 1) / idle_;  // rounded up: the first takes the odd row
  return std::clamp<int64_t>(share, 1, max);
}

void DynamicBatcher::Impl::execute_loop() {
  MutexLock lock(&mu_);
  for (;;) {
    while (!stopping_ && queue_.empty()) work_.wait(&mu_);
    if (stopping_) return;
    const Selection s = select(Clock::now());
    if (!s.start) {
      work_.wait_until(&mu_, std::min(s.wait_until, Clock::now() + kCancelPoll));
      continue;
    }
    std::vector<Pending*> batch;
    for (size_t pos : s.positions) batch.push_back(queue_[pos]);
    for (size_t k = s.positions.size(); k-- > 0;) queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(s.positions[k]));
    for (Pending* p : batch) p->state = State::kRunning;
    if (!queue_.empty()) work_.notify_one();  // another thread may start the rest
    --idle_;
    lock.unlock();
    execute(batch);
    lock.lock();
    ++idle_;
    for (Pending* p : batch) {
      p->state = State::kDone;
      p->wake.notify_one();
    }
  }
}

// Runs the batch without the lock; fills each Pending's result or error.
void DynamicBatcher::Impl::execute(const std::vector<Pending*>& batch) {
  const auto started = Clock::now();
  std::vector<InferenceRequest> requests;
  requests.reserve(batch.size());
  int64_t rows = 0;
  for (const Pending* p : batch) {
    requests.push_back(borrowed(*p->request));
    rows += p->rows;
  }
  std::vector<BatchItemResult> items;
  try {
    items = inner_->infer_batch(requests);
  } catch (const Error& e) {
    items.assign(batch.size(), BatchItemResult{std::nullopt, e});
  } catch (const std::exception& e) {
    items.assign(batch.size(), BatchItemResult{std::nullopt, Error::inference("the batch failed", e.what())});
  }
  bool counted = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    Pending& p = *batch[i];
    if (i >= items.size() || !items[i].ok()) {
      p.error = i < items.size() && items[i].error ? *items[i].error : Error::inference("the batch returned no result");
      continue;
    }
    p.result = std::move(*items[i].result);
    if (!p.result->timing) {  // an inner engine that does not measure: the batch is one execution
      p.result->timing = ComputeTiming{};
      p.result->timing->batch_requests = static_cast<uint32_t>(batch.size());
      p.result->timing->batch_rows = rows;
      p.result->timing->counts_execution = !counted;
      counted = true;
    }
    p.result->timing->queue_s = seconds(p.enqueued, started);
  }
}

[[noreturn]] void DynamicBatcher::Impl::leave_queue(Pending& p, Error error) {
  queue_.erase(std::find(queue_.begin(), queue_.end(), &p));
  throw error;
}

InferenceResult DynamicBatcher::Impl::wait(Pending& p) {
  const InferenceRequest& r = *p.request;
  const auto timeout_at = options_.queue_timeout.count() > 0 ? p.enqueued + options_.queue_timeout : Clock::time_point::max();
  while (p.state == State::kQueued) {
    const auto now = Clock::now();
    if (stopping_) leave_queue(p, Error::unavailable("the model is being unloaded", "the request was still queued"));
    if (r.cancel.is_cancelled()) leave_queue(p, Error::cancelled("request '" + r.request_id + "' was cancelled"));
    if (r.expired(now)) leave_queue(p, Error::timeout("request '" + r.request_id + "' passed its deadline in the batch queue"));
    if (now >= timeout_at) {
      leave_queue(p, Error::timeout("request '" + r.request_id + "' waited longer than the batch queue timeout",
                                    std::to_string(options_.queue_timeout.count()) + " ms"));
    }
    p.wake.wait_until(&mu_, std::min({timeout_at, r.deadline.value_or(Clock::time_point::max()), now + kCancelPoll}));
  }
  while (p.state != State::kDone) p.wake.wait(&mu_);
  if (p.error) throw *p.error;
  return std::move(*p.result);
}

InferenceResult DynamicBatcher::Impl::infer(const InferenceRequest& request) {
  const int64_t rows = rows_of(request);
  if (rows <= 0 || rows > options_.max_batch_size) return inner_->infer(request);  // runs alone
  Pending p(&request, rows);
  MutexLock lock(&mu_);
  if (stopping_) throw Error::unavailable("the model is being unloaded");
  if (queue_.size() >= options_.max_queue) {
    throw Error::overloaded("the batch queue is full", std::to_string(queue_.size()) + " requests are waiting");
  }
  queue_.push_back(&p);
  work_.notify_one();
  return wait(p);
}

DynamicBatcher::DynamicBatcher(std::shared_ptr<Engine> inner, const DynamicBatchingOptions& options) {
  if (!inner) throw Error::invalid_input("dynamic batching", "no engine to batch");
  if (options.max_batch_size < 1 || options.instances < 1 || options.max_queue < 1) {
    throw Error::invalid_input("dynamic batching", "max_batch_size, instances and max_queue must be at least 1");
  }
  for (uint32_t size : options.preferred_batch_sizes) {
    if (size < 1 || size > options.max_batch_size) {
      throw Error::invalid_input("dynamic batching", "preferred batch size " + std::to_string(size) +
                                                         " is not within 1.." + std::to_string(options.max_batch_size));
    }
  }
  if (std::string why = batching_refusal(*inner); !why.empty()) {
    throw Error::invalid_input("model '" + inner->model_info().name + "' cannot be batched dynamically", why);
  }
  impl_ = std::make_unique<Impl>(std::move(inner), options);
}

DynamicBatcher::~DynamicBatcher() = default;

InferenceResult DynamicBatcher::infer(const InferenceRequest& request) { return impl_->infer(request); }

std::vector<BatchItemResult> DynamicBatcher::infer_batch(std::span<const InferenceRequest> requests) {
  return impl_->inner_->infer_batch(requests);
}

void DynamicBatcher::warmup() { impl_->inner_->warmup(); }

EngineMetrics DynamicBatcher::metrics() const {
  EngineMetrics m = impl_->inner_->metrics();
  m.queued += impl_->queued();
  return m;
}

const ModelInfo& DynamicBatcher::model_info() const { return impl_->inner_->model_info(); }
Health DynamicBatcher::health_check() const { return impl_->inner_->health_check(); }
uint64_t DynamicBatcher::resident_bytes() const { return impl_->inner_->resident_bytes(); }
TextGenerator* DynamicBatcher::text_generator() noexcept { return impl_->inner_->text_generator(); }
Embedder* DynamicBatcher::embedder() noexcept { return impl_->inner_->embedder(); }
Reranker* DynamicBatcher::reranker() noexcept { return impl_->inner_->reranker(); }
const DynamicBatchingOptions& DynamicBatcher::options() const noexcept { return impl_->options_; }

}  // namespace kapsl
