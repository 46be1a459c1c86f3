// make-tiny-gguf: writes a llama-architecture GGUF with random weights and the tokenizer of
// one of llama.cpp's vocab-only GGUFs (models/ggml-vocab-*.gguf), using only the public
// gguf/ggml API. Test fixtures are generated with it at build time, so no weights are
// committed; the benchmark model (~58M parameters) is made with it too:
//   make-tiny-gguf VOCAB.gguf bench.gguf --n-embd 512 --n-layer 8 --n-head 8 --n-ff 1408 --seed 7
//
// --reranker writes Qwen3-Reranker's shape instead: the qwen3 architecture (llama's, plus
// per-head Q/K norms), rank pooling and a classification head of two labels ("yes", "no").
//
// Usage: make-tiny-gguf VOCAB.gguf OUT.gguf [--n-embd N] [--n-layer N] [--n-head N]
//          [--n-head-kv N] [--n-ff N] [--n-ctx N] [--seed N] [--f32] [--pooling none|mean|cls|last]
//          [--reranker]
// Exit status: 0 written, 1 failed (reason on stderr), 2 bad arguments.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "ggml.h"
#include "gguf.h"

namespace {

struct Args {
  std::string vocab_path;
  std::string out_path;
  uint32_t n_embd = 64;
  uint32_t n_layer = 2;
  uint32_t n_head = 4;
  uint32_t n_head_kv = 0;  // 0 = n_head
  uint32_t n_ff = 128;
  uint32_t n_ctx = 2048;
  uint32_t seed = 42;
  bool f16 = true;
  int32_t pooling = -1;  // -1 = key absent (the architecture's default)
  bool reranker = false;
};

constexpr int32_t kRankPooling = 4;  // llama.cpp's LLAMA_POOLING_TYPE_RANK

struct TensorSpec {
  std::string name;
  int64_t ne0;
  int64_t ne1;
  bool norm;  // norms are 1-D F32 ones, as a trained model's start out
};

bool parse_u32(const char* text, uint32_t* out) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(text, &end, 10);
  if (end == text || *end != '\0' || v == 0 || v > 1u << 24) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

bool parse_pooling(std::string_view text, int32_t* out) {
  static constexpr std::string_view kNames[] = {"none", "mean", "cls", "last"};
  for (int32_t i = 0; i < 4; ++i) {
    if (text == kNames[i]) {
      *out = i;
      return true;
    }
  }
  return false;
}

bool parse_args(int argc, char** argv, Args* a) {
  if (argc < 3) return false;
  a->vocab_path = argv[1];
  a->out_path = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--f32") {
      a->f16 = false;
      continue;
    }
    if (flag == "--reranker") {
      a->reranker = true;
      continue;
    }
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    bool ok = false;
    if (flag == "--n-embd") ok = parse_u32(v, &a->n_embd);
    else if (flag == "--n-layer") ok = parse_u32(v, &a->n_layer);
    else if (flag == "--n-head") ok = parse_u32(v, &a->n_head);
    else if (flag == "--n-head-kv") ok = parse_u32(v, &a->n_head_kv);
    else if (flag == "--n-ff") ok = parse_u32(v, &a->n_ff);
    else if (flag == "--n-ctx") ok = parse_u32(v, &a->n_ctx);
    else if (flag == "--seed") ok = parse_u32(v, &a->seed);
    else if (flag == "--pooling") ok = parse_pooling(v, &a->pooling);
    if (!ok) return false;
  }
  if (a->n_head_kv == 0) a->n_head_kv = a->n_head;
  return a->n_embd % a->n_head == 0 && a->n_head % a->n_head_kv == 0;
}

void set_hparams(gguf_context* out, const Args& a, uint32_t n_vocab) {
  const std::string arch = a.reranker ? "qwen3" : "llama";
  const auto key = [&arch](const char* name) { return (arch + "." + name); };
  gguf_set_val_str(out, "general.architecture", arch.c_str());
  gguf_set_val_str(out, "general.name", ("tiny-random-" + arch).c_str());
  gguf_set_val_u32(out, "general.file_type", a.f16 ? 1 : 0);
  gguf_set_val_u32(out, key("context_length").c_str(), a.n_ctx);
  gguf_set_val_u32(out, key("embedding_length").c_str(), a.n_embd);
  gguf_set_val_u32(out, key("block_count").c_str(), a.n_layer);
  gguf_set_val_u32(out, key("feed_forward_length").c_str(), a.n_ff);
  gguf_set_val_u32(out, key("attention.head_count").c_str(), a.n_head);
  gguf_set_val_u32(out, key("attention.head_count_kv").c_str(), a.n_head_kv);
  gguf_set_val_u32(out, key("rope.dimension_count").c_str(), a.n_embd / a.n_head);
  gguf_set_val_f32(out, key("rope.freq_base").c_str(), 10000.0f);
  gguf_set_val_f32(out, key("attention.layer_norm_rms_epsilon").c_str(), 1e-5f);
  gguf_set_val_u32(out, key("vocab_size").c_str(), n_vocab);
  if (a.pooling >= 0 || a.reranker) {
    gguf_set_val_u32(out, key("pooling_type").c_str(), static_cast<uint32_t>(a.reranker ? kRankPooling : a.pooling));
  }
  if (a.reranker) {
    const char* labels[] = {"yes", "no"};
    gguf_set_arr_str(out, key("classifier.output_labels").c_str(), labels, 2);
  }
}

std::vector<TensorSpec> tensor_specs(const Args& a, uint32_t n_vocab) {
  std::vector<TensorSpec> specs = {{"token_embd.weight", a.n_embd, n_vocab, false},
                                   {"output_norm.weight", a.n_embd, 1, true},
                                   {"output.weight", a.n_embd, n_vocab, false}};
  const int64_t n_embd_kv = static_cast<int64_t>(a.n_embd / a.n_head) * a.n_head_kv;
  for (uint32_t l = 0; l < a.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    specs.push_back({b + "attn_norm.weight", a.n_embd, 1, true});
    specs.push_back({b + "attn_q.weight", a.n_embd, a.n_embd, false});
    specs.push_back({b + "attn_k.weight", a.n_embd, n_embd_kv, false});
    specs.push_back({b + "attn_v.weight", a.n_embd, n_embd_kv, false});
    specs.push_back({b + "attn_output.weight", a.n_embd, a.n_embd, false});
    specs.push_back({b + "ffn_norm.weight", a.n_embd, 1, true});
    specs.push_back({b + "ffn_gate.weight", a.n_embd, a.n_ff, false});
    specs.push_back({b + "ffn_up.weight", a.n_embd, a.n_ff, false});
    specs.push_back({b + "ffn_down.weight", a.n_ff, a.n_embd, false});
    if (a.reranker) {
      specs.push_back({b + "attn_q_norm.weight", a.n_embd / a.n_head, 1, true});
      specs.push_back({b + "attn_k_norm.weight", a.n_embd / a.n_head, 1, true});
    }
  }
  if (a.reranker) specs.push_back({"cls.output.weight", a.n_embd, 2, false});
  return specs;
}

// Fills one tensor: N(0, 1/sqrt(fan_in)) keeps activations of a random network bounded, so
// generation neither saturates nor produces NaNs.
void fill_tensor(ggml_tensor* t, const TensorSpec& s, std::mt19937* gen) {
  std::normal_distribution<float> dist(0.0f, 1.0f / std::sqrt(static_cast<float>(s.ne0)));
  const int64_t n = ggml_nelements(t);
  for (int64_t i = 0; i < n; ++i) {
    const float v = s.norm ? 1.0f : dist(*gen);
    if (t->type == GGML_TYPE_F16) {
      static_cast<ggml_fp16_t*>(t->data)[i] = ggml_fp32_to_fp16(v);
    } else {
      static_cast<float*>(t->data)[i] = v;
    }
  }
}

int write_model(const Args& a, gguf_context* vocab) {
  const int64_t tokens_key = gguf_find_key(vocab, "tokenizer.ggml.tokens");
  if (tokens_key < 0) {
    std::fprintf(stderr, "make-tiny-gguf: %s has no tokenizer.ggml.tokens\n", a.vocab_path.c_str());
    return 1;
  }
  const auto n_vocab = static_cast<uint32_t>(gguf_get_arr_n(vocab, tokens_key));
  gguf_context* out = gguf_init_empty();
  gguf_set_kv(out, vocab);
  // Keep only the tokenizer: the vocab file's own hparams describe a different model.
  for (int64_t i = gguf_get_n_kv(out) - 1; i >= 0; --i) {
    const std::string key = gguf_get_key(out, i);
    if (key.rfind("tokenizer.", 0) != 0) gguf_remove_key(out, key.c_str());
  }
  set_hparams(out, a, n_vocab);
  const std::vector<TensorSpec> specs = tensor_specs(a, n_vocab);
  size_t bytes = 0;
  for (const TensorSpec& s : specs) bytes += static_cast<size_t>(s.ne0 * s.ne1) * 4 + 256;
  ggml_init_params ip = {bytes + specs.size() * ggml_tensor_overhead(), nullptr, false};
  ggml_context* ctx = ggml_init(ip);
  std::mt19937 gen(a.seed);
  uint64_t n_params = 0;
  for (const TensorSpec& s : specs) {
    const ggml_type type = (!s.norm && a.f16) ? GGML_TYPE_F16 : GGML_TYPE_F32;
    ggml_tensor* t = s.norm ? ggml_new_tensor_1d(ctx, type, s.ne0) : ggml_new_tensor_2d(ctx, type, s.ne0, s.ne1);
    ggml_set_name(t, s.name.c_str());
    fill_tensor(t, s, &gen);
    gguf_add_tensor(out, t);
    n_params += static_cast<uint64_t>(ggml_nelements(t));
  }
  const bool written = gguf_write_to_file(out, a.out_path.c_str(), false);
  gguf_free(out);
  ggml_free(ctx);
  if (!written) {
    std::fprintf(stderr, "make-tiny-gguf: cannot write %s\n", a.out_path.c_str());
    return 1;
  }
  std::printf("wrote %s: n_vocab=%u n_embd=%u n_layer=%u n_params=%llu\n", a.out_path.c_str(), n_vocab,
              a.n_embd, a.n_layer, static_cast<unsigned long long>(n_params));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!parse_args(argc, argv, &args)) {
    std::fprintf(stderr,
                 "usage: make-tiny-gguf VOCAB.gguf OUT.gguf [--n-embd N] [--n-layer N] [--n-head N]\n"
                 "         [--n-head-kv N] [--n-ff N] [--n-ctx N] [--seed N] [--f32] [--pooling none|mean|cls|last]\n"
                 "         [--reranker]\n"
                 "(n_embd must be a multiple of n_head, n_head of n_head_kv)\n");
    return 2;
  }
  gguf_init_params params = {/*no_alloc=*/true, /*ctx=*/nullptr};
  gguf_context* vocab = gguf_init_from_file(args.vocab_path.c_str(), params);
  if (vocab == nullptr) {
    std::fprintf(stderr, "make-tiny-gguf: cannot read %s as GGUF\n", args.vocab_path.c_str());
    return 1;
  }
  const int rc = write_model(args, vocab);
  gguf_free(vocab);
  return rc;
}
