"""A three-member cluster started with --initial-cluster: membership, one
leader, writes on any member visible on every member, watches across
members, replicated TTL expiry, and surviving the loss of the leader."""

import json
import os
import time

import pytest

from pylib import httpraw
from pylib.cluster import Cluster
from pylib.procs import finish_all, live
from pylib.v2 import V2

def get_json(s, path):
    r = httpraw.request(s.client_port, "GET", path, timeout=5)
    assert r.status == 200, (s.name, path, r)
    return r


def converge(members, key, want_value, timeout=3.0):
    """Until every member answers key with want_value; returns the nodes."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = []
        for s in members:
            r = V2(s.client_port).get(key)
            nodes.append(r.json().get("node") if r.status == 200 else None)
        if all(n and n.get("value") == want_value for n in nodes):
            return nodes
        assert time.monotonic() < deadline, \
            "members disagree on %s: %r" % (key, nodes)
        time.sleep(0.05)


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the tests that leave it whole (keys apart)."""
    c = Cluster(os.environ.get("CAIRN_TEST_TARGET", "cairn"), 3)
    live.extend(c.members)
    try:
        c.start()
    except Exception as e:  # noqa: B902
        finish_all(c.members)
        pytest.fail("could not start a 3-member cluster: %s" % e,
                    pytrace=False)
    yield c
    finish_all(c.members)


def test_cluster_members_listed_everywhere(cluster):
    seen = []
    for s in cluster.members:
        r = get_json(s, "/v2/members")
        ms = sorted(r.json()["members"], key=lambda m: m["name"])
        assert [m["name"] for m in ms] == ["m1", "m2", "m3"], ms
        for m, want in zip(ms, cluster.members):
            assert m["peerURLs"] == [want.peer_url]
            assert m["clientURLs"] == [want.client_url]
        seen.append((json.dumps(ms, sort_keys=True),
                     r.header("X-Etcd-Cluster-Id")))
    assert len(set(seen)) == 1, "members disagree: %r" % seen


def test_cluster_machines(cluster):
    for s in cluster.members:
        text = get_json(s, "/v2/machines").text
        assert sorted(u.strip() for u in text.split(",")) == \
            sorted(m.client_url for m in cluster.members)


def test_cluster_one_leader(cluster):
    leader = cluster.leader()
    ids = set()
    for s in cluster.members:
        st = get_json(s, "/v2/stats/self").json()
        ids.add(st["id"])
        assert st["state"] == ("StateLeader" if s is leader
                               else "StateFollower")
    assert len(ids) == 3
    lead = get_json(leader, "/v2/stats/leader").json()
    assert len(lead["followers"]) == 2
    follower = next(s for s in cluster.members if s is not leader)
    r = httpraw.request(follower.client_port, "GET", "/v2/stats/leader")
    assert r.status == 403


def test_cluster_writes_on_any_member_seen_by_all(cluster):
    for i, s in enumerate(cluster.members):
        r = V2(s.client_port).put("/c/k%d" % i, "from-%s" % s.name)
        assert r.status == 201, r
        mi = r.json()["node"]["modifiedIndex"]
        nodes = converge(cluster.members, "/c/k%d" % i, "from-%s" % s.name)
        assert all(n["modifiedIndex"] == mi for n in nodes)
    # a quorum read on any member sees the last write at once
    r = V2(cluster.members[0].client_port).put("/c/q", "now")
    for s in cluster.members:
        g = V2(s.client_port).get("/c/q", quorum="true")
        assert g.json()["node"]["value"] == "now"


def test_cluster_indexes_agree(cluster):
    a, b, c = cluster.members
    V2(a.client_port).put("/i/x", "1")
    V2(b.client_port).put("/i/x", "2", prevValue="1")
    r = V2(c.client_port).put("/i/x", "3", prevValue="1")
    assert r.status == 412
    nodes = converge(cluster.members, "/i/x", "2")
    assert len({n["modifiedIndex"] for n in nodes}) == 1
    idx = {V2(s.client_port).get("/i/x", quorum="true").header(
        "X-Etcd-Index") for s in cluster.members}
    assert len(idx) == 1, idx


def test_cluster_watch_across_members(cluster):
    a, b, _ = cluster.members
    kv = V2(a.client_port)
    c = httpraw.Conn(a.client_port, timeout=5)
    c.send(httpraw.build_request("GET", kv.url("/w/k", {"wait": "true"})))
    assert c.read_head().status == 200
    V2(b.client_port).put("/w/k", "crossed")
    ev = json.loads(c.read_body(httpraw.Response(200, "", [
        ("Transfer-Encoding", "chunked")], b"")).body)
    assert ev["node"]["value"] == "crossed"
    c.close()


def test_cluster_ttl_expires_once_everywhere(cluster):
    a, b, c = cluster.members
    n = V2(a.client_port).put("/t/k", "v", ttl=1).json()["node"]
    evs = []
    for s in cluster.members:
        r = V2(s.client_port).get("/t/k", wait="true",
                                  waitIndex=n["modifiedIndex"] + 1,
                                  timeout=6)
        evs.append(r.json())
    assert all(e["action"] == "expire" for e in evs), evs
    assert len({e["node"]["modifiedIndex"] for e in evs}) == 1, evs


def test_cluster_survives_leader_loss(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.leader()
    rest = [s for s in cluster.members if s is not leader]
    V2(rest[0].client_port).put("/f/before", "1")
    converge(cluster.members, "/f/before", "1")
    leader.stop()
    new = cluster.leader(timeout=10, among=rest)
    assert new is not leader
    deadline = time.monotonic() + 10
    while True:
        r = V2(rest[1].client_port).put("/f/after", "2")
        if r.status in (200, 201):
            break
        assert time.monotonic() < deadline, r
        time.sleep(0.2)
    converge(rest, "/f/after", "2")
    # the old leader comes back and catches up
    cluster.spawn(leader)
    leader.wait_ready(20)
    converge(cluster.members, "/f/after", "2", timeout=10)
