#!/usr/bin/python3
"""cairn vs etcd benchmarks, driven by cairn-bench (see docs/performance.md).

    run.py smoke   [--build DIR] [--server cairn|etcd]
    run.py compare [--build DIR] [--quick] [--systems cairn,etcd] [--nodes N]
    run.py cluster [--build DIR] [--quick] [--systems cairn,etcd] [--nodes 3]
                   [--endpoints both|all|leader] [--failover-trials N]
                   [--heartbeat-interval MS] [--election-timeout MS]

smoke: starts one server on free ports with a fresh data dir, runs
cairn-bench (mixed, 4 connections, ~2 s; then a 1 s watch with 4 watchers)
and fails unless throughput is non-zero and there are no errors. No timing
assertions.

compare: the physical ceilings (disk fsync rate, loopback HTTP round trips
against cairn-bench's null server), then every workload at 1, 16, 64 and
256 connections on both systems, interleaved A B A B so drift of the shared
machine hits both; then resident memory per key and restart time after
kill -9. Writes bench/results/<date>.txt and ends with one line per figure:
`ratio <figure> <a/b>`.

cluster: each system as a 3-member cluster on 127.0.0.1 (fresh data dirs,
free ports, the same --heartbeat-interval and --election-timeout for both).
A system whose members do not form one cluster (each lists the same
members, one leader agreed on, a write read back by quorum reads on the
others) gets one "<system> cluster did not form: <why>" line and n/a
figures; the other is still measured. Then PUT and quorum GET at 64 and
256 connections, spread over all members (_all, as etcd's benchmark with
--endpoints of every member) and to the leader only (_leader); then leader
failover: under a steady open-loop write load, kill -9 of the leader, and
the time until the first write sent after the kill to a surviving member is
acknowledged (a fresh probe PUT every 5 ms), then every acknowledged probe
write is read back; the killed member is restarted on its data dir before
the next trial. Writes bench/results/<date>-cluster.txt, same ratio lines
with an n3_ prefix.

Only processes this script starts are stopped, by pid. Data dirs live in
bench/results/tmp/ (same disk as the repository) and are removed at the end.
"""

import argparse
import asyncio
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
ETCD = "/usr/bin/etcd"

CONNS = [1, 16, 64, 256]
WORKLOADS = ["put", "get", "qget", "mixed", "watch", "txn"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
WATCH_RATE = 100  # writes/s in the watch workload (events = rate x watchers)


def log(msg):
    print(msg, flush=True)


_ports_given = set()


def free_port():
    """A port that was free just now and not handed out before in this run
    (members of a cluster need distinct ports)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


def http_get(port, path, timeout=1.0):
    """(status, body) of GET path, or (None, error text)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        c.close()
        return r.status, body
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)


class Member:
    """One server process (cairn or etcd) with its own ports and data dir."""

    def __init__(self, kind, binary, workdir, name, cluster=None, extra=()):
        self.kind, self.binary, self.name = kind, binary, name
        self.extra = list(extra)  # more flags, e.g. --election-timeout
        self.data_dir = os.path.join(workdir, name + ".data")
        self.log_path = os.path.join(workdir, name + ".log")
        self.client_port = free_port()
        self.peer_port = free_port()
        self.cluster = cluster  # "n1=http://..,n2=.." or None (alone)
        self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    def argv(self):
        cluster = self.cluster or "%s=%s" % (self.name, self.peer_url)
        return [self.binary, "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.url,
                "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", cluster,
                "--initial-cluster-state", "new",
                "--enable-v2"] + self.extra

    def start(self):
        """Starts the process; returns the time.monotonic() of the exec."""
        logf = open(self.log_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv(), stdout=logf, stderr=logf,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        return t0

    def wait_ready(self, timeout=60.0, path="/v2/keys/"):
        """Polls until GET path answers 200; returns when, or raises."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s; log %s" % (
                    self.name, self.proc.returncode, self.log_path))
            st, _ = http_get(self.client_port, path, timeout=0.5)
            if st == 200:
                return time.monotonic()
            time.sleep(0.005)
        raise RuntimeError("%s not ready after %.0f s; log %s" % (
            self.name, timeout, self.log_path))

    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def cpu_s(self):
        """User + system CPU seconds the process has used."""
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def stop(self, sig=signal.SIGTERM):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class System:
    """A server under test: a label, a binary and N members."""

    def __init__(self, label, kind, binary, workdir, nodes=1, extra=()):
        self.label, self.kind, self.binary = label, kind, binary
        self.workdir = os.path.join(workdir, label.replace("#", "-"))
        self.nodes = nodes
        self.extra = list(extra)
        self.members = []

    def start(self):
        if os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir)
        os.makedirs(self.workdir)
        names = ["%s%d" % (self.kind, i + 1) for i in range(self.nodes)]
        self.members = [Member(self.kind, self.binary, self.workdir, n,
                               extra=self.extra) for n in names]
        if self.nodes > 1:
            cluster = ",".join("%s=%s" % (m.name, m.peer_url)
                               for m in self.members)
            for m in self.members:
                m.cluster = cluster
        for m in self.members:
            m.start()
        for m in self.members:
            m.wait_ready()

    @property
    def endpoints(self):
        return ",".join(m.url for m in self.members)

    def stop(self):
        for m in self.members:
            m.stop()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class Bench:
    def __init__(self, build):
        self.exe = os.path.join(ROOT, build, "cairn-bench")
        if not os.access(self.exe, os.X_OK):
            raise SystemExit("no %s: run make first" % self.exe)

    def run(self, workload, endpoints, *args, timeout=600):
        argv = [self.exe, workload, "--endpoints", endpoints, "--json"]
        argv += [str(a) for a in args]
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
        out = p.stdout.decode().strip()
        if not out:
            raise RuntimeError("cairn-bench %s: no output (%s)" % (
                workload, p.stderr.decode().strip()))
        return json.loads(out.splitlines()[-1])

    def start(self, workload, endpoints, *args):
        """Runs cairn-bench in the background; finish() collects it."""
        argv = [self.exe, workload, "--endpoints", endpoints, "--json"]
        argv += [str(a) for a in args]
        return subprocess.Popen(argv, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    def finish(self, p, timeout=120):
        """The report of a start()ed run, or None if it gave none."""
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()  # our own child
            p.communicate()
            return None
        lines = out.decode().strip().splitlines()
        try:
            return json.loads(lines[-1]) if lines else None
        except ValueError:
            return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def server_binary(build, kind):
    if kind == "etcd":
        return ETCD
    return os.path.join(ROOT, build, "cairn")


# ---- smoke ---------------------------------------------------------------

def cmd_smoke(args):
    kind = args.server
    binary = server_binary(args.build, kind)
    if not os.access(binary, os.X_OK):
        log("check-bench-smoke: skipped: %s is not built yet (no server in "
            "this tree); run with SMOKE_SERVER=etcd to check cairn-bench "
            "itself" % binary)
        return 0
    bench = Bench(args.build)
    workdir = os.path.join(RESULTS, "tmp", "smoke-%d" % os.getpid())
    sys_ = System(kind, kind, binary, workdir)
    failures = []
    try:
        sys_.start()
        runs = [("mixed", ["--conns", 4, "--duration", 2]),
                ("watch", ["--conns", 4, "--duration", 1, "--rate", 50])]
        for workload, extra in runs:
            r = bench.run(workload, sys_.endpoints, *extra, timeout=120)
            log("smoke %s on %s: %.0f/s, ok %d, errors %d (%s)" % (
                workload, kind, r["rps"], r["ok"], r["errors"]["total"],
                json.dumps(r["errors"])))
            if not r["rps"] > 0 or r["ok"] == 0:
                failures.append("%s: zero throughput" % workload)
            if r["errors"]["total"] != 0 or r["preload_errors"] != 0:
                failures.append("%s: errors %s" % (workload,
                                                   json.dumps(r["errors"])))
            if workload == "watch":
                w = r["watch"]
                if w["events_expected"] == 0 or \
                        r["completed"] != w["events_expected"]:
                    failures.append("watch: %d events of %d expected" % (
                        r["completed"], w["events_expected"]))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        failures.append(str(e))
    finally:
        sys_.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    for f in failures:
        log("check-bench-smoke: FAIL: " + f)
    if not failures:
        log("check-bench-smoke: ok")
    return 1 if failures else 0


# ---- compare -------------------------------------------------------------

class Report:
    """Collects figures per system and writes the table and ratio lines."""

    def __init__(self, labels, header):
        self.labels = labels
        self.lines = list(header)
        self.figures = []  # (name, unit, {label: value}, better)

    def out(self, line=""):
        self.lines.append(line)
        log(line)

    def figure(self, name, unit, values, better):
        self.figures.append((name, unit, values, better))

    def table(self, title, names):
        a, b = self.labels
        w = max([24] + [len(n + " " + u) for n, u, _, _ in self.figures
                        if n in names])
        self.out("")
        self.out(title)
        self.out("%-*s %12s %12s %10s" % (w, "figure", a, b,
                                          "%s/%s" % (a, b)))
        for name, unit, values, better in self.figures:
            if name not in names:
                continue
            va, vb = values.get(a), values.get(b)
            ratio = "n/a"
            if va is not None and vb:
                ratio = "%.2f" % (va / vb)
            self.out("%-*s %12s %12s %10s" % (
                w, name + " " + unit, fmt(va), fmt(vb), ratio))

    def ratios(self):
        a, b = self.labels
        self.out("")
        for name, unit, values, better in self.figures:
            va, vb = values.get(a), values.get(b)
            if va is not None and vb:
                self.out("ratio %s %.2f" % (name, va / vb))
            else:
                self.out("ratio %s n/a" % name)


def fmt(v):
    if v is None:
        return "-"
    if v >= 100:
        return "%.0f" % v
    return "%.2f" % v


def ceilings(bench, rep, quick, workdir):
    """fsync rate of the disk and loopback HTTP round trips."""
    dur = 1 if quick else 3
    p = subprocess.run([bench.exe, "fsync", "--dir", workdir, "--duration",
                        str(dur), "--json"], stdout=subprocess.PIPE)
    f = json.loads(p.stdout.decode().strip().splitlines()[-1])
    rep.out("ceiling disk: %.0f write(256 B)+fdatasync/s (p50 %.0f us, "
            "p99 %.0f us) in %s" % (f["fsync_per_s"], f["p50_us"],
                                    f["p99_us"], workdir))
    port = free_port()
    ns = subprocess.Popen([bench.exe, "nullserver", "--listen",
                           "127.0.0.1:%d" % port],
                          stdout=subprocess.DEVNULL)
    try:
        for _ in range(200):
            st, _ = http_get(port, "/")
            if st == 200:
                break
            time.sleep(0.01)
        for c in (1, 64):
            r = bench.run("get", "http://127.0.0.1:%d" % port, "--conns", c,
                          "--duration", dur, "--no-preload")
            rep.out("ceiling loopback HTTP (null server), %3d conns: "
                    "%.0f req/s, p50 %.0f us, p99 %.0f us" % (
                        c, r["rps"], r["latency_us"]["p50"],
                        r["latency_us"]["p99"]))
    finally:
        ns.terminate()
        ns.wait()
    return f["fsync_per_s"]


def workload_args(workload, conns, dur):
    args = ["--conns", conns, "--duration", dur]
    if workload in ("get", "qget", "mixed"):
        args += ["--no-preload", "--key-space", 1000]
    if workload == "mixed":
        args += ["--read-ratio", 0.9]
    if workload == "put":
        args += ["--key-space", 1000]
    if workload == "watch":
        args += ["--rate", WATCH_RATE, "--prefix", "/bench/watch"]
    if workload == "txn":
        args += ["--key-space", 4, "--prefix", "/bench/txn"]
    return args


def all_members(s):
    return s.endpoints


def matrix(bench, systems, rep, quick, workloads, conns_list,
           targets=(("", all_members),), prefix=""):
    """Every workload at every connection count on every system, A B A B.
    targets: (name suffix, system -> endpoints) pairs, e.g. all members or
    the leader only; prefix starts every figure name (n3_ for clusters)."""
    dur = 1 if quick else 3
    rounds = 1 if quick else 2
    for s in systems:
        r = bench.run("put", s.endpoints, "--conns", 16, "--key-order", "seq",
                      "--total", 1000, "--key-space", 1000)
        if r["errors"]["total"]:
            rep.out("warning: preload on %s had errors %s" % (
                s.label, json.dumps(r["errors"])))
    names = []
    for workload, conns, (suffix, endpoints_of) in [
            (w, c, t) for w in workloads for c in conns_list
            for t in targets]:
        got = {s.label: [] for s in systems}
        for rnd in range(rounds):  # A B A B: drift hits both
            for s in systems:
                endpoints = endpoints_of(s)
                c0 = sum(m.cpu_s() for m in s.members)
                r = bench.run(workload, endpoints,
                              *workload_args(workload, conns, dur))
                c1 = sum(m.cpu_s() for m in s.members)
                r["server_cpu_us"] = (c1 - c0) * 1e6 / max(1, r["completed"])
                got[s.label].append(r)
        base = "%s%s_c%d%s" % (prefix, workload, conns, suffix)
        line = []
        for s in systems:
            rs = got[s.label]
            errs = sum(x["errors"]["total"] for x in rs)
            if workload == "watch":  # events that never arrived
                errs += sum(x["watch"]["events_expected"] - x["completed"]
                            for x in rs)
            line.append("%s %.0f/s p99 %.0f us cpu %.0f us/req%s" % (
                s.label, mean(x["rps"] for x in rs),
                mean(x["latency_us"]["p99"] for x in rs),
                mean(x["server_cpu_us"] for x in rs),
                " ERRORS %d" % errs if errs else ""))
        rep.out("  %-10s %s" % (base, "  |  ".join(line)))
        rps_unit = "ev/s" if workload == "watch" else "req/s"
        rep.figure(base + "_rps", rps_unit,
                   {s.label: mean(x["rps"] for x in got[s.label])
                    for s in systems}, "high")
        for p in ("p50", "p99"):
            rep.figure("%s_%s" % (base, p), "us",
                       {s.label: mean(x["latency_us"][p]
                                      for x in got[s.label])
                        for s in systems}, "low")
        rep.figure(base + "_cpu", "us/req",
                   {s.label: mean(x["server_cpu_us"] for x in got[s.label])
                    for s in systems}, "low")
        names += [base + "_rps", base + "_p50", base + "_p99",
                  base + "_cpu"]
        if workload == "watch":  # PUT send -> event: commit + fan-out
            for p in ("p50", "p99"):
                rep.figure("%s_e2e_%s" % (base, p), "us",
                           {s.label: mean(x["watch"]["put_to_event_us"][p]
                                          for x in got[s.label])
                            for s in systems}, "low")
                names.append("%s_e2e_%s" % (base, p))
        if workload == "txn":
            rep.figure(base + "_okps", "cas/s",
                       {s.label: mean(x["txn"]["cas_ok_per_s"]
                                      for x in got[s.label])
                        for s in systems}, "high")
            names.append(base + "_okps")
    return names


def mean(xs):
    xs = list(xs)
    return sum(xs) / len(xs) if xs else 0.0


def memory_and_recovery(bench, systems_spec, rep, steps, workdir):
    """RSS per key after loading N keys; restart time after kill -9."""
    names = []
    for label, kind, binary in systems_spec:
        s = System(label, kind, binary, workdir)
        try:
            s.start()
            m = s.members[0]
            time.sleep(0.5)
            rss0 = m.rss_kib()
            loaded = 0
            for n in steps:
                r = bench.run("put", s.endpoints, "--conns", 64,
                              "--key-order", "seq", "--key-start", loaded,
                              "--total", n - loaded, "--key-space",
                              n - loaded, "--val-size", 256,
                              "--prefix", "/mem", "--timeout", 60,
                              timeout=3600)
                loaded = n
                time.sleep(0.5)
                rss = m.rss_kib()
                per_key = (rss - rss0) * 1024.0 / n
                tag = "%dk" % (n // 1000)
                rep.out("  memory %s: %d keys loaded at %.0f/s (errors %d), "
                    "RSS %d -> %d KiB: %.0f B/key" % (
                        label, n, r["rps"], r["errors"]["total"], rss0, rss,
                        per_key))
                rep.figure("mem_%s_bytes_per_key" % tag, "B", {label: per_key},
                           "low")
                rep.figure("load_%s_rps" % tag, "req/s", {label: r["rps"]},
                           "high")
                names += ["mem_%s_bytes_per_key" % tag, "load_%s_rps" % tag]
            tag = "%dk" % (loaded // 1000)
            disk = dir_bytes(m.data_dir)
            rep.out("  disk %s: data dir %d bytes after %d keys: %.0f B/key"
                    % (label, disk, loaded, disk / loaded))
            rep.figure("disk_%s_bytes_per_key" % tag, "B",
                       {label: disk / loaded}, "low")
            names.append("disk_%s_bytes_per_key" % tag)
            m.stop(signal.SIGKILL)
            t0 = m.start()
            # first served GET of the last key that was acknowledged
            end = time.monotonic() + 600
            key = "/v2/keys/mem/k%08d" % (loaded - 1)
            st = None
            while time.monotonic() < end:
                st, _ = http_get(m.client_port, key, timeout=0.5)
                if st in (200, 404):
                    break
                if m.proc.poll() is not None:
                    raise RuntimeError("%s died on restart; log %s" % (
                        label, m.log_path))
                time.sleep(0.002)
            t = time.monotonic() - t0
            if st == 200:
                rep.out("  restart %s after kill -9 with %d keys: first GET "
                        "after %.3f s" % (label, loaded, t))
                rep.figure("restart_%s_s" % tag, "s", {label: t}, "low")
            else:
                rep.out("  restart %s after kill -9 with %d keys: serving "
                        "after %.3f s but GET %s answered %s: ACKNOWLEDGED "
                        "WRITES LOST" % (label, loaded, t, key, st))
                rep.figure("restart_%s_s" % tag, "s", {label: None}, "low")
            names.append("restart_%s_s" % tag)
        finally:
            s.cleanup()
    # keep one entry per name, merged across systems
    merged = {}
    for name, unit, values, better in rep.figures:
        if name in names:
            merged.setdefault(name, (unit, {}, better))[1].update(values)
    rep.figures = [f for f in rep.figures if f[0] not in names]
    for name in dict.fromkeys(names):
        unit, values, better = merged[name]
        rep.figures.append((name, unit, values, better))
    return list(dict.fromkeys(names))


def dir_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total


def git_head():
    """The commit, and whether the work tree differs from it."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "log", "-1",
                               "--format=%h %s"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL).stdout.decode().strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "--untracked-files=no"],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL).stdout.strip()
        return head + (" (+ uncommitted changes)" if dirty else "")
    except OSError:
        return "unknown"


def version_of(binary):
    try:
        p = subprocess.run([binary, "--version"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return " ".join(p.stdout.decode().split()[:3])
    except (OSError, subprocess.TimeoutExpired):
        return "?"


def system_spec(args):
    """(label, kind, binary) of the two systems of --systems; a system
    named twice (an A/A run) gets "#2" on its second label."""
    kinds = args.systems.split(",")
    if len(kinds) != 2:
        raise SystemExit("--systems takes two names, e.g. cairn,etcd")
    return [(k if kinds.count(k) == 1 or i == 0 else k + "#2", k,
             server_binary(args.build, k)) for i, k in enumerate(kinds)]


def cmd_compare(args):
    bench = Bench(args.build)
    spec = system_spec(args)
    stamp = datetime.datetime.now()
    workdir = os.path.join(RESULTS, "tmp", "run-%d" % os.getpid())
    os.makedirs(workdir, exist_ok=True)
    header = [
        "cairn benchmark %s (%s)" % (stamp.strftime("%Y-%m-%d %H:%M:%S"),
                                     "QUICK" if args.quick else "full"),
        "cpu: %s x %d (load generator and server share them)" % (
            cpu_model(), os.cpu_count()),
        "kernel: %s; tree: %s" % (platform.release(), git_head()),
        "systems: %s" % ", ".join("%s=%s (%s)" % (l, b, version_of(b))
                                  for l, _, b in spec),
    ]
    for line in header:
        log(line)
    missing = [b for _, _, b in spec if not os.access(b, os.X_OK)]
    if missing:
        log("bench-compare: FAIL: not built: %s" % ", ".join(missing))
        shutil.rmtree(workdir, ignore_errors=True)
        return 1
    rep = Report([l for l, _, _ in spec], header)
    rc = 0
    try:
        ceilings(bench, rep, args.quick, workdir)
        if args.nodes > 1:
            rep.out("%d-node mode requested" % args.nodes)
        else:
            rep.out("3-node mode: run.py cluster (make bench-cluster; "
                    "make bench runs it after this)")
        systems = [System(l, k, b, workdir, args.nodes) for l, k, b in spec]
        try:
            for s in systems:
                s.start()
            names = matrix(bench, systems, rep, args.quick,
                           args.workloads.split(","),
                           [int(c) for c in args.conns.split(",")])
        finally:
            for s in systems:
                s.cleanup()
        steps = [20000] if args.quick else [100000, 1000000]
        if args.keys:
            steps = [int(k) for k in args.keys.split(",")]
        mem_names = memory_and_recovery(bench, spec, rep, steps, workdir)
        rep.table("throughput and latency (mean of runs; latency from send)",
                  names)
        rep.table("memory and restart", mem_names)
        rep.ratios()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        rep.out("bench-compare: FAIL: %s" % e)
        rc = 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    out = args.out or os.path.join(
        RESULTS, stamp.strftime("%Y-%m-%d-%H%M%S") + ".txt")
    with open(out, "w") as f:
        f.write("\n".join(rep.lines) + "\n")
    log("results written to %s" % os.path.relpath(out, ROOT))
    return rc


# ---- cluster: the 3-node mode ---------------------------------------------

CLUSTER_WORKLOADS = ["put", "qget"]
CLUSTER_CONNS = [64, 256]
PROBE_INTERVAL_S = 0.005  # failover: a new probe write every 5 ms


class NotFormed(Exception):
    """The members of a system did not form one cluster."""


def http_req(port, method, path, body=None, timeout=2.0):
    """(status, JSON value or raw bytes), or (None, error text)."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
    except (OSError, http.client.HTTPException) as e:
        return None, str(e)
    try:
        return r.status, json.loads(data.decode())
    except ValueError:
        return r.status, data


def live(s):
    return [m for m in s.members if m.proc is not None and
            m.proc.poll() is None]


def cluster_state(s):
    """(leader Member or None, why not one cluster or None) from what the
    live members say: each lists the same s.nodes members, and all name
    the same leader, which says it leads."""
    why, lists, leaders, ids = [], set(), set(), {}
    for m in live(s):
        st, ms = http_req(m.client_port, "GET", "/v2/members")
        if st != 200 or not isinstance(ms, dict):
            why.append("%s: GET /v2/members -> %s" % (m.name, st))
            continue
        listed = tuple(sorted(x.get("id", "") for x in ms.get("members", [])))
        if len(listed) != s.nodes:
            why.append("%s lists %d member(s), not %d" % (
                m.name, len(listed), s.nodes))
        lists.add(listed)
        st, me = http_req(m.client_port, "GET", "/v2/stats/self")
        if st != 200 or not isinstance(me, dict):
            why.append("%s: GET /v2/stats/self -> %s" % (m.name, st))
            continue
        ids[me.get("id")] = m
        leaders.add((me.get("leaderInfo") or {}).get("leader"))
    if len(lists) > 1:
        why.append("members list different member sets")
    leader = None
    if len(leaders) == 1:
        leader = ids.get(next(iter(leaders)))
    if leader is None:
        why.append("no single leader agreed on (%d named)" % len(leaders))
    return leader, ("; ".join(why) if why else None)


def wait_cluster(s, timeout):
    """Until cluster_state says one cluster; its leader, or NotFormed."""
    end = time.monotonic() + timeout
    while True:
        for m in s.members:
            if m.proc is not None and m.proc.poll() is not None:
                raise NotFormed("%s exited with %s; log %s" % (
                    m.name, m.proc.returncode, m.log_path))
        leader, why = cluster_state(s)
        if why is None:
            return leader
        if time.monotonic() > end:
            raise NotFormed(why)
        time.sleep(0.1)


def check_formed(s, timeout):
    """One cluster (wait_cluster), and a write on the first member is seen
    by a quorum read on every other: replication, not N lone members."""
    leader = wait_cluster(s, timeout)
    key = "/v2/keys/bench/formed"
    val = "v%d" % time.monotonic_ns()
    st, _ = http_req(s.members[0].client_port, "PUT", key, "value=" + val,
                     timeout=5)
    if st not in (200, 201):
        raise NotFormed("a write on %s answered %s" % (s.members[0].name, st))
    for m in s.members[1:]:
        st, b = http_req(m.client_port, "GET", key + "?quorum=true",
                         timeout=5)
        got = b.get("node", {}).get("value") if isinstance(b, dict) else b
        if st != 200 or got != val:
            raise NotFormed("a write on %s is not read back on %s (%s %r)"
                            % (s.members[0].name, m.name, st, got))
    return leader


def leader_endpoint(s):
    leader = wait_cluster(s, 10.0)
    return leader.url


async def put_once(port, path, body, timeout):
    """Status of one PUT on a fresh connection, or None."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port), timeout)
        writer.write((
            "PUT %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            "Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (
                path, port, len(body), body)).encode())
        line = await asyncio.wait_for(reader.readline(), timeout)
        parts = line.split()
        return int(parts[1]) if len(parts) >= 2 else None
    except (OSError, asyncio.TimeoutError, ValueError):
        return None
    finally:
        if writer is not None:
            writer.close()


async def probe_failover(targets, kill, pre_s, give_up_s):
    """Starts a PUT every PROBE_INTERVAL_S, each on a fresh connection, to
    the members in targets in turn; after pre_s calls kill() (which
    returns the kill's monotonic time) and goes on until a PUT sent after
    the kill is acknowledged, or give_up_s after the kill. Returns
    (t_kill, acked [(key, member, t_send, t_ack)], sent before the kill)."""
    acked, tasks = [], set()
    t0, t_kill, seq, sent_before = time.monotonic(), None, 0, 0

    async def attempt(n, m):
        key = "/v2/keys/bench/failover/p%07d" % n
        t_send = time.monotonic()
        st = await put_once(m.client_port, key, "value=%d" % n, give_up_s)
        if st in (200, 201):
            acked.append((key, m, t_send, time.monotonic()))

    while True:
        now = time.monotonic()
        if t_kill is None and now - t0 >= pre_s:
            sent_before = seq
            t_kill = kill()
        if t_kill is not None:
            if any(a[2] >= t_kill for a in acked) or \
                    now - t_kill > give_up_s:
                break
        if len(tasks) < 2000:
            task = asyncio.ensure_future(attempt(seq,
                                                 targets[seq % len(targets)]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            seq += 1
        await asyncio.sleep(PROBE_INTERVAL_S)
    await asyncio.sleep(0.05)  # answers already on their way
    for task in list(tasks):
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return t_kill, acked, sent_before


def failover_trial(bench, s, rep, election_ms):
    """kill -9 of the leader under a steady write load (cairn-bench put,
    open loop, over all members); returns the ms from the kill to the first
    acknowledged write sent after it to a surviving member (None: none in
    time), and the probe writes acknowledged but then missing."""
    leader = wait_cluster(s, 10.0)
    survivors = [m for m in s.members if m is not leader]
    pre_s = 1.0
    give_up_s = max(10.0, 20 * election_ms / 1000.0)
    load = bench.start("put", s.endpoints, "--conns", 16, "--rate", 300,
                       "--duration", pre_s + 4 * election_ms / 1000.0 + 1,
                       "--timeout", 2, "--key-space", 1000,
                       "--prefix", "/bench/fo")

    killed = []

    def kill():
        t = time.monotonic()
        os.kill(leader.proc.pid, signal.SIGKILL)  # our own child
        killed.append(t)
        return t

    try:
        t_kill, acked, _ = asyncio.run(
            probe_failover(survivors, kill, pre_s, give_up_s))
    finally:
        if killed:
            leader.proc.wait()
        r = bench.finish(load)
    after = sorted((a for a in acked if a[2] >= t_kill), key=lambda a: a[3])
    ms = (after[0][3] - t_kill) * 1000.0 if after else None
    lost = 0
    for key, _, _, _ in acked:
        st, _ = http_req(survivors[0].client_port, "GET",
                         key + "?quorum=true", timeout=10)
        if st != 200:
            lost += 1
    new_leader, _ = cluster_state(s)
    rep.out("  failover %s: killed leader %s; %s; new leader %s; probe "
            "writes acknowledged %d, missing after: %d; load %s" % (
                s.label, leader.name,
                "first write acknowledged by %s after %.0f ms" % (
                    after[0][1].name, ms) if after else
                "NO write acknowledged within %.0f s" % give_up_s,
                new_leader.name if new_leader else "?", len(acked), lost,
                "%d ok, %d errors" % (r["ok"], r["errors"]["total"])
                if r else "no report"))
    # the killed member comes back with its data dir and rejoins
    leader.start()
    leader.wait_ready()
    wait_cluster(s, 30.0)
    return ms, lost


def failover_matrix(bench, systems, rep, trials, election_ms, prefix):
    got = {s.label: [] for s in systems}
    lost = {s.label: 0 for s in systems}
    broken = set()
    for _ in range(trials):  # A B A B
        for s in systems:
            if s.label in broken:
                continue
            try:
                ms, n = failover_trial(bench, s, rep, election_ms)
            except (NotFormed, RuntimeError) as e:
                rep.out("  failover %s: FAILED, no more trials on it: %s" % (
                    s.label, e))
                broken.add(s.label)
                got[s.label].append(None)
                continue
            got[s.label].append(ms)
            lost[s.label] += n

    def agg(f):
        return {label: (f(v) if v and None not in v else None)
                for label, v in got.items()}
    names = [prefix + "failover_ms", prefix + "failover_max_ms",
             prefix + "failover_lost_writes"]
    rep.figure(names[0], "ms", agg(mean), "low")
    rep.figure(names[1], "ms", agg(max), "low")
    rep.figure(names[2], "writes", lost, "low")
    return names


def cmd_cluster(args):
    bench = Bench(args.build)
    spec = system_spec(args)
    stamp = datetime.datetime.now()
    workdir = os.path.join(RESULTS, "tmp", "cluster-%d" % os.getpid())
    os.makedirs(workdir, exist_ok=True)
    prefix = "n%d_" % args.nodes
    header = [
        "cairn benchmark, %d-node clusters, %s (%s)" % (
            args.nodes, stamp.strftime("%Y-%m-%d %H:%M:%S"),
            "QUICK" if args.quick else "full"),
        "cpu: %s x %d (load generator and all members share them)" % (
            cpu_model(), os.cpu_count()),
        "kernel: %s; tree: %s" % (platform.release(), git_head()),
        "systems: %s" % ", ".join("%s=%s (%s)" % (l, b, version_of(b))
                                  for l, _, b in spec),
        "members: %d per system on 127.0.0.1, fresh data dirs, "
        "--heartbeat-interval %d --election-timeout %d (ms) for both" % (
            args.nodes, args.heartbeat_interval, args.election_timeout),
        "endpoints: _all = connections round-robin over every member "
        "(etcd benchmark --endpoints); _leader = the leader only",
    ]
    for line in header:
        log(line)
    rep = Report([l for l, _, _ in spec], header)
    rc = 0
    systems, formed = [], []
    try:
        for label, kind, binary in spec:
            extra = ["--initial-cluster-token",
                     "bench-%s-%d" % (label.replace("#", "-"), os.getpid()),
                     "--heartbeat-interval", str(args.heartbeat_interval),
                     "--election-timeout", str(args.election_timeout)]
            s = System(label, kind, binary, workdir, args.nodes, extra)
            systems.append(s)
            if not os.access(binary, os.X_OK):
                rep.out("%s cluster did not form: %s is not built" % (
                    label, binary))
                continue
            try:
                s.start()
                leader = check_formed(s, 10.0 if args.quick else 20.0)
            except (RuntimeError, NotFormed) as e:
                rep.out("%s cluster did not form: %s; its figures are n/a"
                        % (label, e))
                s.cleanup()
                continue
            rep.out("%s: %d members formed one cluster, leader %s" % (
                label, args.nodes, leader.name))
            formed.append(s)
        if not formed:
            raise RuntimeError("no cluster formed")
        targets = [("_all", all_members), ("_leader", leader_endpoint)]
        if args.endpoints != "both":
            targets = [t for t in targets if t[0] == "_" + args.endpoints]
        elif args.quick:
            targets = targets[:1]  # QUICK: over all members only
        names = matrix(bench, formed, rep, args.quick,
                       [w for w in args.workloads.split(",") if w],
                       [int(c) for c in args.conns.split(",")],
                       targets=targets, prefix=prefix)
        trials = args.failover_trials or (1 if args.quick else 5)
        fo_names = failover_matrix(bench, formed, rep, trials,
                                   args.election_timeout, prefix)
        if names:
            rep.table("%d-node clusters: throughput and latency (mean of "
                      "runs; latency from send; cpu = all members)"
                      % args.nodes, names)
        rep.table("%d-node clusters: kill -9 of the leader to the first "
                  "acknowledged write, %d trials each" % (args.nodes, trials),
                  fo_names)
        rep.ratios()
        for s in systems:
            if s not in formed:
                rep.out("note: %s cluster did not form (reason above); its "
                        "figures are n/a" % s.label)
    except (RuntimeError, NotFormed, subprocess.TimeoutExpired) as e:
        rep.out("bench-cluster: FAIL: %s" % e)
        rc = 1
    finally:
        for s in systems:
            s.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    out = args.out or os.path.join(
        RESULTS, stamp.strftime("%Y-%m-%d-%H%M%S") + "-cluster.txt")
    with open(out, "w") as f:
        f.write("\n".join(rep.lines) + "\n")
    log("results written to %s" % os.path.relpath(out, ROOT))
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sm = sub.add_parser("smoke")
    sm.add_argument("--build", default="build")
    sm.add_argument("--server", default="cairn", choices=["cairn", "etcd"])
    cp = sub.add_parser("compare")
    cp.add_argument("--build", default="build")
    cp.add_argument("--quick", action="store_true")
    cp.add_argument("--systems", default="cairn,etcd")
    cp.add_argument("--nodes", type=int, default=1)
    cp.add_argument("--out", default=None)
    cp.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="subset to run, e.g. put,get")
    cp.add_argument("--conns", default=",".join(map(str, CONNS)),
                    help="connection counts, e.g. 1,64")
    cp.add_argument("--keys", default=None,
                    help="memory steps, e.g. 100000,1000000")
    cl = sub.add_parser("cluster")
    cl.add_argument("--build", default="build")
    cl.add_argument("--quick", action="store_true")
    cl.add_argument("--systems", default="cairn,etcd")
    cl.add_argument("--nodes", type=int, default=3)
    cl.add_argument("--out", default=None)
    cl.add_argument("--workloads", default=",".join(CLUSTER_WORKLOADS),
                    help="subset, e.g. put; empty: failover only")
    cl.add_argument("--conns", default=",".join(map(str, CLUSTER_CONNS)))
    cl.add_argument("--endpoints", default="both",
                    choices=["both", "all", "leader"])
    cl.add_argument("--failover-trials", type=int, default=0,
                    help="kill -9 trials per system (QUICK 2, else 5)")
    cl.add_argument("--heartbeat-interval", type=int, default=100)
    cl.add_argument("--election-timeout", type=int, default=1000)
    args = ap.parse_args()
    # SIGTERM unwinds through the finally blocks, which stop our servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.cmd == "smoke":
        return cmd_smoke(args)
    if args.cmd == "cluster":
        return cmd_cluster(args)
    return cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
