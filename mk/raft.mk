# Raft core and its deterministic simulator.
#   make sim SEED=<s> RUNS=<n>   n fresh seeds from s; ends "N passed, N failed"
#   check-sim        fixed seeds (tests/sim/seeds.txt), determinism, scenarios,
#                    and proof that the seeds catch each deliberate bug
#   check-sim-long   fresh seeds for SIM_MINUTES (default 30)
#   bench-sim        simulated 3-node throughput (make bench)
# The simulator links the production core (libcn_raft.a) and base. Bug builds
# compile the core again with -DRAFT_BUG_* into $(B)/sim-bug-<name>/.

SIM_SRCS = $(wildcard tests/sim/*.c)
SIM_OBJS = $(patsubst %.c,$(B)/obj/%.o,$(SIM_SRCS))
SIM_BIN = $(B)/tests/sim/cairn-sim
SIM_SEEDS = tests/sim/seeds.txt
SIM_SCENARIOS = $(sort $(wildcard tests/sim/scenarios/*.txt))
SIM_MINUTES ?= 30
SEED ?= 1
RUNS ?= 100
RAFT_SRCS = $(wildcard src/raft/*.c)
RAFT_BUGS = COMMIT_OLD_TERM VOTE_NO_LOG_CHECK READ_NO_QUORUM ACK_BEFORE_PERSIST

TEST_STAGES += check-sim
TEST_LONG_STAGES += check-sim-long
BENCH_STAGES += bench-sim

.PHONY: bench-sim sim check-sim check-sim-long check-sim-seeds check-sim-determinism \
        check-sim-scenarios check-sim-bugs sim-bugs

all: $(SIM_BIN)

$(SIM_BIN): $(SIM_OBJS) $(B)/lib/libcn_raft.a $(B)/lib/libcn_base.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $(SIM_OBJS) $(B)/lib/libcn_raft.a \
	    $(B)/lib/libcn_base.a $(LIBS) -o $@

sim: $(SIM_BIN)
	./$(SIM_BIN) --seed $(SEED) --runs $(RUNS) --quiet

check-sim: check-sim-seeds check-sim-determinism check-sim-scenarios \
           check-sim-bugs

check-sim-seeds: $(SIM_BIN)
	./$(SIM_BIN) --seeds-file $(SIM_SEEDS) --quiet

check-sim-determinism: $(SIM_BIN)
	./$(SIM_BIN) --determinism --seed $$(grep -m1 '^[0-9]' $(SIM_SEEDS))

check-sim-scenarios: $(SIM_BIN)
	./$(SIM_BIN) --scenario $(SIM_SCENARIOS)

check-sim-long: $(SIM_BIN)
	./$(SIM_BIN) --minutes $(SIM_MINUTES) --quiet

# Fault-free 3-node cluster: commits per CPU second of the whole simulation.
bench-sim: $(SIM_BIN)
	./$(SIM_BIN) --bench

# One broken core per switch, each linked into its own simulator.
define raft_bug_rules
$(B)/sim-bug-$(1)/obj/%.o: %.c
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_CFLAGS) -DRAFT_BUG_$(1) -c $$< -o $$@

$(B)/sim-bug-$(1)/cairn-sim: $(patsubst %.c,$(B)/sim-bug-$(1)/obj/%.o,$(RAFT_SRCS) $(SIM_SRCS)) $(B)/lib/libcn_base.a
	$$(CC) $$(ALL_LDFLAGS) $$^ $$(LIBS) -o $$@
endef
$(foreach b,$(RAFT_BUGS),$(eval $(call raft_bug_rules,$(b))))

sim-bugs: $(foreach b,$(RAFT_BUGS),$(B)/sim-bug-$(b)/cairn-sim)

# Each deliberate bug must make some fixed seed fail; the Figure 8 scenario
# must also expose the commit-rule bug.
check-sim-bugs: sim-bugs
	@for b in $(RAFT_BUGS); do \
	  if out=$$(./$(B)/sim-bug-$$b/cairn-sim --seeds-file $(SIM_SEEDS) \
	              --quiet --expect-fail 2>&1); then \
	    echo "bug $$b caught: $$(echo "$$out" | grep -E '^FAIL seed=[0-9]+:')"; \
	  else \
	    echo "bug $$b NOT caught by $(SIM_SEEDS)"; exit 1; \
	  fi; \
	done
	@if ./$(B)/sim-bug-COMMIT_OLD_TERM/cairn-sim --expect-fail \
	    --scenario tests/sim/scenarios/figure8.txt >/dev/null 2>&1; then \
	  echo "bug COMMIT_OLD_TERM caught by figure8.txt"; \
	else \
	  echo "bug COMMIT_OLD_TERM NOT caught by figure8.txt"; exit 1; \
	fi
