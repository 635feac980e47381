"""Linearizability checker for a history of operations on per-key registers.

The model is one register per key holding a value or nothing (absent):

    write(v)          -> ok                     state := v
    cas(old, new)     -> ok    (state == old)   state := new
                      -> fail  (state != old; absent counts as != old)
    read()            -> v / None (absent)      state unchanged
    delete()          -> ok    (state present)  state := None
                      -> fail  (state absent)

Every operation records its invocation and return times (time.monotonic()
on one machine, so comparable between client threads) and its outcome: ok,
fail (a definite refusal: 412 compare failed, 404 key not found) or unknown
(timeout, connection error, 5xx). An unknown operation may have taken effect
at any moment after its invocation, or never: it is given an infinite return
time and the search may linearize it or leave it out. An unknown read
constrains nothing and is dropped.

Search (Wing & Gong, with the memoization of Lowe and Knossos): a depth-first
search over configurations (set of linearized operations, register state).
An operation may be linearized next when it is not linearized yet and was
invoked before the earliest return among the completed operations still
pending. The history is linearizable when every completed operation has been
linearized. Refinements, each sound:

- P-compositionality: keys are independent registers, each checked alone.
- Memo: a configuration (linearized completed ops, state, linearized unknown
  ops U) that failed makes every configuration with the same first two parts
  and a superset of U fail too (more unknown ops used = fewer options), so
  the memo stores, per (completed set, state), the U sets that failed.
- A candidate that never changes the state (a read, a failed CAS or delete)
  and is valid now is taken without branching: linearizing it now only
  removes a constraint. (Not a write of the value already held: placed
  later, after another write, it would change the state.)

The search is bounded by a time budget and a configuration count; when
either runs out the verdict is None (inconclusive), never a pass. A failure
comes with a counterexample: the longest linearizable prefix found, the
register state after it, and why each operation that could come next
cannot.

    h = History()
    op = h.invoke("c1", "/k", "write", value="1")
    h.ok(op)                       # or h.fail(op), h.unknown(op)
    op = h.invoke("c2", "/k", "read")
    h.ok(op, value="1")            # value=None: the key was absent
    res = h.check()                # or check(ops)
    assert res.ok, res.message
"""

import json
import threading
import time

WRITE, CAS, READ, DELETE = "write", "cas", "read", "delete"
KINDS = (WRITE, CAS, READ, DELETE)
OK, FAIL, UNKNOWN = "ok", "fail", "unknown"
INF = float("inf")


class Op:
    """One operation on one key. result is the value a read returned (None:
    absent). ret is None while the operation runs and for unknown outcomes
    recorded without a return time."""

    __slots__ = ("id", "process", "key", "kind", "value", "old", "new",
                 "invoke", "ret", "status", "result", "meta")

    def __init__(self, id, process, key, kind, value=None, old=None,
                 new=None, invoke=0.0, ret=None, status=None, result=None,
                 meta=None):
        if kind not in KINDS:
            raise ValueError("unknown operation kind %r" % (kind,))
        self.id = id
        self.process = process
        self.key = key
        self.kind = kind
        self.value = value
        self.old = old
        self.new = new
        self.invoke = invoke
        self.ret = ret
        self.status = status
        self.result = result
        self.meta = meta

    def effective_ret(self):
        if self.status == UNKNOWN or self.status is None or self.ret is None:
            return INF
        return self.ret

    def call_text(self):
        if self.kind == WRITE:
            return "write(%r)" % (self.value,)
        if self.kind == CAS:
            return "cas(%r -> %r)" % (self.old, self.new)
        if self.kind == DELETE:
            return "delete()"
        return "read()"

    def describe(self, t0=0.0):
        if self.status == UNKNOWN or self.status is None:
            out = "unknown"
        elif self.kind == READ:
            out = "-> %s" % ("absent" if self.result is None
                             else repr(self.result))
        else:
            out = self.status
        ret = "inf" if self.effective_ret() == INF else \
            "%.6f" % (self.ret - t0)
        return "#%d %s %s %s %s [%.6f, %s]" % (
            self.id, self.process, self.key, self.call_text(), out,
            self.invoke - t0, ret)

    def to_dict(self):
        return {k: getattr(self, k) for k in self.__slots__
                if getattr(self, k) is not None}

    @classmethod
    def from_dict(cls, d):
        return cls(**d)

    def __repr__(self):
        return "<Op %s>" % self.describe()


def step(state, op):
    """(valid, new state) for op applied to a register holding state. An
    unknown op is applied as if it succeeded (an unknown CAS that would have
    failed is the same as leaving it out)."""
    kind, st = op.kind, op.status
    if kind == READ:
        return op.result == state, state
    if kind == WRITE:
        return True, op.value
    if kind == CAS:
        if st == FAIL:
            return state != op.old, state
        if state == op.old:
            return True, op.new
        return False, state
    # DELETE
    if st == FAIL:
        return state is None, state
    return state is not None, None


def _why_not(state, op):
    if op.kind == READ:
        return "the register holds %s" % _show(state)
    if op.kind == CAS and op.status == FAIL:
        return "it failed, yet the register holds %s, its expected value" % \
            _show(state)
    if op.kind == CAS:
        return "it needs %s but the register holds %s" % (
            _show(op.old), _show(state))
    if op.kind == DELETE and op.status == FAIL:
        return "it found no key, yet the register holds %s" % _show(state)
    if op.kind == DELETE:
        return "it deleted a key, yet the register is absent"
    return "?"


def _show(v):
    return "absent" if v is None else repr(v)


class KeyResult:
    """ok: True (linearizable), False (counterexample in message), None
    (search budget ran out)."""

    def __init__(self, key, ok, message, configs, n_ops, elapsed,
                 order=None):
        self.key = key
        self.ok = ok
        self.message = message
        self.configs = configs
        self.n_ops = n_ops
        self.elapsed = elapsed
        self.order = order  # a linearization (op ids) when ok

    def __repr__(self):
        return "<KeyResult %s ok=%s ops=%d configs=%d %.3fs>" % (
            self.key, self.ok, self.n_ops, self.configs, self.elapsed)


class Result:
    def __init__(self, keys):
        self.keys = keys  # {key: KeyResult}
        if any(r.ok is False for r in keys.values()):
            self.ok = False
        elif any(r.ok is None for r in keys.values()):
            self.ok = None
        else:
            self.ok = True

    @property
    def message(self):
        bad = [r for r in self.keys.values() if r.ok is not True]
        if not bad:
            return "linearizable: %d keys, %d ops" % (
                len(self.keys), sum(r.n_ops for r in self.keys.values()))
        return "\n\n".join(r.message for r in bad)

    def __bool__(self):
        return self.ok is True

    def __repr__(self):
        return "<Result ok=%s %r>" % (self.ok, list(self.keys.values()))


def _lowest_zero(mask):
    return ((mask + 1) & ~mask).bit_length() - 1


def check_key(ops, init=None, time_limit=30.0, max_configs=2000000,
              t0=None):
    """Check the operations of one key. Returns a KeyResult."""
    start = time.monotonic()
    key = ops[0].key if ops else None
    for o in ops:
        if o.status is None:
            raise ValueError("operation %r never completed (call ok, fail "
                             "or unknown)" % o)
    ops = [o for o in ops if not (o.kind == READ and o.status == UNKNOWN)]
    if t0 is None:
        t0 = min((o.invoke for o in ops), default=0.0)
    known = sorted((o for o in ops if o.effective_ret() != INF),
                   key=lambda o: (o.invoke, o.id))
    unknown = sorted((o for o in ops if o.effective_ret() == INF),
                     key=lambda o: (o.invoke, o.id))
    k = len(known)
    calls = [o.invoke for o in known]
    u_calls = [o.invoke for o in unknown]
    by_ret = sorted(range(k), key=lambda i: (known[i].ret, i))
    ret_pos = [0] * k
    for pos, i in enumerate(by_ret):
        ret_pos[i] = pos
    rets_sorted = [known[i].ret for i in by_ret]
    # reads and definite failures never change the register
    pure = [o.kind == READ or o.status == FAIL for o in known]
    for o in known:
        if o.ret < o.invoke:
            raise ValueError("operation returns before it is invoked: %r" % o)

    failed = {}  # (maskK, state) -> [maskU, ...]
    configs = 0
    best = (-1, None, None, None)  # (n linearized, path, state, frame)

    def successors(maskK, maskR, maskU, state):
        """[(kind, index, new state)] in the order tried; a state-preserving
        candidate alone when there is one."""
        j = _lowest_zero(maskR)
        if j >= k:
            return None  # every completed op is linearized
        minret = rets_sorted[j]
        out = []
        i = _lowest_zero(maskK)
        while i < k and calls[i] < minret:
            if not (maskK >> i) & 1:
                valid, ns = step(state, known[i])
                if valid:
                    if pure[i]:
                        return [(0, i, ns)]
                    out.append((0, i, ns))
            i += 1
        for u in range(len(unknown)):
            if u_calls[u] >= minret:
                break
            if not (maskU >> u) & 1:
                valid, ns = step(state, unknown[u])
                if valid:
                    out.append((1, u, ns))
        return out

    def seen(maskK, state, maskU):
        lst = failed.get((maskK, state))
        if lst is None:
            return False
        for m in lst:
            if m & ~maskU == 0:
                return True
        return False

    # frame: [maskK, maskR, maskU, state, succs, pos, op]
    path = []
    succ = successors(0, 0, 0, init)
    if succ is None:
        return KeyResult(key, True, "linearizable (%d ops)" % len(ops), 1,
                         len(ops), time.monotonic() - start, order=[])
    stack = [[0, 0, 0, init, succ, 0, None]]
    verdict = False
    while stack:
        fr = stack[-1]
        maskK, maskR, maskU, state, succs, pos = fr[:6]
        if pos >= len(succs):
            lst = failed.setdefault((maskK, state), [])
            lst.append(maskU)
            stack.pop()
            if path:
                path.pop()
            continue
        fr[5] = pos + 1
        kind, idx, ns = succs[pos]
        if kind == 0:
            nK, nR, nU = maskK | (1 << idx), maskR | (1 << ret_pos[idx]), \
                maskU
            op = known[idx]
        else:
            nK, nR, nU = maskK, maskR, maskU | (1 << idx)
            op = unknown[idx]
        if seen(nK, ns, nU):
            continue
        configs += 1
        if configs > max_configs or (configs % 2048 == 0 and
                                     time.monotonic() - start > time_limit):
            verdict = None
            break
        path.append(op)
        nsucc = successors(nK, nR, nU, ns)
        if nsucc is None:
            verdict = True
            break
        lin = bin(nK).count("1")
        if lin > best[0]:
            best = (lin, list(path), ns, (nK, nR, nU, nsucc))
        stack.append([nK, nR, nU, ns, nsucc, 0, op])
    elapsed = time.monotonic() - start
    if verdict is True:
        return KeyResult(key, True, "linearizable (%d ops, %d configs)" % (
            len(ops), configs), configs, len(ops), elapsed,
            order=[o.id for o in path])
    if verdict is None:
        return KeyResult(key, None, (
            "key %s: search budget ran out after %d configurations and "
            "%.1f s (%d completed, %d unknown ops): no verdict" % (
                key, configs, elapsed, k, len(unknown))),
            configs, len(ops), elapsed)
    msg = _counterexample(key, known, unknown, calls, u_calls, by_ret,
                          rets_sorted, best, init, configs, t0)
    return KeyResult(key, False, msg, configs, len(ops), elapsed)


def _counterexample(key, known, unknown, calls, u_calls, by_ret,
                    rets_sorted, best, init, configs, t0, tail=8):
    k = len(known)
    n_lin, path, state, fr = best
    if path is None:
        n_lin, path, state, fr = 0, [], init, (0, 0, 0, None)
    maskK, maskR, maskU, _ = fr
    lines = ["key %s: NOT linearizable (%d completed + %d unknown-outcome "
             "ops, %d configurations searched)" % (
                 key, k, len(unknown), configs),
             "longest linearizable prefix: %d of %d completed ops%s" % (
                 n_lin, k, "" if len(path) <= tail else
                 " (last %d shown)" % tail)]
    st = init
    shown = []
    for o in path:
        st = step(st, o)[1]
        shown.append("    %s   => %s" % (o.describe(t0), _show(st)))
    lines += shown[-tail:]
    lines.append("after it the register holds %s, and no operation can "
                 "come next:" % _show(state))
    j = _lowest_zero(maskR)
    minret = rets_sorted[j] if j < k else INF
    blocker = known[by_ret[j]] if j < k else None
    i = _lowest_zero(maskK)
    while i < k and calls[i] < minret:
        if not (maskK >> i) & 1:
            lines.append("    %s: %s" % (known[i].describe(t0),
                                         _why_not(state, known[i])))
        i += 1
    for u in range(len(unknown)):
        if u_calls[u] >= minret:
            break
        if not (maskU >> u) & 1:
            valid, _ = step(state, unknown[u])
            if not valid:
                lines.append("    %s: %s" % (unknown[u].describe(t0),
                                             _why_not(state, unknown[u])))
    if blocker is not None:
        lines.append("(%s returned at %.6f: every later-invoked operation "
                     "must come after it)" % (blocker.describe(t0),
                                              blocker.ret - t0))
    return "\n".join(lines)


def check(ops, init=None, time_limit=30.0, max_configs=2000000):
    """Check every key of a history independently. init: the initial value
    of every register, or a dict key -> value (missing keys: absent)."""
    keys = {}
    for o in ops:
        keys.setdefault(o.key, []).append(o)
    t0 = min((o.invoke for o in ops), default=0.0)
    out = {}
    for key in sorted(keys, key=str):
        iv = init.get(key) if isinstance(init, dict) else init
        out[key] = check_key(keys[key], iv, time_limit, max_configs, t0)
    return Result(out)


class History:
    """A thread-safe recorder of operations, timed with time.monotonic()."""

    def __init__(self, clock=time.monotonic):
        self.ops = []
        self.clock = clock
        self._lock = threading.Lock()

    def invoke(self, process, key, kind, value=None, old=None, new=None,
               at=None):
        with self._lock:
            op = Op(len(self.ops), process, key, kind, value=value, old=old,
                    new=new, invoke=self.clock() if at is None else at)
            self.ops.append(op)
        return op

    def _end(self, op, status, result=None, at=None, meta=None):
        if op.status is not None:
            raise ValueError("operation completed twice: %r" % op)
        op.ret = self.clock() if at is None else at
        op.status = status
        op.result = result
        if meta is not None:
            op.meta = meta
        return op

    def ok(self, op, value=None, at=None, meta=None):
        """Success; value is what a read returned (None: absent)."""
        return self._end(op, OK, value if op.kind == READ else None, at, meta)

    def fail(self, op, at=None, meta=None):
        """A definite refusal (the operation did not take effect)."""
        if op.kind not in (CAS, DELETE):
            raise ValueError("only cas and delete can fail definitely")
        return self._end(op, FAIL, None, at, meta)

    def unknown(self, op, at=None, meta=None):
        """No answer (timeout, error): it may or may not take effect."""
        return self._end(op, UNKNOWN, None, at, meta)

    def check(self, **kw):
        return check([o for o in self.ops if o.status is not None], **kw)

    def to_json(self):
        return json.dumps([o.to_dict() for o in self.ops])

    @classmethod
    def from_json(cls, text):
        h = cls()
        h.ops = [Op.from_dict(d) for d in json.loads(text)]
        return h


def inject_stale_read(ops, rnd, process="stale"):
    """A copy of ops plus one read that cannot be linearized: invoked just
    after an acknowledged write w returned, it returns the value of an
    earlier acknowledged write e (returned before w was invoked) that no
    other operation ever writes. Once w has taken effect the register
    cannot hold that value again, so every checker must reject the result.
    Returns (new ops, injected op), or (ops, None) when the history has no
    such pair of writes. For testing checkers on real histories."""
    writers = {}
    for o in ops:
        v = o.value if o.kind == WRITE else o.new if o.kind == CAS else None
        if v is not None:
            writers[(o.key, v)] = writers.get((o.key, v), 0) + 1
    acked = [o for o in ops if o.status == OK and o.kind in (WRITE, CAS)]
    rnd.shuffle(acked)
    for w in acked:
        earlier = [e for e in ops if e.key == w.key and e.status == OK and
                   e.kind in (WRITE, CAS) and e.ret < w.invoke]
        if not earlier:
            continue
        e = max(earlier, key=lambda o: o.ret)
        v = e.value if e.kind == WRITE else e.new
        if writers[(e.key, v)] != 1 or v == (w.value if w.kind == WRITE
                                              else w.new):
            continue
        t = w.ret + 1e-6
        bad = Op(max(o.id for o in ops) + 1, process, w.key, READ,
                 invoke=t, ret=t + 1e-6, status=OK, result=v)
        return list(ops) + [bad], bad
    return ops, None
