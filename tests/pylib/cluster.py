"""Start and stop real cairn and etcd processes for the process-level tests.

A Server runs one single-member cluster on 127.0.0.1 with free ports (found
by binding port 0) and a fresh temp data dir, sends its stdout and stderr to
a log file, and is stopped by its own pid only: SIGTERM, then SIGKILL after
a grace period. Nothing here kills by name.

    s = Server.cairn()          # CAIRN_BIN, default build/cairn
    s = Server.etcd()           # /usr/bin/etcd --enable-v2, the reference
    s.start(); ...; s.stop()
    s.log_tail()                # for failure messages
    s.sanitizer_report()        # ASan/UBSan/LSan text in the log, or ""

CAIRN_TEST_TARGET=etcd makes the `server` fixture of the cairn suites start
etcd instead, which validates a test against the reference.
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer",
                   "SUMMARY: AddressSanitizer", "ERROR: ThreadSanitizer")


def cairn_bin():
    b = os.environ.get("CAIRN_BIN", os.path.join(ROOT, "build", "cairn"))
    if not os.path.isabs(b):
        b = os.path.join(ROOT, b)
    return b


def target_kind():
    """The server under test: "cairn", or "etcd" if CAIRN_TEST_TARGET=etcd."""
    return os.environ.get("CAIRN_TEST_TARGET", "cairn")


def binary_of(kind):
    return ETCD_BIN if kind == "etcd" else cairn_bin()


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bound together, so distinct;
    released before return, so another process could in principle take one:
    start() retries with new ports when the server cannot bind)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class ServerError(Exception):
    pass


# Servers must not outlive the test process: an atexit hook and a SIGTERM
# handler stop what is still running, and each child asks the kernel for
# SIGTERM when its parent dies (PR_SET_PDEATHSIG; for SIGKILL of the test
# process, where the kernel or sandbox supports it).
_PR_SET_PDEATHSIG = 1
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None
_running = weakref.WeakSet()
_tmp_dirs = []  # every Server's temp dir: the empty ones go at exit


def _die_with_parent():
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@atexit.register
def _stop_all():
    for s in list(_running):
        s.stop()
    for d in _tmp_dirs:
        try:
            os.rmdir(d)  # only if empty: a server never started
        except OSError:
            pass


def _on_sigterm(signum, frame):
    # The run is being stopped: no test will report on the servers still
    # running, and their temp dirs would stay behind.
    for s in list(_running):
        if s.alive() and not os.environ.get("CAIRN_KEEP_LOGS"):
            s.cleanup()
    _stop_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


# A test run stopped with SIGTERM (a timeout, make interrupted) stops its
# servers too; only installed where nothing else handles SIGTERM.
try:
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)
except ValueError:  # not the main thread
    pass


class Server:
    """One server process. kind is "cairn" or "etcd"."""

    def __init__(self, kind, binary, name="n1", extra_args=None, env=None,
                 data_dir=None):
        self.kind = kind
        self.binary = binary
        self.name = name
        self.extra_args = list(extra_args or [])
        self.env_extra = dict(env or {})
        self.tmp = tempfile.mkdtemp(prefix="cairn-%s-" % kind)
        _tmp_dirs.append(self.tmp)
        self.data_dir = data_dir or os.path.join(self.tmp, "data")
        self.log_path = os.path.join(self.tmp, "server.log")
        self.proc = None
        self.client_port = None
        self.peer_port = None
        self.returncode = None
        self.stopped_by = None  # "term", "kill" (term was not enough)

    @classmethod
    def cairn(cls, **kw):
        return cls("cairn", cairn_bin(), **kw)

    @classmethod
    def etcd(cls, **kw):
        return cls("etcd", ETCD_BIN, **kw)

    @classmethod
    def target(cls, **kw):
        """The server under test: cairn, or etcd if CAIRN_TEST_TARGET=etcd."""
        if target_kind() == "etcd":
            return cls.etcd(**kw)
        return cls.cairn(**kw)

    @property
    def client_url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    def args(self):
        a = [self.binary,
             "--name", self.name,
             "--data-dir", self.data_dir,
             "--listen-client-urls", self.client_url,
             "--advertise-client-urls", self.client_url,
             "--listen-peer-urls", self.peer_url,
             "--initial-advertise-peer-urls", self.peer_url,
             "--initial-cluster", "%s=%s" % (self.name, self.peer_url)]
        if self.kind == "etcd":
            a.append("--enable-v2")
        return a + self.extra_args

    def env(self):
        e = dict(os.environ)
        for k in list(e):  # never let the caller's ETCD_* leak in
            if k.startswith("ETCD_") or k.startswith("ETCDCTL_"):
                del e[k]
        e.setdefault("ASAN_OPTIONS", "detect_leaks=1")
        e.update(self.env_extra)
        return e

    def spawn(self, args=None):
        """Start the process without waiting for it to answer."""
        if not os.path.exists(self.binary):
            raise ServerError("%s binary not found: %s (build it first: make)"
                              % (self.kind, self.binary))
        if self.client_port is None:
            self.client_port, self.peer_port = free_ports(2)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args or self.args(), stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.env(), cwd=self.tmp,
                                     preexec_fn=_die_with_parent)
        self.returncode = None
        _running.add(self)

    def start(self, timeout=20.0):
        for attempt in range(3):
            self.spawn()
            try:
                self.wait_ready(timeout)
                return self
            except ServerError:
                exited = self.proc.poll() is not None
                log = self.log_text()
                self.stop()
                if exited and ("address already in use" in log.lower()) \
                        and attempt < 2:
                    self.client_port = self.peer_port = None
                    continue
                raise
        return self

    def _get(self, path, timeout=1.0):
        from pylib import httpraw
        return httpraw.request(self.client_port, "GET", path, timeout=timeout)

    def wait_ready(self, timeout=20.0):
        """Until /version answers and a key read succeeds (a leader exists and
        the store serves). For etcd also until the cluster version is decided
        and the store index has stopped moving (etcd publishes its member
        attributes and the cluster version through the v2 store at boot)."""
        deadline = time.monotonic() + timeout
        last_err = None
        stable = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServerError("%s exited with %s during start-up\n%s" % (
                    self.kind, self.proc.returncode, self.log_tail()))
            try:
                v = self._get("/version")
                if v.status == 200:
                    ver = v.json()
                    r = self._get("/v2/keys/")
                    if r.status == 200 and \
                            ver.get("etcdcluster") not in (None, "not_decided"):
                        idx = r.header("X-Etcd-Index")
                        if self.kind != "etcd":
                            return
                        if stable is not None and stable[0] == idx and \
                                time.monotonic() - stable[1] > 0.3:
                            return
                        if stable is None or stable[0] != idx:
                            stable = (idx, time.monotonic())
                    last_err = "GET /v2/keys/ -> %d %r" % (r.status, r.body[:200])
                else:
                    last_err = "GET /version -> %d" % v.status
            except (OSError, ValueError, Exception) as e:  # noqa: B902
                last_err = repr(e)
            time.sleep(0.05)
        raise ServerError("%s did not become ready in %.0fs (%s)\n%s" % (
            self.kind, timeout, last_err, self.log_tail()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM our own pid, SIGKILL it after grace seconds. Returns the
        exit status (negative: killed by that signal)."""
        if self.proc is None:
            return self.returncode
        p = self.proc
        self.stopped_by = None  # it had exited by itself
        if p.poll() is None:
            self.stopped_by = "term"
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                self.stopped_by = "kill"
                p.kill()
                p.wait()
        self.returncode = p.returncode
        self.proc = None
        try:
            self.logf.close()
        except Exception:  # noqa: B902
            pass
        return self.returncode

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "---- %s log (%s), last %d lines ----\n%s" % (
            self.kind, self.log_path, min(n, len(lines)),
            "\n".join(lines[-n:]))

    def sanitizer_report(self):
        text = self.log_text()
        for m in SANITIZER_MARKS:
            i = text.find(m)
            if i >= 0:
                return text[max(0, i - 200):i + 4000]
        return ""

    def version(self):
        return self._get("/version").json()

    def index(self):
        """The store's current X-Etcd-Index."""
        return int(self._get("/v2/keys/").header("X-Etcd-Index"))

    def __repr__(self):
        return "<%s %s pid=%s>" % (self.kind, self.client_url,
                                   self.proc.pid if self.proc else None)


def run_binary(binary, args, env=None, timeout=10.0):
    """Run binary args to completion (for flag tests): (rc, stdout, stderr).
    A process still running after timeout is killed by pid."""
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("ETCD_"):
            del e[k]
    e.update(env or {})
    tmp = tempfile.mkdtemp(prefix="cairn-run-")
    try:
        p = subprocess.Popen([binary] + list(args), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=e, cwd=tmp)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            return None, out.decode("utf-8", "replace"), \
                err.decode("utf-8", "replace")
        return p.returncode, out.decode("utf-8", "replace"), \
            err.decode("utf-8", "replace")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def dumps(obj):
    return json.dumps(obj, indent=1, sort_keys=True)


class Cluster:
    """n members of one cluster (cairn or etcd), each a Server on its own
    free ports and data dir, all given the same --initial-cluster."""

    def __init__(self, kind, n=3, token=None):
        ports = free_ports(2 * n)
        self.members = []
        for i in range(n):
            s = Server.etcd(name="m%d" % (i + 1)) if kind == "etcd" else \
                Server.cairn(name="m%d" % (i + 1))
            s.client_port, s.peer_port = ports[2 * i], ports[2 * i + 1]
            self.members.append(s)
        self.kind = self.members[0].kind
        self.initial = ",".join("%s=%s" % (s.name, s.peer_url)
                                for s in self.members)
        self.token = token or "cairn-test-%d" % ports[0]

    def member_args(self, s):
        a = s.args()
        a[a.index("--initial-cluster") + 1] = self.initial
        return a + ["--initial-cluster-token", self.token,
                    "--heartbeat-interval", "50", "--election-timeout", "500"]

    def spawn(self, s):
        s.spawn(self.member_args(s))

    def start(self, timeout=30.0):
        """Starts every member. A port taken between free_ports() and the
        members' bind (members dial each other meanwhile, and an outgoing
        connection may get that very port) makes a member exit with
        "address already in use": then the whole cluster starts again on
        new ports with fresh data dirs, up to twice."""
        for attempt in range(3):
            for s in self.members:
                self.spawn(s)
            try:
                for s in self.members:
                    s.wait_ready(timeout)
                return self
            except ServerError:
                clash = any("address already in use" in s.log_text().lower()
                            for s in self.members)
                if not clash or attempt == 2:
                    raise
                self.stop()
                self.renew_ports()
        return self

    def renew_ports(self):
        ports = free_ports(2 * len(self.members))
        for i, s in enumerate(self.members):
            s.client_port, s.peer_port = ports[2 * i], ports[2 * i + 1]
            shutil.rmtree(s.data_dir, ignore_errors=True)
            with open(s.log_path, "ab") as f:
                f.write(b"---- ports were taken: started again ----\n")
        self.initial = ",".join("%s=%s" % (s.name, s.peer_url)
                                for s in self.members)

    def stop(self):
        for s in self.members:
            s.stop()

    def leader(self, timeout=5.0, among=None):
        """The member whose /v2/stats/self says StateLeader (and that all
        asked members agree on)."""
        from pylib import httpraw
        deadline = time.monotonic() + timeout
        among = among or [s for s in self.members if s.alive()]
        last = None
        while time.monotonic() < deadline:
            try:
                states = {}
                for s in among:
                    r = httpraw.request(s.client_port, "GET",
                                        "/v2/stats/self", timeout=1)
                    states[s.name] = r.json()
                leaders = [s for s in among
                           if states[s.name].get("state") == "StateLeader"]
                ids = {st.get("leaderInfo", {}).get("leader")
                       for st in states.values()}
                if len(leaders) == 1 and len(ids) == 1:
                    return leaders[0]
                last = states
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.1)
        raise ServerError("no single leader among %s: %r" % (
            [s.name for s in among], last))
