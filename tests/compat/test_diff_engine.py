"""The differential engine itself, without servers: normalisation maps
what may differ and nothing else, diff() finds what must not differ, and
the sanitizer scan finds reports. Milliseconds."""

import json

from pylib import differential, httpraw
from pylib.cluster import Server


class FakeServer:
    kind = "fake"

    def __init__(self, port):
        self.client_port = port


def side(base, port=1234):
    s = differential.Side(FakeServer(port), "fake")
    s.base = base
    return s


def resp(status, body, headers=()):
    hs = [("Content-Type", "application/json")] + list(headers)
    return httpraw.Response(status, "", hs, json.dumps(body).encode())


OP = {"m": "GET", "p": "a", "q": [], "f": None}


def test_engine_indexes_relative_to_base():
    a, b = side(10), side(3)
    ra = resp(200, {"action": "set", "node": {
        "key": "/q/00000000000000000015", "value": "v",
        "modifiedIndex": 15, "createdIndex": 12}},
        [("X-Etcd-Index", "15"), ("X-Raft-Index", "99")])
    rb = resp(200, {"action": "set", "node": {
        "key": "/q/00000000000000000008", "value": "v",
        "modifiedIndex": 8, "createdIndex": 5}},
        [("X-Etcd-Index", "8"), ("X-Raft-Index", "7")])
    na, nb = a.normalise(OP, ra), b.normalise(OP, rb)
    assert differential.diff(na, nb) is None
    assert na["body"]["node"]["key"] == "/q/<ord5>"
    assert na["xindex"] == 5


def test_engine_real_differences_found():
    a, b = side(10), side(3)
    base = {"action": "set", "node": {"key": "/a", "value": "v",
                                      "modifiedIndex": 15,
                                      "createdIndex": 15}}
    for change in (lambda n: n["node"].update(value="w"),
                   lambda n: n["node"].update(modifiedIndex=16),
                   lambda n: n.update(action="update"),
                   lambda n: n.update(prevNode={"key": "/a"}),
                   lambda n: n["node"].pop("createdIndex")):
        other = json.loads(json.dumps(base))
        other["node"]["modifiedIndex"] -= 7
        other["node"]["createdIndex"] -= 7
        change(other)
        na = a.normalise(OP, resp(200, base))
        nb = b.normalise(OP, resp(200, other))
        assert differential.diff(na, nb), other
    na = a.normalise(OP, resp(200, base))
    nb = b.normalise(OP, resp(201, {"action": "set", "node": {
        "key": "/a", "value": "v", "modifiedIndex": 8, "createdIndex": 8}}))
    assert "status" in differential.diff(na, nb)


def test_engine_ttl_tolerance_and_expiration():
    a, b = side(0), side(0)

    def node(ttl, exp):
        return resp(200, {"action": "get", "node": {
            "key": "/a", "value": "v", "expiration": exp, "ttl": ttl,
            "modifiedIndex": 1, "createdIndex": 1}})
    na = a.normalise(OP, node(100, "2030-01-01T00:00:00.1Z"))
    assert differential.diff(na, b.normalise(
        OP, node(99, "2030-01-01T00:00:01.7Z"))) is None
    assert differential.diff(na, b.normalise(
        OP, node(98, "2030-01-01T00:00:01.7Z")))
    nb = b.normalise(OP, resp(200, {"action": "get", "node": {
        "key": "/a", "value": "v", "modifiedIndex": 1, "createdIndex": 1}}))
    assert "expiration" in differential.diff(na, nb)


def test_engine_error_causes_and_zero_index():
    a, b = side(10), side(3)
    e1 = resp(412, {"errorCode": 101, "message": "Compare failed",
                    "cause": "[x != y] [12 != 14]", "index": 14})
    e2 = resp(412, {"errorCode": 101, "message": "Compare failed",
                    "cause": "[x != y] [5 != 7]", "index": 7})
    assert differential.diff(a.normalise(OP, e1), b.normalise(OP, e2)) is None
    e3 = resp(400, {"errorCode": 401, "message": "m",
                    "cause": "the requested history has been cleared "
                    "[1010/20]", "index": 2010})
    e4 = resp(400, {"errorCode": 401, "message": "m",
                    "cause": "the requested history has been cleared "
                    "[1003/13]", "index": 2003})
    assert differential.diff(a.normalise(OP, e3), b.normalise(OP, e4)) is None
    p1 = resp(400, {"errorCode": 209, "message": "Invalid field",
                    "cause": "c", "index": 0}, [("X-Etcd-Index", "0")])
    p2 = resp(400, {"errorCode": 209, "message": "Invalid field",
                    "cause": "c", "index": 10}, [("X-Etcd-Index", "10")])
    # a parameter error (index 0) is not the same as index == base
    assert differential.diff(a.normalise(OP, p1), side(10).normalise(OP, p2))


def test_engine_children_order():
    a, b = side(0), side(0)
    kids = [{"key": "/d/%s" % k, "value": k, "modifiedIndex": 1,
             "createdIndex": 1} for k in "abc"]
    d1 = resp(200, {"action": "get", "node": {"key": "/d", "dir": True,
                                              "nodes": kids}})
    d2 = resp(200, {"action": "get", "node": {"key": "/d", "dir": True,
                                              "nodes": kids[::-1]}})
    assert differential.diff(a.normalise(OP, d1), b.normalise(OP, d2)) is None
    sorted_op = dict(OP, q=[("sorted", "true")])
    assert differential.diff(a.normalise(sorted_op, d1),
                             b.normalise(sorted_op, d2))


def test_engine_redirect_location():
    op = {"m": "PUT", "p": "/a", "q": [("prevIndex", {"rel": 4}),
                                        ("ttl", "15")], "f": None}
    a, b = side(10, 1111), side(3, 2222)
    ra = httpraw.Response(301, "", [(
        "Location", "http://127.0.0.1:1111/v2/keys/a?prevIndex=14&ttl=15")],
        b"")
    rb = httpraw.Response(301, "", [(
        "Location", "http://127.0.0.1:2222/v2/keys/a?prevIndex=7&ttl=15")],
        b"")
    assert differential.diff(a.normalise(op, ra), b.normalise(op, rb)) is None
    rb.headers = [("Location", "/v2/keys/a?prevIndex=8&ttl=15")]
    assert differential.diff(a.normalise(op, ra), b.normalise(op, rb))


def test_engine_same_seed_same_ops():
    g1, g2 = differential.Gen(42, []), differential.Gen(42, [])
    ops1 = [g1.op() for _ in range(300)]
    ops2 = [g2.op() for _ in range(300)]
    assert ops1 == ops2
    kinds = {o["m"] for o in ops1}
    assert {"PUT", "GET", "DELETE", "POST"} <= kinds


def test_engine_sanitizer_scan(tmp_path):
    s = Server("cairn", "/bin/true")
    try:
        s.log_path = str(tmp_path / "log")
        with open(s.log_path, "w") as f:
            f.write("ok\n")
        assert s.sanitizer_report() == ""
        for mark in ("==1==ERROR: AddressSanitizer: heap-use-after-free",
                     "==1==ERROR: LeakSanitizer: detected memory leaks",
                     "src/x.c:3:5: runtime error: signed integer overflow"):
            with open(s.log_path, "w") as f:
                f.write("line\n" + mark + "\n")
            assert mark in s.sanitizer_report()
    finally:
        s.cleanup()
