"""An HTTP proxy that counts the requests passing through it, to measure
what a client (cairn-fleetctl) costs the store: point the client at
proxy.url instead of the store, run it, read proxy.counts.

Each request is forwarded as is to the upstream store (keep-alive on both
sides) and counted by method and by the first path segment under the key
prefix ("GET job", "PUT unit", ...). Only the client's own requests pass
through it; agents talk to the store directly.
"""

import collections
import http.client
import http.server
import socket
import threading
import urllib.parse


class CountingProxy:
    def __init__(self, upstream, prefix):
        u = urllib.parse.urlsplit(upstream)
        self.host, self.port = u.hostname, u.port
        self.prefix = "/v2/keys" + prefix.rstrip("/") + "/"
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                super().setup()
                # Headers and body leave in separate writes: without this,
                # Nagle and delayed ACKs add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP,
                                           socket.TCP_NODELAY, 1)

            def log_message(self, *args):
                pass

            def forward(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                proxy.count(self.command, self.path)
                conn = http.client.HTTPConnection(proxy.host, proxy.port,
                                                  timeout=120)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "host")}
                conn.request(self.command, self.path, body, headers)
                r = conn.getresponse()
                data = r.read()
                conn.close()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("connection", "content-length",
                                         "transfer-encoding", "date",
                                         "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def count(self, method, path):
        p = urllib.parse.urlsplit(path).path
        kind = p[len(self.prefix):].split("/")[0] if \
            p.startswith(self.prefix) else p
        with self.lock:
            self.counts["%s %s" % (method, kind)] += 1

    def total(self):
        with self.lock:
            return sum(self.counts.values())

    def reset(self):
        with self.lock:
            self.counts.clear()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
