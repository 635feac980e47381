# A local cluster in one command (scripts/cluster.sh; README "A local
# cluster").
#   make cluster [NODES=5] [PORT=32379]   N members on 127.0.0.1, ports from
#                        PORT (2379) on, fresh data dirs in a temp dir; in the
#                        foreground until Ctrl-C, which stops exactly those
#                        members and removes their data
#   check-localcluster   process test of the script (start, answer, SIGINT /
#                        SIGTERM, a member dying, a port in use); ~20 s

TEST_STAGES += check-localcluster
.PHONY: cluster check-localcluster

cluster: $(B)/cairn $(B)/cairnctl
	@CAIRN=$(B)/cairn $(if $(NODES),NODES=$(NODES)) \
	    $(if $(PORT),PORT=$(PORT)) bash scripts/cluster.sh

check-localcluster: $(B)/cairn
	CAIRN_BIN=$(B)/cairn /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	    tests/integration/test_localcluster.py
