/*
 * server.c: node lifecycle, the apply pipeline, watch routing, the expiry
 * timer and the clock. The log, recovery and snapshots are server_wal.c.
 *
 * Pipeline states of a proposal:
 *
 *   caller --server_propose--> QUEUED --server_flush--> WAITING (in the
 *   log, not yet durable; server_wal.c) --batch ends--> APPLIED --> cb
 *
 * server_propose() appends to srv->queue and schedules a flush (an idle
 * handle, so the loop does not block in poll while work is queued).
 * server_flush() hands the queue to the Raft driver (server_raft.c), which
 * proposes it (leader) or forwards it to the leader. Raft appends the
 * entries to the log (server_wal.c, group commit), replicates them, and
 * once they are committed (durable on a quorum) every member applies them
 * in log order; the member that took the request answers it.
 */
#include "server_int.h"
#include "server_member_id.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- clock ---- */

int64_t server_now_ns(const struct server *srv)
{
    if (srv->clock_fn != NULL)
        return srv->clock_fn(srv->clock_ctx);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t server_mono_ns(const struct server *srv)
{
    (void)srv;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void server_set_clock(struct server *srv, server_clock_fn *fn, void *ctx)
{
    srv->clock_fn = fn;
    srv->clock_ctx = ctx;
}

/* ---- identity ---- */

/* A final avalanche so that close ids spread over the watch map. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/* ---- watch map ---- */

static size_t wmap_slot(uint64_t id, size_t cap)
{
    return (size_t)(mix64(id) & (cap - 1));
}

static int wmap_grow(struct server_watch_map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint64_t *ids = cn_calloc(cap, sizeof(*ids));
    struct server_watch **ws = cn_calloc(cap, sizeof(*ws));
    if (ids == NULL || ws == NULL) {
        cn_free(ids);
        cn_free(ws);
        return CN_ENOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (m->ids[i] == 0)
            continue;
        size_t s = wmap_slot(m->ids[i], cap);
        while (ids[s] != 0)
            s = (s + 1) & (cap - 1);
        ids[s] = m->ids[i];
        ws[s] = m->ws[i];
    }
    cn_free(m->ids);
    cn_free(m->ws);
    m->ids = ids;
    m->ws = ws;
    m->cap = cap;
    return CN_OK;
}

static int wmap_put(struct server_watch_map *m, struct server_watch *w)
{
    if ((m->count + 1) * 2 > m->cap && wmap_grow(m) != CN_OK)
        return CN_ENOMEM;
    size_t s = wmap_slot(w->id, m->cap);
    while (m->ids[s] != 0)
        s = (s + 1) & (m->cap - 1);
    m->ids[s] = w->id;
    m->ws[s] = w;
    m->count++;
    return CN_OK;
}

static size_t wmap_find(const struct server_watch_map *m, uint64_t id)
{
    if (m->cap == 0)
        return SIZE_MAX;
    size_t s = wmap_slot(id, m->cap);
    while (m->ids[s] != 0) {
        if (m->ids[s] == id)
            return s;
        s = (s + 1) & (m->cap - 1);
    }
    return SIZE_MAX;
}

static void wmap_del_slot(struct server_watch_map *m, size_t s)
{
    size_t mask = m->cap - 1;
    m->ids[s] = 0;
    m->ws[s] = NULL;
    m->count--;
    /* Backward shift: move later entries of the cluster into the hole
     * when their home slot is not between the hole and them. */
    size_t hole = s;
    for (size_t j = (s + 1) & mask; m->ids[j] != 0; j = (j + 1) & mask) {
        size_t home = wmap_slot(m->ids[j], m->cap);
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->ids[hole] = m->ids[j];
            m->ws[hole] = m->ws[j];
            m->ids[j] = 0;
            m->ws[j] = NULL;
            hole = j;
        }
    }
}

/* ---- deliveries ---- */

void server_deliver(struct server *srv)
{
    struct store_delivery d;
    while (store_next_delivery(srv->store, &d)) {
        size_t s = wmap_find(&srv->watches, d.watcher_id);
        if (s == SIZE_MAX) {
            store_event_unref(d.event);
            continue;
        }
        struct server_watch *w = srv->watches.ws[s];
        if (d.last) {
            wmap_del_slot(&srv->watches, s);
            w->id = 0;
        }
        w->cb(w, d.event, d.last);
    }
}

void server_end_watches(struct server *srv)
{
    struct server_watch_map *m = &srv->watches;
    for (size_t i = 0; i < m->cap; i++) {
        if (m->ids[i] == 0)
            continue;
        struct server_watch *w = m->ws[i];
        m->ids[i] = 0;
        m->ws[i] = NULL;
        m->count--;
        w->id = 0;
        w->cb(w, NULL, 1);
    }
}

/* ---- pipeline ---- */

int server_propose(struct server *srv, struct server_proposal *p)
{
    if (srv->stopping)
        return CN_ESHUTDOWN;
    if (srv->wal_failed)
        return CN_ESTOPPED;
    p->cmd.now_ns = server_now_ns(srv);
    p->cmd.expire_ns = 0;
    if (p->op == SERVER_OP_STORE && p->ttl_s >= 0) {
        int64_t ttl = p->ttl_s;
        if (ttl > CN_STORE_TTL_SECONDS_MAX)
            ttl = CN_STORE_TTL_SECONDS_MAX;
        p->cmd.expire_ns = p->cmd.now_ns + ttl * 1000000000;
    }
    if (p->op == SERVER_OP_MEMBER_ADD) {
        /* etcd's ID for a member added at run time: its peer URLs, the
         * cluster token and the time, so that a re-added member gets a
         * new ID. */
        char salt[300];
        snprintf(salt, sizeof(salt), "%s%lld", srv->cfg.initial_cluster_token,
                 (long long)(p->cmd.now_ns / 1000000000));
        int rc =
            server_member_id_compute(p->urls, p->n_urls, salt, &p->member_id);
        if (rc != CN_OK)
            return rc;
    }
    p->rc = CN_OK;
    p->member_err = 0;
    memset(&p->res, 0, sizeof(p->res));
    p->req_id = ++srv->req_seq;
    p->sent = 0;
    p->next = p->prev = NULL;
    if (srv->queue_tail != NULL)
        srv->queue_tail->next = p;
    else
        srv->queue_head = p;
    srv->queue_tail = p;
    srv->stats.proposals_pending++;
    server_schedule_flush(srv);
    return CN_OK;
}

void server_flush(struct server *srv)
{
    srv->flush_scheduled = 0;
    if (srv->loop_ready && !srv->stopping)
        uv_idle_stop(&srv->flush_idle);
    server_deliver(srv);
    server_raft_flush(srv);
}

static void on_flush_idle(uv_idle_t *h)
{
    server_flush(h->data);
}

void server_schedule_flush(struct server *srv)
{
    if (srv->flush_scheduled || !srv->loop_ready || srv->stopping)
        return;
    srv->flush_scheduled = 1;
    uv_idle_start(&srv->flush_idle, on_flush_idle);
}

int server_get(struct server *srv, struct cn_slice path, int recursive,
               int sorted, struct store_result *res)
{
    return store_get(srv->store, path, recursive, sorted, server_now_ns(srv),
                     res);
}

/* ---- watches ---- */

int server_watch(struct server *srv, struct server_watch *w,
                 struct cn_slice path, int recursive, int stream,
                 uint64_t since_index, struct store_result *res)
{
    uint64_t id = 0;
    w->id = 0;
    w->start_index = store_index(srv->store);
    int rc =
        store_watch(srv->store, path, recursive, stream, since_index, &id, res);
    if (rc != CN_OK || id == 0)
        return rc;
    w->id = id;
    if (wmap_put(&srv->watches, w) != CN_OK) {
        store_unwatch(srv->store, id);
        w->id = 0;
        return CN_ENOMEM;
    }
    /* History may have matched at once: deliver on the loop, later. */
    server_schedule_flush(srv);
    return CN_OK;
}

void server_unwatch(struct server *srv, struct server_watch *w)
{
    if (w->id == 0)
        return;
    size_t s = wmap_find(&srv->watches, w->id);
    if (s != SIZE_MAX)
        wmap_del_slot(&srv->watches, s);
    store_unwatch(srv->store, w->id);
    w->id = 0;
}

/* ---- expiry ---- */

static void on_sync_applied(struct server_proposal *p)
{
    struct server *srv = p->arg;
    srv->sync_pending = 0; /* counted where every member applies it */
    store_result_close(&p->res);
}

void server_expire_check(struct server *srv)
{
    /* Only the leader decides that time has passed: every member expires
     * the same keys at the same index. */
    if (srv->sync_pending || srv->role != RAFT_LEADER)
        return;
    int64_t next = store_next_expiry_ns(srv->store);
    int64_t now = server_now_ns(srv);
    if (next == 0 || next > now)
        return;
    struct server_proposal *p = &srv->sync_prop;
    memset(p, 0, sizeof(*p));
    p->cmd.method = STORE_CMD_SYNC;
    p->cmd.path = CN_SLICE_LIT("/");
    p->cmd.prev_exist = -1;
    p->ttl_s = -1;
    p->cb = on_sync_applied;
    p->arg = srv;
    if (server_propose(srv, p) == CN_OK)
        srv->sync_pending = 1;
}

static void on_expire_timer(uv_timer_t *t)
{
    server_expire_check(t->data);
}

static void on_deadline_timer(uv_timer_t *t)
{
    server_net_check_deadlines(t->data);
}

/* ---- lifecycle ---- */

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *srv = h->data;
    SRV_LOG(&srv->logger, CN_LOG_INFO, "received signal %d, stopping", signum);
    if (server_raft_transfer_before_stop(srv))
        return; /* server_stop follows once leadership has moved */
    server_stop(srv);
}

static int server_init_loop(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    int rc = uv_loop_init(&srv->loop);
    if (rc != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "event loop: %s", uv_strerror(rc));
        return CN_EIO;
    }
    srv->loop.data = srv;
    uv_idle_init(&srv->loop, &srv->flush_idle);
    srv->flush_idle.data = srv;
    server_net_init(srv);
    uv_timer_init(&srv->loop, &srv->expire_timer);
    srv->expire_timer.data = srv;
    uv_timer_init(&srv->loop, &srv->deadline_timer);
    srv->deadline_timer.data = srv;
    uv_timer_init(&srv->loop, &srv->tick_timer);
    srv->tick_timer.data = srv;
    uv_timer_init(&srv->loop, &srv->house_timer);
    srv->house_timer.data = srv;
    uv_timer_init(&srv->loop, &srv->stop_timer);
    srv->stop_timer.data = srv;
    uv_signal_init(&srv->loop, &srv->sig_int);
    srv->sig_int.data = srv;
    uv_signal_init(&srv->loop, &srv->sig_term);
    srv->sig_term.data = srv;
    srv->loop_ready = 1;
    return CN_OK;
}

int server_new(struct server **out, const struct cn_config *cfg,
               const struct cn_logger *logger, char errmsg[CN_ERRMSG_SIZE])
{
    struct server *srv = cn_calloc(1, sizeof(*srv));
    if (srv == NULL) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "out of memory");
        return CN_ENOMEM;
    }
    srv->cfg = *cfg;
    if (logger != NULL)
        srv->logger = *logger;
    srv->start_ns = server_now_ns(srv);
    int rc = CN_ENOMEM;
    snprintf(errmsg, CN_ERRMSG_SIZE, "out of memory");
    srv->read_buf = cn_malloc(SERVER_READ_BUF_BYTES);
    if (srv->read_buf == NULL)
        goto err_after_alloc;
    struct store_config scfg = {
        .history_events = CN_STORE_HISTORY_EVENTS,
        .watchers_max = CN_STORE_WATCHERS_MAX,
        .logger = srv->logger,
    };
    rc = store_new(&srv->store, &scfg);
    if (rc != CN_OK)
        goto err_after_alloc;
    rc = server_wal_open(srv, errmsg);
    if (rc != CN_OK)
        goto err_after_store;
    rc = server_init_loop(srv, errmsg);
    if (rc != CN_OK)
        goto err_after_wal;
    srv->booting = 1;
    server_raft_start(srv);
    srv->booting = 0;
    cn_mem_prefault_end(); /* begun by the snapshot's load, if at all */
    *out = srv;
    return CN_OK;

err_after_wal:
    server_raft_free(srv);
    server_wal_close(srv);
err_after_store:
    cn_mem_prefault_end();
    store_free(srv->store);
err_after_alloc:
    cn_free(srv->read_buf);
    cn_free(srv);
    return rc;
}

void server_set_proto(struct server *srv, const struct server_proto *proto)
{
    srv->proto = *proto;
}

void server_serve_clients(struct server *srv)
{
    if (srv->serving || srv->stopping)
        return;
    srv->serving = 1;
    int rc = server_net_listen(srv, srv->run_errmsg);
    if (rc != CN_OK) {
        srv->run_rc = rc;
        server_stop(srv);
    }
}

int server_run(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    signal(SIGPIPE, SIG_IGN);
    int rc;
    uv_timer_start(&srv->expire_timer, on_expire_timer,
                   CN_EXPIRE_SYNC_INTERVAL_MS, CN_EXPIRE_SYNC_INTERVAL_MS);
    uv_timer_start(&srv->deadline_timer, on_deadline_timer,
                   SERVER_DEADLINE_CHECK_MS, SERVER_DEADLINE_CHECK_MS);
    uv_signal_start(&srv->sig_int, on_signal, SIGINT);
    uv_signal_start(&srv->sig_term, on_signal, SIGTERM);
    srv->handles_started = 1;
    rc = server_raft_run(srv, errmsg);
    if (rc != CN_OK) {
        server_stop(srv);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        return rc;
    }
    if (srv->queue_head != NULL)
        server_schedule_flush(srv);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    if (srv->run_rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "%s", srv->run_errmsg);
        return srv->run_rc;
    }
    return CN_OK;
}

void server_stop(struct server *srv)
{
    if (srv->stopping)
        return;
    /* Answer what is queued before the doors close. */
    server_flush(srv);
    srv->stopping = 1;
    uv_idle_stop(&srv->flush_idle);
    uv_timer_stop(&srv->expire_timer);
    uv_timer_stop(&srv->deadline_timer);
    uv_signal_stop(&srv->sig_int);
    uv_signal_stop(&srv->sig_term);
    server_raft_stop(srv);
    server_net_close_all(srv);
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void server_free(struct server *srv)
{
    if (srv == NULL)
        return;
    if (srv->loop_ready) {
        server_stop(srv);
        uv_walk(&srv->loop, on_walk_close, NULL);
        uv_run(&srv->loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv->loop);
    }
    /* Proposals and reads not answered yet: fail them. */
    server_raft_fail_all(srv, CN_ESHUTDOWN);
    server_raft_free(srv);
    server_wal_close(srv);
    store_free(srv->store);
    cn_free(srv->watches.ids);
    cn_free(srv->watches.ws);
    cn_free(srv->read_buf);
    cn_free(srv);
}

/* ---- accessors ---- */

const struct cn_config *server_config(const struct server *srv)
{
    return &srv->cfg;
}

const struct store *server_store(const struct server *srv)
{
    return srv->store;
}

void server_stats_get(const struct server *srv, struct server_stats *st)
{
    *st = srv->stats;
}

uint64_t server_raft_index(const struct server *srv)
{
    return srv->raft_index;
}

uint64_t server_raft_term(const struct server *srv)
{
    return srv->raft_term;
}

uint64_t server_member_id(const struct server *srv)
{
    return srv->member_id;
}

uint64_t server_cluster_id(const struct server *srv)
{
    return srv->cluster_id;
}

int64_t server_start_ns(const struct server *srv)
{
    return srv->start_ns;
}
