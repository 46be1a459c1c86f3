#!/usr/bin/env python3
"""/infill checked against llama.cpp's own server.

The same random-weight code model (make-tiny-gguf on llama.cpp's StarCoder vocabulary,
which has the <fim_prefix>, <fim_suffix> and <fim_middle> tokens) is served by `kapsl serve`
and llama-server; the same greedy requests must be given the same prompt (the same number
of tokens evaluated) and the same reply, with and without other files, with token ids in
the code, and with a prefix long enough to be cut to its last 1536 tokens. A streamed
infill must carry the same text in its pieces, and end with the whole answer. Then the
refusals: a model without FIM tokens, bad bodies, no model named among two generators.

Environment: KAPSL, KAPSL_TEST_DATA, LLAMA_SERVER (the parity part is skipped, and the
test exits 77 after the refusals, when it is not built: scripts/bootstrap-deps --with-tools).
"""
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request

import server_procs
from server_procs import post

KAPSL = os.environ["KAPSL"]
DATA = os.environ["KAPSL_TEST_DATA"]
MODEL = os.path.join(DATA, "tiny-fim.gguf")
LLAMA_SERVER = os.environ.get("LLAMA_SERVER", "")

GREEDY = {"n_predict": 8, "temperature": 0}
CASES = [
    {"input_prefix": "def add(a, b):\n    ", "input_suffix": "\n    return c\n", "prompt": "c ="},
    {"input_prefix": "import os\n", "input_suffix": "", "input_extra": [
        {"filename": "util.py", "text": "def helper():\n    return 1\n"}, {"text": "x = 2"}]},
    {"input_prefix": ["for i in ", 1000, " range(10):"], "input_suffix": ["print(i)", 42]},
    {"input_prefix": "x = 1\n" * 700, "input_suffix": "y = 2\n" * 50},  # the prefix cut to 1536 tokens
]


def check(ok, what):
    if not ok:
        sys.exit("FAIL: " + what)


def post_error(port, body):
    """(status, error message) of a POST /infill that should fail."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/infill", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, ""
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)["error"]["message"]


def streamed(port, body):
    """The data events of a streamed POST /infill, parsed."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/infill", json.dumps(dict(body, stream=True)).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return [json.loads(line[6:]) for line in r.read().decode().splitlines() if line.startswith("data: ")]


def refusals(port):
    for body, code, words in [({"model": "fim", "input_prefix": "x"}, 400, "input_suffix"),
                              ({"model": "fim", "input_suffix": "x"}, 400, "input_prefix"),
                              ({"model": "fim", "input_prefix": 1, "input_suffix": ""}, 400, "input_prefix"),
                              ({"model": "fim", "input_prefix": "", "input_suffix": "", "input_extra": {}}, 400,
                               "input_extra"),
                              ({"model": "fim", "input_prefix": "", "input_suffix": "", "input_extra": [{}]}, 400,
                               "text"),
                              ({"model": "fim", "input_prefix": [10 ** 9], "input_suffix": ""}, 400, "input_prefix"),
                              ({"model": "fim", "input_prefix": "", "input_suffix": "", "bogus": 1}, 400, "bogus"),
                              ({"model": "fim", "input_prefix": "", "input_suffix": "", "input_bogus": 1}, 400,
                               "input_bogus"),
                              ({"model": "gen", "input_prefix": "", "input_suffix": ""}, 400, "fill in the middle"),
                              ({"input_prefix": "", "input_suffix": ""}, 400, "'model' is required"),
                              ({"model": "nope", "input_prefix": "", "input_suffix": ""}, 404, "nope")]:
        status, message = post_error(port, body)
        check(status == code and words in message, f"{body} answered {status} {message!r}, not {code} naming {words}")
    print("infill refusals: ok")


def check_stream(port):
    body = dict(CASES[0], model="fim", **GREEDY)
    events = streamed(port, body)
    status, whole = post(port, "/infill", body)
    check(status == 200 and events and events[-1]["stop"] and not any(e["stop"] for e in events[:-1]),
          f"stream events: {events}")
    check("".join(e["content"] for e in events) == whole["content"], f"streamed {events} vs whole {whole}")
    check(events[-1]["tokens_predicted"] == whole["tokens_predicted"] == 8, f"last event {events[-1]}")


def llama_answers(log):
    with server_procs.llama_server(LLAMA_SERVER, MODEL, ["-c", "4096", "-np", "1", "-t", "1"], log) as port:
        check(port is not None, "llama-server did not start")
        return [post(port, "/infill", dict(case, **GREEDY)) for case in CASES]


def main():
    with tempfile.TemporaryDirectory() as repo, tempfile.NamedTemporaryFile("w+", suffix=".log") as klog, \
         tempfile.NamedTemporaryFile("w+", suffix=".log") as llog:
        shutil.copy(MODEL, os.path.join(repo, "fim.gguf"))
        shutil.copy(os.path.join(DATA, "tiny-spm.gguf"), os.path.join(repo, "gen.gguf"))
        kapsl, port = server_procs.start_kapsl(KAPSL, ["--models", repo, "--ctx-size", "4096", "--threads", "1"],
                                               klog)
        try:
            refusals(port)
            check_stream(port)
            if not server_procs.llama_server_built(LLAMA_SERVER):
                return 77
            theirs = llama_answers(llog)
            for case, (status, answer) in zip(CASES, theirs):
                ours_status, ours = post(port, "/infill", dict(case, model="fim", **GREEDY))
                check(status == 200 and ours_status == 200, f"{case}: kapsl {ours_status}, llama-server {status}")
                for key in ("content", "tokens_evaluated", "tokens_predicted", "stop_type"):
                    check(ours[key] == answer[key], f"{key} of {str(case)[:200]}:\n  kapsl {ours[key]!r}\n"
                                                    f"  llama-server {answer[key]!r}")
        finally:
            kapsl.terminate()
            kapsl.wait(timeout=10)
    print(f"infill: {len(CASES)} requests, the same prompts and replies as llama-server's; streamed: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
