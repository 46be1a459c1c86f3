#!/usr/bin/python3
"""One GGUF model split across hosts with llama.cpp's RPC backend, over real network hops.

Two `kapsl worker`s, each in its own network namespace joined to the root namespace by a
veth pair; `kapsl serve` in the root namespace loads a model with `--rpc` on both, so that
every token crosses both links twice.

  placement  `kapsl info --rpc` shows which layers live on which worker.
  parity     greedy output through the two workers equals a local run, token for token.
  speed      tokens/s of generation: local, split, and split with a delay on both links
             (tc netem), where the kernel allows it. Printed, not asserted.
  down       a worker address where nothing listens fails the load at once, naming it.
  silent     a worker that accepts the connection and never answers fails the load after
             the RPC timeout, instead of hanging it.
  lost       a worker killed mid-generation: the stream in flight ends at once with an error
             naming it, the engine fails its health check and the pool drops it; while the
             worker is down a request gets 503 (the reload's check fails), and once it is
             back the next request loads the model again and gets the same tokens.

Needs root (ip netns); exits 77 (skipped) with the reason without it. Environment: KAPSL
(the kapsl binary), MAKE_TINY_GGUF and LLAMA_VOCAB (to make the model), LLAMA_BENCH (llama.cpp's
llama-bench, the peer for the speed ratio; optional), KAPSL_SANITIZE (set
in a sanitizer build: a smaller model, fewer tokens). Python's standard library only.
"""
import http.client
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "server"))
from netns_hosts import Namespace, check, finish, names, require_netns  # noqa: E402
from server_procs import start_kapsl  # noqa: E402

KAPSL = os.environ.get("KAPSL", "")
MAKE_TINY_GGUF = os.environ.get("MAKE_TINY_GGUF", "")
LLAMA_VOCAB = os.environ.get("LLAMA_VOCAB", "")
LLAMA_BENCH = os.environ.get("LLAMA_BENCH", "")
SANITIZED = bool(os.environ.get("KAPSL_SANITIZE"))
TAG, SUBNET = names("r", 150)   # 10.15x.<host>.0/24
PORT = 50052
TOKENS = 24 if SANITIZED else 64
PROMPT = "The quick brown fox jumps over the lazy dog because"

def wait_listening(addr, port, proc=None, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline and not (proc and proc.poll() is not None):
        try:
            socket.create_connection((addr, port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


class Worker(Namespace):
    """A network namespace holding one `kapsl worker` on <addr>:PORT."""

    def __init__(self, n, tmp):
        super().__init__(n, TAG, SUBNET)
        self.tmp = tmp
        self.endpoint = "%s:%d" % (self.addr, PORT)

    def start(self):
        log = open(os.path.join(self.tmp, "worker%d.log" % self.n), "ab")
        self.proc = subprocess.Popen(self.inside(KAPSL, "worker", "--host", self.addr, "--port", str(PORT),
                                                 "--threads", "1"), stdout=log, stderr=subprocess.STDOUT)
        if not wait_listening(self.addr, PORT, self.proc):
            raise RuntimeError("worker %d did not listen (see worker%d.log)" % (self.n, self.n))

    def kill(self):
        self.proc.kill()
        self.proc.wait()


def make_model(tmp):
    path = os.path.join(tmp, "split.gguf")
    shape = ["--n-layer", "4"] if SANITIZED else ["--n-embd", "512", "--n-layer", "8", "--n-head", "8",
                                                  "--n-ff", "1408"]
    subprocess.run([MAKE_TINY_GGUF, LLAMA_VOCAB, path, "--seed", "7", *shape], check=True, stdout=subprocess.DEVNULL)
    return path


def serve(model, tmp, name, rpc=None):
    log = open(os.path.join(tmp, name + ".log"), "a")
    args = ["--model", model, "--model-name", "m", "--pin", "m", "--host", "127.0.0.1", "--threads", "1"]
    return start_kapsl(KAPSL, args + (["--rpc", ",".join(rpc)] if rpc else []), log)


def stream(port, max_tokens, on_chunk=None, timeout=60):
    """Streams a greedy completion: (tokens, seconds between first and last token, error)."""
    body = {"model": "m", "prompt": PROMPT, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
            "logprobs": 1, "stream": True}
    tokens, first, last = [], None, None
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            return tokens, 0, "HTTP %d: %s" % (r.status, r.read()[:200])
        for line in r:
            line = line.strip()
            if not line.startswith(b"data: ") or line == b"data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                return tokens, 0, "error event: %s" % event["error"].get("message")
            choice = event["choices"][0]
            new = (choice.get("logprobs") or {}).get("tokens") or []
            if new:
                last = time.time()
                first = first or last
                tokens += new
                if on_chunk:
                    on_chunk(len(tokens))
        done = len(tokens) == max_tokens
        return tokens, (last - first) if first else 0, None if done else "stream ended after %d tokens" % len(tokens)
    except (OSError, http.client.HTTPException, ValueError) as e:
        return tokens, 0, "%s: %s" % (type(e).__name__, e)


def tokens_per_s(port, reps=3):
    rates = []
    for _ in range(reps):
        tokens, seconds, error = stream(port, TOKENS)
        if error or seconds <= 0:
            raise RuntimeError("timing run failed: %s" % error)
        rates.append((len(tokens) - 1) / seconds)
    return statistics.median(rates)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def phase_placement(model, workers):
    out = subprocess.run([KAPSL, "info", model, "--threads", "1", "--rpc", ",".join(w.endpoint for w in workers)],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"meta +placement = (.*)", out.stdout)
    print("placement: %s" % (m.group(1) if m else out.stderr.strip()[-300:]), flush=True)
    check(out.returncode == 0 and m is not None and all("(%s)" % w.endpoint in m.group(1) for w in workers),
          "kapsl info shows layers on both workers")


def phase_parity_and_speed(model, workers, tmp):
    local, port = serve(model, tmp, "local")
    expected, _, error = stream(port, TOKENS)
    check(error is None, "a local greedy run: %d tokens" % len(expected) + ("" if error is None else ": " + error))
    rates = {"local": tokens_per_s(port)}
    stop(local)
    split, port = serve(model, tmp, "split", [w.endpoint for w in workers])
    got, _, error = stream(port, TOKENS)
    check(error is None and got == expected, "greedy output through two workers equals the local run, token for "
          "token (%d tokens)" % len(got) + ("" if error is None else ": " + error))
    rates["split"] = tokens_per_s(port)
    delay = "1ms"
    netem = all(subprocess.run(["tc", "qdisc", "add", "dev", w.veth, "root", "netem", "delay", delay],
                               stderr=subprocess.DEVNULL).returncode == 0 for w in workers)
    if netem:
        rates["split, +%s each way on each link" % delay] = tokens_per_s(port)
    for w in workers:
        subprocess.run(["tc", "qdisc", "del", "dev", w.veth, "root"], stderr=subprocess.DEVNULL)
    stop(split)
    print("generation tokens/s, kapsl serve (a stream's tokens after the first, median of 3 runs of %d tokens, "
          "1 thread per host):" % TOKENS)
    for name, rate in rates.items():
        print("  %-40s %7.1f  (%.2fx local)" % (name, rate, rate / rates["local"]))
    if not netem:
        print("  (tc netem is not available in this kernel: no delayed run)")
    peer_rates(model, workers)
    return expected


def peer_rates(model, workers):
    """llama.cpp's own split of the same model over the same workers (llama-bench --rpc), for
    the split/local ratio: the peer decodes without sampling, HTTP or streaming."""
    if not (LLAMA_BENCH and os.access(LLAMA_BENCH, os.X_OK)):
        print("  (llama-bench is not built: no peer run; scripts/bootstrap-deps --with-tools builds it)")
        return
    rates = {}
    for name, extra in (("local", ["-ngl", "0"]), ("split", ["-ngl", "99", "--rpc", ",".join(w.endpoint for w in workers)])):
        out = subprocess.run([LLAMA_BENCH, "-m", model, "-p", "0", "-n", str(TOKENS), "-t", "1", "-r", "3", "-o", "json",
                              *extra], capture_output=True, text=True, timeout=300)
        rows = json.loads(out.stdout) if out.returncode == 0 else []
        rates[name] = next((r["avg_ts"] for r in rows if r.get("n_gen") == TOKENS), None)
    if None in rates.values():
        check(False, "llama-bench ran, local and split")
        return
    print("generation tokens/s, llama.cpp's llama-bench on the same model and workers (mean of 3):")
    for name, rate in rates.items():
        print("  %-40s %7.1f  (%.2fx local)" % (name, rate, rate / rates["local"]))


def phase_refused(model, workers, tmp):
    listener = subprocess.Popen(workers[0].inside(sys.executable, "-c", (
        "import socket,time\ns=socket.socket()\ns.bind(('%s',%d))\ns.listen()\nc=s.accept()\ntime.sleep(60)"
        % (workers[0].addr, PORT + 1))))
    try:
        wait_listening(workers[0].addr, PORT + 1)
        for what, endpoint, limit in (("down", "%s:%d" % (workers[1].addr, PORT + 2), 5),
                                      ("silent", "%s:%d" % (workers[0].addr, PORT + 1), 15)):
            start = time.time()
            out = subprocess.run([KAPSL, "info", model, "--threads", "1", "--rpc", endpoint], capture_output=True,
                                 text=True, timeout=120)
            took = time.time() - start
            said = out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ""
            print("%s worker: exit %d after %.1f s: %s" % (what, out.returncode, took, said), flush=True)
            check(out.returncode == 1 and endpoint in said and took < limit,
                  "a %s worker fails the load within %d s, naming it" % (what, limit))
    finally:
        listener.kill()
        listener.wait()


def completion_status(port):
    """(status, error message) of a short non-streamed completion."""
    body = json.dumps({"model": "m", "prompt": PROMPT, "max_tokens": 4})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    answer = json.loads(r.read() or b"{}")
    return r.status, (answer.get("error") or {}).get("message", "")


def phase_lost(model, workers, tmp, expected):
    server, port = serve(model, tmp, "lost", [w.endpoint for w in workers])
    killed = []

    def kill_second(n):
        if n >= 4 and not killed:
            killed.append(time.time())
            workers[1].kill()

    tokens, _, error = stream(port, 1900, kill_second, timeout=30)
    ended = time.time() - killed[0] if killed else -1
    print("stream cut by the lost worker after %d tokens, %.2f s after the kill: %s" % (len(tokens), ended, error))
    check(error is not None and "stopped answering" in error and workers[1].endpoint in error and 0 <= ended < 5,
          "the stream in flight ends at once with an error naming the lost worker")
    check(server.poll() is None, "kapsl serve goes on serving")
    status, message = completion_status(port)
    print("while the worker is down: HTTP %d: %s" % (status, message), flush=True)
    check(status == 503 and workers[1].endpoint in message,
          "while the worker is down, a request gets 503 naming it (the engine was dropped; its reload fails)")
    workers[1].start()
    got, _, error = stream(port, TOKENS)
    check(error is None and got == expected, "once the worker is back, the next request reloads the model and gets "
          "the same tokens" + ("" if error is None else ": " + error))
    log = open(os.path.join(tmp, "lost.log")).read()
    check("failed its health check" in log, "the pool dropped the engine for its failed health check")
    stop(server)


def main():
    if not (KAPSL and MAKE_TINY_GGUF and LLAMA_VOCAB):
        sys.exit("set KAPSL, MAKE_TINY_GGUF and LLAMA_VOCAB")
    require_netns(TAG)
    tmp = tempfile.mkdtemp(prefix="kapsl-rpc-")
    workers = []
    try:
        model = make_model(tmp)
        for n in (1, 2):
            workers.append(Worker(n, tmp))
            workers[-1].start()
        print("topology: kapsl serve in the root namespace; workers %s (netns %s), %s (netns %s)" %
              (workers[0].endpoint, workers[0].ns, workers[1].endpoint, workers[1].ns), flush=True)
        phase_placement(model, workers)
        expected = phase_parity_and_speed(model, workers, tmp)
        phase_refused(model, workers, tmp)
        phase_lost(model, workers, tmp, expected)
    except Exception as e:  # a broken step is a failure with its reason, and still cleans up
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        for w in workers:
            w.destroy()
    finish(tmp, lambda name: name.endswith(".log"))


if __name__ == "__main__":
    main()
