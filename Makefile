# cairn build. Targets:
#   make            build every program into build/
#   make run        build, then start a single-node store on 127.0.0.1:2379
#   make test       the whole test suite (deps, build, unit, sim, process,
#                   sanitizers, fuzz, style); ends with the runners' summaries
#   make test-long  soaks and long simulations
#   make bench      benchmarks against etcd
# SAN=1 builds with ASan+UBSan into build-asan/. Module fragments in mk/*.mk
# add their own rules and test stages.

SAN ?=
ifeq ($(SAN),1)
B ?= build-asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined
OPT = -O1
else
B ?= build
SANFLAGS =
OPT = -O2
endif

CC ?= cc
PKGS = libuv jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser

WARN = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
       -Wmissing-prototypes -Wno-unused-parameter
CFLAGS ?= $(OPT) -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) $(SANFLAGS) \
             -Isrc -Itests/lib $(PKG_CFLAGS) -MMD -MP
LDFLAGS ?=
ALL_LDFLAGS = $(LDFLAGS) $(SANFLAGS)
LIBS = $(PKG_LIBS) -lm -lpthread

# Link order: dependents before what they use.
MODULES = fleet http server cli config store raft wal base
MODULE_SRCS = $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c))
MODULE_LIBS = $(foreach m,$(MODULES),$(if $(wildcard src/$(m)/*.c),$(B)/lib/libcn_$(m).a))

CMD_SRCS = $(wildcard src/cmd/*.c)
PROGRAMS = $(patsubst src/cmd/%.c,$(B)/%,$(CMD_SRCS))

TESTLIB_SRCS = $(wildcard tests/lib/*.c)
TESTLIB_OBJS = $(patsubst %.c,$(B)/obj/%.o,$(TESTLIB_SRCS))
UNIT_SRCS = $(wildcard tests/unit/*/test_*.c)
UNIT_TESTS = $(patsubst %.c,$(B)/%,$(UNIT_SRCS))

# Stages of `make test`, in order. Fragments append to TEST_STAGES.
TEST_STAGES = check-style check-includes check-unit
TEST_LONG_STAGES =
BENCH_STAGES =

.PHONY: all run test test-long bench deps clean programs unit-tests \
        check-unit check-style check-includes format
.DEFAULT_GOAL := all
# Keep objects that pattern chains would otherwise delete.
.SECONDARY:

all: programs unit-tests

programs: $(PROGRAMS)
unit-tests: $(UNIT_TESTS)

define module_rules
$(B)/lib/libcn_$(1).a: $(patsubst %.c,$(B)/obj/%.o,$(wildcard src/$(1)/*.c))
	@mkdir -p $$(dir $$@)
	@rm -f $$@
	ar rcs $$@ $$^
endef
$(foreach m,$(MODULES),$(eval $(call module_rules,$(m))))

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# What each module's code may use (STYLE.md section 8), in link order. A
# unit test of module m links only these, so a half-written module does not
# stop the others' tests from building.
DEPS_base = base
DEPS_wal = wal base
DEPS_raft = raft base
DEPS_store = store base
DEPS_config = config base
DEPS_server = server config store raft wal base
DEPS_http = http server config store raft wal base
DEPS_cli = cli wal base
DEPS_fleet = fleet cli wal base
libs_of = $(foreach d,$(DEPS_$(1)),$(if $(wildcard src/$(d)/*.c),$(B)/lib/libcn_$(d).a))

# Programs link every module unless PROG_DEPS_<name> narrows it.
PROG_DEPS_cairn = http
PROG_DEPS_cairnctl = cli
PROG_DEPS_cairn-agent = fleet
PROG_DEPS_cairn-fleetctl = fleet
prog_libs = $(if $(PROG_DEPS_$(1)),$(call libs_of,$(PROG_DEPS_$(1))),$(MODULE_LIBS))

define program_rule
$(B)/$(1): $(B)/obj/src/cmd/$(1).o $(call prog_libs,$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) $$< $(call prog_libs,$(1)) $$(LIBS) -o $$@
endef
$(foreach p,$(patsubst src/cmd/%.c,%,$(CMD_SRCS)),$(eval $(call program_rule,$(p))))

define unit_rule
$(B)/tests/unit/$(1)/%: $(B)/obj/tests/unit/$(1)/%.o $(TESTLIB_OBJS) $(call libs_of,$(1))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) $$< $(TESTLIB_OBJS) $(call libs_of,$(1)) $$(LIBS) -o $$@
endef
$(foreach m,$(MODULES),$(eval $(call unit_rule,$(m))))

deps:
	@bash scripts/deps.sh

run: deps
	@$(MAKE) --no-print-directory programs
	./$(B)/cairn --name default --data-dir ./default.cairn \
	    --listen-client-urls http://127.0.0.1:2379 \
	    --advertise-client-urls http://127.0.0.1:2379

test: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run-stages.sh $(TEST_STAGES)

test-long: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run-stages.sh $(TEST_LONG_STAGES)

bench: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/run-stages.sh $(BENCH_STAGES)

check-unit: unit-tests
	prove -f $(UNIT_TESTS)

# One module's unit tests only: make check-unit-store
check-unit-%:
	@$(MAKE) --no-print-directory $(filter $(B)/tests/unit/$*/%,$(UNIT_TESTS))
	prove -f $(filter $(B)/tests/unit/$*/%,$(UNIT_TESTS))

STYLE_FILES = $(shell find src tests -name '*.[ch]' 2>/dev/null)
check-style:
	@clang-format --dry-run --Werror $(STYLE_FILES) && echo "style: ok"

format:
	clang-format -i $(STYLE_FILES)

check-includes:
	@bash scripts/check-includes.sh

clean:
	rm -rf build build-asan build-asan-proc build-fuzz

-include mk/*.mk
-include $(shell find $(B) -name '*.d' 2>/dev/null)
