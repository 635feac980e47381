/* Unit tests for src/server/server_wal.c: writes are answered only from
 * the log, at their log index, and come back after a restart; group
 * commit on the loop (one batch in flight, the next one shares an fsync);
 * a failed write stops writes for good (CN_ESTOPPED, a refusal cause)
 * while reads go on; snapshots are taken, purged and restored; the data
 * dir lock. The server runs without sockets: its loop is driven here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_cfg.h"
#include "server/server_int.h"
#include "tap.h"

struct env {
    char dir[64];
    struct cn_config cfg;
    struct server *srv;
};

static void env_cfg(struct env *e, int no_fsync, uint64_t snapshot_count)
{
    memset(&e->cfg, 0, sizeof(e->cfg));
    strcpy(e->cfg.name, "t1");
    strcpy(e->cfg.data_dir, e->dir);
    strcpy(e->cfg.initial_cluster_token, "tok");
    test_cfg_single_member(&e->cfg);
    e->cfg.max_request_bytes = 4096;
    e->cfg.unsafe_no_fsync = no_fsync;
    e->cfg.snapshot_count = snapshot_count;
    e->cfg.max_snapshots = 2;
    e->cfg.max_wals = 5;
}

static void env_open(struct env *e)
{
    char errmsg[CN_ERRMSG_SIZE] = "";
    int rc = server_new(&e->srv, &e->cfg, NULL, errmsg);
    if (rc != CN_OK)
        tap_diag("server_new: %s", errmsg);
    REQUIRE_EQ(rc, CN_OK);
}

/* The data dir is created with a small first segment: a start reads the
 * whole tail segment, and 64 MiB of zeros per restart would dominate the
 * run time (under valgrind above all). Later segments are the server's. */
static void env_init(struct env *e, int no_fsync, uint64_t snapshot_count)
{
    tap_tmpdir(e->dir, sizeof(e->dir), "cairn-srvwal");
    struct wal_config wc;
    memset(&wc, 0, sizeof(wc));
    wc.fs = cn_fs_posix();
    wc.data_dir = e->dir;
    wc.segment_bytes = 256 * 1024;
    struct wal *w;
    struct wal_recovery rec;
    REQUIRE_EQ(wal_open(&wc, &w, &rec, NULL), CN_OK);
    CHECK_EQ(rec.created, 1);
    wal_recovery_close(&rec);
    wal_close(w);
    env_cfg(e, no_fsync, snapshot_count);
    env_open(e);
}

static void env_rm(struct env *e)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    CHECK_EQ(system(cmd), 0);
}

/* Drives the loop as server_run would, without listening. */
static void loop_mode(struct server *srv)
{
    srv->handles_started = 1;
}

struct put {
    struct server_proposal p;
    char key[32];
    char val[32];
    int done;
    int rc;
    int ecode;
    uint64_t index;
    uint64_t batches_at_cb; /* fsyncs done when answered */
};

static void on_put(struct server_proposal *p)
{
    struct put *w = (struct put *)p;
    struct server *srv = p->arg;
    w->done = 1;
    w->rc = p->rc;
    w->ecode = p->res.ecode;
    w->index = p->raft_index;
    w->batches_at_cb = srv->stats.wal_batches;
    store_result_close(&p->res);
}

static int put(struct server *srv, struct put *w, const char *key,
               const char *val)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->key, sizeof(w->key), "%s", key);
    snprintf(w->val, sizeof(w->val), "%s", val);
    w->p.cmd.method = STORE_CMD_PUT;
    w->p.cmd.path = cn_slice_from_cstr(w->key);
    w->p.cmd.value = cn_slice_from_cstr(w->val);
    w->p.cmd.prev_exist = -1;
    w->p.ttl_s = -1;
    w->p.cb = on_put;
    w->p.arg = srv;
    return server_propose(srv, &w->p);
}

static int get_value(struct server *srv, const char *key, const char *want)
{
    struct store_result res;
    memset(&res, 0, sizeof(res));
    if (server_get(srv, cn_slice_from_cstr(key), 0, 0, &res) != CN_OK)
        return 0;
    char pat[96];
    snprintf(pat, sizeof(pat), "\"value\":\"%s\"", want);
    int ok = res.ecode == 0 && strstr(res.body.data, pat) != NULL;
    store_result_close(&res);
    return ok;
}

/* Runs the loop until every put of ws is answered (or a bound). */
static void run_until_done(struct server *srv, struct put *ws, int n)
{
    for (int round = 0; round < 100000; round++) {
        int all = 1;
        for (int i = 0; i < n; i++)
            all &= ws[i].done;
        if (all)
            return;
        uv_run(&srv->loop, UV_RUN_ONCE);
    }
}

TEST(server_wal_answers_from_the_log_and_restores_after_restart)
{
    struct env e;
    env_init(&e, 0, 0);
    loop_mode(e.srv);
    /* Raft's entries before the first write: the bootstrap snapshot (1)
     * and the leader's no-op (2), made durable at start. */
    uint64_t base = server_raft_index(e.srv);
    uint64_t batches = e.srv->stats.wal_batches;
    CHECK_EQ(base, 2);
    static struct put ws[40];
    char k[32], v[32];
    for (int i = 0; i < 40; i++) {
        snprintf(k, sizeof(k), "/k%d", i);
        snprintf(v, sizeof(v), "v%d", i);
        REQUIRE_EQ(put(e.srv, &ws[i], k, v), CN_OK);
    }
    server_flush(e.srv); /* appended; the batch runs on the pool */
    for (int i = 0; i < 40; i++)
        CHECK(!ws[i].done); /* nothing answered before the fsync */
    CHECK(e.srv->batch != NULL);
    /* Writes proposed while the fsync runs join the next batch. */
    static struct put late[10];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof(k), "/late%d", i);
        REQUIRE_EQ(put(e.srv, &late[i], k, "L"), CN_OK);
    }
    server_flush(e.srv);
    run_until_done(e.srv, ws, 40);
    run_until_done(e.srv, late, 10);
    for (int i = 0; i < 40; i++) {
        CHECK_EQ(ws[i].rc, CN_OK);
        CHECK_EQ(ws[i].index, base + (uint64_t)i + 1); /* log order */
        CHECK_EQ(ws[i].batches_at_cb, batches + 1);
    }
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(late[i].index, base + (uint64_t)i + 41);
        CHECK_EQ(late[i].batches_at_cb, batches + 2); /* one fsync, ten */
    }
    CHECK_EQ(server_raft_index(e.srv), base + 50);
    server_free(e.srv);
    /* Restart: the store is rebuilt from the log, indexes continue (the
     * restarted leader appends its own no-op). */
    env_open(&e);
    CHECK_EQ(server_raft_index(e.srv), base + 51);
    CHECK_EQ(store_index(server_store(e.srv)), 50);
    CHECK(get_value(e.srv, "/k7", "v7"));
    CHECK(get_value(e.srv, "/late9", "L"));
    struct put w;
    REQUIRE_EQ(put(e.srv, &w, "/after", "A"), CN_OK);
    server_flush(e.srv); /* loop not running: synced and applied now */
    CHECK(w.done);
    CHECK_EQ(w.index, base + 52);
    server_free(e.srv);
    env_rm(&e);
}

static int fail_pwrite(void *ctx, struct cn_fs_file *f, const void *buf,
                       size_t n, uint64_t off, char *errmsg)
{
    if (errmsg != NULL)
        snprintf(errmsg, CN_ERRMSG_SIZE, "pwrite: No space left on device");
    return CN_ENOSPC;
}

TEST(server_wal_failed_write_stops_writes_for_good_reads_go_on)
{
    struct env e;
    env_init(&e, 1, 0); /* no-fsync table: a test can swap its calls */
    loop_mode(e.srv);
    struct put ok;
    REQUIRE_EQ(put(e.srv, &ok, "/a", "1"), CN_OK);
    server_flush(e.srv);
    run_until_done(e.srv, &ok, 1);
    CHECK_EQ(ok.rc, CN_OK);
    CHECK(server_write_refusal(e.srv) == NULL);
    e.srv->fs_nosync.pwrite = fail_pwrite; /* the disk fills up */
    static struct put ws[5];
    for (int i = 0; i < 5; i++)
        REQUIRE_EQ(put(e.srv, &ws[i], "/b", "2"), CN_OK);
    server_flush(e.srv);
    run_until_done(e.srv, ws, 5);
    for (int i = 0; i < 5; i++) {
        CHECK(ws[i].done);
        CHECK_EQ(ws[i].rc, CN_ESTOPPED);
    }
    const char *why = server_write_refusal(e.srv);
    REQUIRE(why != NULL);
    CHECK(strstr(why, "no space left on device") != NULL);
    /* Sticky, even once the disk would work again. */
    e.srv->fs_nosync.pwrite = cn_fs_posix()->pwrite;
    struct put later;
    CHECK_EQ(put(e.srv, &later, "/c", "3"), CN_ESTOPPED);
    CHECK(get_value(e.srv, "/a", "1"));
    CHECK(!get_value(e.srv, "/b", "2"));
    server_free(e.srv);
    /* A restart takes writes again; the failed ones were never applied. */
    env_open(&e);
    CHECK(server_write_refusal(e.srv) == NULL);
    CHECK(get_value(e.srv, "/a", "1"));
    CHECK(!get_value(e.srv, "/b", "2"));
    struct put w;
    uint64_t at = server_raft_index(e.srv);
    REQUIRE_EQ(put(e.srv, &w, "/d", "4"), CN_OK);
    server_flush(e.srv);
    CHECK_EQ(w.rc, CN_OK);
    CHECK_EQ(w.index, at + 1);
    CHECK_EQ(store_index(server_store(e.srv)), 2); /* /a, then /d */
    server_free(e.srv);
    env_rm(&e);
}

static int count_snaps(const char *dir)
{
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "ls %s/member/snap | grep -c '\\.snap$'", dir);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f != NULL) {
        if (fscanf(f, "%d", &n) != 1)
            n = -1;
        pclose(f);
    }
    return n;
}

TEST(server_wal_snapshots_every_count_purges_and_restores)
{
    struct env e;
    env_init(&e, 1, 10);
    static struct put ws[47];
    char k[32];
    for (int i = 0; i < 47; i++) {
        snprintf(k, sizeof(k), "/s%d", i);
        REQUIRE_EQ(put(e.srv, &ws[i], k, "x"), CN_OK);
        server_flush(e.srv); /* one entry per sync */
        CHECK_EQ(ws[i].rc, CN_OK);
    }
    /* The bootstrap snapshot is at 1, the no-op at 2, the writes at 3..49:
     * snapshots at 11, 21, 31, 41. */
    CHECK_EQ(e.srv->stats.snapshots, 4);
    CHECK_EQ(e.srv->snap_index, 41);
    CHECK_EQ(count_snaps(e.dir), 2); /* --max-snapshots 2 */
    server_free(e.srv);
    env_open(&e);
    CHECK_EQ(e.srv->snap_index, 41);
    CHECK_EQ(server_raft_index(e.srv), 50); /* and a new no-op */
    CHECK_EQ(store_index(server_store(e.srv)), 47);
    CHECK(get_value(e.srv, "/s0", "x"));
    CHECK(get_value(e.srv, "/s46", "x"));
    server_free(e.srv);
    env_rm(&e);
}

TEST(server_wal_second_server_on_the_same_dir_is_refused)
{
    struct env e;
    env_init(&e, 1, 0);
    struct server *other = NULL;
    char errmsg[CN_ERRMSG_SIZE] = "";
    CHECK_EQ(server_new(&other, &e.cfg, NULL, errmsg), CN_ELOCKED);
    CHECK(strstr(errmsg, "in use by another cairn process") != NULL);
    server_free(e.srv);
    REQUIRE_EQ(server_new(&other, &e.cfg, NULL, errmsg), CN_OK);
    server_free(other);
    env_rm(&e);
}
