// OnnxEngine against the raw ONNX Runtime C++ API on the same models, same thread settings,
// interleaved rounds, medians, on models built at run time (Add, MatMul+Relu), generated
// (the BERT-style encoder) and, where npm is reachable, PaddleOCR PP-OCRv4 recognition and
// detection (scripts/fetch-bench-models). Prints p50/p99 per call for both, the overhead
// and the ratio, then two-thread throughput on one engine, then the thread-default
// measurements.
//
//   kapsl_onnx_bench [--quick]
//   kapsl_onnx_bench --profile ours|raw [add|matmul]   (20,000 calls of one side, for
//                                                       perf/callgrind)
#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kapsl/onnx_engine.h"
#include "onnx/test_models.h"

namespace {

using Clock = std::chrono::steady_clock;
using kapsl::InferenceRequest;
using kapsl::OnnxEngine;
using kapsl::Tensor;

double percentile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[static_cast<size_t>(q * static_cast<double>(v.size() - 1))];
}

// Raw ONNX Runtime as a careful client would use it: one session, 1 intra-op thread,
// inputs wrapped over caller buffers without a copy, outputs allocated by ORT.
class RawOrt {
 public:
  RawOrt(Ort::Env& env, const std::string& path, const InferenceRequest& request, int threads)
      : session_(nullptr), mem_(Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault)), request_(request) {
    Ort::SessionOptions so;
    so.SetIntraOpNumThreads(threads).SetInterOpNumThreads(1).SetGraphOptimizationLevel(ORT_ENABLE_ALL);
    session_ = Ort::Session(env, path.c_str(), so);
    for (const auto& in : request_.inputs) in_names_.push_back(in.name.c_str());
    Ort::AllocatorWithDefaultOptions alloc;
    for (size_t i = 0; i < session_.GetOutputCount(); ++i) out_storage_.push_back(session_.GetOutputNameAllocated(i, alloc).get());
    for (const auto& n : out_storage_) out_names_.push_back(n.c_str());
  }
  float run() {
    std::vector<Ort::Value> values;
    values.reserve(request_.inputs.size());
    for (const auto& in : request_.inputs) {
      const Tensor& t = in.tensor;
      values.push_back(Ort::Value::CreateTensor(mem_, const_cast<std::byte*>(t.bytes().data()), t.byte_size(),
                                                t.shape().data(), t.shape().size(),
                                                t.dtype() == kapsl::DType::kInt64 ? ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64
                                                                                  : ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT));
    }
    auto out = session_.Run(Ort::RunOptions{nullptr}, in_names_.data(), values.data(), values.size(), out_names_.data(),
                            out_names_.size());
    return out[0].GetTensorData<float>()[0];
  }

 private:
  Ort::Session session_;
  Ort::MemoryInfo mem_;
  const InferenceRequest& request_;
  std::vector<const char*> in_names_;
  std::vector<std::string> out_storage_;
  std::vector<const char*> out_names_;
};

struct Stats {
  double p50_us, p99_us;
};

struct Comparison {
  Stats a, b;
  double paired_ratio;     // median over rounds of (b's round p50 / a's round p50)
  double paired_overhead;  // median over rounds of (b's round p50 - a's round p50), µs
};

double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

// Interleaved rounds of n calls each; per-call stats of a and b over all rounds, and the
// paired per-round estimates, which cancel the host's drift between rounds.
Comparison compare(const std::function<void()>& a, const std::function<void()>& b, int rounds, int n) {
  std::vector<double> ta, tb, ratios, overheads;
  for (int i = 0; i < n; ++i) { a(); b(); }  // warm both
  for (int r = 0; r < rounds; ++r) {
    std::vector<double> round_a, round_b;
    for (int side = 0; side < 2; ++side) {
      const bool first = (side == 0) == (r % 2 == 0);
      auto& fn = first ? a : b;
      auto& out = first ? round_a : round_b;
      for (int i = 0; i < n; ++i) {
        const auto t0 = Clock::now();
        fn();
        out.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      }
    }
    const double ma = median(round_a), mb = median(round_b);
    ratios.push_back(mb / ma);
    overheads.push_back(mb - ma);
    ta.insert(ta.end(), round_a.begin(), round_a.end());
    tb.insert(tb.end(), round_b.begin(), round_b.end());
  }
  return {{percentile(ta, 0.5), percentile(ta, 0.99)}, {percentile(tb, 0.5), percentile(tb, 0.99)}, median(ratios),
          median(overheads)};
}

volatile float g_sink;

void bench_model(Ort::Env& env, const std::string& name, const std::string& path, const InferenceRequest& request,
                 int rounds, int n, const kapsl::OnnxOptions& options = {}) {
  RawOrt raw(env, path, request, 1);
  auto engine = OnnxEngine::load(path, options);
  const Comparison c = compare([&] { g_sink = raw.run(); },
                                [&] { g_sink = engine->infer(request).outputs[0].tensor.data<float>()[0]; }, rounds, n);
  const Stats& r = c.a;
  const Stats& e = c.b;
  std::printf("| %-28s | %9.2f | %9.2f | %9.2f | %9.2f | %+8.2f | %6.3f | %+8.2f | %6.3f |\n", name.c_str(), r.p50_us,
              e.p50_us, r.p99_us, e.p99_us, e.p50_us - r.p50_us, e.p50_us / r.p50_us, c.paired_overhead,
              c.paired_ratio);
}

// Calls per second of `threads` threads each making `n` calls of fn.
double throughput(const std::function<void()>& fn, int threads, int n) {
  const auto t0 = Clock::now();
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&] { for (int i = 0; i < n; ++i) fn(); });
  for (auto& th : pool) th.join();
  return threads * n / std::chrono::duration<double>(Clock::now() - t0).count();
}

InferenceRequest encoder_request(int64_t seq) {
  std::mt19937 rng(7);
  std::vector<int64_t> ids(static_cast<size_t>(seq)), pos(static_cast<size_t>(seq)), mask(static_cast<size_t>(seq), 1);
  for (int64_t i = 0; i < seq; ++i) {
    ids[static_cast<size_t>(i)] = static_cast<int64_t>(rng() % 30522);
    pos[static_cast<size_t>(i)] = i;
  }
  InferenceRequest r;
  r.add_input("input_ids", Tensor::from_vector<int64_t>({1, seq}, ids));
  r.add_input("position_ids", Tensor::from_vector<int64_t>({1, seq}, pos));
  r.add_input("attention_mask", Tensor::from_vector<int64_t>({1, seq}, mask));
  return r;
}

std::string encoder_path() {
  const std::string path = std::string(KAPSL_BENCH_DATA) + "/encoder.onnx";
  if (!std::filesystem::exists(path)) {
    std::filesystem::create_directories(KAPSL_BENCH_DATA);
    const std::string cmd = std::string("/usr/bin/python3 ") + KAPSL_ENCODER_SCRIPT + " " + path + " >/dev/null";
    if (std::system(cmd.c_str()) != 0) return "";
  }
  return path;
}

// The npm models' folder (scripts/fetch-bench-models fetches them once), or "" if they
// cannot be had (no network): the benchmark then runs without them.
std::string npm_models_dir() {
  const std::string cmd = std::string(KAPSL_FETCH_MODELS_SCRIPT) + " 2>&1";
  FILE* out = popen(cmd.c_str(), "r");
  if (out == nullptr) return "";
  char line[4096] = {};
  std::string last;
  while (std::fgets(line, sizeof line, out) != nullptr) last = line;
  if (pclose(out) != 0) {
    std::fprintf(stderr, "kapsl_onnx_bench: no npm models: %s", last.c_str());
    return "";
  }
  while (!last.empty() && last.back() == '\n') last.pop_back();
  return last;
}

InferenceRequest vec_request(std::vector<std::pair<std::string, kapsl::Shape>> inputs) {
  InferenceRequest r;
  for (auto& [name, shape] : inputs) {
    std::vector<float> v(static_cast<size_t>(kapsl::element_count(shape)));
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 7) * 0.1f;
    r.add_input(name, Tensor::from_vector<float>(shape, v));
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const int scale = quick ? 5 : 1;
  const std::string dir = std::string(KAPSL_BENCH_DATA) + "/";
  std::filesystem::create_directories(dir);
  const std::string add = kapsl::testing::write_file(dir + "add.onnx", kapsl::testing::add_model({1, 4}));
  const std::string mm = kapsl::testing::write_file(dir + "matmul_relu_256.onnx", kapsl::testing::matmul_relu_model(256));
  // kapsl makes the process's ORT environment (with the shared pool) first; the raw
  // sessions below get the same environment and their own per-session threads.
  OnnxEngine::load(add);
  Ort::Env env(ORT_LOGGING_LEVEL_WARNING, "bench");
  const InferenceRequest add_req = vec_request({{"a", {1, 4}}, {"b", {1, 4}}});
  const InferenceRequest mm_req = vec_request({{"x", {1, 256}}});
  if (argc > 2 && std::string(argv[1]) == "--profile") {  // for perf/callgrind: one side only
    const bool matmul = argc > 3 && std::string(argv[3]) == "matmul";
    const InferenceRequest& req = matmul ? mm_req : add_req;
    RawOrt raw(env, matmul ? mm : add, req, 1);
    auto engine = OnnxEngine::load(matmul ? mm : add);
    const bool ours = std::string(argv[2]) == "ours";
    for (int i = 0; i < 20000; ++i) {
      g_sink = ours ? engine->infer(req).outputs[0].tensor.data<float>()[0] : raw.run();
    }
    return 0;
  }
  const char* shared_env = std::getenv("KAPSL_ORT_SHARED_THREADS");
  std::printf("ONNX Runtime %s, %u hardware threads, shared pool %d thread(s) per run by default%s%s\n\n",
              OnnxEngine::runtime_version().c_str(), std::thread::hardware_concurrency(),
              OnnxEngine::default_shared_intra_op_threads(), shared_env ? ", KAPSL_ORT_SHARED_THREADS=" : "",
              shared_env ? shared_env : "");
  std::printf("| model                        | raw p50 µs | ours p50 µs | raw p99 µs | ours p99 µs | overhead µs | ratio "
              "| paired overhead µs | paired ratio |\n");
  std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  bench_model(env, "Add [1,4]", add, add_req, 20, 4000 / scale);
  bench_model(env, "MatMul+Relu [1,256]x[256,256]", mm, mm_req, 20, 2000 / scale);
  kapsl::OnnxOptions own_pool;
  own_pool.intra_op_threads = 1;
  bench_model(env, "MatMul+Relu 256, own pool", mm, mm_req, 20, 2000 / scale, own_pool);
  const std::string enc = encoder_path();
  const InferenceRequest enc_req = encoder_request(128);
  if (!enc.empty()) bench_model(env, "BERT-style encoder 1x128", enc, enc_req, 10, 20 / scale + 1);
  if (const std::string npm = npm_models_dir(); !npm.empty()) {
    bench_model(env, "PP-OCRv4 rec 1x3x48x320", npm + "/ch_PP-OCRv4_rec_infer.onnx", vec_request({{"x", {1, 3, 48, 320}}}),
                10, 10 / scale + 1);
    bench_model(env, "PP-OCRv4 det 1x3x640x640", npm + "/ch_PP-OCRv4_det_infer.onnx",
                vec_request({{"x", {1, 3, 640, 640}}}), 6, 3);
  }

  std::printf("\nTwo threads on one engine / one raw session (1 intra-op thread each) vs one thread, calls/s "
              "(median of 5 interleaved repetitions; scaling = median of each repetition's ratio):\n");
  std::printf("| model | raw 1 thread | raw 2 threads | raw scaling | ours 1 thread | ours 2 threads | ours scaling |\n"
              "|---|---:|---:|---:|---:|---:|---:|\n");
  const auto scaling = [&](const char* name, const std::string& path, const InferenceRequest& req, int n,
                           const kapsl::OnnxOptions& options) {
    RawOrt raw(env, path, req, 1);
    auto engine = OnnxEngine::load(path, options);
    const auto raw_fn = [&] { g_sink = raw.run(); };
    const auto ours_fn = [&] { g_sink = engine->infer(req).outputs[0].tensor.data<float>()[0]; };
    // Interleaved repetitions; the scaling is the median of each repetition's own ratio.
    std::vector<double> r1, r2, o1, o2, raw_scaling, ours_scaling;
    for (int rep = 0; rep < 5; ++rep) {
      r1.push_back(throughput(raw_fn, 1, n));
      r2.push_back(throughput(raw_fn, 2, n / 2));
      o1.push_back(throughput(ours_fn, 1, n));
      o2.push_back(throughput(ours_fn, 2, n / 2));
      raw_scaling.push_back(r2.back() / r1.back());
      ours_scaling.push_back(o2.back() / o1.back());
    }
    std::printf("| %s | %.1f | %.1f | %.2fx | %.1f | %.1f | %.2fx |\n", name, median(r1), median(r2),
                median(raw_scaling), median(o1), median(o2), median(ours_scaling));
  };
  scaling("MatMul+Relu 256", mm, mm_req, 40000 / scale, {});
  scaling("MatMul+Relu 256, own pool", mm, mm_req, 40000 / scale, own_pool);
  if (!enc.empty()) {
    scaling("BERT-style encoder 1x128", enc, enc_req, 100 / scale, {});
    scaling("BERT-style encoder 1x128, own pool", enc, enc_req, 100 / scale, own_pool);
  }

  std::printf("\nThread default: one engine, one caller, intra-op threads (p50 / p99 µs):\n");
  std::printf("| model | shared pool (default) | own pool, 2 threads | own pool, 0 = all cores |\n|---|---:|---:|---:|\n");
  struct Variant { std::string name; std::string path; const InferenceRequest* req; int n; };
  std::vector<Variant> variants = {{"Add [1,4]", add, &add_req, 4000 / scale}, {"MatMul+Relu 256", mm, &mm_req, 2000 / scale}};
  if (!enc.empty()) variants.push_back({"BERT-style encoder 1x128", enc, &enc_req, 20 / scale + 1});
  for (const auto& v : variants) {
    kapsl::OnnxOptions two_threads, all_cores;
    two_threads.intra_op_threads = 2;
    all_cores.intra_op_threads = 0;
    auto a = OnnxEngine::load(v.path), b = OnnxEngine::load(v.path, two_threads), c = OnnxEngine::load(v.path, all_cores);
    const Comparison ab = compare([&] { a->infer(*v.req); }, [&] { b->infer(*v.req); }, 10, v.n);
    const Comparison ca = compare([&] { c->infer(*v.req); }, [&] { a->infer(*v.req); }, 10, v.n);
    const Stats &sa = ab.a, &sb = ab.b, &sc = ca.a;
    std::printf("| %s | %.1f / %.1f | %.1f / %.1f | %.1f / %.1f |\n", v.name.c_str(), sa.p50_us, sa.p99_us, sb.p50_us,
                sb.p99_us, sc.p50_us, sc.p99_us);
  }
  return 0;
}
