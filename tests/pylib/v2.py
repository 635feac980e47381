"""A thin v2 key API client over the raw HTTP client, for tests.

    kv = V2(server.client_port)
    r = kv.put("/t/a", "1", ttl=100)       # form body: value=1&ttl=100
    r = kv.get("/t/a", recursive="true")   # query string
    r.status, r.json(), r.header("X-Etcd-Index")

Keys are percent-encoded here (a "/" stays a separator); pass raw=True to
send the path exactly as given.
"""

import urllib.parse

from pylib import httpraw


def enc_key(key):
    return urllib.parse.quote(key.lstrip("/"), safe="/")


class V2:
    def __init__(self, port):
        self.port = port

    def url(self, key, params=None, raw=False):
        p = key.lstrip("/") if raw else enc_key(key)
        u = "/v2/keys/" + p
        if params:
            u += "?" + httpraw.encode_form(params)
        return u

    def req(self, method, key, query=None, form=None, raw=False,
            headers=None, timeout=10.0):
        return httpraw.request(self.port, method, self.url(key, query, raw),
                               headers=headers, form=form, timeout=timeout)

    def put(self, key, value=None, raw=False, **params):
        form = {}
        if value is not None:
            form["value"] = value
        form.update({k: str(v) for k, v in params.items()})
        return self.req("PUT", key, form=form, raw=raw)

    def post(self, key, value=None, **params):
        form = {}
        if value is not None:
            form["value"] = value
        form.update({k: str(v) for k, v in params.items()})
        return self.req("POST", key, form=form)

    def get(self, key, raw=False, timeout=10.0, **params):
        return self.req("GET", key, query={k: str(v) for k, v in
                                           params.items()}, raw=raw,
                        timeout=timeout)

    def delete(self, key, **params):
        return self.req("DELETE", key, query={k: str(v) for k, v in
                                              params.items()})

    def index(self):
        return int(self.get("/").header("X-Etcd-Index"))
