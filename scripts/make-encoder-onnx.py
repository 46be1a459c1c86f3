#!/usr/bin/python3
# Synthetic BERT-style transformer encoder (random weights) with Debian python3-onnx + numpy.
# From shared/reference/dependencies.md §4.2; the ONNX benchmark (bench/onnx) runs it at setup.
#   /usr/bin/python3 scripts/make-encoder-onnx.py OUT.onnx [layers=4] [hidden=256] [heads=4] [ffn=1024] [vocab=30522]
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
out = sys.argv[1]; L, H, NH, F, V = [int(x) for x in (sys.argv[2:] + ["4", "256", "4", "1024", "30522"][len(sys.argv[2:]):])][:5]
D = H // NH; rng = np.random.default_rng(0); inits = []; nodes = []
def W(name, *shape, scale=None):
    a = rng.standard_normal(shape).astype(np.float32) * (scale if scale is not None else 1/np.sqrt(shape[0]))
    inits.append(nh.from_array(a, name)); return name
def C(name, arr): inits.append(nh.from_array(np.array(arr), name)); return name
def n(op, ins, outs, **kw): nodes.append(h.make_node(op, ins, outs, **kw)); return outs[0]
C("shape_split", np.array([0, 0, NH, D], np.int64)); C("shape_merge", np.array([0, 0, H], np.int64))
C("scale", np.array(1/np.sqrt(D), np.float32)); C("one", np.array(1.0, np.float32)); C("neg", np.array(-1e4, np.float32))
C("half", np.array(0.5, np.float32)); C("sqrt2", np.array(np.sqrt(2.0), np.float32)); C("ax1", np.array([1, 2], np.int64))
x = n("Gather", [W("word_emb", V, H, scale=0.02), "input_ids"], ["emb_w"])
pos = n("Gather", [W("pos_emb", 512, H, scale=0.02), "position_ids"], ["emb_p"])
x = n("Add", [x, pos], ["emb"])
x = n("LayerNormalization", [x, C("ln_e_g", np.ones(H, np.float32)), C("ln_e_b", np.zeros(H, np.float32))], ["emb_ln"], axis=-1, epsilon=1e-12)
m = n("Cast", [n("Unsqueeze", ["attention_mask", "ax1"], ["mask_u"])], ["mask_f"], to=T.FLOAT)
m = n("Mul", [n("Sub", ["one", m], ["mask_inv"]), "neg"], ["mask_add"])   # [B,1,1,S]
for l in range(L):
    p = f"l{l}_"
    def proj(name, inp): return n("Add", [n("MatMul", [inp, W(p+name+"_w", H, H)], [p+name+"_mm"]), C(p+name+"_b", np.zeros(H, np.float32))], [p+name])
    def heads(t, perm): return n("Transpose", [n("Reshape", [t, "shape_split"], [t+"_r"])], [t+"_t"], perm=perm)
    q, k, v = heads(proj("q", x), [0, 2, 1, 3]), heads(proj("k", x), [0, 2, 3, 1]), heads(proj("v", x), [0, 2, 1, 3])
    s = n("Add", [n("Mul", [n("MatMul", [q, k], [p+"qk"]), "scale"], [p+"qk_s"]), "mask_add"], [p+"qk_m"])
    a = n("MatMul", [n("Softmax", [s], [p+"prob"], axis=-1), v], [p+"ctx"])
    a = n("Reshape", [n("Transpose", [a], [p+"ctx_t"], perm=[0, 2, 1, 3]), "shape_merge"], [p+"ctx_m"])
    a = n("Add", [n("MatMul", [a, W(p+"o_w", H, H)], [p+"o_mm"]), x], [p+"res1"])
    x = n("LayerNormalization", [a, C(p+"ln1_g", np.ones(H, np.float32)), C(p+"ln1_b", np.zeros(H, np.float32))], [p+"ln1"], axis=-1, epsilon=1e-12)
    f = n("MatMul", [x, W(p+"f1_w", H, F)], [p+"f1"])
    f = n("Mul", [n("Mul", [f, "half"], [p+"g_h"]), n("Add", ["one", n("Erf", [n("Div", [f, "sqrt2"], [p+"g_d"])], [p+"g_e"])], [p+"g_a"])], [p+"gelu"])
    f = n("Add", [n("MatMul", [f, W(p+"f2_w", F, H)], [p+"f2"]), x], [p+"res2"])
    x = n("LayerNormalization", [f, C(p+"ln2_g", np.ones(H, np.float32)), C(p+"ln2_b", np.zeros(H, np.float32))], [p+"ln2"], axis=-1, epsilon=1e-12)
nodes.append(h.make_node("Identity", [x], ["last_hidden_state"]))
ins = [h.make_tensor_value_info(nm, T.INT64, ["batch", "seq"]) for nm in ("input_ids", "position_ids", "attention_mask")]
g = h.make_graph(nodes, "synthetic_bert_encoder", ins, [h.make_tensor_value_info("last_hidden_state", T.FLOAT, ["batch", "seq", H])], inits)
model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="synthetic-encoder")
onnx.checker.check_model(model); onnx.save(model, out)
print(f"wrote {out}: layers={L} hidden={H} heads={NH} ffn={F} vocab={V}, {sum(np.prod(i.dims) for i in inits)/1e6:.1f}M params")
