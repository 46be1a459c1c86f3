// GgufEngine::load: options checked, file validated, model loaded, slots created, facts
// gathered. Each step throws kapsl::Error and leaves nothing behind.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "ggml.h"
#include "gguf/engine_impl.h"
#include "gguf/gguf_validate.h"
#include "gguf/rpc_client.h"
#include "gguf/llama_backend.h"
#include "kapsl/error.h"
#include "llama.h"

namespace kapsl::gguf {

// Also used by gguf_engine.cc.
std::string pooling_name(enum llama_pooling_type type);

// Counts /proc/cpuinfo's (physical id, core id) pairs: hyper-threads slow llama.cpp down
// rather than help.
int32_t physical_cores() {
  std::ifstream in("/proc/cpuinfo");
  std::set<std::pair<std::string, std::string>> cores;
  std::string line, physical = "0";
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (line.rfind("physical id", 0) == 0) physical = value;
    if (line.rfind("core id", 0) == 0) cores.insert({physical, value});
  }
  if (!cores.empty()) return static_cast<int32_t>(cores.size());
  return static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
}

namespace {

constexpr uint32_t kDefaultMaxCtx = 4096;
// Sequences per batch in embeddings mode (the context's n_seq_max).
constexpr uint32_t kEmbeddingSeqs = 16;

Error bad_option(const std::string& field, const std::string& expected, const std::string& got) {
  return Error::invalid_input("invalid GgufOptions." + field, "expected " + expected + ", got " + got);
}

ggml_type parse_kv_type(const std::string& name) {
  static const std::pair<const char*, ggml_type> kTypes[] = {
      {"f32", GGML_TYPE_F32},   {"f16", GGML_TYPE_F16},   {"bf16", GGML_TYPE_BF16}, {"q8_0", GGML_TYPE_Q8_0},
      {"q4_0", GGML_TYPE_Q4_0}, {"q4_1", GGML_TYPE_Q4_1}, {"q5_0", GGML_TYPE_Q5_0}, {"q5_1", GGML_TYPE_Q5_1}};
  for (const auto& [n, t] : kTypes) {
    if (name == n) return t;
  }
  throw bad_option("kv_cache_type", "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0 or q5_1", "\"" + name + "\"");
}

llama_flash_attn_type parse_flash_attention(const std::string& value) {
  if (value == "auto") return LLAMA_FLASH_ATTN_TYPE_AUTO;
  if (value == "on") return LLAMA_FLASH_ATTN_TYPE_ENABLED;
  if (value == "off") return LLAMA_FLASH_ATTN_TYPE_DISABLED;
  throw bad_option("flash_attention", "\"auto\", \"on\" or \"off\"", "\"" + value + "\"");
}

void validate_options(const GgufOptions& o) {
  if (o.n_parallel < 1 || o.n_parallel > 256) throw bad_option("n_parallel", "1..256", std::to_string(o.n_parallel));
  if (o.n_batch < 1) throw bad_option("n_batch", ">= 1", std::to_string(o.n_batch));
  if (o.n_ubatch < 1 || o.n_ubatch > o.n_batch) {
    throw bad_option("n_ubatch", "1..n_batch (" + std::to_string(o.n_batch) + ")", std::to_string(o.n_ubatch));
  }
  if (!o.embeddings && o.n_parallel > o.n_batch) {
    // Each decode carries one token of every generating slot; more slots than n_batch
    // would leave the highest ones waiting for ever.
    throw bad_option("n_parallel", "<= n_batch (" + std::to_string(o.n_batch) + ")", std::to_string(o.n_parallel));
  }
  if (o.n_threads < 0) throw bad_option("n_threads", ">= 0 (0 = physical cores)", std::to_string(o.n_threads));
  if (o.device_id < 0) throw bad_option("device_id", ">= 0", std::to_string(o.device_id));
  if (o.rpc_timeout_ms < 1) throw bad_option("rpc_timeout_ms", ">= 1", "0");
  const ggml_type v_type = parse_kv_type(o.kv_cache_type);
  if (parse_flash_attention(o.flash_attention) == LLAMA_FLASH_ATTN_TYPE_DISABLED && ggml_is_quantized(v_type)) {
    throw bad_option("kv_cache_type", "f32, f16 or bf16 when flash_attention is \"off\" (llama.cpp needs flash "
                     "attention for a quantized V cache)", "\"" + o.kv_cache_type + "\"");
  }
}

struct ProgressState {
  const std::function<bool(float)>* fn;
  bool aborted = false;
};

// Called by llama.cpp during load; the user's callback must not unwind through C.
bool on_progress(float progress, void* data) noexcept {
  auto* state = static_cast<ProgressState*>(data);
  try {
    state->aborted = !(*state->fn)(progress);
  } catch (...) {
    state->aborted = true;
  }
  return !state->aborted;
}

// The devices a model's offloaded layers go to, in llama.cpp's order, and their shares.
struct DevicePlan {
  std::vector<ggml_backend_dev_t> devices;  // RPC workers' devices, then the provider's GPU
  std::vector<std::string> names, hosts;    // per device: ggml's name, the worker ("" = here)
  std::vector<float> shares;                // per device: its part of the offloaded layers
};

std::vector<float> device_shares(const GgufOptions& o, const std::vector<ggml_backend_dev_t>& devices) {
  if (!o.tensor_split.empty()) {
    const bool valid = o.tensor_split.size() == devices.size() &&
                       std::all_of(o.tensor_split.begin(), o.tensor_split.end(), [](float x) { return x >= 0; }) &&
                       std::any_of(o.tensor_split.begin(), o.tensor_split.end(), [](float x) { return x > 0; });
    if (!valid) {
      throw bad_option("tensor_split", std::to_string(devices.size()) + " shares >= 0, one of them > 0 (one per "
                       "device: the RPC workers' devices, then the GPU)", std::to_string(o.tensor_split.size()) +
                       " values");
    }
    return o.tensor_split;
  }
  // As llama.cpp: by free memory, the host's for a device that reports none.
  std::vector<float> shares;
  for (ggml_backend_dev_t dev : devices) {
    size_t free = 0, total = 0;
    ggml_backend_dev_memory(dev, &free, &total);
    if (free == 0 && total == 0) ggml_backend_dev_memory(ggml_backend_dev_by_type(GGML_BACKEND_DEVICE_TYPE_CPU), &free, &total);
    shares.push_back(static_cast<float>(free));
  }
  return shares;
}

DevicePlan plan_devices(const GgufOptions& o) {
  DevicePlan plan;
  for (const std::string& text : o.rpc_workers) {
    const RpcEndpoint worker = parse_rpc_endpoint(text);
    check_rpc_worker(worker, std::chrono::milliseconds(o.rpc_timeout_ms));
    for (ggml_backend_dev_t dev : rpc_worker_devices(worker)) {
      plan.devices.push_back(dev);
      plan.names.emplace_back(ggml_backend_dev_name(dev));
      plan.hosts.push_back(worker.text());
    }
  }
  if (o.provider != "cpu") {
    plan.devices.push_back(find_gpu_device(o.provider, o.device_id));
    plan.names.emplace_back(ggml_backend_dev_name(plan.devices.back()));
    plan.hosts.emplace_back();
  }
  if (plan.devices.size() > llama_max_devices()) {
    throw bad_option("rpc_workers", "at most " + std::to_string(llama_max_devices()) + " devices in all (llama.cpp's limit)",
                     std::to_string(plan.devices.size()));
  }
  plan.shares = device_shares(o, plan.devices);
  return plan;
}

llama_model_ptr load_model(const std::string& path, const GgufOptions& o, DevicePlan& plan) {
  llama_model_params params = llama_model_default_params();
  // Always an explicit list, so that devices registered for one engine (RPC workers) are
  // not used by another; null-terminated, empty = this host's CPU only.
  plan = o.vocab_only ? DevicePlan{} : plan_devices(o);
  std::vector<ggml_backend_dev_t> devices = plan.devices;
  devices.push_back(nullptr);
  params.devices = devices.data();
  params.n_gpu_layers = plan.devices.empty() ? 0 : o.n_gpu_layers;
  // llama.cpp reads llama_max_devices() shares, whatever the number of devices.
  std::vector<float> shares = plan.shares;
  shares.resize(llama_max_devices(), 0.0f);  // plan_devices refuses more devices
  params.tensor_split = plan.shares.empty() ? nullptr : shares.data();
  if (!o.rpc_workers.empty()) {
    // ggml's RPC client writes without MSG_NOSIGNAL: a lost worker would end the process
    // by SIGPIPE instead of being reported lost.
    std::signal(SIGPIPE, SIG_IGN);
  }
  params.load_mode = o.use_mmap ? (o.use_mlock ? LLAMA_LOAD_MODE_MMAP_MLOCK : LLAMA_LOAD_MODE_MMAP)
                                : (o.use_mlock ? LLAMA_LOAD_MODE_MLOCK : LLAMA_LOAD_MODE_NONE);
  params.vocab_only = o.vocab_only;
  ProgressState progress{&o.progress};
  if (o.progress) {
    params.progress_callback = on_progress;
    params.progress_callback_user_data = &progress;
  }
  clear_llama_error();
  llama_model_ptr model(llama_model_load_from_file(path.c_str(), params));
  if (!model) {
    if (progress.aborted) throw Error::cancelled("loading '" + path + "' was aborted by the progress callback");
    const std::string why = last_llama_error();
    throw Error::model_load("llama.cpp could not load '" + path + "'", why.empty() ? "see the log" : why);
  }
  return model;
}

llama_context_params context_params(const GgufOptions& o, uint32_t n_ctx) {
  llama_context_params p = llama_context_default_params();
  p.n_ctx = n_ctx;
  p.n_batch = o.n_batch;
  // Embeddings of non-causal models need a whole sequence in one physical batch.
  p.n_ubatch = o.embeddings ? o.n_batch : o.n_ubatch;
  p.n_seq_max = o.embeddings ? kEmbeddingSeqs : 1;
  p.kv_unified = true;  // the sequences of one embeddings batch share the n_ctx cells
  p.n_threads = o.n_threads > 0 ? o.n_threads : physical_cores();
  p.n_threads_batch = p.n_threads;
  p.flash_attn_type = parse_flash_attention(o.flash_attention);
  p.type_k = parse_kv_type(o.kv_cache_type);
  p.type_v = p.type_k;
  p.embeddings = o.embeddings;
  if (o.reranking) p.pooling_type = LLAMA_POOLING_TYPE_RANK;  // as llama-server --reranking
  p.no_perf = true;
  return p;
}

ComputeContext make_context(llama_model* model, const llama_context_params& params) {
  ComputeContext c;
  ggml_threadpool_params pool_params = ggml_threadpool_params_default(params.n_threads);
  c.threads.reset(ggml_threadpool_new(&pool_params));
  if (!c.threads) {
    throw Error::resource_exhausted("ggml could not start " + std::to_string(params.n_threads) + " compute threads");
  }
  clear_llama_error();
  c.ctx.reset(llama_init_from_model(model, params));
  if (!c.ctx) {
    const std::string why = last_llama_error();
    throw Error::resource_exhausted("llama.cpp could not create a context of " + std::to_string(params.n_ctx) +
                                    " tokens", why.empty() ? "see the log" : why);
  }
  llama_attach_threadpool(c.ctx.get(), c.threads.get(), c.threads.get());
  return c;
}

// Embeddings engines: a context per slot. Generation engines: one context whose KV cache
// holds a sequence of n_ctx tokens per slot, driven by the Batcher.
void make_slots(GgufEngine::Impl& impl) {
  const GgufOptions& o = impl.options;
  std::vector<std::unique_ptr<Slot>> slots;
  for (uint32_t s = 0; s < o.n_parallel; ++s) slots.push_back(std::make_unique<Slot>());
  if (o.embeddings) {
    const llama_context_params params = context_params(o, impl.info.n_ctx);
    for (auto& slot : slots) slot->own = make_context(impl.model.get(), params);
  } else {
    llama_context_params params = context_params(o, impl.info.n_ctx * o.n_parallel);
    params.n_seq_max = o.n_parallel;
    // A KV stream per slot, as llama-server's slots with -np N: a request's cells and so its
    // numerics do not depend on the other slots' requests (they did with one unified stream).
    params.kv_unified = false;
    ComputeContext shared = make_context(impl.model.get(), params);
    for (uint32_t s = 0; s < o.n_parallel; ++s) slots[s]->seq = static_cast<llama_seq_id>(s);
    std::function<void()> check_workers;
    if (!o.rpc_workers.empty()) check_workers = [workers = o.rpc_workers] { throw_if_rpc_workers_lost(workers); };
    impl.batcher = std::make_unique<Batcher>(std::move(shared.ctx), std::move(shared.threads), impl.vocab, o.n_batch,
                                             std::move(check_workers));
  }
  impl.slots = std::make_unique<SlotPool>(std::move(slots), o.max_queue, &impl.counters);
}

// Bytes of one slot's KV cache: per layer, n_ctx cells of K and V rows of the KV width.
uint64_t kv_cache_bytes(const llama_model* model, const GgufOptions& o, uint32_t n_ctx) {
  const int64_t n_head = std::max(1, llama_model_n_head(model));
  const int64_t n_embd_kv = llama_model_n_embd(model) / n_head * llama_model_n_head_kv(model);
  const ggml_type type = parse_kv_type(o.kv_cache_type);
  return static_cast<uint64_t>(llama_model_n_layer(model)) * n_ctx * 2 * ggml_row_size(type, n_embd_kv);
}

std::string meta_string(const llama_model* model, const std::string& key) {
  char buf[256];
  const int32_t n = llama_model_meta_val_str(model, key.c_str(), buf, sizeof buf);
  return n < 0 ? std::string() : std::string(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
}

void fill_info(GgufEngine::Impl& impl, const GgufFileFacts& facts) {
  const llama_model* m = impl.model.get();
  GgufModelInfo& i = impl.info;
  i.architecture = facts.architecture;
  char desc[256];
  const int32_t n = llama_model_desc(m, desc, sizeof desc);
  i.description = n < 0 ? std::string() : std::string(desc, std::min<size_t>(static_cast<size_t>(n), sizeof desc - 1));
  i.n_params = llama_model_n_params(m);
  i.size_bytes = llama_model_size(m);
  i.n_ctx_train = static_cast<uint32_t>(std::max(0, llama_model_n_ctx_train(m)));
  i.n_embd = static_cast<uint32_t>(std::max(0, llama_model_n_embd(m)));
  i.n_layer = static_cast<uint32_t>(std::max(0, llama_model_n_layer(m)));
  i.n_vocab = llama_vocab_n_tokens(impl.vocab);
  i.bos_token = llama_vocab_bos(impl.vocab);
  i.eos_token = llama_vocab_eos(impl.vocab);
  for (int32_t t = 0; t < i.n_vocab; ++t) {
    if (llama_vocab_is_eog(impl.vocab, t)) i.eog_tokens.push_back(t);
  }
  const char* tmpl = llama_model_chat_template(m, nullptr);
  i.has_chat_template = tmpl != nullptr;
  i.chat_template = tmpl != nullptr ? tmpl : "";
  const llama_vocab* v = impl.vocab;
  impl.text_info = TextModelInfo{i.n_ctx,
                                 i.n_vocab,
                                 i.bos_token,
                                 i.eos_token,
                                 i.eog_tokens,
                                 i.chat_template,
                                 llama_vocab_get_add_bos(v),
                                 {llama_vocab_fim_pre(v), llama_vocab_fim_suf(v), llama_vocab_fim_mid(v),
                                  llama_vocab_fim_rep(v), llama_vocab_fim_sep(v)}};
  i.pooling = impl.slots && impl.options.embeddings
                  ? pooling_name(llama_pooling_type(impl.slots->slots().front()->own.ctx.get()))
                  : "none";
}

void fill_model_info(GgufEngine::Impl& impl, const std::string& path, const GgufFileFacts& facts) {
  const GgufModelInfo& i = impl.info;
  ModelInfo& mi = impl.model_info;
  mi.backend = "gguf";
  mi.name = !facts.name.empty() ? facts.name : std::filesystem::path(path).stem().string();
  mi.path = path;
  mi.provider = impl.options.provider;
  mi.file_bytes = facts.file_bytes;
  if (impl.options.embeddings) {
    mi.inputs = {{"texts", DType::kString, true, {-1}, {"n"}, true}};
    mi.outputs = {{"embeddings", DType::kFloat32, true, {-1, i.n_embd}, {"n", ""}, true}};
  } else {
    mi.inputs = {{"prompt", DType::kString, true, {1}, {""}, true}};
    mi.outputs = {{"text", DType::kString, true, {1}, {""}, true}};
  }
  mi.metadata = {{"architecture", i.architecture}, {"description", i.description},
                 {"parameters", std::to_string(i.n_params)}, {"size_bytes", std::to_string(i.size_bytes)},
                 {"context_length", std::to_string(i.n_ctx_train)}, {"n_ctx", std::to_string(i.n_ctx)},
                 {"vocab_size", std::to_string(i.n_vocab)}, {"embedding_length", std::to_string(i.n_embd)},
                 {"block_count", std::to_string(i.n_layer)}, {"bos_token", std::to_string(i.bos_token)},
                 {"eos_token", std::to_string(i.eos_token)}, {"pooling", i.pooling},
                 {"has_chat_template", i.has_chat_template ? "true" : "false"},
                 {"n_parallel", std::to_string(impl.options.n_parallel)},
                 {"threads", std::to_string(impl.options.n_threads > 0 ? impl.options.n_threads : physical_cores())},
                 {"llama_version", GgufEngine::llama_version()}, {"gguf_version", std::to_string(facts.version)}};
  mi.metadata["chat_template"] = !impl.options.chat_template.empty() ? "given in the options"
                                 : i.has_chat_template              ? "the model's own"
                                                                    : "chatml (the model has none)";
  mi.metadata["chat_template_engine"] = impl.chat_templates ? "jinja (llama.cpp common)" : "llama.cpp built-in";
  if (!i.placement.empty()) mi.metadata["placement"] = gguf::describe_placement(i.placement);
  const std::string license = meta_string(impl.model.get(), "general.license");
  if (!license.empty()) mi.metadata["license"] = license;
}

}  // namespace

std::unique_ptr<GgufEngine::Impl> load_impl(const std::string& path, const GgufOptions& options) {
  validate_options(options);
  const GgufFileFacts facts = validate_gguf_file(path);
  auto impl = std::make_unique<GgufEngine::Impl>();
  impl->options = options;
  impl->options.embeddings = options.embeddings || options.reranking;  // reranking is rank-pooled embeddings
  DevicePlan plan;
  impl->model = load_model(path, options, plan);
  impl->vocab = llama_model_get_vocab(impl->model.get());
  const auto trained = static_cast<uint32_t>(std::max(0, llama_model_n_ctx_train(impl->model.get())));
  impl->info.n_ctx = options.n_ctx > 0 ? options.n_ctx : std::min(trained > 0 ? trained : kDefaultMaxCtx, kDefaultMaxCtx);
  if (!options.vocab_only) {
    make_slots(*impl);
    impl->kv_bytes = kv_cache_bytes(impl->model.get(), options, impl->info.n_ctx) * options.n_parallel;
  }
  throw_if_rpc_workers_lost(options.rpc_workers);  // the weights sent may not have arrived
  fill_info(*impl, facts);
  if (!options.vocab_only) {
    impl->info.placement = layer_placement(impl->info.n_layer, plan.devices.empty() ? 0 : options.n_gpu_layers,
                                           plan.shares, plan.names, plan.hosts);
  }
  load_chat_templates(*impl);
  fill_model_info(*impl, path, facts);
  spdlog::info("gguf: loaded '{}' ({}, {} params, n_ctx {}, {} slot(s))", path, impl->info.description,
               impl->info.n_params, impl->info.n_ctx, options.vocab_only ? 0 : options.n_parallel);
  return impl;
}

}  // namespace kapsl::gguf
