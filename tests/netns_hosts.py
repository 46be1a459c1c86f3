"""Test hosts on one machine: network namespaces joined to the root namespace by veth pairs.

Host n of a test lives in namespace <tag>h<n> at <subnet>.<n>.2; the root namespace is
<subnet>.<n>.1 on the other end of its veth pair (<tag>v<n>). Traffic stays on this machine.
Needs root; require_netns() exits 77 (ctest: skipped) with the reason where it cannot run.
Python's standard library only.
"""
import os
import shutil
import subprocess
import sys

failures = []  # what check() found wrong, in order


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def finish(tmp, is_log):
    """Prints the last lines of tmp's logs (files whose name is_log) if a check failed, removes
    tmp (unless KEEP_TMP is set) and exits: 1 if a check failed, else 0."""
    if failures:
        for name in sorted(os.listdir(tmp)):
            if is_log(name):
                print("--- %s (last lines)\n%s" % (name, "".join(open(os.path.join(tmp, name)).readlines()[-15:])))
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d checks failed" % len(failures) if failures else "all checks passed")
    sys.exit(1 if failures else 0)


def skip(why):
    print("SKIP: " + why, flush=True)
    sys.exit(77)


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def names(prefix, subnet_base):
    """(tag, subnet) unique to this process: interface and namespace names stay <= 15 chars."""
    return "%s%d" % (prefix, os.getpid() % 100000), "10.%d" % (subnet_base + os.getpid() % 50)


def require_netns(tag):
    if os.geteuid() != 0:
        skip("needs root for network namespaces (ip netns)")
    if subprocess.run(["ip", "netns", "add", tag + "probe"], stderr=subprocess.DEVNULL).returncode != 0:
        skip("cannot create network namespaces here (ip netns add failed)")
    subprocess.run(["ip", "netns", "del", tag + "probe"])


class Namespace:
    """Host n: a namespace and its veth link to the root namespace, made at construction."""

    def __init__(self, n, tag, subnet):
        self.n = n
        self.ns, self.veth = "%sh%d" % (tag, n), "%sv%d" % (tag, n)
        self.addr = "%s.%d.2" % (subnet, n)
        self.proc = None
        try:
            run("ip", "netns", "add", self.ns)
            run("ip", "link", "add", self.veth, "type", "veth", "peer", "name", self.veth + "p")
            run("ip", "link", "set", self.veth + "p", "netns", self.ns)
            run("ip", "addr", "add", "%s.%d.1/24" % (subnet, n), "dev", self.veth)
            run("ip", "link", "set", self.veth, "up")
            self.exec_run("ip", "addr", "add", self.addr + "/24", "dev", self.veth + "p")
            self.exec_run("ip", "link", "set", self.veth + "p", "up")
            self.exec_run("ip", "link", "set", "lo", "up")
        except Exception:
            self.destroy()
            raise

    def inside(self, *cmd):
        """`cmd` as run inside the namespace."""
        return ["ip", "netns", "exec", self.ns, *cmd]

    def exec_run(self, *cmd):
        run(*self.inside(*cmd))

    def destroy(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        subprocess.run(["ip", "netns", "del", self.ns], stderr=subprocess.DEVNULL)
        subprocess.run(["ip", "link", "del", self.veth], stderr=subprocess.DEVNULL)
