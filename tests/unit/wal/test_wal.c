/* Unit tests for src/wal/wal.c: appending, batches, truncation, sticky
 * failures, fault loops, locking (all on crashfs). */
#include "wal_helpers.h"

#include "wal/wal_int.h"

#define SEG_SMALL 2048

TEST(wal_open_fresh_creates_layout)
{
    struct crashfs *c = crashfs_new(1);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG_SMALL);
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.created, 1);
    CHECK_EQ(rec.entry_count, 0);
    CHECK(
        file_exists(c, "/d/member/wal/0000000000000000-0000000000000001.wal"));
    CHECK_STR(wal_dir_path(w), "/d/member/wal");
    CHECK_STR(wal_snap_dir_path(w), "/d/member/snap");
    wal_recovery_close(&rec);
    wal_close(w);
    /* A crash right after creation keeps it all: open found a log. */
    crashfs_reboot(c, CRASHFS_LOSE, 1);
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.created, 0);
    CHECK_EQ(rec.cluster_id, 7);
    CHECK_EQ(rec.member_id, 9);
    wal_recovery_close(&rec);
    wal_close(w);
    CHECK_EQ(crashfs_open_handles(c), 0);
    crashfs_free(c);
}

TEST(wal_append_sync_reopen_replays_everything)
{
    struct crashfs *c = crashfs_new(2);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG_SMALL);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 1; i <= 200; i++) {
        REQUIRE_EQ(append_entry(w, &m, i, 1 + i / 50), CN_OK);
        if (i % 10 == 0) {
            struct wal_hard_state hs = {1 + i / 50, 3, i - 5};
            REQUIRE_EQ(wal_append_hard_state(w, &hs), CN_OK);
            m.hs = hs;
            m.hs_set = 1;
        }
    }
    struct wal_pos pos;
    REQUIRE_EQ(wal_sync(w, &pos), CN_OK);
    CHECK_EQ(pos.seq, 220);
    CHECK_EQ(pos.last_index, 200);
    CHECK_EQ(pos.last_term, 5);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 2);

    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.torn_bytes, 0);
    CHECK_STR(rec.notes, "");
    /* Small segments: the log was cut several times. */
    CHECK(
        file_exists(c, "/d/member/wal/0000000000000001-0000000000000012.wal") ||
        w->seg_count > 3);
    CHECK(w->seg_count > 3);
    wal_appended(w, &pos);
    CHECK_EQ(pos.last_index, 200);
    CHECK_EQ(pos.last_term, 5);
    /* Appending goes on after recovery. */
    REQUIRE_EQ(append_entry(w, &m, 201, 5), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 3);
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(model_matches(&m, &rec));
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_unsynced_appends_are_lost_by_a_crash)
{
    struct crashfs *c = crashfs_new(3);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG_SMALL);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 1; i <= 5; i++)
        REQUIRE_EQ(append_entry(w, &m, i, 1), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    for (uint64_t i = 6; i <= 9; i++)
        REQUIRE_EQ(append_entry(w, NULL, i, 1), CN_OK);
    CHECK(wal_pending_bytes(w) > 0);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_KEEP, 3);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(model_matches(&m, &rec));
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_append_entry_replaces_suffix_on_conflict)
{
    struct crashfs *c = crashfs_new(4);
    struct wal_config cfg = test_config(crashfs_fs(c), 1024);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 1; i <= 30; i++)
        REQUIRE_EQ(append_entry(w, &m, i, 1), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    /* A new leader overwrites 12.. (crossing segment boundaries). */
    for (uint64_t i = 12; i <= 20; i++)
        REQUIRE_EQ(append_entry(w, &m, i, 2), CN_OK);
    struct wal_pos pos;
    REQUIRE_EQ(wal_sync(w, &pos), CN_OK);
    CHECK_EQ(pos.last_index, 20);
    CHECK_EQ(pos.last_term, 2);
    /* And again, inside the same batch as further appends. */
    REQUIRE_EQ(append_entry(w, &m, 15, 3), CN_OK);
    REQUIRE_EQ(append_entry(w, &m, 16, 3), CN_OK);
    REQUIRE_EQ(append_entry(w, &m, 14, 4), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 4);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    REQUIRE(model_matches(&m, &rec));
    CHECK_EQ(rec.entry_count, 14);
    CHECK_EQ(rec.entries[13].index, 14);
    CHECK_EQ(rec.entries[13].term, 4);
    CHECK_EQ(rec.entries[12].term, 2);
    CHECK_EQ(rec.entries[10].term, 1);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_append_rejects_bad_indexes)
{
    struct crashfs *c = crashfs_new(5);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG_SMALL);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    CHECK_EQ(append_entry(w, NULL, 0, 1), CN_EINVAL);
    CHECK_EQ(append_entry(w, NULL, 2, 1), CN_EINVAL);
    CHECK_EQ(append_entry(w, NULL, 1, 1), CN_OK);
    CHECK_EQ(append_entry(w, NULL, 3, 1), CN_EINVAL);
    CHECK_EQ(wal_append_snapshot(w, 0, 1), CN_EINVAL);
    CHECK_EQ(wal_append_snapshot(w, 1, 1), CN_OK);
    CHECK_EQ(append_entry(w, NULL, 1, 2), CN_EINVAL); /* under the marker */
    CHECK_EQ(wal_append_snapshot(w, 10, 3), CN_OK);   /* from a leader */
    CHECK_EQ(append_entry(w, NULL, 5, 3), CN_EINVAL);
    CHECK_EQ(append_entry(w, NULL, 11, 3), CN_OK);
    CHECK_EQ(wal_append_snapshot(w, 9, 3), CN_EINVAL);
    char byte = 'x';
    CHECK_EQ(wal_append_entry(
                 w, 12, 3, (struct cn_slice){&byte, CN_WAL_RECORD_BYTES_MAX}),
             CN_ETOOBIG);
    struct wal_pos pos;
    wal_appended(w, &pos);
    CHECK_EQ(pos.last_index, 11);
    CHECK_EQ(pos.seq, 4);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_batch_group_commit_pipeline)
{
    struct crashfs *c = crashfs_new(6);
    struct wal_config cfg = test_config(crashfs_fs(c), 1024);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    struct wal_batch *b = NULL;
    REQUIRE_EQ(wal_batch_begin(w, &b), CN_OK);
    CHECK(b == NULL); /* nothing pending */
    uint64_t next = 1;
    for (int round = 0; round < 20; round++) {
        for (int k = 0; k < 7; k++, next++)
            REQUIRE_EQ(append_entry(w, &m, next, 1), CN_OK);
        REQUIRE_EQ(wal_batch_begin(w, &b), CN_OK);
        REQUIRE(b != NULL);
        struct wal_batch *b2;
        CHECK_EQ(wal_batch_begin(w, &b2), CN_EBUSY);
        CHECK_EQ(wal_sync(w, NULL), CN_EBUSY);
        /* Appends while the batch is in flight join the next one. */
        REQUIRE_EQ(append_entry(w, &m, next, 1), CN_OK);
        next++;
        struct wal_pos before;
        wal_durable(w, &before);
        CHECK_EQ(wal_batch_run(b), CN_OK);
        struct wal_pos pos;
        REQUIRE_EQ(wal_batch_end(w, b, &pos), CN_OK);
        CHECK_EQ(pos.last_index, next - 2);
        CHECK(pos.seq > before.seq);
        CHECK(wal_pending_bytes(w) > 0);
    }
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    CHECK_EQ(wal_pending_bytes(w), 0);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 6);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.entry_count, 160);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

/* A failed write or sync stops the wal for good. */
static void sticky_case(int kind, int err)
{
    struct crashfs *c = crashfs_new(7);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG_SMALL);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    REQUIRE_EQ(append_entry(w, &m, 1, 1), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    REQUIRE_EQ(append_entry(w, NULL, 2, 1), CN_OK);
    crashfs_fault_arm(c, kind, 1, err);
    CHECK_EQ(wal_sync(w, NULL), err);
    CHECK(crashfs_fault_disarm(c));
    CHECK(strstr(wal_errmsg(w), "stopped") != NULL);
    CHECK_EQ(append_entry(w, NULL, 3, 1), CN_ESTOPPED);
    struct wal_hard_state hs = {1, 1, 1};
    CHECK_EQ(wal_append_hard_state(w, &hs), CN_ESTOPPED);
    CHECK_EQ(wal_append_snapshot(w, 1, 1), CN_ESTOPPED);
    CHECK_EQ(wal_sync(w, NULL), CN_ESTOPPED);
    struct wal_batch *b;
    CHECK_EQ(wal_batch_begin(w, &b), CN_ESTOPPED);
    struct wal_pos pos;
    wal_durable(w, &pos);
    CHECK_EQ(pos.last_index, 1);
    wal_close(w);
    CHECK_EQ(crashfs_open_handles(c), 0);
    crashfs_reboot(c, CRASHFS_RANDOM, 7);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(rec.entry_count == 1 || rec.entry_count == 2);
    CHECK_EQ(rec.entries[0].index, 1);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_failed_write_is_sticky)
{
    sticky_case(CRASHFS_F_WRITE, CN_EIO);
    sticky_case(CRASHFS_F_WRITE, CN_ENOSPC);
}

TEST(wal_failed_sync_is_sticky)
{
    sticky_case(CRASHFS_F_SYNC, CN_EIO);
}

/* Allocation fault loop: every allocation of each operation fails in
 * turn; the operation fails cleanly with CN_ENOMEM and the wal is as it
 * was (the same operation then succeeds), or it succeeds. */
TEST(wal_alloc_fault_loop_leaves_state_unchanged)
{
    struct crashfs *c = crashfs_new(8);
    struct wal_config cfg = test_config(crashfs_fs(c), 512);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    uint64_t next = 1;
    int failures = 0;
    for (int op = 0; op < 60; op++) {
        for (long n = 1;; n++) {
            struct wal_pos before, after;
            wal_appended(w, &before);
            uint64_t pend = wal_pending_bytes(w);
            cn_mem_fault_arm(n, 0);
            int rc;
            if (op % 5 == 4)
                rc = wal_sync(w, NULL);
            else if (op % 7 == 3)
                rc = wal_append_hard_state(
                    w, &(struct wal_hard_state){1, 2, next - 1});
            else
                rc = append_entry(w, NULL, next, 1);
            long failed = cn_mem_fault_disarm();
            if (failed == 0) {
                REQUIRE_EQ(rc, CN_OK);
                break;
            }
            failures++;
            REQUIRE_EQ(rc, CN_ENOMEM);
            wal_appended(w, &after);
            CHECK_EQ(after.seq, before.seq);
            CHECK_EQ(after.last_index, before.last_index);
            CHECK_EQ(wal_pending_bytes(w), pend);
        }
        if (op % 5 == 4) {
            /* a sync */
        } else if (op % 7 != 3) {
            model_entry(&m, next, 1);
            next++;
        } else {
            m.hs = (struct wal_hard_state){1, 2, next - 1};
            m.hs_set = 1;
        }
    }
    CHECK(failures > 60);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 8);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(model_matches(&m, &rec));
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

/* wal_open under allocation faults: clean CN_ENOMEM, nothing leaked (ASan),
 * no handle left open, and the next open recovers the same log. */
TEST(wal_open_alloc_fault_loop)
{
    struct crashfs *c = crashfs_new(9);
    struct wal_config cfg = test_config(crashfs_fs(c), 512);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 1; i <= 40; i++)
        REQUIRE_EQ(append_entry(w, &m, i, 1), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    REQUIRE_EQ(wal_snap_save(w, 20, 1, CN_SLICE_LIT("state@20"), NULL), CN_OK);
    REQUIRE_EQ(wal_append_snapshot(w, 20, 1), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
    int failures = 0;
    for (long n = 1;; n++) {
        struct wal_recovery rec;
        char err[CN_ERRMSG_SIZE];
        cn_mem_fault_arm(n, 0);
        int rc = wal_open(&cfg, &w, &rec, err);
        long failed = cn_mem_fault_disarm();
        if (rc == CN_OK) {
            CHECK(model_matches(&m, &rec));
            CHECK_EQ(rec.snap_index, 20);
            wal_recovery_close(&rec);
            wal_close(w);
            if (failed == 0)
                break;
            continue;
        }
        failures++;
        CHECK_EQ(rc, CN_ENOMEM);
        CHECK_EQ(crashfs_open_handles(c), 0);
    }
    CHECK(failures > 5);
    crashfs_free(c);
}

/* File-system fault loop: the nth fs call of a sync (or open) fails; the
 * call fails cleanly and a later recovery holds every synced record, plus
 * the batch's records only if the sync succeeded. */
TEST(wal_fs_fault_loop_sync_and_open)
{
    int kinds[] = {CRASHFS_F_WRITE, CRASHFS_F_SYNC, CRASHFS_F_ALLOC,
                   CRASHFS_F_OPEN,  CRASHFS_F_META, CRASHFS_F_READ};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (long n = 1; n < 50; n++) {
            struct crashfs *c = crashfs_new(10 + (uint64_t)n);
            struct wal_config cfg = test_config(crashfs_fs(c), 512);
            static struct history h;
            h.count = 0;
            struct wal *w = open_ok(&cfg, NULL);
            REQUIRE(w != NULL);
            for (uint64_t i = 1; i <= 10; i++) {
                REQUIRE_EQ(append_entry(w, NULL, i, 1), CN_OK);
                history_add(&h, H_ENTRY, i, 1, 0);
            }
            REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
            size_t synced = h.count;
            /* Enough to cut a segment or two. */
            for (uint64_t i = 11; i <= 25; i++) {
                REQUIRE_EQ(append_entry(w, NULL, i, 1), CN_OK);
                history_add(&h, H_ENTRY, i, 1, 0);
            }
            crashfs_fault_arm(c, kinds[k], n, CN_EIO);
            int rc = wal_sync(w, NULL);
            int fired = crashfs_fault_disarm(c);
            CHECK(fired ? rc == CN_EIO : rc == CN_OK);
            wal_close(w);
            crashfs_reboot(c, CRASHFS_RANDOM, (uint64_t)n * 31 + k);
            /* Open with the same fault: clean error, then a clean open. */
            struct wal_recovery rec;
            char err[CN_ERRMSG_SIZE];
            crashfs_fault_arm(c, kinds[k], n, CN_EIO);
            int orc = wal_open(&cfg, &w, &rec, err);
            int ofired = crashfs_fault_disarm(c);
            if (orc == CN_OK) {
                wal_recovery_close(&rec);
                wal_close(w);
            } else {
                CHECK(ofired);
                CHECK_EQ(orc, CN_EIO);
            }
            CHECK_EQ(crashfs_open_handles(c), 0);
            w = open_ok(&cfg, &rec);
            REQUIRE(w != NULL);
            /* A failed batch may have left part of itself durable (never
             * acknowledged); a successful one is there in full. */
            CHECK(history_match(&h, rc == CN_OK ? h.count : synced, &rec) >= 0);
            wal_recovery_close(&rec);
            wal_close(w);
            crashfs_free(c);
            if (!fired && !ofired)
                break;
        }
    }
}

TEST(wal_lock_refuses_second_holder)
{
    struct crashfs *c = crashfs_new(11);
    const struct cn_fs *fs = crashfs_fs(c);
    struct cn_fs_file *l1, *l2;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(wal_lock(fs, "/d", &l1, err), CN_OK);
    CHECK_EQ(wal_lock(fs, "/d", &l2, err), CN_ELOCKED);
    CHECK(strstr(err, "/d") != NULL);
    wal_unlock(fs, l1);
    REQUIRE_EQ(wal_lock(fs, "/d", &l2, err), CN_OK);
    wal_unlock(fs, l2);
    crashfs_free(c);
}
