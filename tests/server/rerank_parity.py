#!/usr/bin/env python3
"""/v1/rerank checked against llama.cpp's own server.

The same random-weight model of Qwen3-Reranker's shape (make-tiny-gguf --reranker) is
served by `kapsl serve --reranking` and `llama-server --reranking`; the same queries and
documents must get the same scores (to 1e-4) in the same order, in Jina's shape and in
TEI's. Then the refusals: a model that does not rerank, bad bodies.

Environment: KAPSL, KAPSL_TEST_DATA, LLAMA_SERVER (the parity part is skipped, and the
test exits 77 after the refusals, when it is not built: scripts/bootstrap-deps --with-tools).
"""
import os
import shutil
import sys
import tempfile

import server_procs
from server_procs import post

KAPSL = os.environ["KAPSL"]
DATA = os.environ["KAPSL_TEST_DATA"]
MODEL = os.path.join(DATA, "tiny-rerank.gguf")
LLAMA_SERVER = os.environ.get("LLAMA_SERVER", "")

CASES = [
    {"query": "what do cats eat", "documents": ["Cats are carnivores.", "The stock market fell.", "Bread recipe",
                                                "Kittens drink milk", "cat food"]},
    {"query": "capital of France", "documents": ["Paris is the capital of France.", "Berlin", "a" * 300], "top_n": 2},
    {"query": "x", "texts": ["alpha", "beta", "gamma"], "return_text": True},
]


def check(ok, what):
    if not ok:
        sys.exit("FAIL: " + what)


def same_results(ours, theirs, tei):
    key = "score" if tei else "relevance_score"
    ours = ours if tei else ours["results"]
    theirs = theirs if tei else theirs["results"]
    return [r["index"] for r in ours] == [r["index"] for r in theirs] and all(
        abs(a[key] - b[key]) < 1e-4 for a, b in zip(ours, theirs))


def refusals(port):
    for body, code in [({"model": "rr", "query": "q", "documents": []}, 400),
                       ({"model": "rr", "documents": ["a"]}, 400),
                       ({"model": "rr", "query": "q", "documents": [1]}, 400),
                       ({"model": "rr", "query": "q", "documents": ["a"], "top_n": 0}, 400),
                       ({"model": "rr", "query": "q", "documents": ["a"], "bogus": 1}, 400),
                       ({"model": "gen", "query": "q", "documents": ["a"]}, 400),
                       ({"model": "nope", "query": "q", "documents": ["a"]}, 404)]:
        status, _ = post(port, "/v1/rerank", body)
        check(status == code, f"{body} answered {status}, not {code}")
    status, answer = post(port, "/v1/rerank", {"model": "rr", "query": "q", "documents": ["a", "b", "c"], "top_n": 2,
                                               "return_documents": True})
    check(status == 200 and len(answer["results"]) == 2 and "document" in answer["results"][0], f"top_n: {answer}")
    print("rerank refusals: ok")


def llama_answers(log):
    with server_procs.llama_server(LLAMA_SERVER, MODEL, ["--reranking", "-c", "2048", "-t", "1"], log) as port:
        check(port is not None, "llama-server did not start")
        return [post(port, "/v1/rerank", case) for case in CASES]


def main():
    with tempfile.TemporaryDirectory() as repo, tempfile.NamedTemporaryFile("w+", suffix=".log") as klog, \
         tempfile.NamedTemporaryFile("w+", suffix=".log") as llog:
        os.makedirs(os.path.join(repo, "rr"))
        shutil.copy(MODEL, os.path.join(repo, "rr", "model.gguf"))  # links out of the repository are skipped
        with open(os.path.join(repo, "rr", "metadata.json"), "w") as f:
            f.write('{"project_name": "rr", "framework": "gguf", "version": "1", "created_at": "2026-01-01", '
                    '"model_file": "model.gguf", "task": "rerank"}')
        shutil.copy(os.path.join(DATA, "tiny-spm.gguf"), os.path.join(repo, "gen.gguf"))
        kapsl, port = server_procs.start_kapsl(KAPSL, ["--models", repo], klog)
        try:
            refusals(port)
            if not server_procs.llama_server_built(LLAMA_SERVER):
                return 77
            theirs = llama_answers(llog)
            for case, (status, answer) in zip(CASES, theirs):
                ours_status, ours = post(port, "/v1/rerank", dict(case, model="rr"))
                check(status == 200 and ours_status == 200, f"{case}: kapsl {ours_status}, llama-server {status}")
                check(same_results(ours, answer, "texts" in case), f"{case}:\n  kapsl {ours}\n  llama-server {answer}")
        finally:
            kapsl.terminate()
            kapsl.wait(timeout=10)
    print(f"rerank: {len(CASES)} requests, the same scores and order as llama-server's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
