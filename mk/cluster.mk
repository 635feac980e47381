# Cluster networking pieces: peer transport (src/server/peer.c), member and
# cluster IDs (member_id.c), the discovery client (discovery.c) and the
# discovery service (src/http/http_discovery.c). See docs/cluster.md.
#   check-cluster-unit   the unit tests of the first three, each linked with
#                        only the files it tests (+ base, config), so they
#                        build while the rest of src/server is changing.
#                        (check-unit runs the same tests linked the usual way.)
#   check-discovery-service  process test: 3 real etcd 3.4 processes
#                        bootstrap through cairn's GET /new.

TEST_STAGES += check-discovery-service
.PHONY: check-cluster-unit check-discovery-service

CLUSTER_OBJ = $(B)/obj/src/server
CLUSTER_BASE_LIBS = $(B)/lib/libcn_config.a $(B)/lib/libcn_base.a
CLUSTER_UNIT_DEPS_test_member_id = member_id
CLUSTER_UNIT_DEPS_test_peer =
CLUSTER_UNIT_DEPS_test_discovery = member_id
CLUSTER_UNIT_TESTS = $(foreach t,test_member_id test_peer test_discovery,\
    $(if $(wildcard tests/unit/server/$(t).c),$(B)/cluster/$(t)))

define cluster_unit_rule
$(B)/cluster/$(1): $(B)/obj/tests/unit/server/$(1).o \
    $(patsubst %,$(CLUSTER_OBJ)/%.o,$(CLUSTER_UNIT_DEPS_$(1))) \
    $(TESTLIB_OBJS) $(CLUSTER_BASE_LIBS)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(ALL_LDFLAGS) $$^ $$(LIBS) -o $$@
endef
$(foreach t,test_member_id test_peer test_discovery,\
    $(eval $(call cluster_unit_rule,$(t))))

check-cluster-unit: $(CLUSTER_UNIT_TESTS)
	prove -f $(CLUSTER_UNIT_TESTS)

check-discovery-service: $(B)/cairn
	CAIRN_BIN=$(B)/cairn /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	    tests/integration/test_discovery_service.py
