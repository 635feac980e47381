/*
 * server_wal.c: the node's durability. Data dir lock, opening the log,
 * group commit of what the Raft driver appends (server_raft.c), periodic
 * snapshots with purge, and the sticky stop after a failed write.
 *
 * Batches (docs/wal-format.md, driver contract): at most one in flight.
 * The driver appends records (hard states, entries, snapshot markers) as
 * Raft asks and calls server_wal_kick; when no batch is in flight,
 * everything appended goes to a batch that wal_batch_run writes and
 * fdatasyncs on the thread pool. The after-work callback (on the loop)
 * ends the batch, tells the driver what is durable (server_raft_persisted:
 * Raft's PERSISTED event, held messages released) and at once starts the
 * next batch with whatever was appended during the fsync: group commit
 * without a timer.
 *
 * When the loop is not running (unit tests, the fuzzer), server_wal_kick
 * syncs on the calling thread instead (wal_sync).
 *
 * Snapshots, every --snapshot-count applied entries: the server forks. The
 * child holds a copy-on-write image of the store as of the applied index:
 * it encodes the snapshot data (Raft metadata, members, store), writes it
 * durably with wal_snap_save and streams the same bytes back through a
 * pipe, then exits; the parent goes on serving and only reads the pipe on
 * the loop (Redis's BGSAVE, in effect). When the child has exited well, the
 * marker is appended; when the batch holding the marker has ended, Raft is
 * told (SNAPSHOT_TAKEN, with the bytes: it compacts its log and sends them
 * to followers that fall behind) and wal_purge applies --max-snapshots and
 * --max-wals. Without a running loop (tests) the same steps run inline.
 */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- --unsafe-no-fsync: the posix table without syncs ---- */

static int nosync_sync(void *ctx, struct cn_fs_file *f, int data_only,
                       char *errmsg)
{
    return CN_OK;
}

static int nosync_sync_dir(void *ctx, const char *path, char *errmsg)
{
    return CN_OK;
}

/* ---- open, recover, close ---- */

static int mkdir_p(const char *path, char errmsg[CN_ERRMSG_SIZE])
{
    char tmp[1100];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(tmp)) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "bad data dir \"%.160s\"", path);
        return CN_EINVAL;
    }
    memcpy(tmp, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0700) != 0 && errno != EEXIST) {
            snprintf(errmsg, CN_ERRMSG_SIZE, "cannot create %.160s: %s", tmp,
                     strerror(errno));
            return CN_EIO;
        }
        tmp[i] = c;
    }
    return CN_OK;
}

int server_wal_open(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    srv->fs = cn_fs_posix();
    if (srv->cfg.unsafe_no_fsync) {
        srv->fs_nosync = *cn_fs_posix();
        srv->fs_nosync.sync = nosync_sync;
        srv->fs_nosync.sync_dir = nosync_sync_dir;
        srv->fs = &srv->fs_nosync;
        SRV_LOG(&srv->logger, CN_LOG_WARN,
                "--unsafe-no-fsync: acknowledged writes may be lost at a "
                "power failure");
    }
    int rc = mkdir_p(srv->cfg.data_dir, errmsg);
    if (rc != CN_OK)
        return rc;
    char why[CN_ERRMSG_SIZE] = "";
    rc = wal_lock(srv->fs, srv->cfg.data_dir, &srv->wal_lock, why);
    if (rc == CN_ELOCKED) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "data dir %.160s is in use by another cairn process",
                 srv->cfg.data_dir);
        return rc;
    }
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "cannot lock data dir: %.200s", why);
        return rc;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct wal_config wc = {
        .fs = srv->fs,
        .data_dir = srv->cfg.data_dir,
        .wal_dir = srv->cfg.wal_dir,
        .max_snapshots = srv->cfg.max_snapshots,
        .max_wals = srv->cfg.max_wals,
        .cluster_id = srv->cluster_id,
        .member_id = srv->member_id,
        .seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^
                ((uint64_t)getpid() << 48),
    };
    struct wal_recovery rec;
    int64_t t0 = server_mono_ns(srv);
    rc = wal_open(&wc, &srv->wal, &rec, why);
    srv->boot_read_ns = server_mono_ns(srv) - t0;
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "%s", why);
        goto err_after_lock;
    }
    if (rec.notes[0] != '\0')
        SRV_LOG(&srv->logger, CN_LOG_WARN, "recovery: %s", rec.notes);
    rc = server_raft_boot(srv, &rec, errmsg);
    wal_recovery_close(&rec);
    if (rc != CN_OK)
        goto err_after_open;
    return CN_OK;

err_after_open:
    wal_close(srv->wal);
    srv->wal = NULL;
err_after_lock:
    wal_unlock(srv->fs, srv->wal_lock);
    srv->wal_lock = NULL;
    return rc;
}

void server_wal_close(struct server *srv)
{
    if (srv->wal != NULL) {
        CN_ASSERT(srv->batch == NULL);
        if (srv->snap_pid != 0) {
            /* Stopping during a snapshot: it has no marker, drop it. */
            kill(srv->snap_pid, SIGKILL);
            waitpid(srv->snap_pid, NULL, 0);
            srv->snap_pid = 0;
        }
        wal_close(srv->wal);
        srv->wal = NULL;
    }
    if (srv->wal_lock != NULL) {
        wal_unlock(srv->fs, srv->wal_lock);
        srv->wal_lock = NULL;
    }
    cn_buf_close(&srv->enc);
    cn_buf_close(&srv->snap_buf);
}

const char *server_write_refusal(const struct server *srv)
{
    return srv->wal_failed ? srv->wal_cause : NULL;
}

/* ---- batches ---- */

void server_wal_failed(struct server *srv, int rc)
{
    if (srv->wal_failed)
        return;
    srv->wal_failed = 1;
    SRV_LOG(&srv->logger, CN_LOG_ERROR,
            "write-ahead log failed, refusing every write from now on "
            "(reads go on; restart once the disk is fixed): %s",
            wal_errmsg(srv->wal)[0] != '\0' ? wal_errmsg(srv->wal)
                                            : cn_strerror(rc));
    snprintf(srv->wal_cause, sizeof(srv->wal_cause),
             "etcdserver: disk write failed (%s); this member takes no "
             "writes until it is restarted",
             cn_strerror(rc == CN_ESTOPPED ? CN_EIO : rc));
    server_raft_fail_all(srv, CN_ESTOPPED);
}

static void server_snap_purge(struct server *srv)
{
    srv->snap_state = SERVER_SNAP_IDLE;
    srv->snap_index = srv->snap_save_index;
    srv->stats.snapshots++;
    int64_t t0 = server_mono_ns(srv);
    struct cn_slice data = {srv->snap_buf.data, srv->snap_buf.len};
    /* The bytes go to Raft as they are (it sends them to followers that
     * fall behind): no copy of what can be hundreds of MB. */
    if (server_raft_snapshot_taken(srv, srv->snap_save_index, data) == CN_OK)
        memset(&srv->snap_buf, 0, sizeof(srv->snap_buf));
    else
        cn_buf_close(&srv->snap_buf);
    int64_t tr = server_mono_ns(srv);
    struct wal_purge_result pr = {0, 0};
    char why[CN_ERRMSG_SIZE] = "";
    int rc = wal_purge(srv->wal, &pr, why);
    int64_t t1 = server_mono_ns(srv);
    if (rc != CN_OK)
        SRV_LOG(&srv->logger, CN_LOG_WARN,
                "snapshot at index %llu saved, but purging old files "
                "failed: %s",
                (unsigned long long)srv->snap_index, why);
    else
        SRV_LOG(&srv->logger, CN_LOG_INFO,
                "saved snapshot at index %llu; purged %u snapshots and %u "
                "log segments (loop busy: fork %.1f ms, Raft compaction "
                "%.1f ms, purge %.1f ms)",
                (unsigned long long)srv->snap_index, pr.snaps_removed,
                pr.segments_removed, srv->snap_fork_ns / 1e6,
                (double)(tr - t0) / 1e6, (double)(t1 - tr) / 1e6);
}

/* A batch (or a sync) ended with rc; pos is the durable position. */
static void server_wal_done(struct server *srv, int rc,
                            const struct wal_pos *pos)
{
    if (rc != CN_OK) {
        server_wal_failed(srv, rc);
        return;
    }
    srv->stats.wal_batches++;
    server_raft_persisted(srv, pos);
    if (srv->snap_state == SERVER_SNAP_MARKED &&
        pos->seq >= srv->snap_marker_seq)
        server_snap_purge(srv);
    server_snap_maybe_start(srv);
}

/* Without a running loop: make everything appended durable now. */
static void server_wal_sync_now(struct server *srv)
{
    if (srv->wal_failed || wal_pending_bytes(srv->wal) == 0)
        return;
    struct wal_pos pos;
    int rc = wal_sync(srv->wal, &pos);
    if (rc == CN_ENOMEM) {
        SRV_LOG(&srv->logger, CN_LOG_WARN, "log sync: out of memory");
        return;
    }
    server_wal_done(srv, rc, &pos);
}

static void on_batch_work(uv_work_t *req)
{
    struct server *srv = req->data;
    srv->batch_rc = wal_batch_run(srv->batch);
}

static void on_batch_done(uv_work_t *req, int status)
{
    struct server *srv = req->data;
    struct wal_batch *b = srv->batch;
    struct wal_pos pos;
    (void)status; /* never cancelled: a batch always runs */
    srv->batch = NULL;
    int rc = wal_batch_end(srv->wal, b, &pos);
    server_wal_done(srv, rc, &pos);
    /* Group commit: what was appended during the fsync goes now. */
    server_wal_kick(srv);
}

void server_wal_kick(struct server *srv)
{
    if (srv->wal == NULL || srv->wal_failed)
        return;
    if (!srv->handles_started) {
        /* Loops: a sync may let Raft append more (its no-op, a commit). */
        for (int i = 0;
             i < 16 && wal_pending_bytes(srv->wal) > 0 && !srv->wal_failed; i++)
            server_wal_sync_now(srv);
        return;
    }
    if (srv->batch != NULL)
        return;
    struct wal_batch *b = NULL;
    int rc = wal_batch_begin(srv->wal, &b);
    if (rc == CN_ENOMEM) {
        SRV_LOG(&srv->logger, CN_LOG_WARN, "log batch: out of memory");
        server_schedule_flush(srv); /* try again next iteration */
        return;
    }
    if (rc != CN_OK) {
        server_wal_failed(srv, rc);
        return;
    }
    if (b == NULL)
        return;
    srv->batch = b;
    srv->batch_work.data = srv;
    rc = uv_queue_work(&srv->loop, &srv->batch_work, on_batch_work,
                       on_batch_done);
    CN_ASSERT(rc == 0);
}

int server_wal_install(struct server *srv, uint64_t index, uint64_t term,
                       struct cn_slice data, uint64_t *seq)
{
    char why[CN_ERRMSG_SIZE] = "";
    int rc = wal_snap_save(srv->wal, index, term, data, why);
    if (rc == CN_OK)
        rc = wal_append_snapshot(srv->wal, index, term);
    if (rc != CN_OK) {
        SRV_LOG(&srv->logger, CN_LOG_ERROR,
                "cannot save the snapshot at index %llu from the leader: %s",
                (unsigned long long)index, why[0] ? why : cn_strerror(rc));
        return rc;
    }
    struct wal_pos pos;
    wal_appended(srv->wal, &pos);
    *seq = pos.seq;
    if (srv->snap_index < index)
        srv->snap_index = index;
    return CN_OK;
}

/* ---- snapshots ---- */

/* The snapshot is on disk: append its marker (or give up). */
static void snap_saved(struct server *srv, int rc)
{
    uint64_t index = srv->snap_save_index;
    if (rc == CN_OK && srv->snap_index >= index) {
        /* The leader's snapshot was installed while this one was being
         * made: it is newer, so this one is dropped (its unmarked file
         * goes at the next purge or open). */
        cn_buf_close(&srv->snap_buf);
        srv->snap_state = SERVER_SNAP_IDLE;
        SRV_LOG(&srv->logger, CN_LOG_INFO,
                "snapshot at index %llu dropped: the snapshot at index %llu "
                "was installed meanwhile",
                (unsigned long long)index, (unsigned long long)srv->snap_index);
        return;
    }
    if (rc == CN_OK && !srv->wal_failed)
        rc = wal_append_snapshot(srv->wal, index, srv->snap_save_term);
    if (rc != CN_OK) {
        /* Not sticky: the older snapshots and the log are intact. */
        cn_buf_close(&srv->snap_buf);
        srv->snap_state = SERVER_SNAP_IDLE;
        if (srv->snap_index < index)
            srv->snap_index = index; /* next try: --snapshot-count more */
        if (!srv->wal_failed)
            SRV_LOG(&srv->logger, CN_LOG_WARN,
                    "snapshot at index %llu failed: %s",
                    (unsigned long long)index,
                    srv->snap_errmsg[0] ? srv->snap_errmsg : cn_strerror(rc));
        return;
    }
    struct wal_pos pos;
    wal_appended(srv->wal, &pos);
    srv->snap_marker_seq = pos.seq;
    srv->snap_state = SERVER_SNAP_MARKED;
    server_wal_kick(srv);
}

/* ---- the snapshot child ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* In the child: encode, save durably, send the bytes back, exit. */
static void snap_child_main(struct server *srv, int fd)
{
    struct cn_buf data = {0};
    uint64_t term = 0;
    char why[CN_ERRMSG_SIZE] = "";
    int rc = server_raft_snapshot_data(srv, &data, &term);
    if (rc == CN_OK) {
        struct cn_slice sl = {data.data, data.len};
        rc = wal_snap_save(srv->wal, srv->snap_save_index, term, sl, why);
    }
    if (rc == CN_OK && write_all(fd, data.data, data.len) != 0)
        rc = CN_EIO;
    if (rc != CN_OK && why[0] != '\0')
        (void)!write(2, why, strlen(why));
    _exit(rc == CN_OK ? 0 : 1);
}

static void on_snap_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct server *srv = h->data;
    (void)hint;
    if (cn_buf_reserve(&srv->snap_buf, 256 * 1024) != CN_OK) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = srv->snap_buf.data + srv->snap_buf.len;
    buf->len = srv->snap_buf.cap - srv->snap_buf.len - 1;
}

static void on_snap_pipe_closed(uv_handle_t *h)
{
    struct server *srv = h->data;
    srv->snap_pipe_live = 0;
}

static void on_snap_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct server *srv = st->data;
    (void)buf;
    if (n > 0) {
        srv->snap_buf.len += (size_t)n;
        srv->snap_buf.data[srv->snap_buf.len] = '\0';
        return;
    }
    if (n == 0)
        return;
    /* EOF (the child is done) or an error: collect the child. */
    uv_read_stop(st);
    uv_close((uv_handle_t *)&srv->snap_pipe, on_snap_pipe_closed);
    int status = 0, rc = CN_EIO;
    if (waitpid(srv->snap_pid, &status, 0) == srv->snap_pid &&
        WIFEXITED(status) && WEXITSTATUS(status) == 0 && n == UV_EOF &&
        srv->snap_buf.len > 0)
        rc = CN_OK;
    srv->snap_pid = 0;
    if (rc == CN_OK)
        srv->snap_errmsg[0] = '\0';
    else
        snprintf(srv->snap_errmsg, sizeof(srv->snap_errmsg),
                 "the snapshot process failed (status %d)", status);
    snap_saved(srv, rc);
}

/* Forks the child; CN_OK when it runs. */
static int snap_fork(struct server *srv)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return CN_EIO;
    int64_t t0 = server_mono_ns(srv);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return CN_EIO;
    }
    if (pid == 0) {
        /* Keep only stdio and the pipe (as fd 3): above all not the data
         * dir's lock, shared across fork, so that a new server can lock
         * the dir the moment this one dies. */
        if (fds[1] != 3 && dup2(fds[1], 3) != 3)
            _exit(1);
        fds[1] = 3;
        close_range(4, ~0u, 0);
        /* A child must not outlive a killed server: it holds the data
         * dir's lock too (flock is shared across fork). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        signal(SIGPIPE, SIG_IGN);
        /* Background work: leave the CPU to the server first. */
        (void)!nice(19);
        snap_child_main(srv, fds[1]);
    }
    srv->snap_fork_ns = server_mono_ns(srv) - t0;
    close(fds[1]);
    uv_pipe_init(&srv->loop, &srv->snap_pipe, 0);
    srv->snap_pipe.data = srv;
    srv->snap_pipe_live = 1;
    if (uv_pipe_open(&srv->snap_pipe, fds[0]) != 0 ||
        uv_read_start((uv_stream_t *)&srv->snap_pipe, on_snap_alloc,
                      on_snap_read) != 0) {
        /* The child finishes on its own; its bytes are not read. */
        uv_close((uv_handle_t *)&srv->snap_pipe, on_snap_pipe_closed);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return CN_EIO;
    }
    srv->snap_pid = (int)pid;
    return CN_OK;
}

void server_snap_maybe_start(struct server *srv)
{
    uint64_t every = srv->cfg.snapshot_count;
    if (every == 0 || srv->snap_state != SERVER_SNAP_IDLE || srv->wal_failed ||
        srv->in_step || srv->booting || srv->snap_pipe_live ||
        srv->raft_index < srv->snap_index + every)
        return;
    struct raft_snapshot_meta meta;
    if (raft_snapshot_meta_at(srv->raft, srv->raft_index, &meta) != CN_OK)
        return;
    cn_buf_reset(&srv->snap_buf);
    srv->snap_save_index = srv->raft_index;
    srv->snap_save_term = meta.term;
    srv->snap_errmsg[0] = '\0';
    srv->snap_state = SERVER_SNAP_SAVING;
    if (srv->handles_started && !srv->stopping && snap_fork(srv) == CN_OK)
        return;
    /* No loop (tests), or the fork failed: encode and save here. */
    uint64_t term = 0;
    int rc = server_raft_snapshot_data(srv, &srv->snap_buf, &term);
    if (rc == CN_OK) {
        struct cn_slice data = {srv->snap_buf.data, srv->snap_buf.len};
        rc = wal_snap_save(srv->wal, srv->snap_save_index, term, data,
                           srv->snap_errmsg);
    }
    snap_saved(srv, rc);
}
