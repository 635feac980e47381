"""Differential test: cairn and etcd 3.4 side by side, the same seeded
random v2 requests to both, answers compared after normalisation (see
tests/pylib/differential.py for what is normalised and why).

  CAIRN_DIFF_MODE=etcd   run etcd against etcd: must report zero
                         differences; proves the normalisation is sound
  CAIRN_DIFF_SEEDS=1,2,3 seeds to run (default: a fixed list)
  CAIRN_DIFF_OPS=N       ops per seed (default 800)

On a difference the test fails with the seed, the op, both normalised
answers, the command that reproduces it and the ops that led there.
"""

import os

import pytest

from pylib import differential

DEFAULT_SEEDS = [1, 2, 3, 4, 5]
SEEDS = [int(s) for s in os.environ.get(
    "CAIRN_DIFF_SEEDS", ",".join(map(str, DEFAULT_SEEDS))).split(",") if s]
OPS = int(os.environ.get("CAIRN_DIFF_OPS", "800"))
MODE = os.environ.get("CAIRN_DIFF_MODE", "cairn")


@pytest.mark.parametrize("seed", SEEDS)
def test_differential_seed(make_server, seed):
    # each seed on fresh servers, so a seed reproduces alone
    a = make_server("etcd" if MODE == "etcd" else "cairn")
    b = make_server("etcd")
    stats = differential.run_seed(a, b, seed, OPS)
    print("seed %d: %s" % (seed, stats))
    assert stats["ops"] == OPS
