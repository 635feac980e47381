"""Helpers of the cairnctl process tests: run etcdctl (ETCDCTL_API=2) and
cairnctl against one server, normalise what legitimately differs, wipe the
key space between runs.

Normalisation (and why):
  * Store indexes: each run starts after a write of the hidden key
    /_cli_base whose modifiedIndex is the run's base B; every index >= B
    printed (Created-Index, Modified-Index, Index, "index", the [N] of error
    lines, 20-digit in-order key names, numbers in "Compare failed" causes)
    becomes "i<n-B>". The two runs make the same writes, so the relative
    indexes must agree exactly.
  * Time: "expiration" values become EXP; non-zero TTLs become T (a second
    may pass between the write and the read).
  * Program names (help and usage pages) are not compared: for usage errors
    only the first stdout line, stderr and the exit code are.
"""

import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
ETCDCTL = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")


def cairnctl_bin():
    b = os.environ.get("CAIRNCTL_BIN", os.path.join(ROOT, "build", "cairnctl"))
    if not os.path.isabs(b):
        b = os.path.join(ROOT, b)
    return b


def tool_bin(tool):
    return ETCDCTL if tool == "etcdctl" else cairnctl_bin()


def tool_env(url, extra=None):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("ETCDCTL_") or k.startswith("ETCD_"):
            del e[k]
    e["ETCDCTL_API"] = "2"
    if url is not None:
        e["ETCDCTL_ENDPOINTS"] = url
    e.update(extra or {})
    return e


def run(tool, args, url, stdin=None, env=None, timeout=15):
    p = subprocess.run([tool_bin(tool)] + list(args),
                       input=(stdin or "").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=tool_env(url, env),
                       timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def spawn(tool, args, url, env=None, **kw):
    return subprocess.Popen([tool_bin(tool)] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=tool_env(url, env),
                            **kw)


def http(url, method, path, data=None, timeout=5):
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    req = urllib.request.Request(url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null"), r.headers
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null"), e.headers


def http_json(url, method, path, obj=None, timeout=5):
    """A request with a JSON body (the members API): (status, body)."""
    body = json.dumps(obj).encode() if obj is not None else None
    req = urllib.request.Request(url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def wipe(url):
    """Delete every top-level key (hidden ones included by name)."""
    _, body, _ = http(url, "GET", "/v2/keys/")
    for n in (body.get("node") or {}).get("nodes") or []:
        q = "?recursive=true" if n.get("dir") else ""
        http(url, "DELETE", "/v2/keys" + urllib.parse.quote(n["key"]) + q)
    for hidden in ("/_cli_base",):
        http(url, "DELETE", "/v2/keys" + hidden)


def base(url):
    _, body, _ = http(url, "PUT", "/v2/keys/_cli_base", {"value": "b"})
    return body["node"]["modifiedIndex"]


def norm(text, b):
    def rel(m):
        n = int(m.group(2))
        return m.group(1) + ("i%d" % (n - b) if n >= b else str(n))

    t = re.sub(r'("expiration":)"[^"]*"', r'\1"EXP"', text)
    t = re.sub(r'("ttl":)[1-9]\d*', r'\1T', t)
    t = re.sub(r'^(TTL: )[1-9]\d*$', r'\1T', t, flags=re.M)
    t = re.sub(r'^((?:Created-|Modified-)?Index: )(\d+)$', rel, t,
               flags=re.M)
    t = re.sub(r'("(?:createdIndex|modifiedIndex|index)":)(\d+)', rel, t)
    t = re.sub(r'(\[)(\d+)(?=\]$)', rel, t, flags=re.M)
    t = re.sub(r'(/)(\d{20})', rel, t)
    t = re.sub(r'(\[\w+ != )(\d+)(?=\])', rel, t)
    t = re.sub(r'(\[)(\d+)(?= != )', rel, t)
    t = re.sub(r'(ETCD_WATCH_MODIFIED_INDEX=)(\d+)', rel, t)
    return t


def sort_json_nodes(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            sort_json_nodes(v)
        if isinstance(obj.get("nodes"), list):
            obj["nodes"].sort(key=lambda n: n.get("key", ""))
    elif isinstance(obj, list):
        for v in obj:
            sort_json_nodes(v)
    return obj


def unordered(text):
    """Directory listings come in map order without --sort."""
    lines = []
    for line in text.splitlines():
        if line.startswith("{"):
            line = json.dumps(sort_json_nodes(json.loads(line)),
                              separators=(",", ":"))
        lines.append(line)
    if all(not line.startswith("{") for line in lines):
        lines.sort()
    return "\n".join(lines)
