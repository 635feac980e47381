"""Process tests of the cairnctl recipes against the server under test:
register / lookup (health, TTL expiry after a kill, removal on clean exit,
--watch), elect (one leader; take-over when the leader is killed), lock
(mutual exclusion among three contenders, checked from enter/exit times).
"""

import json
import os
import signal
import time

import pytest

import clihelp as H


def ctl(server, *args, **kw):
    return H.run("cairnctl", list(args), server.client_url, **kw)


def start(server, *args, **kw):
    return H.spawn("cairnctl", list(args), server.client_url, **kw)


def stop(p, sig=signal.SIGTERM, timeout=10):
    if p.poll() is None:
        p.send_signal(sig)
    try:
        p.communicate(timeout=timeout)
    except Exception:
        p.kill()
        p.communicate()
    return p.returncode


def wait_for(pred, timeout=10.0, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def lookup(server, service, *flags):
    rc, out, err = ctl(server, "lookup", service, *flags)
    assert rc == 0, err
    return out.splitlines()


def test_register_healthy_unhealthy_and_clean_exit(server):
    ok = start(server, "register", "--ttl", "3", "web", "w1", "10.0.0.1:80")
    bad = start(server, "register", "--ttl", "3", "--check", "exit 1", "web",
                "w2", "10.0.0.2:80")
    try:
        assert wait_for(lambda: len(lookup(server, "web")) == 2)
        assert lookup(server, "web") == ["w1 10.0.0.1:80 healthy",
                                         "w2 10.0.0.2:80 unhealthy"]
        assert lookup(server, "web", "--healthy") == ["w1 10.0.0.1:80 healthy"]
        _, body, _ = H.http(server.client_url, "GET", "/v2/keys/services/web/w2")
        value = json.loads(body["node"]["value"])
        assert value["healthy"] is False and value["addr"] == "10.0.0.2:80"
        assert value["updated"].endswith("Z")
        assert 0 < body["node"]["ttl"] <= 3
        # Heartbeats keep the key past its TTL.
        time.sleep(4)
        assert len(lookup(server, "web")) == 2
        # A clean exit removes the instance at once.
        assert stop(ok) == 0
        assert lookup(server, "web") == ["w2 10.0.0.2:80 unhealthy"]
    finally:
        stop(ok)
        stop(bad)


def test_register_check_turns_healthy_and_http_tcp_checks(server, tmp_path):
    flag = tmp_path / "up"
    p = start(server, "register", "--ttl", "3", "--interval", "200",
              "--check", "test -e %s" % flag, "api", "a1", "h:1")
    t = start(server, "register", "--ttl", "3", "--tcp",
              "127.0.0.1:%d" % server.client_port, "api", "a2", "h:2")
    hcheck = start(server, "register", "--ttl", "3", "--http",
                   server.client_url + "/health", "api", "a3", "h:3")
    try:
        assert wait_for(lambda: "a1 h:1 unhealthy" in lookup(server, "api"))
        flag.write_text("1")
        assert wait_for(lambda: "a1 h:1 healthy" in lookup(server, "api"))
        assert wait_for(lambda: "a2 h:2 healthy" in lookup(server, "api"))
        assert wait_for(lambda: "a3 h:3 healthy" in lookup(server, "api"))
    finally:
        for x in (p, t, hcheck):
            stop(x)
    assert lookup(server, "api") == []


def test_register_killed_instance_expires_by_ttl(server):
    p = start(server, "register", "--ttl", "2", "db", "d1", "10.0.0.3:5432")
    try:
        assert wait_for(lambda: lookup(server, "db") ==
                        ["d1 10.0.0.3:5432 healthy"])
        p.kill()
        p.communicate()
        t0 = time.time()
        assert lookup(server, "db") == ["d1 10.0.0.3:5432 healthy"]
        assert wait_for(lambda: lookup(server, "db") == [], timeout=6)
        assert time.time() - t0 < 4.5
    finally:
        stop(p)


def test_register_with_command_lives_as_long_as_the_command(server):
    rc, out, err = ctl(server, "register", "--ttl", "3", "job", "j1", "h:9",
                       "--", "sh", "-c", "sleep 1; exit 7", timeout=20)
    assert rc == 7, err
    assert "job" and lookup(server, "job") == []
    assert "/services/job/j1 healthy" in err


def test_lookup_watch_output(server):
    w = start(server, "lookup", "--watch", "q")
    time.sleep(1.0)
    url = server.client_url
    H.http(url, "PUT", "/v2/keys/services/q/a",
           {"value": json.dumps({"addr": "h:1", "healthy": True})})
    H.http(url, "PUT", "/v2/keys/services/q/a",
           {"value": json.dumps({"addr": "h:1", "healthy": False})})
    H.http(url, "PUT", "/v2/keys/services/q/b", {"value": "h:2"})
    H.http(url, "DELETE", "/v2/keys/services/q/a")
    time.sleep(1.0)
    w.send_signal(signal.SIGINT)
    out, err = w.communicate(timeout=10)
    assert w.returncode == 0, err
    assert out.decode().splitlines() == [
        "+ a h:1 healthy", "+ a h:1 unhealthy", "+ b h:2 healthy", "- a"]


def test_lookup_watch_recovers_from_cleared_history(server):
    """A watch index older than the 1000 kept events (401) is answered by
    listing again: the printed difference still ends in the right state."""
    url = server.client_url
    w = start(server, "lookup", "--watch", "--healthy", "big")
    time.sleep(1.0)
    w.send_signal(signal.SIGSTOP)  # fall behind
    for i in range(1100):
        H.http(url, "PUT", "/v2/keys/other/k", {"value": str(i)})
    H.http(url, "PUT", "/v2/keys/services/big/x",
           {"value": json.dumps({"addr": "h:1", "healthy": True})})
    w.send_signal(signal.SIGCONT)
    time.sleep(1.5)
    H.http(url, "DELETE", "/v2/keys/services/big/x")
    time.sleep(1.0)
    w.send_signal(signal.SIGINT)
    out, err = w.communicate(timeout=10)
    assert out.decode().splitlines() == ["+ x h:1 healthy", "- x"], err


def test_elect_one_leader_and_takeover_on_kill(server, tmp_path):
    log = tmp_path / "leaders"
    cmd = "echo %s >> " + str(log) + "; exec sleep 60"
    obs = start(server, "elect", "--observe", "db")
    a = start(server, "elect", "--ttl", "2", "db", "A", "--", "sh", "-c",
              cmd % "A")
    try:
        assert wait_for(lambda: log.exists() and log.read_text() == "A\n")
        b = start(server, "elect", "--ttl", "2", "db", "B", "--", "sh", "-c",
                  cmd % "B")
        time.sleep(1.5)
        assert log.read_text() == "A\n"  # B waits
        a.kill()  # no resignation: B takes over when the TTL runs out
        a.communicate()
        t0 = time.time()
        assert wait_for(lambda: log.read_text() == "A\nB\n", timeout=8)
        assert time.time() - t0 < 4.5
        assert stop(b) == 0
        _, body, _ = H.http(server.client_url, "GET", "/v2/keys/elections/db")
        assert body.get("errorCode") == 100  # B resigned
        time.sleep(0.5)
    finally:
        stop(a)
        obs.send_signal(signal.SIGINT)
        out, err = obs.communicate(timeout=10)
    assert out.decode().splitlines() == ["A", "B"], err


def test_elect_observe_prints_each_leader(server, tmp_path):
    obs = start(server, "elect", "--observe", "svc")
    time.sleep(1.0)
    rc, _, err = ctl(server, "elect", "--ttl", "2", "svc", "first", "--",
                     "true", timeout=20)
    assert rc == 0, err
    rc, _, err = ctl(server, "elect", "--ttl", "2", "svc", "second", "--",
                     "sh", "-c", "exit 3", timeout=20)
    assert rc == 3, err
    time.sleep(0.5)
    obs.send_signal(signal.SIGINT)
    out, err = obs.communicate(timeout=10)
    assert out.decode().splitlines() == ["first", "second"], err


def test_elect_leader_stops_command_when_key_is_taken(server, tmp_path):
    """Losing the key (here: an operator deletes it and someone else wins)
    makes the leader stop its command at the next refresh."""
    mark = tmp_path / "running"
    p = start(server, "elect", "--ttl", "3", "x", "me", "--", "sh", "-c",
              "touch %s; trap 'rm -f %s; exit 0' TERM; while :; do sleep "
              "0.1; done" % (mark, mark))
    try:
        assert wait_for(lambda: mark.exists())
        url = server.client_url
        H.http(url, "DELETE", "/v2/keys/elections/x")
        H.http(url, "PUT", "/v2/keys/elections/x?prevExist=false",
               {"value": "other", "ttl": "30"})
        assert wait_for(lambda: not mark.exists(), timeout=5)
    finally:
        stop(p)
        H.http(server.client_url, "DELETE", "/v2/keys/elections/x")


def test_lock_mutual_exclusion_three_contenders(server, tmp_path):
    rec = tmp_path / "rec"
    body = ("echo enter $N $(date +%%s.%%N) >> %s; sleep 0.4; "
            "echo exit $N $(date +%%s.%%N) >> %s" % (rec, rec))
    procs = [start(server, "lock", "--ttl", "3", "L", "--", "sh", "-c", body,
                   env={"N": str(i)}) for i in range(3)]
    for p in procs:
        p.communicate(timeout=30)
        assert p.returncode == 0
    events = [line.split() for line in rec.read_text().splitlines()]
    assert len(events) == 6
    events.sort(key=lambda e: float(e[2]))
    holder = None
    for kind, who, _ in events:
        if kind == "enter":
            assert holder is None, events
            holder = who
        else:
            assert holder == who, events
            holder = None
    assert sorted(e[1] for e in events if e[0] == "enter") == ["0", "1", "2"]
    _, listing, _ = H.http(server.client_url, "GET", "/v2/keys/locks/L")
    assert not listing["node"].get("nodes")  # every key released


def test_lock_waiter_gets_lock_when_holder_is_killed(server, tmp_path):
    got = tmp_path / "got"
    holder = start(server, "lock", "--ttl", "2", "K", "--", "sleep", "60")
    time.sleep(1.0)
    waiter = start(server, "lock", "--ttl", "2", "K", "--", "sh", "-c",
                   "touch %s" % got)
    try:
        time.sleep(1.0)
        assert not got.exists()
        holder.kill()
        holder.communicate()
        assert wait_for(lambda: got.exists(), timeout=8)
        waiter.communicate(timeout=10)
        assert waiter.returncode == 0
    finally:
        stop(holder)
        stop(waiter)


def test_recipe_usage_errors(server):
    for args in (["register", "a", "b"], ["register", "a/b", "c", "d"],
                 ["lookup"], ["elect", "x"], ["lock", "x"],
                 ["lock", "x", "--", ], ["register", "--check", "x", "--tcp",
                                         "h:1", "s", "i", "a"]):
        rc, out, err = ctl(server, *args)
        assert rc == 1, args
        assert err.startswith("Error:  "), (args, err)
    rc, out, err = ctl(server, "backup", "--data-dir", "x", "--backup-dir",
                       "y")
    # A data dir that holds no cairn log: a clear error, nothing copied.
    assert rc == 1 and "no cairn log in x/member/wal" in err, err
    for c in ("register", "lookup", "elect", "lock"):
        rc, out, err = ctl(server, "help", c)
        assert rc == 0 and out.startswith("NAME:\n   cairnctl %s" % c)
