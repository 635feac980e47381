"""make cluster (scripts/cluster.sh): NODES members on 127.0.0.1 in the
foreground, ports from PORT on; SIGINT or SIGTERM stops exactly its members
and removes their data; a member that dies takes the others down with it.

The servers are cairn (CAIRN_BIN), or etcd with CAIRN_TEST_TARGET=etcd,
which checks the script itself against a server that replicates."""

import json
import os
import random
import signal
import socket
import subprocess
import threading
import time

import pytest

from pylib.cluster import ETCD_BIN, ROOT, cairn_bin

SCRIPT = os.path.join(ROOT, "scripts", "cluster.sh")
TARGET = os.environ.get("CAIRN_TEST_TARGET", "cairn")


def server_bin():
    return ETCD_BIN if TARGET == "etcd" else cairn_bin()


def free_base(n):
    """A base port whose next 2n ports are all free on 127.0.0.1 now."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 2)
        socks = []
        try:
            for p in range(base, base + 2 * n):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no run of %d free ports" % (2 * n))


def running(pid):
    """pid exists and has not exited (a zombie has)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def http_get(base_url, path, timeout=2.0):
    import http.client
    host, port = base_url[len("http://"):].split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Script:
    """scripts/cluster.sh running with NODES and PORT; its output is read
    by a thread into self.lines."""

    def __init__(self, tmp, nodes=3, base=None, args=()):
        self.nodes = nodes
        self.base = base if base is not None else free_base(nodes)
        self.tmp = str(tmp)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("ETCD_", "ETCDCTL_"))}
        env.update(NODES=str(nodes), PORT=str(self.base), CAIRN=server_bin(),
                   TMPDIR=self.tmp)
        self.proc = subprocess.Popen(["bash", SCRIPT] + list(args),
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.pids, self.endpoints, self.data = [], [], None

    def _read(self):
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def line(self, prefix):
        for ln in list(self.lines):
            if ln.startswith(prefix):
                return ln[len(prefix):].strip()
        return None

    def wait_ready(self, timeout=60.0):
        """Until the last line of the banner; parses pids, data dir and
        endpoints."""
        end = time.monotonic() + timeout
        while self.line("Ctrl-C stops") is None:
            assert self.proc.poll() is None, \
                "cluster.sh exited with %s:\n%s" % (self.proc.returncode,
                                                    self.output())
            assert time.monotonic() < end, \
                "no banner after %.0f s:\n%s" % (timeout,
                                                         self.output())
            time.sleep(0.05)
        self.endpoints = self.line("endpoints:").split(",")
        self.pids = [int(p) for p in self.line("pids:").split()]
        self.data = self.line("data:")
        return self

    def signal(self, sig, timeout=40.0):
        """Sends sig to the script; its exit status."""
        self.proc.send_signal(sig)
        return self.wait(timeout)

    def wait(self, timeout=40.0):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail("cluster.sh still running %.0f s after the signal:\n"
                        "%s" % (timeout, self.output()), pytrace=False)
        self.reader.join(5)
        return rc

    def kill_all(self):
        """Test teardown: our script and the members it printed, by pid."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in self.pids:
            if running(pid) and os.path.realpath(
                    "/proc/%d/exe" % pid) == os.path.realpath(server_bin()):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def script(tmp_path):
    made = []

    def make(**kw):
        s = Script(tmp_path, **kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.kill_all()


def leftovers(tmp):
    return [n for n in os.listdir(str(tmp)) if n.startswith("cairn-cluster")]


def check_members_answer(s):
    assert len(s.pids) == s.nodes and len(set(s.pids)) == s.nodes
    assert s.endpoints == ["http://127.0.0.1:%d" % (s.base + 2 * i)
                           for i in range(s.nodes)]
    exe = os.path.realpath(server_bin())
    for pid in s.pids:
        assert running(pid), pid
        # the printed pid is the server itself, not a wrapper
        assert os.path.realpath("/proc/%d/exe" % pid) == exe
    for url in s.endpoints:
        st, body = http_get(url, "/version")
        assert st == 200, (url, st, body)
        assert "etcdserver" in json.loads(body.decode())
    assert os.path.isdir(s.data)
    assert sorted(n for n in os.listdir(s.data) if n.endswith(".data")) == \
        ["n%d.data" % (i + 1) for i in range(s.nodes)]


def check_all_gone(s, tmp):
    for pid in s.pids:
        assert not running(pid), "member pid %d still running" % pid
    assert not os.path.exists(s.data), s.data
    assert leftovers(tmp) == []


def test_three_members_answer_and_sigint_stops_them(script, tmp_path):
    s = script(nodes=3).wait_ready()
    check_members_answer(s)
    out = s.output()
    assert "ETCDCTL_API=2 etcdctl --endpoints %s member list" % \
        ",".join(s.endpoints) in out
    assert "cairnctl --endpoints %s" % ",".join(s.endpoints) in out
    assert s.signal(signal.SIGINT) == 0, s.output()
    check_all_gone(s, tmp_path)
    assert "cluster: stopped" in s.output()


def test_five_members_and_sigterm(script, tmp_path):
    s = script(nodes=5).wait_ready()
    check_members_answer(s)
    assert s.signal(signal.SIGTERM) == 0, s.output()
    check_all_gone(s, tmp_path)


def test_members_form_one_cluster(script, tmp_path):
    s = script(nodes=3).wait_ready()
    try:
        # every member lists the three, each with its client URL (members
        # publish their client URLs through the cluster once it runs)
        want = [("n%d" % (i + 1), (url,)) for i, url in enumerate(s.endpoints)]
        deadline = time.monotonic() + 5
        while True:
            views = []
            for url in s.endpoints:
                st, body = http_get(url, "/v2/members")
                ms = json.loads(body.decode())["members"] if st == 200 else []
                views.append(sorted((m["name"], tuple(m["clientURLs"]))
                                    for m in ms))
            if all(v == want for v in views) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert all(v == want for v in views), views
        assert "did not form one cluster" not in s.output()
    finally:
        assert s.signal(signal.SIGINT) == 0
        check_all_gone(s, tmp_path)


def test_a_member_that_dies_stops_the_others(script, tmp_path):
    s = script(nodes=3).wait_ready()
    os.kill(s.pids[1], signal.SIGKILL)
    assert s.wait() == 1, s.output()
    assert "member n2 (pid %d) exited" % s.pids[1] in s.output()
    check_all_gone(s, tmp_path)


def test_port_in_use_is_refused_before_starting(script, tmp_path):
    base = free_base(3)
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", base + 3))
    blocker.listen(1)
    try:
        s = script(nodes=3, base=base)
        assert s.wait(30) == 1
        assert "127.0.0.1:%d is in use" % (base + 3) in s.output()
        assert s.line("pids:") is None
        assert leftovers(tmp_path) == []
    finally:
        blocker.close()
