#!/usr/bin/python3
"""Figures of the fleet layer (make bench-fleet), on cairn and on etcd:

  start->running   `cairn-fleetctl start --no-block` to the unit's process
                   existing (mean and max over 10 units, one agent)
  death->elsewhere kill -9 of the agent running a unit to its process
                   running on the other agent (agent TTL 3 s, goal TTL+1 s)
  fleetctl cost    requests cairn-fleetctl sends the store per unit for
                   `start` (blocking), `start --no-block`, `stop` and
                   `list-unit-files` of 100 units on 2 agents, counted by a
                   proxy in front of the store (countproxy.py)
  1000 units       BENCH_UNITS units (default 1000) on 10 agents: time from
                   one `start --no-block` of all of them until every unit
                   runs; store writes per unit (X-Etcd-Index delta) and, on
                   etcd, v2 reads per unit (etcd_debugging_store_reads_total)

Everything runs on 127.0.0.1 with its own temp dirs and stops its own pids.
FLEET_TEST_TARGETS picks the stores (default "etcd,cairn").
"""

import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import KINDS, Fleet, pids_in_group  # noqa: E402
from countproxy import CountingProxy  # noqa: E402
from pylib.cluster import Server  # noqa: E402

import conftest  # noqa: E402

UNITS = int(os.environ.get("BENCH_UNITS", "1000"))


def unit_pgid(agent, unit):
    try:
        with open(os.path.join(agent.state_dir, "run", unit + ".pgid")) as f:
            pgid = int(f.read())
        return pgid if pids_in_group(pgid) else None
    except (OSError, ValueError):
        return None


def running_count(agents):
    """Distinct units whose process runs on some agent (a unit that is
    being moved may briefly run on two)."""
    names = set()
    for a in agents:
        d = os.path.join(a.state_dir, "run")
        try:
            names.update(f for f in os.listdir(d) if f.endswith(".pgid"))
        except OSError:
            pass
    return len(names)


def store_index(url):
    with urllib.request.urlopen(url + "/v2/keys/") as r:
        return int(r.headers["X-Etcd-Index"])


def etcd_reads(url):
    try:
        with urllib.request.urlopen(url + "/metrics") as r:
            text = r.read().decode()
    except OSError:
        return None
    total = 0
    for m in re.finditer(r'^etcd_debugging_store_reads_total\{[^}]*\} (\S+)',
                         text, re.M):
        total += float(m.group(1))
    return total


SLEEPER = "[Service]\nExecStart=/bin/sleep 600\nTimeoutStopSec=1\n"


def bench_start(store):
    f = Fleet(store)
    try:
        a = f.agent("m1")
        f.wait_machines(1)
        times = []
        for i in range(10):
            name = "s%d.service" % i
            f.write_unit(name, SLEEPER)
            f.ctl("submit", name)
            t0 = time.time()
            f.ctl("start", "--no-block", name)
            while unit_pgid(a, name) is None:
                time.sleep(0.002)
            times.append(time.time() - t0)
        return "start->running: mean %.0f ms, max %.0f ms (10 units)" % (
            1000 * sum(times) / len(times), 1000 * max(times))
    finally:
        f.close()


def bench_death(store):
    old = conftest.TTL
    conftest.TTL = 3
    f = Fleet(store)
    try:
        a1, a2 = f.agent("m1"), f.agent("m2")
        f.wait_machines(2)
        f.write_unit("d.service", SLEEPER)
        f.ctl("start", "d.service")
        victim, other = (a1, a2) if unit_pgid(a1, "d.service") else (a2, a1)
        t0 = time.time()
        victim.kill9()
        while unit_pgid(other, "d.service") is None:
            if time.time() - t0 > 30:
                return "death->elsewhere: no move within 30 s"
            time.sleep(0.01)
        took = time.time() - t0
        return "death->elsewhere: %.2f s with agent TTL 3 s (goal %d s)" % (
            took, 3 + 1)
    finally:
        f.close()
        conftest.TTL = old


def bench_ctl_requests(store, n=100):
    f = Fleet(store)
    px = CountingProxy(store.client_url, f.prefix)
    try:
        f.agent("m1")
        f.agent("m2")
        f.wait_machines(2)
        names = []
        for i in range(n):
            names.append("r%03d.service" % i)
            f.write_unit(names[-1], "[Unit]\nDescription=r %d\n" % i + SLEEPER)
        direct, f.endpoint = f.endpoint, px.url
        out = []
        for label, args in (("start", ["start"] + names),
                            ("list-unit-files", ["list-unit-files"]),
                            ("stop", ["stop"] + names),
                            ("start --no-block", ["start", "--no-block"] +
                             names)):
            px.reset()
            t0 = time.time()
            f.ctl(*args, timeout=600)
            out.append("%s %.2f/unit (%.1f s)" % (label, px.total() / float(n),
                                                  time.time() - t0))
        f.endpoint = direct
        return "fleetctl requests, %d units: %s" % (n, "; ".join(out))
    finally:
        px.close()
        f.close()


def bench_many(store):
    old = conftest.TTL
    conftest.TTL = 10  # 2,000 processes on 2 cores: no false deaths
    f = Fleet(store)
    try:
        agents = [f.agent("m%d" % i) for i in range(10)]
        f.wait_machines(10, timeout=30)
        names = []
        for i in range(UNITS):
            name = "u%04d.service" % i
            f.write_unit(name, SLEEPER)
            names.append(name)
        idx0 = store_index(f.endpoint)
        reads0 = etcd_reads(f.endpoint) if store.kind == "etcd" else None
        t0 = time.time()
        f.ctl("start", "--no-block", *names, timeout=600)
        t_cli = time.time() - t0
        while running_count(agents) < UNITS:
            if time.time() - t0 > 300:
                break
            time.sleep(0.05)
        took = time.time() - t0
        n = running_count(agents)
        idx1 = store_index(f.endpoint)
        line = ("%d units on 10 agents: %d running after %.1f s "
                "(%.0f units/s; CLI submit+start %.1f s); "
                "%.1f store writes/unit" % (
                    UNITS, n, took, n / took, t_cli,
                    (idx1 - idx0) / float(UNITS)))
        if reads0 is not None:
            line += ", %.1f v2 reads/unit" % (
                (etcd_reads(f.endpoint) - reads0) / float(UNITS))
        return line
    finally:
        f.close()
        conftest.TTL = old


def main():
    for kind in KINDS:
        s = Server.etcd() if kind == "etcd" else Server.cairn()
        try:
            s.start()
            print("fleet bench on %s:" % kind, flush=True)
            for fn in (bench_start, bench_death, bench_ctl_requests,
                       bench_many):
                print("  " + fn(s), flush=True)
        finally:
            s.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
