"""The differential engine: the same v2 requests to two servers, answers
compared after normalisation.

Normalisation (and why):
  * Absolute store indexes differ: etcd's v2 store has taken a few indexes at
    boot (member attributes, cluster version under its internal /0 tree)
    before the first client write. Each side's base is the modifiedIndex of
    one write made before the sequence starts; every index seen (node
    modifiedIndex/createdIndex, error "index", X-Etcd-Index, the 20-digit
    in-order key names, the numbers in the causes of errors 101 and 401) is
    replaced by index - base. Index 0 (parameter errors, answered before the
    store is touched) stays the literal "Z".  Index parameters sent (prevIndex,
    waitIndex) are generated relative and turned absolute per side.
  * X-Raft-Index / X-Raft-Term / X-Etcd-Cluster-Id values are per cluster:
    only their presence is compared.
  * Time: "expiration" is compared as present/absent; "ttl" within +-1 s.
    The sequence uses TTLs of 100 s or more so nothing expires during a run,
    except ttl=0 (expires at once), after which the runner waits until both
    sides have expired the key.
  * Children of a directory come in map order in etcd unless sorted=true:
    without sorted=true they are sorted by key before comparing; with it the
    order is compared as sent.
  * Location of a 301 and the 301 body are compared after removing the
    scheme://host:port of each side.

Env (for test_differential.py):
  CAIRN_DIFF_MODE=etcd   etcd against etcd (proves the normalisation sound)
  CAIRN_DIFF_SEEDS=1,2   the seeds; CAIRN_DIFF_OPS=N ops per seed
"""

import hashlib
import json
import os
import random
import re
import socket
import tempfile
import time
import urllib.parse

from pylib import httpraw

# CAIRN_TIME_SCALE multiplies every wait (e.g. 3 for a sanitizer build)
TIME_SCALE = float(os.environ.get("CAIRN_TIME_SCALE", "1"))
IDX20 = re.compile(r"/(\d{20})(?=[/?&\"<]|$)")


class Mismatch(AssertionError):
    pass


# ---------------------------------------------------------------- requests

def quote_component(rng, name):
    """Percent-encode a key component in one of several equivalent ways."""
    style = rng.random()
    if style < 0.6:
        return urllib.parse.quote(name, safe="")
    if style < 0.8:  # encode every byte
        return "".join("%%%02X" % b for b in name.encode("utf-8"))
    # minimal: only what must be encoded in a request target
    return urllib.parse.quote(name, safe="!$'()*,;:@=&+~")


class Gen:
    """Seeded random v2 requests. Feedback from the answers (current index,
    recent modifiedIndexes, created in-order keys) steers it towards requests
    that succeed as well as fail; the feedback is itself compared, so a run
    is reproducible from the seed while both servers agree."""

    NAMES = ["a", "b", "c", "d", "dir", "x", "_hid", "sp ace", "\u00fcni",
             "\u2603", "q", "plus+sign", "amp&eq=", "pct%", "n1", "n2",
             "what?", "hash#", "semi;colon", "..", ".", "a.b", "~t"]
    VALUES = ["v1", "v2", "", "hello world", "a&b=c+d%e", "\u00e9\u2603",
              "v1", "v2", "0"]

    FEATURES = ("odd-methods", "bad-escapes", "live", "burst", "ttl0",
                "big-values", "hidden", "unclean-paths", "raw-bytes",
                "long-urls", "param-edges", "unknown-method")

    def __init__(self, seed, disabled=None):
        self.rng = random.Random(seed)
        if disabled is None:
            disabled = [x for x in os.environ.get(
                "CAIRN_DIFF_DISABLE", "").split(",") if x]
        for d in disabled:
            if d not in self.FEATURES:
                raise ValueError("unknown CAIRN_DIFF_DISABLE feature %r (%s)"
                                 % (d, ", ".join(self.FEATURES)))
        self.off = set(disabled)
        self.cur = 0  # current relative index
        self.recent = [0]  # recent relative modifiedIndexes
        self.paths = ["a", "b", "dir/x", "dir/y"]  # paths written before
        self.ordered = False  # an in-order key exists
        self.written = {}  # decoded key -> relative index of its last write
        self.leaves = {}  # decoded key -> (value, relative modifiedIndex)

    # -- feedback
    def saw(self, norm):
        x = norm.get("xindex")
        if isinstance(x, int) and x > self.cur:
            self.cur = x
        body = norm.get("body")
        if isinstance(body, dict):
            for n in (body.get("node"), body.get("prevNode")):
                if isinstance(n, dict) and isinstance(n.get("modifiedIndex"),
                                                      int):
                    self.recent.append(n["modifiedIndex"])
            self.recent = self.recent[-20:]
            node = body.get("node")
            if isinstance(node, dict):
                key = str(node.get("key", ""))
                if body.get("action") == "create" and "<ord" in key:
                    self.ordered = True
                mi = node.get("modifiedIndex")
                if "<ord" not in key and key.startswith("/") and \
                        isinstance(mi, int) and body.get("action") != "get":
                    self.written[key] = mi
                    if "delete" in body.get("action", "").lower() or \
                            "value" not in node:
                        self.leaves.pop(key, None)
                    else:
                        self.leaves[key] = (node["value"], mi)

    # -- pieces
    def name(self):
        r = self.rng
        if r.random() < 0.03:
            if "raw-bytes" in self.off:
                return "x%2Fy"
            return "%FF" if r.random() < 0.5 else "x%2Fy"
        n = r.choice(self.NAMES)
        if "hidden" in self.off and n.startswith("_"):
            n = n[1:]
        return n

    def key_path(self):
        """A key path, percent-encoded in one of several ways, sometimes
        unclean (301) or badly escaped (400)."""
        r = self.rng
        if r.random() < 0.5 and self.paths:
            comps = self.rng.choice(self.paths).split("/")
        else:
            depth = r.choice([1, 1, 1, 2, 2, 3, 4])
            if r.random() < 0.02:
                depth = r.randint(10, 40)
            comps = [self.name() for _ in range(depth)]
        enc = []
        for c in comps:
            if c.startswith("%") or c == "x%2Fy":
                enc.append(c)
            else:
                enc.append(quote_component(r, c))
        if self.ordered and r.random() < 0.08:
            enc = ["q", "{ORD}"]
        if r.random() < 0.03:
            enc = []  # the root
        p = "/".join(enc)
        x = r.random()
        if "unclean-paths" in self.off and x < 0.08 and not 0.05 <= x < 0.075:
            x = 1
        if "bad-escapes" in self.off and 0.07 <= x < 0.075:
            x = 1
        if x < 0.02:
            p = p.replace("/", "//", 1) if "/" in p else "/" + p
        elif x < 0.03:
            p = "./" + p
        elif x < 0.04:
            p = "zz/../" + p
        elif x < 0.05:
            p = p + "/."
        elif x < 0.07:
            p = p + "/"
        elif x < 0.075:
            p = p + "%zz"  # invalid escape: 400 from the HTTP layer
        elif x < 0.08:
            p = p.replace("/", "%2F%2F", 1) if "/" in p else p
        return p

    def value(self):
        r = self.rng
        x = r.random()
        if x < 0.03 and "big-values" not in self.off:
            return "L" * r.randint(1000, 100 * 1024)
        if x < 0.05 and "raw-bytes" not in self.off:
            return "\u00ff\u0000\x01 nul"
        return r.choice(self.VALUES)

    def idx(self):
        """An index parameter: relative (resolved per side) or literal."""
        r = self.rng
        x = r.random()
        if x < 0.6:
            return {"rel": r.choice(self.recent)}
        if x < 0.7:
            return {"rel": max(1, self.cur - r.randint(0, 5))}
        if x < 0.8:
            return "0"
        return r.choice(["abc", "-1", "", "1.5", "99999999999999999999",
                         " 3", "0x10"])

    def ttl(self):
        r = self.rng
        x = r.random()
        if x < 0.6:
            return str(r.randint(100, 5000))
        if x < 0.64:
            return "0" if "ttl0" not in self.off else "100"
        return r.choice(["-1", "abc", "", "1.5", " 100", "100 ",
                         "99999999999999999999", "+100", "0100"])

    def boolish(self, good=0.85):
        r = self.rng
        if r.random() < good:
            return r.choice(["true", "false"])
        return r.choice(["garbage", "", "TRUE", "1", "t", "yes"])

    def cas_op(self, m):
        """Compare-and-swap/delete on a file known to exist, mostly with
        the right prevValue/prevIndex."""
        r = self.rng
        key = r.choice(sorted(self.leaves))
        value, mi = self.leaves[key]
        params = []
        x = r.random()
        if x < 0.7:
            params.append(("prevValue", value if r.random() < 0.8
                           else r.choice(self.VALUES)))
        if x > 0.4:
            params.append(("prevIndex", {"rel": mi} if r.random() < 0.8
                           else self.idx()))
        if m == "PUT":
            params.append(("value", self.value()))
            if r.random() < 0.2:
                params.append(("ttl", self.ttl()))
            if r.random() < 0.1:
                params.append(("prevExist", self.boolish()))
        if r.random() < 0.05:
            params.append(("noValueOnSuccess", "true"))
        r.shuffle(params)
        path = urllib.parse.quote(key.lstrip("/"))
        if r.random() < 0.5 or ("long-urls" in self.off and any(
                len(str(v)) > 2000 for _, v in params)):
            return {"m": m, "p": path, "q": [], "f": params}
        return {"m": m, "p": path, "q": params, "f": None}

    def live_op(self):
        """A watch that waits (no waitIndex), then writes that may wake it:
        the runner reads the watch headers first (sent when the watch
        starts), performs the triggers, then reads the event(s)."""
        r = self.rng
        if self.written and r.random() < 0.7:
            key = r.choice(sorted(self.written)).lstrip("/")
        else:
            key = "/".join(r.choice(self.NAMES)
                           for _ in range(r.choice([1, 1, 2])))
        rec = r.random() < 0.5
        stream = r.random() < 0.25
        q = [("wait", "true")]
        if rec:
            q.append(("recursive", "true"))
        if stream:
            q.append(("stream", "true"))
        if r.random() < 0.2:
            q.append(("waitIndex", {"rel": self.cur + 1}))
        triggers = []
        for _ in range(2 if stream else 1):
            x = r.random()
            t = key
            if rec and x < 0.5:
                t = key + "/" + r.choice(self.NAMES)
            f = [("value", self.value())]
            m = "PUT"
            if x > 0.97:
                t = "elsewhere"  # no event for this watch
            elif x > 0.85:
                m, f = "DELETE", [("recursive", "true")]
            elif x > 0.75:
                f.append(("ttl", str(r.randint(100, 1000))))
            elif x > 0.7:
                f = [("ttl", "500"), ("refresh", "true"),
                     ("prevExist", "true")]  # no event: refresh
            triggers.append({"m": m, "p": urllib.parse.quote(t), "q": [],
                             "f": f})
        return {"m": "GET", "p": urllib.parse.quote(key), "q": q,
                "f": None, "live": triggers}

    # -- ops
    def op(self):
        r = self.rng
        m = r.choices(["PUT", "GET", "DELETE", "POST", "WAIT", "HEAD",
                       "OTHER", "LIVE", "BURST"],
                      [40, 22, 14, 8, 8, 2, 1, 3, 0.15])[0]
        if m == "LIVE":
            return self.live_op()
        if m == "BURST":
            # enough writes to push earlier events out of the 1000-event
            # history, so old waitIndexes meet error 401
            return {"m": "PUT", "p": "burst", "q": [],
                    "f": [("value", "b")], "repeat": r.randint(200, 1100)}
        if m == "OTHER" and "odd-methods" in self.off:
            m = "GET"
        if m == "LIVE" and "live" in self.off:
            m = "GET"
        if m == "BURST" and "burst" in self.off:
            m = "GET"
        if m == "OTHER":
            m = r.choice(["PATCH", "OPTIONS", "TRACE", "FOO"])
            if m == "FOO" and "unknown-method" in self.off:
                m = "PATCH"
            return {"m": m, "p": self.key_path(), "q": [], "f": None}
        if m in ("PUT", "DELETE") and self.leaves and r.random() < 0.3:
            return self.cas_op(m)
        path = self.key_path()
        params = []
        if m in ("PUT", "POST"):
            if r.random() < 0.85:
                params.append(("value", self.value()))
            if r.random() < 0.25:
                params.append(("ttl", self.ttl()))
            if m == "PUT":
                if r.random() < 0.15:
                    params.append(("dir", self.boolish()))
                if r.random() < 0.2:
                    params.append(("prevExist", self.boolish()))
                if r.random() < 0.15:
                    params.append(("prevValue", r.choice(self.VALUES)))
                if r.random() < 0.15:
                    params.append(("prevIndex", self.idx()))
                if r.random() < 0.08:
                    params.append(("refresh", self.boolish()))
            if r.random() < 0.08:
                params.append(("noValueOnSuccess", self.boolish()))
            if path and "%" not in path and r.random() < 0.5 and \
                    "{" not in path and \
                    not path.endswith("/") and "//" not in path and \
                    "." not in path:
                self.paths.append(urllib.parse.unquote(path))
                self.paths = self.paths[-30:]
        elif m == "DELETE":
            if r.random() < 0.3:
                params.append(("recursive", self.boolish()))
            if r.random() < 0.2:
                params.append(("dir", self.boolish()))
            if r.random() < 0.15:
                params.append(("prevValue", r.choice(self.VALUES)))
            if r.random() < 0.15:
                params.append(("prevIndex", self.idx()))
            if r.random() < 0.08:
                params.append(("prevExist", self.boolish()))
            if r.random() < 0.05:
                params.append(("noValueOnSuccess", self.boolish()))
        elif m in ("GET", "HEAD"):
            if r.random() < 0.4:
                params.append(("recursive", self.boolish()))
            if r.random() < 0.3:
                params.append(("sorted", self.boolish()))
            if r.random() < 0.15:
                params.append(("quorum", self.boolish()))
            if r.random() < 0.03:
                params.append(("waitIndex", self.idx()))
            if r.random() < 0.03:
                params.append(("stream", "true"))
        elif m == "WAIT":
            m = "GET"
            # a watch that answers at once: root or a written key, from an
            # index at or below the current one (the runner bounds the wait
            # in case nothing matches)
            hi = self.cur
            if r.random() < 0.5 or not self.written:
                path = ""
                params.append(("recursive", "true"))
            else:
                key = r.choice(sorted(self.written))
                hi = self.written[key]
                path = urllib.parse.quote(key.lstrip("/"))
                if r.random() < 0.3:
                    params.append(("recursive", self.boolish()))
            params.append(("wait", "true"))
            x = r.random()
            if x < 0.9:
                lo = max(1, hi - 1200)
                params.append(("waitIndex", {"rel": r.randint(lo, max(
                    lo, hi))}))
            else:
                params.append(("waitIndex", r.choice(["abc", "-1", "",
                                                      "1.5"])))
            if r.random() < 0.1:
                params.append(("sorted", "true"))
        if r.random() < 0.5 and m in ("PUT", "POST", "DELETE"):
            # the whole form in the body, or split with the query string
            form, query = [], []
            for kv in params:
                (form if r.random() < 0.8 else query).append(kv)
            if any(len(str(v)) > 2000 for _, v in query):
                form, query = params, []
        else:
            form, query = None, params
            if any(len(str(v)) > 2000 for _, v in query):
                form, query = params, []
        if form is not None and m == "GET":
            form = None
        op = {"m": m, "p": path, "q": query, "f": form}
        if "param-edges" not in self.off and r.random() < 0.06:
            self.param_edges(op)
        return op

    def param_edges(self, op):
        """Repeated names, names without "=", odd Content-Types."""
        r = self.rng
        x = r.random()
        target = op["f"] if op["f"] is not None and r.random() < 0.5 \
            else op["q"]
        if x < 0.3 and target:
            k, _ = r.choice(target)
            target.append((k, r.choice(["true", "false", "", "v9", "abc"])))
        elif x < 0.5:
            target.append((r.choice(["recursive", "sorted", "dir", "value",
                                     "prevExist", "wait", "ttl"]), None))
        elif x < 0.6:
            target.append((r.choice(["Value", "VALUE", "bogus", "ttl "]),
                           "x"))
        elif op["f"] is not None:
            op["ct"] = r.choice([
                "", "text/plain", "application/json",
                "application/x-www-form-urlencoded; charset=utf-8",
                "APPLICATION/X-WWW-FORM-URLENCODED", "multipart/form-data"])


# ---------------------------------------------------------------- sides

class Side:
    """One server as seen by the runner."""

    def __init__(self, server, label):
        self.server = server
        self.label = label
        self.port = server.client_port
        self.conn = None
        self.base = None
        self.ord_key = "00000000000000000000"

    def connect(self):
        if self.conn is not None:
            self.conn.close()
        self.conn = httpraw.Conn(self.port, timeout=10)

    def init(self):
        """A first write sets the base: every index is taken relative to
        its modifiedIndex."""
        self.connect()
        r = self.conn.request("PUT", "/v2/keys/_diff_base",
                              form={"value": "base"})
        if r.status not in (200, 201):
            raise Mismatch("%s: initial write failed: %r" % (self.label, r))
        self.base = r.json()["node"]["modifiedIndex"]

    def resolve(self, v):
        if isinstance(v, dict):
            return str(self.base + v["rel"])
        return v

    def target(self, op):
        p = op["p"].replace("{ORD}", self.ord_key)
        u = "/v2/keys/" + p
        if op["q"]:
            u += "?" + httpraw.encode_form(
                [(k, self.resolve(v)) for k, v in op["q"]])
        return u

    def send(self, op, wait_timeout):
        body = None
        headers = None
        if op["f"] is not None:
            body = httpraw.encode_form(
                [(k, self.resolve(v)) for k, v in op["f"]])
            ct = op.get("ct", "application/x-www-form-urlencoded")
            headers = [("Content-Type", ct)] if ct else []
        if self.conn is None:
            self.connect()
        waits = any(k == "wait" for k, _ in op["q"])
        self.conn.settimeout(wait_timeout if waits else 10)
        req = httpraw.build_request(op["m"], self.target(op), headers, body,
                                    "127.0.0.1:%d" % self.port)
        try:
            self.conn.send(req)
            resp = self.conn.read_head()
            if any(k == "stream" for k, _ in op["q"]) and waits:
                # one event of a stream, then drop the connection
                c = self.conn.read_chunk()
                resp.body = c
                self.conn.close()
                self.conn = None
                return resp
            self.conn.read_body(resp, op["m"])
        except (socket.timeout, TimeoutError):
            self.conn.close()
            self.conn = None
            return "TIMEOUT"
        except (httpraw.HTTPError, OSError) as e:
            self.conn.close()
            self.conn = None
            return "CONNECTION: %s" % type(e).__name__
        if (resp.header("connection") or "").lower() == "close":
            self.conn.close()
            self.conn = None
        if op["m"] == "POST" and resp.status == 201:
            try:
                key = resp.json()["node"]["key"]
                self.ord_key = key.rsplit("/", 1)[1]
            except (ValueError, KeyError, IndexError):
                pass
        return resp

    def open_watch(self, op):
        """Send a waiting watch on its own connection and read its head."""
        c = httpraw.Conn(self.port, timeout=3)
        c.send(httpraw.build_request("GET", self.target(op), None, None,
                                     "127.0.0.1:%d" % self.port))
        try:
            return c, c.read_head()
        except (socket.timeout, TimeoutError):
            c.close()
            return None, "TIMEOUT (no headers)"
        except (httpraw.HTTPError, OSError) as e:
            c.close()
            return None, "CONNECTION: %s" % type(e).__name__

    def read_watch(self, c, head, stream, n_events, timeout):
        """The watch's event(s); a timeout leaves what arrived so far."""
        if c is None:
            return head
        c.settimeout(timeout)
        body = b""
        try:
            if head.status != 200 or not stream:
                c.read_body(head, "GET")
                body = head.body
            else:
                while body.count(b"\n") < n_events:
                    chunk = c.read_chunk()
                    if not chunk:
                        break
                    body += chunk
        except (socket.timeout, TimeoutError):
            body += b"<TIMEOUT>"
        except (httpraw.HTTPError, OSError) as e:
            body += ("<CONNECTION: %s>" % type(e).__name__).encode()
        finally:
            c.close()
        head.body = body
        return head

    # -- normalisation
    def nidx(self, i):
        if not isinstance(i, int) or isinstance(i, bool):
            return i
        if i == 0:
            return "Z"
        return i - self.base

    def nkey(self, key):
        if not isinstance(key, str):
            return key
        return IDX20.sub(lambda m: "/<ord%d>" % (int(m.group(1)) - self.base),
                         key)

    def nurl(self, op, text):
        """A redirect's URL: in-order names, and the index parameters the
        op sent relative (given back as they were generated)."""
        text = self.nkey(text)
        for k, v in op["q"]:
            if isinstance(v, dict):
                text = re.sub(r"\b%s=%d(?=[&\"]|$)" % (k, self.base + v["rel"]),
                              "%s={rel %d}" % (k, v["rel"]), text)
        return text

    def nnode(self, n, sort_children):
        if not isinstance(n, dict):
            return n
        out = {}
        for k, v in n.items():
            if k in ("modifiedIndex", "createdIndex"):
                out[k] = self.nidx(v)
            elif k == "key":
                out[k] = self.nkey(v)
            elif k == "expiration":
                out[k] = "<time>" if isinstance(v, str) else v
            elif k == "nodes" and isinstance(v, list):
                kids = [self.nnode(c, sort_children) for c in v]
                if sort_children:
                    # keys can tie: invalid UTF-8 bytes all print as U+FFFD
                    kids.sort(key=lambda c: (str(c.get("key")), json.dumps(
                        c, sort_keys=True)))
                out[k] = kids
            else:
                out[k] = v
        return out

    def ncause(self, code, cause):
        if not isinstance(cause, str):
            return cause
        if code == 101:
            def sub(m):
                return "[%s != %s]" % (self.nidx(int(m.group(1))),
                                       self.nidx(int(m.group(2))))
            return re.sub(r"\[(\d+) != (\d+)\]$", sub, cause)
        if code == 401:
            def sub2(m):
                return "[%s/%s]" % (self.nidx(int(m.group(1))),
                                    self.nidx(int(m.group(2))))
            return re.sub(r"\[(\d+)/(\d+)\]", sub2, cause)
        return self.nkey(cause)

    def normalise(self, op, resp):
        if isinstance(resp, str):
            return {"outcome": resp}
        hostport = "http://127.0.0.1:%d" % self.port
        sorted_asked = any(k == "sorted" and v == "true" for k, v in op["q"])
        n = {"status": resp.status}
        for h in ("content-type", "allow", "access-control-allow-origin",
                  "access-control-allow-methods",
                  "access-control-allow-headers"):
            if resp.header(h) is not None:
                n[h] = resp.header(h)
        for h in ("x-raft-index", "x-raft-term", "x-etcd-cluster-id"):
            n[h] = resp.header(h) is not None
        x = resp.header("x-etcd-index")
        if x is not None:
            try:
                n["xindex"] = self.nidx(int(x))
            except ValueError:
                n["xindex"] = x
        loc = resp.header("location")
        if loc is not None:
            n["location"] = self.nurl(op, loc.replace(hostport, ""))
        ct = resp.header("content-type") or ""
        body = resp.body
        if "json" in ct and body.strip():
            text = body.decode("utf-8", "replace")
            lines = [x for x in text.split("\n") if x.strip()]
            if len(lines) > 1 or "<TIMEOUT>" in text or "<CONN" in text:
                n["body"] = [self.njson(x, sorted_asked) for x in lines]
            else:
                n["body"] = self.njson(text, sorted_asked)
        else:
            n["body"] = body.decode("utf-8", "replace").replace(
                hostport, "")
            n["body"] = self.nurl(op, n["body"])
        return n

    def njson(self, text, sorted_asked):
        return squeeze(self.njson1(text, sorted_asked))

    def njson1(self, text, sorted_asked):
        try:
            j = json.loads(text)
        except ValueError:
            return "<not json> %r" % text[:200]
        if isinstance(j, dict) and "errorCode" in j:
            j = dict(j)
            j["index"] = self.nidx(j.get("index"))
            j["cause"] = self.ncause(j.get("errorCode"), j.get("cause"))
        elif isinstance(j, dict):
            j = dict(j)
            for k in ("node", "prevNode"):
                if k in j:
                    j[k] = self.nnode(j[k], not sorted_asked)
        return j


# ---------------------------------------------------------------- compare

def squeeze(v):
    """Long strings become "<N chars sha1:...>" so answers stay readable."""
    if isinstance(v, str) and len(v) > 200:
        return "%s...<%d chars sha1:%s>" % (
            v[:20], len(v),
            hashlib.sha1(v.encode("utf-8", "surrogatepass")).hexdigest()[:12])
    if isinstance(v, dict):
        return {k: squeeze(x) for k, x in v.items()}
    if isinstance(v, list):
        return [squeeze(x) for x in v]
    return v


def diff(a, b, path="$"):
    """First difference between two normalised answers, or None. ttl
    values may differ by one second."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s: %s vs %s" % (path, k,
                                            json.dumps(a.get(k, "<absent>")),
                                            json.dumps(b.get(k, "<absent>")))
            if k == "ttl" and isinstance(a[k], int) and \
                    isinstance(b[k], int) and abs(a[k] - b[k]) <= 1:
                continue
            d = diff(a[k], b[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return "%s: %d vs %d items" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    if a != b or type(a) is not type(b):
        return "%s: %s vs %s" % (path, json.dumps(a)[:300],
                                 json.dumps(b)[:300])
    return None


def short(v, n=60):
    s = v if isinstance(v, str) else json.dumps(v)
    return s if len(s) <= n else s[:n] + "...(%d chars)" % len(s)


def op_text(op):
    """One line, curl-like, for the reproduction listing."""
    q = "&".join("%s=%s" % (k, short(v)) for k, v in op["q"])
    s = "%s /v2/keys/%s%s" % (op["m"], op["p"], ("?" + q) if q else "")
    if op["f"] is not None:
        s += "  body: " + "&".join("%s=%s" % (k, short(v))
                                   for k, v in op["f"])
    if "ct" in op:
        s += "  (Content-Type: %r)" % op["ct"]
    if op.get("repeat"):
        s += "  (x%d)" % op["repeat"]
    for t in op.get("live", []):
        s += "\n         then, while it waits: " + op_text(t)
    return s


def ttl_zero_written(op, norm):
    """A successful write with ttl=0: the key expires right away."""
    params = list(op["q"]) + list(op["f"] or [])
    return any(k == "ttl" and v == "0" for k, v in params) and \
        norm.get("status") in (200, 201) and isinstance(norm.get("body"),
                                                        dict)


def wait_expired(sides, rel_index, timeout=5.0):
    """Until every side's store index reaches rel_index (the expiry of a
    key written with ttl=0 takes the index after its write)."""
    deadline = time.monotonic() + timeout
    for s in sides:
        while time.monotonic() < deadline:
            r = httpraw.request(s.port, "GET", "/v2/keys/")
            if s.nidx(int(r.header("X-Etcd-Index"))) >= rel_index:
                break
            time.sleep(0.05)


def send_both(a, b, op, wait_timeout):
    """The op to A, then to B. A watch that timed out on one side only is
    asked again there with a long timeout: a watch with a waitIndex reads
    history and changes nothing, and a slow server (ASan, a loaded machine)
    must not look like a wrong one."""
    wait_timeout *= TIME_SCALE
    ra = a.send(op, wait_timeout)
    rb = b.send(op, wait_timeout)
    if (ra == "TIMEOUT") != (rb == "TIMEOUT") and \
            any(k == "waitIndex" for k, _ in op["q"]):
        if ra == "TIMEOUT":
            ra = a.send(op, 5 * TIME_SCALE)
        else:
            rb = b.send(op, 5 * TIME_SCALE)
    return ra, rb


def run_seed(server_a, server_b, seed, n_ops, wait_timeout=0.2):
    """Run n_ops generated ops of seed on both servers; raise Mismatch with
    a reproduction on the first difference. Returns counters."""
    a = Side(server_a, "A:" + server_a.kind)
    b = Side(server_b, "B:" + server_b.kind)
    gen = Gen(seed)
    done = []
    stats = {"ops": 0, "timeouts": 0, "status": {}, "codes": {}}
    try:
        a.init()
        b.init()
        stats0 = (store_stats(a), store_stats(b))
        for i in range(n_ops):
            op = gen.op()
            done.append(op)
            if "live" in op:
                na, nb = run_live(op, a, b, gen, seed, i, done)
            else:
                for _ in range(op.get("repeat", 1)):
                    ra, rb = send_both(a, b, op, wait_timeout)
                na, nb = a.normalise(op, ra), b.normalise(op, rb)
            d = diff(na, nb)
            if d:
                raise Mismatch(report(seed, i, op, done, na, nb, d, a, b))
            gen.saw(na)
            stats["ops"] += 1
            st = na.get("status", na.get("outcome"))
            stats["status"][st] = stats["status"].get(st, 0) + 1
            body = na.get("body")
            if isinstance(body, dict):
                c = body.get("errorCode", body.get("action"))
                stats["codes"][c] = stats["codes"].get(c, 0) + 1
            if na.get("outcome") == "TIMEOUT":
                stats["timeouts"] += 1
            if ttl_zero_written(op, na) and isinstance(na.get("xindex"), int):
                wait_expired([a, b], na["xindex"] + 1)
        d = stats_delta_diff(stats0, (store_stats(a), store_stats(b)))
        if d:
            raise Mismatch("after all %d ops of seed %d, /v2/stats/store "
                           "counters moved differently: %s\nreproduce: "
                           "CAIRN_DIFF_SEEDS=%d CAIRN_DIFF_OPS=%d" % (
                               n_ops, seed, d, seed, n_ops))
    finally:
        for s in (a, b):
            if s.conn:
                s.conn.close()
    return stats


# Reads are left out: the harness itself polls with GETs a different
# number of times on each side (readiness, ttl=0 expiry).
STATS_IGNORED = ("getsSuccess", "getsFail", "watchers")


def store_stats(side):
    r = httpraw.request(side.port, "GET", "/v2/stats/store")
    return r.json()


def stats_delta_diff(before, after):
    """Counters whose change over the run differs between the sides."""
    out = []
    keys = sorted(set(before[0]) | set(before[1]) | set(after[0]) |
                  set(after[1]))
    for k in keys:
        if k in STATS_IGNORED:
            continue
        da = after[0].get(k, 0) - before[0].get(k, 0)
        db = after[1].get(k, 0) - before[1].get(k, 0)
        if da != db:
            out.append("%s: +%d vs +%d" % (k, da, db))
    return ", ".join(out)


def run_live(op, a, b, gen, seed, i, done):
    """A waiting watch on both sides, its triggers, then its events."""
    stream = any(k == "stream" for k, _ in op["q"])
    ca, ha = a.open_watch(op)
    cb, hb = b.open_watch(op)
    expected = 0
    for t in op["live"]:
        ra, rb = a.send(t, 1), b.send(t, 1)
        na, nb = a.normalise(t, ra), b.normalise(t, rb)
        d = diff(na, nb)
        if d:
            raise Mismatch(report(seed, i, t, done, na, nb,
                                  "(trigger of a live watch) " + d, a, b))
        gen.saw(na)
        if na.get("status") in (200, 201) and \
                not any(k == "refresh" for k, _ in t["f"] or []) and \
                t["p"] != "elsewhere" and "/_" not in t["p"][len(op["p"]):]:
            expected += 1
    # Wait long for events that should come, briefly for ones that should
    # not; the second side gets less, having waited while the first read.
    n = expected if stream else 1
    ta, tb = (1.0, 0.3) if expected else (0.05, 0.02)
    ta, tb = ta * TIME_SCALE, tb * TIME_SCALE
    ra = a.read_watch(ca, ha, stream, n, ta)
    rb = b.read_watch(cb, hb, stream, n, tb)
    return a.normalise(op, ra), b.normalise(op, rb)


def report(seed, i, op, done, na, nb, d, a, b):
    lines = ["DIFFERENCE at op %d of seed %d: %s" % (i, seed, d),
             "op: %s" % op_text(op),
             "%s said: %s" % (a.label, json.dumps(na, ensure_ascii=False,
                                                  sort_keys=True)[:3000]),
             "%s said: %s" % (b.label, json.dumps(nb, ensure_ascii=False,
                                                  sort_keys=True)[:3000]),
             ("reproduce: CAIRN_DIFF_SEEDS=%d CAIRN_DIFF_OPS=%d "
              "/usr/bin/python3 -m pytest tests/compat/test_differential.py"
              % (seed, i + 1)) if seed >= 0 else "(an explicit case)",
             "ops (indexes relative to the first write, {ORD} = last in-order"
             " key), last 40 of %d:" % len(done)]
    try:
        fd, path = tempfile.mkstemp(prefix="cairn-diff-%d-" % seed,
                                    suffix=".jsonl")
        with os.fdopen(fd, "w") as f:
            for o in done:
                f.write(json.dumps(o, ensure_ascii=False) + "\n")
        lines.append("all %d ops, one JSON object a line: %s" % (len(done),
                                                                 path))
    except OSError:
        pass
    start = max(0, len(done) - 40)
    for j, o in enumerate(done[start:], start):
        lines.append("  %4d %s" % (j, op_text(o)))
    return "\n".join(lines)


def compare_ops(a, b, ops, wait_timeout=0.5):
    """Send each op to both initialised Sides and compare, as run_seed does;
    for small explicit cases. Returns the normalised answers of side a."""
    out = []
    ops = [dict({"q": [], "f": None}, **op) for op in ops]
    for i, op in enumerate(ops):
        ra, rb = send_both(a, b, op, wait_timeout)
        na, nb = a.normalise(op, ra), b.normalise(op, rb)
        d = diff(na, nb)
        if d:
            raise Mismatch(report(-1, i, op, ops[:i + 1], na, nb, d, a, b))
        out.append(na)
    return out
