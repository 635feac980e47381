"""cairn as a discovery service for real etcd 3.4 clusters.

GET /new?size=N on cairn creates a token in cairn's own store and answers
with its URL; three real etcd processes started with `--discovery <url>`
then form one cluster through it, which shows that cairn speaks etcd's
discovery protocol (size key, registration with prevExist=false, the
recursive watch with waitIndex). A fourth etcd finds the cluster full.
Every process is started on 127.0.0.1 with free ports and temp dirs and
stopped by its own pid.
"""

import hashlib
import struct
import time

import pytest

from pylib import httpraw
from pylib.cluster import ETCD_BIN, Server, free_ports


@pytest.fixture
def cairn(make_server):
    return make_server("cairn")


def new_token(cairn, query=""):
    r = httpraw.request(cairn.client_port, "GET", "/new" + query)
    return r


def test_new_answers_a_token_url_and_stores_the_size(cairn):
    r = new_token(cairn, "?size=5")
    assert r.status == 200, r.body
    assert r.header("Content-Type").startswith("text/plain")
    url = r.body.decode().strip()
    prefix = cairn.client_url + "/v2/keys/_etcd/registry/"
    assert url.startswith(prefix), url
    token = url[len(prefix):]
    assert len(token) == 32 and all(c in "0123456789abcdef" for c in token)
    g = httpraw.request(cairn.client_port, "GET",
                        "/v2/keys/_etcd/registry/%s/_config/size" % token)
    assert g.status == 200
    assert g.json()["node"]["value"] == "5"
    # default size 3, and a fresh token each time
    r2 = new_token(cairn)
    url2 = r2.body.decode().strip()
    assert url2 != url
    g = httpraw.request(cairn.client_port, "GET",
                        url2[len(cairn.client_url):] + "/_config/size")
    assert g.json()["node"]["value"] == "3"


@pytest.mark.parametrize("query", ["?size=0", "?size=abc", "?size=-1",
                                   "?size=", "?size=100000"])
def test_new_invalid_size_is_400(cairn, query):
    r = new_token(cairn, query)
    assert r.status == 400, (query, r.status, r.body)
    assert b"size" in r.body


def test_new_other_method_is_405(cairn):
    r = httpraw.request(cairn.client_port, "POST", "/new")
    assert r.status == 405


class Etcd(Server):
    """An etcd member bootstrapped through a discovery URL."""

    def __init__(self, name, discovery):
        super().__init__("etcd", ETCD_BIN, name=name)
        self.discovery = discovery
        self.client_port, self.peer_port = free_ports(2)

    def args(self):
        return [self.binary, "--enable-v2",
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.client_url,
                "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--discovery", self.discovery,
                "--discovery-fallback", "exit"]


def etcd_member_id(peer_url, token):
    d = hashlib.sha1((peer_url + token).encode()).digest()
    return "%x" % struct.unpack(">Q", d[:8])[0]


def members(port):
    r = httpraw.request(port, "GET", "/v2/members", timeout=2.0)
    assert r.status == 200
    return sorted((m["name"], tuple(m["peerURLs"]))
                  for m in r.json()["members"])


def test_three_etcd_members_bootstrap_through_cairn(cairn):
    url = new_token(cairn, "?size=3").body.decode().strip()
    etcds = [Etcd("e%d" % i, url) for i in range(3)]
    try:
        for e in etcds:
            e.spawn()
        deadline = time.monotonic() + 60
        for e in etcds:
            e.wait_ready(max(1.0, deadline - time.monotonic()))
        want = sorted((e.name, (e.peer_url,)) for e in etcds)
        for e in etcds:
            assert members(e.client_port) == want
        ids = {httpraw.request(e.client_port, "GET", "/v2/keys/")
               .header("X-Etcd-Cluster-Id") for e in etcds}
        assert len(ids) == 1
        # a write on one member is read on another: one cluster
        w = httpraw.request(etcds[0].client_port, "PUT", "/v2/keys/hello",
                            form={"value": "world"})
        assert w.status == 201
        r = httpraw.request(etcds[2].client_port, "GET",
                            "/v2/keys/hello?quorum=true")
        assert r.json()["node"]["value"] == "world"
        # the registrations live in cairn's store
        reg = httpraw.request(cairn.client_port, "GET",
                              url[len(cairn.client_url):])
        keys = [n["key"] for n in reg.json()["node"]["nodes"]]
        assert len(keys) == 3  # three members (_config is hidden)
        vals = sorted(n["value"] for n in reg.json()["node"]["nodes"])
        assert vals == sorted("%s=%s" % (e.name, e.peer_url) for e in etcds)
        # etcd registers under the member ID whose token is the discovery
        # URL (what cairn's server_member_id_compute gives for it)
        want_ids = sorted(etcd_member_id(e.peer_url, url) for e in etcds)
        assert sorted(k.rsplit("/", 1)[1] for k in keys) == want_ids
        # a fourth member: "cluster is full", exits (fallback exit)
        late = Etcd("e3", url)
        try:
            late.spawn()
            late.proc.wait(30)
            assert late.proc.returncode != 0
            assert "cluster is full" in late.log_text()
        finally:
            late.cleanup()
    finally:
        for e in etcds:
            e.cleanup()
