"""The v2 API through python-etcd (Debian python3-etcd), the client the
etcd v2 ecosystem used: write, read, delete, directories, TTL, CAS, watch,
in-order keys, members and stats."""

import threading
import time

import etcd
import pytest


@pytest.fixture(scope="module")
def client(server):
    return etcd.Client(host="127.0.0.1", port=server.client_port,
                       read_timeout=10)


def test_pyetcd_write_read(client, ns):
    r = client.write(ns + "/a", "hello")
    assert r.value == "hello"
    assert r.action == "set"
    assert r.newKey is True
    got = client.read(ns + "/a")
    assert got.value == "hello"
    assert got.modifiedIndex == r.modifiedIndex
    assert client.get(ns + "/a").value == "hello"
    assert client.set(ns + "/a", "again").value == "again"


def test_pyetcd_missing_key(client, ns):
    with pytest.raises(etcd.EtcdKeyNotFound) as e:
        client.read(ns + "/missing")
    assert e.value.payload["errorCode"] == 100


def test_pyetcd_delete(client, ns):
    client.write(ns + "/a", "1")
    r = client.delete(ns + "/a")
    assert r.action == "delete"
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read(ns + "/a")


def test_pyetcd_directories(client, ns):
    client.write(ns + "/d", None, dir=True)
    client.write(ns + "/d/x", "1")
    client.write(ns + "/d/y/z", "2")
    r = client.read(ns + "/d", recursive=True, sorted=True)
    assert r.dir
    leaves = sorted((c.key, c.value) for c in r.leaves)
    assert leaves == [(ns + "/d/x", "1"), (ns + "/d/y/z", "2")]
    with pytest.raises(etcd.EtcdNotFile):
        client.write(ns + "/d", "v")
    with pytest.raises(etcd.EtcdDirNotEmpty):
        client.delete(ns + "/d", dir=True)
    client.delete(ns + "/d", recursive=True)
    with pytest.raises(etcd.EtcdKeyNotFound):
        client.read(ns + "/d")


def test_pyetcd_not_a_directory(client, ns):
    client.write(ns + "/f", "1")
    with pytest.raises(etcd.EtcdNotDir):
        client.write(ns + "/f/g", "2")


def test_pyetcd_ttl(client, ns):
    r = client.write(ns + "/t", "v", ttl=100)
    assert r.ttl in (99, 100)
    assert r.expiration is not None
    client.write(ns + "/short", "v", ttl=1)
    deadline = time.monotonic() + 4
    while True:
        try:
            client.read(ns + "/short")
        except etcd.EtcdKeyNotFound:
            break
        assert time.monotonic() < deadline, "ttl=1 key never expired"
        time.sleep(0.2)


def test_pyetcd_refresh(client, ns):
    client.write(ns + "/r", "v", ttl=100)
    r = client.refresh(ns + "/r", ttl=300)
    assert r.value == "v"
    assert r.ttl in (299, 300)


def test_pyetcd_cas(client, ns):
    r = client.write(ns + "/c", "1")
    r2 = client.test_and_set(ns + "/c", "2", "1")
    assert r2.value == "2"
    with pytest.raises(ValueError):  # python-etcd maps 101 to ValueError
        client.test_and_set(ns + "/c", "3", "1")
    with pytest.raises(ValueError):
        client.write(ns + "/c", "3", prevIndex=r.modifiedIndex)
    r3 = client.write(ns + "/c", "3", prevIndex=r2.modifiedIndex)
    assert r3.value == "3"
    with pytest.raises(etcd.EtcdAlreadyExist):
        client.write(ns + "/c", "4", prevExist=False)
    r4 = client.update(r3)
    assert r4.value == "3"


def test_pyetcd_compare_and_delete(client, ns):
    client.write(ns + "/c", "1")
    with pytest.raises(ValueError):
        client.delete(ns + "/c", prevValue="2")
    r = client.delete(ns + "/c", prevValue="1")
    assert r.action == "compareAndDelete"


def test_pyetcd_watch_index(client, ns):
    r = client.write(ns + "/w", "1")
    client.write(ns + "/w", "2")
    ev = client.watch(ns + "/w", index=r.modifiedIndex, timeout=5)
    assert ev.value == "1"


def test_pyetcd_watch_waits(client, ns):
    got = {}

    def watcher():
        got["ev"] = client.watch(ns + "/w", timeout=10)

    t = threading.Thread(target=watcher)
    t.start()
    time.sleep(0.3)
    client.write(ns + "/w", "woken")
    t.join(10)
    assert not t.is_alive()
    assert got["ev"].value == "woken"


def test_pyetcd_recursive_watch(client, ns):
    got = {}

    def watcher():
        got["ev"] = client.read(ns + "/dir", wait=True, recursive=True,
                                timeout=10)

    t = threading.Thread(target=watcher)
    t.start()
    time.sleep(0.3)
    client.write(ns + "/dir/child", "c")
    t.join(10)
    assert got["ev"].key == ns + "/dir/child"


def test_pyetcd_in_order_keys(client, ns):
    a = client.write(ns + "/q", "first", append=True)
    b = client.write(ns + "/q", "second", append=True)
    assert a.key < b.key
    r = client.read(ns + "/q", sorted=True)
    assert [c.value for c in r.children] == ["first", "second"]
    assert client.pop(a.key).value == "first"


def test_pyetcd_cluster_info(client, server):
    assert client.machines == [server.client_url]
    members = client.members
    assert len(members) == 1
    (m,) = members.values()
    assert m["name"] == server.name
    assert client.leader["name"] == server.name
    assert client.version
    assert client.cluster_version == "3.4.0"
    assert "getsSuccess" in client.store_stats
