/*
 * server_raft.c: the Raft driver. Joins the pure core (src/raft) to the log
 * (server_wal.c), the peer transport (peer.c), the store and the clients'
 * proposals and reads, following the driver's order of docs/raft.md.
 *
 * Proposal states (server.c queues them):
 *
 *   QUEUED --flush, leader--> PROPOSED (Raft PROPOSE)      \
 *   QUEUED --flush, follower--> FORWARDED (to the leader)   > IN FLIGHT
 *   QUEUED --flush, no leader--> UNSENT (until one is known)/
 *   FORWARDED --NACK from a non-leader--> UNSENT
 *   IN FLIGHT --its command applied (origin, req_id match)--> cb
 *   IN FLIGHT --request timeout--> cb with CN_ETIMEDOUT
 *
 * Every command carries the member that took the request and a request
 * ID unique on that member across restarts, so whichever member proposed
 * it, the member that holds the client answers it when it applies the
 * entry, with the result its own store produced.
 *
 * Linearizable reads (server_read_index): QUEUED --flush--> SENT (Raft
 * READ on the leader, or SERVER_MSG_READ to it) --result--> WAITING for
 * the apply index --applied--> cb. A failed round puts them back to
 * QUEUED; the request timeout ends them.
 *
 * Messages that depend on a hard state (term, vote) not yet durable are
 * held in srv->hold and leave when the batch holding it has been synced.
 */
#include "server_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_discovery.h"
#include "server_member_id.h"

#define HOUSE_INTERVAL_MS 50u
#define REMOTE_READS_MAX 4096u
#define PROPOSE_BATCH_MAX 256u
#define HS_COMMIT_EVERY 1024u

enum { READ_QUEUED = 0, READ_SENT = 1, READ_WAITING = 2 };

static void raft_step_event(struct server *srv, struct raft_event *ev);

static uint64_t mono_ms(const struct server *srv)
{
    return (uint64_t)(server_mono_ns(srv) / 1000000);
}

/* ---- little-endian helpers for the driver's messages ---- */

static void put_le(uint8_t *p, uint64_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#define put64(p, v) put_le((p), (v), 8)
#define put32(p, v) put_le((p), (v), 4)
#define get64(p) get_le((p), 8)
#define get32(p) ((uint32_t)get_le((p), 4))

/* Points out[] at a flag's URLs (at most SERVER_MEMBER_URLS_MAX). */
static unsigned url_ptrs(const struct cn_url_list *l, const char **out)
{
    unsigned n = 0;
    for (int i = 0; i < l->count && n < SERVER_MEMBER_URLS_MAX; i++)
        out[n++] = l->urls[i].raw;
    return n;
}

/* ---- sending ---- */

static void send_bytes(struct server *srv, uint64_t to, uint8_t type,
                       const void *p, size_t len)
{
    if (srv->peers == NULL)
        return;
    int rc = server_peers_send(srv->peers, to, type, p, len);
    if (rc == CN_OK) {
        srv->sent_msgs++;
        srv->sent_bytes += len;
    }
}

/* Held messages: records of u64 to, u8 type, u32 len, bytes. */
static void hold_release(struct server *srv)
{
    size_t off = 0;
    const uint8_t *p = (const uint8_t *)srv->hold.data;
    while (off + 13 <= srv->hold.len) {
        uint64_t to = get64(p + off);
        uint8_t type = p[off + 8];
        uint32_t len = get32(p + off + 9);
        send_bytes(srv, to, type, p + off + 13, len);
        off += 13 + (size_t)len;
    }
    cn_buf_reset(&srv->hold);
    srv->hold_seq = 0;
}

static void send_raft_msg(struct server *srv, const struct raft_msg *m,
                          int hold)
{
    cn_buf_reset(&srv->msg_enc);
    if (raft_msg_encode(m, &srv->msg_enc) != CN_OK)
        return; /* lost: Raft retries */
    if (m->type == RAFT_MSG_APPEND)
        srv->rstats.append_sent++;
    if (!hold) {
        send_bytes(srv, m->to, m->type, srv->msg_enc.data, srv->msg_enc.len);
        return;
    }
    uint8_t h[13];
    put64(h, m->to);
    h[8] = m->type;
    put32(h + 9, (uint32_t)srv->msg_enc.len);
    size_t at = srv->hold.len;
    if (cn_buf_append(&srv->hold, h, sizeof(h)) != CN_OK ||
        cn_buf_append(&srv->hold, srv->msg_enc.data, srv->msg_enc.len) != CN_OK)
        srv->hold.len = at; /* lost: Raft retries */
}

/* ---- in-flight proposals ---- */

static void fl_push(struct server *srv, struct server_proposal *p)
{
    p->next = NULL;
    p->prev = srv->fl_tail;
    if (srv->fl_tail != NULL)
        srv->fl_tail->next = p;
    else
        srv->fl_head = p;
    srv->fl_tail = p;
}

static void fl_unlink(struct server *srv, struct server_proposal *p)
{
    if (p->prev != NULL)
        p->prev->next = p->next;
    else
        srv->fl_head = p->next;
    if (p->next != NULL)
        p->next->prev = p->prev;
    else
        srv->fl_tail = p->prev;
    p->next = p->prev = NULL;
}

static struct server_proposal *fl_find(struct server *srv, uint64_t req_id)
{
    for (struct server_proposal *p = srv->fl_head; p != NULL; p = p->next)
        if (p->req_id == req_id)
            return p;
    return NULL;
}

static void complete(struct server *srv, struct server_proposal *p, int rc)
{
    srv->stats.proposals_pending--;
    if (rc == CN_OK)
        srv->stats.proposals_applied++;
    else
        srv->stats.proposals_failed++;
    p->rc = rc;
    if (rc != CN_OK) {
        p->raft_index = srv->raft_index;
        p->raft_term = srv->raft_term;
    }
    p->cb(p);
}

void server_raft_fail_all(struct server *srv, int rc)
{
    while (srv->fl_head != NULL) {
        struct server_proposal *p = srv->fl_head;
        fl_unlink(srv, p);
        complete(srv, p, rc);
    }
    while (srv->queue_head != NULL) {
        struct server_proposal *p = srv->queue_head;
        srv->queue_head = p->next;
        if (srv->queue_head == NULL)
            srv->queue_tail = NULL;
        p->next = NULL;
        complete(srv, p, rc);
    }
    if (rc == CN_ESTOPPED)
        return; /* reads go on after a log failure */
    while (srv->reads != NULL) {
        struct server_read *rd = srv->reads;
        srv->reads = rd->next;
        rd->rc = rc;
        rd->cb(rd);
    }
}

/* ---- encoding proposals ---- */

static int encode_proposal(struct server *srv, struct server_proposal *p,
                           struct cn_buf *out)
{
    size_t start = out->len;
    int rc;
    switch (p->op) {
    case SERVER_OP_STORE:
        rc = server_cmd_begin(out, SERVER_CMD_STORE, srv->member_id, p->req_id);
        if (rc == CN_OK)
            rc = store_cmd_encode(&p->cmd, out);
        break;
    case SERVER_OP_MEMBER_ADD:
    case SERVER_OP_MEMBER_UPDATE:
        rc = server_cmd_begin(out,
                              p->op == SERVER_OP_MEMBER_ADD
                                  ? SERVER_CMD_MEMBER_ADD
                                  : SERVER_CMD_MEMBER_UPDATE,
                              srv->member_id, p->req_id);
        if (rc == CN_OK)
            rc = server_cmd_member_body(out, p->member_id, NULL, p->urls,
                                        p->n_urls);
        break;
    case SERVER_OP_MEMBER_REMOVE:
        rc = server_cmd_begin(out, SERVER_CMD_MEMBER_REMOVE, srv->member_id,
                              p->req_id);
        if (rc == CN_OK)
            rc = server_cmd_member_body(out, p->member_id, NULL, NULL, 0);
        break;
    case SERVER_OP_ATTR:
        rc = server_cmd_begin(out, SERVER_CMD_ATTR, srv->member_id, p->req_id);
        if (rc == CN_OK)
            rc = server_cmd_member_body(out, p->member_id, srv->cfg.name,
                                        p->urls, p->n_urls);
        break;
    default:
        rc = CN_EINVAL;
    }
    if (rc != CN_OK)
        out->len = start;
    return rc;
}

/* ---- apply ---- */

static int urls_taken(const struct server *srv, uint64_t self,
                      const struct server_cmd *c)
{
    for (unsigned i = 0; i < c->n_urls; i++) {
        char u[SERVER_MEMBER_URL_BYTES];
        memcpy(u, c->urls[i].base, c->urls[i].len);
        u[c->urls[i].len] = '\0';
        const struct server_member *m =
            server_members_by_peer_url(&srv->members, u);
        if (m != NULL && m->id != self)
            return 1;
    }
    return 0;
}

static void urls_of(const struct server_cmd *c,
                    char (*tmp)[SERVER_MEMBER_URL_BYTES], const char **v)
{
    for (unsigned i = 0; i < c->n_urls; i++) {
        memcpy(tmp[i], c->urls[i].base, c->urls[i].len);
        tmp[i][c->urls[i].len] = '\0';
        v[i] = tmp[i];
    }
}

/* Tells the transport where member m is: a new peer is added, a known
 * one gets m's URLs. */
static void peers_set(struct server *srv, const struct server_member *m)
{
    if (srv->peers == NULL || m->id == srv->member_id || m->n_peer == 0)
        return;
    const char *v[SERVER_MEMBER_URLS_MAX];
    for (unsigned i = 0; i < m->n_peer; i++)
        v[i] = m->peer[i];
    int rc = server_peers_add(srv->peers, m->id, v, m->n_peer);
    if (rc == CN_EEXIST)
        rc = server_peers_update(srv->peers, m->id, v, m->n_peer);
    if (rc != CN_OK)
        SRV_LOG(&srv->logger, CN_LOG_WARN, "peer %llx: %s",
                (unsigned long long)m->id, cn_strerror(rc));
}

static int apply_member_cmd(struct server *srv, const struct server_cmd *c)
{
    char tmp[SERVER_MEMBER_URLS_MAX][SERVER_MEMBER_URL_BYTES];
    const char *v[SERVER_MEMBER_URLS_MAX];
    urls_of(c, tmp, v);
    struct server_member *m = server_members_find(&srv->members, c->id);
    switch (c->kind) {
    case SERVER_CMD_ATTR:
        if (m == NULL)
            return SERVER_MEMBER_NOT_FOUND;
        if (c->name.len < sizeof(m->name)) {
            memcpy(m->name, c->name.base, c->name.len);
            m->name[c->name.len] = '\0';
        }
        server_members_set_urls(m, 1, v, c->n_urls);
        return SERVER_MEMBER_OK;
    case SERVER_CMD_MEMBER_ADD: {
        if (server_members_is_removed(&srv->members, c->id))
            return SERVER_MEMBER_REMOVED;
        if (m != NULL)
            return SERVER_MEMBER_ID_EXISTS;
        if (urls_taken(srv, 0, c))
            return SERVER_MEMBER_URL_EXISTS;
        if (server_members_add(&srv->members, c->id, "", v, c->n_urls) != CN_OK)
            return SERVER_MEMBER_FULL;
        m = server_members_find(&srv->members, c->id);
        peers_set(srv, m);
        SRV_LOG(&srv->logger, CN_LOG_INFO,
                "added member %llx %s to the cluster; it joins as a learner "
                "and becomes a voter once it has caught up",
                (unsigned long long)c->id, v[0]);
        return SERVER_MEMBER_OK;
    }
    case SERVER_CMD_MEMBER_UPDATE:
        if (m == NULL || (m->flags & SERVER_MEMBER_LEAVING))
            return m != NULL || server_members_is_removed(&srv->members, c->id)
                       ? SERVER_MEMBER_REMOVED
                       : SERVER_MEMBER_NOT_FOUND;
        if (urls_taken(srv, c->id, c))
            return SERVER_MEMBER_URL_EXISTS;
        if (server_members_set_urls(m, 0, v, c->n_urls) != CN_OK)
            return SERVER_MEMBER_FULL;
        peers_set(srv, m);
        return SERVER_MEMBER_OK;
    case SERVER_CMD_MEMBER_REMOVE:
        if (m == NULL || (m->flags & SERVER_MEMBER_LEAVING))
            return m != NULL || server_members_is_removed(&srv->members, c->id)
                       ? SERVER_MEMBER_REMOVED
                       : SERVER_MEMBER_NOT_FOUND;
        if (m->flags & SERVER_MEMBER_IN_CONF) {
            m->flags |= SERVER_MEMBER_LEAVING; /* the leader removes it */
        } else {
            if (srv->peers != NULL && c->id != srv->member_id)
                server_peers_remove(srv->peers, c->id);
            server_members_remove(&srv->members, c->id);
        }
        return SERVER_MEMBER_OK;
    }
    return SERVER_MEMBER_NOT_FOUND;
}

static void mark_removed_on_disk(struct server *srv)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/member/removed", srv->cfg.data_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        static const char why[] =
            "this member was removed from its cluster; its data must not "
            "be reused\n";
        if (write(fd, why, sizeof(why) - 1) < 0 || fsync(fd) != 0)
            SRV_LOG(&srv->logger, CN_LOG_WARN, "cannot write %s: %s", path,
                    strerror(errno));
        close(fd);
    }
}

static void apply_conf(struct server *srv, const struct raft_entry *e)
{
    struct raft_conf conf;
    if (raft_conf_decode(e->data, e->data_len, &conf) != CN_OK) {
        SRV_LOG(&srv->logger, CN_LOG_ERROR,
                "configuration entry %llu is corrupt",
                (unsigned long long)e->index);
        return;
    }
    /* Members that were in a configuration and are not any more. */
    for (unsigned i = 0; i < srv->members.n;) {
        struct server_member *m = &srv->members.m[i];
        if (raft_conf_get(&conf, m->id) != NULL) {
            m->flags |= SERVER_MEMBER_IN_CONF;
            i++;
            continue;
        }
        if (!(m->flags & SERVER_MEMBER_IN_CONF)) {
            i++;
            continue;
        }
        uint64_t id = m->id;
        SRV_LOG(&srv->logger, CN_LOG_INFO, "removed member %llx",
                (unsigned long long)id);
        server_members_remove(&srv->members, id);
        if (id == srv->member_id) {
            srv->removed_self = 1;
        } else if (srv->peers != NULL) {
            server_peers_remove(srv->peers, id);
        }
    }
}

static void apply_command(struct server *srv, const struct raft_entry *e)
{
    struct server_cmd c;
    if (server_cmd_decode(e->data, e->data_len, &c) != CN_OK) {
        SRV_LOG(&srv->logger, CN_LOG_ERROR, "log entry %llu is corrupt",
                (unsigned long long)e->index);
        return;
    }
    struct server_proposal *p = NULL;
    if (c.origin == srv->member_id) {
        p = fl_find(srv, c.req_id);
        if (p != NULL)
            fl_unlink(srv, p);
    }
    int rc = CN_OK;
    if (c.kind == SERVER_CMD_STORE) {
        struct store_cmd cmd;
        struct store_result tmp;
        struct store_result *res = p != NULL ? &p->res : &tmp;
        memset(res, 0, sizeof(*res));
        rc = store_cmd_decode(c.body.base, c.body.len, &cmd);
        if (rc == CN_OK)
            rc = store_apply(srv->store, &cmd, res);
        if (rc != CN_OK)
            SRV_LOG(&srv->logger, CN_LOG_ERROR,
                    "apply of log index %llu failed: %s",
                    (unsigned long long)e->index, cn_strerror(rc));
        if (p == NULL)
            store_result_close(&tmp);
        if (cmd.method == STORE_CMD_SYNC && rc == CN_OK)
            srv->stats.expire_syncs++;
        server_deliver(srv);
    } else {
        int merr = apply_member_cmd(srv, &c);
        if (p != NULL)
            p->member_err = merr;
    }
    if (p != NULL) {
        p->raft_index = e->index;
        p->raft_term = srv->raft_term;
        complete(srv, p, rc);
    }
}

static void apply_entry(struct server *srv, const struct raft_entry *e)
{
    srv->raft_index = e->index;
    if (e->type == RAFT_ENTRY_COMMAND)
        apply_command(srv, e);
    else if (e->type == RAFT_ENTRY_CONFIG)
        apply_conf(srv, e);
}

/* ---- reads ---- */

static void reads_complete(struct server *srv)
{
    struct server_read **pp = &srv->reads;
    while (*pp != NULL) {
        struct server_read *rd = *pp;
        if (rd->state == READ_WAITING && rd->index <= srv->raft_index) {
            *pp = rd->next;
            rd->rc = CN_OK;
            rd->cb(rd);
            continue;
        }
        pp = &rd->next;
    }
}

static void reads_result(struct server *srv, uint64_t cookie, int rc,
                         uint64_t index)
{
    for (struct server_read *rd = srv->reads; rd != NULL; rd = rd->next) {
        if (rd->state != READ_SENT || rd->cookie != cookie)
            continue;
        if (rc != CN_OK) {
            rd->state = READ_QUEUED; /* ask again */
        } else {
            rd->state = READ_WAITING;
            rd->index = index;
        }
    }
    if (rc != CN_OK)
        server_schedule_flush(srv);
}

static void send_read_resp(struct server *srv, uint64_t to, uint64_t cookie,
                           int rc, uint64_t index)
{
    uint8_t b[20];
    put64(b, cookie);
    put32(b + 8, (uint32_t)(int32_t)rc);
    put64(b + 12, index);
    send_bytes(srv, to, SERVER_MSG_READ_RESP, b, sizeof(b));
}

static void read_result(struct server *srv, const struct raft_read_result *r)
{
    for (size_t i = 0; i < srv->n_rreads; i++) {
        struct server_remote_read *x = &srv->rreads[i];
        if (x->my_cookie != r->id)
            continue;
        send_read_resp(srv, x->from, x->their_cookie, r->rc, r->index);
        srv->rreads[i] = srv->rreads[--srv->n_rreads];
        return;
    }
    reads_result(srv, r->id, r->rc, r->index);
}

/* ---- handling an update (docs/raft.md, the driver's order) ---- */

static void install_snapshot(struct server *srv, const struct raft_update *up)
{
    struct server_members t;
    struct server_snap_parts parts;
    int rc =
        server_snap_decode(up->snapshot_data, up->snapshot_len, &t, &parts);
    if (rc == CN_OK)
        rc = store_snapshot_load(srv->store, parts.store.base, parts.store.len);
    if (rc != CN_OK) {
        SRV_LOG(&srv->logger, CN_LOG_ERROR,
                "snapshot at index %llu from the leader is unusable: %s",
                (unsigned long long)up->snapshot.index, cn_strerror(rc));
        return;
    }
    server_end_watches(srv);
    uint64_t self = srv->member_id;
    t.cluster_id = srv->members.cluster_id;
    srv->members = t;
    if (srv->peers != NULL) {
        for (unsigned i = 0; i < t.n; i++)
            if (t.m[i].id != self) {
                peers_set(srv, &t.m[i]);
            }
        for (unsigned i = 0; i < t.n_removed; i++)
            if (t.removed[i] != self)
                server_peers_mark_removed(srv->peers, t.removed[i]);
    }
    srv->raft_index = up->snapshot.index;
    struct cn_slice data = {up->snapshot_data, up->snapshot_len};
    uint64_t seq = 0;
    rc = server_wal_install(srv, up->snapshot.index, up->snapshot.term, data,
                            &seq);
    if (rc != CN_OK) {
        server_wal_failed(srv, rc);
        return;
    }
    srv->snap_applied_index = up->snapshot.index;
    srv->snap_applied_seq = seq;
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "installed the leader's snapshot at index %llu (term %llu)",
            (unsigned long long)up->snapshot.index,
            (unsigned long long)up->snapshot.term);
}

static void append_entries(struct server *srv, const struct raft_update *up)
{
    for (unsigned i = 0; i < up->n_entries && !srv->wal_failed; i++) {
        const struct raft_entry *e = &up->entries[i];
        cn_buf_reset(&srv->enc);
        uint8_t type = e->type;
        int rc = cn_buf_append(&srv->enc, &type, 1);
        if (rc == CN_OK && e->data_len > 0)
            rc = cn_buf_append(&srv->enc, e->data, e->data_len);
        if (rc == CN_OK) {
            struct cn_slice payload = {srv->enc.data, srv->enc.len};
            rc = wal_append_entry(srv->wal, e->index, e->term, payload);
        }
        if (rc != CN_OK) {
            /* Not appended means never persisted: Raft will not count it,
             * so the write is never acknowledged. A full stop is the
             * honest answer to a log that cannot take records. */
            server_wal_failed(srv, rc);
            return;
        }
        srv->last_index = e->index;
        srv->stats.wal_entries++;
    }
}

static void handle_update(struct server *srv, struct raft_update *up)
{
    if (up->leader != srv->leader_id) {
        if (up->leader != 0)
            SRV_LOG(&srv->logger, CN_LOG_INFO, "leader is %llx (term %llu)",
                    (unsigned long long)up->leader,
                    (unsigned long long)up->term);
        else
            SRV_LOG(&srv->logger, CN_LOG_INFO, "no leader (term %llu)",
                    (unsigned long long)up->term);
        srv->leader_id = up->leader;
        srv->rstats.leader_since_ns = server_now_ns(srv);
        /* Reads sent to the old leader: ask the new one (idempotent). */
        for (struct server_read *rd = srv->reads; rd != NULL; rd = rd->next)
            if (rd->state == READ_SENT)
                rd->state = READ_QUEUED;
        if (up->leader != 0)
            server_schedule_flush(srv);
    }
    srv->role = up->role;
    srv->raft_term = up->term;
    /* 1. snapshot */
    if (up->snapshot_install)
        install_snapshot(srv, up);
    /* 2. hard state */
    int hold = srv->hold.len > 0;
    /* The commit index alone is advisory (docs/raft.md): it is written
     * with every term or vote change and otherwise every
     * HS_COMMIT_EVERY entries, which bounds what a restarted member must
     * learn again from the leader without a record per batch. */
    if (up->hard_state_changed && !srv->wal_failed &&
        (up->hard_state_sync ||
         up->hard_state.commit >= srv->hs_commit_saved + HS_COMMIT_EVERY)) {
        struct wal_hard_state hs = {up->hard_state.term, up->hard_state.vote,
                                    up->hard_state.commit};
        srv->hs_commit_saved = up->hard_state.commit;
        int rc = wal_append_hard_state(srv->wal, &hs);
        if (rc != CN_OK) {
            server_wal_failed(srv, rc);
        } else if (up->hard_state_sync) {
            struct wal_pos pos;
            wal_appended(srv->wal, &pos);
            srv->hold_seq = pos.seq;
            hold = 1;
        }
    }
    /* 3. log */
    append_entries(srv, up);
    /* 4. messages (a dead log sends nothing it could not stand by) */
    if (!srv->wal_failed)
        for (unsigned i = 0; i < up->n_msgs; i++)
            send_raft_msg(srv, &up->msgs[i], hold);
    /* 5. apply */
    for (unsigned i = 0; i < up->n_committed; i++)
        apply_entry(srv, &up->committed[i]);
    /* 6. reads */
    for (unsigned i = 0; i < up->n_reads; i++)
        read_result(srv, &up->reads[i]);
    if (srv->reads != NULL)
        reads_complete(srv);
}

static void on_tick(uv_timer_t *t);

/* Freeing a replaced snapshot (hundreds of MB at a million keys) returns
 * its pages to the kernel: done on the thread pool, not on the loop. */
struct free_work {
    uv_work_t req;
    void *p;
    size_t len;
    void (*fr)(void *, size_t);
    void **garbage; /* or compacted entries' payloads */
    size_t n_garbage;
};

static void on_free_work(uv_work_t *req)
{
    struct free_work *f = req->data;
    /* free() and munmap are thread-safe */
    raft_bytes_free(f->p, f->len, f->fr);
    raft_garbage_free(f->garbage, f->n_garbage);
}

static void on_free_done(uv_work_t *req, int status)
{
    (void)status;
    cn_free(req->data);
}

/* Frees what up releases (snapshot bytes, compacted payloads) on the
 * thread pool, or at once when there is no running loop. */
static void free_later(struct server *srv, struct raft_update *up)
{
    if (up->released == NULL && up->garbage == NULL)
        return;
    struct free_work *f = srv->handles_started && !srv->stopping
                              ? cn_calloc(1, sizeof(*f))
                              : NULL;
    if (f == NULL)
        return; /* raft_update_done frees them */
    f->p = up->released;
    f->len = up->released_len;
    f->fr = up->released_free;
    f->garbage = up->garbage;
    f->n_garbage = up->n_garbage;
    f->req.data = f;
    if (uv_queue_work(&srv->loop, &f->req, on_free_work, on_free_done) != 0) {
        cn_free(f);
        return;
    }
    up->released = NULL;
    up->garbage = NULL;
    up->n_garbage = 0;
}

static void raft_step_event(struct server *srv, struct raft_event *ev)
{
    CN_ASSERT(!srv->in_step);
    ev->now_ms = mono_ms(srv);
    struct raft_update up;
    srv->in_step = 1;
    int rc = raft_step(srv->raft, ev, &up);
    handle_update(srv, &up);
    free_later(srv, &up);
    uint64_t next = up.next_timeout_ms;
    raft_update_done(srv->raft, &up);
    srv->in_step = 0;
    srv->last_step_rc = rc;
    if (srv->handles_started && !srv->stopping && next > 0) {
        uint64_t now = mono_ms(srv);
        uint64_t d = next > now ? next - now : 0;
        uv_timer_start(&srv->tick_timer, on_tick, d, 0);
    }
    server_wal_kick(srv);
}

static void step_simple(struct server *srv, uint8_t type)
{
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    raft_step_event(srv, &ev);
}

static void on_tick(uv_timer_t *t)
{
    struct server *srv = t->data;
    step_simple(srv, RAFT_EVENT_TICK);
}

void server_raft_persisted(struct server *srv, const struct wal_pos *pos)
{
    if (srv->hold_seq != 0 && pos->seq >= srv->hold_seq)
        hold_release(srv);
    if (srv->in_step)
        return; /* a sync inside a step (no loop): the caller steps again */
    if (srv->snap_applied_seq != 0 && pos->seq >= srv->snap_applied_seq) {
        struct raft_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = RAFT_EVENT_SNAPSHOT_APPLIED;
        ev.snapshot_applied.index = srv->snap_applied_index;
        srv->snap_applied_seq = 0;
        raft_step_event(srv, &ev);
    }
    if (pos->last_index == 0)
        return;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PERSISTED;
    ev.persisted.index = pos->last_index;
    ev.persisted.term = pos->last_term;
    raft_step_event(srv, &ev);
}

int server_raft_snapshot_taken(struct server *srv, uint64_t index,
                               struct cn_slice data)
{
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT_TAKEN;
    ev.snapshot_taken.index = index;
    ev.snapshot_taken.data = data.base;
    ev.snapshot_taken.len = data.len;
    ev.snapshot_taken.give = data.len > 0;
    raft_step_event(srv, &ev);
    /* The core took the bytes unless it refused the event. */
    return data.len > 0 && srv->last_step_rc == CN_OK ? CN_OK : CN_EINVAL;
}

/* Snapshot data for meta: its encoding, the member table and the store. */
static int encode_snapshot(struct server *srv,
                           const struct raft_snapshot_meta *meta,
                           struct cn_buf *out)
{
    struct cn_buf mb = {0}, sb = {0};
    int rc = raft_snapshot_meta_encode(meta, &mb);
    if (rc == CN_OK)
        rc = store_snapshot_save(srv->store, &sb);
    if (rc == CN_OK) {
        struct server_snap_parts parts = {{mb.data, mb.len}, {sb.data, sb.len}};
        rc = server_snap_encode(&srv->members, &parts, out);
    }
    cn_buf_close(&mb);
    cn_buf_close(&sb);
    return rc;
}

int server_raft_snapshot_data(struct server *srv, struct cn_buf *out,
                              uint64_t *term)
{
    struct raft_snapshot_meta meta;
    int rc = raft_snapshot_meta_at(srv->raft, srv->raft_index, &meta);
    if (rc != CN_OK)
        return rc;
    *term = meta.term;
    return encode_snapshot(srv, &meta, out);
}

/* ---- proposals and reads leaving this member ---- */

static void forward(struct server *srv, struct server_proposal **ps, unsigned n,
                    uint64_t to)
{
    /* u32 count, then u32 length + command bytes each */
    cn_buf_reset(&srv->prop_enc);
    uint8_t h[4];
    put32(h, n);
    int rc = cn_buf_append(&srv->prop_enc, h, 4);
    for (unsigned i = 0; i < n && rc == CN_OK; i++) {
        size_t at = srv->prop_enc.len;
        rc = cn_buf_append(&srv->prop_enc, h, 4);
        if (rc == CN_OK)
            rc = encode_proposal(srv, ps[i], &srv->prop_enc);
        if (rc == CN_OK)
            put32((uint8_t *)srv->prop_enc.data + at,
                  (uint32_t)(srv->prop_enc.len - at - 4));
    }
    if (rc != CN_OK)
        return; /* stay unsent; the next flush tries again */
    send_bytes(srv, to, SERVER_MSG_FORWARD, srv->prop_enc.data,
               srv->prop_enc.len);
    for (unsigned i = 0; i < n; i++)
        ps[i]->sent = 1;
}

static void propose_local(struct server *srv, struct server_proposal **ps,
                          unsigned n)
{
    struct cn_slice cmds[PROPOSE_BATCH_MAX];
    size_t offs[PROPOSE_BATCH_MAX + 1];
    cn_buf_reset(&srv->prop_enc);
    unsigned k = 0;
    for (unsigned i = 0; i < n; i++) {
        offs[k] = srv->prop_enc.len;
        if (encode_proposal(srv, ps[i], &srv->prop_enc) == CN_OK)
            ps[k++] = ps[i];
        else {
            fl_unlink(srv, ps[i]);
            complete(srv, ps[i], CN_ENOMEM);
        }
    }
    offs[k] = srv->prop_enc.len;
    if (k == 0)
        return;
    for (unsigned i = 0; i < k; i++) {
        cmds[i].base = srv->prop_enc.data + offs[i];
        cmds[i].len = offs[i + 1] - offs[i];
    }
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PROPOSE;
    ev.propose.cmds = cmds;
    ev.propose.n = k;
    raft_step_event(srv, &ev);
    if (srv->last_step_rc == CN_OK)
        for (unsigned i = 0; i < k; i++)
            ps[i]->sent = 1;
    /* else they stay unsent: retried when a leader is known */
}

static void send_unsent(struct server *srv)
{
    struct server_proposal *batch[PROPOSE_BATCH_MAX];
    for (;;) {
        unsigned n = 0;
        for (struct server_proposal *p = srv->fl_head;
             p != NULL && n < PROPOSE_BATCH_MAX; p = p->next)
            if (!p->sent)
                batch[n++] = p;
        if (n == 0 || srv->leader_id == 0)
            return;
        if (srv->leader_id == srv->member_id) {
            propose_local(srv, batch, n);
            if (srv->last_step_rc != CN_OK)
                return;
        } else {
            forward(srv, batch, n, srv->leader_id);
            if (!batch[0]->sent)
                return;
        }
        if (n < PROPOSE_BATCH_MAX)
            return;
    }
}

static void send_reads(struct server *srv)
{
    int queued = 0;
    for (struct server_read *rd = srv->reads; rd != NULL; rd = rd->next)
        queued |= rd->state == READ_QUEUED;
    if (!queued || srv->leader_id == 0)
        return;
    /* Every queued read joins one round (marked first: on the leader the
     * result may come within the very step below). */
    uint64_t cookie = ++srv->read_seq;
    for (struct server_read *rd = srv->reads; rd != NULL; rd = rd->next)
        if (rd->state == READ_QUEUED) {
            rd->state = READ_SENT;
            rd->cookie = cookie;
        }
    if (srv->leader_id != srv->member_id) {
        uint8_t b[8];
        put64(b, cookie);
        send_bytes(srv, srv->leader_id, SERVER_MSG_READ, b, sizeof(b));
        return;
    }
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_READ;
    ev.read.id = cookie;
    raft_step_event(srv, &ev);
    if (srv->last_step_rc != CN_OK)
        reads_result(srv, cookie, srv->last_step_rc, 0);
    reads_complete(srv);
}

void server_raft_flush(struct server *srv)
{
    if (srv->raft == NULL || srv->in_step)
        return;
    uint64_t deadline = mono_ms(srv) + srv->request_timeout_ms;
    while (srv->queue_head != NULL) {
        struct server_proposal *p = srv->queue_head;
        srv->queue_head = p->next;
        if (srv->queue_head == NULL)
            srv->queue_tail = NULL;
        if (srv->wal_failed) {
            p->next = NULL;
            complete(srv, p, CN_ESTOPPED);
            continue;
        }
        p->sent = 0;
        p->deadline_ms = deadline;
        fl_push(srv, p);
    }
    send_unsent(srv);
    send_reads(srv);
}

int server_read_index(struct server *srv, struct server_read *rd)
{
    if (srv->stopping)
        return CN_ESHUTDOWN;
    rd->rc = CN_OK;
    rd->state = READ_QUEUED;
    rd->cookie = 0;
    rd->index = 0;
    rd->deadline_ms = mono_ms(srv) + srv->request_timeout_ms;
    rd->next = srv->reads;
    srv->reads = rd;
    server_schedule_flush(srv);
    return CN_OK;
}

/* ---- messages from peers ---- */

static void on_forward(struct server *srv, uint64_t from, const uint8_t *p,
                       size_t len)
{
    if (len < 4)
        return;
    uint32_t n = get32(p);
    if (n == 0 || n > PROPOSE_BATCH_MAX)
        return;
    struct cn_slice cmds[PROPOSE_BATCH_MAX];
    size_t off = 4;
    for (uint32_t i = 0; i < n; i++) {
        if (len - off < 4)
            return;
        uint32_t l = get32(p + off);
        off += 4;
        if (len - off < l || l < 17)
            return;
        cmds[i].base = (const char *)p + off;
        cmds[i].len = l;
        off += l;
    }
    int rc = CN_ENOTLEADER;
    if (srv->role == RAFT_LEADER && !srv->wal_failed) {
        struct raft_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = RAFT_EVENT_PROPOSE;
        ev.propose.cmds = cmds;
        ev.propose.n = n;
        raft_step_event(srv, &ev);
        rc = srv->last_step_rc;
    }
    if (rc == CN_OK)
        return;
    /* Not proposed: tell the sender, which tries again elsewhere. */
    struct cn_buf *b = &srv->msg_enc;
    cn_buf_reset(b);
    uint8_t h[8];
    put32(h, (uint32_t)(int32_t)rc);
    put32(h + 4, n);
    int arc = cn_buf_append(b, h, 8);
    for (uint32_t i = 0; i < n && arc == CN_OK; i++) {
        uint8_t id[8];
        put64(id, get64((const uint8_t *)cmds[i].base + 9));
        arc = cn_buf_append(b, id, 8);
    }
    if (arc == CN_OK)
        send_bytes(srv, from, SERVER_MSG_FORWARD_NACK, b->data, b->len);
}

static void on_forward_nack(struct server *srv, const uint8_t *p, size_t len)
{
    if (len < 8)
        return;
    uint32_t n = get32(p + 4);
    if ((len - 8) / 8 < n)
        return;
    for (uint32_t i = 0; i < n; i++) {
        struct server_proposal *x = fl_find(srv, get64(p + 8 + 8 * i));
        if (x != NULL)
            x->sent = 0; /* never proposed: safe to send again */
    }
}

static void on_read_req(struct server *srv, uint64_t from, const uint8_t *p,
                        size_t len)
{
    if (len != 8)
        return;
    uint64_t their = get64(p);
    if (srv->role != RAFT_LEADER || srv->n_rreads >= REMOTE_READS_MAX) {
        send_read_resp(srv, from, their, CN_ENOTLEADER, 0);
        return;
    }
    if (srv->n_rreads == srv->cap_rreads) {
        size_t cap = srv->cap_rreads ? srv->cap_rreads * 2 : 32;
        struct server_remote_read *x =
            cn_realloc(srv->rreads, cap * sizeof(*x));
        if (x == NULL) {
            send_read_resp(srv, from, their, CN_ENOMEM, 0);
            return;
        }
        srv->rreads = x;
        srv->cap_rreads = cap;
    }
    uint64_t mine = ++srv->read_seq;
    srv->rreads[srv->n_rreads++] =
        (struct server_remote_read){from, their, mine};
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_READ;
    ev.read.id = mine;
    raft_step_event(srv, &ev);
    if (srv->last_step_rc != CN_OK) {
        for (size_t i = 0; i < srv->n_rreads; i++)
            if (srv->rreads[i].my_cookie == mine) {
                srv->rreads[i] = srv->rreads[--srv->n_rreads];
                break;
            }
        send_read_resp(srv, from, their, srv->last_step_rc, 0);
    }
}

static void on_peer_msg(void *ctx, uint64_t from, uint8_t type,
                        const void *bytes, size_t len)
{
    struct server *srv = ctx;
    if (srv->raft == NULL || srv->stopping)
        return;
    srv->recv_msgs++;
    srv->recv_bytes += len;
    const uint8_t *p = bytes;
    switch (type) {
    case SERVER_MSG_FORWARD:
        on_forward(srv, from, p, len);
        return;
    case SERVER_MSG_FORWARD_NACK:
        on_forward_nack(srv, p, len);
        server_schedule_flush(srv);
        return;
    case SERVER_MSG_READ:
        on_read_req(srv, from, p, len);
        return;
    case SERVER_MSG_READ_RESP:
        if (len == 20) {
            reads_result(srv, get64(p), (int)(int32_t)get32(p + 8),
                         get64(p + 12));
            reads_complete(srv);
        }
        return;
    }
    if (type == 0 || type > RAFT_MSG_TYPE_MAX)
        return;
    struct raft_msg m;
    if (raft_msg_decode(bytes, len, &m) != CN_OK) {
        SRV_LOG(&srv->logger, CN_LOG_WARN,
                "dropped a corrupt %s message from %llx",
                raft_msg_type_name(type), (unsigned long long)from);
        return;
    }
    if (m.from != from || m.to != srv->member_id || m.type != type) {
        raft_msg_release(&m);
        return;
    }
    if (m.type == RAFT_MSG_APPEND)
        srv->rstats.append_recv++;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_RECEIVE;
    ev.receive.msg = &m;
    raft_step_event(srv, &ev);
    raft_msg_release(&m);
}

/* ---- housekeeping: timeouts, retries, membership, attributes ---- */

static void expire_inflight(struct server *srv, uint64_t now)
{
    while (srv->fl_head != NULL && srv->fl_head->deadline_ms <= now) {
        struct server_proposal *p = srv->fl_head;
        fl_unlink(srv, p);
        complete(srv, p, CN_ETIMEDOUT);
    }
    struct server_read **pp = &srv->reads;
    while (*pp != NULL) {
        struct server_read *rd = *pp;
        if (rd->deadline_ms <= now) {
            *pp = rd->next;
            rd->rc = CN_ETIMEDOUT;
            rd->cb(rd);
            continue;
        }
        pp = &rd->next;
    }
}

/* Leader: makes the Raft configuration follow the member table, one
 * change at a time. */
static void reconcile(struct server *srv)
{
    if (srv->role != RAFT_LEADER || srv->wal_failed)
        return;
    struct raft_status st;
    raft_status(srv->raft, &st);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CONF_CHANGE;
    for (unsigned i = 0; i < st.conf.n; i++) {
        uint64_t id = st.conf.servers[i].id;
        const struct server_member *m =
            server_members_find_const(&srv->members, id);
        if (m == NULL || (m->flags & SERVER_MEMBER_LEAVING)) {
            if (id == srv->member_id && raft_conf_voters(&st.conf) > 1 &&
                st.transferee == 0) {
                /* Hand leadership over before removing ourselves. */
                for (unsigned j = 0; j < st.conf.n; j++)
                    if (st.conf.servers[j].id != id &&
                        st.conf.servers[j].role == RAFT_VOTER) {
                        struct raft_event t;
                        memset(&t, 0, sizeof(t));
                        t.type = RAFT_EVENT_TRANSFER;
                        t.transfer.to = st.conf.servers[j].id;
                        raft_step_event(srv, &t);
                        return;
                    }
            }
            ev.conf_change.op = RAFT_CONF_REMOVE;
            ev.conf_change.id = id;
            raft_step_event(srv, &ev);
            return;
        }
    }
    for (unsigned i = 0; i < srv->members.n; i++) {
        const struct server_member *m = &srv->members.m[i];
        const struct raft_server *s = raft_conf_get(&st.conf, m->id);
        if (m->flags & SERVER_MEMBER_LEAVING)
            continue;
        if (s == NULL) {
            ev.conf_change.op = RAFT_CONF_ADD_LEARNER;
        } else if (s->role == RAFT_LEARNER) {
            ev.conf_change.op = RAFT_CONF_PROMOTE;
        } else {
            continue;
        }
        ev.conf_change.id = m->id;
        raft_step_event(srv, &ev);
        return;
    }
}

static void on_attr_done(struct server_proposal *p)
{
    struct server *srv = p->arg;
    store_result_close(&p->res);
    srv->attr_state = p->rc == CN_OK ? 2 : 0;
    if (p->rc == CN_OK)
        server_serve_clients(srv);
}

static void publish_attributes(struct server *srv)
{
    if (srv->attr_state != 0 || srv->leader_id == 0 || srv->stopping ||
        srv->wal_failed)
        return;
    const struct server_member *m =
        server_members_find_const(&srv->members, srv->member_id);
    if (m == NULL)
        return;
    static const char *urls[SERVER_MEMBER_URLS_MAX];
    unsigned n = url_ptrs(&srv->cfg.advertise_client_urls, urls);
    /* Once per start, as etcd publishes: the others may not know them. */
    struct server_proposal *p = &srv->attr_prop;
    memset(p, 0, sizeof(*p));
    p->op = SERVER_OP_ATTR;
    p->member_id = srv->member_id;
    p->urls = urls;
    p->n_urls = n;
    p->ttl_s = -1;
    p->cb = on_attr_done;
    p->arg = srv;
    if (server_propose(srv, p) == CN_OK)
        srv->attr_state = 1;
}

static void update_rates(struct server *srv, uint64_t now)
{
    uint64_t dt = now - srv->rate_last_ms;
    if (dt < 1000)
        return;
    double s = (double)dt / 1000.0;
    srv->rstats.send_pkg_rate =
        (double)(srv->sent_msgs - srv->rate_sent_msgs) / s;
    srv->rstats.send_bytes_rate =
        (double)(srv->sent_bytes - srv->rate_sent_bytes) / s;
    srv->rstats.recv_pkg_rate =
        (double)(srv->recv_msgs - srv->rate_recv_msgs) / s;
    srv->rstats.recv_bytes_rate =
        (double)(srv->recv_bytes - srv->rate_recv_bytes) / s;
    srv->rate_sent_msgs = srv->sent_msgs;
    srv->rate_sent_bytes = srv->sent_bytes;
    srv->rate_recv_msgs = srv->recv_msgs;
    srv->rate_recv_bytes = srv->recv_bytes;
    srv->rate_last_ms = now;
}

/* Follower: the leader's peer port refuses connections, so its process
 * is gone (kill -9, crash). Rather than wait out the election timeout, the
 * remaining voters campaign at once, without pre-vote and through the
 * leader lease (as a leadership transfer does): the lowest ID first, the
 * next one LEADER_GONE_STEP_MS later if it did not win, and so on. */
#define LEADER_GONE_STEP_MS 150u

static void leader_gone_check(struct server *srv, uint64_t now)
{
    struct server_peer_stats ps;
    if (srv->role == RAFT_LEADER || srv->leader_id == 0 || srv->peers == NULL ||
        srv->wal_failed ||
        server_peers_stats(srv->peers, srv->leader_id, &ps) != CN_OK || ps.up ||
        ps.refused_since_up == 0) {
        srv->gone_since_ms = 0;
        return;
    }
    /* Every one of its URLs refused (the dialer tries them in turn): a
     * dead URL among live ones proves nothing. */
    const struct server_member *lm =
        server_members_find_const(&srv->members, srv->leader_id);
    if (lm == NULL || ps.refused_since_up < lm->n_peer) {
        srv->gone_since_ms = 0;
        return;
    }
    if (srv->gone_since_ms == 0 || srv->gone_leader != srv->leader_id ||
        srv->gone_term != srv->raft_term) {
        srv->gone_leader = srv->leader_id;
        srv->gone_term = srv->raft_term;
        srv->gone_since_ms = now;
        srv->gone_tried = 0;
    }
    if (srv->gone_tried)
        return;
    struct raft_status st;
    raft_status(srv->raft, &st);
    const struct raft_server *self = raft_conf_get(&st.conf, srv->member_id);
    if (self == NULL || self->role != RAFT_VOTER)
        return;
    unsigned rank = 0;
    for (unsigned i = 0; i < st.conf.n; i++) {
        const struct raft_server *x = &st.conf.servers[i];
        if (x->role == RAFT_VOTER && x->id != srv->leader_id &&
            x->id < srv->member_id)
            rank++;
    }
    if (now < srv->gone_since_ms + (uint64_t)rank * LEADER_GONE_STEP_MS)
        return;
    srv->gone_tried = 1;
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "leader %llx is down (its peer port refuses connections); "
            "campaigning now",
            (unsigned long long)srv->leader_id);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CAMPAIGN;
    ev.campaign.force = 1;
    raft_step_event(srv, &ev);
}

static void on_house(uv_timer_t *t)
{
    struct server *srv = t->data;
    uint64_t now = mono_ms(srv);
    expire_inflight(srv, now);
    update_rates(srv, now);
    if (srv->removed_self) {
        SRV_LOG(&srv->logger, CN_LOG_ERROR,
                "the member has been permanently removed from the cluster; "
                "stopping");
        mark_removed_on_disk(srv);
        server_stop(srv);
        return;
    }
    if (srv->stop_transfer && srv->role != RAFT_LEADER) {
        server_stop(srv);
        return;
    }
    leader_gone_check(srv, now);
    publish_attributes(srv);
    reconcile(srv);
    int unsent = 0;
    for (struct server_proposal *p = srv->fl_head; p != NULL && !unsent;
         p = p->next)
        unsent = !p->sent;
    for (struct server_read *rd = srv->reads; rd != NULL && !unsent;
         rd = rd->next)
        unsent = rd->state == READ_QUEUED;
    if (unsent)
        server_schedule_flush(srv);
}

static int on_members_asked(void *ctx, struct cn_buf *out)
{
    struct server *srv = ctx;
    struct server_snap_parts parts = {{NULL, 0}, {NULL, 0}};
    return server_snap_encode(&srv->members, &parts, out);
}

static void on_removed(void *ctx, uint64_t by)
{
    struct server *srv = ctx;
    SRV_LOG(&srv->logger, CN_LOG_ERROR,
            "member %llx says this member was removed from the cluster",
            (unsigned long long)by);
    srv->removed_self = 1;
}

/* ---- graceful stop ---- */

static void on_stop_timer(uv_timer_t *t)
{
    server_stop(t->data);
}

int server_raft_transfer_before_stop(struct server *srv)
{
    if (srv->raft == NULL || srv->role != RAFT_LEADER || srv->stop_transfer ||
        !srv->handles_started)
        return 0;
    struct raft_status st;
    raft_status(srv->raft, &st);
    uint64_t best = 0, best_match = 0;
    for (unsigned i = 0; i < st.conf.n; i++) {
        const struct raft_server *s = &st.conf.servers[i];
        if (s->id == srv->member_id || s->role != RAFT_VOTER)
            continue;
        struct server_peer_stats ps;
        if (srv->peers != NULL &&
            server_peers_stats(srv->peers, s->id, &ps) == CN_OK && ps.up &&
            (best == 0 || ps.msgs_recv > best_match)) {
            best = s->id;
            best_match = ps.msgs_recv;
        }
    }
    if (best == 0)
        return 0;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TRANSFER;
    ev.transfer.to = best;
    raft_step_event(srv, &ev);
    if (srv->last_step_rc != CN_OK)
        return 0;
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "stopping: handing leadership to %llx first",
            (unsigned long long)best);
    srv->stop_transfer = 1;
    uv_timer_start(&srv->stop_timer, on_stop_timer,
                   srv->cfg.election_timeout_ms, 0);
    return 1;
}

/* ---- boot ---- */

static int path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

/* <data-dir>/member/identity: this member's ID and its cluster's. */
static void identity_path(const struct server *srv, char path[1200])
{
    snprintf(path, 1200, "%s/member/identity", srv->cfg.data_dir);
}

static int write_identity(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    char path[1200], tmp[1210];
    identity_path(srv, path);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    char body[80];
    int n = snprintf(body, sizeof(body), "member %016llx\ncluster %016llx\n",
                     (unsigned long long)srv->member_id,
                     (unsigned long long)srv->members.cluster_id);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, body, (size_t)n) != n || fsync(fd) != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "cannot write %.150s: %s", tmp,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return CN_EIO;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "cannot rename %.150s: %s", tmp,
                 strerror(errno));
        return CN_EIO;
    }
    char dir[1200];
    snprintf(dir, sizeof(dir), "%s/member", srv->cfg.data_dir);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return CN_OK;
}

/* CN_ENOTFOUND (with errmsg) when the file does not exist. */
static int read_identity(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    char path[1200];
    identity_path(srv, path);
    FILE *f = fopen(path, "r");
    int missing = f == NULL && errno == ENOENT;
    unsigned long long m = 0, c = 0;
    int ok = f != NULL && fscanf(f, "member %llx cluster %llx", &m, &c) == 2;
    if (f != NULL)
        fclose(f);
    if (!ok || m == 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "%.100s is missing or damaged; restore this member from "
                 "a backup",
                 path);
        return missing ? CN_ENOTFOUND : CN_ECORRUPT;
    }
    srv->member_id = m;
    srv->cluster_id = c;
    return CN_OK;
}

/* The first snapshot of a new data dir (a new cluster, or a backup made
 * into one): encoded from meta, the member table and the store into snap,
 * then, with this member's identity, made durable with its marker and a
 * hard state committing it. errmsg starts with what. */
static int start_snapshot(struct server *srv,
                          const struct raft_snapshot_meta *meta,
                          struct cn_buf *snap, const char *what,
                          char errmsg[CN_ERRMSG_SIZE])
{
    int rc = encode_snapshot(srv, meta, snap);
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "%s: %s", what, cn_strerror(rc));
        return rc;
    }
    rc = write_identity(srv, errmsg);
    if (rc != CN_OK)
        return rc;
    uint64_t seq = 0;
    struct cn_slice data = {snap->data, snap->len};
    rc = server_wal_install(srv, meta->index, meta->term, data, &seq);
    struct wal_hard_state hs = {meta->term, 0, meta->index};
    if (rc == CN_OK)
        rc = wal_append_hard_state(srv->wal, &hs);
    if (rc == CN_OK)
        rc = wal_sync(srv->wal, NULL);
    if (rc != CN_OK)
        snprintf(errmsg, CN_ERRMSG_SIZE, "%s: %.150s", what,
                 wal_errmsg(srv->wal)[0] ? wal_errmsg(srv->wal)
                                         : cn_strerror(rc));
    return rc;
}

/* Discovery: the initial cluster comes from the discovery service. */
static int boot_discover(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    struct cn_config *cfg = &srv->cfg;
    uint64_t id = 0;
    int rc = server_member_id_of_urls(&cfg->initial_advertise_peer_urls,
                                      cfg->discovery, &id);
    if (rc != CN_OK)
        return rc;
    struct server_discovery_config dc = {
        .url = cfg->discovery,
        .proxy = cfg->discovery_proxy,
        .name = cfg->name,
        .peer_urls = &cfg->initial_advertise_peer_urls,
        .member_id = id,
        .logger = srv->logger,
    };
    static struct server_discovery_result res;
    char why[CN_ERRMSG_SIZE] = "";
    rc = server_discovery_join(&dc, &res, why);
    if (rc == CN_EBUSY) {
        if (strcmp(cfg->discovery_fallback, "exit") != 0)
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "%.150s (proxy mode is not supported by cairn; use "
                     "--discovery-fallback=exit)",
                     why);
        else
            snprintf(errmsg, CN_ERRMSG_SIZE, "%s", why);
        return rc;
    }
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "%s", why);
        return rc;
    }
    memcpy(cfg->initial_cluster, res.members,
           sizeof(res.members[0]) * (size_t)res.count);
    cfg->initial_cluster_count = res.count;
    /* etcd uses the whole discovery URL as the cluster token. */
    size_t dl = strlen(cfg->discovery);
    if (dl >= sizeof(cfg->initial_cluster_token)) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "--discovery: URL too long");
        return CN_EINVAL;
    }
    memcpy(cfg->initial_cluster_token, cfg->discovery, dl + 1);
    return CN_OK;
}

/* A new cluster: every initial member writes the same bootstrap snapshot
 * at index 1 (term 1): the member table and an empty store, the initial
 * voters as the configuration. */
static int boot_new(struct server *srv, struct cn_buf *snap,
                    struct raft_snapshot_meta *meta,
                    char errmsg[CN_ERRMSG_SIZE])
{
    struct cn_config *cfg = &srv->cfg;
    int rc;
    if (cfg->discovery[0] != '\0') {
        rc = boot_discover(srv, errmsg);
        if (rc != CN_OK)
            return rc;
    }
    rc = config_verify_bootstrap(cfg, errmsg);
    if (rc != CN_OK)
        return rc;
    uint64_t ids[SERVER_MEMBERS_MAX];
    size_t n = 0;
    uint64_t cluster_id = 0;
    rc = server_initial_cluster_ids(
        cfg->initial_cluster, cfg->initial_cluster_count,
        cfg->initial_cluster_token, ids, SERVER_MEMBERS_MAX, &n, &cluster_id);
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 rc == CN_EINVAL ? "--initial-cluster: more than %d members, "
                                   "or two members with the same ID"
                                 : "out of memory",
                 SERVER_MEMBERS_MAX);
        return rc;
    }
    rc = server_member_id_of_urls(&cfg->initial_advertise_peer_urls,
                                  cfg->initial_cluster_token, &srv->member_id);
    if (rc != CN_OK)
        return rc;
    memset(&srv->members, 0, sizeof(srv->members));
    srv->members.cluster_id = cluster_id;
    srv->cluster_id = cluster_id;
    memset(meta, 0, sizeof(*meta));
    meta->index = 1;
    meta->term = 1;
    size_t k = 0;
    for (int i = 0; i < cfg->initial_cluster_count; i++) {
        const char *name = cfg->initial_cluster[i].name;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(cfg->initial_cluster[j].name, name) == 0;
        if (seen)
            continue;
        const char *urls[SERVER_MEMBER_URLS_MAX];
        unsigned nu = 0;
        for (int j = i; j < cfg->initial_cluster_count; j++)
            if (strcmp(cfg->initial_cluster[j].name, name) == 0 &&
                nu < SERVER_MEMBER_URLS_MAX)
                urls[nu++] = cfg->initial_cluster[j].url.raw;
        rc = server_members_add(&srv->members, ids[k], name, urls, nu);
        if (rc != CN_OK) {
            snprintf(errmsg, CN_ERRMSG_SIZE, "--initial-cluster: member %s: %s",
                     name, cn_strerror(rc));
            return rc;
        }
        srv->members.m[k].flags = SERVER_MEMBER_IN_CONF;
        if (ids[k] == srv->member_id) {
            /* Our own client URLs are known now; the others' come with
             * their attributes, once each has published them. */
            const char *cu[SERVER_MEMBER_URLS_MAX];
            unsigned nc = url_ptrs(&cfg->advertise_client_urls, cu);
            server_members_set_urls(&srv->members.m[k], 1, cu, nc);
        }
        raft_conf_add(&meta->conf, ids[k], RAFT_VOTER);
        k++;
    }
    rc = start_snapshot(srv, meta, snap, "cannot write the bootstrap snapshot",
                        errmsg);
    if (rc != CN_OK)
        return rc;
    char hex[SERVER_ID_HEX_SIZE];
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "bootstrapped member %s of a new cluster of %zu (cluster %llx)",
            server_id_format(srv->member_id, hex), k,
            (unsigned long long)cluster_id);
    return CN_OK;
}

/* An empty member of an existing cluster (added with POST /v2/members):
 * learns its ID, the cluster ID and the members from a peer (etcd asks
 * the peers' /members the same way). Its log and store then come from the
 * leader, which adds it as a learner. */
static int boot_join(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    struct cn_config *cfg = &srv->cfg;
    struct cn_buf b = {0};
    char why[CN_ERRMSG_SIZE] = "no other member in --initial-cluster";
    int rc = CN_ENOTFOUND;
    for (int i = 0; i < cfg->initial_cluster_count && rc != CN_OK; i++) {
        const char *url = cfg->initial_cluster[i].url.raw;
        int mine = 0;
        for (int j = 0; j < cfg->initial_advertise_peer_urls.count; j++)
            mine |=
                strcmp(cfg->initial_advertise_peer_urls.urls[j].raw, url) == 0;
        if (mine)
            continue;
        cn_buf_reset(&b);
        rc = server_peers_fetch_members(url, 3000, &b, why);
        if (rc != CN_OK)
            SRV_LOG(&srv->logger, CN_LOG_WARN,
                    "cannot get the member list from %s: %s", url, why);
    }
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "could not get the member list from any member of the "
                 "cluster to join (%.120s)",
                 why);
        cn_buf_close(&b);
        return rc;
    }
    struct server_snap_parts parts;
    rc = server_snap_decode(b.data, b.len, &srv->members, &parts);
    cn_buf_close(&b);
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "the member list is unreadable: %s",
                 cn_strerror(rc));
        return rc;
    }
    const struct server_member *self = NULL;
    for (int j = 0; j < cfg->initial_advertise_peer_urls.count && !self; j++)
        self = server_members_by_peer_url(
            &srv->members, cfg->initial_advertise_peer_urls.urls[j].raw);
    if (self == NULL) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "this member (%.80s) is not in the cluster's member list; "
                 "add it first (POST /v2/members, or etcdctl member add)",
                 cfg->initial_advertise_peer_urls.urls[0].raw);
        return CN_ENOTFOUND;
    }
    srv->member_id = self->id;
    srv->cluster_id = srv->members.cluster_id;
    rc = write_identity(srv, errmsg);
    if (rc != CN_OK)
        return rc;
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "joining cluster %llx as member %llx; waiting for the leader",
            (unsigned long long)srv->cluster_id,
            (unsigned long long)srv->member_id);
    return CN_OK;
}

/* A data dir made by a backup (wal_backup: no identity, no IDs in the
 * log): a new single-member cluster with the backup's data, as etcd's
 * --force-new-cluster after etcdctl backup. The snapshot and every entry
 * of the log are applied to the store, then a snapshot of that state at
 * the last index, naming only this member, starts the new cluster. */
static int boot_from_backup(struct server *srv, struct wal_recovery *rec,
                            struct cn_buf *snap,
                            struct raft_snapshot_meta *meta,
                            char errmsg[CN_ERRMSG_SIZE])
{
    struct cn_config *cfg = &srv->cfg;
    struct server_members old;
    struct server_snap_parts parts;
    int rc = server_snap_decode(rec->snap_data.data, rec->snap_data.len, &old,
                                &parts);
    if (rc == CN_OK)
        rc = store_snapshot_load(srv->store, parts.store.base, parts.store.len);
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "the backup's snapshot at index %llu cannot be loaded: %s",
                 (unsigned long long)rec->snap_index, cn_strerror(rc));
        return rc;
    }
    uint64_t last = rec->snap_index, term = rec->snap_term;
    for (size_t i = 0; i < rec->entry_count; i++) {
        const struct wal_entry *w = &rec->entries[i];
        last = w->index;
        term = w->term;
        struct server_cmd c;
        if (w->len < 1 || w->data[0] != RAFT_ENTRY_COMMAND ||
            server_cmd_decode(w->data + 1, w->len - 1, &c) != CN_OK ||
            c.kind != SERVER_CMD_STORE)
            continue;
        struct store_cmd cmd;
        struct store_result res;
        memset(&res, 0, sizeof(res));
        if (store_cmd_decode(c.body.base, c.body.len, &cmd) == CN_OK)
            store_apply(srv->store, &cmd, &res);
        store_result_close(&res);
    }
    uint64_t self = 0, cluster = 0;
    rc = server_member_id_of_urls(&cfg->initial_advertise_peer_urls,
                                  cfg->initial_cluster_token, &self);
    if (rc == CN_OK)
        rc = server_cluster_id_compute(&self, 1, &cluster);
    if (rc != CN_OK)
        return rc;
    srv->member_id = self;
    srv->cluster_id = cluster;
    memset(&srv->members, 0, sizeof(srv->members));
    srv->members.cluster_id = cluster;
    const char *pu[SERVER_MEMBER_URLS_MAX], *cu[SERVER_MEMBER_URLS_MAX];
    unsigned np = url_ptrs(&cfg->initial_advertise_peer_urls, pu);
    unsigned nc = url_ptrs(&cfg->advertise_client_urls, cu);
    rc = server_members_add(&srv->members, self, cfg->name, pu, np);
    if (rc != CN_OK)
        return rc;
    server_members_set_urls(&srv->members.m[0], 1, cu, nc);
    srv->members.m[0].flags = SERVER_MEMBER_IN_CONF;
    memset(meta, 0, sizeof(*meta));
    meta->index = last;
    meta->term = term;
    raft_conf_add(&meta->conf, self, RAFT_VOTER);
    rc =
        start_snapshot(srv, meta, snap, "cannot start from the backup", errmsg);
    if (rc != CN_OK)
        return rc;
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "started a new single-member cluster %llx from a backup "
            "(snapshot %llu, %zu log entries, last index %llu)",
            (unsigned long long)cluster, (unsigned long long)rec->snap_index,
            rec->entry_count, (unsigned long long)last);
    return CN_OK;
}

int server_raft_boot(struct server *srv, struct wal_recovery *rec,
                     char errmsg[CN_ERRMSG_SIZE])
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/member/removed", srv->cfg.data_dir);
    if (path_exists(path)) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "the member has been permanently removed from the cluster "
                 "(%.150s); remove its data dir to add it again",
                 path);
        return CN_ESTOPPED;
    }
    struct raft_hard_state hs = {0, 0, 0};
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    struct cn_buf boot = {0};
    struct cn_slice snap = {NULL, 0};
    int64_t t_load = 0, t_restore = 0;
    int rc;
    if (rec->snap_index == 0 && rec->entry_count == 0) {
        rc = srv->cfg.initial_cluster_state_existing
                 ? boot_join(srv, errmsg)
                 : boot_new(srv, &boot, &meta, errmsg);
        if (rc != CN_OK)
            goto out;
        snap.base = boot.data;
        snap.len = boot.len;
        hs.term = meta.term;
        hs.commit = meta.index;
        srv->snap_index = meta.index;
    } else {
        if (rec->snap_index == 0) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "the log of %.150s has entries but no snapshot: it was "
                     "written by another version, or damaged",
                     srv->cfg.data_dir);
            rc = CN_ECORRUPT;
            goto out;
        }
        rc = read_identity(srv, errmsg);
        if (rc == CN_ENOTFOUND && rec->member_id == 0 && rec->cluster_id == 0) {
            rc = boot_from_backup(srv, rec, &boot, &meta, errmsg);
            if (rc != CN_OK)
                goto out;
            snap.base = boot.data;
            snap.len = boot.len;
            hs.term = meta.term;
            hs.commit = meta.index;
            srv->snap_index = meta.index;
            rec->entry_count = 0; /* all of them are in the snapshot now */
            goto restore;
        }
        if (rc != CN_OK)
            goto out;
        struct server_snap_parts parts;
        t_load = server_mono_ns(srv);
        rc = server_snap_decode(rec->snap_data.data, rec->snap_data.len,
                                &srv->members, &parts);
        if (rc == CN_OK)
            rc = raft_snapshot_meta_decode(parts.meta.base, parts.meta.len,
                                           &meta);
        if (rc == CN_OK) {
            /* The store's nodes take about 1.5 times the snapshot's bytes
             * (256-byte values; more for small ones, less for large), and
             * the entries replayed after it (server_raft_start) about 1.5
             * times theirs. The heap stays grown until server_new ends the
             * prefault, after the replay. */
            size_t tail = 0;
            for (size_t i = 0; i < rec->entry_count; i++)
                tail += rec->entries[i].len;
            cn_mem_prefault_begin(parts.store.len + parts.store.len / 2 + tail +
                                  tail / 2);
            rc = store_snapshot_load(srv->store, parts.store.base,
                                     parts.store.len);
        }
        if (rc != CN_OK) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "snapshot at index %llu cannot be loaded (%s); restore "
                     "this member from a backup, or remove its data dir and "
                     "add it to the cluster again",
                     (unsigned long long)rec->snap_index, cn_strerror(rc));
            goto out;
        }
        t_load = server_mono_ns(srv) - t_load;
        srv->members.cluster_id = srv->cluster_id;
        snap.base = rec->snap_data.data;
        snap.len = rec->snap_data.len;
        if (rec->hard_state_set) {
            hs.term = rec->hard_state.term;
            hs.vote = rec->hard_state.vote;
            hs.commit = rec->hard_state.commit;
        }
        if (hs.term < meta.term)
            hs.term = meta.term;
        srv->snap_index = rec->snap_index;
    }
restore:
    srv->raft_index = meta.index;
    srv->raft_term = hs.term;
    srv->last_index = meta.index;
    srv->hs_commit_saved = hs.commit;

    struct raft_options o;
    raft_options_default(&o);
    o.id = srv->member_id;
    o.seed = srv->member_id ^ (uint64_t)server_mono_ns(srv) ^
             ((uint64_t)getpid() << 32);
    o.election_timeout_ms = srv->cfg.election_timeout_ms;
    o.heartbeat_ms = srv->cfg.heartbeat_interval_ms;
    o.logger = srv->logger;
    rc = raft_new(&o, &srv->raft);
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "raft: %s", cn_strerror(rc));
        goto out;
    }
    struct raft_entry *ents = NULL;
    int take = snap.len > 0 && snap.base == rec->snap_data.data;
    if (rec->entry_count > 0) {
        ents = cn_calloc(rec->entry_count, sizeof(*ents));
        if (ents == NULL) {
            rc = CN_ENOMEM;
            snprintf(errmsg, CN_ERRMSG_SIZE, "out of memory");
            goto out;
        }
    }
    for (size_t i = 0; i < rec->entry_count; i++) {
        const struct wal_entry *w = &rec->entries[i];
        if (w->len < 1 || w->data[0] < RAFT_ENTRY_COMMAND ||
            w->data[0] > RAFT_ENTRY_CONFIG) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "log entry %llu has no valid entry type; restore this "
                     "member from a backup",
                     (unsigned long long)w->index);
            cn_free(ents);
            rc = CN_ECORRUPT;
            goto out;
        }
        ents[i].index = w->index;
        ents[i].term = w->term;
        ents[i].type = (uint8_t)w->data[0];
        ents[i].data = w->data + 1;
        ents[i].data_len = w->len - 1;
        if (take) {
            /* The payload moves to the front of its block, so that Raft
             * takes the block (raft_restore_take) instead of a copy. */
            memmove(w->data, w->data + 1, w->len - 1);
            ents[i].data = w->data;
        }
        srv->last_index = w->index;
    }
    t_restore = server_mono_ns(srv);
    if (take) {
        /* The recovered snapshot (mapped from its file) and the entries
         * are given, not copied: at a million keys the copies were more
         * than a second of restart. */
        rc = raft_restore_take(srv->raft, &hs, &meta, rec->snap_data.data,
                               rec->snap_data.len, rec->snap_data.release, ents,
                               (unsigned)rec->entry_count);
        if (rc == CN_OK) {
            memset(&rec->snap_data, 0, sizeof(rec->snap_data));
            for (size_t i = 0; i < rec->entry_count; i++)
                rec->entries[i].data = NULL; /* Raft's now */
        }
    } else {
        rc = raft_restore(srv->raft, &hs, &meta, snap.base, snap.len, ents,
                          (unsigned)rec->entry_count);
    }
    t_restore = server_mono_ns(srv) - t_restore;
    cn_free(ents);
    if (rc != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "the log cannot be restored into Raft (%s); restore this "
                 "member from a backup",
                 cn_strerror(rc));
        goto out;
    }
    srv->request_timeout_ms = 5000u + 2u * srv->cfg.election_timeout_ms;
    srv->req_seq = (uint64_t)server_now_ns(srv);
    SRV_LOG(&srv->logger, CN_LOG_INFO,
            "%s data dir %s: member %llx, snapshot_index=%llu log entries=%zu "
            "commit=%llu (read %.0f ms, snapshot load %.0f ms, restore %.0f "
            "ms)",
            rec->created ? "created" : "recovered", srv->cfg.data_dir,
            (unsigned long long)srv->member_id, (unsigned long long)meta.index,
            rec->entry_count, (unsigned long long)hs.commit,
            (double)srv->boot_read_ns / 1e6, (double)t_load / 1e6,
            (double)t_restore / 1e6);
out:
    cn_buf_close(&boot);
    if (rc != CN_OK && srv->raft != NULL) {
        raft_free(srv->raft);
        srv->raft = NULL;
    }
    return rc;
}

void server_raft_start(struct server *srv)
{
    struct raft_status st;
    raft_status(srv->raft, &st);
    const struct raft_server *self = raft_conf_get(&st.conf, srv->member_id);
    if (self != NULL && self->role == RAFT_VOTER &&
        raft_conf_voters(&st.conf) == 1) {
        step_simple(srv, RAFT_EVENT_CAMPAIGN); /* alone: lead at once */
        return;
    }
    step_simple(srv, RAFT_EVENT_TICK); /* applies the committed log */
}

int server_raft_run(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    struct server_peers_config pc = {
        .self_id = srv->member_id,
        .cluster_id = srv->cluster_id,
        .listen_urls = &srv->cfg.listen_peer_urls,
        .logger = srv->logger,
        .recv = on_peer_msg,
        .recv_ctx = srv,
        .seed = srv->req_seq ^ srv->member_id,
        .snap_type = RAFT_MSG_SNAPSHOT,
        /* A write forwarded while the leader's link is down waits at most
         * half a request timeout in the queue, then is dropped (its client
         * gets the timeout): it would otherwise commit whenever the link
         * came back, possibly after its client was told it timed out and
         * after a newer write to the same key. etcd drops such messages
         * at once. */
        .expire_type = SERVER_MSG_FORWARD,
        .expire_ms = (uint32_t)(srv->request_timeout_ms / 2),
        .members = on_members_asked,
        .members_ctx = srv,
        .removed = on_removed,
        .removed_ctx = srv,
    };
    int rc = server_peers_new(&srv->peers, &srv->loop, &pc, errmsg);
    if (rc != CN_OK)
        return rc;
    for (unsigned i = 0; i < srv->members.n; i++)
        peers_set(srv, &srv->members.m[i]);
    for (unsigned i = 0; i < srv->members.n_removed; i++)
        server_peers_mark_removed(srv->peers, srv->members.removed[i]);
    srv->rate_last_ms = mono_ms(srv);
    uv_timer_start(&srv->house_timer, on_house, HOUSE_INTERVAL_MS,
                   HOUSE_INTERVAL_MS);
    step_simple(srv, RAFT_EVENT_TICK); /* arms the tick timer */
    publish_attributes(srv);
    return CN_OK;
}

static void on_peers_closed(void *arg)
{
    (void)arg;
}

void server_raft_stop(struct server *srv)
{
    if (!srv->handles_started)
        return;
    uv_timer_stop(&srv->tick_timer);
    uv_timer_stop(&srv->house_timer);
    uv_timer_stop(&srv->stop_timer);
    if (srv->peers != NULL) {
        server_peers_close(srv->peers, on_peers_closed, srv);
        srv->peers = NULL;
    }
}

void server_raft_free(struct server *srv)
{
    if (srv->raft != NULL)
        raft_free(srv->raft);
    srv->raft = NULL;
    cn_free(srv->rreads);
    cn_buf_close(&srv->prop_enc);
    cn_buf_close(&srv->msg_enc);
    cn_buf_close(&srv->hold);
}

/* ---- accessors ---- */

uint64_t server_leader_id(const struct server *srv)
{
    return srv->leader_id;
}

int server_is_leader(const struct server *srv)
{
    return srv->role == RAFT_LEADER;
}

const struct server_members *server_members_table(const struct server *srv)
{
    return &srv->members;
}

void server_raft_stats_get(const struct server *srv,
                           struct server_raft_stats *st)
{
    *st = srv->rstats;
}

int server_peer_stats_get(const struct server *srv, uint64_t id,
                          struct server_peer_stats *st)
{
    if (srv->peers == NULL)
        return CN_ENOTFOUND;
    return server_peers_stats(srv->peers, id, st);
}
