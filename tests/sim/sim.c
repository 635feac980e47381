/*
 * sim.c: the simulated cluster, the driver of each node and the safety
 * checker. See sim.h for the fault model and the list of checks.
 *
 * The driver (handle_update) carries out each raft_update in the order
 * docs/raft.md prescribes:
 *   1. install a received snapshot (durably) and reset the state machine;
 *   2. write the hard state, and fsync at once if hard_state_sync;
 *   3. write the truncation and the entries, start an fsync whose
 *      completion steps RAFT_EVENT_PERSISTED after a random latency;
 *   4. send the messages (leader's entries go out before its fsync);
 *   5. apply committed entries and answer waiting clients;
 *   6. note ReadIndex results and serve reads whose index is applied;
 *   7. raft_update_done(); then step SNAPSHOT_APPLIED if a snapshot was
 *      installed, and take a snapshot if enough entries were applied.
 */
#include "sim.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* --- small helpers ------------------------------------------------------ */

static void *xmalloc(size_t n)
{
    void *p = cn_malloc(n ? n : 1);
    CN_ASSERT(p != NULL);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    void *q = cn_realloc(p, n ? n : 1);
    CN_ASSERT(q != NULL);
    return q;
}

static struct sim_bytes bytes_dup(const void *p, size_t n)
{
    struct sim_bytes b = {xmalloc(n), n};
    if (n)
        memcpy(b.p, p, n);
    return b;
}

static void bytes_free(struct sim_bytes *b)
{
    cn_free(b->p);
    b->p = NULL;
    b->n = 0;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t fnv_u64(uint64_t h, uint64_t v)
{
    return fnv(h, &v, sizeof(v));
}

static uint64_t entry_hash(const struct raft_entry *e)
{
    uint64_t h = fnv_u64(0xcbf29ce484222325ull, e->type);
    return fnv(h, e->data, e->data_len);
}

void sim_fail(struct sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(s->why, sizeof(s->why),
                     "t=%llu ms: ", (unsigned long long)s->now_ms);
    vsnprintf(s->why + n, sizeof(s->why) - (size_t)n, fmt, ap);
    va_end(ap);
}

void sim_trace(struct sim *s, const char *fmt, ...)
{
    if (s->trace == NULL && !s->verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    if (s->trace != NULL) {
        vfprintf(s->trace, fmt, ap);
        fputc('\n', s->trace);
    } else {
        fprintf(stderr, "%8llu ", (unsigned long long)s->now_ms);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}

/* --- event heap --------------------------------------------------------- */

static int ev_less(const struct sim_ev *a, const struct sim_ev *b)
{
    return a->time_ms < b->time_ms ||
           (a->time_ms == b->time_ms && a->seq < b->seq);
}

/* Far beyond any sound run: a message storm is a failure, not an OOM. */
#define SIM_EVENTS_MAX 2000000

void sim_push(struct sim *s, const struct sim_ev *e)
{
    if (s->n_heap >= SIM_EVENTS_MAX) {
        sim_fail(s, "event queue exploded (%zu events): message storm",
                 s->n_heap);
        struct sim_bytes b = e->msg;
        bytes_free(&b);
        return;
    }
    if (s->n_heap == s->cap_heap) {
        s->cap_heap = s->cap_heap ? s->cap_heap * 2 : 256;
        s->heap = xrealloc(s->heap, s->cap_heap * sizeof(*s->heap));
    }
    size_t i = s->n_heap++;
    s->heap[i] = *e;
    s->heap[i].seq = s->ev_seq++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&s->heap[i], &s->heap[p]))
            break;
        struct sim_ev t = s->heap[i];
        s->heap[i] = s->heap[p];
        s->heap[p] = t;
        i = p;
    }
}

static struct sim_ev pop(struct sim *s)
{
    struct sim_ev top = s->heap[0];
    s->heap[0] = s->heap[--s->n_heap];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, rr = l + 1, m = i;
        if (l < s->n_heap && ev_less(&s->heap[l], &s->heap[m]))
            m = l;
        if (rr < s->n_heap && ev_less(&s->heap[rr], &s->heap[m]))
            m = rr;
        if (m == i)
            break;
        struct sim_ev t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
    return top;
}

/* --- disk model ----------------------------------------------------------- */

static void log_clear_ents(struct sim_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        bytes_free(&l->ents[i]);
    l->n = 0;
}

static void log_free(struct sim_log *l)
{
    log_clear_ents(l);
    cn_free(l->ents);
    cn_free(l->terms);
    bytes_free(&l->snap);
    memset(l, 0, sizeof(*l));
}

static void log_push(struct sim_log *l, const struct sim_bytes *b, raft_term t)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->ents = xrealloc(l->ents, l->cap * sizeof(*l->ents));
        l->terms = xrealloc(l->terms, l->cap * sizeof(*l->terms));
    }
    l->ents[l->n] = bytes_dup(b->p, b->n);
    l->terms[l->n] = t;
    l->n++;
}

static void log_copy(struct sim_log *d, const struct sim_log *src)
{
    log_free(d);
    d->hs = src->hs;
    d->meta = src->meta;
    d->snap = bytes_dup(src->snap.p, src->snap.n);
    for (size_t i = 0; i < src->n; i++)
        log_push(d, &src->ents[i], src->terms[i]);
}

static void log_truncate(struct sim_log *l, raft_index from)
{
    if (from <= l->meta.index) {
        log_clear_ents(l);
        return;
    }
    size_t keep = from - l->meta.index - 1;
    while (l->n > keep)
        bytes_free(&l->ents[--l->n]);
}

static raft_term log_term(const struct sim_log *l, raft_index idx)
{
    if (idx == l->meta.index)
        return l->meta.term;
    if (idx < l->meta.index || idx > l->meta.index + l->n)
        return 0;
    return l->terms[idx - l->meta.index - 1];
}

static void log_apply(struct sim_log *l, const struct sim_disk_op *op)
{
    struct raft_entry e;
    switch (op->kind) {
    case SIM_OP_HS:
        l->hs = op->hs;
        break;
    case SIM_OP_TRUNC:
        log_truncate(l, op->index);
        break;
    case SIM_OP_APPEND:
        if (op->index <= l->meta.index)
            break; /* covered by a snapshot written meanwhile */
        CN_ASSERT(op->index == l->meta.index + l->n + 1);
        CN_ASSERT(raft_entry_decode(op->data.p, op->data.n, &e) == 0);
        log_push(l, &op->data, e.term);
        break;
    }
}

/* Drops entries <= index and makes meta/snap the base. */
static void log_set_snapshot(struct sim_log *l,
                             const struct raft_snapshot_meta *meta,
                             const void *data, size_t len, int discard_all)
{
    size_t drop = 0;
    if (discard_all || meta->index >= l->meta.index + l->n)
        drop = l->n;
    else if (meta->index > l->meta.index)
        drop = meta->index - l->meta.index;
    for (size_t i = 0; i < drop; i++)
        bytes_free(&l->ents[i]);
    if (l->n > drop) {
        memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
        memmove(l->terms, l->terms + drop, (l->n - drop) * sizeof(*l->terms));
    }
    l->n -= drop;
    l->meta = *meta;
    bytes_free(&l->snap);
    l->snap = bytes_dup(data, len);
}

static uint64_t disk_write(struct sim_disk *d, struct sim_disk_op *op)
{
    op->seq = ++d->next_seq;
    log_apply(&d->live, op);
    if (d->n_ops == d->cap_ops) {
        d->cap_ops = d->cap_ops ? d->cap_ops * 2 : 64;
        d->ops = xrealloc(d->ops, d->cap_ops * sizeof(*d->ops));
    }
    d->ops[d->n_ops++] = *op;
    return op->seq;
}

static void disk_sync_upto(struct sim_disk *d, uint64_t seq)
{
    size_t k = 0;
    while (k < d->n_ops && d->ops[k].seq <= seq) {
        log_apply(&d->durable, &d->ops[k]);
        bytes_free(&d->ops[k].data);
        k++;
    }
    if (k > 0 && d->n_ops > k)
        memmove(d->ops, d->ops + k, (d->n_ops - k) * sizeof(*d->ops));
    d->n_ops -= k;
}

static void disk_crash(struct sim_disk *d, struct cn_prng *prng, int keep_none)
{
    size_t keep = keep_none ? 0 : (size_t)cn_prng_below(prng, d->n_ops + 1);
    if (keep > 0)
        disk_sync_upto(d, d->ops[keep - 1].seq);
    for (size_t i = 0; i < d->n_ops; i++)
        bytes_free(&d->ops[i].data);
    d->n_ops = 0;
    log_copy(&d->live, &d->durable);
    d->fsync_done_ms = 0;
}

static void disk_free(struct sim_disk *d)
{
    for (size_t i = 0; i < d->n_ops; i++)
        bytes_free(&d->ops[i].data);
    cn_free(d->ops);
    log_free(&d->durable);
    log_free(&d->live);
    memset(d, 0, sizeof(*d));
}

uint64_t sim_fsync_all(struct sim *s, unsigned i)
{
    struct sim_disk *d = &s->nodes[i].disk;
    uint64_t n = d->n_ops;
    disk_sync_upto(d, d->next_seq);
    return n;
}

/* --- state machine: a register per key ------------------------------------ */

static void sm_encode(const struct sim_sm *sm, struct cn_buf *b)
{
    CN_ASSERT(cn_buf_append(b, sm, sizeof(*sm)) == 0);
}

static void sm_decode(struct sim_sm *sm, const struct sim_bytes *b)
{
    memset(sm, 0, sizeof(*sm));
    if (b->n == sizeof(*sm))
        memcpy(sm, b->p, sizeof(*sm));
}

static void cmd_encode(uint8_t out[12], uint32_t key, uint64_t op)
{
    memcpy(out, &key, 4);
    memcpy(out + 4, &op, 8);
}

/* --- checker -------------------------------------------------------------- */

static struct sim_reg_slot *reg_find(struct sim *s, raft_index idx, raft_term t,
                                     int insert)
{
    if (insert && (s->reg_n + 1) * 2 > s->reg_cap) {
        size_t old_cap = s->reg_cap;
        struct sim_reg_slot *old = s->reg;
        s->reg_cap = old_cap ? old_cap * 2 : 4096;
        s->reg = xmalloc(s->reg_cap * sizeof(*s->reg));
        memset(s->reg, 0, s->reg_cap * sizeof(*s->reg));
        s->reg_n = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i].index != 0) {
                *reg_find(s, old[i].index, old[i].term, 1) = old[i];
                s->reg_n++;
            }
        cn_free(old);
    }
    if (s->reg_cap == 0)
        return NULL;
    uint64_t h = (idx * 0x9e3779b97f4a7c15ull) ^ (t * 0xc2b2ae3d27d4eb4full);
    size_t i = (size_t)(h & (s->reg_cap - 1));
    for (;;) {
        struct sim_reg_slot *sl = &s->reg[i];
        if (sl->index == idx && sl->term == t)
            return sl;
        if (sl->index == 0)
            return insert ? sl : NULL;
        i = (i + 1) & (s->reg_cap - 1);
    }
}

/* Log matching: an (index, term) pair always names the same entry with
 * the same previous term, so by induction the same prefix. */
static void check_entry(struct sim *s, unsigned node, raft_index idx,
                        raft_term t, uint64_t hash, raft_term prev_term)
{
    struct sim_reg_slot *sl = reg_find(s, idx, t, 1);
    if (sl->index == 0) {
        sl->index = idx;
        sl->term = t;
        sl->hash = hash;
        sl->prev_term = prev_term;
        s->reg_n++;
        return;
    }
    if (sl->hash != hash || sl->prev_term != prev_term)
        sim_fail(s,
                 "log matching: node %u entry (%llu,%llu) hash/prev term "
                 "differs from another log's (prev %llu vs %llu)",
                 node + 1, (unsigned long long)idx, (unsigned long long)t,
                 (unsigned long long)prev_term,
                 (unsigned long long)sl->prev_term);
}

/* Last (index, term) of a log. */
static void log_last(const struct sim_log *l, raft_index *idx, raft_term *t)
{
    *idx = l->meta.index + l->n;
    *t = l->n ? l->terms[l->n - 1] : l->meta.term;
}

static int log_holds(const struct sim_log *l, raft_index idx, raft_term t)
{
    return idx <= l->meta.index || log_term(l, idx) == t;
}

/*
 * A newly committed entry must already be safe: no server lacking it can
 * collect a quorum of votes by log comparison (Raft paper 5.4.1) from the
 * voters' durable logs. This is what committing only current-term entries
 * guarantees (Figure 8), and what acknowledging only durable entries
 * guarantees; the check sees a violation the moment the commit happens,
 * without waiting for the crash schedule that would lose the entry.
 * Runs with a fixed voter set only (no membership changes).
 */
static void check_commit_safe(struct sim *s, raft_index idx, raft_term t)
{
    if (s->p.spares != 0)
        return;
    unsigned n = s->p.nodes;
    for (unsigned c = 0; c < n; c++) {
        const struct sim_node *cn = &s->nodes[c];
        const struct sim_log *cl =
            cn->alive ? &cn->disk.live : &cn->disk.durable;
        if (log_holds(cl, idx, t))
            continue;
        raft_index ci;
        raft_term ct;
        log_last(cl, &ci, &ct);
        unsigned votes = 0;
        for (unsigned v = 0; v < n; v++) {
            raft_index vi;
            raft_term vt;
            log_last(&s->nodes[v].disk.durable, &vi, &vt);
            votes += ct > vt || (ct == vt && ci >= vi);
        }
        if (votes >= n / 2 + 1) {
            sim_fail(s,
                     "commit safety: entry (%llu,%llu) is committed but "
                     "node %u, without it, can win an election with last "
                     "entry (%llu,%llu)",
                     (unsigned long long)idx, (unsigned long long)t, c + 1,
                     (unsigned long long)ci, (unsigned long long)ct);
            return;
        }
    }
}

static void check_committed(struct sim *s, unsigned node,
                            const struct raft_entry *e)
{
    if (e->index >= s->n_committed) {
        size_t n = s->n_committed ? s->n_committed : 1024;
        while (n <= e->index)
            n *= 2;
        s->committed = xrealloc(s->committed, n * sizeof(*s->committed));
        memset(s->committed + s->n_committed, 0,
               (n - s->n_committed) * sizeof(*s->committed));
        s->n_committed = n;
    }
    uint64_t h = entry_hash(e);
    if (s->committed[e->index].term == 0) {
        s->committed[e->index].term = e->term;
        s->committed[e->index].hash = h;
        if (e->index > s->max_committed)
            s->max_committed = e->index;
        s->n_commits++;
        check_commit_safe(s, e->index, e->term);
        return;
    }
    if (s->committed[e->index].term != e->term ||
        s->committed[e->index].hash != h)
        sim_fail(s,
                 "state machine safety: node %u applies (%llu,%llu) but "
                 "(%llu,%llu) was applied before",
                 node + 1, (unsigned long long)e->index,
                 (unsigned long long)e->term, (unsigned long long)e->index,
                 (unsigned long long)s->committed[e->index].term);
}

static void check_leader(struct sim *s, unsigned i)
{
    struct sim_node *n = &s->nodes[i];
    raft_term t = n->term;
    if (t >= s->n_leader_of) {
        size_t m = s->n_leader_of ? s->n_leader_of : 64;
        while (m <= t)
            m *= 2;
        s->leader_of = xrealloc(s->leader_of, m * sizeof(*s->leader_of));
        memset(s->leader_of + s->n_leader_of, 0,
               (m - s->n_leader_of) * sizeof(*s->leader_of));
        s->n_leader_of = m;
    }
    if (s->leader_of[t] != 0 && s->leader_of[t] != n->id)
        sim_fail(s, "election safety: nodes %llu and %llu lead term %llu",
                 (unsigned long long)s->leader_of[t], (unsigned long long)n->id,
                 (unsigned long long)t);
    s->leader_of[t] = n->id;
}

/* Leader completeness: a new leader holds every entry applied anywhere. */
static void check_completeness(struct sim *s, unsigned i)
{
    struct raft_status st;
    raft_status(s->nodes[i].r, &st);
    for (raft_index x = st.first_index; x <= s->max_committed; x++) {
        if (s->committed[x].term == 0)
            continue;
        if (raft_term_at(s->nodes[i].r, x) != s->committed[x].term) {
            sim_fail(s,
                     "leader completeness: node %u leads term %llu without "
                     "committed entry (%llu,%llu)",
                     i + 1, (unsigned long long)st.term, (unsigned long long)x,
                     (unsigned long long)s->committed[x].term);
            return;
        }
    }
}

static void hist_add(struct sim *s, uint32_t key, uint64_t done, raft_index idx)
{
    if (s->n_hist[key] == s->cap_hist[key]) {
        s->cap_hist[key] = s->cap_hist[key] ? s->cap_hist[key] * 2 : 256;
        s->hist[key] =
            xrealloc(s->hist[key], s->cap_hist[key] * sizeof(*s->hist[key]));
    }
    raft_index pm = idx;
    if (s->n_hist[key] > 0 && s->hist[key][s->n_hist[key] - 1].prefix_max > pm)
        pm = s->hist[key][s->n_hist[key] - 1].prefix_max;
    struct sim_hist *h = &s->hist[key][s->n_hist[key]++];
    h->done_ms = done;
    h->idx = idx;
    h->prefix_max = pm;
}

/* Highest write index seen by any op on key that completed before t. */
static raft_index hist_max_before(const struct sim *s, uint32_t key, uint64_t t)
{
    size_t lo = 0, hi = s->n_hist[key];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->hist[key][mid].done_ms < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : s->hist[key][lo - 1].prefix_max;
}

/* Writes are linearized in log order and reads at the write they saw, so
 * the history is linearizable iff no op observes an index older than one
 * already observed by an op that finished before it started. */
static void check_linearizable(struct sim *s, struct sim_op *op)
{
    raft_index before = hist_max_before(s, op->key, op->invoke_ms);
    if (op->write ? op->idx <= before : op->idx < before)
        sim_fail(s,
                 "linearizability: %s op %llu on key %u invoked at %llu "
                 "observes index %llu, but index %llu completed earlier",
                 op->write ? "write" : "read", (unsigned long long)op->id,
                 op->key, (unsigned long long)op->invoke_ms,
                 (unsigned long long)op->idx, (unsigned long long)before);
    hist_add(s, op->key, s->now_ms, op->idx);
}

/* --- clients ----------------------------------------------------------------
 */

uint64_t sim_new_op(struct sim *s, int write, uint32_t key, int client)
{
    if (s->n_ops == s->cap_ops) {
        s->cap_ops = s->cap_ops ? s->cap_ops * 2 : 1024;
        s->ops = xrealloc(s->ops, s->cap_ops * sizeof(*s->ops));
    }
    struct sim_op *op = &s->ops[s->n_ops];
    memset(op, 0, sizeof(*op));
    op->write = write;
    op->key = key;
    op->id = s->n_ops + 1;
    op->client = client;
    op->invoke_ms = s->now_ms;
    op->node = -1;
    s->n_ops++;
    return op->id;
}

static struct sim_op *op_get(struct sim *s, uint64_t id)
{
    return &s->ops[id - 1];
}

void sim_client_submit(struct sim *s, uint64_t id, unsigned node)
{
    struct sim_op *op = op_get(s, id);
    op->attempt++;
    struct sim_ev e = {.time_ms =
                           s->now_ms + cn_prng_range(&s->client_prng, 1, 5),
                       .kind = SIM_EV_CLIENT,
                       .node = node,
                       .a = id,
                       .b = op->attempt};
    sim_push(s, &e);
}

static void op_finish(struct sim *s, struct sim_op *op, int state)
{
    if (op->state != SIM_PENDING)
        return;
    op->state = state;
    op->done_ms = s->now_ms;
    if (s->trace != NULL) {
        static const char *names[] = {"pending", "ok", "failed", "unknown"};
        if (op->write)
            sim_trace(s, "op %llu: write key=%u %s index=%llu",
                      (unsigned long long)op->id, op->key, names[state],
                      (unsigned long long)op->idx);
        else
            sim_trace(s, "op %llu: read key=%u %s saw index=%llu",
                      (unsigned long long)op->id, op->key, names[state],
                      (unsigned long long)op->idx);
    }
    if (state == SIM_OK) {
        check_linearizable(s, op);
        if (op->write)
            s->n_acked_writes++;
        else
            s->n_reads_ok++;
    }
    if (op->client >= 0 || op->liveness) {
        struct sim_ev e = {
            .time_ms = s->now_ms + 1, .kind = SIM_EV_THINK, .a = op->id};
        sim_push(s, &e);
    }
}

static void wait_add(struct sim_node *n, uint64_t op, raft_index idx,
                     raft_term t)
{
    if (n->n_waits == n->cap_waits) {
        n->cap_waits = n->cap_waits ? n->cap_waits * 2 : 32;
        n->waits = xrealloc(n->waits, n->cap_waits * sizeof(*n->waits));
    }
    struct sim_wait *w = &n->waits[n->n_waits++];
    w->op = op;
    w->index = idx;
    w->term = t;
    w->ready = 0;
}

static void waits_compact(struct sim *s, struct sim_node *n)
{
    size_t w = 0;
    for (size_t i = 0; i < n->n_waits; i++)
        if (op_get(s, n->waits[i].op)->state == SIM_PENDING)
            n->waits[w++] = n->waits[i];
    n->n_waits = w;
}

/* Serves reads whose index is applied and resolves writes up to applied
 * (entries replaced by a snapshot are judged by the committed record). */
static void serve_waits(struct sim *s, struct sim_node *n)
{
    for (size_t i = 0; i < n->n_waits; i++) {
        struct sim_wait *w = &n->waits[i];
        struct sim_op *op = op_get(s, w->op);
        if (op->state != SIM_PENDING || op->node != (int)(n->id - 1))
            continue;
        if (!op->write) {
            if (w->ready && w->index <= n->sm.applied) {
                op->idx = n->sm.vidx[op->key];
                op_finish(s, op, SIM_OK);
            }
            continue;
        }
        if (w->index > n->sm.applied)
            continue;
        int ok =
            w->index < s->n_committed && s->committed[w->index].term == w->term;
        op->idx = w->index;
        op_finish(s, op, ok ? SIM_OK : SIM_FAIL);
    }
    waits_compact(s, n);
}

/* Hands op id to node i's core now. Returns the raft_step code (1 if the
 * node is down); up gets the update's scalar fields. */
int sim_client_now(struct sim *s, uint64_t id, unsigned i,
                   struct raft_update *up)
{
    struct sim_op *op = op_get(s, id);
    struct sim_node *n = &s->nodes[i];
    if (!n->alive)
        return 1;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    uint8_t cmd[12];
    struct cn_slice sl = {(const char *)cmd, sizeof(cmd)};
    if (op->write) {
        cmd_encode(cmd, op->key, op->id);
        ev.type = RAFT_EVENT_PROPOSE;
        ev.propose.cmds = &sl;
        ev.propose.n = 1;
    } else {
        ev.type = RAFT_EVENT_READ;
        ev.read.id = op->id;
    }
    op->node = (int)i;
    /* A read may be confirmed within the step (single voter): wait first. */
    if (!op->write)
        wait_add(n, op->id, 0, 0);
    int rc = sim_step(s, i, &ev, up);
    if (rc != 0) {
        op->node = -1;
        if (!op->write && n->n_waits > 0 && n->waits[n->n_waits - 1].op == id)
            n->n_waits--;
        return rc;
    }
    if (op->write)
        wait_add(n, op->id, up->proposed_index, up->proposed_term);
    serve_waits(s, n);
    return 0;
}

static void client_arrive(struct sim *s, unsigned i, uint64_t id,
                          uint64_t attempt)
{
    struct sim_op *op = op_get(s, id);
    struct sim_node *n = &s->nodes[i];
    if (op->state != SIM_PENDING || attempt != op->attempt)
        return;
    if (!n->alive) {
        sim_client_submit(s, id,
                          (unsigned)cn_prng_below(&s->client_prng, s->n_nodes));
        return;
    }
    struct raft_update up;
    int rc = sim_client_now(s, id, i, &up);
    if (rc == 0)
        return;
    unsigned next = i;
    if (rc == CN_ENOTLEADER)
        next = up.leader != 0 && up.leader <= s->n_nodes
                   ? (unsigned)(up.leader - 1)
                   : (unsigned)cn_prng_below(&s->client_prng, s->n_nodes);
    op->attempt++;
    struct sim_ev e = {.time_ms = s->now_ms + (rc == CN_ENOTLEADER ? 5 : 30),
                       .kind = SIM_EV_CLIENT,
                       .node = next,
                       .a = id,
                       .b = op->attempt};
    sim_push(s, &e);
}

/* --- network ----------------------------------------------------------------
 */

static void net_send(struct sim *s, unsigned from, const struct raft_msg *m)
{
    s->n_msgs++;
    if (m->type == RAFT_MSG_SNAPSHOT)
        s->n_snapshots_sent++;
    if (m->to == 0 || m->to > s->n_nodes)
        return;
    unsigned to = (unsigned)(m->to - 1);
    int hb =
        m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_HEARTBEAT_RESP;
    if ((s->trace != NULL && (!hb || s->trace_heartbeats)) || s->verbose) {
        char d[512];
        sim_describe_msg(m, d, sizeof(d));
        sim_trace(s, "%s%s", d, s->blocked[from][to] ? " (blocked)" : "");
    }
    if (s->blocked[from][to])
        return;
    if (s->p.loss_pct10 && cn_prng_below(&s->net_prng, 1000) < s->p.loss_pct10)
        return;
    struct cn_buf b;
    cn_buf_init(&b);
    CN_ASSERT(raft_msg_encode(m, &b) == 0);
    int copies = 1;
    if (s->p.dup_pct10 && cn_prng_below(&s->net_prng, 1000) < s->p.dup_pct10)
        copies = 2;
    for (int c = 0; c < copies; c++) {
        struct sim_ev e = {.kind = SIM_EV_DELIVER, .node = to};
        uint64_t d =
            cn_prng_range(&s->net_prng, s->p.delay_min_ms, s->p.delay_max_ms);
        if (cn_prng_below(&s->net_prng, 100) == 0)
            d *= 10; /* a straggler: reordering */
        e.time_ms = s->now_ms + d;
        e.msg = bytes_dup(b.data, b.len);
        if (s->p.corrupt_pct10 &&
            cn_prng_below(&s->net_prng, 1000) < s->p.corrupt_pct10) {
            size_t bit = (size_t)cn_prng_below(&s->net_prng, b.len * 8);
            e.msg.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            e.a = 1;
        }
        sim_push(s, &e);
    }
    cn_buf_close(&b);
}

static void deliver(struct sim *s, struct sim_ev *e)
{
    struct sim_node *n = &s->nodes[e->node];
    struct raft_msg m;
    int rc = raft_msg_decode(e->msg.p, e->msg.n, &m);
    if (e->a && rc == 0)
        sim_fail(s, "codec: a corrupted message decoded");
    if (!e->a && rc != 0)
        sim_fail(s, "codec: a sound message failed to decode (%s)",
                 cn_errname(rc));
    if (rc != 0)
        return;
    if (n->alive) {
        struct raft_event ev;
        struct raft_update up;
        memset(&ev, 0, sizeof(ev));
        ev.type = RAFT_EVENT_RECEIVE;
        ev.receive.msg = &m;
        sim_step(s, e->node, &ev, &up);
    }
    raft_msg_release(&m);
}

/* --- node lifecycle ----------------------------------------------------------
 */

static void schedule_tick(struct sim *s, unsigned i, uint64_t at)
{
    struct sim_node *n = &s->nodes[i];
    if (at == n->tick_at)
        return;
    n->tick_at = at;
    struct sim_ev e = {.time_ms = at > s->now_ms ? at : s->now_ms,
                       .kind = SIM_EV_TICK,
                       .node = i,
                       .inc = n->inc,
                       .a = at};
    sim_push(s, &e);
}

int sim_node_start(struct sim *s, unsigned i)
{
    struct sim_node *n = &s->nodes[i];
    CN_ASSERT(!n->alive && n->exists);
    struct sim_log *l = &n->disk.durable;
    log_copy(&n->disk.live, l);
    struct raft_entry *es = xmalloc((l->n + 1) * sizeof(*es));
    for (size_t k = 0; k < l->n; k++)
        if (raft_entry_decode(l->ents[k].p, l->ents[k].n, &es[k]) != 0) {
            sim_fail(s, "node %u: durable entry does not decode", i + 1);
            cn_free(es);
            return -1;
        }
    n->opt.seed = cn_prng_next(&s->prng);
    int rc = raft_new(&n->opt, &n->r);
    CN_ASSERT(rc == 0);
    rc = raft_restore(n->r, &l->hs, &l->meta, l->snap.p, l->snap.n, es,
                      (unsigned)l->n);
    cn_free(es);
    if (rc != 0) {
        sim_fail(s, "node %u: restore failed: %s", i + 1, cn_errname(rc));
        return -1;
    }
    sm_decode(&n->sm, &l->snap);
    n->sm.applied = l->meta.index;
    n->last_snap = l->meta.index;
    n->alive = 1;
    n->inc++;
    n->role = RAFT_FOLLOWER;
    n->term = l->hs.term;
    n->commit = 0;
    n->tick_at = 0;
    sim_trace(s, "node %u starts term=%llu log=%llu..%llu", i + 1,
              (unsigned long long)l->hs.term, (unsigned long long)l->meta.index,
              (unsigned long long)(l->meta.index + l->n));
    struct raft_event ev;
    struct raft_update up;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TICK;
    sim_step(s, i, &ev, &up);
    return 0;
}

void sim_node_crash(struct sim *s, unsigned i)
{
    struct sim_node *n = &s->nodes[i];
    if (!n->alive)
        return;
    sim_trace(s, "node %u crashes (%zu unsynced writes)", i + 1, n->disk.n_ops);
    raft_free(n->r);
    n->r = NULL;
    n->alive = 0;
    n->inc++;
    s->n_crashes++;
    disk_crash(&n->disk, &s->disk_prng, s->crash_keeps_none);
    for (size_t k = 0; k < n->n_waits; k++) {
        struct sim_op *op = op_get(s, n->waits[k].op);
        if (op->state != SIM_PENDING || op->node != (int)i)
            continue;
        if (op->write)
            op_finish(s, op, SIM_UNKNOWN);
        else
            sim_client_submit(
                s, op->id,
                (unsigned)cn_prng_below(&s->client_prng, s->n_nodes));
    }
    n->n_waits = 0;
}

void sim_take_snapshot(struct sim *s, unsigned i)
{
    struct sim_node *n = &s->nodes[i];
    if (!n->alive || n->sm.applied <= n->disk.live.meta.index)
        return;
    struct raft_snapshot_meta meta;
    if (raft_snapshot_meta_at(n->r, n->sm.applied, &meta) != 0)
        return;
    struct cn_buf b;
    cn_buf_init(&b);
    sm_encode(&n->sm, &b);
    /* The log is synced before the snapshot is written, so the durable log
     * never holds stale entries above a newer snapshot; the snapshot is
     * durable before the core hears of it. */
    sim_fsync_all(s, i);
    log_set_snapshot(&n->disk.live, &meta, b.data, b.len, 0);
    log_set_snapshot(&n->disk.durable, &meta, b.data, b.len, 0);
    struct raft_event ev;
    struct raft_update up;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT_TAKEN;
    ev.snapshot_taken.index = meta.index;
    ev.snapshot_taken.data = b.data;
    ev.snapshot_taken.len = b.len;
    int rc = sim_step(s, i, &ev, &up);
    if (rc != 0)
        sim_fail(s, "node %u: snapshot at %llu refused: %s", i + 1,
                 (unsigned long long)meta.index, cn_errname(rc));
    cn_buf_close(&b);
}

/* --- the driver ------------------------------------------------------------
 */

static void apply_snapshot(struct sim *s, unsigned i,
                           const struct raft_update *up)
{
    struct sim_node *n = &s->nodes[i];
    const struct raft_snapshot_meta *m = &up->snapshot;
    if (m->index < s->n_committed && s->committed[m->index].term != 0 &&
        s->committed[m->index].term != m->term)
        sim_fail(s, "snapshot (%llu,%llu) contradicts committed entry",
                 (unsigned long long)m->index, (unsigned long long)m->term);
    sim_fsync_all(s, i);
    log_set_snapshot(&n->disk.live, m, up->snapshot_data, up->snapshot_len, 1);
    log_set_snapshot(&n->disk.durable, m, up->snapshot_data, up->snapshot_len,
                     1);
    struct sim_bytes b = {(uint8_t *)up->snapshot_data, up->snapshot_len};
    sm_decode(&n->sm, &b);
    n->sm.applied = m->index;
    n->last_snap = m->index;
    sim_trace(s, "node %u installs snapshot index=%llu term=%llu", i + 1,
              (unsigned long long)m->index, (unsigned long long)m->term);
}

static void write_entries(struct sim *s, unsigned i,
                          const struct raft_update *up)
{
    struct sim_node *n = &s->nodes[i];
    struct sim_disk_op op;
    if (up->truncate_from) {
        if (up->truncate_from <= n->commit)
            sim_fail(s, "node %u truncates from %llu below commit %llu", i + 1,
                     (unsigned long long)up->truncate_from,
                     (unsigned long long)n->commit);
        memset(&op, 0, sizeof(op));
        op.kind = SIM_OP_TRUNC;
        op.index = up->truncate_from;
        disk_write(&n->disk, &op);
    }
    if (up->n_entries == 0)
        return;
    const struct raft_entry *e = up->entries;
    if (e[0].index != n->disk.live.meta.index + n->disk.live.n + 1)
        sim_fail(
            s, "node %u appends %llu after %llu: gap", i + 1,
            (unsigned long long)e[0].index,
            (unsigned long long)(n->disk.live.meta.index + n->disk.live.n));
    uint64_t seq = 0;
    for (unsigned k = 0; k < up->n_entries; k++) {
        raft_term prev =
            k ? e[k - 1].term : log_term(&n->disk.live, e[k].index - 1);
        check_entry(s, i, e[k].index, e[k].term, entry_hash(&e[k]), prev);
        struct cn_buf b;
        cn_buf_init(&b);
        CN_ASSERT(raft_entry_encode(&e[k], &b) == 0);
        memset(&op, 0, sizeof(op));
        op.kind = SIM_OP_APPEND;
        op.index = e[k].index;
        op.data.p = (uint8_t *)b.data;
        op.data.n = b.len;
        seq = disk_write(&n->disk, &op);
    }
    const struct raft_entry *last = &e[up->n_entries - 1];
    uint64_t lat = s->fsync_ms[i] > 0 ? (uint64_t)s->fsync_ms[i]
                   : s->auto_persist
                       ? 0
                       : cn_prng_range(&s->disk_prng, s->p.fsync_min_ms,
                                       s->p.fsync_max_ms);
    uint64_t at = s->now_ms + lat;
    if (at < n->disk.fsync_done_ms)
        at = n->disk.fsync_done_ms;
    n->disk.fsync_done_ms = at;
    struct sim_ev ev = {.time_ms = at,
                        .kind = SIM_EV_FSYNC,
                        .node = i,
                        .inc = n->inc,
                        .a = seq,
                        .b = last->index,
                        .c = last->term};
    sim_push(s, &ev);
}

static void apply_committed(struct sim *s, unsigned i,
                            const struct raft_update *up)
{
    struct sim_node *n = &s->nodes[i];
    for (unsigned k = 0; k < up->n_committed; k++) {
        const struct raft_entry *e = &up->committed[k];
        if (e->index != n->sm.applied + 1) {
            sim_fail(s, "node %u applies %llu after %llu", i + 1,
                     (unsigned long long)e->index,
                     (unsigned long long)n->sm.applied);
            return;
        }
        check_committed(s, i, e);
        if (e->type == RAFT_ENTRY_COMMAND && e->data_len == 12) {
            uint32_t key;
            uint64_t op;
            memcpy(&key, e->data, 4);
            memcpy(&op, (const uint8_t *)e->data + 4, 8);
            if (key < SIM_KEYS) {
                n->sm.val[key] = op;
                n->sm.vidx[key] = e->index;
            }
        }
        n->sm.applied = e->index;
    }
}

static void note_reads(struct sim *s, unsigned i, const struct raft_update *up)
{
    struct sim_node *n = &s->nodes[i];
    for (unsigned k = 0; k < up->n_reads; k++) {
        const struct raft_read_result *rr = &up->reads[k];
        if (rr->id == 0 || rr->id > s->n_ops)
            continue;
        struct sim_op *op = op_get(s, rr->id);
        if (op->state != SIM_PENDING || op->node != (int)i)
            continue;
        if (rr->rc != 0) {
            op->node = -1;
            sim_client_submit(
                s, op->id,
                (unsigned)cn_prng_below(&s->client_prng, s->n_nodes));
            continue;
        }
        for (size_t w = 0; w < n->n_waits; w++)
            if (n->waits[w].op == rr->id) {
                n->waits[w].index = rr->index;
                n->waits[w].ready = 1;
            }
    }
}

static void handle_update(struct sim *s, unsigned i,
                          const struct raft_update *up)
{
    struct sim_node *n = &s->nodes[i];
    if (up->snapshot_install)
        apply_snapshot(s, i, up);
    if (up->hard_state_changed) {
        struct sim_disk_op op;
        memset(&op, 0, sizeof(op));
        op.kind = SIM_OP_HS;
        op.hs = up->hard_state;
        disk_write(&n->disk, &op);
        if (up->hard_state_sync)
            sim_fsync_all(s, i);
    }
    write_entries(s, i, up);
    for (unsigned k = 0; k < up->n_msgs; k++)
        net_send(s, i, &up->msgs[k]);
    apply_committed(s, i, up);
    note_reads(s, i, up);
    serve_waits(s, n);
}

static void after_step(struct sim *s, unsigned i, const struct raft_update *up)
{
    struct sim_node *n = &s->nodes[i];
    struct raft_status st;
    raft_status(n->r, &st);
    if (st.commit < n->commit)
        sim_fail(s, "node %u commit went back %llu -> %llu", i + 1,
                 (unsigned long long)n->commit, (unsigned long long)st.commit);
    int was_leader = n->role == RAFT_LEADER && n->term == st.term;
    if (st.role != n->role || st.term != n->term)
        sim_trace(s, "node %u %s term=%llu", i + 1, raft_role_name(st.role),
                  (unsigned long long)st.term);
    n->role = st.role;
    n->term = st.term;
    n->commit = st.commit;
    if (st.role == RAFT_LEADER) {
        check_leader(s, i);
        if (!was_leader) {
            s->n_elections++;
            check_completeness(s, i);
            if (s->on_leader != NULL)
                s->on_leader(s, i);
        }
    }
    s->trace_hash = fnv_u64(s->trace_hash, st.term);
    s->trace_hash = fnv_u64(s->trace_hash, st.commit);
    s->trace_hash = fnv_u64(s->trace_hash, st.last_index);
    s->trace_hash = fnv_u64(s->trace_hash, up->n_msgs);
    schedule_tick(s, i, up->next_timeout_ms);
}

int sim_step(struct sim *s, unsigned i, const struct raft_event *ev,
             struct raft_update *out_copy)
{
    struct sim_node *n = &s->nodes[i];
    CN_ASSERT(n->alive);
    struct raft_event e = *ev;
    e.now_ms = s->now_ms;
    struct raft_update up;
    int rc = raft_step(n->r, &e, &up);
    s->n_steps++;
    s->trace_hash = fnv_u64(s->trace_hash, ((uint64_t)i << 32) | ev->type);
    handle_update(s, i, &up);
    int install = up.snapshot_install;
    raft_index snap_index = up.snapshot.index;
    *out_copy = up;
    raft_update_done(n->r, &up);
    after_step(s, i, out_copy);
    if (install && n->alive) {
        struct raft_event ap;
        struct raft_update up2;
        memset(&ap, 0, sizeof(ap));
        ap.type = RAFT_EVENT_SNAPSHOT_APPLIED;
        ap.snapshot_applied.index = snap_index;
        sim_step(s, i, &ap, &up2);
    }
    if (n->alive && s->p.snapshot_every &&
        n->sm.applied >= n->last_snap + s->p.snapshot_every) {
        n->last_snap = n->sm.applied;
        sim_take_snapshot(s, i);
    }
    return rc;
}

/* --- the loop ------------------------------------------------------------- */

static void run_event(struct sim *s, struct sim_ev *e);

void sim_run_until(struct sim *s, uint64_t until)
{
    while (s->n_heap > 0 && !s->failed) {
        if (s->heap[0].time_ms > until)
            break;
        struct sim_ev e = pop(s);
        s->now_ms = e.time_ms;
        run_event(s, &e);
        bytes_free(&e.msg);
    }
    if (s->now_ms < until)
        s->now_ms = until;
}

static void fsync_done(struct sim *s, struct sim_ev *e)
{
    struct sim_node *n = &s->nodes[e->node];
    if (!n->alive || e->inc != n->inc)
        return;
    disk_sync_upto(&n->disk, e->a);
    struct raft_event ev;
    struct raft_update up;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PERSISTED;
    ev.persisted.index = e->b;
    ev.persisted.term = e->c;
    sim_step(s, e->node, &ev, &up);
}

static void run_event(struct sim *s, struct sim_ev *e)
{
    struct sim_node *n = &s->nodes[e->node];
    struct raft_event ev;
    struct raft_update up;
    s->trace_hash = fnv_u64(s->trace_hash, e->time_ms);
    s->trace_hash = fnv_u64(s->trace_hash, (uint64_t)e->kind);
    switch (e->kind) {
    case SIM_EV_DELIVER:
        s->trace_hash = fnv(s->trace_hash, e->msg.p, e->msg.n);
        deliver(s, e);
        break;
    case SIM_EV_TICK:
        if (!n->alive || e->inc != n->inc || e->a != n->tick_at)
            break;
        memset(&ev, 0, sizeof(ev));
        ev.type = RAFT_EVENT_TICK;
        sim_step(s, e->node, &ev, &up);
        break;
    case SIM_EV_FSYNC:
        fsync_done(s, e);
        break;
    case SIM_EV_CLIENT:
        client_arrive(s, e->node, e->a, e->b);
        break;
    default:
        if (s->hook != NULL)
            s->hook(s, e);
        break;
    }
}

/* --- setup ------------------------------------------------------------------
 */

void sim_init(struct sim *s, uint64_t seed, const struct sim_params *p)
{
    memset(s, 0, sizeof(*s));
    s->seed = seed;
    s->p = *p;
    s->trace_hash = 0xcbf29ce484222325ull;
    cn_prng_seed(&s->prng, seed);
    cn_prng_seed(&s->net_prng, cn_prng_next(&s->prng));
    cn_prng_seed(&s->disk_prng, cn_prng_next(&s->prng));
    cn_prng_seed(&s->client_prng, cn_prng_next(&s->prng));
    cn_prng_seed(&s->fault_prng, cn_prng_next(&s->prng));
    s->n_nodes = p->nodes + p->spares;
    CN_ASSERT(s->n_nodes <= SIM_NODES_MAX);
    struct raft_conf conf;
    memset(&conf, 0, sizeof(conf));
    for (unsigned i = 0; i < p->nodes; i++)
        raft_conf_add(&conf, i + 1, RAFT_VOTER);
    for (unsigned i = 0; i < s->n_nodes; i++) {
        struct sim_node *n = &s->nodes[i];
        n->id = i + 1;
        n->opt = p->raft;
        n->opt.id = n->id;
        n->exists = i < p->nodes;
        /* Bootstrap: every initial node starts from the same configuration
         * at index 0; spares start empty and learn it from the leader. */
        if (n->exists) {
            n->disk.durable.meta.conf = conf;
        }
    }
}

void sim_close(struct sim *s)
{
    for (unsigned i = 0; i < s->n_nodes; i++) {
        struct sim_node *n = &s->nodes[i];
        if (n->r)
            raft_free(n->r);
        disk_free(&n->disk);
        cn_free(n->waits);
    }
    for (size_t k = 0; k < s->n_heap; k++)
        bytes_free(&s->heap[k].msg);
    cn_free(s->heap);
    cn_free(s->leader_of);
    cn_free(s->reg);
    cn_free(s->committed);
    cn_free(s->ops);
    for (int k = 0; k < SIM_KEYS; k++)
        cn_free(s->hist[k]);
    memset(s, 0, sizeof(*s));
}

void sim_heal(struct sim *s)
{
    memset(s->blocked, 0, sizeof(s->blocked));
    s->p.loss_pct10 = 0;
    s->p.dup_pct10 = 0;
    s->p.corrupt_pct10 = 0;
}

int sim_leader(const struct sim *s)
{
    int best = -1;
    raft_term bt = 0;
    for (unsigned i = 0; i < s->n_nodes; i++) {
        const struct sim_node *n = &s->nodes[i];
        if (n->alive && n->role == RAFT_LEADER && n->term >= bt) {
            best = (int)i;
            bt = n->term;
        }
    }
    return best;
}

uint64_t sim_logs_hash(const struct sim *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < s->n_nodes; i++) {
        const struct sim_log *l = &s->nodes[i].disk.live;
        h = fnv_u64(h, l->meta.index);
        h = fnv_u64(h, l->hs.term);
        for (size_t k = 0; k < l->n; k++)
            h = fnv(h, l->ents[k].p, l->ents[k].n);
    }
    return h;
}

void sim_describe_msg(const struct raft_msg *m, char *buf, size_t n)
{
    int w = snprintf(buf, n, "%llu->%llu %s term=%llu",
                     (unsigned long long)m->from, (unsigned long long)m->to,
                     raft_msg_type_name(m->type), (unsigned long long)m->term);
    if (w < 0 || (size_t)w >= n)
        return;
    size_t o = (size_t)w;
#define ADD(...)                                                               \
    do {                                                                       \
        int k_ = snprintf(buf + o, n - o, __VA_ARGS__);                        \
        if (k_ > 0 && (size_t)k_ < n - o)                                      \
            o += (size_t)k_;                                                   \
    } while (0)
    switch (m->type) {
    case RAFT_MSG_APPEND:
        ADD(" prev=(%llu,%llu) commit=%llu entries=",
            (unsigned long long)m->index, (unsigned long long)m->log_term,
            (unsigned long long)m->commit);
        if (m->n_entries == 0)
            ADD("[]");
        for (unsigned k = 0; k < m->n_entries; k++) {
            const struct raft_entry *e = &m->entries[k];
            const char *t = e->type == RAFT_ENTRY_NOOP     ? "noop"
                            : e->type == RAFT_ENTRY_CONFIG ? "conf"
                                                           : "cmd";
            ADD("%s%llu@%llu:%s", k ? "," : "[", (unsigned long long)e->index,
                (unsigned long long)e->term, t);
            if (k + 1 == m->n_entries)
                ADD("]");
        }
        break;
    case RAFT_MSG_APPEND_RESP:
        if (m->reject)
            ADD(" reject index=%llu hint=(%llu,%llu)",
                (unsigned long long)m->index, (unsigned long long)m->hint,
                (unsigned long long)m->log_term);
        else
            ADD(" index=%llu", (unsigned long long)m->index);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PREVOTE:
        ADD(" last=(%llu,%llu)%s", (unsigned long long)m->index,
            (unsigned long long)m->log_term, m->force ? " force" : "");
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PREVOTE_RESP:
        ADD(" %s", m->reject ? "reject" : "granted");
        break;
    case RAFT_MSG_HEARTBEAT:
        ADD(" commit=%llu ctx=%llu", (unsigned long long)m->commit,
            (unsigned long long)m->ctx);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        ADD(" ctx=%llu", (unsigned long long)m->ctx);
        break;
    case RAFT_MSG_SNAPSHOT:
        ADD(" snap=(%llu,%llu) offset=%llu len=%zu%s",
            (unsigned long long)m->snap.index, (unsigned long long)m->snap.term,
            (unsigned long long)m->offset, m->chunk_len,
            m->last ? " last" : "");
        break;
    case RAFT_MSG_SNAPSHOT_RESP:
        ADD(" snap=%llu offset=%llu%s", (unsigned long long)m->index,
            (unsigned long long)m->offset, m->reject ? " reject" : "");
        break;
    }
#undef ADD
}
