"""Raw HTTP/1.1 client for the process-level tests.

Written on plain sockets (not http.client) so a test controls every byte it
sends (malformed request lines, pipelining several requests in one write) and
can read a chunked watch stream one chunk at a time.

    c = Conn(port)
    r = c.request("PUT", "/v2/keys/a", form={"value": "1"})
    r.status, r.header("x-etcd-index"), r.json()
"""

import json
import socket
import time
import urllib.parse


class HTTPError(Exception):
    """The peer sent something that is not HTTP/1.1, or closed early."""


class Response:
    def __init__(self, status, reason, headers, body, version="HTTP/1.1"):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name as sent, value)
        self.body = body  # bytes
        self.version = version

    def header(self, name, default=None):
        """The value of the first header called name (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers,
                                        self.body[:300])


def encode_form(params):
    """application/x-www-form-urlencoded for a dict or list of pairs; values
    are str or bytes and are sent as given (None: the name alone, "a")."""
    if isinstance(params, dict):
        params = list(params.items())
    parts = []
    for k, v in params:
        if v is None:
            parts.append(urllib.parse.quote_plus(k))
            continue
        if not isinstance(v, (str, bytes)):
            v = str(v)
        parts.append(urllib.parse.quote_plus(k) + "=" +
                     urllib.parse.quote_plus(v))
    return "&".join(parts)


def build_request(method, target, headers=None, body=None, host="127.0.0.1",
                  form=None):
    """The bytes of one request. form= is url-encoded into the body with the
    matching Content-Type; body= is sent verbatim with a Content-Length."""
    hdrs = [("Host", host)]
    if form is not None:
        body = encode_form(form).encode()
        hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
    if isinstance(body, str):
        body = body.encode()
    if body is not None:
        hdrs.append(("Content-Length", str(len(body))))
    for k, v in (headers or []):
        hdrs = [(a, b) for a, b in hdrs if a.lower() != k.lower()]
        if v is not None:
            hdrs.append((k, v))
    head = "%s %s HTTP/1.1\r\n" % (method, target)
    head += "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    return head.encode("utf-8") + (body or b"")


class Conn:
    """One keep-alive connection. Methods raise socket.timeout when the
    server is silent for longer than timeout seconds."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.host = host
        self.port = port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def settimeout(self, t):
        self.sock.settimeout(t)

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _readline(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise HTTPError("connection closed in a line: %r" % self.buf)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _readn(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise HTTPError("connection closed in a body")
        d, self.buf = self.buf[:n], self.buf[n:]
        return d

    def closed_by_peer(self, wait=2.0):
        """True if the server closes the connection (EOF) within wait s,
        discarding anything it still sends."""
        deadline = time.monotonic() + wait
        old = self.sock.gettimeout()
        try:
            while time.monotonic() < deadline:
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                try:
                    if not self._fill():
                        return True
                except socket.timeout:
                    return False
                except OSError:
                    return True
            return False
        finally:
            self.sock.settimeout(old)

    def read_head(self):
        """Status line and headers; returns a Response with an empty body."""
        line = self._readline()
        while line == b"":  # tolerate stray CRLF between responses
            line = self._readline()
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/"):
            raise HTTPError("bad status line %r" % line)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        while True:
            h = self._readline()
            if h == b"":
                break
            k, _, v = h.decode("latin-1").partition(":")
            headers.append((k.strip(), v.strip()))
        return Response(status, reason, headers, b"", parts[0])

    def read_chunk(self):
        """Next chunk of a chunked body (b"" at the last chunk)."""
        size_line = self._readline()
        size = int(size_line.split(b";")[0].strip(), 16)
        if size == 0:
            while self._readline() != b"":  # trailers
                pass
            return b""
        data = self._readn(size)
        if self._readn(2) != b"\r\n":
            raise HTTPError("chunk not followed by CRLF")
        return data

    def read_body(self, resp, method="GET"):
        te = (resp.header("transfer-encoding") or "").lower()
        cl = resp.header("content-length")
        if method == "HEAD" or resp.status in (204, 304) or \
                100 <= resp.status < 200:
            return resp
        if "chunked" in te:
            out = b""
            while True:
                c = self.read_chunk()
                if not c:
                    break
                out += c
            resp.body = out
        elif cl is not None:
            resp.body = self._readn(int(cl))
        else:  # until close
            while self._fill():
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def read_response(self, method="GET"):
        return self.read_body(self.read_head(), method)

    def request(self, method, target, headers=None, body=None, form=None):
        self.send(build_request(method, target, headers, body,
                                "%s:%d" % (self.host, self.port), form))
        return self.read_response(method)


def request(port, method, target, headers=None, body=None, form=None,
            timeout=10.0):
    """One request on a fresh connection."""
    with Conn(port, timeout=timeout) as c:
        return c.request(method, target, headers, body, form)


def keys_url(key, params=None):
    """/v2/keys/<key>?<params>; key is used as given (already encoded)."""
    key = key.lstrip("/")
    u = "/v2/keys/" + key
    if params:
        u += "?" + encode_form(params)
    return u
