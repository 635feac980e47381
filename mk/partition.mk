# Network partitions and linearizability (docs/testing-partitions.md).
#   check-pyunit          unit tests of the Python test tooling (tests/pyunit:
#                         the linearizability checker); fast, a make test stage
#   check-partition       3 members of $(B)/cairn behind the partition proxies
#                         (tests/cluster): isolated leader, random cuts with a
#                         linearizability check (seed 1, 15 s). A make test
#                         stage.
#   check-partition-long  the random run for 90 s with a random seed (printed);
#                         a make test-long stage
#   check-partition-etcd  the same suite against etcd 3.4; must pass, it
#                         validates the suite
# CAIRN_PARTITION_SECONDS (random run length, default 15) and
# CAIRN_PARTITION_SEED (default 1, or "random") tune the random run.

TEST_STAGES += check-pyunit check-partition
TEST_LONG_STAGES += check-partition-long
PARTITION_PYTHON ?= /usr/bin/python3
PARTITION_PYTEST = $(PARTITION_PYTHON) -m pytest -q -p no:cacheprovider

.PHONY: check-pyunit check-partition check-partition-long check-partition-etcd

check-pyunit:
	$(PARTITION_PYTEST) $(PYTEST_ARGS) tests/pyunit

check-partition: $(B)/cairn
	CAIRN_BIN=$(B)/cairn $(PARTITION_PYTEST) $(PYTEST_ARGS) tests/cluster

check-partition-long: $(B)/cairn
	CAIRN_BIN=$(B)/cairn CAIRN_PARTITION_SECONDS=90 \
	CAIRN_PARTITION_SEED=random $(PARTITION_PYTEST) $(PYTEST_ARGS) \
	    tests/cluster -k random

check-partition-etcd:
	CAIRN_TEST_TARGET=etcd $(PARTITION_PYTEST) $(PYTEST_ARGS) tests/cluster
