#!/usr/bin/python3
"""cairn vs etcd benchmarks, driven by cairn-bench (see docs/performance.md).

    run.py smoke   [--build DIR] [--server cairn|etcd]
    run.py compare [--build DIR] [--quick] [--systems cairn,etcd] [--nodes N]

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

Only processes this script starts are stopped, by pid. Data dirs live in
bench/results/tmp/ (same disk as the repository) and are removed at the end.
"""

import argparse
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


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def __init__(self, kind, binary, workdir, name, cluster=None):
        self.kind, self.binary, self.name = kind, binary, name
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
                "--enable-v2"]

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

    def __init__(self, label, kind, binary, workdir, nodes=1):
        self.label, self.kind, self.binary = label, kind, binary
        self.workdir = os.path.join(workdir, label.replace("#", "-"))
        self.nodes = nodes
        self.members = []

    def start(self):
        if os.path.isdir(self.workdir):
            shutil.rmtree(self.workdir)
        os.makedirs(self.workdir)
        names = ["%s%d" % (self.kind, i + 1) for i in range(self.nodes)]
        self.members = [Member(self.kind, self.binary, self.workdir, n)
                        for n in names]
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
        self.out("")
        self.out(title)
        self.out("%-24s %12s %12s %10s" % ("figure", a, b, "%s/%s" % (a, b)))
        for name, unit, values, better in self.figures:
            if name not in names:
                continue
            va, vb = values.get(a), values.get(b)
            ratio = "n/a"
            if va is not None and vb:
                ratio = "%.2f" % (va / vb)
            self.out("%-24s %12s %12s %10s" % (
                name + " " + unit, fmt(va), fmt(vb), ratio))

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


def matrix(bench, systems, rep, quick, workloads, conns_list):
    dur = 1 if quick else 3
    rounds = 1 if quick else 2
    for s in systems:
        r = bench.run("put", s.endpoints, "--conns", 16, "--key-order", "seq",
                      "--total", 1000, "--key-space", 1000)
        if r["errors"]["total"]:
            rep.out("warning: preload on %s had errors %s" % (
                s.label, json.dumps(r["errors"])))
    names = []
    for workload in workloads:
        for conns in conns_list:
            got = {s.label: [] for s in systems}
            for rnd in range(rounds):  # A B A B: drift hits both
                for s in systems:
                    c0 = sum(m.cpu_s() for m in s.members)
                    r = bench.run(workload, s.endpoints,
                                  *workload_args(workload, conns, dur))
                    c1 = sum(m.cpu_s() for m in s.members)
                    r["server_cpu_us"] = (c1 - c0) * 1e6 / max(1, r["completed"])
                    got[s.label].append(r)
            base = "%s_c%d" % (workload, conns)
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


def cmd_compare(args):
    bench = Bench(args.build)
    kinds = args.systems.split(",")
    if len(kinds) != 2:
        raise SystemExit("--systems takes two names, e.g. cairn,etcd")
    spec = []
    for i, k in enumerate(kinds):
        label = k if kinds.count(k) == 1 or i == 0 else k + "#2"
        spec.append((label, k, server_binary(args.build, k)))
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
            rep.out("3-node mode: skipped: cairn has no clustering yet; "
                    "rerun with --nodes 3 once it has")
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
    args = ap.parse_args()
    # SIGTERM unwinds through the finally blocks, which stop our servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.cmd == "smoke":
        return cmd_smoke(args)
    return cmd_compare(args)


if __name__ == "__main__":
    sys.exit(main())
