// OnnxEngine: loading, the run path and the Engine methods.
#include "kapsl/onnx_engine.h"

#include <algorithm>
#include <atomic>
#include <string_view>
#include <filesystem>
#include <system_error>
#include <utility>

#include "onnx/engine_impl.h"
#include "onnx/options.h"
#include "onnx/ort_env.h"
#include "onnx/ort_error.h"
#include "onnx/providers.h"
#include "onnx/run_watcher.h"

namespace kapsl {
namespace {

using onnx::Phase;
using onnx::ort_call;

// The error for a run stopped by its requests' tokens or deadlines, if one of them is.
std::optional<Error> stopped_error(std::span<const InferenceRequest> requests) {
  for (const auto& r : requests) {
    if (r.cancel.is_cancelled()) return Error::cancelled("request '" + r.request_id + "' was cancelled");
  }
  for (const auto& r : requests) {
    if (r.expired()) return Error::timeout("request '" + r.request_id + "' passed its deadline");
  }
  return std::nullopt;
}

double seconds(Clock::time_point from, Clock::time_point to) { return std::chrono::duration<double>(to - from).count(); }

ComputeTiming timing_of(const InferenceRequest& request, Clock::time_point started, Clock::time_point bound,
                        Clock::time_point ran, Clock::time_point converted) {
  ComputeTiming t;
  t.input_s = seconds(started, bound);
  t.infer_s = seconds(bound, ran);
  t.output_s = seconds(ran, converted);
  const Tensor* first = request.inputs.empty() ? nullptr : &request.inputs[0].tensor;
  t.batch_rows = first != nullptr && !first->shape().empty() ? first->shape()[0] : 0;
  return t;
}

void check_file(const std::string& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    throw Error::model_load("cannot load ONNX model '" + path + "'", "no such file");
  }
  if (std::filesystem::is_directory(status)) {
    throw Error::model_load("cannot load ONNX model '" + path + "'", "it is a directory, expected a .onnx file");
  }
}

Ort::SessionOptions session_options(const OnnxOptions& resolved) {
  Ort::SessionOptions so = onnx::make_session_options(resolved);
  onnx::register_provider(so, resolved);
  return so;
}

// ONNX Runtime keeps one environment per process. If the program made its own Ort::Env
// before kapsl did, ort_env() is that one, without global thread pools, and a session that
// disables its own threads fails; such sessions then get their own pool of the same size.
std::atomic<bool> g_env_has_global_pools{true};

bool no_global_pools(const Ort::Exception& e) {
  return std::string_view(e.what()).find("EnvCreatedWithGlobalThreadPools") != std::string_view::npos;
}

// Creates the session with make(session_options), for `resolved` options.
template <typename Make>
Ort::Session create_session(const OnnxOptions& resolved, const std::string& path, Make&& make) {
  const std::string context = "cannot load ONNX model '" + path + "'";
  OnnxOptions own_pool = resolved;
  own_pool.intra_op_threads = onnx::shared_pool_threads();
  const bool shared = !resolved.intra_op_threads;
  // A shared pool of one thread is every run on its caller's thread. A session's own
  // setting of one thread is the same and starts no thread either, but skips the global
  // pool's dispatch (0.4 µs per MatMul+Relu 256 run in one A/B, docs/benchmarks-onnx.md).
  if (shared && (onnx::shared_pool_threads() == 1 || !g_env_has_global_pools.load())) {
    Ort::SessionOptions so = session_options(own_pool);
    return ort_call(Phase::kLoad, context, [&] { return make(so); });
  }
  Ort::SessionOptions so = session_options(resolved);
  try {
    return make(so);
  } catch (const Ort::Exception& e) {
    if (!shared || !no_global_pools(e)) throw onnx::translate(e, Phase::kLoad, context);
  }
  g_env_has_global_pools.store(false);
  Ort::SessionOptions fallback = session_options(own_pool);
  return ort_call(Phase::kLoad, context, [&] { return make(fallback); });
}

}  // namespace

namespace onnx {

// A run's per-thread state, reused by the thread's next run so that a call allocates only
// what it returns. A Run blocks its thread, so no two runs share one. `run` is the
// RunOptions the RunWatcher may terminate (the Watch clears a flag it set); creating one
// per call costs an allocation.
struct ThreadRunState {
  Ort::RunOptions run;
  onnx::BoundInputs in;
  std::vector<Ort::Value> outputs;

  static ThreadRunState& of_this_thread();

  // Releases the inputs' and outputs' values at the end of a run, whatever its outcome:
  // the inputs borrow the request's bytes.
  class Release {
   public:
    explicit Release(ThreadRunState& s) : s_(s) {}
    Release(const Release&) = delete;
    Release& operator=(const Release&) = delete;
    ~Release() {
      s_.in.clear();
      s_.outputs.clear();
    }

   private:
    ThreadRunState& s_;
  };
};

ThreadRunState& ThreadRunState::of_this_thread() {
  thread_local ThreadRunState state;
  return state;
}

}  // namespace onnx

OnnxEngine::Impl::Impl(OnnxOptions options, Ort::Session session, std::string path, uint64_t model_bytes)
    : options_(std::move(options)), model_bytes_(model_bytes), session_(std::move(session)) {
  ort_call(Phase::kLoad, "cannot read the metadata of ONNX model '" + path + "'", [&] {
    inputs_ = onnx::read_inputs(session_);
    outputs_ = onnx::read_outputs(session_);
    fill_info(path);
  });
  for (const auto& o : outputs_) all_output_names_.push_back(o.name.c_str());
}

void OnnxEngine::Impl::fill_info(const std::string& path) {
  info_.backend = "onnx";
  info_.path = path == "<memory>" ? "" : path;
  info_.provider = options_.provider;
  info_.file_bytes = model_bytes_;
  for (const auto& s : inputs_) info_.inputs.push_back(onnx::to_tensor_info(s));
  for (const auto& s : outputs_) info_.outputs.push_back(onnx::to_tensor_info(s));
  Ort::AllocatorWithDefaultOptions alloc;
  const Ort::ModelMetadata meta = session_.GetModelMetadata();
  info_.name = meta.GetGraphNameAllocated(alloc).get();
  if (!info_.path.empty()) info_.name = std::filesystem::path(path).stem().string();
  info_.version = std::to_string(meta.GetVersion());
  info_.metadata["producer_name"] = meta.GetProducerNameAllocated(alloc).get();
  info_.metadata["graph_name"] = meta.GetGraphNameAllocated(alloc).get();
  info_.metadata["domain"] = meta.GetDomainAllocated(alloc).get();
  info_.metadata["description"] = meta.GetDescriptionAllocated(alloc).get();
  info_.metadata["onnxruntime_version"] = Ort::GetVersionString();
  for (const auto& key : meta.GetCustomMetadataMapKeysAllocated(alloc)) {
    info_.metadata[key.get()] = meta.LookupCustomMetadataMapAllocated(key.get(), alloc).get();
  }
  // Threads a run uses: the engine's own pool, or the shared one (0 = ONNX Runtime's choice).
  info_.metadata["threads"] = std::to_string(options_.intra_op_threads.value_or(onnx::shared_pool_threads()));
}

void OnnxEngine::Impl::run_session(onnx::ThreadRunState& state, const std::vector<const char*>& output_names,
                                   std::span<const InferenceRequest> watched) {
  onnx::RunWatcher::Watch watch(state.run, watched);
  state.outputs.resize(output_names.size());
  try {
    session_.Run(state.run, state.in.names.data(), state.in.values.data(), state.in.values.size(),
                 output_names.data(), state.outputs.data(), output_names.size());
  } catch (const Ort::Exception& e) {
    if (auto stopped = stopped_error(watched)) throw *stopped;
    throw onnx::translate(e, Phase::kRun, "running ONNX model '" + info_.name + "' failed");
  }
}

InferenceResult OnnxEngine::Impl::run(const InferenceRequest& request, std::span<const InferenceRequest> watched) {
  if (auto stopped = stopped_error(watched)) throw *stopped;
  onnx::ThreadRunState& state = onnx::ThreadRunState::of_this_thread();
  onnx::ThreadRunState::Release release(state);
  const auto started = Clock::now();
  try {
    onnx::bind_inputs(inputs_, request, options_.auto_fill_llm_inputs, state.in);
    std::vector<size_t> selected;
    const std::vector<const char*>* names = &all_output_names_;
    std::vector<const char*> requested;
    if (!request.output_names.empty()) {
      selected = onnx::select_outputs(outputs_, request.output_names);
      std::sort(selected.begin(), selected.end());  // results come in the model's output order
      for (size_t i : selected) requested.push_back(outputs_[i].name.c_str());
      names = &requested;
    }
    const auto bound = Clock::now();
    run_session(state, *names, watched);
    const auto ran = Clock::now();
    InferenceResult result;
    result.outputs.reserve(state.outputs.size());
    for (size_t i = 0; i < state.outputs.size(); ++i) {
      onnx::append_output((*names)[i], std::move(state.outputs[i]), state.in, result.outputs);
    }
    result.timing = timing_of(request, started, bound, ran, Clock::now());
    return result;
  } catch (const Ort::Exception& e) {  // the message is built only on failure: run() is the hot path
    throw onnx::translate(e, Phase::kRun, "running ONNX model '" + info_.name + "' failed");
  }
}

InferenceResult OnnxEngine::Impl::infer_counted(const InferenceRequest& request) {
  auto scope = counters_.begin();
  try {
    InferenceResult result = run(request, {&request, 1});
    scope.succeed();
    return result;
  } catch (const Error& e) {
    scope.fail(e.code());
    throw;
  }
}

std::unique_ptr<OnnxEngine> OnnxEngine::load(const std::string& path, const OnnxOptions& options) {
  OnnxOptions resolved = onnx::resolve_options(options);
  session_options(resolved);  // option and provider errors come before file errors
  check_file(path);
  std::error_code ec;
  const auto bytes = std::filesystem::file_size(path, ec);
  Ort::Session session = create_session(resolved, path, [&](const Ort::SessionOptions& so) {
    return Ort::Session(onnx::ort_env(), path.c_str(), so);
  });
  auto impl = std::make_unique<Impl>(std::move(resolved), std::move(session), path, ec ? 0 : bytes);
  return std::make_unique<OnnxEngine>(ConstructionKey{}, std::move(impl));
}

std::unique_ptr<OnnxEngine> OnnxEngine::load_from_memory(std::span<const std::byte> model, const OnnxOptions& options) {
  OnnxOptions resolved = onnx::resolve_options(options);
  session_options(resolved);  // option and provider errors come before model errors
  if (model.empty()) throw Error::model_load("cannot load ONNX model '<memory>'", "the buffer is empty");
  Ort::Session session = create_session(resolved, "<memory>", [&](const Ort::SessionOptions& so) {
    return Ort::Session(onnx::ort_env(), model.data(), model.size(), so);
  });
  auto impl = std::make_unique<Impl>(std::move(resolved), std::move(session), "<memory>", model.size());
  return std::make_unique<OnnxEngine>(ConstructionKey{}, std::move(impl));
}

std::vector<std::string> OnnxEngine::available_providers() { return onnx::available_providers(); }

std::string OnnxEngine::runtime_version() { return Ort::GetVersionString(); }

OnnxEngine::OnnxEngine(ConstructionKey /*key*/, std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

OnnxEngine::~OnnxEngine() = default;

InferenceResult OnnxEngine::infer(const InferenceRequest& request) { return impl_->infer_counted(request); }

void OnnxEngine::warmup() {
  const InferenceRequest request = onnx::synthesize_request(impl_->inputs());
  impl_->run(request, {&request, 1});
}

EngineMetrics OnnxEngine::metrics() const {
  EngineMetrics m = impl_->counters_.snapshot();
  m.resident_bytes = resident_bytes();
  return m;
}

const ModelInfo& OnnxEngine::model_info() const { return impl_->info_; }

Health OnnxEngine::health_check() const { return Health{}; }  // a loaded session stays usable

uint64_t OnnxEngine::resident_bytes() const { return impl_->model_bytes_; }

const OnnxOptions& OnnxEngine::options() const noexcept { return impl_->options_; }

}  // namespace kapsl
