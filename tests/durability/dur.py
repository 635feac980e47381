"""Helpers of the durability tests: a cairn node that can be killed with
SIGKILL and restarted on the same data dir and ports, a small keep-alive
HTTP client, and a concurrent writer that records every acknowledged write.
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pylib.cluster import Server, ServerError  # noqa: E402,F401


class Node(Server):
    """A cairn whose data dir outlives its processes."""

    def start(self, timeout=90.0):
        # Generous: a start reads every 64 MiB segment, and the machine
        # running make test may be busy.
        return Server.start(self, timeout)

    def kill9(self):
        """SIGKILL our own pid (a crash: nothing is flushed or answered)."""
        p = self.proc
        if p is None:
            return
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.returncode = p.returncode
        self.proc = None
        self.logf.close()

    def run_to_exit(self, timeout=30.0):
        """Starts the process and waits for it to exit by itself (for starts
        that must be refused). Returns (exit status, log text)."""
        before = len(self.log_text())
        self.spawn()
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.logf.close()
        return rc, self.log_text()[before:]

    def log_since(self, mark):
        return self.log_text()[mark:]

    @property
    def wal_dir(self):
        return os.path.join(self.data_dir, "member", "wal")

    @property
    def snap_dir(self):
        return os.path.join(self.data_dir, "member", "snap")


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers}
        self.body = body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name):
        return self.headers.get(name.lower())


class Client:
    """One keep-alive connection."""

    def __init__(self, port, timeout=30.0):
        self.c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def req(self, method, path, form=None):
        body = None
        headers = {}
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        self.c.request(method, path, body=body, headers=headers)
        r = self.c.getresponse()
        data = r.read()
        return Resp(r.status, r.getheaders(), data)

    def put(self, key, value):
        return self.req("PUT", "/v2/keys" + key, {"value": value})

    def get(self, key, recursive=False):
        q = "?recursive=true" if recursive else ""
        return self.req("GET", "/v2/keys" + key + q)

    def close(self):
        self.c.close()


def dump(port, prefix):
    """{key: (value, modifiedIndex)} of every file under prefix."""
    c = Client(port)
    try:
        r = c.get(prefix, recursive=True)
    finally:
        c.close()
    if r.status == 404:
        return {}, r
    assert r.status == 200, (r.status, r.body[:300])
    out = {}

    def walk(n):
        if n.get("dir"):
            for ch in n.get("nodes", []):
                walk(ch)
        else:
            out[n["key"]] = (n["value"], n["modifiedIndex"])
    walk(r.json()["node"])
    return out, r


class Writers:
    """threads connections writing unique keys under prefix as fast as they
    can; acked holds (key, value, modifiedIndex, X-Raft-Index) of every
    write answered 201."""

    def __init__(self, port, prefix, threads, tag):
        self.port = port
        self.prefix = prefix
        self.tag = tag
        self.n = threads
        self.acked = []
        self.errors = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ts = [threading.Thread(target=self._run, args=(i,), daemon=True)
                   for i in range(threads)]

    def _run(self, t):
        try:
            c = Client(self.port, timeout=10.0)
        except OSError as e:
            self.errors.append(repr(e))
            return
        i = 0
        while not self.stop.is_set():
            key = "%s/%s-%d-%d" % (self.prefix, self.tag, t, i)
            val = "v%d-%d" % (t, i)
            try:
                r = c.put(key, val)
            except (OSError, http.client.HTTPException):
                return  # the server died: the write is not acknowledged
            if r.status != 201:
                with self.lock:
                    self.errors.append((key, r.status, r.body[:200]))
                return
            node = r.json()["node"]
            with self.lock:
                self.acked.append((key, val, node["modifiedIndex"],
                                   int(r.header("X-Raft-Index"))))
            i += 1
        c.close()

    def start(self):
        for t in self.ts:
            t.start()

    def join(self, timeout=15.0):
        self.stop.set()
        for t in self.ts:
            t.join(timeout)


def wait_for(pred, timeout=10.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
