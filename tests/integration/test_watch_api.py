"""Watches through raw HTTP: waitIndex in history, waiting watches,
recursive, hidden keys, stream=true, error 401 once history is cleared."""

import json
import socket

import pytest

from pylib import httpraw


def open_watch(kv, key, **params):
    """Send a watch and read its head (sent when the watch starts)."""
    params.setdefault("wait", "true")
    c = httpraw.Conn(kv.port, timeout=5)
    c.send(httpraw.build_request("GET", kv.url(key, params)))
    head = c.read_head()
    return c, head


def event(c, head):
    c.read_body(head)
    return json.loads(head.body)


def no_event(c, wait=0.4):
    c.settimeout(wait)
    try:
        data = c.read_chunk()
    except (socket.timeout, TimeoutError):
        return True
    return "got %r" % data


def test_watch_waitindex_in_history_answers_at_once(kv, ns):
    a = kv.put(ns + "/a", "1").json()["node"]
    kv.put(ns + "/a", "2")
    r = kv.get(ns + "/a", wait="true", waitIndex=a["modifiedIndex"],
               timeout=3)
    assert r.status == 200
    ev = r.json()
    assert ev["action"] == "set"
    assert ev["node"]["value"] == "1"
    assert ev["node"]["modifiedIndex"] == a["modifiedIndex"]
    assert r.header("X-Etcd-Index") is not None
    assert r.header("X-Raft-Index") is not None


def test_watch_waitindex_skips_other_keys(kv, ns):
    i = kv.put(ns + "/a", "1").json()["node"]["modifiedIndex"]
    kv.put(ns + "/b", "x")
    kv.put(ns + "/a", "2")
    ev = kv.get(ns + "/a", wait="true", waitIndex=i + 1, timeout=3).json()
    assert ev["node"]["value"] == "2"
    assert ev["node"]["modifiedIndex"] == i + 2
    assert ev["prevNode"]["value"] == "1"


def test_watch_waits_for_next_event(kv, ns):
    c, head = open_watch(kv, ns + "/a")
    assert head.status == 200
    assert head.header("Content-Type") == "application/json"
    assert "chunked" in head.header("Transfer-Encoding", "").lower()
    assert head.header("X-Etcd-Index") is not None
    assert no_event(c, 0.3) is True
    w = kv.put(ns + "/a", "v").json()
    ev = event(c, head)
    assert ev["action"] == "set"
    assert ev["node"] == w["node"]
    c.close()


def test_watch_waitindex_in_future_waits(kv, ns):
    i = kv.index()
    c, head = open_watch(kv, ns + "/a", waitIndex=i + 2)
    kv.put(ns + "/a", "first")   # i+1: before waitIndex
    kv.put(ns + "/a", "second")  # i+2
    ev = event(c, head)
    assert ev["node"]["value"] == "second"
    c.close()


def test_watch_recursive_sees_children(kv, ns):
    c, head = open_watch(kv, ns + "/d", recursive="true")
    kv.put(ns + "/d/x/y", "deep")
    ev = event(c, head)
    assert ev["node"]["key"] == ns + "/d/x/y"
    c.close()


def test_watch_not_recursive_ignores_children(kv, ns):
    kv.put(ns + "/d", dir="true")
    c, head = open_watch(kv, ns + "/d")
    kv.put(ns + "/d/x", "1")
    assert no_event(c) is True
    c.close()


def test_watch_delete_and_cas_events(kv, ns):
    kv.put(ns + "/a", "1")
    c, head = open_watch(kv, ns + "/a")
    kv.put(ns + "/a", "2", prevValue="1")
    ev = event(c, head)
    assert ev["action"] == "compareAndSwap"
    c, head = open_watch(kv, ns + "/a")
    kv.delete(ns + "/a")
    ev = event(c, head)
    assert ev["action"] == "delete"
    assert ev["prevNode"]["value"] == "2"


def test_watch_hidden_key_events(kv, ns):
    kv.put(ns + "/d", dir="true")
    c, head = open_watch(kv, ns + "/d", recursive="true")
    kv.put(ns + "/d/_hidden", "h")
    assert no_event(c) is True  # not for a watcher of the parent
    c.close()
    c, head = open_watch(kv, ns + "/d/_hidden")
    kv.put(ns + "/d/_hidden", "h2")
    ev = event(c, head)  # but for one that names the hidden key
    assert ev["node"]["value"] == "h2"


def test_watch_dir_deleted_wakes_child_watcher(kv, ns):
    kv.put(ns + "/d/x", "1")
    c, head = open_watch(kv, ns + "/d/x")
    kv.delete(ns + "/d", recursive="true")
    ev = event(c, head)
    assert ev["action"] == "delete"
    assert ev["node"]["key"] == ns + "/d"


def test_watch_stream(kv, ns):
    c, head = open_watch(kv, ns + "/s", recursive="true", stream="true")
    assert head.status == 200
    got = []
    for n in range(3):
        kv.put(ns + "/s/k%d" % n, str(n))
    buf = b""
    while buf.count(b"\n") < 3:
        chunk = c.read_chunk()
        assert chunk, "stream ended"
        buf += chunk
    for line in buf.split(b"\n")[:3]:
        got.append(json.loads(line))
    assert [e["node"]["value"] for e in got] == ["0", "1", "2"]
    assert all(e["action"] == "set" for e in got)
    c.close()


def test_watch_many_watchers_one_event(kv, ns):
    conns = [open_watch(kv, ns + "/m") for _ in range(20)]
    kv.put(ns + "/m", "all")
    for c, head in conns:
        assert event(c, head)["node"]["value"] == "all"
        c.close()


def test_watch_history_cleared_is_401(kv, ns):
    first = kv.put(ns + "/h", "0").json()["node"]["modifiedIndex"]
    with httpraw.Conn(kv.port) as c:
        for n in range(1005):
            r = c.request("PUT", kv.url(ns + "/h"), form={"value": str(n)})
            assert r.status == 200
    r = kv.get(ns + "/h", wait="true", waitIndex=first, timeout=3)
    assert r.status == 400
    b = r.json()
    assert b["errorCode"] == 401
    assert b["message"] == \
        "The event in requested index is outdated and cleared"
    last = first + 1005
    oldest = last - 999
    assert b["cause"] == "the requested history has been cleared [%d/%d]" \
        % (oldest, first)
    assert b["index"] == last
    # the oldest kept event still answers
    r = kv.get(ns + "/h", wait="true", waitIndex=oldest, timeout=3)
    assert r.status == 200
    assert r.json()["node"]["modifiedIndex"] == oldest


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5"])
def test_watch_bad_waitindex_is_203(kv, ns, bad):
    r = kv.get(ns + "/a", wait="true", waitIndex=bad)
    assert r.status == 400
    assert r.json()["errorCode"] == 203
    assert r.json()["index"] == 0
