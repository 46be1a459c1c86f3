#!/usr/bin/python3
"""Replicas behind a load balancer, as a Kubernetes Service sees them.

Two `kapsl serve` hosts, each in its own network namespace joined to the root namespace by a
veth pair, behind nginx (Debian's package) listening on loopback: the stand-in for a Service
in front of an InferenceService's pods. Clients talk to nginx only; the test reads each
host's /metrics over its veth link.

  spread   KServe requests through nginx reach both hosts.
  drain    a host shut down gracefully (SIGTERM) while a stream holds it draining: its
           readiness answers 503, the KServe requests nginx still sends it get 503 and are
           passed to the other host; no client sees a failure.
  kill     a host killed (SIGKILL) under load, with OpenAI streams in flight on both: no
           KServe request fails (nginx retries them: inference is idempotent, so the
           configuration allows retrying POSTs under /v2/), the streams on the killed host
           end at once with an error (the connection closes before the stream's end), the
           others finish with [DONE].

Prints the counts. Needs root (ip netns) and nginx; exits 77 (skipped) with the reason when
either is missing. Environment: KAPSL (the kapsl binary), KAPSL_TEST_DATA (generated GGUF
models), KAPSL_SANITIZE (set in a sanitizer build). Python's standard library only.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from netns_hosts import Namespace, check, finish, names, require_netns, skip  # noqa: E402

KAPSL = os.environ.get("KAPSL", "")
DATA = os.environ.get("KAPSL_TEST_DATA", "")
ADD = "/usr/share/libonnx-testdata/data/node/test_add/model.onnx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SHUTDOWN_TIMEOUT = 3
TAG, SUBNET = names("k", 200)                   # 10.2xx.<host>.0/24, one per host
# Under a sanitizer, a process's exit is the sanitizer's too (LeakSanitizer's scan): the
# drain's exit time is printed, not asserted.
SANITIZED = bool(os.environ.get("KAPSL_SANITIZE"))

XS = list(range(60))
INFER = json.dumps({"inputs": [{"name": "x", "shape": [3, 4, 5], "datatype": "FP32", "data": XS},
                               {"name": "y", "shape": [3, 4, 5], "datatype": "FP32", "data": XS}]})


class Host(Namespace):
    """A network namespace holding one `kapsl serve`, reachable at SUBNET.<n>.2:8080."""

    def __init__(self, n, repo, tmp):
        super().__init__(n, TAG, SUBNET)
        self.repo, self.tmp = repo, tmp

    def start(self):
        log = open(os.path.join(self.tmp, "host%d.log" % self.n), "ab")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, KAPSL, "serve", "--models", self.repo, "--host", self.addr,
             "--port", "8080", "--threads", "1", "--ctx-size", "2048", "--parallel", "4", "--pin", "tiny",
             "--shutdown-timeout", str(SHUTDOWN_TIMEOUT), "-q"], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("host %d exited during start-up (see host%d.log)" % (self.n, self.n))
            if self.status("/v2/health/ready") == 200:
                return
            time.sleep(0.1)
        raise RuntimeError("host %d did not become ready" % self.n)

    def status(self, path):
        """The status of GET path on this host, or None if it does not answer."""
        try:
            c = http.client.HTTPConnection(self.addr, 8080, timeout=2)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            return r.status
        except OSError:
            return None

    def served(self):
        """KServe requests this host answered with 200, from its /metrics."""
        c = http.client.HTTPConnection(self.addr, 8080, timeout=5)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        pattern = r'^kapsl_inference_requests_total\{[^}]*model="add"[^}]*outcome="success"[^}]*\} (\d+)'
        return sum(int(v) for v in re.findall(pattern, text, re.M))

    def stop(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=SHUTDOWN_TIMEOUT + 30)



NGINX_CONF = """
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
  log_format upstreams '$request_uri $status [$upstream_addr] [$upstream_status]';
  access_log {tmp}/nginx-access.log upstreams;
  client_body_temp_path {tmp}/nginx-body;
  proxy_temp_path {tmp}/nginx-proxy;
  fastcgi_temp_path {tmp}/nginx-fastcgi;
  uwsgi_temp_path {tmp}/nginx-uwsgi;
  scgi_temp_path {tmp}/nginx-scgi;
  client_body_buffer_size 1m;
  upstream kapsl {{
    server {h1}:8080 max_fails=1 fail_timeout=5s;
    server {h2}:8080 max_fails=1 fail_timeout=5s;
    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_connect_timeout 1s;
    proxy_read_timeout 60s;
    proxy_buffering off;
    # KServe inference is a pure function of its inputs: safe to send again elsewhere.
    location /v2/ {{
      proxy_pass http://kapsl;
      proxy_next_upstream error timeout http_502 http_503 non_idempotent;
    }}
    # A generation is not: once sent, it is not retried (nginx's default for POST).
    location / {{
      proxy_pass http://kapsl;
      proxy_next_upstream error timeout http_503;
    }}
  }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Load:
    """KServe requests through nginx on `workers` keep-alive connections until stopped."""

    def __init__(self, port, workers):
        self.port, self.ok, self.failed, self.errors = port, 0, 0, []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.threads = [threading.Thread(target=self.work) for _ in range(workers)]
        for t in self.threads:
            t.start()

    def work(self):
        conn = None
        while not self.stopping.is_set():
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                conn.request("POST", "/v2/models/add/infer", INFER, {"Content-Type": "application/json"})
                r = conn.getresponse()
                body = r.read()
                good = r.status == 200 and json.loads(body)["outputs"][0]["data"][59] == 118
                outcome = None if good else "HTTP %d: %s" % (r.status, body[:120])
            except (OSError, http.client.HTTPException, ValueError) as e:
                outcome, conn = "%s: %s" % (type(e).__name__, e), None
            with self.lock:
                if outcome is None:
                    self.ok += 1
                else:
                    self.failed += 1
                    self.errors.append(outcome)

    def stop(self):
        self.stopping.set()
        for t in self.threads:
            t.join()
        return self.ok, self.failed


class Stream:
    """One streamed /v1/completions through nginx, read as it arrives."""

    def __init__(self, port, max_tokens, addr=None):
        self.first = threading.Event()
        self.done, self.error, self.ended_at = False, None, None
        self.thread = threading.Thread(target=self.read, args=(port, max_tokens, addr))
        self.thread.start()

    def read(self, port, max_tokens, addr):
        body = json.dumps({"model": "tiny", "prompt": "Count:", "max_tokens": max_tokens, "ignore_eos": True,
                           "stream": True})
        try:
            conn = http.client.HTTPConnection(addr or "127.0.0.1", 8080 if addr else port, timeout=60)
            conn.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            if r.status != 200:
                self.error = "HTTP %d" % r.status
                return
            while True:
                line = r.readline()
                if not line:
                    break
                if line.startswith(b"data: "):
                    self.first.set()
                    if line.strip() == b"data: [DONE]":
                        self.done = True
            if not self.done:
                self.error = "the stream closed before its end"
        except (OSError, http.client.HTTPException) as e:
            self.error = "%s: %s" % (type(e).__name__, e or "connection closed mid-stream")
        finally:
            self.ended_at = time.time()
            self.first.set()


def nginx_retries(tmp):
    """Requests nginx passed to a second host, from its access log."""
    with open(os.path.join(tmp, "nginx-access.log")) as f:
        return sum(1 for line in f if "/v2/" in line and ", " in line.split("[")[1])


def until_both_serve(port, hosts):
    """Sends requests through nginx until each host has answered some: nginx, which checks
    its upstreams passively, takes a host that failed back only when a request it tries there
    succeeds (a Service adds a pod back when its readiness probe passes)."""
    before = [h.served() for h in hosts]
    deadline = time.time() + 30
    while time.time() < deadline:
        load = Load(port, 2)
        time.sleep(0.5)
        load.stop()
        if all(h.served() > b for h, b in zip(hosts, before)):
            return
    raise RuntimeError("nginx did not send requests to both hosts again within 30 s")


def phase_spread(port, hosts):
    before = [h.served() for h in hosts]
    load = Load(port, 8)
    time.sleep(2)
    ok, failed = load.stop()
    got = [h.served() - b for h, b in zip(hosts, before)]
    print("spread: %d requests through nginx, %d failed; host 1 served %d, host 2 served %d" % (ok + failed, failed, *got))
    check(failed == 0 and ok > 0, "every request through nginx answered 200")
    check(sum(got) > 0 and min(got) >= 0.2 * sum(got), "both hosts take a share of the load")


def phase_drain(port, hosts, tmp):
    h1 = hosts[0]
    holder = Stream(port, 1900, addr=h1.addr)  # keeps host 1 draining for the whole timeout
    holder.first.wait(20)
    retried_before = nginx_retries(tmp)
    load = Load(port, 4)
    time.sleep(0.5)
    t0 = time.time()
    h1.proc.send_signal(signal.SIGTERM)
    readiness = []  # in order: the signal takes a moment to be handled, then it is 503 to the end
    while h1.proc.poll() is None and time.time() - t0 < SHUTDOWN_TIMEOUT + 5:
        readiness.append(h1.status("/v2/health/ready"))
        time.sleep(0.05)
    h1.proc.wait(timeout=30)
    exit_s = time.time() - t0
    time.sleep(0.5)
    ok, failed = load.stop()
    holder.thread.join(10)
    retried = nginx_retries(tmp) - retried_before
    print("drain: host 1 stopped in %.2f s (--shutdown-timeout %d); its readiness answered %s while draining; "
          "%d requests through nginx, %d failed, %d passed to host 2 by nginx" %
          (exit_s, SHUTDOWN_TIMEOUT, sorted({str(s) for s in readiness}), ok + failed, failed, retried))
    draining = readiness[readiness.index(503):] if 503 in readiness else []
    check(draining and 200 not in draining, "readiness turns 503 once shutdown starts and stays so until the exit")
    if SANITIZED:
        print("info  the draining host's exit time is not asserted in a sanitizer build")
    else:
        check(exit_s <= SHUTDOWN_TIMEOUT + 1, "the draining host exits within its shutdown timeout plus one second")
    check(failed == 0, "no request failed while a host drained" + ("" if failed == 0 else ": " + load.errors[0]))


def phase_kill(port, hosts, tmp):
    streams = [Stream(port, 600) for _ in range(4)]
    for s in streams:
        s.first.wait(20)
    load = Load(port, 4)
    time.sleep(0.5)
    retried_before = nginx_retries(tmp)
    killed_at = time.time()
    hosts[1].proc.kill()
    hosts[1].proc.wait()
    time.sleep(1.5)
    ok, failed = load.stop()
    for s in streams:
        s.thread.join(90)
    cut = [s for s in streams if not s.done]
    finished = [s for s in streams if s.done]
    slowest_cut = max((s.ended_at - killed_at for s in cut), default=0)
    print("kill: host 2 killed under load; %d KServe requests through nginx, %d failed, %d retried on host 1; "
          "streams: %d finished with [DONE], %d cut (ended %.2f s after the kill at the latest: %s)" %
          (ok + failed, failed, nginx_retries(tmp) - retried_before, len(finished), len(cut), slowest_cut,
           "; ".join(sorted({s.error for s in cut}))))
    check(failed == 0, "no KServe request failed when a host was killed" + ("" if failed == 0 else ": " + load.errors[0]))
    check(all(not s.thread.is_alive() for s in streams), "every stream ended (none hangs)")
    check(len(cut) >= 1 and len(finished) >= 1, "streams on the killed host are cut, the others finish")
    check(all(s.error for s in cut) and slowest_cut < 5, "a cut stream ends with an error at once, not a hang")


def main():
    if not KAPSL or not DATA:
        sys.exit("set KAPSL and KAPSL_TEST_DATA")
    require_netns(TAG)
    if not os.path.exists(NGINX):
        skip("nginx is not installed (scripts/bootstrap-deps installs it)")
    tmp = tempfile.mkdtemp(prefix="kapsl-replicas-")
    os.chmod(tmp, 0o755)
    repo = os.path.join(tmp, "models")
    os.makedirs(repo)
    shutil.copy(ADD, os.path.join(repo, "add.onnx"))
    shutil.copy(os.path.join(DATA, "tiny-spm.gguf"), os.path.join(repo, "tiny.gguf"))
    hosts, nginx = [], None
    try:
        for n in (1, 2):
            hosts.append(Host(n, repo, tmp))
        for h in hosts:
            h.start()
        port = free_port()
        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, h1=hosts[0].addr, h2=hosts[1].addr))
        nginx = subprocess.Popen([NGINX, "-p", tmp, "-c", os.path.join(tmp, "nginx.conf")],
                                 stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "nginx.out"), "wb"))
        for _ in range(100):
            if os.path.exists(os.path.join(tmp, "nginx.pid")) or nginx.poll() is not None:
                break
            time.sleep(0.05)
        if nginx.poll() is not None or not os.path.exists(os.path.join(tmp, "nginx.pid")):
            raise RuntimeError("nginx did not start: " + open(os.path.join(tmp, "nginx.out")).read().strip())
        print("topology: nginx on 127.0.0.1:%d -> %s:8080 (netns %s), %s:8080 (netns %s)" %
              (port, hosts[0].addr, hosts[0].ns, hosts[1].addr, hosts[1].ns), flush=True)
        phase_spread(port, hosts)
        phase_drain(port, hosts, tmp)
        hosts[0].start()
        until_both_serve(port, hosts)
        phase_kill(port, hosts, tmp)
    except Exception as e:  # a broken step is a failure with its reason, and still cleans up
        check(False, "%s: %s" % (type(e).__name__, e))
    finally:
        if nginx and nginx.poll() is None:
            nginx.terminate()
            nginx.wait()
        for h in hosts:
            h.destroy()
    finish(tmp, lambda name: name.endswith(".log") or name == "nginx.out")


if __name__ == "__main__":
    main()
