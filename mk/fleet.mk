# fleet: units on a fleet of machines (src/fleet, docs/units.md).
#   check-unit-fleet  (generic) parser, scheduler, JSON unit tests
#   check-fleet       process tests (tests/fleet): real cairn-agent and
#                     cairn-fleetctl on build/cairn AND on etcd 3.4
#                     (FLEET_TEST_TARGETS=etcd or =cairn runs one of them)
#   bench-fleet       figures: start -> running, agent death -> running
#                     elsewhere, 1000 units on 10 agents (BENCH_UNITS=...;
#                     QUICK=1: 200 units)

TEST_STAGES += check-fleet
BENCH_STAGES += bench-fleet

FLEET_PY = /usr/bin/python3
FLEET_PROGS = $(B)/cairn-agent $(B)/cairn-fleetctl $(B)/cairn

.PHONY: check-fleet bench-fleet

check-fleet: $(FLEET_PROGS)
	FLEET_BUILD=$(B) CAIRN_BIN=$(B)/cairn $(FLEET_PY) -m pytest -q \
	    -p no:cacheprovider tests/fleet

bench-fleet: $(FLEET_PROGS)
	FLEET_BUILD=$(B) CAIRN_BIN=$(B)/cairn \
	    $(if $(QUICK),BENCH_UNITS=$${BENCH_UNITS:-200}) \
	    $(FLEET_PY) tests/fleet/bench_fleet.py
