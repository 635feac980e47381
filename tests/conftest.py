"""Shared fixtures of the process-level suites (tests/integration,
tests/compat). Run with /usr/bin/python3 -m pytest (Debian's python has
python3-etcd and pytest).

Fixtures:
  server        module-scoped server under test (cairn from CAIRN_BIN, or
                etcd when CAIRN_TEST_TARGET=etcd)
  etcd_server   module-scoped reference etcd (--enable-v2)
  make_server   factory for function-scoped servers: make_server("cairn"),
                make_server("etcd"), make_server("target", extra_args=[...])
  make_cluster  factory for function-scoped clusters: make_cluster(3)

A missing or broken cairn binary makes the tests FAIL (never skip). Every
server started through these fixtures is stopped by its pid at teardown; a
sanitizer report in its log fails the test that owned it, and a failing
test gets the tail of every live server's log in its report.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pylib.procs import (finish, finish_all, live,  # noqa: E402
                         new_server, started)


@pytest.fixture(scope="module")
def server():
    s = started("target")
    yield s
    finish(s)


@pytest.fixture(scope="module")
def etcd_server():
    s = started("etcd")
    yield s
    finish(s)


@pytest.fixture
def make_server():
    mine = []

    def make(kind="target", start=True, **kw):
        if start:
            s = started(kind, **kw)
        else:
            s = new_server(kind, **kw)
            live.append(s)
        mine.append(s)
        return s

    yield make
    finish_all(mine)


@pytest.fixture
def make_cluster():
    """make_cluster(n=3, kind="target"): a started Cluster whose members
    are stopped (and checked like any server) at teardown."""
    from pylib.cluster import Cluster
    mine = []

    def make(n=3, kind="target"):
        if kind == "target":
            kind = os.environ.get("CAIRN_TEST_TARGET", "cairn")
        c = Cluster(kind, n)
        mine.append(c)
        live.extend(c.members)
        try:
            c.start()
        except Exception as e:  # noqa: B902
            pytest.fail("could not start a %d-member %s cluster: %s" %
                        (n, kind, e), pytrace=False)
        return c

    yield make
    finish_all([s for c in mine for s in c.members])


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed:
        for s in list(live):
            rep.sections.append(("server log %s" % s.kind, s.log_tail(30)))
