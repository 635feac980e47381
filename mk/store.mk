# store: differential test against a real etcd 3.4 (make test stage).
#   check-store-etcd-diff  seeded random requests to etcd and to the store,
#                          answers compared byte for byte

TEST_STAGES += check-store-etcd-diff

STORE_DIFF_HARNESS = $(B)/tests/unit/store/etcd_diff_harness

$(STORE_DIFF_HARNESS): $(B)/obj/tests/unit/store/etcd_diff_harness.o \
                       $(B)/lib/libcn_store.a $(B)/lib/libcn_base.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $^ -lm -o $@

.PHONY: check-store-etcd-diff
check-store-etcd-diff: $(STORE_DIFF_HARNESS)
	/usr/bin/python3 tests/unit/store/etcd_diff.py $(STORE_DIFF_HARNESS) \
	    --seeds 1,2 --ops 1500
