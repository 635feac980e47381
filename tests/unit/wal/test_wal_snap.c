/* Unit tests for src/wal/wal_snap.c and wal_purge: snapshot save/load,
 * fallback to an older snapshot, crashes at every step of a save,
 * retention of snapshots and segments. */
#include "wal_helpers.h"

#include "wal/wal_int.h"

#define SEG 1024

static void snap_payload(uint64_t index, char *buf, size_t cap)
{
    snprintf(buf, cap, "store-state-at-%llu", (unsigned long long)index);
}

/* Appends entries up to `to`, then saves a snapshot at `at` with its
 * marker and syncs (the driver's order). */
static void grow_and_snap(struct wal *w, struct model *m, uint64_t *next,
                          uint64_t to, uint64_t at)
{
    for (; *next <= to; (*next)++)
        CN_ASSERT(append_entry(w, m, *next, 1) == CN_OK);
    CN_ASSERT(wal_sync(w, NULL) == CN_OK);
    char buf[64];
    snap_payload(at, buf, sizeof(buf));
    CN_ASSERT(wal_snap_save(w, at, 1, cn_slice_from_cstr(buf), NULL) == CN_OK);
    CN_ASSERT(wal_append_snapshot(w, at, 1) == CN_OK);
    CN_ASSERT(wal_sync(w, NULL) == CN_OK);
}

/* The path of the snapshot file at index (term 1). */
static void snap_file(uint64_t index, char *path, size_t cap)
{
    char name[64];
    wal_snap_name(1, index, name, sizeof(name));
    snprintf(path, cap, "/d/member/snap/%s", name);
}

static int snap_is(const struct wal_recovery *rec, uint64_t index)
{
    char buf[64];
    snap_payload(index, buf, sizeof(buf));
    return rec->snap_index == index && rec->snap_term == 1 &&
           rec->snap_data.len == strlen(buf) &&
           memcmp(rec->snap_data.data, buf, rec->snap_data.len) == 0;
}

/* A log with snapshots at 20 and 50 and entries up to 70, all synced. */
static struct crashfs *two_snapshots(unsigned seed, struct wal_config *cfg,
                                     struct model *m)
{
    struct crashfs *c = crashfs_new(seed);
    *cfg = test_config(crashfs_fs(c), SEG);
    model_init(m);
    struct wal *w = open_ok(cfg, NULL);
    CN_ASSERT(w != NULL);
    uint64_t next = 1;
    grow_and_snap(w, m, &next, 30, 20);
    grow_and_snap(w, m, &next, 60, 50);
    for (; next <= 70; next++)
        CN_ASSERT(append_entry(w, m, next, 1) == CN_OK);
    CN_ASSERT(wal_sync(w, NULL) == CN_OK);
    wal_close(w);
    return c;
}

TEST(wal_snap_restores_newest_snapshot_and_log_after_it)
{
    struct wal_config cfg;
    struct model m;
    struct crashfs *c = two_snapshots(1, &cfg, &m);
    struct wal *w;
    crashfs_reboot(c, CRASHFS_LOSE, 1);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 50));
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.entry_count, 20);
    CHECK_EQ(rec.entries[0].index, 51);
    CHECK_EQ(rec.snaps_skipped, 0);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_snap_damaged_newest_falls_back_to_older)
{
    struct crashfs *c = crashfs_new(2);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    uint64_t next = 1;
    grow_and_snap(w, &m, &next, 30, 20);
    grow_and_snap(w, &m, &next, 60, 50);
    wal_close(w);
    char path[128];
    snap_file(50, path, sizeof(path));
    uint8_t x = 0xee;
    REQUIRE_EQ(crashfs_poke(c, path, 45, &x, 1), CN_OK);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 20));
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.entry_count, 40);
    CHECK_EQ(rec.snaps_skipped, 1);
    CHECK(strstr(rec.notes, "bad checksum") != NULL);
    wal_recovery_close(&rec);
    wal_close(w);
    /* A cut file is as bad. */
    REQUIRE_EQ(crashfs_cut(c, path, 30), CN_OK);
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 20));
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

/* The name of the segment with sequence number seq, in /d/member/wal. */
static void segment_path(struct crashfs *c, uint64_t seq, char *out, size_t cap)
{
    char **names;
    size_t count;
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "%016llx-", (unsigned long long)seq);
    out[0] = '\0';
    CN_ASSERT(CN_FS_CALL(crashfs_fs(c), list, "/d/member/wal", &names, &count,
                         NULL) == CN_OK);
    for (size_t i = 0; i < count; i++)
        if (strncmp(names[i], prefix, 17) == 0)
            snprintf(out, cap, "/d/member/wal/%s", names[i]);
    cn_fs_names_free(names, count);
}

TEST(wal_snap_segments_below_the_newest_snapshot_are_not_read)
{
    struct wal_config cfg;
    struct model m;
    struct crashfs *c = two_snapshots(3, &cfg, &m);
    struct wal *w;
    /* Segment 0 lies wholly below snapshot 50 (segment 1 starts at or
     * below it): damage in it goes unread, as it holds nothing needed. */
    char seg0[128], seg1[128];
    segment_path(c, 0, seg0, sizeof(seg0));
    segment_path(c, 1, seg1, sizeof(seg1));
    REQUIRE(seg0[0] != '\0' && seg1[0] != '\0');
    unsigned long long first1 = strtoull(strchr(seg1 + 14, '-') + 1, NULL, 16);
    REQUIRE(first1 <= 50);
    uint8_t x = 0x5a;
    REQUIRE_EQ(crashfs_poke(c, seg0, 200, &x, 1), CN_OK);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 50));
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.entry_count, 20);
    wal_recovery_close(&rec);
    wal_close(w);
    /* With the newest snapshot damaged the older one needs the whole log:
     * it is read, and the damage is found. */
    char path[128];
    snap_file(50, path, sizeof(path));
    REQUIRE_EQ(crashfs_poke(c, path, 45, &x, 1), CN_OK);
    char err[CN_ERRMSG_SIZE] = "";
    CHECK_EQ(wal_open(&cfg, &w, &rec, err), CN_ECORRUPT);
    CHECK(strstr(err, strrchr(seg0, '/') + 1) != NULL);
    CHECK_EQ(crashfs_open_handles(c), 0);
    crashfs_free(c);
}

TEST(wal_snap_without_marker_is_skipped)
{
    struct crashfs *c = crashfs_new(3);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    uint64_t next = 1;
    grow_and_snap(w, &m, &next, 30, 20);
    /* Saved, but the crash comes before its marker is durable. */
    REQUIRE_EQ(wal_snap_save(w, 30, 1, CN_SLICE_LIT("x"), NULL), CN_OK);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 3);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 20));
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.snaps_skipped, 1);
    CHECK(strstr(rec.notes, "no marker") != NULL);
    CHECK(strstr(rec.notes, "(removed)") != NULL);
    wal_recovery_close(&rec);
    wal_close(w);
    /* It is gone: the next start has nothing to skip. */
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 20));
    CHECK_EQ(rec.snaps_skipped, 0);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_snap_from_leader_restarts_the_log)
{
    struct crashfs *c = crashfs_new(4);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 1; i <= 5; i++)
        REQUIRE_EQ(append_entry(w, NULL, i, 1), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    REQUIRE_EQ(wal_snap_save(w, 100, 3, CN_SLICE_LIT("big"), NULL), CN_OK);
    REQUIRE_EQ(wal_append_snapshot(w, 100, 3), CN_OK);
    REQUIRE_EQ(append_entry(w, NULL, 101, 3), CN_OK);
    struct wal_pos pos;
    REQUIRE_EQ(wal_sync(w, &pos), CN_OK);
    CHECK_EQ(pos.last_index, 101);
    wal_close(w);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.snap_index, 100);
    CHECK_EQ(rec.snap_term, 3);
    REQUIRE_EQ(rec.entry_count, 1);
    CHECK_EQ(rec.entries[0].index, 101);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

/* A crash at every step of a snapshot save (temp file, write, fsync,
 * rename, dir fsync), of the marker's sync and of the purge: recovery uses
 * the old snapshot or the new one, whole, with the log after it. */
TEST(wal_snap_crash_at_every_step)
{
    enum crashfs_mode modes[] = {CRASHFS_LOSE, CRASHFS_KEEP, CRASHFS_PREFIX,
                                 CRASHFS_TORN};
    long runs = 0;
    for (long n = 1;; n++) {
        int crashed = 0;
        for (size_t mi = 0; mi < 4; mi++, runs++) {
            struct crashfs *c = crashfs_new((uint64_t)n);
            struct wal_config cfg = test_config(crashfs_fs(c), SEG);
            cfg.max_snapshots = 1;
            cfg.max_wals = 1;
            struct model m;
            model_init(&m);
            struct wal *w = open_ok(&cfg, NULL);
            REQUIRE(w != NULL);
            uint64_t next = 1;
            grow_and_snap(w, &m, &next, 40, 30);
            for (; next <= 80; next++)
                REQUIRE_EQ(append_entry(w, &m, next, 1), CN_OK);
            REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
            crashfs_crash_arm(c, n, 10);
            int rc = wal_snap_save(w, 70, 1, CN_SLICE_LIT("store-state-at-70"),
                                   NULL);
            if (rc == CN_OK)
                rc = wal_append_snapshot(w, 70, 1);
            if (rc == CN_OK)
                rc = wal_sync(w, NULL);
            if (rc == CN_OK)
                rc = wal_purge(w, NULL, NULL);
            crashed |= crashfs_crashed(c);
            wal_close(w);
            crashfs_reboot(c, modes[mi], (uint64_t)n * 13 + mi);
            struct wal_recovery rec;
            w = open_ok(&cfg, &rec);
            CHECK(w != NULL);
            if (w == NULL) {
                tap_diag("crash at step %ld mode %zu", n, mi);
                crashfs_free(c);
                continue;
            }
            CHECK(snap_is(&rec, 30) || snap_is(&rec, 70));
            CHECK(model_matches(&m, &rec));
            wal_recovery_close(&rec);
            wal_close(w);
            crashfs_free(c);
        }
        if (!crashed)
            break;
    }
    tap_diag("%ld snapshot crash runs", runs);
    CHECK(runs > 40);
}

TEST(wal_snap_save_fault_loop_keeps_old_snapshots)
{
    for (long n = 1; n < 40; n++) {
        struct crashfs *c = crashfs_new((uint64_t)n);
        struct wal_config cfg = test_config(crashfs_fs(c), SEG);
        struct model m;
        model_init(&m);
        struct wal *w = open_ok(&cfg, NULL);
        REQUIRE(w != NULL);
        uint64_t next = 1;
        grow_and_snap(w, &m, &next, 30, 20);
        crashfs_fault_arm(c, CRASHFS_F_ALL, n, CN_ENOSPC);
        char err[CN_ERRMSG_SIZE] = "";
        int rc =
            wal_snap_save(w, 30, 1, CN_SLICE_LIT("store-state-at-30"), err);
        int fired = crashfs_fault_disarm(c);
        CHECK(fired ? rc == CN_ENOSPC : rc == CN_OK);
        if (rc != CN_OK) {
            CHECK(err[0] != '\0');
            /* No temp file is left behind and the old one is intact. */
            CHECK(!file_exists(
                c,
                "/d/member/snap/0000000000000001-000000000000001e.snap.tmp"));
        } else {
            REQUIRE_EQ(wal_append_snapshot(w, 30, 1), CN_OK);
            REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
        }
        wal_close(w);
        struct wal_recovery rec;
        w = open_ok(&cfg, &rec);
        REQUIRE(w != NULL);
        CHECK(snap_is(&rec, rc == CN_OK ? 30 : 20));
        CHECK(model_matches(&m, &rec));
        wal_recovery_close(&rec);
        wal_close(w);
        CHECK_EQ(crashfs_open_handles(c), 0);
        crashfs_free(c);
        if (!fired)
            break;
    }
}

static size_t count_suffix(struct crashfs *c, const char *dir,
                           const char *suffix)
{
    char **names;
    size_t n, k = 0;
    const struct cn_fs *fs = crashfs_fs(c);
    CN_ASSERT(CN_FS_CALL(fs, list, dir, &names, &n, NULL) == CN_OK);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(names[i]), s = strlen(suffix);
        if (l >= s && strcmp(names[i] + l - s, suffix) == 0)
            k++;
    }
    cn_fs_names_free(names, n);
    return k;
}

TEST(wal_purge_keeps_max_snapshots_and_needed_segments)
{
    struct crashfs *c = crashfs_new(5);
    struct wal_config cfg = test_config(crashfs_fs(c), 512);
    cfg.max_snapshots = 2;
    cfg.max_wals = 2;
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    uint64_t next = 1;
    struct wal_purge_result res = {0, 0};
    unsigned snaps_removed = 0, segs_removed = 0;
    for (uint64_t at = 20; at <= 120; at += 20) {
        grow_and_snap(w, &m, &next, at + 5, at);
        REQUIRE_EQ(wal_purge(w, &res, NULL), CN_OK);
        snaps_removed += res.snaps_removed;
        segs_removed += res.segments_removed;
        CHECK(count_suffix(c, "/d/member/snap", ".snap") <= 2);
    }
    CHECK_EQ(snaps_removed, 4);
    CHECK(segs_removed > 5);
    size_t segs = count_suffix(c, "/d/member/wal", ".wal");
    CHECK(segs >= 2);
    wal_close(w);
    /* The oldest kept snapshot (100) still has its log: damage the newest
     * and recovery falls back to it. */
    char name[64], path[128];
    wal_snap_name(1, 120, name, sizeof(name));
    snprintf(path, sizeof(path), "/d/member/snap/%s", name);
    REQUIRE_EQ(crashfs_cut(c, path, 10), CN_OK);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(snap_is(&rec, 100));
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.entries[0].index, 101);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_purge_with_zero_limits_keeps_everything)
{
    struct crashfs *c = crashfs_new(6);
    struct wal_config cfg = test_config(crashfs_fs(c), 512);
    struct model m;
    model_init(&m);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    uint64_t next = 1;
    for (uint64_t at = 20; at <= 60; at += 20) {
        grow_and_snap(w, &m, &next, at + 5, at);
        struct wal_purge_result res;
        REQUIRE_EQ(wal_purge(w, &res, NULL), CN_OK);
        CHECK_EQ(res.snaps_removed, 0);
        CHECK_EQ(res.segments_removed, 0);
    }
    CHECK_EQ(count_suffix(c, "/d/member/snap", ".snap"), 3);
    wal_close(w);
    crashfs_free(c);
}
