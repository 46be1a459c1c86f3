#!/usr/bin/python3
"""Writes the seed corpus of every fuzz target into OUTDIR/<target>/: small, valid (and a
few almost-valid) inputs that show libFuzzer each format's shape. Python's standard library
only; every seed is made here, none is copied from elsewhere. Usage: make_seeds.py OUTDIR"""
import gzip
import io
import json
import os
import struct
import sys
import tarfile


def kserve_json():
    def req(inputs, **extra):
        return json.dumps({"inputs": inputs, **extra})
    fp32 = {"name": "x", "shape": [2, 3], "datatype": "FP32", "data": [1, 2.5, -3, 4e10, 0, 1e-3]}
    return [
        req([fp32]),
        req([{**fp32, "data": [[1, 2.5, -3], [4e10, 0, 1e-3]]}], id="r1"),
        req([{"name": "ids", "shape": [3], "datatype": "INT64", "data": [9007199254740993, -1, 0]}],
            outputs=[{"name": "ids", "parameters": {"binary_data": True}}]),
        req([{"name": "u", "shape": [2], "datatype": "UINT64", "data": [18446744073709551615, 0]}]),
        req([{"name": "s", "shape": [2], "datatype": "BYTES", "data": ["hello", "w\u00f6rld"]}]),
        req([{"name": "b", "shape": [2, 1], "datatype": "BOOL", "data": [True, False]}],
            parameters={"binary_data_output": True}),
        req([{"name": "h", "shape": [2], "datatype": "FP16", "data": [65504, -0.5]},
             {"name": "bf", "shape": [1], "datatype": "BF16", "data": [3.0e38]}]),
        req([{"name": "i8", "shape": [1, 1, 2], "datatype": "INT8", "data": [[[-128, 127]]], "parameters": {"k": 1}}],
            parameters={"max_tokens": 4, "temperature": 0.5, "stop": "\n"}),
        req([{"name": "d", "shape": [], "datatype": "FP64", "data": [1.7976931348623157e308]}]),
        '{"inputs":[{"name":"x","data":[1,2],"shape":[2],"datatype":"INT32"}]}',  # data before datatype
        '{"inputs":[{"name":"x","shape":[500000000],"datatype":"FP32","data":[1]}]}',
    ]


def kserve_binary():
    seeds = []
    def with_binary(inputs, payload, **extra):
        header = json.dumps({"inputs": inputs, **extra}).encode()
        body = header + payload
        return struct.pack("<I", len(header)) + body
    seeds.append(with_binary([{"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}],
                             struct.pack("<2f", 1.5, -2.0)))
    seeds.append(with_binary([{"name": "s", "shape": [2], "datatype": "BYTES", "parameters": {"binary_data_size": 13}}],
                             struct.pack("<I", 5) + b"hello" + struct.pack("<I", 0)))
    seeds.append(with_binary([{"name": "a", "shape": [1], "datatype": "INT64", "parameters": {"binary_data_size": 8}},
                              {"name": "b", "shape": [1], "datatype": "FP32", "data": [1]}],
                             struct.pack("<q", -7), outputs=[{"name": "a", "parameters": {"binary_data": True}}]))
    seeds.append(with_binary([{"name": "h", "shape": [2], "datatype": "FP16", "parameters": {"binary_data_size": 4}}],
                             struct.pack("<2H", 0x3C00, 0x7BFF)))
    # A header length that lies (top bit set: used as it is).
    seeds.append(struct.pack("<I", 0x80001000) + b'{"inputs":[]}')
    return seeds


def openai():
    completion = {"model": "tiny", "prompt": "Hello", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9,
                  "stop": ["\n", "."], "seed": 42, "stream": True, "stream_options": {"include_usage": True}}
    chat = {"model": "tiny", "messages": [{"role": "system", "content": "Be brief."},
                                          {"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
            "max_completion_tokens": 16, "logit_bias": {"15043": -100}, "response_format": {"type": "text"},
            "chat_template": "{{ messages }}"}
    embeddings = {"model": "embed", "input": ["first", "second"], "encoding_format": "base64", "dimensions": 64}
    params = {"max_tokens": 4, "temperature": 0, "top_k": 40, "ignore_eos": True, "repeat_penalty": 1.1}
    anthropic = {"model": "chat", "max_tokens": 16, "system": [{"type": "text", "text": "Be brief."}],
                 "messages": [{"role": "user", "content": "Hi"},
                              {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]}],
                 "stop_sequences": ["\n"], "temperature": 0.5, "top_k": 10, "stream": True, "metadata": {"user_id": "u"}}
    responses = {"model": "chat", "instructions": "Be brief.", "max_output_tokens": 16, "stream": True, "store": False,
                 "input": [{"role": "developer", "content": "Rules"},
                           {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi"}]}]}
    infill = {"input_prefix": ["def f(", 42, "):"], "input_suffix": "\n    return x\n", "prompt": "x =",
              "input_extra": [{"filename": "a.py", "text": "import os\n"}, {"text": "y = 1"}], "n_predict": 8,
              "temperature": 0, "stream": True}
    return [b"\x00" + json.dumps(completion).encode(),
            b"\x00" + json.dumps({"model": "tiny", "prompt": [1, 15043, 29892], "n": 1, "user": "u"}).encode(),
            b"\x01" + json.dumps(chat).encode(),
            b"\x02" + json.dumps(embeddings).encode(),
            b"\x02" + json.dumps({"model": "embed", "input": [[1, 2], [3]]}).encode(),
            b"\x03" + json.dumps(params).encode(),
            b"\x04" + json.dumps(anthropic).encode(),
            b"\x05" + json.dumps(responses).encode(),
            b"\x05" + json.dumps({"model": "tiny", "input": "Hi", "text": {"format": {"type": "text"}}}).encode(),
            b"\x07" + json.dumps(infill).encode()]


def constraints():
    schema = {"type": "object", "properties": {
        "name": {"type": "string", "maxLength": 20, "pattern": "^[a-z]+$"},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 3},
        "when": {"type": "string", "format": "date-time"},
        "n": {"type": "number", "minimum": 0, "maximum": 10},
        "child": {"$ref": "#/$defs/node"}, "either": {"anyOf": [{"type": "integer"}, {"type": "null"}]}},
        "required": ["name"], "additionalProperties": False,
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}}}
    grammar = 'root ::= item ("," item){0,3}\nitem ::= [a-z]+ | "\\"" [^"]* "\\"" | "(" item ")" # note\n'
    return [b"\x00" + json.dumps(schema).encode(),
            b"\x00" + json.dumps({"type": "integer", "minimum": -5, "maximum": 1000}).encode(),
            b"\x01" + grammar.encode(),
            b"\x01" + b'root ::= "yes" | "no"',
            b"\x02" + json.dumps(schema).encode(),
            b"\x02" + json.dumps({"type": "object", "properties": {"q": {"type": "string"}}}).encode()]


def manifests():
    full = {"project_name": "resnet", "framework": "onnx", "version": "1.0", "created_at": "2026-01-01",
            "model_file": "model.onnx", "format": "onnx", "task": "classify", "model_type": "vision",
            "metadata": {"labels": "labels.txt", "anything": [1, {"x": None}]}, "threads": 2,
            "hardware_requirements": {"preferred_provider": "cuda", "fallback_providers": ["cpu"],
                                      "min_memory_mb": 512, "min_cuda_version": "11.8",
                                      "graph_optimization_level": "all", "device_id": 0, "strategy": "pool"},
            "serving": {"max_concurrency": 4, "max_queue": 16, "queue_timeout": "5s", "request_timeout": 30,
                        "warmup": True, "pin": False, "idle_ttl": "10m"},
            "onnx": {"intra_op_threads": 2},
            "cron_jobs": [{"id": "warm", "schedule": "0 */5 * * * *"}]}
    gguf = {"project_name": "tiny", "framework": "gguf", "version": "1", "created_at": "", "model_file": "m.gguf",
            "gguf": {"context": 4096, "gpu_layers": 0}}
    return [json.dumps(full), json.dumps(gguf),
            '{"project_name":"x","framework":"onnx","version":"1","created_at":"","model_file":"m.onnx",'
            '"serving":{"max_concurency":2}}']


def npy(descr, shape, payload, version=1, fortran=False):
    dims = f"({shape[0]},)" if len(shape) == 1 else "(" + ", ".join(str(d) for d in shape) + ")"
    header = "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", dims)
    size_bytes = 2 if version == 1 else 4
    pad = (64 - (6 + 2 + size_bytes + len(header) + 1) % 64) % 64
    header = header + " " * pad + "\n"
    size = struct.pack("<H" if version == 1 else "<I", len(header))
    return b"\x93NUMPY" + bytes([version, 0]) + size + header.encode("latin-1" if version < 3 else "utf-8") + payload


def npys():
    return [npy("<f4", [2, 3], struct.pack("<6f", *range(6))),
            npy("<i8", [3], struct.pack("<3q", 2**62, -1, 0)),
            npy(">i4", [2], struct.pack(">2i", 1, -2)),
            npy("|b1", [2, 2], b"\x01\x00\x00\x01", fortran=True),
            npy("<f2", [1], struct.pack("<H", 0x3C00), version=2),
            npy("<U3", [2], "abc".encode("utf-32-le") + "d\x00\x00".encode("utf-32-le"), version=3),
            npy("|S4", [2], b"ab\x00\x00wxyz"),
            npy("|u1", [], b"\x07"),
            npy("<f8", [0, 4], b"")]


def tar_gz(entries):
    """entries: (name, bytes | None for a directory, kind) with kind in file/dir/symlink:TARGET."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data, kind in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 0
            if kind == "dir":
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            elif kind.startswith("symlink:"):
                info.type = tarfile.SYMTYPE
                info.linkname = kind.split(":", 1)[1]
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def aimods():
    manifest = json.dumps({"project_name": "m", "framework": "onnx", "version": "1", "created_at": "",
                           "model_file": "model/model.onnx"}).encode()
    model = b"\x08\x07\x12\x04kapsl"  # bytes enough: extraction does not parse the model
    return [tar_gz([("metadata.json", manifest, "file"), ("model", None, "dir"),
                    ("model/model.onnx", model, "file")]),
            tar_gz([("metadata.json", manifest, "file"), ("model", None, "dir"),
                    ("model/model.onnx", b"", "symlink:../../etc/passwd")]),
            tar_gz([("../escape", b"x", "file"), ("metadata.json", manifest, "file")]),
            tar_gz([("metadata.json", manifest, "file"), ("metadata.json", manifest, "file")])]


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(version=3, kvs=None, tensors=None, alignment=32):
    """A GGUF file: KVs (key, type id, packed value) and F32 tensors (name, dims)."""
    kvs = kvs if kvs is not None else [("general.architecture", 8, gguf_string("llama")),
                                       ("general.name", 8, gguf_string("seed")),
                                       ("llama.context_length", 4, struct.pack("<I", 64)),
                                       ("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + gguf_string("a") +
                                        gguf_string("b"))]
    tensors = tensors if tensors is not None else [("token_embd.weight", [4, 2])]
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        out += gguf_string(key) + struct.pack("<I", vtype) + value
    offset, data = 0, b""
    for name, dims in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", 0, offset)  # type 0 = F32
        n = 1
        for d in dims:
            n *= d
        data += struct.pack(f"<{n}f", *([0.5] * n))
        offset += 4 * n
        pad = (alignment - offset % alignment) % alignment
        data += b"\0" * pad
        offset += pad
    out += b"\0" * ((alignment - len(out) % alignment) % alignment)
    return out + data


def ggufs():
    return [gguf(), gguf(version=2),
            gguf(kvs=[("general.architecture", 8, gguf_string("bert")),
                      ("general.alignment", 4, struct.pack("<I", 64)),
                      ("bert.pooling", 6, struct.pack("<f", 1.0))], alignment=64),
            gguf(tensors=[("a", [2]), ("b", [3, 1, 1])]),
            gguf(kvs=[("general.name", 8, gguf_string("no architecture"))])]


def varint(n):
    out = b""
    n &= (1 << 64) - 1
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def pb_field(number, value):
    """One protobuf field: ints as varints, bytes/str as length-delimited, lists packed."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def pb_packed(number, values, fmt=None):
    body = b"".join(struct.pack(fmt, v) for v in values) if fmt else b"".join(varint(v) for v in values)
    return pb_field(number, body)


def grpc_requests():
    """ModelInferRequest messages (proto/grpc_predict_v2.proto), encoded by hand."""
    def tensor(name, datatype, shape, contents=b""):
        return pb_field(1, name) + pb_field(2, datatype) + pb_packed(3, shape) + (pb_field(5, contents) if contents else b"")
    def request(inputs, raw=(), params=b""):
        msg = pb_field(1, "m") + pb_field(3, "id-1") + params
        msg += b"".join(pb_field(5, t) for t in inputs)
        msg += b"".join(pb_field(7, r) for r in raw)
        return msg
    fp32 = pb_packed(6, [1.0, -2.5, 3e38], "<f")
    strings = pb_field(8, b"hello") + pb_field(8, b"")
    param = pb_field(4, pb_field(1, "max_tokens") + pb_field(2, pb_field(2, 4)))
    temperature = pb_field(4, pb_field(1, "temperature") + pb_field(2, pb_field(3, "0.5")))
    return [
        request([tensor("x", "FP32", [3], fp32)]),
        request([tensor("x", "INT8", [2], pb_packed(2, [-128, 127]))], params=param + temperature),
        request([tensor("s", "BYTES", [2], strings)]),
        request([tensor("b", "BOOL", [1, 2], pb_packed(1, [1, 0]))]),
        request([tensor("u", "UINT64", [1], pb_packed(5, [2**64 - 1])), tensor("d", "FP64", [1], pb_packed(7, [1e308], "<d"))]),
        request([tensor("h", "FP16", [2]), tensor("s", "BYTES", [1])],
                raw=[struct.pack("<2e", 1.0, -2.0), struct.pack("<I", 3) + b"abc"]),
        request([tensor("x", "FP32", [4000000000, 4000000000])], raw=[b"\0" * 8]),
    ]


def main():
    out = sys.argv[1]
    corpora = {"kserve_json": [s.encode() for s in kserve_json()], "kserve_binary": kserve_binary(),
               "openai": openai(), "manifest": [s.encode() for s in manifests()], "npy": npys(),
               "aimod": aimods(), "gguf": ggufs(), "grpc_infer": grpc_requests(),
               "constraint": constraints()}
    for target, seeds in corpora.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for i, seed in enumerate(seeds):
            with open(os.path.join(d, f"seed-{i:02d}"), "wb") as f:
                f.write(seed)


if __name__ == "__main__":
    main()
