"""What cairn-fleetctl costs the store on big batches, counted at the
store's door: fleetctl talks to the store through a counting proxy
(countproxy.py) while the agents talk to it directly.

A batch reads job/, states/ and unit/ whole (one request each per look)
instead of once per unit; new units take three writes each (text,
target-state, object), one text per distinct unit file."""

import time

from countproxy import CountingProxy

N = 50


def unit_text(i):
    return ("[Unit]\nDescription=batch unit %d\n[Service]\n"
            "ExecStart=/bin/sleep 600\nTimeoutStopSec=2\n" % i)


def gets(px):
    return sum(v for k, v in px.counts.items() if k.startswith("GET "))


def timed_ctl(fleet, *args):
    t0 = time.time()
    p = fleet.ctl(*args, timeout=120)
    return p, time.time() - t0


def looks_bound(seconds):
    """Reads a batch wait may make in that time: a look every 250 ms reads
    job/ and states/ whole, or, once 4 units or fewer are left, each of
    them alone (2 reads each); plus machines/, unit/ and the first
    lookup. Independent of the number of units."""
    return 8 * (int(seconds / 0.25) + 2) + 4


def test_fleet_batch_costs_a_few_requests_per_unit(fleet):
    a1 = fleet.agent("m1")
    a2 = fleet.agent("m2")
    fleet.wait_machines(2)
    names = []
    for i in range(N):
        names.append("b%03d.service" % i)
        fleet.write_unit(names[-1], unit_text(i))
    px = CountingProxy(fleet.store.client_url, fleet.prefix)
    direct = fleet.endpoint
    try:
        fleet.endpoint = px.url
        p, took = timed_ctl(fleet, "start", *names)
        lines = p.stdout.splitlines()
        assert sorted(lines[:N]) == ["Unit %s inactive" % n for n in names]
        launched = sorted(lines[N:])
        assert len(launched) == N
        legends = (fleet.legend(a1), fleet.legend(a2))
        for n, line in zip(names, launched):
            assert line in ("Unit %s launched on %s" % (n, legends[0]),
                            "Unit %s launched on %s" % (n, legends[1]))
        # Three writes per new unit; the waits read job/ and states/
        # whole, not per unit (it was 13 requests per unit, 10 of them
        # reads).
        assert px.counts["PUT unit"] == N
        assert px.counts["PUT job"] == 2 * N
        assert gets(px) <= looks_bound(took), (took, dict(px.counts))

        px.reset()
        out = fleet.ctl("list-unit-files", "--no-legend").stdout
        assert len(out.splitlines()) == N
        assert px.total() <= 4, dict(px.counts)

        px.reset()
        p, took = timed_ctl(fleet, "stop", *names)
        assert p.stderr.startswith("Successfully stopped units [b000")
        assert px.counts["PUT job"] == N
        assert gets(px) <= looks_bound(took), (took, dict(px.counts))

        px.reset()
        p = fleet.ctl("start", "--no-block", *names)
        assert p.stdout == "".join("Triggered unit %s start\n" % n
                                   for n in names)
        assert dict(px.counts) == {"GET job": 1, "GET unit": 1,
                                   "PUT job": N}

        # Instances of one template share one text.
        fleet.write_unit("t@.service", unit_text(-1))
        px.reset()
        inst = ["t@%d.service" % i for i in range(10)]
        fleet.ctl("submit", *inst)
        assert px.counts["PUT unit"] == 1
        assert px.counts["PUT job"] == 2 * len(inst)
    finally:
        fleet.endpoint = direct
        px.close()
