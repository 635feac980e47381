/* Unit tests for src/wal/wal_backup.c on crashfs: the copy holds the newest
 * snapshot and the durable log after it and opens as a new log without
 * ids; the source is never changed (not even its torn tail); a locked
 * source, an existing backup, a missing or damaged source fail cleanly;
 * every fault of the file system ends in a clean error. */
#include "wal_helpers.h"

#include "wal/wal_int.h"

#define SEG 2048

static void snap_payload(uint64_t index, char *buf, size_t cap)
{
    snprintf(buf, cap, "store-state-at-%llu", (unsigned long long)index);
}

/* A source in /d: entries 1..to, a snapshot at `at` (0: none), all synced;
 * then `unsynced` more entries appended and lost at a crash (a torn
 * tail when the crash keeps some of their bytes). */
static void make_source(struct crashfs *c, struct model *m, uint64_t to,
                        uint64_t at)
{
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    model_init(m);
    for (uint64_t i = 1; i <= to; i++) {
        REQUIRE_EQ(append_entry(w, m, i, 1 + i / 40), CN_OK);
        if (i % 7 == 0)
            REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
        if (i == at) {
            char buf[64];
            REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
            snap_payload(at, buf, sizeof(buf));
            REQUIRE_EQ(wal_snap_save(w, at, 1 + at / 40,
                                     cn_slice_from_cstr(buf), NULL),
                       CN_OK);
            REQUIRE_EQ(wal_append_snapshot(w, at, 1 + at / 40), CN_OK);
        }
    }
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
}

static struct wal_backup_config backup_config(struct crashfs *c)
{
    struct wal_backup_config bc;
    memset(&bc, 0, sizeof(bc));
    bc.fs = crashfs_fs(c);
    bc.data_dir = "/d";
    bc.backup_dir = "/b";
    bc.segment_bytes = SEG;
    return bc;
}

/* Opens the backup and checks it against m with snapshot `at`. */
static void check_backup(struct crashfs *c, const struct model *m, uint64_t at)
{
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    cfg.data_dir = "/b";
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.created, 0);
    CHECK_EQ(rec.snap_index, at);
    if (at != 0) {
        char buf[64];
        snap_payload(at, buf, sizeof(buf));
        CHECK_EQ(rec.snap_term, 1 + at / 40);
        CHECK_EQ(rec.snap_data.len, strlen(buf));
        CHECK_MEM(rec.snap_data.data, buf, strlen(buf));
    }
    CHECK(model_matches(m, &rec));
    /* A new cluster: no ids in the copy. */
    CHECK_EQ(rec.cluster_id, 0);
    CHECK_EQ(rec.member_id, 0);
    CHECK_EQ(rec.torn_bytes, 0);
    wal_recovery_close(&rec);
    /* The copy takes new writes after the last index. */
    uint64_t next = m->count ? m->index[m->count - 1] + 1 : at + 1;
    CHECK_EQ(append_entry(w, NULL, next, 9), CN_OK);
    CHECK_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
}

TEST(wal_backup_copies_snapshot_and_log_after_it)
{
    struct crashfs *c = crashfs_new(1);
    static struct model m;
    make_source(c, &m, 120, 70);
    struct wal_backup_config bc = backup_config(c);
    struct wal_backup_result res;
    char err[CN_ERRMSG_SIZE] = "";
    REQUIRE_EQ(wal_backup(&bc, &res, err), CN_OK);
    CHECK_EQ(res.snap_index, 70);
    CHECK_EQ(res.entry_count, 50);
    CHECK_EQ(res.last_index, 120);
    check_backup(c, &m, 70);
    /* The source still opens as it was, ids and all. */
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.snap_index, 70);
    CHECK_EQ(rec.member_id, 9);
    CHECK(model_matches(&m, &rec));
    wal_recovery_close(&rec);
    wal_close(w);
    CHECK_EQ(crashfs_open_handles(c), 0);
    crashfs_free(c);
}

TEST(wal_backup_without_snapshot_copies_whole_log)
{
    struct crashfs *c = crashfs_new(2);
    static struct model m;
    make_source(c, &m, 33, 0);
    struct wal_backup_config bc = backup_config(c);
    bc.backup_wal_dir = "/bw";
    REQUIRE_EQ(wal_backup(&bc, NULL, NULL), CN_OK);
    CHECK(file_exists(c, "/bw/0000000000000000-0000000000000001.wal"));
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    cfg.data_dir = "/b";
    cfg.wal_dir = "/bw";
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.snap_index, 0);
    CHECK(model_matches(&m, &rec));
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_backup_leaves_torn_tail_out_and_source_unchanged)
{
    struct crashfs *c = crashfs_new(3);
    static struct model m;
    make_source(c, &m, 40, 20);
    /* More appends, then a power cut that keeps their bytes torn. */
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 41; i <= 45; i++)
        REQUIRE_EQ(append_entry(w, NULL, i, 2), CN_OK);
    crashfs_crash_arm(c, 1, 30); /* its write, cut inside entry 41 */
    CHECK(wal_sync(w, NULL) != CN_OK);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_KEEP, 3);
    const char *seg = "/d/member/wal/0000000000000000-0000000000000001.wal";
    uint8_t *before, *after;
    size_t before_len, after_len;
    REQUIRE_EQ(crashfs_read_file(c, seg, &before, &before_len), CN_OK);
    struct wal_backup_config bc = backup_config(c);
    struct wal_backup_result res;
    char err[CN_ERRMSG_SIZE] = "";
    REQUIRE_EQ(wal_backup(&bc, &res, err), CN_OK);
    CHECK(res.torn_bytes > 0);
    CHECK_EQ(res.last_index, 40);
    REQUIRE_EQ(crashfs_read_file(c, seg, &after, &after_len), CN_OK);
    CHECK_EQ(after_len, before_len);
    CHECK(memcmp(before, after, before_len) == 0);
    free(before);
    free(after);
    check_backup(c, &m, 20);
    crashfs_free(c);
}

TEST(wal_backup_refuses_locked_source_existing_backup_and_missing_source)
{
    struct crashfs *c = crashfs_new(4);
    static struct model m;
    char err[CN_ERRMSG_SIZE] = "";
    struct wal_backup_config bc = backup_config(c);
    CHECK_EQ(wal_backup(&bc, NULL, err), CN_ENOTFOUND);
    CHECK(strstr(err, "no cairn log") != NULL);
    make_source(c, &m, 10, 0);
    struct cn_fs_file *lock;
    REQUIRE_EQ(wal_lock(crashfs_fs(c), "/d", &lock, NULL), CN_OK);
    CHECK_EQ(wal_backup(&bc, NULL, err), CN_ELOCKED);
    CHECK(strstr(err, "in use") != NULL);
    CHECK(!file_exists(c, "/b/member/wal/0000000000000000-0000000000000001"
                          ".wal"));
    wal_unlock(crashfs_fs(c), lock);
    REQUIRE_EQ(wal_backup(&bc, NULL, err), CN_OK);
    CHECK_EQ(wal_backup(&bc, NULL, err), CN_EEXIST);
    bc.backup_dir = "/d";
    CHECK_EQ(wal_backup(&bc, NULL, err), CN_EINVAL);
    check_backup(c, &m, 0);
    crashfs_free(c);
}

TEST(wal_backup_refuses_damaged_source)
{
    struct crashfs *c = crashfs_new(5);
    static struct model m;
    make_source(c, &m, 60, 0);
    /* A byte in the middle of the first segment (synced, records after). */
    const char *seg = "/d/member/wal/0000000000000000-0000000000000001.wal";
    uint8_t x = 0x5a;
    REQUIRE_EQ(crashfs_poke(c, seg, 200, &x, 1), CN_OK);
    struct wal_backup_config bc = backup_config(c);
    char err[CN_ERRMSG_SIZE] = "";
    CHECK_EQ(wal_backup(&bc, NULL, err), CN_ECORRUPT);
    CHECK(strstr(err, "0000000000000000-0000000000000001.wal") != NULL);
    CHECK(!file_exists(c, "/b/member/wal/0000000000000000-0000000000000001"
                          ".wal"));
    CHECK_EQ(crashfs_open_handles(c), 0);
    crashfs_free(c);
}

TEST(wal_backup_fault_loop_ends_in_success_or_clean_error)
{
    static struct model m;
    int succeeded = 0;
    for (long nth = 1; nth < 400 && !succeeded; nth++) {
        struct crashfs *c = crashfs_new(6);
        make_source(c, &m, 50, 30);
        struct wal_backup_config bc = backup_config(c);
        char err[CN_ERRMSG_SIZE] = "";
        crashfs_fault_arm(c, CRASHFS_F_ALL, nth, CN_EIO);
        int rc = wal_backup(&bc, NULL, err);
        int fired = crashfs_fault_disarm(c);
        CHECK_EQ(crashfs_open_handles(c), 0);
        if (!fired) {
            CHECK_EQ(rc, CN_OK);
            check_backup(c, &m, 30);
            succeeded = 1;
        } else if (rc != CN_OK) {
            CHECK(err[0] != '\0');
        }
        /* The source is intact whatever failed. */
        struct wal_config cfg = test_config(crashfs_fs(c), SEG);
        struct wal_recovery rec;
        struct wal *w = open_ok(&cfg, &rec);
        REQUIRE(w != NULL);
        CHECK(model_matches(&m, &rec));
        wal_recovery_close(&rec);
        wal_close(w);
        crashfs_free(c);
    }
    CHECK(succeeded);
}

TEST(wal_backup_allocation_faults_end_in_success_or_enomem)
{
    static struct model m;
    int succeeded = 0;
    for (long nth = 1; nth < 2000 && !succeeded; nth++) {
        struct crashfs *c = crashfs_new(7);
        make_source(c, &m, 30, 20);
        struct wal_backup_config bc = backup_config(c);
        cn_mem_fault_arm(nth, 0);
        int rc = wal_backup(&bc, NULL, NULL);
        cn_mem_fault_disarm();
        CHECK(rc == CN_OK || rc == CN_ENOMEM);
        CHECK_EQ(crashfs_open_handles(c), 0);
        if (rc == CN_OK) {
            check_backup(c, &m, 20);
            succeeded = 1;
        }
        crashfs_free(c);
    }
    CHECK(succeeded);
}
