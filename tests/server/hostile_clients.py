#!/usr/bin/python3
"""The hostile-client suite: `kapsl serve` on loopback against what a hostile or broken client
sends — deep nesting, huge declared shapes, chunked and lying lengths, maximum-size bodies,
slow headers and slow bodies on more connections than HTTP workers, disconnects mid-stream,
200 concurrent connections — while a monitor asks for liveness every 50 ms.

It asserts that the process stays up, liveness answers in under 100 ms throughout, every
request is answered (200, 4xx or 503/429) in time, RSS returns to its baseline, and shutdown
completes within --shutdown-timeout plus one second; and prints the figures (liveness
latency under attack, peak RSS per maximum-size body, shutdown time) for docs/server.md.

Environment: KAPSL (the kapsl binary), KAPSL_TEST_DATA (generated GGUF models). Python's
standard library only. Exit status 0 = every check passed.
"""
import atexit
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

KAPSL = os.environ.get("KAPSL", "")
DATA = os.environ.get("KAPSL_TEST_DATA", "")
ADD = "/usr/share/libonnx-testdata/data/node/test_add/model.onnx"
HTTP_THREADS = 4
READ_TIMEOUT = 3
SHUTDOWN_TIMEOUT = 2
MAX_BODY_MIB = 64
# Under a sanitizer, time and memory are the sanitizer's: those figures are printed only.
SANITIZED = bool(os.environ.get("KAPSL_SANITIZE"))
failures = []
figures = {}


def check(ok, what, measured=False):
    if measured and SANITIZED:
        print("info  " + what + " (sanitizer build: not asserted)", flush=True)
        return
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def reduce_sum_model(path):
    """y = ReduceSum(x), x float [N]: a model whose input can be as large as a body allows."""
    import onnx
    from onnx import helper as h, TensorProto as T
    g = h.make_graph([h.make_node("ReduceSum", ["x"], ["y"], keepdims=0)], "sum",
                     [h.make_tensor_value_info("x", T.FLOAT, ["n"])], [h.make_tensor_value_info("y", T.FLOAT, [])])
    onnx.save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)]), path)


class Server:
    def __init__(self, repo, *flags):
        self.log = open(os.path.join(repo, "..", "server.log"), "w+")
        self.proc = subprocess.Popen([KAPSL, "serve", "--models", repo, "--port", "0", "--threads", "1",
                                      "--http-threads", str(HTTP_THREADS), "--read-timeout", str(READ_TIMEOUT),
                                      "--shutdown-timeout", str(SHUTDOWN_TIMEOUT), "--max-body-mib",
                                      str(MAX_BODY_MIB), "--ctx-size", "8192", "-q", *flags],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        # Whatever ends this script (a failed check, an exception, a timeout's SIGTERM), the
        # server goes with it.
        atexit.register(self.kill)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
        self.port = None
        for _ in range(600):
            self.log.seek(0)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+) ", self.log.read())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise SystemExit("the server exited during start-up")
            time.sleep(0.1)
        if self.port is None:
            raise SystemExit("the server did not start")

    def status(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
        return 0

    def rss(self):
        return self.status("VmRSS")

    def peak(self):
        return self.status("VmHWM")

    def reset_peak(self):
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")

    def alive(self):
        return self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.kill()
            self.proc.wait()


def request(port, method, path, body=b"", headers=None, timeout=30):
    """One request on its own connection; returns (status or None, body, seconds). The body
    is sent from a thread while the answer is read: a server may answer (413, 503) and close
    before a large body is all sent, as it should."""
    start = time.monotonic()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    data = b""
    head = f"{method} {path} HTTP/1.1\r\nHost: kapsl\r\nConnection: close\r\n" + \
        "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items()) + "\r\n"

    def send():
        try:
            s.sendall(head.encode() + body)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        sender.join(timeout)
        s.close()
    m = re.match(rb"HTTP/1\.1 (\d+)", data)
    return (int(m.group(1)) if m else None), data.split(b"\r\n\r\n", 1)[-1], time.monotonic() - start


def post(port, path, body, content_type="application/json", timeout=30):
    if isinstance(body, str):
        body = body.encode()
    return request(port, "POST", path, body, {"Content-Type": content_type, "Content-Length": len(body)},
                   timeout=timeout)


def monitor_loop(port):
    """The monitor process: GET /v2/health/live every 50 ms on a new connection, printing each
    latency (or "miss"). A process of its own, so that the attacking threads' share of this
    interpreter's lock never counts as the server's latency."""
    while True:
        start = time.monotonic()
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: k\r\nConnection: close\r\n\r\n")
            data = s.recv(4096)
            s.close()
            print(f"{time.monotonic() - start:.6f}" if data.startswith(b"HTTP/1.1 200") else "miss", flush=True)
        except OSError:
            print("miss", flush=True)
        time.sleep(0.05)


class LivenessMonitor:
    """Runs monitor_loop in its own process; latencies() reads what it reported so far."""

    def __init__(self, port):
        self.proc = subprocess.Popen([sys.executable, __file__, "--monitor", str(port)], stdout=subprocess.PIPE,
                                     text=True)
        atexit.register(self.proc.kill)
        self.lines = []
        self.reader = threading.Thread(target=lambda: [self.lines.append(x) for x in self.proc.stdout], daemon=True)
        self.reader.start()

    @property
    def latencies(self):
        return [float(x) for x in list(self.lines) if x.strip() != "miss"]

    @property
    def misses(self):
        return sum(1 for x in list(self.lines) if x.strip() == "miss")

    def stop(self):
        self.proc.terminate()
        self.proc.wait()
        self.reader.join()


def metric(port, name):
    _, body, _ = request(port, "GET", "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


def kserve_add(value=1.0):
    data = [value] * 60
    return json.dumps({"inputs": [{"name": "x", "shape": [3, 4, 5], "datatype": "FP32", "data": data},
                                  {"name": "y", "shape": [3, 4, 5], "datatype": "FP32", "data": data}]})


def crashes_and_lies(port):
    deep = "[" * 100000 + "1" + "]" * 100000
    status, body, _ = post(port, "/v2/models/add/infer",
                           '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":' + deep + '}]}')
    check(status == 400 and b"nested" in body, f"KServe data nested 100,000 deep: 400 ({status})")
    status, body, _ = post(port, "/v1/completions", '{"model":"tiny","prompt":' + deep + '}')
    check(status == 400 and b"nested" in body, f"OpenAI field nested 100,000 deep: 400 ({status})")
    status, body, _ = post(port, "/v1/completions", '{"model":"tiny","stop":{"a":' + deep + '}}')
    check(status == 400, f"OpenAI error path with deep nesting: 400 ({status})")
    for shape in ("500000000", "1000000000000", "9223372036854775807, 2"):
        status, body, seconds = post(port, "/v2/models/sum/infer",
                                     '{"inputs":[{"name":"x","shape":[' + shape + '],"datatype":"FP32","data":[1]}]}')
        check(status == 400 and seconds < 1, f"declared shape [{shape}] with one value: 400 in {seconds:.3f} s ({status})")
    status, _, seconds = request(port, "POST", "/v2/models/add/infer", b"{}",
                                 {"Content-Length": str(100 << 30)}, timeout=10)
    check(status == 413 and seconds < 1, f"Content-Length of 100 GiB, tiny body: 413 in {seconds:.3f} s ({status})")
    chunk = b"x" * (1 << 20)
    chunked = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(MAX_BODY_MIB + 4)) + b"0\r\n\r\n"
    status, _, seconds = request(port, "POST", "/v2/models/add/infer", chunked, {"Transfer-Encoding": "chunked"})
    check(status == 413, f"chunked body over --max-body-mib: 413 in {seconds:.2f} s ({status})")
    status, _, seconds = request(port, "POST", "/v2/models/add/infer", b"5\r\nab", {"Transfer-Encoding": "chunked"},
                                 timeout=READ_TIMEOUT + 5)
    check(status in (None, 400, 408) and seconds < READ_TIMEOUT + 2,
          f"chunk shorter than its size, then silence: closed in {seconds:.2f} s")
    status, _, seconds = request(port, "POST", "/v2/models/add/infer", b"", {}, timeout=10)
    check(status == 400 and seconds < 1, f"POST with no body and no Content-Length: 400 in {seconds:.3f} s ({status})")
    big_form = kserve_add(1.0) + " " * 20000
    status, _, _ = post(port, "/v2/models/add/infer", big_form, content_type="application/x-www-form-urlencoded")
    check(status == 200, f"curl -d (form content type) with a 20 KiB JSON body: 200 ({status})")


def max_size_bodies(server):
    port = server.port
    n = (MAX_BODY_MIB << 20) // 4 - 1024  # "0.5," per value: a body just under the limit
    body = ('{"inputs":[{"name":"x","shape":[' + str(n) + '],"datatype":"FP32","data":[' +
            ",".join(["0.5"] * n) + "]}]}").encode()
    baseline = server.rss()
    server.reset_peak()
    status, answer, seconds = post(port, "/v2/models/sum/infer", body, timeout=120)
    peak = server.peak() - baseline
    ok = status == 200 and abs(json.loads(answer)["outputs"][0]["data"][0] - 0.5 * n) < 0.01 * n
    check(ok, f"one {len(body) >> 20} MiB body: 200 in {seconds:.2f} s ({status})")
    factor = peak / len(body)
    figures["peak RSS above baseline, one max-size body"] = f"{peak / 2**20:.0f} MiB ({factor:.2f}x the body)"
    check(factor <= 3.5, f"peak RSS for a max-size body {factor:.2f}x the body (aim: 3x)", measured=True)
    server.reset_peak()
    results = [None] * 6
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, post(port, "/v2/models/sum/infer", body, timeout=300)))
               for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak6 = server.peak() - baseline
    statuses = sorted(r[0] for r in results)
    figures["peak RSS above baseline, six max-size bodies at once"] = f"{peak6 / 2**20:.0f} MiB, answers {statuses}"
    check(all(s in (200, 503) for s in statuses) and 200 in statuses,
          f"six max-size bodies at once: {statuses}")
    check(peak6 < 16 * len(body), f"six max-size bodies at once: peak {peak6 / 2**20:.0f} MiB (the body budget bounds it)",
          measured=True)


def slow_clients(port, monitor):
    """More slow connections than workers: headers a byte at a time, and bodies."""
    def slow(kind, results, i):
        s = socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT + 10)
        start = time.monotonic()
        if kind == "body":
            s.sendall(b"POST /v2/models/add/infer HTTP/1.1\r\nHost: k\r\nContent-Length: 100000\r\n\r\n")
            payload = b"[" * 100000
        else:
            payload = b"GET /v2/health/live HTTP/1.1\r\nHost: k\r\nX-Slow: " + b"a" * 1000
        try:
            for b in payload:
                s.sendall(bytes([b]))
                time.sleep(0.3)
                if time.monotonic() - start > READ_TIMEOUT + 8:
                    break
        except OSError:
            pass
        results[i] = time.monotonic() - start
        s.close()

    count = 3 * HTTP_THREADS
    results = [None] * (2 * count)
    threads = [threading.Thread(target=slow, args=("header" if i < count else "body", results, i)) for i in range(2 * count)]
    before = len(monitor.latencies)
    for t in threads:
        t.start()
    # Real requests keep working meanwhile.
    statuses = [post(port, "/v2/models/add/infer", kserve_add())[0] for _ in range(20)]
    for t in threads:
        t.join()
    during = monitor.latencies[before:]
    check(all(s == 200 for s in statuses), f"20 inferences while {2 * count} slow clients hold connections: all 200")
    longest = max(results)
    check(longest < READ_TIMEOUT + 1.5, f"slow clients closed after at most {longest:.2f} s (read timeout {READ_TIMEOUT} s)",
          measured=True)
    figures["liveness during slow clients"] = \
        f"{len(during)} checks, p50 {statistics.median(during) * 1e3:.1f} ms, max {max(during) * 1e3:.1f} ms"


def concurrency_and_disconnects(port):
    results = [None] * 200
    def one(i):
        results[i] = post(port, "/v2/models/add/infer", kserve_add(), timeout=60)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    statuses = [r[0] for r in results]
    counts = {s: statuses.count(s) for s in set(statuses)}
    check(all(s in (200, 503) for s in statuses), f"200 concurrent connections answered in {wall:.2f} s: {counts}")
    figures["200 concurrent KServe requests"] = f"{counts} in {wall:.2f} s"
    before = metric(port, "kapsl_http_client_disconnects_total") + \
        metric(port, 'kapsl_inference_requests_total{model="tiny",outcome="cancelled"}')
    for stream in (True, False):
        s = socket.create_connection(("127.0.0.1", port))
        body = json.dumps({"model": "tiny", "prompt": "Count:", "max_tokens": 2000, "ignore_eos": True,
                           "stream": stream}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\n"
                  b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        if stream:
            s.recv(4096)
        else:
            time.sleep(0.3)
        s.close()
    after = before
    for _ in range(100):
        after = metric(port, "kapsl_http_client_disconnects_total") + \
            metric(port, 'kapsl_inference_requests_total{model="tiny",outcome="cancelled"}')
        if after >= before + 2:
            break
        time.sleep(0.1)
    check(after >= before + 2, "clients leaving mid-stream and mid-generation cancel their work")


def shutdown_under_attack(server):
    port = server.port
    socks = []
    for _ in range(3 * HTTP_THREADS):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: k\r\nX-Slow: a")
        socks.append(s)
    stream = socket.create_connection(("127.0.0.1", port))
    # Longer than the shutdown timeout: about 3,000 tokens/s here.
    body = json.dumps({"model": "tiny", "prompt": "Count:", "max_tokens": 8000, "ignore_eos": True,
                       "stream": True}).encode()
    stream.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: k\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    stream.recv(4096)
    start = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    try:
        code = server.proc.wait(timeout=SHUTDOWN_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        code = None
        server.proc.kill()
    took = time.monotonic() - start
    figures["shutdown with slow clients and a stream in flight"] = f"{took:.2f} s (--shutdown-timeout {SHUTDOWN_TIMEOUT})"
    check(code == 0, f"shutdown under attack: exit {code}")
    check(took < SHUTDOWN_TIMEOUT + 1, f"shutdown under attack in {took:.2f} s", measured=True)
    tail = b""
    try:
        stream.settimeout(2)
        while True:
            chunk = stream.recv(65536)
            if not chunk:
                break
            tail += chunk
    except OSError:
        pass
    check(b"server_shutting_down" in tail and b"[DONE]" in tail and b'"finish_reason":"length"' not in tail,
          "the stream cut by shutdown ends with an error event and [DONE], not a normal finish")
    for s in socks:
        s.close()


def main():
    tmp = tempfile.mkdtemp(prefix="kapsl-hostile-")
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    # Copies: the repository refuses links that leave it.
    shutil.copy(ADD, os.path.join(repo, "add.onnx"))
    reduce_sum_model(os.path.join(repo, "sum.onnx"))
    shutil.copy(os.path.join(DATA, "tiny-spm.gguf"), os.path.join(repo, "tiny.gguf"))
    server = Server(repo)
    port = server.port
    post(port, "/v2/models/add/infer", kserve_add())
    post(port, "/v2/models/sum/infer", '{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}')
    post(port, "/v1/completions", '{"model":"tiny","prompt":"hi","max_tokens":2}')
    baseline = server.rss()
    monitor = LivenessMonitor(port)
    worst = {}
    for name, phase in (("crashes and lies", lambda: crashes_and_lies(port)),
                        ("max-size bodies", lambda: max_size_bodies(server)),
                        ("slow clients", lambda: slow_clients(port, monitor)),
                        ("concurrency and disconnects", lambda: concurrency_and_disconnects(port))):
        before = len(monitor.latencies)
        phase()
        worst[name] = max(monitor.latencies[before:], default=0.0)
    monitor.stop()
    figures["worst liveness per phase"] = ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in worst.items())
    check(server.alive(), "the process stayed up")
    lat = monitor.latencies
    figures["liveness throughout"] = \
        f"{len(lat)} checks, p50 {statistics.median(lat) * 1e3:.1f} ms, p99 " \
        f"{sorted(lat)[int(0.99 * (len(lat) - 1))] * 1e3:.1f} ms, max {max(lat) * 1e3:.1f} ms, {monitor.misses} missed"
    check(monitor.misses == 0, f"liveness answered every one of {len(lat)} checks")
    check(max(lat) < 0.1, f"liveness under 100 ms throughout (max {max(lat) * 1e3:.1f} ms)", measured=True)
    time.sleep(1)
    after = server.rss()
    figures["RSS"] = f"baseline {baseline / 2**20:.0f} MiB, after the attacks {after / 2**20:.0f} MiB"
    check(after < baseline + (64 << 20), f"RSS back to its baseline: {baseline >> 20} -> {after >> 20} MiB", measured=True)
    shutdown_under_attack(server)
    print("\nfigures:")
    for k, v in figures.items():
        print(f"  {k}: {v}")
    if failures:
        print(f"\n{len(failures)} check(s) failed; server log: {server.log.name}")
        server.log.seek(0)
        print("".join(server.log.readlines()[-30:]))
        sys.exit(1)
    shutil.rmtree(tmp, ignore_errors=True)  # kept, with the server's log, when a check failed
    print("\nhostile clients: ok")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--monitor":
        monitor_loop(int(sys.argv[2]))
    else:
        main()
