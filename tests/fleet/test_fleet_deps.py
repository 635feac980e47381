"""Unit dependencies with real agents: Requires=/BindsTo=/Wants= and
After=/Before= among the units of one machine (docs/units.md,
Dependencies). Units append lines to a log file as they start and stop,
so the tests read the order in which things happened."""

import os
import signal
import time

from conftest import pids_in_group, wait_for


def logged(fleet, name):
    return ("ExecStart=/bin/sh -c 'echo %s >> %s; exec sleep 600'\n"
            "ExecStopPost=/bin/sh -c 'echo %s-stopped >> %s'\n"
            "TimeoutStopSec=2\n" % (name, fleet.log, name, fleet.log))


def lines(fleet):
    try:
        with open(fleet.log) as f:
            return f.read().split()
    except OSError:
        return []


def pgid(agent, unit):
    try:
        with open(os.path.join(agent.state_dir, "run", unit + ".pgid")) as f:
            g = int(f.read())
        return g if pids_in_group(g) else None
    except (OSError, ValueError):
        return None


def state(fleet, unit):
    return {u: st for (u, m), st in fleet.units().items()}.get(unit)


def test_fleet_requires_after_on_one_machine(fleet):
    fleet.log = os.path.join(fleet.tmp, "order")
    a1 = fleet.agent("m1")
    a2 = fleet.agent("m2")
    fleet.wait_machines(2)
    # db takes a second to start; web needs it, after it, beside it, and
    # also names units of the host, which count as there.
    # db's ExecStartPre leaves a mark once done; web logs "web" only if it
    # finds the mark when it starts (its own log line may come first: db's
    # shell is merely forked when db counts as active).
    mark = os.path.join(fleet.tmp, "db-started")
    fleet.write_unit("db.service", (
        "[Service]\nExecStartPre=/bin/sleep 1\n"
        "ExecStartPre=/bin/touch %s\n" % mark) + logged(fleet, "db"))
    fleet.write_unit("web.service", (
        "[Unit]\nRequires=db.service network-online.target\n"
        "After=db.service network-online.target\n[Service]\n"
        "ExecStart=/bin/sh -c 'if test -e %s; then echo web >> %s; "
        "else echo web-too-early >> %s; fi; exec sleep 600'\n"
        "ExecStopPost=/bin/sh -c 'echo web-stopped >> %s'\n"
        "TimeoutStopSec=2\n"
        "[X-Fleet]\nMachineOf=db.service\n" % (
            mark, fleet.log, fleet.log, fleet.log)))
    fleet.ctl("start", "web.service", "db.service")
    wait_for(lambda: len(lines(fleet)) == 2, 5, "two lines")
    assert sorted(lines(fleet)) == ["db", "web"]
    (mid,) = fleet.running_on("db.service")
    assert fleet.running_on("web.service") == [mid]
    agent = a1 if a1.machine_id == mid else a2

    # db fails (Restart=no): web is stopped and waits for it.
    os.kill(pgid(agent, "db.service"), signal.SIGKILL)
    wait_for(lambda: state(fleet, "web.service") == ("inactive", "dead"),
             10, "web stopped after db failed")
    assert state(fleet, "db.service") == ("failed", "failed")
    assert pgid(agent, "web.service") is None
    assert "Waiting: db.service failed" in \
        fleet.ctl("status", "web.service").stdout

    assert sorted(lines(fleet)) == ["db", "db-stopped", "web", "web-stopped"]

    # db back: web starts again by itself (its desired state is launched).
    mark = len(lines(fleet))
    fleet.ctl("stop", "db.service")
    fleet.ctl("start", "db.service")
    wait_for(lambda: fleet.running_on("web.service") == [mid], 10,
             "web running again")
    wait_for(lambda: len(lines(fleet)) == mark + 2, 5, "two more lines")
    assert lines(fleet)[mark:] == ["db", "web"]

    # Stopping db stops web first, then db.
    mark = len(lines(fleet))
    p = fleet.ctl("stop", "db.service")
    assert p.stderr == "Successfully stopped units [db.service].\n"
    wait_for(lambda: "db-stopped" in lines(fleet)[mark:], 10, "db stopped")
    assert lines(fleet)[mark:] == ["web-stopped", "db-stopped"]
    assert fleet.ctl("list-unit-files", "--no-legend", "--fields",
                     "unit,dstate").stdout.split() == \
        ["db.service", "loaded", "web.service", "launched"]

    # Destroying db takes web's MachineOf= away: the engine unschedules it.
    fleet.ctl("destroy", "db.service")
    wait_for(lambda: fleet.ctl("list-unit-files", "--no-legend", "--fields",
                               "unit,state,target").stdout.split() ==
             ["web.service", "inactive", "-"], 10, "web unscheduled")
    assert pgid(agent, "web.service") is None


def test_fleet_requirement_on_another_machine_is_not_met(fleet):
    fleet.log = os.path.join(fleet.tmp, "order")
    fleet.agent("m1", metadata="role=a")
    b_agent = fleet.agent("m2", metadata="role=b")
    fleet.wait_machines(2)
    fleet.write_unit("b.service", "[Service]\n" + logged(fleet, "b") +
                     "[X-Fleet]\nMachineMetadata=role=b\n")
    fleet.write_unit("a.service", "[Unit]\nRequires=b.service\n[Service]\n" +
                     logged(fleet, "a") +
                     "[X-Fleet]\nMachineMetadata=role=a\n")
    fleet.ctl("start", "--no-block", "a.service", "b.service")
    wait_for(lambda: fleet.running_on("b.service") == [b_agent.machine_id],
             10, "b running on its machine")
    wait_for(lambda: "Waiting: b.service is not launched on this machine" in
             fleet.ctl("status", "a.service").stdout, 10, "a waiting")
    assert state(fleet, "a.service") == ("inactive", "dead")
    wait_for(lambda: lines(fleet), 5, "b's line")
    assert lines(fleet) == ["b"]


def test_fleet_ordering_without_requirement_and_shutdown_order(fleet):
    fleet.log = os.path.join(fleet.tmp, "order")
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    # c wants d after it; e goes before d (Before=), f is unrelated.
    fleet.write_unit("d.service", "[Service]\nExecStartPre=/bin/sleep 1\n" +
                     logged(fleet, "d"))
    fleet.write_unit("c.service", "[Unit]\nWants=d.service\n"
                     "After=d.service\n[Service]\n" + logged(fleet, "c"))
    fleet.write_unit("e.service", "[Unit]\nBefore=d.service\n[Service]\n"
                     "ExecStartPre=/bin/sleep 0.5\n" + logged(fleet, "e"))
    fleet.ctl("start", "c.service", "d.service", "e.service")
    wait_for(lambda: len(lines(fleet)) == 3, 5, "three lines")
    assert lines(fleet) == ["e", "d", "c"]
    # The agent's SIGTERM stops them in reverse: c, d, then e.
    a1.stop()
    assert lines(fleet)[3:] == ["c-stopped", "d-stopped", "e-stopped"]


def test_fleet_destroyed_requirement_stays_missing(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    fleet.write_unit("y.service", "[Service]\nExecStart=/bin/sleep 600\n")
    fleet.write_unit("x.service", "[Unit]\nRequires=y.service\n[Service]\n"
                     "ExecStart=/bin/sleep 600\n")
    fleet.ctl("start", "x.service", "y.service")
    assert pgid(a1, "x.service")
    fleet.ctl("destroy", "y.service")
    wait_for(lambda: pgid(a1, "x.service") is None, 10, "x stopped")
    # y is no unit of the cluster any more, but it was one: x does not
    # take it for a unit of the host and stays stopped.
    time.sleep(1.5)
    assert pgid(a1, "x.service") is None
    assert "Waiting: y.service is not launched on this machine" in \
        fleet.ctl("status", "x.service").stdout
