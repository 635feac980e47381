# cairn-bench, the load generator, and `make bench` (see docs/performance.md).
#   $(B)/cairn-bench     built from bench/src/*.c (base + libuv only)
#   check-bench-unit     TAP tests in bench/tests/ (histogram, HTTP parser)
#                        and clang-format over bench/
#   check-bench-smoke    ~2 s of cairn-bench against $(B)/cairn, 4 conns:
#                        non-zero throughput, zero errors (SMOKE_SERVER=etcd
#                        runs it against etcd instead)
#   bench-compare        the cairn vs etcd comparison (QUICK=1: < 3 min)
#   bench-cluster        the same in 3-node mode (below)

TEST_STAGES += check-bench-unit check-bench-smoke
BENCH_STAGES += bench-compare

BENCH_PY = /usr/bin/python3
BENCH_SRCS = $(wildcard bench/src/*.c)
BENCH_OBJS = $(patsubst %.c,$(B)/obj/%.o,$(BENCH_SRCS))
BENCH_LIB_OBJS = $(filter-out %/main.o,$(BENCH_OBJS))
BENCH_UNIT_SRCS = $(wildcard bench/tests/test_*.c)
BENCH_UNIT_TESTS = $(patsubst %.c,$(B)/%,$(BENCH_UNIT_SRCS))

.PHONY: check-bench-unit check-bench-smoke bench-compare bench-tools

programs: $(B)/cairn-bench
bench-tools: $(B)/cairn-bench

$(B)/cairn-bench: $(BENCH_OBJS) $(B)/lib/libcn_base.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(BENCH_OBJS) $(B)/lib/libcn_base.a $(LIBS) -o $@

$(B)/bench/tests/%: $(B)/obj/bench/tests/%.o $(BENCH_LIB_OBJS) \
                    $(TESTLIB_OBJS) $(B)/lib/libcn_base.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $< $(BENCH_LIB_OBJS) $(TESTLIB_OBJS) \
	    $(B)/lib/libcn_base.a $(LIBS) -o $@

check-bench-unit: $(BENCH_UNIT_TESTS)
	@clang-format --dry-run --Werror bench/src/*.[ch] bench/tests/*.c && \
	    echo "bench style: ok"
	prove -f $(BENCH_UNIT_TESTS)

check-bench-smoke: $(B)/cairn-bench
	$(BENCH_PY) bench/run.py smoke --build $(B) \
	    $(if $(SMOKE_SERVER),--server $(SMOKE_SERVER))

bench-compare: $(B)/cairn-bench
	$(BENCH_PY) bench/run.py compare --build $(B) $(if $(QUICK),--quick)

# 3-node mode: bench/run.py cluster (3 cairn and 3 etcd members on
# 127.0.0.1): PUT and quorum GET at 64/256 connections over all members and
# to the leader only, and kill -9 of the leader to the first acknowledged
# write. A cairn cluster that does not form is one line and n/a figures.
#   make bench-cluster [QUICK=1]    this alone (QUICK=1: about 1 min)
BENCH_STAGES += bench-cluster
.PHONY: bench-cluster

bench-cluster: $(B)/cairn $(B)/cairn-bench
	$(BENCH_PY) bench/run.py cluster --build $(B) $(if $(QUICK),--quick)
