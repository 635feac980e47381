"""Fixtures of the partition suites (run with /usr/bin/python3 -m pytest).

  proxied_cluster   factory: proxied_cluster(n=3) starts n members of the
                    server under test (cairn from CAIRN_BIN, or etcd when
                    CAIRN_TEST_TARGET=etcd) whose peer traffic goes through
                    a PartitionNet (tests/pylib/netproxy.py), as .net.
                    Members are stopped by pid and checked like any server
                    (tests/conftest.py), then the proxies are closed.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from pylib.cluster import target_kind  # noqa: E402
from pylib.netproxy import ProxiedCluster  # noqa: E402
from pylib.procs import finish_all, live  # noqa: E402


@pytest.fixture
def proxied_cluster():
    mine = []

    def make(n=3):
        c = ProxiedCluster(target_kind(), n)
        mine.append(c)
        live.extend(c.members)
        try:
            c.start()
        except Exception as e:  # noqa: B902
            pytest.fail("could not start a %d-member %s cluster behind "
                        "proxies: %s" % (n, c.kind, e), pytrace=False)
        return c

    yield make
    try:
        for c in mine:
            c.net.heal_all()
        finish_all([s for c in mine for s in c.members])
    finally:
        for c in mine:
            c.net.stop()
