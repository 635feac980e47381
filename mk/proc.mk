# Process-level test stages (pytest, Debian's /usr/bin/python3): real cairn
# and etcd processes on 127.0.0.1, see docs/testing.md.
#   check-proc       integration suites + etcd differential, CAIRN_BIN=$(B)/cairn
#   check-proc-asan  the same against an ASan+UBSan cairn; a sanitizer report
#                    in any server's log fails its test. Built in its own
#                    directory (build-asan-proc/): run-stages.sh runs this
#                    stage beside check-unit-asan, which builds in build-asan/,
#                    and two makes must not share object files.
# Useful variables: PYTEST_ARGS (e.g. -x, -k watch), CAIRN_DIFF_OPS,
# CAIRN_DIFF_SEEDS, CAIRN_DIFF_MODE=etcd, CAIRN_TEST_TARGET=etcd.

TEST_STAGES += check-proc check-proc-asan
PROC_PYTHON ?= /usr/bin/python3
PROC_ASAN_B ?= build-asan-proc
PROC_TESTS ?= tests/integration tests/compat
PYTEST_ARGS ?=
# The ASan build is several times slower: fewer differential ops per seed.
PROC_ASAN_DIFF_OPS ?= 300

.PHONY: check-proc check-proc-asan check-proc-etcd

check-proc: $(B)/cairn
	CAIRN_BIN=$(B)/cairn $(PROC_PYTHON) -m pytest -q -p no:cacheprovider \
	    $(PYTEST_ARGS) $(PROC_TESTS)

check-proc-asan:
	@$(MAKE) --no-print-directory SAN=1 B=$(PROC_ASAN_B) $(PROC_ASAN_B)/cairn
	CAIRN_BIN=$(PROC_ASAN_B)/cairn \
	ASAN_OPTIONS=detect_leaks=1 CAIRN_TIME_SCALE=3 \
	UBSAN_OPTIONS=print_stacktrace=1 \
	CAIRN_DIFF_OPS=$${CAIRN_DIFF_OPS:-$(PROC_ASAN_DIFF_OPS)} \
	    $(PROC_PYTHON) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) \
	    $(PROC_TESTS)

# Not a stage: the same suites against etcd itself, and the differential
# etcd against etcd. Both must pass; they validate the tests and the
# differential's normalisation. Suites of cairn-only features (etcd has no
# discovery service of its own) are left out.
PROC_CAIRN_ONLY ?= tests/integration/test_discovery_service.py
check-proc-etcd:
	CAIRN_TEST_TARGET=etcd CAIRN_DIFF_MODE=etcd $(PROC_PYTHON) -m pytest -q \
	    -p no:cacheprovider $(addprefix --ignore=,$(PROC_CAIRN_ONLY)) \
	    $(PYTEST_ARGS) $(PROC_TESTS)
