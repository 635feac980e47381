"""Backup (etcdctl v2 `backup` semantics) through wal_backup(), driven by
the test-only $(B)/tests/durability/cairn-backup-test (the call cairnctl
backup makes): a stopped member's data dir is copied, a new single-node
cairn starts from the copy with every key, index and TTL, under a new
cluster id; a running member's dir is refused; the source is unchanged.
"""

import os
import re
import subprocess

import pytest

from dur import Client, Node, dump, wait_for


def backup_bin():
    b = os.environ.get("CAIRN_BACKUP_BIN")
    if not b:
        cairn = os.environ.get("CAIRN_BIN", "build/cairn")
        b = os.path.join(os.path.dirname(cairn), "tests", "durability",
                         "cairn-backup-test")
    if not os.path.isabs(b):
        b = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), b)
    if not os.path.exists(b):
        pytest.fail("backup driver not built: %s (make check-durability)" % b)
    return b


def run_backup(data_dir, backup_dir):
    p = subprocess.run([backup_bin(), "--data-dir", data_dir,
                        "--backup-dir", backup_dir],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tree_files(d):
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, d)] = fh.read()
    return out


def test_backup_of_a_stopped_member_starts_a_new_single_node_cluster(tmp_path):
    src = Node.cairn(extra_args=["--snapshot-count", "30"])
    new = None
    try:
        src.start()
        c = Client(src.client_port)
        for i in range(75):  # two snapshots (every 30 entries), log after them
            assert c.put("/b/k%d" % i, "v%d" % i).status == 201
        r = c.req("PUT", "/v2/keys/b/ttl?ttl=3600", {"value": "t"})
        ttl_node = r.json()["node"]
        assert c.req("DELETE", "/v2/keys/b/k3").status == 200
        c.close()
        assert wait_for(lambda: len(re.findall(
            r"saved snapshot at index (\d+)", src.log_text())) >= 2, 10)
        snap_at = re.findall(r"saved snapshot at index (\d+)",
                             src.log_text())[-1]
        before, rb = dump(src.client_port, "/")
        cluster_before = rb.header("X-Etcd-Cluster-Id")

        # A running member: refused, nothing written.
        bdir = str(tmp_path / "backup")
        rc, out, err = run_backup(src.data_dir, bdir)
        assert rc == 1 and "in use" in err, (rc, out, err)
        assert not os.path.exists(os.path.join(bdir, "member"))

        assert src.stop() == 0
        files_before = tree_files(src.data_dir)
        rc, out, err = run_backup(src.data_dir, bdir)
        assert rc == 0, err
        assert "snapshot_index=%s " % snap_at in out, out
        assert tree_files(src.data_dir) == files_before  # source untouched
        # The backup dir is a data dir: once is enough.
        rc2, _, err2 = run_backup(src.data_dir, bdir)
        assert rc2 == 1 and "already holds" in err2, err2

        new = Node.cairn(name="restored", data_dir=bdir)
        new.start()
        after, ra = dump(new.client_port, "/")
        assert after == before
        assert ra.header("X-Etcd-Index") == rb.header("X-Etcd-Index")
        assert ra.header("X-Etcd-Cluster-Id") != cluster_before
        c = Client(new.client_port)
        r = c.get("/b/ttl")
        assert r.json()["node"]["expiration"] == ttl_node["expiration"]
        w = c.put("/b/new", "x")
        assert w.status == 201
        assert w.json()["node"]["modifiedIndex"] == \
            int(ra.header("X-Etcd-Index")) + 1
        c.close()
        # The original starts again, unchanged by the backup.
        src.start()
        again, _ = dump(src.client_port, "/")
        assert again == before
    finally:
        reports = []
        for n in (src, new):
            if n is not None:
                n.stop()
                reports.append(n.sanitizer_report())
                n.cleanup()
    assert not any(reports), reports
