"""The v2 key API through raw HTTP: actions, error table, headers, TTLs,
directories, in-order and hidden keys, parameter errors.

Runs against cairn (CAIRN_BIN, default build/cairn); CAIRN_TEST_TARGET=etcd
runs the same tests against etcd 3.4 --enable-v2, the reference.
"""

import json
import re
import time

import pytest

from pylib import httpraw

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")


def j(r):
    return r.json()


def xindex(r):
    return int(r.header("X-Etcd-Index"))


def node_keys_in_order(raw_body, obj="node"):
    """Field names of the (first) node object, in the order sent."""
    pairs = json.loads(raw_body, object_pairs_hook=list)
    for k, v in pairs:
        if k == obj:
            return [kk for kk, _ in v]
    return None


# ------------------------------------------------------------------ set/get

def test_keys_set_new_key_created(kv, ns):
    r = kv.put(ns + "/a", "1")
    assert r.status == 201, r
    b = j(r)
    assert b["action"] == "set"
    assert b["node"]["key"] == ns + "/a"
    assert b["node"]["value"] == "1"
    assert b["node"]["modifiedIndex"] == b["node"]["createdIndex"]
    assert "prevNode" not in b
    assert xindex(r) == b["node"]["modifiedIndex"]
    assert node_keys_in_order(r.body) == ["key", "value", "modifiedIndex",
                                          "createdIndex"]


def test_keys_set_existing_key_replaces_with_prevnode(kv, ns):
    a = j(kv.put(ns + "/a", "1"))
    r = kv.put(ns + "/a", "2")
    assert r.status == 200
    b = j(r)
    assert b["action"] == "set"
    assert b["node"]["value"] == "2"
    # set gives a fresh createdIndex
    assert b["node"]["createdIndex"] == b["node"]["modifiedIndex"] == \
        a["node"]["modifiedIndex"] + 1
    assert b["prevNode"] == a["node"]


def test_keys_index_increments_by_one_per_write(kv, ns):
    i0 = kv.index()
    for n in range(5):
        r = kv.put(ns + "/k%d" % n, "v")
        assert j(r)["node"]["modifiedIndex"] == i0 + n + 1
    assert kv.index() == i0 + 5


def test_keys_get_value(kv, ns):
    kv.put(ns + "/a", "hello")
    r = kv.get(ns + "/a")
    assert r.status == 200
    assert j(r)["action"] == "get"
    assert j(r)["node"]["value"] == "hello"
    assert r.header("X-Raft-Index") is not None


def test_keys_get_missing_is_error_100(kv, ns):
    kv.put(ns + "/other", "1")
    i = kv.index()
    r = kv.get(ns + "/nope")
    assert r.status == 404
    assert j(r) == {"errorCode": 100, "message": "Key not found",
                    "cause": ns + "/nope", "index": i}
    assert xindex(r) == i
    assert r.header("X-Raft-Index") is None
    assert r.header("X-Raft-Term") is None
    assert r.header("Content-Type") == "application/json"


def test_keys_missing_cause_names_first_missing_dir(kv, ns):
    kv.put(ns + "/a", dir="true")
    r = kv.get(ns + "/a/b/c/d")
    assert r.status == 404
    assert j(r)["cause"] == ns + "/a/b"
    r = kv.delete(ns + "/x/y")
    assert j(r)["cause"] == ns + "/x"


def test_keys_put_without_value_stores_empty_string(kv, ns):
    r = kv.put(ns + "/e")
    assert r.status == 201
    assert j(r)["node"]["value"] == ""
    assert j(kv.get(ns + "/e"))["node"]["value"] == ""


def test_keys_empty_and_large_values_roundtrip(kv, ns):
    big = "x" * (1024 * 1024)
    assert kv.put(ns + "/big", big).status == 201
    assert j(kv.get(ns + "/big"))["node"]["value"] == big
    odd = "a&b=c+d%e\u00e9\u2603 \n\t\"quote\"\\"
    assert kv.put(ns + "/odd", odd).status == 201
    assert j(kv.get(ns + "/odd"))["node"]["value"] == odd


def test_keys_body_param_wins_over_query(kv, ns):
    r = kv.req("PUT", ns + "/a", query={"value": "q"}, form={"value": "b"})
    assert j(r)["node"]["value"] == "b"
    r = kv.req("PUT", ns + "/c", query={"value": "q"})
    assert j(r)["node"]["value"] == "q"


def test_keys_head_is_get_without_body(kv, ns):
    kv.put(ns + "/a", "1")
    r = kv.req("HEAD", ns + "/a")
    assert r.status == 200
    assert r.body == b""
    assert r.header("X-Etcd-Index") is not None
    assert kv.req("HEAD", ns + "/missing").status == 404


# ------------------------------------------------------------------ headers

def test_keys_headers_success(kv, ns):
    r = kv.put(ns + "/a", "1")
    assert r.header("Content-Type") == "application/json"
    assert re.fullmatch(r"[0-9a-f]{1,16}", r.header("X-Etcd-Cluster-Id"))
    assert int(r.header("X-Raft-Index")) > 0
    assert int(r.header("X-Raft-Term")) > 0
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert "PUT" in r.header("Access-Control-Allow-Methods")
    assert r.header("Access-Control-Allow-Headers") is not None


def test_keys_headers_error(kv, ns):
    r = kv.get(ns + "/missing")
    assert r.header("Content-Type") == "application/json"
    assert r.header("X-Etcd-Cluster-Id") is not None
    assert r.header("Access-Control-Allow-Origin") == "*"
    assert r.header("X-Raft-Index") is None


def test_keys_raft_index_moves_with_writes(kv, ns):
    r1 = kv.put(ns + "/a", "1")
    r2 = kv.put(ns + "/a", "2")
    assert int(r2.header("X-Raft-Index")) > int(r1.header("X-Raft-Index"))
    assert r1.header("X-Etcd-Cluster-Id") == r2.header("X-Etcd-Cluster-Id")


def test_keys_options_preflight(kv, ns):
    r = kv.req("OPTIONS", ns + "/a", headers=[("Origin", "http://x.test")])
    assert r.status == 200
    assert r.header("Access-Control-Allow-Origin") == "*"


# ------------------------------------------------------ create/update/CAS

def test_keys_create_prevexist_false(kv, ns):
    r = kv.put(ns + "/a", "1", prevExist="false")
    assert r.status == 201
    assert j(r)["action"] == "create"
    i = kv.index()
    r = kv.put(ns + "/a", "2", prevExist="false")
    assert r.status == 412
    assert j(r) == {"errorCode": 105, "message": "Key already exists",
                    "cause": ns + "/a", "index": i}


def test_keys_update_prevexist_true(kv, ns):
    r = kv.put(ns + "/a", "1", prevExist="true")
    assert r.status == 404 and j(r)["errorCode"] == 100
    c = j(kv.put(ns + "/a", "1"))["node"]
    r = kv.put(ns + "/a", "2", prevExist="true")
    assert r.status == 200
    b = j(r)
    assert b["action"] == "update"
    assert b["node"]["createdIndex"] == c["createdIndex"]
    assert b["node"]["modifiedIndex"] == c["modifiedIndex"] + 1
    assert b["prevNode"]["value"] == "1"


def test_keys_prevexist_garbage_is_209(kv, ns):
    r = kv.put(ns + "/a", "1", prevExist="maybe")
    assert r.status == 400
    assert j(r) == {"errorCode": 209, "message": "Invalid field",
                    "cause": "invalid value for prevExist", "index": 0}
    assert r.header("X-Etcd-Index") == "0"


def test_keys_compare_and_swap_value(kv, ns):
    n = j(kv.put(ns + "/a", "1"))["node"]
    r = kv.put(ns + "/a", "2", prevValue="1")
    assert r.status == 200
    b = j(r)
    assert b["action"] == "compareAndSwap"
    assert b["node"]["createdIndex"] == n["createdIndex"]
    i = kv.index()
    r = kv.put(ns + "/a", "3", prevValue="zz")
    assert r.status == 412
    assert j(r) == {"errorCode": 101, "message": "Compare failed",
                    "cause": "[zz != 2]", "index": i}


def test_keys_compare_and_swap_index(kv, ns):
    n = j(kv.put(ns + "/a", "1"))["node"]
    mi = n["modifiedIndex"]
    r = kv.put(ns + "/a", "2", prevIndex=mi - 1)
    assert r.status == 412
    assert j(r)["cause"] == "[%d != %d]" % (mi - 1, mi)
    r = kv.put(ns + "/a", "2", prevValue="zz", prevIndex=mi - 1)
    assert j(r)["cause"] == "[zz != 1] [%d != %d]" % (mi - 1, mi)
    r = kv.put(ns + "/a", "2", prevIndex=mi)
    assert r.status == 200 and j(r)["action"] == "compareAndSwap"


def test_keys_previndex_zero_is_plain_set(kv, ns):
    r = kv.put(ns + "/a", "1", prevIndex=0)
    assert r.status == 201 and j(r)["action"] == "set"


def test_keys_previndex_not_a_number_is_203(kv, ns):
    r = kv.put(ns + "/a", "1", prevIndex="abc")
    assert r.status == 400
    assert j(r) == {"errorCode": 203,
                    "message": "The given index in POST form is not a number",
                    "cause": 'invalid value for "prevIndex"', "index": 0}


def test_keys_cas_on_missing_key_is_100(kv, ns):
    r = kv.put(ns + "/missing", "1", prevValue="x")
    assert r.status == 404 and j(r)["errorCode"] == 100


def test_keys_empty_prevvalue_is_201(kv, ns):
    r = kv.put(ns + "/a", "1", prevValue="")
    assert r.status == 400
    assert j(r)["errorCode"] == 201
    assert j(r)["message"] == "PrevValue is Required in POST form"


def test_keys_nvalue_on_success(kv, ns):
    r = kv.put(ns + "/a", "1", noValueOnSuccess="true")
    assert r.status == 201
    assert j(r) == {"action": "set"}
    r = kv.post(ns + "/q", "1", noValueOnSuccess="true")
    assert j(r) == {"action": "create"}
    # etcd 3.4 honours it on PUT and POST only: a DELETE answers in full
    r = kv.delete(ns + "/a", noValueOnSuccess="true")
    assert j(r)["action"] == "delete" and j(r)["prevNode"]["value"] == "1"
    r = kv.put(ns + "/a", "1", noValueOnSuccess="true", prevValue="x")
    assert r.status == 404  # errors answer in full
    assert j(r)["errorCode"] == 100


# ----------------------------------------------------------------- delete

def test_keys_delete_file(kv, ns):
    n = j(kv.put(ns + "/a", "1"))["node"]
    r = kv.delete(ns + "/a")
    assert r.status == 200
    b = j(r)
    assert b["action"] == "delete"
    assert b["node"]["key"] == ns + "/a"
    assert b["node"]["modifiedIndex"] == n["modifiedIndex"] + 1
    assert b["prevNode"]["value"] == "1"
    assert kv.get(ns + "/a").status == 404
    assert kv.delete(ns + "/a").status == 404


def test_keys_compare_and_delete(kv, ns):
    n = j(kv.put(ns + "/a", "1"))["node"]
    r = kv.delete(ns + "/a", prevValue="2")
    assert r.status == 412 and j(r)["cause"] == "[2 != 1]"
    r = kv.delete(ns + "/a", prevIndex=n["modifiedIndex"] + 100)
    assert r.status == 412
    r = kv.delete(ns + "/a", prevValue="1")
    assert r.status == 200 and j(r)["action"] == "compareAndDelete"
    n = j(kv.put(ns + "/b", "1"))["node"]
    r = kv.delete(ns + "/b", prevIndex=n["modifiedIndex"])
    assert r.status == 200 and j(r)["action"] == "compareAndDelete"


def test_keys_root_is_read_only(kv, ns):
    for r in (kv.put("/", "x"), kv.delete("/", recursive="true"),
              kv.delete("/", dir="true")):
        assert r.status == 400
        assert j(r)["errorCode"] == 107
        assert j(r)["message"] == "Root is read only"
        assert j(r)["cause"] == "/"


# ------------------------------------------------------------ directories

def test_keys_dir_create_and_get(kv, ns):
    r = kv.put(ns + "/d", dir="true")
    assert r.status == 201
    b = j(r)
    assert b["action"] == "set"
    assert b["node"]["dir"] is True
    assert "value" not in b["node"]
    assert node_keys_in_order(r.body) == ["key", "dir", "modifiedIndex",
                                          "createdIndex"]
    g = j(kv.get(ns + "/d"))
    assert g["node"]["dir"] is True
    assert "nodes" not in g["node"]  # empty dir: no nodes field


def test_keys_dir_existing_is_102_unless_prevexist(kv, ns):
    kv.put(ns + "/d", dir="true")
    r = kv.put(ns + "/d", dir="true")
    assert r.status == 403 and j(r)["errorCode"] == 102
    assert j(r)["cause"] == ns + "/d"
    r = kv.put(ns + "/d", dir="true", prevExist="true", ttl=100)
    assert r.status == 200
    assert j(r)["action"] == "update"
    assert j(r)["node"]["ttl"] in (99, 100)
    r = kv.put(ns + "/d", dir="true", prevExist="true", ttl="")
    assert "ttl" not in j(r)["node"]
    assert "expiration" not in j(r)["node"]


def test_keys_value_onto_dir_is_102(kv, ns):
    kv.put(ns + "/d/x", "1")
    r = kv.put(ns + "/d", "v")
    assert r.status == 403 and j(r)["errorCode"] == 102
    assert j(r)["message"] == "Not a file"


def test_keys_write_under_file_is_104(kv, ns):
    kv.put(ns + "/f", "1")
    r = kv.put(ns + "/f/g", "2")
    assert r.status == 400
    assert j(r)["errorCode"] == 104
    assert j(r)["message"] == "Not a directory"
    assert j(r)["cause"] == ns + "/f"


def test_keys_delete_dir_rules(kv, ns):
    kv.put(ns + "/d/x", "1")
    r = kv.delete(ns + "/d")
    assert r.status == 403 and j(r)["errorCode"] == 102
    r = kv.delete(ns + "/d", dir="true")
    assert r.status == 403 and j(r)["errorCode"] == 108
    assert j(r)["message"] == "Directory not empty"
    r = kv.delete(ns + "/d", recursive="true")
    assert r.status == 200
    b = j(r)
    assert b["action"] == "delete"
    assert b["node"]["dir"] is True
    assert b["prevNode"]["dir"] is True
    assert kv.get(ns + "/d/x").status == 404
    kv.put(ns + "/e", dir="true")
    assert kv.delete(ns + "/e", dir="true").status == 200


def test_keys_recursive_and_sorted_get(kv, ns):
    for k in ("c", "a", "b/y", "b/x"):
        kv.put(ns + "/" + k, k)
    r = j(kv.get(ns, recursive="true", sorted="true"))
    kids = r["node"]["nodes"]
    assert [k["key"] for k in kids] == [ns + "/a", ns + "/b", ns + "/c"]
    assert [k["key"] for k in kids[1]["nodes"]] == [ns + "/b/x", ns + "/b/y"]
    # without recursive: one level, the subdir listed without its nodes
    r = j(kv.get(ns, sorted="true"))
    assert [k["key"] for k in r["node"]["nodes"]] == \
        [ns + "/a", ns + "/b", ns + "/c"]
    assert "nodes" not in r["node"]["nodes"][1]


def test_keys_root_get_has_no_key_or_index(kv, ns):
    kv.put(ns + "/a", "1")
    r = kv.get("/")
    b = j(r)
    assert b["node"]["dir"] is True
    assert "key" not in b["node"]
    assert "modifiedIndex" not in b["node"]
    assert any(n["key"] == ns for n in b["node"]["nodes"])


def test_keys_dir_replaces_file_with_set(kv, ns):
    kv.put(ns + "/f", "1")
    r = kv.put(ns + "/f", dir="true")
    assert r.status == 200
    assert j(r)["node"]["dir"] is True
    assert j(r)["prevNode"]["value"] == "1"


# ------------------------------------------------------- in-order, hidden

def test_keys_in_order_post(kv, ns):
    r1 = kv.post(ns + "/q", "first")
    r2 = kv.post(ns + "/q", "second")
    assert r1.status == r2.status == 201
    for r in (r1, r2):
        b = j(r)
        assert b["action"] == "create"
        last = b["node"]["key"].rsplit("/", 1)[1]
        assert re.fullmatch(r"\d{20}", last)
        assert int(last) == b["node"]["modifiedIndex"]
    g = j(kv.get(ns + "/q", sorted="true"))
    assert [n["value"] for n in g["node"]["nodes"]] == ["first", "second"]


def test_keys_post_without_value_and_onto_file(kv, ns):
    r = kv.post(ns + "/q")
    assert r.status == 201 and j(r)["node"]["value"] == ""
    kv.put(ns + "/f", "1")
    r = kv.post(ns + "/f", "x")
    assert r.status == 400 and j(r)["errorCode"] == 104


def test_keys_hidden_keys_not_listed(kv, ns):
    kv.put(ns + "/_h", "hid")
    kv.put(ns + "/v", "vis")
    kv.put(ns + "/d/_hh", "hid2")
    r = j(kv.get(ns, recursive="true"))
    listed = json.dumps(r)
    assert "/_h" not in listed and "_hh" not in listed
    assert ns + "/v" in listed
    assert j(kv.get(ns + "/_h"))["node"]["value"] == "hid"
    assert j(kv.get(ns + "/d/_hh"))["node"]["value"] == "hid2"


# -------------------------------------------------------------------- TTL

def test_keys_ttl_fields(kv, ns):
    r = kv.put(ns + "/a", "1", ttl=100)
    n = j(r)["node"]
    assert n["ttl"] in (99, 100)
    assert ISO.match(n["expiration"]), n["expiration"]
    assert node_keys_in_order(r.body) == ["key", "value", "expiration", "ttl",
                                          "modifiedIndex", "createdIndex"]
    g = j(kv.get(ns + "/a"))["node"]
    assert g["expiration"] == n["expiration"]


def test_keys_empty_ttl_clears_ttl(kv, ns):
    kv.put(ns + "/a", "1", ttl=100)
    r = kv.put(ns + "/a", "2", ttl="", prevExist="true")
    assert "ttl" not in j(r)["node"]
    assert "expiration" not in j(r)["node"]
    assert "ttl" in j(r)["prevNode"]


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "0x10"])
def test_keys_bad_ttl_is_202(kv, ns, bad):
    r = kv.put(ns + "/a", "1", ttl=bad)
    assert r.status == 400
    assert j(r) == {"errorCode": 202,
                    "message": "The given TTL in POST form is not a number",
                    "cause": 'invalid value for "ttl"', "index": 0}
    assert kv.get(ns + "/a").status == 404


def test_keys_ttl_expires_with_expire_event(kv, ns):
    n = j(kv.put(ns + "/a", "1", ttl=1))["node"]
    c = httpraw.Conn(kv.port, timeout=5)
    c.send(httpraw.build_request(
        "GET", kv.url(ns + "/a", {"wait": "true",
                                  "waitIndex": n["modifiedIndex"] + 1})))
    head = c.read_head()
    assert head.status == 200
    t0 = time.monotonic()
    ev = json.loads(c.read_body(head).body)
    assert time.monotonic() - t0 < 3.5
    assert ev["action"] == "expire"
    assert ev["node"] == {"key": ns + "/a",
                          "modifiedIndex": n["modifiedIndex"] + 1,
                          "createdIndex": n["createdIndex"]}
    assert ev["prevNode"]["value"] == "1"
    assert "expiration" in ev["prevNode"]
    assert "ttl" not in ev["prevNode"]
    r = kv.get(ns + "/a")
    assert r.status == 404
    assert j(r)["index"] >= n["modifiedIndex"] + 1


def test_keys_dir_ttl_expires_subtree(kv, ns):
    kv.put(ns + "/d", dir="true", ttl=1)
    kv.put(ns + "/d/x", "1")
    deadline = time.monotonic() + 4
    while kv.get(ns + "/d/x").status == 200:
        assert time.monotonic() < deadline, "dir with ttl=1 never expired"
        time.sleep(0.1)
    assert kv.get(ns + "/d").status == 404


def test_keys_refresh(kv, ns):
    n = j(kv.put(ns + "/a", "1", ttl=100))["node"]
    r = kv.req("PUT", ns + "/a", form={"refresh": "true", "ttl": "200",
                                        "prevExist": "true"})
    assert r.status == 200
    b = j(r)
    assert b["node"]["value"] == "1"
    assert b["node"]["ttl"] in (199, 200)
    assert b["node"]["createdIndex"] == n["createdIndex"]
    r = kv.req("PUT", ns + "/a", form={"refresh": "true", "value": "x",
                                        "ttl": "5"})
    assert j(r) == {"errorCode": 211, "message": "Value provided on refresh",
                    "cause": "A value was provided on a refresh", "index": 0}
    r = kv.req("PUT", ns + "/a", form={"refresh": "true"})
    assert j(r) == {"errorCode": 212,
                    "message": "A TTL must be provided on refresh",
                    "cause": "No TTL value set", "index": 0}
    r = kv.req("PUT", ns + "/missing", form={"refresh": "true", "ttl": "5"})
    assert r.status == 404


def test_keys_refresh_wakes_no_watcher(kv, ns):
    n = j(kv.put(ns + "/a", "1", ttl=100))["node"]
    c = httpraw.Conn(kv.port, timeout=5)
    c.send(httpraw.build_request("GET", kv.url(ns + "/a", {"wait": "true"})))
    assert c.read_head().status == 200
    kv.req("PUT", ns + "/a", form={"refresh": "true", "ttl": "200",
                                    "prevExist": "true"})
    c.settimeout(0.5)
    with pytest.raises((TimeoutError, OSError)):
        c.read_chunk()
    c.close()
    assert n


# --------------------------------------------------------- path handling

def test_keys_percent_decoding_and_slash_split(kv, ns):
    r = kv.req("PUT", ns.lstrip("/") + "/sp%20ace/x%2Fy",
               form={"value": "1"}, raw=True)
    assert r.status == 201
    assert j(r)["node"]["key"] == ns + "/sp ace/x/y"
    assert j(kv.get(ns + "/sp ace/x/y"))["node"]["value"] == "1"


def test_keys_unicode_key(kv, ns):
    r = kv.put(ns + "/\u00fcn\u00efc\u00f8de\u2603", "snow")
    assert r.status == 201
    assert j(r)["node"]["key"] == ns + "/\u00fcn\u00efc\u00f8de\u2603"
    assert j(kv.get(ns + "/\u00fcn\u00efc\u00f8de\u2603"))["node"]["value"] \
        == "snow"


def test_keys_trailing_slash_ignored(kv, ns):
    kv.put(ns + "/a", "1")
    r = kv.req("GET", ns.lstrip("/") + "/a/", raw=True)
    assert r.status == 200 and j(r)["node"]["key"] == ns + "/a"


@pytest.mark.parametrize("path,clean", [
    ("x//y", "x/y"), ("x/./y", "x/y"), ("x/z/../y", "x/y"),
    ("./x", "x"), ("x/y/.", "x/y")])
def test_keys_unclean_path_301(kv, ns, path, clean):
    p = ns.lstrip("/") + "/" + path
    i = kv.index()
    r = kv.req("PUT", p + "?value=1", raw=True)
    assert r.status == 301
    loc = r.header("Location")
    assert loc.endswith("/v2/keys/" + ns.lstrip("/") + "/" + clean +
                        "?value=1"), loc
    assert kv.index() == i  # nothing stored
    r = kv.req("GET", p, raw=True)
    assert r.status == 301


def test_keys_deep_path(kv, ns):
    key = ns + "/" + "/".join("l%d" % i for i in range(60))
    assert kv.put(key, "deep").status == 201
    assert j(kv.get(key))["node"]["value"] == "deep"
    r = j(kv.get(ns, recursive="true"))
    depth, n = 0, r["node"]
    while "nodes" in n:
        n = n["nodes"][0]
        depth += 1
    assert depth == 60 and n["value"] == "deep"


# ------------------------------------------------------ parameter errors

@pytest.mark.parametrize("params,code,cause", [
    ({"recursive": "abc"}, 209, 'invalid value for "recursive"'),
    ({"sorted": "abc"}, 209, 'invalid value for "sorted"'),
    ({"wait": "abc"}, 209, 'invalid value for "wait"'),
    ({"quorum": "abc"}, 209, 'invalid value for "quorum"'),
    ({"wait": "true", "waitIndex": "abc"}, 203,
     'invalid value for "waitIndex"'),
])
def test_keys_get_param_errors(kv, ns, params, code, cause):
    r = kv.get(ns + "/a", **params)
    assert r.status == 400
    b = j(r)
    assert (b["errorCode"], b["cause"], b["index"]) == (code, cause, 0)
    assert r.header("X-Etcd-Index") == "0"


def test_keys_wait_on_put_is_209(kv, ns):
    r = kv.req("PUT", ns + "/a", query={"wait": "true"}, form={"value": "1"})
    assert r.status == 400
    assert j(r)["errorCode"] == 209
    assert j(r)["cause"] == '"wait" can only be used with GET requests'


def test_keys_quorum_get(kv, ns):
    kv.put(ns + "/a", "1")
    r = kv.get(ns + "/a", quorum="true")
    assert r.status == 200 and j(r)["node"]["value"] == "1"


def test_keys_405_with_allow(kv, ns):
    for m in ("PATCH", "TRACE", "FOO"):
        r = kv.req(m, ns + "/a")
        assert r.status == 405, m
        assert r.header("Allow") == "HEAD,GET,PUT,POST,DELETE"
        assert r.header("Content-Type").startswith("text/plain")
        assert r.body == b"Method Not Allowed\n"
