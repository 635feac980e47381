"""Fixtures of the integration suites: a v2 client on the module's server
and a fresh key prefix per test, so tests sharing one server stay
independent."""

import itertools
import re

import pytest

from pylib.v2 import V2

_n = itertools.count()


@pytest.fixture(scope="module")
def kv(server):
    return V2(server.client_port)


@pytest.fixture
def ns(request):
    """A key prefix no other test uses, e.g. /t3_test_set_new_key."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    return "/t%d_%s" % (next(_n), name)
