/*
 * raft_replication: AppendEntries, heartbeats, InstallSnapshot, flow
 * control and the commit rule.
 *
 * Leader, per follower (etcd-io/raft tracker.Progress):
 *
 *        reject / lost acks             entries compacted
 *   PROBE <---------------- REPLICATE    PROBE|REPLICATE ---------> SNAPSHOT
 *     |   ------------------>  ^                                     |
 *     |     ack (match found)  +------------ ack >= snapshot --------+
 *
 *   PROBE      one message in flight (paused until a reply or heartbeat
 *              reply); next is the guess being probed
 *   REPLICATE  next is optimistic; up to max_inflight messages in flight,
 *              each batching up to max_entries_per_msg / max_bytes_per_msg
 *   SNAPSHOT   chunks of the snapshot, one at a time, resent on heartbeat
 *              ticks without progress
 *
 * Commit (Raft paper 5.3, 5.4.2 and Figure 8): the leader commits index N
 * when a quorum of voters has N durable and the entry at N is of the current
 * term; the leader counts itself with its persisted index only
 * (dissertation 10.2.1). -DRAFT_BUG_COMMIT_OLD_TERM drops the term check.
 *
 * Follower: accepts entries when (prev index, prev term) matches, truncates
 * at the first conflict (never below commit), and acknowledges
 * min(persisted, confirmed): only entries that are durable and known to
 * match this leader's log (-DRAFT_BUG_ACK_BEFORE_PERSIST acks on receipt,
 * for the simulator to catch).
 */
#include "raft_int.h"

#include <stdlib.h>
#include <string.h>

static void infl_reset(struct raft_progress *pr)
{
    pr->infl_start = 0;
    pr->infl_count = 0;
}

static void infl_add(struct raft_progress *pr, raft_index last)
{
    unsigned i = (pr->infl_start + pr->infl_count) % RAFT_INFLIGHT_MAX;
    pr->infl[i] = last;
    pr->infl_count++;
}

static void infl_free_to(struct raft_progress *pr, raft_index index)
{
    while (pr->infl_count > 0 && pr->infl[pr->infl_start] <= index) {
        pr->infl_start = (pr->infl_start + 1) % RAFT_INFLIGHT_MAX;
        pr->infl_count--;
    }
}

void raft_pr_free_first(struct raft_progress *pr)
{
    if (pr->infl_count == 0)
        return;
    pr->infl_start = (pr->infl_start + 1) % RAFT_INFLIGHT_MAX;
    pr->infl_count--;
}

static void become_probe(struct raft *r, struct raft_progress *pr)
{
    raft_index next = pr->match + 1;
    if (pr->state == RAFT_PR_SNAPSHOT && pr->snap_index + 1 > next)
        next = pr->snap_index + 1;
    pr->state = RAFT_PR_PROBE;
    pr->next = next;
    pr->paused = 0;
    infl_reset(pr);
    CN_UNUSED(r);
}

static void become_replicate(struct raft_progress *pr)
{
    pr->state = RAFT_PR_REPLICATE;
    pr->next = pr->match + 1;
    pr->paused = 0;
    infl_reset(pr);
}

void raft_send_snapshot_chunk(struct raft *r, struct raft_progress *pr)
{
    if (pr->snap_index != r->snap.index || pr->snap_offset > r->snap_len) {
        pr->snap_index = r->snap.index;
        pr->snap_offset = 0;
    }
    size_t left = r->snap_len - pr->snap_offset;
    size_t n =
        left < r->o.snapshot_chunk_bytes ? left : r->o.snapshot_chunk_bytes;
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_SNAPSHOT;
    m.to = pr->id;
    m.snap = r->snap;
    m.offset = pr->snap_offset;
    m.chunk = n ? (const char *)r->snap_data + pr->snap_offset : NULL;
    m.chunk_len = n;
    m.last = n == left;
    raft_send(r, &m, 0);
}

static void start_snapshot(struct raft *r, struct raft_progress *pr)
{
    CN_ASSERT(r->snap.index >= r->base_index);
    pr->state = RAFT_PR_SNAPSHOT;
    pr->snap_index = r->snap.index;
    pr->snap_offset = 0;
    pr->snap_progress = 1;
    infl_reset(pr);
    raft_send_snapshot_chunk(r, pr);
}

/* Sends one AppendEntries to pr if flow control allows. empty: send even
 * without entries (a probe that carries the commit index). Returns 1 if a
 * message with entries went out. */
int raft_send_append(struct raft *r, struct raft_progress *pr, int empty)
{
    if (pr->id == r->o.id || pr->state == RAFT_PR_SNAPSHOT)
        return 0;
    if (pr->state == RAFT_PR_PROBE && pr->paused)
        return 0;
    if (pr->state == RAFT_PR_REPLICATE && pr->infl_count >= r->o.max_inflight)
        return 0;
    raft_index prev = pr->next - 1;
    raft_term prev_term;
    if (!raft_log_term(r, prev, &prev_term)) {
        start_snapshot(r, pr);
        return 0;
    }
    raft_index last = raft_log_last(r);
    unsigned n = 0;
    size_t bytes = 0;
    for (raft_index i = pr->next; i <= last && n < r->o.max_entries_per_msg;
         i++) {
        size_t len = raft_log_get(r, i)->data_len;
        if (n > 0 && bytes + len > r->o.max_bytes_per_msg)
            break;
        bytes += len;
        n++;
    }
    if (n == 0 && !empty && pr->state == RAFT_PR_REPLICATE)
        return 0;
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.to = pr->id;
    m.index = prev;
    m.log_term = prev_term;
    m.commit = r->commit;
    m.n_entries = n;
    raft_send(r, &m, pr->next);
    if (pr->state == RAFT_PR_REPLICATE) {
        if (n > 0) {
            pr->next += n;
            infl_add(pr, prev + n);
        }
    } else {
        pr->paused = 1;
    }
    return n > 0;
}

void raft_bcast_append(struct raft *r)
{
    for (unsigned i = 0; i < r->n_prs; i++)
        while (raft_send_append(r, &r->prs[i], 0))
            ;
}

void raft_bcast_heartbeat(struct raft *r)
{
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        if (pr->id == r->o.id)
            continue;
        struct raft_msg m;
        memset(&m, 0, sizeof(m));
        m.type = RAFT_MSG_HEARTBEAT;
        m.to = pr->id;
        m.commit = pr->match < r->commit ? pr->match : r->commit;
        m.ctx = r->read_seq;
        raft_send(r, &m, 0);
        if (pr->state == RAFT_PR_SNAPSHOT) {
            if (!pr->snap_progress)
                raft_send_snapshot_chunk(r, pr);
            pr->snap_progress = 0;
        }
    }
}

static int cmp_desc(const void *a, const void *b)
{
    raft_index x = *(const raft_index *)a, y = *(const raft_index *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Leader: advance commit by counting durable copies (see top). Returns 1
 * if commit moved. May step down (leader removed once its removal is
 * committed, dissertation 4.2.2). */
int raft_maybe_commit(struct raft *r)
{
    raft_index m[RAFT_SERVERS_MAX];
    unsigned n = 0;
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        if (!raft_is_voter(r, pr->id))
            continue;
        m[n++] = pr->id == r->o.id ? r->persisted : pr->match;
    }
    if (n == 0)
        return 0;
    qsort(m, n, sizeof(m[0]), cmp_desc);
    raft_index mci = m[raft_quorum(r) - 1];
    raft_term t;
    if (mci <= r->commit || !raft_log_term(r, mci, &t))
        return 0;
#ifndef RAFT_BUG_COMMIT_OLD_TERM
    if (t != r->term)
        return 0;
#endif
    raft_term before = 0;
    raft_log_term(r, r->commit, &before);
    r->commit = mci;
    if (before != r->term && t == r->term)
        raft_read_on_term_commit(r);
    if (!raft_is_voter(r, r->o.id) && r->conf_index <= r->commit)
        raft_become_follower(r, r->term, 0);
    return 1;
}

static int maybe_decr(struct raft_progress *pr, raft_index rejected,
                      raft_index hint)
{
    if (pr->state == RAFT_PR_REPLICATE) {
        if (rejected <= pr->match)
            return 0; /* stale */
        /* Resume right after the follower's last possible match, not at
         * match + 1: the follower may hold entries it has not yet made
         * durable (so not acknowledged), and resending them all on every
         * rejection feeds a storm of windows. */
        raft_index next = rejected < hint + 1 ? rejected : hint + 1;
        pr->next = next > pr->match + 1 ? next : pr->match + 1;
        return 1;
    }
    if (pr->next - 1 != rejected)
        return 0; /* stale: probes go one at a time */
    raft_index next = rejected < hint + 1 ? rejected : hint + 1;
    pr->next = next > pr->match + 1 ? next : pr->match + 1;
    pr->paused = 0;
    return 1;
}

static void recv_reject(struct raft *r, struct raft_progress *pr,
                        const struct raft_msg *m)
{
    if (pr->state == RAFT_PR_SNAPSHOT)
        return;
    raft_index probe = m->hint;
    if (m->log_term > 0) {
        raft_term ft;
        probe = raft_log_find_conflict(r, m->hint, m->log_term, &ft);
    }
    if (!maybe_decr(pr, m->index, probe))
        return;
    if (pr->state == RAFT_PR_REPLICATE) {
        pr->state = RAFT_PR_PROBE;
        pr->paused = 0;
        infl_reset(pr);
    }
    raft_send_append(r, pr, 1);
}

void raft_recv_append_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft_progress *pr = raft_pr(r, m->from);
    if (pr == NULL)
        return;
    if (m->reject) {
        recv_reject(r, pr, m);
        return;
    }
    if (m->index > raft_log_last(r))
        return;
    int updated = m->index > pr->match;
    if (updated)
        pr->match = m->index;
    if (pr->next < m->index + 1)
        pr->next = m->index + 1;
    /* Leave PROBE on progress, or on an ack of exactly the probed index
     * (the follower's log ends there). A stale ack of an older index must
     * not restart a full window. */
    if (pr->state == RAFT_PR_PROBE && (updated || m->index == pr->next - 1)) {
        become_replicate(pr);
    } else if (pr->state == RAFT_PR_SNAPSHOT) {
        if (pr->match >= pr->snap_index || pr->match + 1 > r->base_index) {
            become_probe(r, pr);
            become_replicate(pr);
        }
    } else if (pr->state == RAFT_PR_REPLICATE) {
        infl_free_to(pr, m->index);
    }
    if (updated && raft_maybe_commit(r) && r->role != RAFT_LEADER)
        return;
    while (raft_send_append(r, pr, 0))
        ;
    raft_transfer_check(r, pr);
}

void raft_recv_snapshot_resp(struct raft *r, const struct raft_msg *m)
{
    struct raft_progress *pr = raft_pr(r, m->from);
    if (pr == NULL || pr->state != RAFT_PR_SNAPSHOT)
        return;
    pr->snap_progress = 1;
    if (m->index != pr->snap_index)
        return; /* about an older snapshot */
    pr->snap_offset = m->offset <= r->snap_len ? m->offset : 0;
    raft_send_snapshot_chunk(r, pr);
}

/* --- follower ---------------------------------------------------------- */

void raft_follower_ack(struct raft *r)
{
    if (r->role != RAFT_FOLLOWER || r->leader == 0 || r->installing)
        return;
    raft_index a = r->persisted < r->confirmed ? r->persisted : r->confirmed;
#ifdef RAFT_BUG_ACK_BEFORE_PERSIST
    a = r->confirmed; /* deliberately broken: acks what is not durable */
#endif
    if (a >= r->confirmed)
        r->ack_pending = 0;
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND_RESP;
    m.to = r->leader;
    m.index = a;
    raft_send(r, &m, 0);
    if (a > r->acked)
        r->acked = a;
}

static void reject_append(struct raft *r, const struct raft_msg *m)
{
    raft_index last = raft_log_last(r);
    raft_term ht;
    raft_index h = raft_log_find_conflict(r, m->index < last ? m->index : last,
                                          m->log_term, &ht);
    struct raft_msg resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = RAFT_MSG_APPEND_RESP;
    resp.to = m->from;
    resp.reject = 1;
    resp.index = m->index;
    resp.hint = h;
    resp.log_term = ht;
    raft_send(r, &resp, 0);
}

/* Appends m's entries after the first that is not already in the log.
 * Returns 0, or -1 if the message must be dropped. */
static int append_new(struct raft *r, const struct raft_msg *m)
{
    unsigned i = 0;
    for (; i < m->n_entries; i++) {
        raft_index idx = m->index + 1 + i;
        raft_term t;
        if (!raft_log_term(r, idx, &t))
            break;
        if (t == m->entries[i].term)
            continue;
        if (idx <= r->commit) {
            RAFT_LOG(r, CN_LOG_ERROR,
                     "leader conflicts with committed entry node=%llu "
                     "term=%llu index=%llu",
                     (unsigned long long)r->o.id, (unsigned long long)r->term,
                     (unsigned long long)idx);
            return -1;
        }
        raft_log_truncate(r, idx);
        break;
    }
    if (i < m->n_entries &&
        raft_log_append(r, m->entries + i, m->n_entries - i) != 0)
        return -1; /* no memory: the leader will resend */
    return 0;
}

void raft_recv_append(struct raft *r, const struct raft_msg *m)
{
    if (r->installing)
        return; /* the leader retries after our snapshot ack */
    if (m->index < r->commit) {
        /* Entries up to commit match every later leader's log. */
        if (r->confirmed < r->commit)
            r->confirmed = r->commit;
        r->ack_pending = 1;
        raft_follower_ack(r);
        return;
    }
    raft_term t;
    if (!raft_log_term(r, m->index, &t) || t != m->log_term) {
        reject_append(r, m);
        return;
    }
    if (append_new(r, m) != 0)
        return;
    raft_index lastnew = m->index + m->n_entries;
    if (lastnew > r->confirmed)
        r->confirmed = lastnew;
    raft_index c = m->commit < lastnew ? m->commit : lastnew;
    if (c > r->commit)
        r->commit = c;
    /* Answer now if this message is durable already (a probe or a
     * duplicate needs its answer); otherwise the ack goes out when the
     * driver reports the fsync (raft_on_persisted). A partial ack now would
     * only make a probing leader resend what is in flight. */
    r->ack_pending = 1;
    raft_index durable = r->persisted;
#ifdef RAFT_BUG_ACK_BEFORE_PERSIST
    durable = lastnew;
#endif
    if (durable >= lastnew)
        raft_follower_ack(r);
}

void raft_recv_heartbeat(struct raft *r, const struct raft_msg *m)
{
    raft_index last = raft_log_last(r);
    raft_index c = m->commit < last ? m->commit : last;
    if (!r->installing && c > r->commit)
        r->commit = c;
    struct raft_msg resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = RAFT_MSG_HEARTBEAT_RESP;
    resp.to = m->from;
    resp.ctx = m->ctx;
    raft_send(r, &resp, 0);
}

static void install(struct raft *r, raft_id from)
{
    size_t len = 0;
    void *data = cn_buf_take(&r->recv_buf, &len);
    raft_snap_replace(r, data, len, NULL);
    r->snap = r->recv_meta;
    raft_log_reset(r, r->snap.index, r->snap.term);
    r->unstable_from = r->snap.index + 1;
    r->truncate_from = 0;
    r->commit = r->snap.index;
    r->applied = r->snap.index;
    r->persisted = 0;
    r->installing = 1;
    r->install_from = from;
    r->snap_emit = 1;
    raft_conf_refresh(r);
    RAFT_LOG(r, CN_LOG_INFO,
             "installing snapshot node=%llu term=%llu index=%llu",
             (unsigned long long)r->o.id, (unsigned long long)r->term,
             (unsigned long long)r->snap.index);
}

void raft_recv_snapshot(struct raft *r, const struct raft_msg *m)
{
    struct raft_msg resp;
    memset(&resp, 0, sizeof(resp));
    resp.to = m->from;
    if (r->installing)
        return;
    if (m->snap.index <= r->commit) {
        if (r->confirmed < r->commit)
            r->confirmed = r->commit;
        r->ack_pending = 1;
        raft_follower_ack(r);
        return;
    }
    raft_term t;
    if (raft_log_term(r, m->snap.index, &t) && t == m->snap.term) {
        /* Our log already holds the snapshot's last entry (we caught up
         * while the snapshot was in flight): keep the log, whose entries
         * beyond it may have been acknowledged, and just learn the commit
         * (etcd-io/raft restore() does the same). */
        r->commit = m->snap.index;
        if (r->confirmed < m->snap.index)
            r->confirmed = m->snap.index;
        r->ack_pending = 1;
        raft_follower_ack(r);
        return;
    }
    int same = r->recv_meta.index == m->snap.index &&
               r->recv_meta.term == m->snap.term;
    if (m->offset == 0) {
        r->recv_meta = m->snap;
        cn_buf_reset(&r->recv_buf);
    } else if (!same || r->recv_buf.len != m->offset) {
        resp.type = RAFT_MSG_SNAPSHOT_RESP;
        resp.reject = 1;
        resp.offset = same ? r->recv_buf.len : 0;
        resp.index = m->snap.index;
        raft_send(r, &resp, 0);
        return;
    }
    if (m->chunk_len &&
        cn_buf_append(&r->recv_buf, m->chunk, m->chunk_len) != 0)
        return;
    if (!m->last) {
        resp.type = RAFT_MSG_SNAPSHOT_RESP;
        resp.offset = r->recv_buf.len;
        resp.index = m->snap.index;
        raft_send(r, &resp, 0);
        return;
    }
    install(r, m->from);
}

void raft_on_persisted(struct raft *r, raft_index index, raft_term term)
{
    raft_term t;
    if (r->installing || index <= r->persisted ||
        !raft_log_term(r, index, &t) || t != term)
        return;
    r->persisted = index;
    if (r->role == RAFT_LEADER) {
        raft_maybe_commit(r);
        return;
    }
    raft_index a = r->persisted < r->confirmed ? r->persisted : r->confirmed;
    if (r->ack_pending && a > r->acked)
        raft_follower_ack(r);
}

void raft_on_snapshot_applied(struct raft *r, raft_index index)
{
    if (!r->installing || index != r->snap.index)
        return;
    r->installing = 0;
    if (r->persisted < index)
        r->persisted = index;
    if (r->leader == r->install_from && r->role == RAFT_FOLLOWER) {
        if (r->confirmed < index)
            r->confirmed = index;
        r->ack_pending = 1;
        raft_follower_ack(r);
    }
}
