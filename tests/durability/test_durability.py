"""Process-level durability tests of cairn (issue 4): real processes, real
disks, kill -9, damaged files, a full disk.

Run: CAIRN_BIN=build/cairn /usr/bin/python3 -m pytest -q tests/durability
(make check-durability). The disk-full test mounts a small tmpfs and needs
root; without root it is skipped with that reason.
"""

import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

from dur import Client, Node, Writers, dump, wait_for
import walfile


@pytest.fixture
def nodes():
    """Factory of cairn nodes; every process is stopped by its pid and every
    temp dir removed at teardown."""
    made = []

    def make(start=True, extra_args=None, data_dir=None):
        n = Node.cairn(extra_args=extra_args, data_dir=data_dir)
        made.append(n)
        if start:
            n.start()
        return n

    yield make
    reports = []
    for n in made:
        n.stop()
        if n.sanitizer_report():
            reports.append(n.sanitizer_report())
        n.cleanup()
    assert not reports, "sanitizer report:\n%s" % reports[0]


def metrics(port):
    c = Client(port)
    r = c.req("GET", "/metrics")
    c.close()
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#") and "{" not in line:
            k, v = line.split()
            out[k] = float(v)
    return out


def check_all_present(port, prefix, acked):
    got, r = dump(port, prefix)
    missing = [a for a in acked if a[0] not in got]
    assert not missing, "%d acknowledged writes lost, e.g. %r" % (
        len(missing), missing[:5])
    wrong = [(a, got[a[0]]) for a in acked if got[a[0]] != (a[1], a[2])]
    assert not wrong, "acknowledged writes changed: %r" % wrong[:5]
    return got, r


def test_kill9_under_concurrent_load_keeps_acknowledged_writes(nodes):
    # A small snapshot count makes snapshots (and purges) happen under load
    # and between kills, so restarts go through snapshot + replay too.
    n = nodes(extra_args=["--snapshot-count", "400", "--max-snapshots", "2"])
    rng = random.Random(4)
    all_acked = []
    for rnd in range(6):
        w = Writers(n.client_port, "/load", 32, "r%d" % rnd)
        w.start()
        assert wait_for(lambda: len(w.acked) >= 150, timeout=30), \
            "no write load: %r" % (w.errors[:3],)
        time.sleep(rng.uniform(0.0, 0.3))
        if rnd == 0:
            # Group commit: writes arriving during an fsync share the next
            # (a loose bound: the Python clients limit the concurrency;
            # tests/unit/server checks the batching exactly).
            m = metrics(n.client_port)
            assert m["cairn_wal_entries_total"] >= \
                1.2 * m["cairn_wal_fsyncs_total"], m
        n.kill9()  # with 32 connections mid-write
        w.join()
        assert not w.errors, w.errors[:3]
        # Store indexes follow the log: in raft index order, the store
        # indexes of acknowledged writes increase too (only successful
        # writes here; Raft's own entries take raft indexes only).
        by_raft = sorted(w.acked, key=lambda a: a[3])
        assert all(x[2] < y[2] for x, y in zip(by_raft, by_raft[1:]))
        assert all(a[3] >= a[2] for a in w.acked)
        all_acked += w.acked
        n.start()
        got, r = check_all_present(n.client_port, "/load", all_acked)
        top = max(a[2] for a in all_acked)
        assert int(r.header("X-Etcd-Index")) >= top
        assert int(r.header("X-Raft-Index")) >= top
        # Indexes continue after the restart.
        c = Client(n.client_port)
        p = c.put("/probe/%d" % rnd, "x")
        c.close()
        assert p.status == 201
        assert p.json()["node"]["modifiedIndex"] == \
            int(r.header("X-Etcd-Index")) + 1
    log = n.log_text()
    assert "saved snapshot at index" in log
    # --max-snapshots 2, plus at most one saved just before a kill whose
    # marker never became durable (removed at the next start).
    assert len([f for f in os.listdir(n.snap_dir)
                if f.endswith(".snap")]) <= 3


def write_keys(port, prefix, count):
    c = Client(port)
    out = []
    for i in range(count):
        r = c.put("%s/k%d" % (prefix, i), "v%d" % i)
        assert r.status == 201, r.body
        out.append(("%s/k%d" % (prefix, i), "v%d" % i,
                    r.json()["node"]["modifiedIndex"],
                    int(r.header("X-Raft-Index"))))
    c.close()
    return out


@pytest.mark.parametrize("damage", ["garble", "truncate"])
def test_torn_tail_is_cut_and_logged(nodes, damage):
    n = nodes()
    acked = write_keys(n.client_port, "/t", 20)
    assert n.stop() == 0
    seg = walfile.segments(n.wal_dir)[-1]
    last = walfile.records(seg)[-1]
    assert last.type == walfile.TYPE_ENTRY and last.index == acked[-1][3]
    if damage == "garble":
        walfile.flip(seg, last.off + walfile.HEADER + 8, 4)
    else:
        os.truncate(seg, last.off + last.frame // 2)
    mark = len(n.log_text())
    n.start()
    log = n.log_since(mark)
    assert "torn" in log and os.path.basename(seg) in log, log
    assert "byte %d" % last.off in log, log
    # Everything before the torn record is there, the torn one is not.
    check_all_present(n.client_port, "/t", acked[:-1])
    got, r = dump(n.client_port, "/t")
    assert acked[-1][0] not in got
    c = Client(n.client_port)
    p = c.put("/t/after", "x")
    assert p.json()["node"]["modifiedIndex"] == acked[-1][2]
    c.close()
    # The repair is durable: the next start finds nothing to cut.
    assert n.stop() == 0
    mark = len(n.log_text())
    n.start()
    assert "torn" not in n.log_since(mark)
    check_all_present(n.client_port, "/t", acked[:-1])


def test_damage_in_the_middle_of_the_log_is_refused(nodes):
    n = nodes()
    write_keys(n.client_port, "/m", 20)  # one batch (and fsync) per write
    assert n.stop() == 0
    seg = walfile.segments(n.wal_dir)[-1]
    ents = [r for r in walfile.records(seg) if r.type == walfile.TYPE_ENTRY]
    victim = ents[5]
    walfile.flip(seg, victim.off + walfile.HEADER + 12, 2)
    for _ in range(2):  # refused every time: nothing is silently repaired
        rc, out = n.run_to_exit()
        assert rc not in (0, None), out
        assert os.path.basename(seg) in out, out
        assert str(victim.off) in out, out
        assert "backup" in out, out  # says how to recover
    assert walfile.records(seg)[-1].index == ents[-1].index


def test_damage_in_an_older_segment_is_refused(nodes):
    n = nodes()
    big = "b" * (1 << 20)
    c = Client(n.client_port)
    i = 0
    while len(walfile.segments(n.wal_dir)) < 2:
        assert c.put("/big/%d" % i, big).status == 201
        i += 1
        assert i < 200, "no second segment after %d MiB" % i
    c.close()
    assert n.stop() == 0
    first = walfile.segments(n.wal_dir)[0]
    ents = [r for r in walfile.records(first)
            if r.type == walfile.TYPE_ENTRY]
    victim = ents[len(ents) // 2]
    walfile.flip(first, victim.off + 4, 1)  # its length field
    rc, out = n.run_to_exit()
    assert rc not in (0, None), out
    assert os.path.basename(first) in out, out
    assert str(victim.off) in out, out


def test_second_cairn_on_the_same_data_dir_is_refused(nodes):
    a = nodes()
    b = nodes(start=False, data_dir=a.data_dir)
    rc, out = b.run_to_exit()
    assert rc not in (0, None)
    assert "in use by another cairn process" in out, out
    c = Client(a.client_port)
    assert c.put("/still", "mine").status == 201  # a is unharmed
    c.close()
    assert a.stop() == 0
    b.start()  # free once a is gone
    got, _ = dump(b.client_port, "/still")
    assert got == {"/still": ("mine", got["/still"][1])}


def test_snapshots_are_taken_purged_and_restored(nodes):
    n = nodes(extra_args=["--snapshot-count", "50", "--max-snapshots", "2"])
    c = Client(n.client_port)
    r = c.req("PUT", "/v2/keys/ttl/long?ttl=1000", {"value": "L"})
    assert r.status == 201
    long_node = r.json()["node"]
    assert c.req("PUT", "/v2/keys/ttl/short?ttl=1",
                 {"value": "S"}).status == 201
    c.close()
    w = Writers(n.client_port, "/s", 8, "w")
    w.start()
    assert wait_for(lambda: len(w.acked) >= 260, timeout=60)
    w.join()
    assert not w.errors
    # The short TTL runs out through a logged SYNC before the restart.
    assert wait_for(lambda: Client(n.client_port).get("/ttl/short").status
                    == 404, timeout=5)
    before, rb = dump(n.client_port, "/")
    index_before = int(rb.header("X-Etcd-Index"))
    assert wait_for(lambda: "purged 1 snapshots" in n.log_text(), 10), \
        n.log_tail()
    snaps = sorted(f for f in os.listdir(n.snap_dir) if f.endswith(".snap"))
    assert len(snaps) == 2, snaps
    assert n.stop() == 0
    mark = len(n.log_text())
    n.start()
    log = n.log_since(mark)
    newest = int(snaps[-1].split("-")[1].split(".")[0], 16)
    assert "snapshot_index=%d " % newest in log, log
    after, ra = dump(n.client_port, "/")
    assert after == before
    assert int(ra.header("X-Etcd-Index")) == index_before
    check_all_present(n.client_port, "/s", w.acked)
    c = Client(n.client_port)
    r = c.get("/ttl/long")
    assert r.json()["node"]["expiration"] == long_node["expiration"]
    assert c.get("/ttl/short").status == 404
    # Watch history came back with the snapshot: an old event is there.
    k, v, idx, _ = w.acked[-1]
    r = c.req("GET", "/v2/keys/s?wait=true&recursive=true&waitIndex=%d" % idx)
    assert r.status == 200
    assert r.json()["node"]["modifiedIndex"] == idx
    c.close()


@pytest.fixture
def small_disk():
    """A 72 MiB tmpfs: room for the first 64 MiB log segment, not for a
    second one."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs for the disk-full test")
    d = tempfile.mkdtemp(prefix="cairn-full-")
    subprocess.check_call(["mount", "-t", "tmpfs", "-o", "size=72m",
                           "tmpfs", d])
    try:
        yield d
    finally:
        subprocess.call(["umount", "-l", d])
        shutil.rmtree(d, ignore_errors=True)


def test_disk_full_refuses_writes_with_503_and_recovers(nodes, small_disk):
    n = nodes(data_dir=os.path.join(small_disk, "data"))
    big = "f" * (1 << 20)
    acked, refused, odd = [], [], []
    lock = threading.Lock()

    def writer(t):
        c = Client(n.client_port)
        for i in range(200):
            r = c.put("/full/%d-%d" % (t, i), big)
            with lock:
                if r.status == 201:
                    acked.append(("/full/%d-%d" % (t, i), big,
                                  r.json()["node"]["modifiedIndex"]))
                    continue
                if r.status == 503:
                    refused.append(r)
                else:
                    odd.append((r.status, r.body[:200]))
                break
        c.close()

    # Four writers at once: the batch that hits ENOSPC fails every write
    # it carries, and every writer gets a 503.
    ts = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not odd, odd
    assert len(refused) == 4, "the disk never filled up"
    assert len(acked) > 10
    for r in refused:
        e = r.json()
        assert e["errorCode"] == 300 and e["message"] == "Raft Internal Error"
        assert "no space left on device" in e["cause"], e
    # Sticky: later writes are refused at once, reads go on.
    c = Client(n.client_port)
    r = c.put("/small", "x")
    assert r.status == 503 and r.json()["errorCode"] == 300
    r = c.get(acked[0][0])
    assert r.status == 200 and r.json()["node"]["value"] == big
    h = c.req("GET", "/health")
    assert h.status == 503 and b"false" in h.body
    c.close()
    log = n.log_text()
    assert log.count("write-ahead log failed") == 1, log
    assert n.stop() == 0
    # Space freed (a bigger mount): everything acknowledged is there.
    subprocess.check_call(["mount", "-o", "remount,size=256m", small_disk])
    n.start()
    check_all_present(n.client_port, "/full", acked)
    c = Client(n.client_port)
    r = c.put("/small", "x")
    assert r.status == 201
    assert r.json()["node"]["modifiedIndex"] > max(a[2] for a in acked)
    c.close()
