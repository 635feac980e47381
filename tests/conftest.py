"""Shared fixtures of the process-level suites (tests/integration,
tests/compat). Run with /usr/bin/python3 -m pytest (Debian's python has
python3-etcd and pytest).

Fixtures:
  server        module-scoped server under test (cairn from CAIRN_BIN, or
                etcd when CAIRN_TEST_TARGET=etcd)
  etcd_server   module-scoped reference etcd (--enable-v2)
  make_server   factory for function-scoped servers: make_server("cairn"),
                make_server("etcd"), make_server("target", extra_args=[...])

A missing or broken cairn binary makes the tests FAIL (never skip). Every
server started through these fixtures is stopped by its pid at teardown; a
sanitizer report in its log fails the test that owned it, and a failing
test gets the tail of every live server's log in its report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pylib.cluster import Server  # noqa: E402

_live = []


def _new(kind, **kw):
    if kind == "cairn":
        return Server.cairn(**kw)
    if kind == "etcd":
        return Server.etcd(**kw)
    if kind == "target":
        return Server.target(**kw)
    raise ValueError(kind)


def _finish(s):
    s.stop()
    if s in _live:
        _live.remove(s)
    report = s.sanitizer_report()
    s_tmp = s.tmp
    if report:
        pytest.fail("sanitizer report in %s log (%s):\n%s" %
                    (s.kind, s.log_path, report), pytrace=False)
    if not os.environ.get("CAIRN_KEEP_LOGS"):
        import shutil
        shutil.rmtree(s_tmp, ignore_errors=True)


def _started(kind, **kw):
    s = _new(kind, **kw)
    _live.append(s)
    try:
        s.start()
    except Exception as e:  # noqa: B902
        _live.remove(s)
        s.stop()
        pytest.fail("could not start %s: %s" % (kind, e), pytrace=False)
    return s


@pytest.fixture(scope="module")
def server():
    s = _started("target")
    yield s
    _finish(s)


@pytest.fixture(scope="module")
def etcd_server():
    s = _started("etcd")
    yield s
    _finish(s)


@pytest.fixture
def make_server():
    mine = []

    def make(kind="target", start=True, **kw):
        if start:
            s = _started(kind, **kw)
        else:
            s = _new(kind, **kw)
            _live.append(s)
        mine.append(s)
        return s

    yield make
    for s in mine:
        _finish(s)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for s in list(_live):
            rep.sections.append(("server log %s" % s.kind, s.log_tail(30)))
