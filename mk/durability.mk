# Durability of the cairn server (issue 4): process tests in
# tests/durability (kill -9 under load, torn and damaged logs, disk full on
# a tmpfs, data dir lock, snapshots, backup) against $(B)/cairn.
#   check-durability   make test stage (about a minute)
# $(B)/tests/durability/cairn-backup-test is a test-only driver of
# wal_backup() (the call `cairnctl backup` makes), built here only.

TEST_STAGES += check-durability
DUR_PY = /usr/bin/python3
DUR_BACKUP = $(B)/tests/durability/cairn-backup-test

.PHONY: check-durability

$(DUR_BACKUP): $(B)/obj/tests/durability/backup_main.o \
               $(B)/lib/libcn_wal.a $(B)/lib/libcn_base.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) $< $(B)/lib/libcn_wal.a $(B)/lib/libcn_base.a \
	    $(LIBS) -o $@

check-durability: $(B)/cairn $(DUR_BACKUP)
	CAIRN_BIN=$(B)/cairn CAIRN_BACKUP_BIN=$(DUR_BACKUP) \
	    $(DUR_PY) -m pytest -q -p no:cacheprovider tests/durability
