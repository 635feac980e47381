/* Real-disk tests: cn_fs_posix (src/base/cn_fs_posix.c) and the wal on it
 * in a fresh temp dir: append, sync, reopen, replay; the data-dir lock
 * refused to a second holder, in this process and in another. */
#define _XOPEN_SOURCE 700
#include "wal_helpers.h"

#include <ftw.h>
#include <sys/wait.h>
#include <unistd.h>

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TEST(cn_fs_posix_file_operations)
{
    char dir[64], path[128], path2[128];
    tap_tmpdir(dir, sizeof(dir), "cairn-wal-test");
    const struct cn_fs *fs = cn_fs_posix();
    char err[CN_ERRMSG_SIZE] = "";
    struct cn_fs_file *f;
    snprintf(path, sizeof(path), "%s/a", dir);
    snprintf(path2, sizeof(path2), "%s/b", dir);
    CHECK_EQ(CN_FS_CALL(fs, open, path, CN_FS_RDONLY, &f, err), CN_ENOTFOUND);
    CHECK(strstr(err, path) != NULL);
    REQUIRE_EQ(CN_FS_CALL(fs, open, path, CN_FS_RDWR | CN_FS_CREATE, &f, err),
               CN_OK);
    REQUIRE_EQ(CN_FS_CALL(fs, allocate, f, 0, 8192, err), CN_OK);
    uint64_t size = 0;
    REQUIRE_EQ(CN_FS_CALL(fs, size, f, &size, err), CN_OK);
    CHECK_EQ(size, 8192);
    REQUIRE_EQ(CN_FS_CALL(fs, pwrite, f, "hello", 5, 100, err), CN_OK);
    REQUIRE_EQ(CN_FS_CALL(fs, sync, f, 1, err), CN_OK);
    REQUIRE_EQ(CN_FS_CALL(fs, sync, f, 0, err), CN_OK);
    char buf[16] = {0};
    size_t got = 0;
    REQUIRE_EQ(CN_FS_CALL(fs, pread, f, buf, 8, 98, &got, err), CN_OK);
    CHECK_EQ(got, 8);
    CHECK_MEM(buf, "\0\0hello\0", 8);
    REQUIRE_EQ(CN_FS_CALL(fs, truncate, f, 102, err), CN_OK);
    REQUIRE_EQ(CN_FS_CALL(fs, pread, f, buf, 16, 98, &got, err), CN_OK);
    CHECK_EQ(got, 4);
    CHECK_EQ(CN_FS_CALL(fs, close, f, err), CN_OK);
    CHECK_EQ(CN_FS_CALL(fs, open, path, CN_FS_RDWR | CN_FS_CREATE | CN_FS_EXCL,
                        &f, err),
             CN_EEXIST);
    REQUIRE_EQ(CN_FS_CALL(fs, rename, path, path2, err), CN_OK);
    REQUIRE_EQ(CN_FS_CALL(fs, sync_dir, dir, err), CN_OK);
    char **names;
    size_t n;
    REQUIRE_EQ(CN_FS_CALL(fs, list, dir, &names, &n, err), CN_OK);
    REQUIRE_EQ(n, 1);
    CHECK_STR(names[0], "b");
    cn_fs_names_free(names, n);
    int is_dir = 0;
    CHECK_EQ(CN_FS_CALL(fs, stat, dir, &is_dir, err), CN_OK);
    CHECK_EQ(is_dir, 1);
    CHECK_EQ(CN_FS_CALL(fs, stat, path, &is_dir, err), CN_ENOTFOUND);
    CHECK_EQ(CN_FS_CALL(fs, mkdir, dir, err), CN_EEXIST);
    CHECK_EQ(CN_FS_CALL(fs, unlink, path2, err), CN_OK);
    CHECK_EQ(CN_FS_CALL(fs, unlink, path2, err), CN_ENOTFOUND);
    rm_tree(dir);
}

TEST(wal_posix_append_sync_reopen_replay)
{
    char dir[64];
    tap_tmpdir(dir, sizeof(dir), "cairn-wal-test");
    struct wal_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.fs = cn_fs_posix();
    cfg.data_dir = dir;
    cfg.segment_bytes = 64 * 1024;
    cfg.seed = 5;
    struct cn_fs_file *lock;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(wal_lock(cfg.fs, dir, &lock, err), CN_OK);
    struct model m;
    model_init(&m);
    struct wal_recovery rec;
    struct wal *w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.created, 1);
    wal_recovery_close(&rec);
    for (uint64_t i = 1; i <= 3000; i++) {
        REQUIRE_EQ(append_entry(w, &m, i, 1 + i / 1000), CN_OK);
        if (i % 64 == 0) {
            /* The driver's split: begin, run (a worker), end. */
            struct wal_batch *b;
            REQUIRE_EQ(wal_batch_begin(w, &b), CN_OK);
            REQUIRE(b != NULL);
            REQUIRE_EQ(wal_batch_run(b), CN_OK);
            REQUIRE_EQ(wal_batch_end(w, b, NULL), CN_OK);
        }
    }
    struct wal_hard_state hs = {4, 1, 2990};
    REQUIRE_EQ(wal_append_hard_state(w, &hs), CN_OK);
    m.hs = hs;
    m.hs_set = 1;
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    REQUIRE_EQ(wal_snap_save(w, 2000, 3, CN_SLICE_LIT("snap"), err), CN_OK);
    REQUIRE_EQ(wal_append_snapshot(w, 2000, 3), CN_OK);
    REQUIRE_EQ(wal_sync(w, NULL), CN_OK);
    wal_close(w);
    w = open_ok(&cfg, &rec);
    REQUIRE(w != NULL);
    CHECK_EQ(rec.created, 0);
    CHECK_EQ(rec.snap_index, 2000);
    CHECK_EQ(rec.snap_data.len, 4);
    CHECK_MEM(rec.snap_data.data, "snap", 4);
    /* On the real file system it is mapped from the file, not copied. */
    CHECK(rec.snap_data.release != NULL);
    CHECK(model_matches(&m, &rec));
    CHECK_EQ(rec.entry_count, 1000);
    CHECK_EQ(rec.torn_bytes, 0);
    wal_recovery_close(&rec);
    wal_close(w);
    wal_unlock(cfg.fs, lock);
    rm_tree(dir);
}

TEST(wal_posix_lock_refuses_second_process)
{
    char dir[64];
    tap_tmpdir(dir, sizeof(dir), "cairn-wal-test");
    const struct cn_fs *fs = cn_fs_posix();
    struct cn_fs_file *l1, *l2;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(wal_lock(fs, dir, &l1, err), CN_OK);
    CHECK_EQ(wal_lock(fs, dir, &l2, err), CN_ELOCKED);
    CHECK(strstr(err, "in use") != NULL);
    fflush(stdout);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        struct cn_fs_file *l3;
        _exit(wal_lock(fs, dir, &l3, NULL) == CN_ELOCKED ? 0 : 1);
    }
    int status = 0;
    REQUIRE_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    wal_unlock(fs, l1);
    REQUIRE_EQ(wal_lock(fs, dir, &l2, err), CN_OK);
    wal_unlock(fs, l2);
    rm_tree(dir);
}
