"""cairnctl backup: a stopped member's newest snapshot and durable log copied
into a new data dir, from which a new single-node cairn serves the same keys
at the same indexes (etcdctl v2 backup). Runs against cairn only: the copy is
of cairn's own on-disk format."""
import json
import os
import urllib.request

import pytest

from clihelp import run
from pylib.cluster import Server

pytestmark = pytest.mark.skipif(
    os.environ.get("CAIRN_TEST_TARGET", "cairn") == "etcd",
    reason="backup copies cairn's own data dir format; nothing to compare "
    "with etcd")


def get(server, key):
    with urllib.request.urlopen(server.client_url + "/v2/keys" + key,
                                timeout=5) as r:
        return json.loads(r.read())


def put(server, key, value):
    req = urllib.request.Request(server.client_url + "/v2/keys" + key,
                                 data=("value=" + value).encode(),
                                 method="PUT")
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read())


@pytest.fixture
def servers():
    made = []
    yield made
    for s in made:
        s.stop()
        s.cleanup()


def test_backup_restores_keys_and_indexes(servers, tmp_path):
    src = Server.cairn(extra_args=["--snapshot-count", "5"])
    servers.append(src)
    src.start()
    written = {}
    for i in range(12):  # past --snapshot-count: a snapshot plus log
        written["/k%d" % i] = put(src, "/k%d" % i, "v%d" % i)["node"]
    # A running member's data dir is locked: refused, nothing copied.
    backup = str(tmp_path / "backup")
    rc, out, err = run("cairnctl", ["backup", "--data-dir", src.data_dir,
                                    "--backup-dir", backup], None)
    assert rc != 0 and "in use" in err, err
    assert not os.path.exists(os.path.join(backup, "member", "wal"))
    src.stop()

    rc, out, err = run("cairnctl", ["backup", "--data-dir", src.data_dir,
                                    "--backup-dir", backup], None)
    assert rc == 0, err
    assert "last index" in err

    dst = Server.cairn(data_dir=backup)
    servers.append(dst)
    dst.start()
    for key, node in written.items():
        got = get(dst, key)["node"]
        assert got["value"] == node["value"]
        assert got["modifiedIndex"] == node["modifiedIndex"]
    # The copy is a live member of its own: it takes new writes after them.
    last = max(n["modifiedIndex"] for n in written.values())
    assert put(dst, "/after", "x")["node"]["modifiedIndex"] == last + 1


def test_backup_needs_both_dirs():
    rc, out, err = run("cairnctl", ["backup", "--data-dir", "/nonexistent"],
                       None)
    assert rc != 0 and "--backup-dir" in err
