"""Fixtures of the fleet process tests (run with /usr/bin/python3 -m pytest).

  store   session-scoped store, once per kind in FLEET_TEST_TARGETS
          (default "etcd,cairn": real etcd 3.4 --enable-v2 and build/cairn)
  fleet   a Fleet on that store under a fresh key prefix, so tests share a
          store without seeing each other; agents started through it are
          stopped by pid at teardown, and the test fails if any process of
          theirs (shims, units) is still alive afterwards.

FLEET_BUILD names the build directory holding cairn-agent and
cairn-fleetctl (default build/).
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pylib.cluster import Server  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
BUILD = os.environ.get("FLEET_BUILD", os.path.join(ROOT, "build"))
if not os.path.isabs(BUILD):
    BUILD = os.path.join(ROOT, BUILD)
AGENT = os.path.join(BUILD, "cairn-agent")
FLEETCTL = os.path.join(BUILD, "cairn-fleetctl")
ECHO = os.path.join(ROOT, "tests", "fleet", "echo-server")
KINDS = [k for k in os.environ.get("FLEET_TEST_TARGETS",
                                   "etcd,cairn").split(",") if k]

TTL = 2  # agent TTL in the tests, seconds
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer")
RECONCILE = 0.5


def wait_for(cond, timeout, what, step=0.1):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = cond()
        if last:
            return last
        time.sleep(step)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" %
                         (timeout, what, last))


def pids_in_group(pgid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


def children_of(pid):
    """Every live descendant of pid (by /proc ppid links)."""
    ppid = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if fields[0] != "Z":
            ppid[int(d)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        for c, pp in ppid.items():
            if pp == p:
                found.append(c)
                frontier.append(c)
    return found


class Agent:
    def __init__(self, fleet, name, metadata="", ip="127.0.0.1", env=None):
        self.env = env
        self.fleet = fleet
        self.name = name
        self.metadata = metadata
        self.ip = ip
        self.state_dir = os.path.join(fleet.tmp, name)
        self.log_path = os.path.join(fleet.tmp, name + ".log")
        self.proc = None
        self.seen_pids = set()

    def start(self):
        args = [AGENT, "--etcd-servers", self.fleet.endpoint,
                "--etcd-key-prefix", self.fleet.prefix,
                "--state-dir", self.state_dir, "--public-ip", self.ip,
                "--agent-ttl", "%ds" % TTL,
                "--engine-reconcile-interval", str(RECONCILE)]
        if self.metadata:
            args += ["--metadata", self.metadata]
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        env.update(self.env or {})
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, env=env)
        log.close()
        wait_for(lambda: os.path.exists(
            os.path.join(self.state_dir, "machine-id")), 5, "machine-id")
        return self

    @property
    def machine_id(self):
        with open(os.path.join(self.state_dir, "machine-id")) as f:
            return f.read().strip()

    def remember_children(self):
        if self.proc and self.proc.poll() is None:
            self.seen_pids.update(children_of(self.proc.pid))

    def kill9(self):
        self.remember_children()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, grace=15):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.remember_children()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self, n=30):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""


class Fleet:
    def __init__(self, store):
        self.store = store
        self.endpoint = store.client_url
        self.prefix = "/fleet-test-%s/" % uuid.uuid4().hex[:8]
        self.tmp = tempfile.mkdtemp(prefix="cairn-fleet-")
        self.agents = []

    def agent(self, name, metadata="", ip="127.0.0.1", env=None):
        a = Agent(self, name, metadata, ip, env).start()
        self.agents.append(a)
        return a

    def ctl(self, *args, check=True, timeout=60):
        p = subprocess.run([FLEETCTL, "--endpoint", self.endpoint,
                            "--etcd-key-prefix", self.prefix] + list(args),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout, cwd=self.tmp)
        for m in SANITIZER_MARKS:
            assert m not in p.stderr, "fleetctl %s:\n%s" % (args, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError("fleetctl %s: rc=%d\nstdout:%s\nstderr:%s" %
                                 (" ".join(args), p.returncode, p.stdout,
                                  p.stderr))
        return p

    def write_unit(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def wait_machines(self, n, timeout=10):
        return wait_for(lambda: len(self.ctl("list-machines", "--no-legend")
                                    .stdout.splitlines()) == n,
                        timeout, "%d machines" % n)

    def units(self):
        """{(unit, machine_id): (active, sub)} from list-units --full."""
        out = self.ctl("list-units", "--no-legend", "--full").stdout
        res = {}
        for line in out.splitlines():
            cols = re.split(r"\t+", line)
            mid = cols[1].split("/")[0]
            res[(cols[0], mid)] = (cols[2], cols[3])
        return res

    def running_on(self, unit):
        return [m for (u, m), st in self.units().items()
                if u == unit and st == ("active", "running")]

    def legend(self, agent):
        return "%s.../%s" % (agent.machine_id[:8], agent.ip)

    def close(self):
        for a in self.agents:
            a.stop()
        leftovers = []
        for a in self.agents:
            for pid in a.seen_pids:
                try:
                    with open("/proc/%d/stat" % pid) as f:
                        st = f.read()
                    if st[st.rindex(")") + 2] != "Z":
                        leftovers.append(pid)
                        os.kill(pid, signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        for a in self.agents:
            log = a.log_tail(100000)
            for m in SANITIZER_MARKS:
                if m in log:
                    leftovers.append("sanitizer report in agent %s:\n%s" %
                                     (a.name, log))
                    break
        if not os.environ.get("CAIRN_KEEP_LOGS"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return leftovers


@pytest.fixture(scope="session", params=KINDS)
def store(request):
    kind = request.param
    s = Server.etcd() if kind == "etcd" else Server.cairn()
    try:
        s.start()
    except Exception as e:  # noqa: B902
        s.stop()
        pytest.fail("could not start %s: %s" % (kind, e), pytrace=False)
    yield s
    s.stop()
    shutil.rmtree(s.tmp, ignore_errors=True)


_current = []


@pytest.fixture
def fleet(store):
    for b in (AGENT, FLEETCTL):
        if not os.access(b, os.X_OK):
            pytest.fail("%s is missing: build it first (make)" % b,
                        pytrace=False)
    f = Fleet(store)
    _current.append(f)
    yield f
    _current.remove(f)
    leftovers = f.close()
    assert leftovers == [], "left behind: %r" % leftovers


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for f in _current:
            for a in f.agents:
                rep.sections.append(("agent %s log" % a.name, a.log_tail()))
