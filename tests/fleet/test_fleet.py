"""Process tests of the fleet layer: real cairn-agent processes (2-3 per
test, separate state dirs, one key prefix per test) on a real store,
driven through cairn-fleetctl, whose output is compared to fleetctl's."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import ECHO, RECONCILE, TTL, pids_in_group, wait_for

ECHO_UNIT = """[Unit]
Description=Echo server

[Service]
ExecStart=%s %%d
Restart=always
RestartSec=0.2
TimeoutStopSec=5
""" % ECHO


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def echo_answers(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ping\n")
            return s.recv(16) == b"ping\n"
    except OSError:
        return False


def sleeper(restart="no", extra=""):
    return ("[Service]\nExecStart=/bin/sleep 600\nRestart=%s\n"
            "RestartSec=0.2\nTimeoutStopSec=2\n%s" % (restart, extra))


def main_pid(fleet, agent, unit):
    path = os.path.join(agent.state_dir, "run", unit + ".pgid")
    try:
        with open(path) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def tab(*rows):
    """Expected text of Go's tabwriter(0, 8, 1, '\\t') over rows."""
    ncol = len(rows[0])
    width = []
    for c in range(ncol - 1):
        w = max(len(r[c]) for r in rows) + 1
        width.append((w + 7) // 8 * 8)
    out = []
    for r in rows:
        line = ""
        for c in range(ncol - 1):
            n = len(r[c])
            tabs = 0
            while n < width[c]:
                n = (n // 8 + 1) * 8
                tabs += 1
            line += r[c] + "\t" * tabs
        out.append(line + r[-1])
    return "\n".join(out) + "\n"


def test_fleet_lifecycle_output_matches_fleetctl(fleet):
    a1 = fleet.agent("m1", metadata="region=us-west")
    fleet.wait_machines(1)
    assert fleet.ctl("list-machines").stdout == tab(
        ("MACHINE", "IP", "METADATA"),
        (a1.machine_id[:8] + "...", "127.0.0.1", "region=us-west"))
    port = free_port()
    path = fleet.write_unit("echo.service", ECHO_UNIT % port)

    p = fleet.ctl("submit", path)
    assert p.stdout == "Unit echo.service inactive\n"
    assert fleet.ctl("list-unit-files").stdout == tab(
        ("UNIT", "HASH", "DSTATE", "STATE", "TARGET"),
        ("echo.service",
         hashlib.sha1((ECHO_UNIT % port).encode()).hexdigest()[:7],
         "inactive", "inactive", "-"))

    leg = fleet.legend(a1)
    assert fleet.ctl("load", "echo").stdout == \
        "Unit echo.service loaded on %s\n" % leg
    assert fleet.ctl("start", "echo").stdout == \
        "Unit echo.service launched on %s\n" % leg
    assert fleet.ctl("list-units").stdout == tab(
        ("UNIT", "MACHINE", "ACTIVE", "SUB"),
        ("echo.service", leg, "active", "running"))
    wait_for(lambda: echo_answers(port), 10, "echo server answers")
    assert fleet.ctl("cat", "echo").stdout == ECHO_UNIT % port

    p = fleet.ctl("stop", "echo")
    assert p.stdout == "Unit echo.service loaded on %s\n" % leg
    assert p.stderr == "Successfully stopped units [echo.service].\n"
    wait_for(lambda: not echo_answers(port), 10, "echo server gone")
    assert fleet.ctl("list-units", "--no-legend").stdout == \
        tab(("echo.service", leg, "inactive", "dead"))

    p = fleet.ctl("unload", "echo")
    assert p.stdout == "Unit echo.service inactive\n"
    assert p.stderr == "Successfully unloaded units [echo.service].\n"
    assert fleet.ctl("destroy", "echo").stdout == "Destroyed echo.service\n"
    assert fleet.ctl("list-unit-files", "--no-legend").stdout == ""
    p = fleet.ctl("stop", "echo", check=False)
    assert p.stderr == "Units not found in registry\n"


def test_fleet_start_submits_and_fields_and_full(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    path = fleet.write_unit("s.service", sleeper())
    assert fleet.ctl("start", path).stdout == (
        "Unit s.service inactive\nUnit s.service launched on %s\n" %
        fleet.legend(a1))
    out = fleet.ctl("list-units", "--full", "--no-legend", "--fields",
                    "unit,machine,load").stdout
    assert out == tab(("s.service", "%s/127.0.0.1" % a1.machine_id,
                       "loaded"))
    p = fleet.ctl("list-units", "--fields", "unit,bogus", check=False)
    assert p.returncode == 1
    assert p.stderr == 'Invalid key in output format: "bogus"\n'


def test_fleet_malformed_unit_is_rejected_whole(fleet):
    fleet.agent("m1")
    good = fleet.write_unit("good.service", sleeper())
    bad = fleet.write_unit("bad.service",
                           "[Service]\nExecStart=/bin/true\nRestart=maybe\n")
    p = fleet.ctl("submit", good, bad, check=False)
    assert p.returncode == 1
    assert "line 3" in p.stderr and "Restart" in p.stderr
    assert fleet.ctl("list-unit-files", "--no-legend").stdout == ""
    odd = fleet.write_unit("odd.service", sleeper() + "Frobnicate=1\n")
    p = fleet.ctl("submit", odd)
    assert "unknown key Frobnicate" in p.stderr
    assert p.stdout == "Unit odd.service inactive\n"


def test_fleet_constraints(fleet):
    west = fleet.agent("west", metadata="region=us-west,disk=ssd")
    east = fleet.agent("east", metadata="region=us-east,disk=hdd")
    fleet.wait_machines(2)
    fleet.write_unit("meta.service", sleeper(extra=(
        "[X-Fleet]\nMachineMetadata=region=us-east region=eu\n"
        "MachineMetadata=disk=hdd\n")))
    fleet.write_unit("buddy.service", sleeper(extra=(
        "[X-Fleet]\nMachineOf=meta.service\n")))
    fleet.write_unit("a@.service", sleeper(extra=(
        "[X-Fleet]\nConflicts=a@*.service\n")))
    fleet.write_unit("g.service", sleeper(extra=(
        "[X-Fleet]\nGlobal=true\n")))
    fleet.write_unit("gw.service", sleeper(extra=(
        "[X-Fleet]\nGlobal=true\nMachineMetadata=region=us-west\n")))
    fleet.ctl("start", "meta.service", "buddy.service", "a@1.service",
              "a@2.service")
    p = fleet.ctl("start", "g.service", "gw.service")
    assert p.stdout == ("Unit g.service inactive\nUnit gw.service inactive\n"
                        "Triggered global unit g.service start\n"
                        "Triggered global unit gw.service start\n")
    assert fleet.running_on("meta.service") == [east.machine_id]
    assert fleet.running_on("buddy.service") == [east.machine_id]
    on = fleet.running_on("a@1.service") + fleet.running_on("a@2.service")
    assert sorted(on) == sorted([east.machine_id, west.machine_id])
    wait_for(lambda: sorted(fleet.running_on("g.service")) ==
             sorted([east.machine_id, west.machine_id]), 10, "global on all")
    wait_for(lambda: fleet.running_on("gw.service") == [west.machine_id],
             10, "global on west only")
    # A third conflicting instance fits nowhere and stays unscheduled.
    fleet.ctl("load", "--no-block", "a@3.service")
    time.sleep(3 * RECONCILE)
    out = fleet.ctl("list-unit-files", "--no-legend", "--fields",
                    "unit,dstate,state,target").stdout
    rows = [re.split(r"\t+", line) for line in out.splitlines()]
    assert ["a@3.service", "loaded", "inactive", "-"] in rows
    assert ["g.service", "launched", "-", "global"] in rows


def test_fleet_agent_death_reschedules_units(fleet):
    a1 = fleet.agent("m1")
    a2 = fleet.agent("m2")
    fleet.wait_machines(2)
    port = free_port()
    fleet.write_unit("echo.service", ECHO_UNIT % port)
    fleet.ctl("start", "echo.service")
    wait_for(lambda: echo_answers(port), 10, "echo answers")
    (mid,) = fleet.running_on("echo.service")
    victim, other = (a1, a2) if mid == a1.machine_id else (a2, a1)
    t0 = time.time()
    victim.kill9()
    wait_for(lambda: fleet.running_on("echo.service") == [other.machine_id],
             TTL + 6, "echo.service on the survivor")
    wait_for(lambda: echo_answers(port), 10, "echo answers again")
    took = time.time() - t0
    assert took < TTL + 6, took


def engine_lease(fleet):
    """(machine ID, createdIndex) of the engine lease, or None."""
    url = "%s/v2/keys%slease/engine-leader" % (fleet.endpoint, fleet.prefix)
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            node = json.load(r)["node"]
    except urllib.error.HTTPError:
        return None
    return json.loads(node["value"])["MachineID"], node["createdIndex"]


def test_fleet_engine_leader_death_hands_over_lease_and_units(fleet):
    # The engine elects with cairnctl elect's code (cli_elect): the lease is
    # kept by refreshes (same createdIndex past its TTL), and when the
    # leader dies the survivor takes the lease and reschedules its units.
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    first = wait_for(lambda: engine_lease(fleet), 5, "an engine lease")
    assert first[0] == a1.machine_id
    port = free_port()
    fleet.write_unit("echo.service", ECHO_UNIT % port)
    fleet.ctl("start", "echo.service")
    wait_for(lambda: fleet.running_on("echo.service") == [a1.machine_id], 10,
             "echo.service on the engine's machine")
    a2 = fleet.agent("m2")
    fleet.wait_machines(2)
    time.sleep(TTL * 1.5)
    assert engine_lease(fleet) == first  # refreshed, never re-created
    a1.kill9()
    lease = wait_for(lambda: (engine_lease(fleet) or ("",))[0] ==
                     a2.machine_id, TTL + 3, "the survivor's engine lease")
    assert lease
    wait_for(lambda: fleet.running_on("echo.service") == [a2.machine_id],
             TTL + 6, "echo.service on the survivor")
    assert "engine: elected leader" in a2.log_tail(200)


def test_fleet_restart_policies(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    fleet.write_unit("always.service", sleeper("always"))
    fleet.write_unit("never.service", sleeper("no"))
    fleet.ctl("start", "always.service", "never.service")
    pid_a = wait_for(lambda: main_pid(fleet, a1, "always.service"), 5, "pid")
    pid_n = wait_for(lambda: main_pid(fleet, a1, "never.service"), 5, "pid")
    os.kill(pid_a, signal.SIGKILL)
    os.kill(pid_n, signal.SIGKILL)
    new = wait_for(lambda: (main_pid(fleet, a1, "always.service") or pid_a)
                   != pid_a and main_pid(fleet, a1, "always.service"),
                   10, "always.service restarted")
    assert new != pid_a
    os.kill(new, 0)
    wait_for(lambda: fleet.units().get(("never.service", a1.machine_id)) ==
             ("failed", "failed"), 10, "never.service failed")
    time.sleep(1)
    assert fleet.units()[("never.service", a1.machine_id)] == \
        ("failed", "failed")
    assert fleet.units()[("always.service", a1.machine_id)] == \
        ("active", "running")


def test_fleet_agent_restart_leaves_no_orphans(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    fleet.write_unit("s.service", sleeper())
    fleet.ctl("start", "s.service")
    pgid = wait_for(lambda: main_pid(fleet, a1, "s.service"), 5, "pgid")
    assert pids_in_group(pgid)
    a1.kill9()
    a1.start()
    wait_for(lambda: not pids_in_group(pgid), 10, "old unit group gone")
    new = wait_for(lambda: (main_pid(fleet, a1, "s.service") or pgid) != pgid
                   and main_pid(fleet, a1, "s.service"), 10, "restarted")
    assert pids_in_group(new)
    wait_for(lambda: fleet.running_on("s.service") == [a1.machine_id], 10,
             "running again")


def test_fleet_journal_and_status(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    fleet.write_unit("talk.service", (
        "[Unit]\nDescription=Talker\n[Service]\n"
        "ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo line$i; done; "
        "exec sleep 600'\nTimeoutStopSec=2\n"))
    fleet.ctl("start", "talk.service")
    out = wait_for(lambda: fleet.ctl("journal", "talk.service").stdout
                   .count("line") == 5 and
                   fleet.ctl("journal", "talk.service").stdout, 10, "journal")
    lines = out.splitlines()
    assert lines[-1].endswith("talk.service[%d]: line5" %
                              main_pid(fleet, a1, "talk.service"))
    two = fleet.ctl("journal", "--lines", "2", "talk").stdout.splitlines()
    assert [re.sub(r".*: ", "", x) for x in two] == ["line4", "line5"]
    st = fleet.ctl("status", "talk").stdout
    assert "talk.service - Talker" in st
    assert "Active: active (running)" in st
    p = fleet.ctl("journal", "nope", check=False)
    assert p.stderr == "Unit nope.service does not exist.\n"


def test_fleet_template_instances_expand_specifiers(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    out = os.path.join(fleet.tmp, "spec")
    fleet.write_unit("w@.service", (
        "[Service]\nExecStart=/bin/sh -c 'echo %%i %%p %%n %%m > %s-%%i; "
        "exec sleep 600'\nTimeoutStopSec=2\n" % out))
    fleet.ctl("start", "w@7.service")
    text = wait_for(lambda: os.path.exists(out + "-7") and
                    open(out + "-7").read(), 10, "specifier file")
    assert text == "7 w w@7.service %s\n" % a1.machine_id


def cgroup_v1_writable():
    return (os.path.isdir("/sys/fs/cgroup/memory") and
            not os.path.exists("/sys/fs/cgroup/cgroup.controllers") and
            os.access("/sys/fs/cgroup/memory", os.W_OK))


@pytest.mark.skipif(os.geteuid() != 0, reason="isolation and cgroups need root")
def test_fleet_isolate_and_limits(fleet):
    a1 = fleet.agent("m1")
    fleet.wait_machines(1)
    fleet.write_unit("iso.service", (
        "[Service]\nExecStart=/bin/sh -c 'echo pid=$$; cat /proc/net/dev; "
        "exec sleep 600'\nTimeoutStopSec=2\n"
        "[X-Cairn]\nIsolate=true\nMemoryMax=64M\nCPUQuota=50%\n"))
    fleet.ctl("start", "iso.service")
    text = wait_for(lambda: "lo:" in fleet.ctl("journal", "iso").stdout and
                    fleet.ctl("journal", "iso").stdout, 10, "journal")
    assert re.search(r"iso\.service\[\d+\]: pid=1$", text, re.M), text
    ifaces = re.findall(r"^\S.*: +(\w+):", text, re.M)
    assert ifaces == ["lo"], text
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        d = "/sys/fs/cgroup/cairn-%s-iso.service" % a1.machine_id
        mem, cpu = (d + "/memory.max", "67108864"), (d + "/cpu.max",
                                                    "50000 100000")
    elif cgroup_v1_writable():
        leaf = "cairn-%s-iso.service" % a1.machine_id
        mem = ("/sys/fs/cgroup/memory/%s/memory.limit_in_bytes" % leaf,
               "67108864")
        cpu = ("/sys/fs/cgroup/cpu/%s/cpu.cfs_quota_us" % leaf, "50000")
    else:
        pytest.skip("no writable cgroup hierarchy for the limits")
    for path, want in (mem, cpu):
        with open(path) as f:
            assert f.read().strip() == want
    procs = open(os.path.join(os.path.dirname(mem[0]),
                              "cgroup.procs")).read().split()
    assert str(main_pid(fleet, a1, "iso.service")) in procs
    fleet.ctl("stop", "iso")
    wait_for(lambda: not os.path.exists(os.path.dirname(mem[0])), 10,
             "cgroup removed")


def test_fleet_help_env_and_journal_follow(fleet):
    from conftest import AGENT, FLEETCTL
    p = subprocess.run([FLEETCTL, "--help"], capture_output=True, text=True)
    assert p.returncode == 0
    for cmd in ("list-machines", "list-unit-files", "list-units", "submit",
                "load", "start", "stop", "unload", "destroy", "cat",
                "status", "journal"):
        assert "\t%s\t" % cmd in p.stdout, cmd
    p = subprocess.run([AGENT, "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "--engine-reconcile-interval" in p.stdout
    p = subprocess.run([AGENT, "--bogus"], capture_output=True, text=True)
    assert p.returncode == 1 and "unknown flag --bogus" in p.stderr

    a1 = fleet.agent("m1", env={"FLEET_METADATA": "role=from-env"})
    fleet.wait_machines(1)
    assert "role=from-env" in fleet.ctl("list-machines").stdout
    fleet.write_unit("tick.service", (
        "[Service]\nExecStart=/bin/sh -c 'i=0; while :; do i=$((i+1)); "
        "echo tick$i; sleep 0.1; done'\nTimeoutStopSec=2\n"))
    fleet.ctl("start", "tick.service")
    wait_for(lambda: "tick3" in fleet.ctl("journal", "tick").stdout, 10,
             "first ticks")
    f = subprocess.Popen([FLEETCTL, "--endpoint", fleet.endpoint,
                          "--etcd-key-prefix", fleet.prefix, "journal", "-f",
                          "--lines", "2", "tick"],
                         stdout=subprocess.PIPE, text=True)
    time.sleep(3)
    f.send_signal(signal.SIGTERM)
    out = f.communicate(timeout=10)[0]
    ticks = [int(x) for x in re.findall(r": tick(\d+)$", out, re.M)]
    assert len(ticks) >= 10, out
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks
    assert a1.machine_id[:8] in fleet.ctl("list-units").stdout
