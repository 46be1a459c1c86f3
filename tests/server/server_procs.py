"""Starting `kapsl serve` and llama-server for the parity tests, and talking to them."""
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, path, body):
    """(status, parsed JSON body or None) of a POST of `body` as JSON."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None


def wait_ready(proc, port, path, seconds=30):
    """True once GET `path` answers 200; False if the process exits or time runs out."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError):
            pass
        time.sleep(0.1)
    return False


def start_kapsl(kapsl, args, log):
    """`kapsl serve ARGS --port 0`, logging to the file `log`; (process, port) once it listens."""
    proc = subprocess.Popen([kapsl, "serve", *args, "--port", "0"], stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        log.flush()
        with open(log.name) as f:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", f.read())
        if m:
            return proc, int(m.group(1))
        time.sleep(0.1)
    proc.kill()
    sys.exit("FAIL: kapsl serve did not start")


def llama_server_built(path):
    """True if llama-server is at `path`; else says the test is skipped (its caller exits 77)."""
    if path and os.access(path, os.X_OK):
        return True
    print("SKIP: llama-server is not built (scripts/bootstrap-deps --with-tools builds it)")
    return False


@contextlib.contextmanager
def llama_server(path, model, args, log):
    """llama-server on `model` with ARGS, on a free loopback port, logging to the file `log`:
    yields the port once /health answers (None if it never did), and stops it on leaving."""
    port = free_port()
    proc = subprocess.Popen([path, "-m", model, "--host", "127.0.0.1", "--port", str(port), *args], stdout=log,
                            stderr=subprocess.STDOUT)
    try:
        yield port if wait_ready(proc, port, "/health") else None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
