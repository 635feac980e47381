#!/usr/bin/env python3
"""Differential test of the store against a real etcd 3.4 (--enable-v2).

Starts a private etcd on free 127.0.0.1 ports in a temporary directory,
replays seeded random PUT/POST/DELETE/GET and watch-from-history requests
against it and against etcd_diff_harness (the store behind a line protocol),
and compares status and body byte for byte; expiration times and ttl values
are normalised since the two clocks differ. Exits 1 on any difference.

usage: etcd_diff.py HARNESS [--seeds 1,2] [--ops 1500]
"""
import argparse
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

KEYS = ['/a', '/b', '/a/x', '/a/y', '/d', '/d/e', '/d/e/f', '/_h', '/d/_h',
        '/q', '/s p', '/<&>', '/', '/a/x/z']
VALS = ['1', '2', '', 'x"y\\z', '<b>&', 'é\u2028', 'tab\there']


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start_etcd(tmp):
    cport, pport = free_port(), free_port()
    peer = 'http://127.0.0.1:%d' % pport
    client = 'http://127.0.0.1:%d' % cport
    log = open(os.path.join(tmp, 'etcd.log'), 'w')
    proc = subprocess.Popen(
        ['etcd', '--enable-v2', '--data-dir', os.path.join(tmp, 'data'),
         '--listen-client-urls', client, '--advertise-client-urls', client,
         '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
         '--initial-cluster', 'default=' + peer],
        stdout=log, stderr=subprocess.STDOUT)
    # Ready once it answers and its own startup writes (member attributes,
    # cluster version) are done: the index has not moved for 1.5 s.
    last, stable_since, deadline = None, None, time.time() + 30
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(client + '/v2/keys/', timeout=1) as r:
                idx = r.headers.get('X-Etcd-Index')
        except Exception:
            idx = None
        now = time.time()
        if idx is not None and idx == last:
            if now - stable_since >= 1.5:
                return proc, client
        else:
            last, stable_since = idx, now
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    raise SystemExit('etcd did not start; see ' + log.name)


def request(base, method, path, params, timeout=10):
    url = base + '/v2/keys' + urllib.parse.quote(path, safe='/')
    data = urllib.parse.urlencode(params).encode()
    if method in ('GET', 'DELETE'):  # Go parses no body for DELETE
        url += '?' + data.decode()
        data = None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header('Content-Type', 'application/x-www-form-urlencoded')
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return (str(r.status), r.read().decode('utf-8', 'replace').strip(),
                    r.headers.get('X-Etcd-Index'))
    except urllib.error.HTTPError as e:
        return (str(e.code), e.read().decode('utf-8', 'replace').strip(),
                e.headers.get('X-Etcd-Index'))


def norm(s):
    s = re.sub(r'"expiration":"[^"]*"', '"expiration":"E"', s)
    return re.sub(r'"ttl":-?\d+', '"ttl":T', s)


def gen(rnd, cur):
    k = rnd.choice(KEYS)
    m = rnd.random()
    p = {}
    if m < 0.45:
        method = 'PUT'
        if rnd.random() < 0.15:
            p['dir'] = 'true'
        else:
            p['value'] = rnd.choice(VALS)
        r = rnd.random()
        if r < 0.15:
            p['prevExist'] = 'true'
        elif r < 0.25:
            p['prevExist'] = 'false'
        if rnd.random() < 0.15:
            p['prevValue'] = rnd.choice(VALS[:2])
        if rnd.random() < 0.1:
            p['prevIndex'] = str(rnd.randint(max(1, cur - 5), cur + 1))
        if rnd.random() < 0.2:
            p['ttl'] = str(rnd.randint(100, 500))
        if rnd.random() < 0.05:
            p.pop('value', None)
            p.pop('dir', None)
            p['refresh'] = 'true'
            p['ttl'] = '300'
    elif m < 0.55:
        method = 'POST'
        p['value'] = rnd.choice(VALS)
    elif m < 0.75:
        method = 'DELETE'
        if rnd.random() < 0.3:
            p['dir'] = 'true'
        if rnd.random() < 0.3:
            p['recursive'] = 'true'
        if rnd.random() < 0.15:
            p['prevValue'] = rnd.choice(VALS[:2])
        if rnd.random() < 0.1:
            p['prevIndex'] = str(rnd.randint(max(1, cur - 5), cur + 1))
    elif m < 0.85:
        method = 'WATCH'
        p['waitIndex'] = str(rnd.randint(max(1, cur - 1100), cur + 1))
        if rnd.random() < 0.5:
            p['recursive'] = 'true'
    else:
        method = 'GET'
        p['sorted'] = 'true'
        if rnd.random() < 0.5:
            p['recursive'] = 'true'
    return method, k, p


# Fixed cases first: odd flag combinations, then TTL expiry of a key and of
# a directory (etcd expires them itself; the store on SYNC), checked through
# GETs and watches answered from history. '+N' in waitIndex is relative to
# the index before the case list.
FIXED = [
    ('PUT', '/f', {'value': 'x'}),
    ('PUT', '/f', {'dir': 'true', 'prevExist': 'true'}),
    ('GET', '/f', {}),
    ('PUT', '/dv', {'dir': 'true', 'value': 'zz'}),
    ('POST', '/pd', {'dir': 'true'}),
    ('GET', '/pd', {'recursive': 'true'}),
    ('PUT', '/f', {'value': 'y', 'prevExist': 'true', 'prevIndex': '0'}),
    ('DELETE', '/f', {'prevIndex': '0'}),
    ('PUT', '/a/b/c', {'value': '1', 'ttl': '100'}),
    ('PUT', '/a/b', {'prevExist': 'true', 'dir': 'true'}),
    ('GET', '/a', {'recursive': 'true'}),
    ('DELETE', '/a/b/c', {'dir': 'true'}),
    ('DELETE', '/a', {'recursive': 'true', 'dir': 'false'}),
    ('PUT', '/tx', {'value': 'gone', 'ttl': '1'}),
    ('PUT', '/td/k', {'value': '1'}),
    ('PUT', '/td', {'dir': 'true', 'prevExist': 'true', 'ttl': '1'}),
    ('SLEEP', '', {}),
    ('SYNC', '/', {}),
    ('GET', '/', {'recursive': 'true', 'sorted': 'true'}),
    ('WATCH', '/tx', {'waitIndex': '+12'}),
    ('WATCH', '/td/k', {'waitIndex': '+13'}),
    ('WATCH', '/', {'waitIndex': '+14', 'recursive': 'true'}),
    ('WATCH', '/', {'waitIndex': '+15', 'recursive': 'true'}),
    ('DELETE', '/dv', {'dir': 'true'}),
    ('DELETE', '/pd', {'recursive': 'true'}),
]


def run(harness, base, seed, ops):
    rnd = random.Random(seed)
    _, _, idx = request(base, 'GET', '/', {})
    cur = int(idx)
    start = cur
    h = subprocess.Popen([harness, str(cur)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    diffs = 0
    counts = {}
    fixed = list(FIXED)
    for i in range(len(FIXED) + ops):
        if fixed:
            method, k, p = fixed.pop(0)
            p = dict(p)
            if p.get('waitIndex', '').startswith('+'):
                p['waitIndex'] = str(start + int(p['waitIndex'][1:]))
            if method == 'SLEEP':
                time.sleep(2.5)  # etcd expires within ~0.5 s of the TTL
                continue
        else:
            method, k, p = gen(rnd, cur)
        if method == 'SYNC':
            es, eb = '200', ''
        elif method == 'WATCH':
            q = dict(p)
            q['wait'] = 'true'
            try:
                es, eb, _ = request(base, 'GET', k, q, timeout=0.3)
            except Exception:
                es, eb = 'WAIT', ''
        else:
            es, eb, xi = request(base, method, k, p)
            cur = max(cur, int(xi or 0))
        counts[method] = counts.get(method, 0) + 1
        line = '%s %s %s\n' % (method, urllib.parse.quote(k, safe='/'),
                               urllib.parse.urlencode(p))
        h.stdin.write(line)
        h.stdin.flush()
        out = h.stdout.readline().strip()
        hs, hb = out.split(' ', 1) if ' ' in out else (out, '')
        if os.environ.get('STORE_DIFF_VERBOSE'):
            print(method, k, p, '->', es, eb)
        if es != hs or norm(eb) != norm(hb):
            diffs += 1
            print('DIFF seed %d op %d: %s' % (seed, i, line.strip()))
            print('  etcd : %s %s' % (es, eb))
            print('  store: %s %s' % (hs, hb))
            if diffs >= 5:
                break
    h.stdin.close()
    h.wait()
    print('# seed %d: %d requests %s, %d differences' %
          (seed, ops, sorted(counts.items()), diffs))
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('harness')
    ap.add_argument('--seeds', default='1,2')
    ap.add_argument('--ops', type=int, default=1500)
    a = ap.parse_args()
    if shutil.which('etcd') is None:
        print('# skip: etcd is not installed (scripts/deps.sh installs '
              'etcd-server)')
        return 0
    total = 0
    for seed in [int(x) for x in a.seeds.split(',')]:
        tmp = tempfile.mkdtemp(prefix='cairn-store-diff.')
        proc = None
        try:
            proc, base = start_etcd(tmp)
            total += run(a.harness, base, seed, a.ops)
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            shutil.rmtree(tmp, ignore_errors=True)
    print('store vs etcd: %s' % ('ok' if total == 0 else
                                 '%d differences' % total))
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
