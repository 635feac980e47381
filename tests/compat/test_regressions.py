"""Fixed regression cases: each difference the differential test found
between cairn and etcd, once understood, becomes one small explicit case
here, run against both servers and compared the same way (the sequence's
answers must match after normalisation), plus an exact expectation taken
from etcd 3.4 where that makes the intent clearer.

CAIRN_DIFF_MODE=etcd runs them etcd against etcd (they must all pass).
"""

import os

import pytest

from pylib import differential
from pylib.procs import discard, finish_all, started

MODE = os.environ.get("CAIRN_DIFF_MODE", "cairn")


@pytest.fixture
def sides(module_sides):
    # a fresh base per case, so one case's difference cannot shift the
    # indexes of the next
    for s in module_sides:
        s.init()
    return module_sides


@pytest.fixture(scope="module")
def module_sides():
    a = started("etcd" if MODE == "etcd" else "cairn")
    try:
        b = started("etcd")
    except BaseException:  # noqa: B902 (pytest.fail's outcome)
        discard([a])
        raise
    sa = differential.Side(a, "A:" + a.kind)
    sb = differential.Side(b, "B:" + b.kind)
    yield sa, sb
    for s in (sa, sb):
        if s.conn:
            s.conn.close()
    finish_all([a, b])


def run(sides, *ops):
    return differential.compare_ops(sides[0], sides[1], list(ops))


def test_regress_unknown_method_is_405(sides):
    # found: cairn answered an unknown method ("FOO") with 400 and closed
    # the connection; etcd answers 405 with Allow like any other method
    # it does not serve
    out = run(sides, {"m": "FOO", "p": "r1/a"})
    assert out[0]["status"] == 405
    assert out[0]["allow"] == "HEAD,GET,PUT,POST,DELETE"


def test_regress_other_methods(sides):
    out = run(sides, {"m": "PATCH", "p": "r1/b"}, {"m": "TRACE", "p": "r1/b"},
              {"m": "OPTIONS", "p": "r1/b"})
    assert [o["status"] for o in out] == [405, 405, 200]


def test_regress_long_query_value(sides):
    # found: a 66 KB value in the query string of a PUT got 431 from cairn;
    # etcd (Go's 1 MiB header limit) stores it
    big = "L" * (66 * 1024)
    out = run(sides, {"m": "PUT", "p": "r2/a", "q": [("value", big)]},
              {"m": "GET", "p": "r2/a"})
    assert out[0]["status"] == 201


def test_regress_invalid_utf8_keys_and_values(sides):
    # normalisation case: distinct raw keys that both print as U+FFFD
    run(sides,
        {"m": "PUT", "p": "r3/%FF", "f": [("value", "a")]},
        {"m": "PUT", "p": "r3/%EF%BF%BD", "f": [("value", "b")]},
        {"m": "PUT", "p": "r3/v", "f": [("value", "\u00ff\u0000\x01")]},
        {"m": "GET", "p": "r3", "q": [("recursive", "true")]},
        {"m": "GET", "p": "r3/%FF"})


def test_regress_redirect_keeps_query(sides):
    # 301 Location keeps the query string, index parameters included
    out = run(sides,
              {"m": "PUT", "p": "r4//a", "q": [("value", "1"),
                                               ("prevIndex", {"rel": 1})]},
              {"m": "GET", "p": "r4/./a", "q": [("wait", "true"),
                                                ("waitIndex", "1.5")]},
              {"m": "DELETE", "p": "r4/x/../a"})
    assert all(o["status"] == 301 for o in out)


def test_regress_ttl_zero_expires_at_once(sides):
    out = run(sides, {"m": "PUT", "p": "r5/a",
                      "f": [("value", "1"), ("ttl", "0")]})
    assert out[0]["status"] == 201
    differential.wait_expired(sides, out[0]["xindex"] + 1)
    out = run(sides, {"m": "GET", "p": "r5/a"},
              {"m": "GET", "p": "r5/a", "q": [
                  ("wait", "true"), ("waitIndex", {"rel": out[0]["xindex"]
                                                   + 1})]})
    assert out[0]["status"] == 404
    assert out[1]["body"]["action"] == "expire"


def test_regress_refresh_variants(sides):
    # refresh without prevExist is a set (new createdIndex); with
    # prevExist=true an update; both take an index
    run(sides,
        {"m": "PUT", "p": "r6/a", "f": [("value", "1"), ("ttl", "100")]},
        {"m": "PUT", "p": "r6/a", "f": [("refresh", "true"), ("ttl", "200")]},
        {"m": "PUT", "p": "r6/a", "f": [("refresh", "true"), ("ttl", "300"),
                                        ("prevExist", "true")]},
        {"m": "PUT", "p": "r6/a", "f": [("refresh", "true"), ("ttl", "")]},
        {"m": "PUT", "p": "r6/d", "f": [("dir", "true"), ("ttl", "100")]},
        {"m": "PUT", "p": "r6/d", "f": [("refresh", "true"), ("ttl", "100"),
                                        ("dir", "true")]})


def test_regress_nooverride_dir_and_file(sides):
    run(sides,
        {"m": "PUT", "p": "r7/f", "f": [("value", "1")]},
        {"m": "PUT", "p": "r7/f", "f": [("dir", "true")]},
        {"m": "PUT", "p": "r7/f", "f": [("value", "2")]},
        {"m": "PUT", "p": "r7/f", "f": [("dir", "true"),
                                        ("prevExist", "false")]},
        {"m": "POST", "p": "r7/f", "f": [("dir", "true")]},
        {"m": "DELETE", "p": "r7/f", "q": [("dir", "true")]},
        {"m": "DELETE", "p": "r7/f", "q": [("recursive", "true"),
                                           ("prevValue", "x")]})


def test_regress_param_parsing_edges(sides):
    run(sides,
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"), ("ttl", " 100")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"), ("ttl", "+100")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"), ("ttl", "0100")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"),
                                        ("ttl", "99999999999999999999")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"),
                                        ("prevIndex", "-1")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"), ("prevExist", "")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"), ("dir", "TRUE")]},
        {"m": "PUT", "p": "r8/a", "f": [("value", "1"), ("dir", "t")]},
        {"m": "GET", "p": "r8/a", "q": [("recursive", "1")]},
        {"m": "GET", "p": "r8/a", "q": [("sorted", "")]},
        {"m": "GET", "p": "r8/a", "q": [("stream", "true")]},
        {"m": "DELETE", "p": "r8/a", "q": [("prevExist", "true")]})
