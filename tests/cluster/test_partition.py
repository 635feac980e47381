"""Three members behind the partition proxies (tests/pylib/netproxy.py):

- the proxies' directed cuts, between this process and an echo process;
- an isolated leader (the minority) refuses writes and quorum reads with
  etcd's error while the majority elects a leader and serves; once healed,
  the old leader catches up;
- a seeded random run: client threads doing writes, CAS and quorum reads on
  a few keys against random members while a nemesis cuts and heals random
  directed links; the history must be linearizable
  (tests/pylib/linearize.py), every acknowledged write must be in every
  member's event history at the index it was acknowledged with, and the
  members must end with the same values.

CAIRN_TEST_TARGET=etcd runs them against etcd 3.4 (the reference);
CAIRN_PARTITION_SECONDS (default 15) sets the length of the random run,
CAIRN_PARTITION_SEED its seed (default 1; "random" picks one and prints it).
"""

import json
import os
import queue
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from pylib import httpraw
from pylib.cluster import free_ports
from pylib.linearize import (CAS, READ, WRITE, History, check,
                             inject_stale_read)
from pylib.netproxy import Endpoint, PartitionNet
from pylib.v2 import V2

HEARTBEAT_MS, ELECTION_MS = 50, 500  # what Cluster.member_args passes
# etcd answers a proposal that cannot commit after its request timeout:
# 5 s + 2 election timeouts.
MINORITY_ANSWER_S = 5.0 + 2 * ELECTION_MS / 1000.0
TIMEOUT_CAUSES = ("etcdserver: request timed out",
                  "etcdserver: request timed out, possibly due to previous "
                  "leader failure",
                  "etcdserver: request timed out, possibly due to connection "
                  "lost")


def answer(port, method, path, form=None, timeout=10.0):
    """(status, json body or text, headers, seconds) or (None, error,
    None, seconds) when no answer came."""
    t = time.monotonic()
    try:
        r = httpraw.request(port, method, path, form=form, timeout=timeout)
    except (OSError, httpraw.HTTPError) as e:
        return None, repr(e), None, time.monotonic() - t
    try:
        body = r.json()
    except ValueError:
        body = r.text
    return r.status, body, r, time.monotonic() - t


def write_until_ok(s, key, value, deadline):
    while True:
        st, body, _, _ = answer(s.client_port, "PUT", V2(0).url(key),
                                form={"value": value}, timeout=3)
        if st in (200, 201):
            return body["node"]["modifiedIndex"]
        assert time.monotonic() < deadline, \
            "%s: PUT %s never succeeded: %s %r" % (s.name, key, st, body)
        time.sleep(0.1)


def converge(members, key, timeout=15.0):
    """Until every member holds the same node for key (non-quorum reads);
    returns it (None: absent everywhere)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = []
        for s in members:
            st, body, _, _ = answer(s.client_port, "GET", V2(0).url(key),
                                    timeout=3)
            nodes.append(body.get("node") if st == 200 else
                         None if st == 404 else ("error", st, body))
        seen = {json.dumps(n, sort_keys=True) for n in nodes}
        if len(seen) == 1 and not isinstance(nodes[0], tuple):
            return nodes[0]
        assert time.monotonic() < deadline, \
            "members disagree on %s: %r" % (key, list(zip(
                [s.name for s in members], nodes)))
        time.sleep(0.1)


# ---- 0: the proxies themselves --------------------------------------------

ECHO_MEMBER = r"""
import socket, sys, threading
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", int(sys.argv[1])))
ls.listen(16)
def serve(c):
    for line in c.makefile("rb"):
        print("got", line.decode().strip(), flush=True)
        c.sendall(b"B:" + line)
def accept():
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=accept, daemon=True).start()
print("ready", flush=True)
for cmd in sys.stdin:
    port, msg = cmd.split()
    try:
        s = socket.create_connection(("127.0.0.1", int(port)), timeout=1)
        s.sendall(msg.encode() + b"\n")
        d = s.recv(100)
        print("reply", d.decode().strip() or "EOF", flush=True)
    except socket.timeout:
        print("reply TIMEOUT", flush=True)
    except OSError:
        print("reply RESET", flush=True)
"""


def test_partition_proxy_directed_cuts():
    """Two members: this test process (T) and a small echo process (B),
    each behind its proxy. A cut T->B refuses T's connections to B and
    drops T's answers on B's connections to T; B's bytes still reach T."""
    t_proxy, t_port, b_proxy, b_port = free_ports(4)
    got_t = queue.Queue()  # lines T's own listener received
    ls = socket.socket()
    ls.bind(("127.0.0.1", t_port))
    ls.listen(16)

    def t_serve():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            for line in c.makefile("rb"):
                got_t.put(line.strip().decode())
                c.sendall(b"T:" + line)
            c.close()

    threading.Thread(target=t_serve, daemon=True).start()
    b = subprocess.Popen([sys.executable, "-c", ECHO_MEMBER, str(b_port)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, bufsize=1)
    net = PartitionNet([Endpoint("T", t_proxy, t_port, os.getpid),
                        Endpoint("B", b_proxy, b_port, lambda: b.pid)])
    try:
        assert b.stdout.readline().strip() == "ready"
        net.start()

        def t_dial(msg):
            """T -> B's proxy: what T reads back."""
            try:  # a refused connection may be reset before connect returns
                s = socket.create_connection(("127.0.0.1", b_proxy),
                                             timeout=1)
            except socket.timeout:
                return "TIMEOUT"
            except OSError:
                return "RESET"
            try:
                s.sendall(msg.encode() + b"\n")
                back = s.recv(100).decode().strip() or "EOF"
            except socket.timeout:
                back = "TIMEOUT"
            except OSError:
                back = "RESET"
            finally:
                s.close()
            return back

        def b_dial(msg):
            """B -> T's proxy: B's report of the answer."""
            b.stdin.write("%d %s\n" % (t_proxy, msg))
            return b.stdout.readline().split(" ", 1)[1].strip()

        def t_got():
            try:
                return got_t.get(timeout=0.5)
            except queue.Empty:
                return None

        # healthy both ways
        assert t_dial("x1") == "B:x1"
        assert b.stdout.readline().strip() == "got x1"
        assert b_dial("y1") == "T:y1" and t_got() == "y1"
        assert net.stats["unknown_dialer"] == 0, net.stats

        # an open connection T->B is closed by the cut
        held = socket.create_connection(("127.0.0.1", b_proxy), timeout=2)
        held.sendall(b"h1\n")
        assert held.recv(100) == b"B:h1\n"
        assert b.stdout.readline().strip() == "got h1"
        net.cut("T", "B")
        assert held.recv(100) == b"", "connection not closed by the cut"
        held.close()
        assert net.stats["closed_on_cut"] >= 1
        # T's new connections to B are refused, nothing reaches B
        assert t_dial("x2") in ("EOF", "RESET")
        assert net.stats["refused"] == 1, net.stats
        # B's connections to T: B's bytes arrive, T's answer is dropped
        assert b_dial("y2") == "TIMEOUT"
        assert t_got() == "y2"
        assert net.stats["dropped"] > 0

        net.heal("T", "B")
        assert t_dial("x3") == "B:x3"
        assert b.stdout.readline().strip() == "got x3"  # x2 never arrived
        assert b_dial("y3") == "T:y3" and t_got() == "y3"

        # the other direction
        net.cut("B", "T")
        assert t_dial("x4") == "TIMEOUT"  # T's bytes reach B, no answer
        assert b.stdout.readline().strip() == "got x4"
        assert b_dial("y4") in ("EOF", "RESET") and t_got() is None

        # both ways
        net.partition([["T"], ["B"]])
        assert net.links() == [("B", "T"), ("T", "B")]
        assert t_dial("x5") in ("EOF", "RESET")
        assert b_dial("y5") in ("EOF", "RESET") and t_got() is None
        net.heal_all()
        assert t_dial("x6") == "B:x6"
        assert b.stdout.readline().strip() == "got x6"
        assert b_dial("y6") == "T:y6" and t_got() == "y6"
    finally:
        net.stop()
        ls.close()
        b.stdin.close()
        b.kill()
        b.wait()


# ---- 1: the isolated leader ---------------------------------------------


def test_partition_isolated_leader_refuses_majority_serves(proxied_cluster):
    c = proxied_cluster(3)
    old = c.leader(timeout=10)
    rest = [s for s in c.members if s is not old]
    write_until_ok(old, "/iso/before", "b", time.monotonic() + 10)
    converge(c.members, "/iso/before")

    c.net.isolate(old)
    # The minority's answers take etcd's request timeout: ask both at once.
    got = {}

    def ask(what, method, path, form=None):
        got[what] = answer(old.client_port, method, path, form=form,
                           timeout=MINORITY_ANSWER_S + 15)

    threads = [threading.Thread(target=ask, args=(
        "write", "PUT", V2(0).url("/iso/minority"), {"value": "m"})),
        threading.Thread(target=ask, args=(
            "qget", "GET", V2(0).url("/iso/before", {"quorum": "true"})))]
    for t in threads:
        t.start()

    # Meanwhile the majority elects a leader among itself and serves.
    new = c.leader(timeout=15, among=rest)
    assert new is not old
    deadline = time.monotonic() + 15
    idx = {}
    for i, s in enumerate(rest * 2):
        idx["/iso/maj%d" % i] = (write_until_ok(s, "/iso/maj%d" % i,
                                                "v%d" % i, deadline),
                                 "v%d" % i)
    for s in rest:
        st, body, _, _ = answer(s.client_port, "GET", V2(0).url(
            "/iso/maj3", {"quorum": "true"}), timeout=5)
        assert st == 200 and body["node"]["value"] == "v3", (s.name, st,
                                                             body)
    # the old leader still answers local reads, with what it had
    st, body, _, _ = answer(old.client_port, "GET", V2(0).url("/iso/maj0"))
    assert st == 404, (st, body)

    for t in threads:
        t.join()
    for what in ("write", "qget"):
        st, body, r, took = got[what]
        print("minority %s: %s %r after %.2fs; headers %r" % (
            what, st, body, took, r and r.headers))
        assert st == 500, (what, st, body, took)
        assert isinstance(body, dict), (what, body)
        assert body.get("errorCode") == 300, (what, body)
        assert body.get("message") == "Raft Internal Error", (what, body)
        assert body.get("cause") in TIMEOUT_CAUSES, (what, body)
        assert body.get("index") == 0, (what, body)
        assert r.header("Content-Type") == "application/json", r.headers
        assert r.header("X-Etcd-Index") == "0", r.headers
        assert took < MINORITY_ANSWER_S + 5, (what, took)
    assert c.net.stats["refused"] > 0, c.net.stats  # the cut was real

    # Heal: the old leader catches up with everything the majority wrote.
    c.net.heal_all()
    for key, (mi, value) in idx.items():
        node = converge(c.members, key, timeout=20)
        assert node["value"] == value and node["modifiedIndex"] == mi, \
            (key, node, mi)
    # the refused write may or may not have been applied, but everywhere
    # the same
    converge(c.members, "/iso/minority", timeout=20)
    c.leader(timeout=20)
    # and it serves quorum reads and writes again
    deadline = time.monotonic() + 20
    mi = write_until_ok(old, "/iso/after", "a", deadline)
    st, body, _, _ = answer(old.client_port, "GET", V2(0).url(
        "/iso/after", {"quorum": "true"}), timeout=10)
    assert st == 200 and body["node"]["modifiedIndex"] == mi, (st, body)


# ---- 2: random cuts, linearizability, acknowledged writes ---------------


class Watcher(threading.Thread):
    """A recursive stream watch on one member (its client port, not through
    any proxy) from a given index, reconnecting where it left off; records
    every event it sees by modifiedIndex."""

    def __init__(self, member, prefix, from_index):
        super().__init__(daemon=True, name="watch-%s" % member.name)
        self.member = member
        self.prefix = prefix
        self.next_index = from_index
        self.events = {}  # modifiedIndex -> (key, action, value)
        self.gaps = []  # (from, error): history cleared, events missed
        self.errors = 0
        self.log = []  # (time, waitIndex asked, what happened) per connection
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            asked = self.next_index
            try:
                how = self._once()
            except (OSError, httpraw.HTTPError, ValueError) as e:
                self.errors += 1
                how = repr(e)[:100]
            self.log.append((round(time.monotonic(), 3), asked, how))
            self.stop_flag.wait(0.1)

    def _once(self):
        url = V2(0).url(self.prefix, {"wait": "true", "recursive": "true",
                                      "stream": "true",
                                      "waitIndex": self.next_index})
        conn = httpraw.Conn(self.member.client_port, timeout=2)
        try:
            conn.send(httpraw.build_request("GET", url))
            head = conn.read_head()
            if head.status != 200:
                body = conn.read_body(head).text
                if '"errorCode":401' in body:
                    self.gaps.append((self.next_index, body))
                    self.next_index = json.loads(body)["index"] + 1
                return "%d %s" % (head.status, body[:100])
            first = None
            conn.settimeout(0.3)
            # Chunked framing, parsed here so a timeout loses nothing. It
            # starts with what read_head() read past the head: a watch from
            # an index in the history sends its first events with the head.
            raw, conn.buf = conn.buf, b""
            data = b""
            while True:
                while True:
                    i = raw.find(b"\r\n")
                    if i < 0:
                        break
                    size = int(raw[:i].split(b";")[0], 16)
                    if size == 0:
                        return "stream ended, first event %s" % first
                    if len(raw) < i + 2 + size + 2:
                        break
                    data += raw[i + 2:i + 2 + size]
                    raw = raw[i + 2 + size + 2:]
                while b"\n" in data:
                    line, data = data.split(b"\n", 1)
                    if line.strip():
                        ev = json.loads(line)
                        if first is None:
                            first = ev["node"]["modifiedIndex"]
                        self._event(ev)
                if self.stop_flag.is_set():
                    break
                try:
                    d = conn.sock.recv(65536)
                except socket.timeout:
                    continue
                if not d:
                    return "closed by the server, first event %s" % first
                raw += d
            return "stopped, first event %s" % first
        finally:
            conn.close()

    def _event(self, ev):
        n = ev["node"]
        mi = n["modifiedIndex"]
        self.events[mi] = (n["key"], ev["action"], n.get("value"))
        self.next_index = max(self.next_index, mi + 1)


def watch_disagreements(watchers):
    """(upto, [(index, [each watcher's event or None])]): where the
    watchers' events differ. Every watcher has seen every event up to upto,
    the lowest index all of them have reached (each asked for its
    next_index, and a stream has no holes): there all must hold the same
    event. Past upto only the watchers holding an event must agree: a write
    whose client gave up may still commit after the final reads (a forward
    queued while its link was cut leaves when the link is back, up to the
    peer backoff later), and reaches the watchers one after the other; one
    that stopped just before has not seen it."""
    upto = min(w.next_index for w in watchers) - 1
    diff = []
    for i in sorted(set().union(*(w.events for w in watchers))):
        evs = [w.events.get(i) for w in watchers]
        held = evs if i <= upto else [e for e in evs if e is not None]
        if any(e != held[0] for e in held):
            diff.append((i, evs))
    return upto, diff


class Client(threading.Thread):
    def __init__(self, name, members, keys, hist, rnd, values, stop,
                 timeout):
        super().__init__(daemon=True, name=name)
        self.members, self.keys, self.hist = members, keys, hist
        self.rnd, self.values, self.stop_flag = rnd, values, stop
        self.timeout = timeout
        self.n = 0

    def run(self):
        while not self.stop_flag.is_set():
            s = self.rnd.choice(self.members)
            key = self.rnd.choice(self.keys)
            kind = self.rnd.choice([WRITE, WRITE, CAS, CAS, READ, READ,
                                    READ])
            self.op(s, key, kind)
            self.stop_flag.wait(self.rnd.uniform(0.02, 0.08))

    def op(self, s, key, kind):
        self.n += 1
        value = "%s-%d" % (self.name, self.n)
        url = V2(0).url(key)
        if kind == WRITE:
            op = self.hist.invoke(self.name, key, WRITE, value=value)
            st, body, _, _ = answer(s.client_port, "PUT", url,
                                    {"value": value}, self.timeout)
        elif kind == CAS:
            seen = self.values.get(key) or ["none"]
            old = self.rnd.choice(seen[-3:])
            op = self.hist.invoke(self.name, key, CAS, old=old, new=value)
            st, body, _, _ = answer(s.client_port, "PUT", url,
                                    {"value": value, "prevValue": old},
                                    self.timeout)
        else:
            op = self.hist.invoke(self.name, key, READ)
            st, body, _, _ = answer(s.client_port, "GET", V2(0).url(
                key, {"quorum": "true"}), timeout=self.timeout)
        meta = {"member": s.name, "status": st}
        if st in (200, 201):
            node = body["node"]
            meta["index"] = node["modifiedIndex"]
            self.values.setdefault(key, []).append(node.get("value"))
            self.hist.ok(op, value=node.get("value"), meta=meta)
        elif kind == READ and st == 404 and body.get("errorCode") == 100:
            self.hist.ok(op, value=None, meta=meta)
        elif kind == CAS and st in (404, 412) and \
                body.get("errorCode") in (100, 101):
            self.hist.fail(op, meta=meta)
        else:
            meta["error"] = str(body)[:200]
            self.hist.unknown(op, meta=meta)


def nemesis_step(net, names, rnd):
    """One random change of the cut links; returns its description."""
    r = rnd.random()
    if r < 0.25:
        net.heal_all()
        return "heal all"
    if r < 0.45:
        a = rnd.choice(names)
        net.heal_all()
        net.isolate(a)
        return "isolate %s" % a
    if r < 0.6:
        a = rnd.choice(names)
        net.partition([[a]])
        return "partition %s | rest" % a
    if r < 0.8:
        a, b = rnd.sample(names, 2)
        net.cut(a, b)
        return "cut %s->%s" % (a, b)
    links = [(a, b) for a in names for b in names if a != b]
    rnd.shuffle(links)
    net.heal_all()
    chosen = links[:rnd.randint(1, 3)]
    for a, b in chosen:
        net.cut(a, b)
    return "heal all, cut %s" % ", ".join("%s->%s" % x for x in chosen)


def run_seed():
    s = os.environ.get("CAIRN_PARTITION_SEED", "1")
    if s == "random":
        return random.SystemRandom().randrange(1 << 32)
    return int(s, 0)


def save_history(hist, seed):
    fd, path = tempfile.mkstemp(prefix="cairn-partition-%d-" % seed,
                                suffix=".json")
    with os.fdopen(fd, "w") as f:
        f.write(hist.to_json())
    return path


def test_partition_watcher_keeps_events_read_with_the_head(make_server,
                                                          monkeypatch):
    """A watch from an index already in the history gets its head and its
    first event at once, often in one read of the socket: the Watcher must
    not lose what it read along with the head (it did: after a reconnection
    with waitIndex=1 a member's watcher reported index 2 first, never 1).
    cairn replays every matching event of the history on a stream; etcd 3.4
    sends only the first one (its watcher hub returns before registering a
    stream watcher whose event was found in the history)."""
    s = make_server("target")
    prefix = "/watcher-head"
    deadline = time.monotonic() + 10
    idx = [write_until_ok(s, prefix + "/k", "v%d" % i, deadline)
           for i in range(3)]
    want = idx if s.kind == "cairn" else idx[:1]
    read_head = httpraw.Conn.read_head

    def read_head_late(conn):
        time.sleep(0.5)  # the head and the history's events have all come
        return read_head(conn)

    monkeypatch.setattr(httpraw.Conn, "read_head", read_head_late)
    w = Watcher(s, prefix, idx[0])
    w.start()
    deadline = time.monotonic() + 5
    while w.next_index <= want[-1] and time.monotonic() < deadline:
        time.sleep(0.05)
    w.stop_flag.set()
    w.join(5)
    assert sorted(w.events) == want, (sorted(w.events), want, w.log)
    assert w.log and w.log[0][1] == idx[0], w.log
    assert "first event %d" % idx[0] in w.log[0][2], w.log


def test_partition_watchers_compared_up_to_what_all_have_seen(make_server):
    """The random run stops its watchers once each has passed the final
    values, and a write whose client gave up may commit just then: some
    watchers have it, the one stopped first does not. That is no
    disagreement (comparing whole records reported it as "one member's
    watch missed one event", the likely cause of the run's rare failures);
    a watcher missing an event that every watcher has gone past is one,
    and so are two different events at one index."""
    s = make_server("target")
    prefix = "/watcher-late"
    deadline = time.monotonic() + 10
    write_until_ok(s, prefix + "/k", "v0", deadline)
    start = s.index() + 1
    early, late = Watcher(s, prefix, start), Watcher(s, prefix, start)
    early.start()
    late.start()
    idx = [write_until_ok(s, prefix + "/k", "v%d" % i, deadline)
           for i in range(1, 4)]

    def wait_for(w, index):
        limit = time.monotonic() + 10
        while w.next_index <= index:
            assert time.monotonic() < limit, (index, w.next_index, w.log)
            time.sleep(0.05)

    wait_for(early, idx[-1])
    wait_for(late, idx[-1])
    early.stop_flag.set()
    early.join(5)
    assert not early.is_alive()
    # committed after the early watcher stopped: only the other one sees it
    last = write_until_ok(s, prefix + "/k", "v4", deadline)
    wait_for(late, last)
    late.stop_flag.set()
    late.join(5)
    assert sorted(early.events) == idx, (sorted(early.events), idx)
    assert sorted(late.events) == idx + [last], sorted(late.events)
    assert watch_disagreements([early, late]) == (idx[-1], [])
    assert watch_disagreements([late, early]) == (idx[-1], [])

    # a hole below what both have reached is a disagreement
    hole = late.events.pop(idx[1])
    upto, diff = watch_disagreements([early, late])
    assert upto == idx[-1] and diff == [(idx[1], [hole, None])], diff
    late.events[idx[1]] = hole
    # so is another event at an index past it that two watchers hold
    other = Watcher(s, prefix, start)
    other.events = dict(late.events)
    other.next_index = late.next_index
    other.events[last] = (prefix + "/k", "set", "not-v4")
    upto, diff = watch_disagreements([early, late, other])
    assert upto == idx[-1] and \
        diff == [(last, [None, late.events[last], other.events[last]])], diff


def test_partition_random_cuts_linearizable(proxied_cluster):
    seed = run_seed()
    seconds = float(os.environ.get("CAIRN_PARTITION_SECONDS", "15"))
    print("partition run: seed %d (CAIRN_PARTITION_SEED=%d), %.0f s" % (
        seed, seed, seconds))
    rnd = random.Random(seed)
    c = proxied_cluster(3)
    c.leader(timeout=10)
    prefix = "/lin"
    keys = ["%s/k%d" % (prefix, i) for i in range(3)]
    start_index = max(s.index() for s in c.members) + 1
    watchers = [Watcher(s, prefix, start_index) for s in c.members]
    for w in watchers:
        w.start()

    hist = History()
    values = {}
    stop = threading.Event()
    clients = [Client("c%d" % i, c.members, keys, hist,
                      random.Random(rnd.getrandbits(64)), values, stop,
                      timeout=1.5) for i in range(5)]
    names = [s.name for s in c.members]
    nem_log = []
    t_end = time.monotonic() + seconds
    for cl in clients:
        cl.start()
    try:
        while time.monotonic() < t_end:
            nem_log.append((time.monotonic(), nemesis_step(c.net, names,
                                                           rnd)))
            time.sleep(rnd.uniform(0.5, 1.5))
    finally:
        c.net.heal_all()
        nem_log.append((time.monotonic(), "heal all (end)"))
        stop.set()
        for cl in clients:
            cl.join(30)

    # Nothing here stops a member: one that is gone exited by itself or
    # was signalled from outside the test.
    gone = [(s.name, s.proc.poll()) for s in c.members if not s.alive()]
    assert not gone, "members exited during the run (name, status): %r" % (
        gone,)
    # After healing: a leader, then final quorum reads of every key on
    # every member, recorded in the history like any read.
    c.leader(timeout=30)
    final_client = Client("final", c.members, keys, hist, rnd, values,
                          stop, timeout=10)
    for key in keys:
        for s in c.members:
            deadline = time.monotonic() + 30
            while True:
                final_client.op(s, key, READ)
                if hist.ops[-1].status == "ok":
                    break
                assert time.monotonic() < deadline, \
                    "%s: no quorum read of %s after healing: %r" % (
                        s.name, key, hist.ops[-1].meta)
                time.sleep(0.2)
    finals = {key: converge(c.members, key, timeout=20) for key in keys}

    ops = [o for o in hist.ops if o.status is not None]
    t0 = min(o.invoke for o in ops)
    summary = ("seed %d: %d ops (%d ok, %d failed CAS, %d unknown), "
               "nemesis: %s" % (
                   seed, len(ops),
                   sum(o.status == "ok" for o in ops),
                   sum(o.status == "fail" for o in ops),
                   sum(o.status == "unknown" for o in ops),
                   "; ".join("%.1f %s" % (t - t0, d) for t, d in nem_log)))
    print(summary)
    print("proxy: %r" % c.net.stats)
    res = check(ops, time_limit=30)
    for k, r in res.keys.items():
        print("  %s: %r" % (k, r))
    if res.ok is not True:
        path = save_history(hist, seed)
        pytest.fail("%s\n%s\nhistory saved in %s (History.from_json)" % (
            summary, res.message, path), pytrace=False)
    assert len([o for o in ops if o.status == "ok" and
                o.kind != READ]) > 20, "too few acknowledged writes: " + \
        summary

    # The checker is not vacuous on this very history: one stale read
    # injected into it must be caught.
    # A placement deep in a long, busy history can exhaust the search
    # budget (no verdict, never a pass): up to three placements are tried;
    # one must be rejected and none accepted.
    rnd = random.Random(seed)
    tried = []
    for _ in range(3):
        bad_ops, bad = inject_stale_read(ops, rnd)
        assert bad is not None, "no pair of acknowledged writes to corrupt"
        bad_res = check(bad_ops, time_limit=20)
        assert bad_res.ok is not True, \
            "injected stale read %r accepted: %s" % (bad, bad_res.message)
        tried.append((bad, bad_res.message))
        if bad_res.ok is False:
            assert "#%d stale" % bad.id in bad_res.message, bad_res.message
            break
    assert bad_res.ok is False, \
        "injected stale reads not judged: %r" % tried

    # Every acknowledged write is in every member's event history, at the
    # index it was acknowledged with, and the members' histories agree.
    top = max(n["modifiedIndex"] for n in finals.values() if n)
    deadline = time.monotonic() + 20
    while any(w.next_index <= top for w in watchers):
        assert time.monotonic() < deadline, \
            "watchers stuck at %r, want > %d" % (
                [(w.member.name, w.next_index) for w in watchers], top)
        time.sleep(0.1)
    for w in watchers:
        w.stop_flag.set()
    for w in watchers:
        w.join(5)
    for w in watchers:
        assert not w.gaps, "%s: events missed (history cleared): %r" % (
            w.member.name, w.gaps[:3])
    upto, diff = watch_disagreements(watchers)
    assert not diff, "the members' watches saw different events (all " \
        "watchers reached index %d; final values at %d or below): %r\n" \
        "watch connections (time, waitIndex, outcome):\n%s" % (
            upto, top, [(i, dict(zip(names, evs))) for i, evs in diff[:5]],
            "\n".join("%s: %r" % (w.member.name, w.log[:20])
                      for w in watchers))
    ref = watchers[0].events
    acked = [o for o in ops if o.status == "ok" and o.kind in (WRITE, CAS)]
    for o in acked:
        mi = o.meta["index"]
        want = (o.key, "set" if o.kind == WRITE else "compareAndSwap",
                o.value if o.kind == WRITE else o.new)
        assert ref.get(mi) == want, \
            "acknowledged %s at index %d, but the members applied %r " \
            "there" % (o.describe(t0), mi, ref.get(mi))
    # reads name the index of the write whose value they return
    for o in ops:
        if o.kind == READ and o.status == "ok" and o.result is not None:
            ev = ref.get(o.meta["index"])
            assert ev and ev[0] == o.key and ev[2] == o.result, \
                "%s reports index %d, which holds %r" % (
                    o.describe(t0), o.meta["index"], ev)
    print("%d acknowledged writes found at their index on all %d members" %
          (len(acked), len(watchers)))
