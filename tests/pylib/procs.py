"""Servers started on behalf of tests: started by kind, stopped by pid at
teardown, their logs checked for sanitizer reports (see tests/conftest.py).
"""

import os
import shutil

import pytest

from pylib.cluster import Server

live = []


def new_server(kind, **kw):
    if kind == "cairn":
        return Server.cairn(**kw)
    if kind == "etcd":
        return Server.etcd(**kw)
    if kind == "target":
        return Server.target(**kw)
    raise ValueError(kind)


def finish(s):
    s.stop()
    if s in live:
        live.remove(s)
    report = s.sanitizer_report()
    s_tmp = s.tmp
    if report:
        pytest.fail("sanitizer report in %s log (%s):\n%s" %
                    (s.kind, s.log_path, report), pytrace=False)
    if s.kind == "cairn" and s.stopped_by == "kill":
        pytest.fail("cairn did not exit within 5 s of SIGTERM\n%s" %
                    s.log_tail(), pytrace=False)
    if s.kind == "cairn" and s.stopped_by == "term" and s.returncode != 0:
        pytest.fail("cairn exited with status %s after SIGTERM\n%s" %
                    (s.returncode, s.log_tail()), pytrace=False)
    if not os.environ.get("CAIRN_KEEP_LOGS"):
        shutil.rmtree(s_tmp, ignore_errors=True)


def finish_all(servers):
    """finish() every one of servers, also those after one that fails the
    test (their processes stopped, their temp dirs removed); then the first
    failure is raised."""
    first = None
    for s in list(servers):
        try:
            finish(s)
        except BaseException as e:  # noqa: B902 (pytest.fail's outcome)
            if first is None:
                first = e
    if first is not None:
        raise first


def discard(servers):
    """Stops those of servers that finish() has not seen (the test failed
    first, or they are not what it checks) and removes their temp dirs,
    without looking at their logs."""
    for s in servers:
        if s in live:
            live.remove(s)
            s.cleanup()


def started(kind, **kw):
    s = new_server(kind, **kw)
    live.append(s)
    try:
        s.start()
    except Exception as e:  # noqa: B902
        live.remove(s)
        s.stop()
        if not s.log_text():
            s.cleanup()  # never ran: nothing to look at
        pytest.fail("could not start %s: %s" % (kind, e), pytrace=False)
    return s
