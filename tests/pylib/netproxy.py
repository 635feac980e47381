"""Network partitions between the members of a process-level cluster.

Every member listens for peers on a private port; what the others know of it
(--initial-advertise-peer-urls, --initial-cluster) is the port of a TCP
proxy standing in front of it. The proxy learns which member opened each
connection it accepts: it finds the connecting socket in /proc/net/tcp by
the client's (ip, port), takes its inode, and looks for that inode among the
open files (/proc/PID/fd) of the cluster's processes. So it knows, for each
byte it forwards, which member sent it and which one receives it, whichever
side opened the connection.

A directed link a->b is cut when nothing a sends reaches b:

- a connection a opens to b's proxy is refused (accepted and closed at once,
  before a byte is forwarded);
- on a connection b opens to a's proxy, b's bytes still reach a but a's
  answers are dropped (b's request is delivered; it hears nothing back);
- cutting closes every connection already open between a and b (whoever
  opened it), so no byte in flight is delivered after cut() returns;
- healing closes the connections that dropped bytes while cut (their byte
  streams have holes), and new connections flow normally.

cut(a, b) and cut(b, a) together are a full partition of the pair. A
connection whose opener cannot be identified (not a cluster process) is
never cut.

    c = ProxiedCluster("etcd", 3)    # a Cluster whose peers go through proxies
    c.start()
    c.net.isolate("m1")              # m1 <-/-> everyone
    c.net.partition([["m1"], ["m2", "m3"]])
    c.net.cut("m1", "m2")            # m1's messages no longer reach m2
    c.net.heal_all()
    c.stop()                         # members, then the proxies

All sockets are on 127.0.0.1; the proxies run in one thread (a selector
loop) and stop() closes every socket they opened. Only the pids the proxy
was given are ever inspected; nothing is killed.
"""

import errno
import os
import selectors
import socket
import threading
import time

from pylib.cluster import Cluster, ServerError, free_ports

HOST = "127.0.0.1"
BUF_LIMIT = 1 << 20  # stop reading a side while this much waits unsent


def _hex_addr(ip, port):
    """The local_address field of /proc/net/tcp for an IPv4 (ip, port)."""
    a = socket.inet_aton(ip)
    return "%08X:%04X" % (int.from_bytes(a, "little"), port)


def socket_inode(client, server):
    """The inode of the TCP socket whose local address is client and remote
    address is server (both (ip, port)), from /proc/net/tcp; None if none."""
    want_l, want_r = _hex_addr(*client), _hex_addr(*server)
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                p = line.split()
                if p[1] == want_l and p[2] == want_r:
                    return int(p[9])
    except OSError:
        return None
    return None


def pid_has_inode(pid, inode):
    tag = "socket:[%d]" % inode
    d = "/proc/%d/fd" % pid
    try:
        fds = os.listdir(d)
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(os.path.join(d, fd)) == tag:
                return True
        except OSError:
            continue
    return False


class Endpoint:
    """One member as the proxy sees it: the port the proxy listens on (the
    member's advertised peer port), the port the member really listens on,
    and a function giving its current pid (None when not running)."""

    def __init__(self, name, listen_port, target_port, pid_fn):
        self.name = name
        self.listen_port = listen_port
        self.target_port = target_port
        self.pid_fn = pid_fn
        self.lsock = None


class _Pipe:
    """One proxied connection: a is the dialer's socket, b the member's."""

    def __init__(self, a, b, src, dst):
        self.a, self.b = a, b
        self.src, self.dst = src, dst  # src None: an unknown dialer
        self.out = {a: bytearray(), b: bytearray()}  # bytes waiting for sock
        self.eof = {a: False, b: False}  # no more bytes will come from sock
        self.shut = {a: False, b: False}  # write side of sock shut down
        self.dropped = 0

    def other(self, s):
        return self.b if s is self.a else self.a


class PartitionNet:
    """The proxies of a set of endpoints, and the table of cut links."""

    def __init__(self, endpoints, identify_timeout=0.05):
        self.endpoints = {e.name: e for e in endpoints}
        self.identify_timeout = identify_timeout
        self.cuts = set()  # (a, b): nothing a sends reaches b
        self._lock = threading.Lock()
        self._pipes = set()
        self._cmds = []
        self._sel = None
        self._thread = None
        self._wake_r = self._wake_w = None
        self._running = False
        self.stats = {"accepted": 0, "refused": 0, "unknown_dialer": 0,
                      "closed_on_cut": 0, "closed_on_heal": 0,
                      "bytes": 0, "dropped": 0}

    # ---- life cycle ----------------------------------------------------

    def start(self):
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, ("wake",))
        try:
            for e in self.endpoints.values():
                ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind((HOST, e.listen_port))
                ls.listen(128)
                ls.setblocking(False)
                e.lsock = ls
                self._sel.register(ls, selectors.EVENT_READ, ("listen", e))
        except OSError:
            self._close_all()
            raise
        self._running = True
        self._thread = threading.Thread(target=self._loop, name="netproxy",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is None:
            return
        self._running = False
        self._wake()
        self._thread.join(10)
        self._thread = None
        self._close_all()

    def _close_all(self):
        for p in list(self._pipes):
            self._close_pipe(p)
        for e in self.endpoints.values():
            if e.lsock is not None:
                try:
                    self._sel.unregister(e.lsock)
                except (KeyError, ValueError):
                    pass
                e.lsock.close()
                e.lsock = None
        for s in (self._wake_r, self._wake_w):
            if s is not None:
                s.close()
        self._wake_r = self._wake_w = None
        if self._sel is not None:
            self._sel.close()
            self._sel = None

    # ---- the cut table -------------------------------------------------

    @staticmethod
    def _name(m):
        return getattr(m, "name", m)

    def _apply(self, add=(), remove=(), clear=False):
        """Change the cut table, then wait until the loop has closed what
        the change requires."""
        add = {(self._name(a), self._name(b)) for a, b in add}
        remove = {(self._name(a), self._name(b)) for a, b in remove}
        for a, b in add | remove:
            if a not in self.endpoints or b not in self.endpoints:
                raise KeyError("unknown member in link %s->%s" % (a, b))
        done = threading.Event()
        with self._lock:
            if clear:
                remove |= set(self.cuts)
            self.cuts -= remove
            self.cuts |= add
            self._cmds.append((add, remove, done))
        if self._thread is None:
            return
        self._wake()
        if not done.wait(10):
            raise RuntimeError("netproxy loop did not answer")

    def cut(self, a, b):
        """Nothing a sends reaches b (until heal)."""
        self._apply(add=[(a, b)])

    def heal(self, a, b):
        self._apply(remove=[(a, b)])

    def cut_both(self, a, b):
        self._apply(add=[(a, b), (b, a)])

    def heal_both(self, a, b):
        self._apply(remove=[(a, b), (b, a)])

    def isolate(self, a):
        """Cut a from every other member, both ways."""
        a = self._name(a)
        links = []
        for x in self.endpoints:
            if x != a:
                links += [(a, x), (x, a)]
        self._apply(add=links)

    def partition(self, groups):
        """Heal everything, then cut every link between different groups,
        both ways. Members in no group form one more group."""
        groups = [[self._name(m) for m in g] for g in groups]
        rest = [n for n in self.endpoints
                if not any(n in g for g in groups)]
        if rest:
            groups.append(rest)
        where = {n: i for i, g in enumerate(groups) for n in g}
        links = [(a, b) for a in self.endpoints for b in self.endpoints
                 if a != b and where[a] != where[b]]
        self._apply(add=links, clear=True)

    def heal_all(self):
        self._apply(clear=True)

    def is_cut(self, a, b):
        with self._lock:
            return (self._name(a), self._name(b)) in self.cuts

    def links(self):
        with self._lock:
            return sorted(self.cuts)

    # ---- the loop ------------------------------------------------------

    def _wake(self):
        try:
            self._wake_w.send(b"x")
        except (OSError, AttributeError):
            pass

    def _loop(self):
        while self._running:
            for key, ev in self._sel.select(0.5):
                kind = key.data[0]
                if kind == "wake":
                    try:
                        self._wake_r.recv(4096)
                    except OSError:
                        pass
                elif kind == "listen":
                    self._accept(key.data[1])
                else:
                    p = key.data[1]
                    if p in self._pipes:
                        self._io(p, key.fileobj, ev)
            self._run_cmds()
        self._run_cmds()

    def _run_cmds(self):
        with self._lock:
            cmds, self._cmds = self._cmds, []
        for add, remove, done in cmds:
            for p in list(self._pipes):
                if p.src is None:
                    continue
                pair = {(p.src, p.dst), (p.dst, p.src)}
                if pair & add:
                    self.stats["closed_on_cut"] += 1
                    self._close_pipe(p)
                elif pair & remove and p.dropped:
                    self.stats["closed_on_heal"] += 1
                    self._close_pipe(p)
            done.set()

    def identify(self, peer_addr, e):
        """The name of the member whose process opened the connection from
        peer_addr to e's proxy, or None."""
        deadline = time.monotonic() + self.identify_timeout
        while True:
            inode = socket_inode(peer_addr, (HOST, e.listen_port))
            if inode:
                for m in self.endpoints.values():
                    pid = m.pid_fn()
                    if pid and pid_has_inode(pid, inode):
                        return m.name
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)

    def _accept(self, e):
        try:
            a, addr = e.lsock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        src = self.identify(addr, e)
        if src is None:
            self.stats["unknown_dialer"] += 1
        with self._lock:
            refused = src is not None and (src, e.name) in self.cuts
        if refused:
            self.stats["refused"] += 1
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                         b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            a.close()
            return
        try:
            b = socket.create_connection((HOST, e.target_port), timeout=1.0)
        except OSError:
            a.close()  # the member is down: the dialer sees a closed socket
            return
        self.stats["accepted"] += 1
        for s in (a, b):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        p = _Pipe(a, b, src, e.name)
        self._pipes.add(p)
        self._sel.register(a, selectors.EVENT_READ, ("pipe", p))
        self._sel.register(b, selectors.EVENT_READ, ("pipe", p))

    def _dropping(self, p, frm):
        """True if bytes read from socket frm must be dropped."""
        if p.src is None:
            return False
        sender, receiver = (p.src, p.dst) if frm is p.a else (p.dst, p.src)
        with self._lock:
            return (sender, receiver) in self.cuts

    def _io(self, p, s, ev):
        o = p.other(s)
        if ev & selectors.EVENT_READ:
            try:
                data = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError:
                self._close_pipe(p)
                return
            if data == b"":
                p.eof[s] = True
            elif data:
                if self._dropping(p, s):
                    p.dropped += len(data)
                    self.stats["dropped"] += len(data)
                else:
                    p.out[o] += data
                    self.stats["bytes"] += len(data)
        if not self._flush(p, o) or not self._flush(p, s):
            self._close_pipe(p)
            return
        if (p.eof[p.a] and p.eof[p.b] and not p.out[p.a] and
                not p.out[p.b]):
            self._close_pipe(p)
            return
        self._rearm(p)

    def _flush(self, p, s):
        """Send what waits for s; shut its write side once its peer is at
        EOF and nothing waits. False if s is broken."""
        buf = p.out[s]
        while buf:
            try:
                n = s.send(buf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                return False
            del buf[:n]
        if not buf and p.eof[p.other(s)] and not p.shut[s]:
            p.shut[s] = True
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                return False
        return True

    def _rearm(self, p):
        for s in (p.a, p.b):
            ev = 0
            if not p.eof[s] and len(p.out[p.other(s)]) < BUF_LIMIT:
                ev |= selectors.EVENT_READ
            if p.out[s]:
                ev |= selectors.EVENT_WRITE
            try:
                if ev:
                    self._sel.modify(s, ev, ("pipe", p))
                else:
                    self._sel.unregister(s)
            except (KeyError, ValueError):
                if ev:
                    self._sel.register(s, ev, ("pipe", p))

    def _close_pipe(self, p):
        self._pipes.discard(p)
        for s in (p.a, p.b):
            try:
                self._sel.unregister(s)
            except (KeyError, ValueError, AttributeError):
                pass
            try:
                s.close()
            except OSError:
                pass


class ProxiedCluster(Cluster):
    """A Cluster whose members reach each other only through a
    PartitionNet (self.net). Each member's peer_port is its proxy's port
    (the advertised peer URL, what /v2/members lists); private_peer_port
    is where the member listens (--listen-peer-urls)."""

    def __init__(self, kind, n=3, token=None):
        super().__init__(kind, n, token)
        used = {p for s in self.members for p in (s.client_port, s.peer_port)}
        while True:
            extra = free_ports(n)
            if not used & set(extra):
                break
        eps = []
        for s, port in zip(self.members, extra):
            s.private_peer_port = port
            eps.append(Endpoint(s.name, s.peer_port, port,
                                lambda s=s: s.proc.pid if s.proc else None))
        self.net = PartitionNet(eps)

    def renew_ports(self):
        # The proxies listen on the advertised peer ports: no moving.
        raise ServerError("a port was taken while the proxied cluster "
                          "started")

    def member(self, name):
        return next(s for s in self.members if s.name == name)

    def member_args(self, s):
        a = super().member_args(s)
        a[a.index("--listen-peer-urls") + 1] = \
            "http://%s:%d" % (HOST, s.private_peer_port)
        return a

    def start(self, timeout=30.0):
        if self.net._thread is None:
            self.net.start()
        return super().start(timeout)

    def stop(self):
        super().stop()
        self.net.stop()
