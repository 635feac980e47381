/*
 * raft_read: ReadIndex, membership changes and leadership transfer.
 *
 * ReadIndex (dissertation 6.4): a read arriving at the leader records the
 * commit index and the read round it waits for (read_seq + 1). Heartbeats
 * carry the latest round in ctx and followers echo it; a round is confirmed
 * when a quorum of voters (the leader included) has echoed it or a later
 * one, which proves nobody else led a later term when the round started.
 * At most one round is in flight: every read that arrives meanwhile joins
 * the next round, so one heartbeat exchange serves a whole batch. Until the
 * leader has committed an entry of its own term (its no-op) its commit index
 * may be stale, so reads wait (seq 0) and get the commit index of that first
 * commit. Reads are failed with CN_ENOTLEADER when leadership is lost.
 *
 * Membership (dissertation 4.1): one server added or removed at a time; a
 * new configuration takes effect as soon as it is appended (raft_log.c);
 * a change is refused while another is uncommitted or before the leader
 * has committed in its term (the fix of dissertation 4.1's bug). New servers
 * join as learners and are promoted once caught up with the commit index.
 *
 * -DRAFT_BUG_READ_NO_QUORUM answers reads at once, without the round: the
 * simulator's linearizability check must catch it.
 *
 * Transfer (dissertation 3.10): the leader stops accepting proposals, brings
 * the target up to date, then sends TimeoutNow; it gives up after an
 * election timeout.
 */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

static int reserve_reads(struct raft *r)
{
    if (r->n_reads < r->cap_reads)
        return 0;
    size_t cap = r->cap_reads ? r->cap_reads * 2 : 16;
    struct raft_pending_read *p = cn_realloc(r->reads, cap * sizeof(*p));
    if (p == NULL)
        return CN_ENOMEM;
    r->reads = p;
    r->cap_reads = cap;
    return 0;
}

static int committed_in_term(const struct raft *r)
{
    return raft_term_at(r, r->commit) == r->term;
}

static int cmp_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void read_confirm(struct raft *r)
{
    uint64_t acks[RAFT_SERVERS_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        if (!raft_is_voter(r, pr->id))
            continue;
        acks[n++] = pr->id == r->o.id ? r->read_seq : pr->read_ack;
    }
    if (n == 0)
        return;
    qsort(acks, n, sizeof(acks[0]), cmp_desc);
    uint64_t c = acks[raft_quorum(r) - 1];
    if (c <= r->read_confirmed)
        return;
    r->read_confirmed = c;
    size_t w = 0;
    for (size_t i = 0; i < r->n_reads; i++) {
        struct raft_pending_read *p = &r->reads[i];
        if (p->seq != 0 && p->seq <= c)
            raft_read_result(r, p->id, p->index, 0);
        else
            r->reads[w++] = *p;
    }
    r->n_reads = w;
}

static void read_start_round(struct raft *r)
{
    if (r->read_seq > r->read_confirmed)
        return; /* one round in flight; later reads wait for the next */
    int need = 0;
    for (size_t i = 0; i < r->n_reads; i++)
        if (r->reads[i].seq == r->read_seq + 1)
            need = 1;
    if (!need)
        return;
    r->read_seq++;
    raft_bcast_heartbeat(r);
    read_confirm(r);
}

int raft_read_request(struct raft *r, uint64_t id)
{
    if (r->role != RAFT_LEADER)
        return CN_ENOTLEADER;
#ifdef RAFT_BUG_READ_NO_QUORUM
    /* Deliberately broken: answer from local state without confirming
     * leadership, so a deposed leader serves stale reads. */
    raft_read_result(r, id, r->commit, 0);
    return 0;
#endif
    if (reserve_reads(r) != 0)
        return CN_ENOMEM;
    struct raft_pending_read *p = &r->reads[r->n_reads++];
    p->id = id;
    p->index = 0;
    p->seq = 0;
    if (committed_in_term(r)) {
        p->index = r->commit;
        p->seq = r->read_seq + 1;
        read_start_round(r);
    }
    return 0;
}

void raft_read_on_term_commit(struct raft *r)
{
    for (size_t i = 0; i < r->n_reads; i++) {
        if (r->reads[i].seq == 0) {
            r->reads[i].index = r->commit;
            r->reads[i].seq = r->read_seq + 1;
        }
    }
    read_start_round(r);
}

void raft_read_on_ack(struct raft *r)
{
    read_confirm(r);
    read_start_round(r);
}

void raft_read_fail_all(struct raft *r)
{
    for (size_t i = 0; i < r->n_reads; i++)
        raft_read_result(r, r->reads[i].id, 0, CN_ENOTLEADER);
    r->n_reads = 0;
}

/* --- membership --------------------------------------------------------- */

static int conf_remove(struct raft_conf *c, raft_id id)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].id != id)
            continue;
        memmove(&c->servers[i], &c->servers[i + 1],
                (c->n - i - 1) * sizeof(c->servers[0]));
        c->n--;
        return 0;
    }
    return CN_ENOTFOUND;
}

static int conf_next(struct raft *r, uint8_t op, raft_id id,
                     struct raft_conf *c)
{
    *c = r->conf;
    const struct raft_server *s = raft_conf_get(c, id);
    struct raft_progress *pr;
    switch (op) {
    case RAFT_CONF_ADD_LEARNER:
        return raft_conf_add(c, id, RAFT_LEARNER);
    case RAFT_CONF_PROMOTE:
        if (s == NULL || s->role != RAFT_LEARNER)
            return CN_EINVAL;
        pr = raft_pr(r, id);
        if (pr == NULL || pr->match < r->commit)
            return CN_EAGAIN;
        for (unsigned i = 0; i < c->n; i++)
            if (c->servers[i].id == id)
                c->servers[i].role = RAFT_VOTER;
        return 0;
    case RAFT_CONF_REMOVE:
        if (conf_remove(c, id) != 0)
            return CN_ENOTFOUND;
        if (raft_conf_voters(c) == 0)
            return CN_EINVAL;
        return 0;
    }
    return CN_EINVAL;
}

int raft_conf_change(struct raft *r, uint8_t op, raft_id id, raft_index *index)
{
    if (r->role != RAFT_LEADER)
        return CN_ENOTLEADER;
    if (r->transferee != 0 || r->conf_index > r->commit ||
        !committed_in_term(r))
        return CN_EBUSY;
    struct raft_conf c;
    int rc = conf_next(r, op, id, &c);
    if (rc != 0)
        return rc;
    struct cn_buf b;
    cn_buf_init(&b);
    rc = raft_conf_encode(&c, &b);
    if (rc == 0)
        rc = raft_log_append_new(r, RAFT_ENTRY_CONFIG, b.data, b.len, r->term);
    cn_buf_close(&b);
    if (rc != 0)
        return rc;
    *index = raft_log_last(r);
    RAFT_LOG(r, CN_LOG_INFO,
             "membership change node=%llu term=%llu op=%d server=%llu "
             "index=%llu",
             (unsigned long long)r->o.id, (unsigned long long)r->term, op,
             (unsigned long long)id, (unsigned long long)*index);
    raft_bcast_append(r);
    return 0;
}

/* --- transfer ------------------------------------------------------------ */

void raft_transfer_check(struct raft *r, struct raft_progress *pr)
{
    if (r->role != RAFT_LEADER || r->transferee != pr->id ||
        pr->match != raft_log_last(r))
        return;
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_TIMEOUT_NOW;
    m.to = pr->id;
    raft_send(r, &m, 0);
}

int raft_transfer(struct raft *r, raft_id to)
{
    if (r->role != RAFT_LEADER)
        return CN_ENOTLEADER;
    if (to == r->o.id)
        return 0;
    if (!raft_is_voter(r, to))
        return CN_EINVAL;
    if (r->transferee == to)
        return 0;
    r->transferee = to;
    r->transfer_deadline_ms = r->now_ms + r->o.election_timeout_ms;
    struct raft_progress *pr = raft_pr(r, to);
    CN_ASSERT(pr != NULL);
    raft_transfer_check(r, pr);
    if (r->transferee == to)
        while (raft_send_append(r, pr, 0))
            ;
    return 0;
}
