/*
 * raft: creation, restore, the event dispatcher raft_step() and the update
 * it hands out.
 *
 * Each raft_step() starts with an empty update, runs one event through the
 * role handlers (raft_election.c, raft_replication.c, raft_read.c), then
 * finalize() turns the core's bookkeeping into the update: hard state if it
 * changed, entries from unstable_from, committed entries after applied,
 * queued messages (APPEND entries resolved to log pointers only now, because
 * the log array may move while the step runs), read results and the next
 * timeout. raft_update_done() moves the marks (applied, unstable_from) and
 * empties the queues.
 */
#include "raft_int.h"

#include <string.h>

void raft_options_default(struct raft_options *o)
{
    memset(o, 0, sizeof(*o));
    o->election_timeout_ms = 1000;
    o->heartbeat_ms = 100;
    o->pre_vote = 1;
    o->check_quorum = 1;
    o->max_inflight = 64;
    o->max_entries_per_msg = 64;
    o->max_bytes_per_msg = 1024 * 1024;
    o->snapshot_chunk_bytes = 64 * 1024;
    o->snapshot_trailing = 128;
}

int raft_new(const struct raft_options *o, struct raft **out)
{
    if (o->id == 0 || o->election_timeout_ms == 0 || o->heartbeat_ms == 0 ||
        o->heartbeat_ms >= o->election_timeout_ms || o->max_inflight == 0 ||
        o->max_inflight > RAFT_INFLIGHT_MAX || o->max_entries_per_msg == 0 ||
        o->max_entries_per_msg > CN_RAFT_ENTRIES_PER_MSG_MAX ||
        o->snapshot_chunk_bytes == 0 ||
        o->snapshot_chunk_bytes > CN_RAFT_MSG_BYTES_MAX / 2)
        return CN_EINVAL;
    struct raft *r = cn_calloc(1, sizeof(*r));
    if (r == NULL)
        goto err;
    r->prs = cn_calloc(RAFT_SERVERS_MAX, sizeof(*r->prs));
    if (r->prs == NULL)
        goto err_after_alloc;
    r->prs_tmp = cn_calloc(RAFT_SERVERS_MAX, sizeof(*r->prs_tmp));
    if (r->prs_tmp == NULL)
        goto err_after_prs;
    r->o = *o;
    cn_prng_seed(&r->prng, o->seed);
    r->role = RAFT_FOLLOWER;
    r->unstable_from = 1;
    cn_buf_init(&r->recv_buf);
    raft_reset_election_timer(r);
    *out = r;
    return 0;

err_after_prs:
    cn_free(r->prs);
err_after_alloc:
    cn_free(r);
err:
    return CN_ENOMEM;
}

void raft_free(struct raft *r)
{
    if (r == NULL)
        return;
    raft_log_free(r);
    raft_bytes_free(r->snap_data, r->snap_len, r->snap_free);
    raft_bytes_free(r->released, r->released_len, r->released_free);
    raft_garbage_free(r->garbage, r->n_garbage);
    cn_buf_close(&r->recv_buf);
    cn_free(r->prs);
    cn_free(r->prs_tmp);
    cn_free(r->reads);
    cn_free(r->q);
    cn_free(r->q_first);
    cn_free(r->ready);
    cn_free(r);
}

static int restore_check(const struct raft_snapshot_meta *meta,
                         const struct raft_entry *entries, unsigned n)
{
    raft_term prev = meta->term;
    for (unsigned i = 0; i < n; i++) {
        if (entries[i].index != meta->index + 1 + i || entries[i].term < prev ||
            entries[i].term == 0 || entries[i].type < RAFT_ENTRY_COMMAND ||
            entries[i].type > RAFT_ENTRY_CONFIG)
            return CN_EINVAL;
        prev = entries[i].term;
    }
    return 0;
}

/* raft_restore and raft_restore_take: the bytes are installed last, once
 * nothing can fail, so that on an error the caller still owns them. */
static int restore(struct raft *r, const struct raft_hard_state *hs,
                   const struct raft_snapshot_meta *meta, void *snap_data,
                   size_t snap_len, void (*fr)(void *, size_t),
                   const struct raft_entry *entries, unsigned n_entries,
                   int take)
{
    raft_term last_term = n_entries ? entries[n_entries - 1].term : meta->term;
    if (restore_check(meta, entries, n_entries) != 0 ||
        hs->term < raft_log_last_term(r) || last_term > hs->term)
        return CN_EINVAL;
    r->snap = *meta;
    raft_log_reset(r, meta->index, meta->term);
    if ((take ? raft_log_append_take(r, entries, n_entries)
              : raft_log_append(r, entries, n_entries)) != 0)
        return CN_ENOMEM;
    raft_conf_refresh(r);
    raft_index last = raft_log_last(r);
    r->term = hs->term;
    r->vote = hs->vote;
    r->commit = hs->commit < last ? hs->commit : last;
    if (r->commit < meta->index)
        r->commit = meta->index;
    r->applied = meta->index;
    r->emitted_commit = meta->index;
    r->persisted = last;
    r->unstable_from = last + 1;
    r->saved_hs.term = r->term;
    r->saved_hs.vote = r->vote;
    r->saved_hs.commit = r->commit;
    if (snap_len > 0) {
        raft_bytes_free(r->snap_data, r->snap_len, r->snap_free);
        r->snap_data = snap_data;
        r->snap_len = snap_len;
        r->snap_free = fr;
    }
    return 0;
}

int raft_restore(struct raft *r, const struct raft_hard_state *hs,
                 const struct raft_snapshot_meta *meta, const void *snap_data,
                 size_t snap_len, const struct raft_entry *entries,
                 unsigned n_entries)
{
    void *copy = NULL;
    if (snap_len > 0) {
        copy = cn_malloc(snap_len);
        if (copy == NULL)
            return CN_ENOMEM;
        memcpy(copy, snap_data, snap_len);
    }
    int rc = restore(r, hs, meta, copy, snap_len, NULL, entries, n_entries, 0);
    if (rc != 0)
        cn_free(copy);
    return rc;
}

int raft_restore_take(struct raft *r, const struct raft_hard_state *hs,
                      const struct raft_snapshot_meta *meta, void *snap_data,
                      size_t snap_len, void (*snap_free)(void *, size_t),
                      const struct raft_entry *entries, unsigned n_entries)
{
    return restore(r, hs, meta, snap_data, snap_len, snap_free, entries,
                   n_entries, 1);
}

void raft_garbage_free(void **garbage, size_t n)
{
    if (garbage == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        cn_free(garbage[i]);
    cn_free(garbage);
}

void raft_bytes_free(void *data, size_t len, void (*fr)(void *, size_t))
{
    if (data == NULL)
        return;
    if (fr != NULL)
        fr(data, len);
    else
        cn_free(data);
}

void raft_snap_replace(struct raft *r, void *data, size_t len,
                       void (*fr)(void *, size_t))
{
    raft_bytes_free(r->released, r->released_len, r->released_free);
    r->released = r->snap_data;
    r->released_len = r->snap_len;
    r->released_free = r->snap_free;
    r->snap_data = data;
    r->snap_len = len;
    r->snap_free = fr;
}

/* --- helpers ----------------------------------------------------------- */

int raft_conf_eq(const struct raft_conf *a, const struct raft_conf *b)
{
    if (a->n != b->n)
        return 0;
    for (unsigned i = 0; i < a->n; i++)
        if (a->servers[i].id != b->servers[i].id ||
            a->servers[i].role != b->servers[i].role)
            return 0;
    return 1;
}

const struct raft_server *raft_conf_get(const struct raft_conf *c, raft_id id)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return &c->servers[i];
    return NULL;
}

int raft_conf_add(struct raft_conf *c, raft_id id, int role)
{
    if (id == 0 || (role != RAFT_VOTER && role != RAFT_LEARNER))
        return CN_EINVAL;
    if (raft_conf_get(c, id) != NULL)
        return CN_EEXIST;
    if (c->n >= RAFT_SERVERS_MAX)
        return CN_ETOOBIG;
    c->servers[c->n].id = id;
    c->servers[c->n].role = (uint8_t)role;
    c->n++;
    return 0;
}

unsigned raft_conf_voters(const struct raft_conf *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++)
        n += c->servers[i].role == RAFT_VOTER;
    return n;
}

int raft_is_voter(const struct raft *r, raft_id id)
{
    const struct raft_server *s = raft_conf_get(&r->conf, id);
    return s != NULL && s->role == RAFT_VOTER;
}

unsigned raft_quorum(const struct raft *r)
{
    return raft_conf_voters(&r->conf) / 2 + 1;
}

void raft_reset_election_timer(struct raft *r)
{
    uint64_t t = r->o.election_timeout_ms;
    r->election_deadline_ms = r->now_ms + t + cn_prng_below(&r->prng, t);
}

struct raft_progress *raft_pr(struct raft *r, raft_id id)
{
    for (unsigned i = 0; i < r->n_prs; i++)
        if (r->prs[i].id == id)
            return &r->prs[i];
    return NULL;
}

/* Leader: one progress per server of the current configuration, keeping
 * what is known about servers that stay. */
void raft_prs_rebuild(struct raft *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->conf.n; i++) {
        raft_id id = r->conf.servers[i].id;
        struct raft_progress *old = raft_pr(r, id);
        struct raft_progress *p = &r->prs_tmp[n++];
        if (old != NULL) {
            *p = *old;
            continue;
        }
        memset(p, 0, sizeof(*p));
        p->id = id;
        p->state = RAFT_PR_PROBE;
        p->next = raft_log_last(r) + 1;
        p->recent_active = 1;
    }
    memcpy(r->prs, r->prs_tmp, n * sizeof(*r->prs));
    r->n_prs = n;
    struct raft_progress *self = raft_pr(r, r->o.id);
    if (self != NULL) {
        self->match = r->persisted;
        self->next = raft_log_last(r) + 1;
    }
}

/* Queues a message; first is the index of its first entry (APPEND). A
 * message that cannot be queued (no memory) is dropped: Raft tolerates
 * loss. */
void raft_send(struct raft *r, const struct raft_msg *m, raft_index first)
{
    if (r->n_q == r->cap_q) {
        size_t cap = r->cap_q ? r->cap_q * 2 : 16;
        struct raft_msg *q = cn_realloc(r->q, cap * sizeof(*q));
        if (q == NULL)
            return;
        r->q = q;
        raft_index *f = cn_realloc(r->q_first, cap * sizeof(*f));
        if (f == NULL)
            return;
        r->q_first = f;
        r->cap_q = cap;
    }
    struct raft_msg *d = &r->q[r->n_q];
    *d = *m;
    d->from = r->o.id;
    if (d->term == 0)
        d->term = r->term;
    r->q_first[r->n_q] = first;
    r->n_q++;
}

void raft_read_result(struct raft *r, uint64_t id, raft_index index, int rc)
{
    if (r->n_ready == r->cap_ready) {
        size_t cap = r->cap_ready ? r->cap_ready * 2 : 16;
        struct raft_read_result *p = cn_realloc(r->ready, cap * sizeof(*p));
        if (p == NULL)
            return; /* the client times out and retries */
        r->ready = p;
        r->cap_ready = cap;
    }
    struct raft_read_result *d = &r->ready[r->n_ready++];
    d->id = id;
    d->index = index;
    d->rc = rc;
}

/* --- receive ----------------------------------------------------------- */

static int from_leader_type(uint8_t t)
{
    return t == RAFT_MSG_APPEND || t == RAFT_MSG_HEARTBEAT ||
           t == RAFT_MSG_SNAPSHOT;
}

/* Term rules shared by every message (etcd-io/raft Step). Returns 1 if the
 * message goes on to its handler. */
static int recv_term(struct raft *r, const struct raft_msg *m)
{
    if (m->term > r->term) {
        int vote = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PREVOTE;
        /* Dissertation 4.2.3: within the lease of a live leader, ignore
         * vote requests (a removed server cannot disrupt). */
        if (vote && !m->force && raft_in_lease(r))
            return 0;
        if (m->type == RAFT_MSG_PREVOTE ||
            (m->type == RAFT_MSG_PREVOTE_RESP && !m->reject))
            return 1; /* pre-vote never changes terms */
        raft_become_follower(r, m->term,
                             from_leader_type(m->type) ? m->from : 0);
        return 1;
    }
    if (m->term < r->term) {
        struct raft_msg resp = {.to = m->from};
        if ((r->o.check_quorum || r->o.pre_vote) &&
            (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT)) {
            /* A stale leader learns our term and steps down; without this
             * a node with a higher term could stay ignored forever. */
            resp.type = RAFT_MSG_APPEND_RESP;
            resp.reject = 1;
            raft_send(r, &resp, 0);
        } else if (m->type == RAFT_MSG_PREVOTE) {
            resp.type = RAFT_MSG_PREVOTE_RESP;
            resp.reject = 1;
            raft_send(r, &resp, 0);
        }
        return 0;
    }
    return 1;
}

static void recv_from_leader(struct raft *r, const struct raft_msg *m)
{
    if (r->role == RAFT_LEADER)
        return; /* same term, two leaders: cannot happen */
    if (r->role != RAFT_FOLLOWER || r->leader != m->from)
        raft_become_follower(r, r->term, m->from);
    r->leader_seen_ms = r->now_ms;
    raft_reset_election_timer(r);
    if (m->type == RAFT_MSG_APPEND)
        raft_recv_append(r, m);
    else if (m->type == RAFT_MSG_HEARTBEAT)
        raft_recv_heartbeat(r, m);
    else
        raft_recv_snapshot(r, m);
}

static void recv_msg(struct raft *r, const struct raft_msg *m)
{
    if (m->to != r->o.id || m->from == 0 || m->from == r->o.id || m->type < 1 ||
        m->type > RAFT_MSG_TYPE_MAX)
        return;
    if (!recv_term(r, m))
        return;
    if (r->role == RAFT_LEADER) {
        struct raft_progress *pr = raft_pr(r, m->from);
        if (pr != NULL)
            pr->recent_active = 1;
    }
    switch (m->type) {
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        raft_recv_vote(r, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        raft_recv_vote_resp(r, m);
        break;
    case RAFT_MSG_APPEND:
    case RAFT_MSG_HEARTBEAT:
    case RAFT_MSG_SNAPSHOT:
        recv_from_leader(r, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        if (r->role == RAFT_LEADER)
            raft_recv_append_resp(r, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        if (r->role == RAFT_LEADER) {
            struct raft_progress *pr = raft_pr(r, m->from);
            if (pr == NULL)
                break;
            if (m->ctx > pr->read_ack)
                pr->read_ack = m->ctx;
            /* The follower is reachable: resume a stalled probe, and
             * free a window slot in case acks were lost, so replication
             * always recovers (etcd-io/raft does the same). */
            pr->paused = 0;
            if (pr->state == RAFT_PR_REPLICATE &&
                pr->infl_count >= r->o.max_inflight)
                raft_pr_free_first(pr);
            if (pr->state != RAFT_PR_SNAPSHOT && pr->match < raft_log_last(r))
                raft_send_append(r, pr, 1);
            raft_read_on_ack(r);
        }
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        if (r->role == RAFT_LEADER)
            raft_recv_snapshot_resp(r, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        if (r->role != RAFT_LEADER && raft_is_voter(r, r->o.id))
            raft_campaign(r, 0, 1);
        break;
    }
}

/* --- events ------------------------------------------------------------ */

static int propose(struct raft *r, const struct raft_event *ev,
                   struct raft_update *up)
{
    if (r->role != RAFT_LEADER)
        return CN_ENOTLEADER;
    if (r->transferee != 0)
        return CN_EBUSY;
    if (ev->propose.n == 0 || ev->propose.n > CN_RAFT_ENTRIES_PER_MSG_MAX)
        return CN_EINVAL;
    struct raft_entry *es = cn_calloc(ev->propose.n, sizeof(*es));
    if (es == NULL)
        return CN_ENOMEM;
    for (unsigned i = 0; i < ev->propose.n; i++) {
        es[i].term = r->term;
        es[i].type = RAFT_ENTRY_COMMAND;
        es[i].data = (void *)ev->propose.cmds[i].base;
        es[i].data_len = ev->propose.cmds[i].len;
    }
    int rc = raft_log_append(r, es, ev->propose.n);
    cn_free(es);
    if (rc != 0)
        return rc;
    up->proposed_index = raft_log_last(r) - ev->propose.n + 1;
    up->proposed_term = r->term;
    raft_bcast_append(r);
    /* A single voter commits once its own write is persisted. */
    return 0;
}

static int snapshot_taken(struct raft *r, const struct raft_event *ev)
{
    raft_index idx = ev->snapshot_taken.index;
    if (idx <= r->snap.index) {
        /* stale: we already have a newer one */
        if (ev->snapshot_taken.give)
            cn_free((void *)ev->snapshot_taken.data);
        return 0;
    }
    if (idx > r->applied)
        return CN_EINVAL;
    struct raft_snapshot_meta meta;
    if (raft_snapshot_meta_at(r, idx, &meta) != 0)
        return CN_EINVAL;
    void *copy;
    if (ev->snapshot_taken.give) {
        copy = (void *)ev->snapshot_taken.data; /* ours now */
    } else {
        copy = cn_malloc(ev->snapshot_taken.len);
        if (copy == NULL)
            return CN_ENOMEM;
        if (ev->snapshot_taken.len)
            memcpy(copy, ev->snapshot_taken.data, ev->snapshot_taken.len);
    }
    raft_snap_replace(r, copy, ev->snapshot_taken.len, NULL);
    r->snap = meta;
    if (idx > r->o.snapshot_trailing)
        raft_log_compact(r, idx - r->o.snapshot_trailing);
    return 0;
}

static int step_event(struct raft *r, const struct raft_event *ev,
                      struct raft_update *up)
{
    raft_index idx = 0;
    int rc = 0;
    switch (ev->type) {
    case RAFT_EVENT_TICK:
        raft_tick(r);
        return 0;
    case RAFT_EVENT_RECEIVE:
        if (ev->receive.msg == NULL)
            return CN_EINVAL;
        recv_msg(r, ev->receive.msg);
        return 0;
    case RAFT_EVENT_PROPOSE:
        return propose(r, ev, up);
    case RAFT_EVENT_PERSISTED:
        raft_on_persisted(r, ev->persisted.index, ev->persisted.term);
        return 0;
    case RAFT_EVENT_SNAPSHOT_TAKEN:
        return snapshot_taken(r, ev);
    case RAFT_EVENT_SNAPSHOT_APPLIED:
        raft_on_snapshot_applied(r, ev->snapshot_applied.index);
        return 0;
    case RAFT_EVENT_READ:
        return raft_read_request(r, ev->read.id);
    case RAFT_EVENT_CONF_CHANGE:
        rc = raft_conf_change(r, ev->conf_change.op, ev->conf_change.id, &idx);
        if (rc == 0) {
            up->proposed_index = idx;
            up->proposed_term = r->term;
        }
        return rc;
    case RAFT_EVENT_TRANSFER:
        return raft_transfer(r, ev->transfer.to);
    case RAFT_EVENT_CAMPAIGN:
        if (r->role == RAFT_LEADER || !raft_is_voter(r, r->o.id))
            return CN_EINVAL;
        if (ev->campaign.force)
            raft_campaign(r, 0, 1);
        else
            raft_campaign(r, r->o.pre_vote, 0);
        return 0;
    }
    return CN_EINVAL;
}

/* --- update ------------------------------------------------------------ */

static void finalize_msgs(struct raft *r, struct raft_update *up)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n_q; i++) {
        struct raft_msg *m = &r->q[i];
        if (m->type == RAFT_MSG_APPEND && m->n_entries > 0) {
            raft_index first = r->q_first[i];
            raft_index end = first + m->n_entries - 1;
            if (first <= r->base_index || end > raft_log_last(r))
                continue; /* the entries left the log: drop */
            m->entries = raft_log_get(r, first);
        }
        r->q[w++] = *m;
    }
    r->n_q = w;
    up->msgs = r->q;
    up->n_msgs = (unsigned)w;
}

static uint64_t next_timeout(const struct raft *r)
{
    if (r->role != RAFT_LEADER)
        return r->election_deadline_ms;
    uint64_t t = r->heartbeat_deadline_ms;
    if (r->o.check_quorum && r->quorum_deadline_ms < t)
        t = r->quorum_deadline_ms;
    if (r->transferee != 0 && r->transfer_deadline_ms < t)
        t = r->transfer_deadline_ms;
    return t;
}

/* The commit index written to disk: only entries that are both committed
 * and durable here, so that after a crash the restored commit never covers
 * an entry this server lost (it may have learned of the commit before its
 * own fsync). Never moves backwards. */
static raft_index hs_commit(const struct raft *r)
{
    raft_index c = r->commit < r->persisted ? r->commit : r->persisted;
    return c > r->saved_hs.commit ? c : r->saved_hs.commit;
}

static void finalize(struct raft *r, struct raft_update *up)
{
    up->role = r->role;
    up->term = r->term;
    up->leader = r->leader;
    up->hard_state.term = r->term;
    up->hard_state.vote = r->vote;
    up->hard_state.commit = hs_commit(r);
    up->hard_state_sync =
        r->term != r->saved_hs.term || r->vote != r->saved_hs.vote;
    up->hard_state_changed =
        up->hard_state_sync || up->hard_state.commit != r->saved_hs.commit;
    if (r->snap_emit) {
        up->snapshot_install = 1;
        up->snapshot = r->snap;
        up->snapshot_data = r->snap_data;
        up->snapshot_len = r->snap_len;
    }
    up->truncate_from = r->truncate_from;
    raft_index last = raft_log_last(r);
    if (r->unstable_from <= r->base_index)
        r->unstable_from = r->base_index + 1;
    if (r->unstable_from <= last) {
        up->entries = raft_log_get(r, r->unstable_from);
        up->n_entries = (unsigned)(last - r->unstable_from + 1);
    }
    r->emitted_commit = r->applied;
    if (!r->installing && r->commit > r->applied) {
        up->committed = raft_log_get(r, r->applied + 1);
        CN_ASSERT(up->committed != NULL);
        up->n_committed = (unsigned)(r->commit - r->applied);
        r->emitted_commit = r->commit;
    }
    finalize_msgs(r, up);
    up->reads = r->ready;
    up->n_reads = (unsigned)r->n_ready;
    up->next_timeout_ms = next_timeout(r);
    up->garbage = r->garbage;
    up->n_garbage = r->n_garbage;
    r->garbage = NULL;
    r->n_garbage = r->cap_garbage = 0;
    up->released = r->released;
    up->released_len = r->released_len;
    up->released_free = r->released_free;
    r->released = NULL;
    r->released_len = 0;
    r->released_free = NULL;
    r->up_pending = 1;
}

int raft_step(struct raft *r, const struct raft_event *ev,
              struct raft_update *up)
{
    CN_ASSERT(!r->up_pending);
    memset(up, 0, sizeof(*up));
    if (ev->now_ms > r->now_ms)
        r->now_ms = ev->now_ms;
    if (!r->started) {
        r->started = 1;
        raft_reset_election_timer(r);
    }
    int rc = step_event(r, ev, up);
    if (rc == CN_ENOTLEADER)
        up->leader = r->leader;
    finalize(r, up);
    return rc;
}

void raft_update_done(struct raft *r, struct raft_update *up)
{
    CN_ASSERT(r->up_pending);
    r->applied = r->emitted_commit;
    r->unstable_from = raft_log_last(r) + 1;
    r->truncate_from = 0;
    r->snap_emit = 0;
    r->n_q = 0;
    r->n_ready = 0;
    r->saved_hs.commit = hs_commit(r);
    r->saved_hs.term = r->term;
    r->saved_hs.vote = r->vote;
    r->up_pending = 0;
    /* what the driver did not take */
    raft_bytes_free(up->released, up->released_len, up->released_free);
    raft_garbage_free(up->garbage, up->n_garbage);
    memset(up, 0, sizeof(*up));
}

/* --- introspection ----------------------------------------------------- */

void raft_status(const struct raft *r, struct raft_status *st)
{
    memset(st, 0, sizeof(*st));
    st->id = r->o.id;
    st->role = r->role;
    st->term = r->term;
    st->vote = r->vote;
    st->leader = r->leader;
    st->commit = r->commit;
    st->applied = r->applied;
    st->persisted = r->persisted;
    st->first_index = r->base_index + 1;
    st->last_index = raft_log_last(r);
    st->last_term = raft_log_last_term(r);
    st->snapshot_index = r->snap.index;
    st->conf_index = r->conf_index;
    st->conf = r->conf;
    st->transferee = r->transferee;
}

raft_term raft_term_at(const struct raft *r, raft_index index)
{
    raft_term t = 0;
    if (index == 0)
        return 0;
    raft_log_term(r, index, &t);
    return t;
}

const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index)
{
    return raft_log_get(r, index);
}

int raft_snapshot_meta_at(const struct raft *r, raft_index index,
                          struct raft_snapshot_meta *out)
{
    memset(out, 0, sizeof(*out));
    if (index > r->applied || index < r->base_index)
        return CN_EINVAL;
    out->index = index;
    raft_log_term(r, index, &out->term);
    raft_conf_at(r, index, &out->conf, &out->conf_index);
    return 0;
}

const char *raft_role_name(int role)
{
    switch (role) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_PRECANDIDATE:
        return "precandidate";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    }
    return "?";
}

const char *raft_msg_type_name(int type)
{
    static const char *names[] = {
        "?",         "APPEND",   "APPEND_RESP",   "VOTE",
        "VOTE_RESP", "PREVOTE",  "PREVOTE_RESP",  "HEARTBEAT",
        "HB_RESP",   "SNAPSHOT", "SNAPSHOT_RESP", "TIMEOUT_NOW",
    };
    if (type < 1 || type > RAFT_MSG_TYPE_MAX)
        return "?";
    return names[type];
}
