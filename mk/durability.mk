# Durability of the cairn server (issue 4): process tests in
# tests/durability (kill -9 under load, torn and damaged logs, disk full on
# a tmpfs, data dir lock, snapshots, backup) against $(B)/cairn.
#   check-durability   make test stage (about a minute)

TEST_STAGES += check-durability
DUR_PY = /usr/bin/python3

.PHONY: check-durability

check-durability: $(B)/cairn
	CAIRN_BIN=$(B)/cairn $(DUR_PY) -m pytest -q -p no:cacheprovider \
	    tests/durability
