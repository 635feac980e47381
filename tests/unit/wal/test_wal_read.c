/* Unit tests for src/wal/wal_read.c: recovery after crashes at every
 * operation and byte offset, torn tails, and damage that must be reported
 * as CN_ECORRUPT with the file and offset. */
#include "wal_helpers.h"

#include "wal/wal_int.h"

#define SEG 1024
#define SEG0 "/d/member/wal/0000000000000000-0000000000000001.wal"

/* The workload the crash loops interrupt: entries (with two conflicts that
 * rewrite a suffix), hard states, a sync every few records. Records go to
 * h; *acked is the record count covered by the last successful sync. Stops
 * at the first error (the crash). */
static void workload(struct wal *w, struct history *h, size_t *acked)
{
    uint64_t next = 1;
    for (int step = 0; step < 48; step++) {
        int rc;
        if (step == 20 || step == 33) {
            next -= 3; /* a new leader replaces the last entries */
            rc = append_entry(w, NULL, next, 2 + (uint64_t)step);
            if (rc == CN_OK)
                history_add(h, H_ENTRY, next, 2 + (uint64_t)step, 0);
            next++;
        } else if (step % 6 == 5) {
            struct wal_hard_state hs = {2, 1, next / 2};
            rc = wal_append_hard_state(w, &hs);
            if (rc == CN_OK)
                history_add(h, H_HS, hs.term, hs.vote, hs.commit);
        } else {
            uint64_t term = step < 20 ? 1 : step < 33 ? 22 : 35;
            rc = append_entry(w, NULL, next, term);
            if (rc == CN_OK)
                history_add(h, H_ENTRY, next, term, 0);
            next++;
        }
        if (rc != CN_OK)
            return;
        if (step % 4 == 3 || step == 47) {
            if (wal_sync(w, NULL) != CN_OK)
                return;
            *acked = h->count;
        }
    }
}

/* One crash run: fresh log, crash at op n (bytes of a write kept), reboot
 * with mode; recovery must succeed with every acknowledged record and a
 * whole prefix of the rest. Returns 1 if the crash happened. */
static int crash_run(long n, long bytes, enum crashfs_mode mode, uint64_t seed,
                     int *in_write, int reopen)
{
    struct crashfs *c = crashfs_new(seed);
    struct wal_config cfg = test_config(crashfs_fs(c), SEG);
    static struct history h;
    h.count = 0;
    size_t acked = 0;
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    crashfs_crash_arm(c, n, bytes);
    workload(w, &h, &acked);
    int crashed = crashfs_crashed(c);
    *in_write = crashfs_crashed_in_write(c);
    wal_close(w);
    crashfs_reboot(c, mode, seed * 7919 + (uint64_t)n);
    struct wal_recovery rec;
    char err[CN_ERRMSG_SIZE] = "";
    int rc = wal_open(&cfg, &w, &rec, err);
    if (rc != CN_OK) {
        tap_diag("crash at op %ld bytes %ld mode %d seed %llu: %s: %s", n,
                 bytes, (int)mode, (unsigned long long)seed, cn_errname(rc),
                 err);
        CHECK_EQ(rc, CN_OK);
        crashfs_free(c);
        return crashed;
    }
    long k = history_match(&h, acked, &rec);
    if (k < 0)
        tap_diag("crash at op %ld bytes %ld mode %d seed %llu: recovered "
                 "%zu entries, acked %zu records",
                 n, bytes, (int)mode, (unsigned long long)seed, rec.entry_count,
                 acked);
    CHECK(k >= 0);
    /* The recovered log takes appends and survives another reopen. */
    struct wal_pos pos;
    wal_appended(w, &pos);
    if (reopen && append_entry(w, NULL, pos.last_index + 1, 99) == CN_OK &&
        wal_sync(w, NULL) == CN_OK) {
        uint64_t want = rec.entry_count + 1;
        wal_recovery_close(&rec);
        wal_close(w);
        crashfs_reboot(c, CRASHFS_LOSE, seed);
        w = open_ok(&cfg, &rec);
        CHECK(w != NULL);
        if (w != NULL) {
            CHECK_EQ(rec.entry_count, want);
            CHECK_EQ(rec.torn_bytes, 0);
        }
    }
    wal_recovery_close(&rec);
    wal_close(w);
    CHECK_EQ(crashfs_open_handles(c), 0);
    crashfs_free(c);
    return crashed;
}

TEST(wal_recovers_after_a_crash_at_every_operation)
{
    enum crashfs_mode modes[] = {CRASHFS_LOSE, CRASHFS_KEEP, CRASHFS_PREFIX,
                                 CRASHFS_TORN, CRASHFS_RANDOM};
    long runs = 0;
    for (long n = 1;; n++) {
        int crashed = 0, in_write;
        for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
            for (uint64_t seed = 1; seed <= 3; seed++, runs++)
                crashed |= crash_run(n, -1, modes[m], seed, &in_write, 1);
        if (!crashed)
            break;
    }
    tap_diag("%ld crash runs", runs);
    CHECK(runs > 500);
}

TEST(wal_recovers_after_a_crash_at_every_byte_of_a_write)
{
    long runs = 0, writes = 0;
    for (long n = 1;; n++) {
        int in_write = 0;
        if (!crash_run(n, 0, CRASHFS_KEEP, 1, &in_write, 1))
            break;
        if (!in_write)
            continue;
        writes++;
        /* Every byte of the first records (under 128 bytes each), then
         * every third byte of the rest of a batch. */
        for (long b = 1; b <= 700; b += b < 160 ? 1 : 3, runs++) {
            crash_run(n, b, CRASHFS_KEEP, (uint64_t)b, &in_write, b % 8 == 0);
            if (b % 5 == 0)
                crash_run(n, b, CRASHFS_TORN, (uint64_t)b, &in_write, 0);
        }
    }
    tap_diag("%ld writes, %ld byte-offset crash runs", writes, runs);
    CHECK(writes > 10);
}

/* --- damage ------------------------------------------------------------ */

/* Builds a synced log of `batches` batches of 4 entries each. */
static struct crashfs *synced_log(int batches, uint64_t seg, struct model *m)
{
    struct crashfs *c = crashfs_new(77);
    struct wal_config cfg = test_config(crashfs_fs(c), seg);
    model_init(m);
    struct wal *w = open_ok(&cfg, NULL);
    CN_ASSERT(w != NULL);
    uint64_t next = 1;
    for (int b = 0; b < batches; b++) {
        for (int k = 0; k < 4; k++, next++)
            CN_ASSERT(append_entry(w, m, next, 1) == CN_OK);
        CN_ASSERT(wal_sync(w, NULL) == CN_OK);
    }
    wal_close(w);
    return c;
}

/* Offsets of the records of a segment file. */
static size_t record_offsets(struct crashfs *c, const char *path,
                             uint64_t *offs, size_t max)
{
    uint8_t *data;
    size_t size, n = 0;
    CN_ASSERT(crashfs_read_file(c, path, &data, &size) == CN_OK);
    uint64_t off = 0;
    while (off + WAL_REC_HEADER_BYTES <= size && n < max) {
        uint32_t len = wal_get32(data + off + 4);
        if (data[off + 8] == 0)
            break;
        offs[n++] = off;
        off += wal_frame_bytes(len);
    }
    free(data);
    return n;
}

static int open_expect(struct crashfs *c, uint64_t seg, int want_rc,
                       const char *must_contain)
{
    struct wal_config cfg = test_config(crashfs_fs(c), seg);
    struct wal *w;
    struct wal_recovery rec;
    char err[CN_ERRMSG_SIZE] = "";
    int rc = wal_open(&cfg, &w, &rec, err);
    if (rc == CN_OK) {
        wal_recovery_close(&rec);
        wal_close(w);
    }
    if (rc != want_rc)
        tap_diag("wal_open: %s (%s), wanted %s", cn_errname(rc), err,
                 cn_errname(want_rc));
    int ok = rc == want_rc;
    if (must_contain != NULL && strstr(err, must_contain) == NULL) {
        tap_diag("errmsg \"%s\" lacks \"%s\"", err, must_contain);
        ok = 0;
    }
    CHECK_EQ(crashfs_open_handles(c), 0);
    return ok;
}

TEST(wal_bad_crc_in_the_middle_is_corrupt_with_file_and_offset)
{
    struct model m;
    /* A big segment: everything in segment 0. */
    struct crashfs *c = synced_log(6, 64 * 1024, &m);
    uint64_t offs[64];
    size_t n = record_offsets(c, SEG0, offs, 64);
    REQUIRE_EQ(n, 1 + 24);
    /* Entry 5, in the second batch: later batches prove it was synced. */
    uint64_t off = offs[5];
    uint8_t x = 0x5a;
    REQUIRE_EQ(crashfs_poke(c, SEG0, off + 30, &x, 1), CN_OK);
    char want[64];
    snprintf(want, sizeof(want), "byte %llu", (unsigned long long)off);
    CHECK(open_expect(c, 64 * 1024, CN_ECORRUPT, want));
    CHECK(open_expect(c, 64 * 1024, CN_ECORRUPT,
                      "0000000000000000-0000000000000001.wal"));
    CHECK(open_expect(c, 64 * 1024, CN_ECORRUPT, "backup"));
    crashfs_free(c);
}

TEST(wal_damaged_length_in_the_middle_is_corrupt)
{
    struct model m;
    struct crashfs *c = synced_log(6, 64 * 1024, &m);
    uint64_t offs[64];
    record_offsets(c, SEG0, offs, 64);
    uint8_t big[4] = {0xff, 0xff, 0, 0};
    REQUIRE_EQ(crashfs_poke(c, SEG0, offs[9] + 4, big, 4), CN_OK);
    CHECK(open_expect(c, 64 * 1024, CN_ECORRUPT, "byte"));
    crashfs_free(c);
}

TEST(wal_damage_in_a_segment_that_is_not_the_last_is_corrupt)
{
    struct model m;
    struct crashfs *c = synced_log(12, SEG, &m);
    char path[128];
    wal_segment_name(1, 0, path, sizeof(path));
    /* Find segment 1's real name through the directory. */
    char **names;
    size_t count;
    const struct cn_fs *fs = crashfs_fs(c);
    REQUIRE_EQ(CN_FS_CALL(fs, list, "/d/member/wal", &names, &count, NULL),
               CN_OK);
    REQUIRE(count >= 3);
    for (size_t i = 0; i < count; i++)
        if (strncmp(names[i], "0000000000000001-", 17) == 0)
            snprintf(path, sizeof(path), "/d/member/wal/%s", names[i]);
    cn_fs_names_free(names, count);
    uint64_t offs[64];
    size_t n = record_offsets(c, path, offs, 64);
    REQUIRE(n >= 3);
    /* Damage the last record of the segment: nothing follows it in this
     * file, but a later segment exists, so it cannot be a torn tail. */
    uint8_t x = 0xa5;
    REQUIRE_EQ(crashfs_poke(c, path, offs[n - 1] + 26, &x, 1), CN_OK);
    CHECK(open_expect(c, SEG, CN_ECORRUPT, "not the last"));
    crashfs_free(c);
}

TEST(wal_missing_segment_is_corrupt)
{
    struct model m;
    struct crashfs *c = synced_log(12, SEG, &m);
    char **names;
    size_t count;
    const struct cn_fs *fs = crashfs_fs(c);
    REQUIRE_EQ(CN_FS_CALL(fs, list, "/d/member/wal", &names, &count, NULL),
               CN_OK);
    REQUIRE(count >= 3);
    char mid[128] = "", first[128] = "";
    for (size_t i = 0; i < count; i++) {
        if (strncmp(names[i], "0000000000000001-", 17) == 0)
            snprintf(mid, sizeof(mid), "/d/member/wal/%s", names[i]);
        if (strncmp(names[i], "0000000000000000-", 17) == 0)
            snprintf(first, sizeof(first), "/d/member/wal/%s", names[i]);
    }
    cn_fs_names_free(names, count);
    REQUIRE_EQ(crashfs_remove(c, mid), CN_OK);
    CHECK(open_expect(c, SEG, CN_ECORRUPT, "segment 1 is missing"));
    /* Without segment 0 either, the log no longer starts at index 1 and
     * there is no snapshot to start from. */
    REQUIRE_EQ(crashfs_remove(c, first), CN_OK);
    CHECK(open_expect(c, SEG, CN_ECORRUPT, "log starts at index"));
    crashfs_free(c);
}

TEST(wal_bad_segment_header_is_corrupt)
{
    struct model m;
    struct crashfs *c = synced_log(2, 64 * 1024, &m);
    uint8_t x = 0x33;
    REQUIRE_EQ(crashfs_poke(c, SEG0, 40, &x, 1), CN_OK);
    CHECK(open_expect(c, 64 * 1024, CN_ECORRUPT, "segment header"));
    crashfs_free(c);
}

TEST(wal_newer_format_version_is_refused)
{
    struct model m;
    struct crashfs *c = synced_log(1, 64 * 1024, &m);
    uint8_t *data;
    size_t size;
    REQUIRE_EQ(crashfs_read_file(c, SEG0, &data, &size), CN_OK);
    /* Rewrite the header's version and seal it again. */
    wal_put32(data + WAL_REC_HEADER_BYTES + 4, WAL_FORMAT_VERSION + 1);
    wal_rec_seal_all(data, (size_t)wal_frame_bytes(WAL_SEG_HEADER_BODY), 0, 0,
                     0);
    REQUIRE_EQ(crashfs_poke(c, SEG0, 0, data, 72), CN_OK);
    free(data);
    CHECK(open_expect(c, 64 * 1024, CN_EVERSION, "version 2"));
    crashfs_free(c);
}

TEST(wal_torn_tail_is_dropped_and_reported)
{
    struct model m;
    struct crashfs *c = synced_log(3, 64 * 1024, &m);
    struct wal_config cfg = test_config(crashfs_fs(c), 64 * 1024);
    struct wal *w = open_ok(&cfg, NULL);
    REQUIRE(w != NULL);
    for (uint64_t i = 13; i <= 20; i++)
        REQUIRE_EQ(append_entry(w, NULL, i, 1), CN_OK);
    /* The batch's write gets 300 bytes to disk, then the power goes. */
    crashfs_crash_arm(c, 1, 300);
    CHECK_EQ(wal_sync(w, NULL), CN_EIO);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_KEEP, 1);
    struct wal_recovery rec;
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(rec.torn_bytes > 0 && rec.torn_bytes <= 300);
    CHECK(strstr(rec.notes, "torn") != NULL);
    /* Whole records that made it are kept; the cut one is gone. */
    CHECK(rec.entry_count >= 12 && rec.entry_count < 20);
    struct model want;
    model_init(&want);
    for (uint64_t i = 1; i <= rec.entry_count; i++)
        model_entry(&want, i, 1);
    CHECK(model_matches(&want, &rec));
    size_t kept = rec.entry_count;
    wal_recovery_close(&rec);
    /* Appends overwrite the cut area; a reopen sees no damage. */
    REQUIRE_EQ(append_entry(w, NULL, kept + 1, 2), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
    crashfs_reboot(c, CRASHFS_LOSE, 2);
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.torn_bytes, 0);
    CHECK_EQ(rec.entry_count, kept + 1);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

/* The limit of the design, pinned down: damage to the last synced batch
 * (nothing written after it) looks exactly like a torn write, so it is
 * dropped and reported rather than refused. */
TEST(wal_damage_in_the_last_batch_reads_as_a_torn_tail)
{
    struct model m;
    struct crashfs *c = synced_log(3, 64 * 1024, &m);
    uint64_t offs[64];
    size_t n = record_offsets(c, SEG0, offs, 64);
    REQUIRE_EQ(n, 13);
    uint8_t x = 0x77;
    REQUIRE_EQ(crashfs_poke(c, SEG0, offs[11] + 30, &x, 1), CN_OK);
    struct wal_config cfg = test_config(crashfs_fs(c), 64 * 1024);
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.entry_count, 10);
    CHECK(rec.torn_bytes > 0);
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

TEST(wal_stale_temp_segment_is_removed)
{
    struct model m;
    struct crashfs *c = synced_log(1, SEG, &m);
    const struct cn_fs *fs = crashfs_fs(c);
    struct cn_fs_file *f;
    const char *tmp = "/d/member/wal/0000000000000005-0000000000000009.wal.tmp";
    REQUIRE_EQ(CN_FS_CALL(fs, open, tmp, CN_FS_RDWR | CN_FS_CREATE, &f, NULL),
               CN_OK);
    REQUIRE_EQ(CN_FS_CALL(fs, pwrite, f, "junk", 4, 0, NULL), CN_OK);
    CN_FS_CALL(fs, close, f, NULL);
    struct wal_config cfg = test_config(fs, SEG);
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK(model_matches(&m, &rec));
    CHECK(!file_exists(c, tmp));
    wal_recovery_close(&rec);
    wal_close(w);
    crashfs_free(c);
}

/* Recovery reads segments through a moving window. With windows smaller
 * than a record header, every record and every zero check crosses window
 * edges; the crash, damage and torn-tail verdicts must not change. */
TEST(wal_recovery_verdicts_do_not_depend_on_the_read_window)
{
    size_t chunks[] = {1, 8, 24, 100, 4096};
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        tap_diag("read window %zu bytes", chunks[i]);
        wal_read_set_chunk(chunks[i]);
        wal_recovers_after_a_crash_at_every_operation();
        if (chunks[i] == 8 || chunks[i] == 100)
            wal_recovers_after_a_crash_at_every_byte_of_a_write();
        wal_bad_crc_in_the_middle_is_corrupt_with_file_and_offset();
        wal_damaged_length_in_the_middle_is_corrupt();
        wal_damage_in_a_segment_that_is_not_the_last_is_corrupt();
        wal_bad_segment_header_is_corrupt();
        wal_newer_format_version_is_refused();
        wal_torn_tail_is_dropped_and_reported();
        wal_damage_in_the_last_batch_reads_as_a_torn_tail();
    }
    wal_read_set_chunk(0);
}
