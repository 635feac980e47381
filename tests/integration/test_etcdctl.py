"""etcd's own v2 command-line client (ETCDCTL_API=2 /usr/bin/etcdctl)
against the server: the outputs and exit statuses users see."""

import os
import re
import subprocess

import pytest

from pylib.cluster import ETCDCTL_BIN


@pytest.fixture(scope="module")
def ctl(server):
    def run(*args):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ETCDCTL_")}
        env["ETCDCTL_API"] = "2"
        p = subprocess.run([ETCDCTL_BIN, "--endpoints", server.client_url] +
                           list(args), capture_output=True, text=True,
                           env=env, timeout=20)
        return p.returncode, p.stdout, p.stderr
    return run


def test_etcdctl_set_get_rm(ctl, ns):
    assert ctl("set", ns + "/message", "Hello") == (0, "Hello\n", "")
    assert ctl("get", ns + "/message") == (0, "Hello\n", "")
    assert ctl("rm", ns + "/message") == (0, "PrevNode.Value: Hello\n", "")


def test_etcdctl_missing_key_error(ctl, ns, kv):
    rc, out, err = ctl("get", ns + "/foo")
    assert rc == 4
    assert out == ""
    m = re.fullmatch(r"Error:  100: Key not found \((.*)\) \[(\d+)\]\n", err)
    assert m, err
    assert m.group(1) == ns  # the first missing path element
    assert int(m.group(2)) == kv.index()


def test_etcdctl_errors(ctl, ns):
    ctl("set", ns + "/d/a", "1")
    rc, out, err = ctl("mk", ns + "/d/a", "2")
    assert rc == 4
    assert re.fullmatch(r"Error:  105: Key already exists \(%s/d/a\) \[\d+\]\n"
                        % re.escape(ns), err), err
    rc, out, err = ctl("set", "--swap-with-value", "zz", ns + "/d/a", "4")
    assert rc == 4
    assert "Error:  101: Compare failed ([zz != 1])" in err
    rc, out, err = ctl("rmdir", ns + "/d")
    assert rc == 4
    assert "Error:  108: Directory not empty (%s/d)" % ns in err


def test_etcdctl_dirs_and_ls(ctl, ns):
    assert ctl("mkdir", ns + "/d")[0] == 0
    assert ctl("set", ns + "/d/a", "1")[0] == 0
    assert ctl("mkdir", ns + "/d/sub")[0] == 0
    rc, out, err = ctl("ls", "-p", "--sort", ns + "/d")
    assert (rc, out) == (0, "%s/d/a\n%s/d/sub/\n" % (ns, ns))
    rc, out, err = ctl("ls", "--recursive", "--sort", ns)
    assert out.split() == [ns + "/d", ns + "/d/a", ns + "/d/sub"]
    assert ctl("update", ns + "/d/a", "3") == (0, "3\n", "")
    assert ctl("rm", "-r", ns + "/d")[0] == 0
    assert ctl("get", ns + "/d/a")[0] == 4


def test_etcdctl_output_formats(ctl, ns):
    ctl("set", ns + "/a", "1")
    rc, out, err = ctl("-o", "extended", "get", ns + "/a")
    assert rc == 0
    assert re.fullmatch(r"Key: %s/a\nCreated-Index: \d+\nModified-Index: \d+\n"
                        r"TTL: 0\nIndex: \d+\n\n1\n" % re.escape(ns), out), out
    rc, out, err = ctl("-o", "json", "get", ns + "/a")
    assert rc == 0
    assert '"key":"%s/a","value":"1"' % ns in out


def test_etcdctl_ttl_and_cas(ctl, ns):
    assert ctl("set", "--ttl", "100", ns + "/t", "v") == (0, "v\n", "")
    rc, out, err = ctl("-o", "extended", "get", ns + "/t")
    assert re.search(r"TTL: (99|100)\n", out), out
    assert ctl("set", "--swap-with-value", "v", ns + "/t", "w") == \
        (0, "w\n", "")


def test_etcdctl_member_list_and_health(ctl, server):
    rc, out, err = ctl("member", "list")
    assert rc == 0
    assert re.fullmatch(r"[0-9a-f]+: name=%s peerURLs=%s clientURLs=%s "
                        r"isLeader=true\n" % (server.name, server.peer_url,
                                              server.client_url), out), out
    rc, out, err = ctl("cluster-health")
    assert rc == 0
    assert out.endswith("cluster is healthy\n"), out
