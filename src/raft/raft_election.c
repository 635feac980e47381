/*
 * raft_election: roles, timers, pre-vote, votes and check-quorum.
 *
 * Rules (Raft paper 5.2, 5.4.1; dissertation 9.6 pre-vote, 6.2
 * check-quorum, 4.2.3 lease):
 *   - one vote per term; granted only to a candidate whose log is at least
 *     as up to date as ours (compile with -DRAFT_BUG_VOTE_NO_LOG_CHECK to
 *     break this on purpose: the simulator must catch it);
 *   - a pre-vote changes no state anywhere; it is granted to a higher term
 *     with an up-to-date log, so a partitioned or removed server never
 *     inflates terms;
 *   - while a node has heard from a leader within the election timeout it
 *     ignores vote requests (unless forced by a leadership transfer);
 *   - a leader that has not heard from a quorum within an election timeout
 *     steps down.
 */
#include "raft_int.h"

#include <string.h>

int raft_in_lease(const struct raft *r)
{
    if (!r->o.check_quorum || r->leader == 0)
        return 0;
    if (r->role == RAFT_LEADER)
        return 1;
    return r->now_ms - r->leader_seen_ms < r->o.election_timeout_ms;
}

static void set_leader(struct raft *r, raft_id leader)
{
    if (leader != r->leader) {
        r->confirmed = 0;
        r->acked = 0;
        r->ack_pending = 0;
    }
    r->leader = leader;
}

void raft_become_follower(struct raft *r, raft_term term, raft_id leader)
{
    if (r->role == RAFT_LEADER) {
        raft_read_fail_all(r);
        r->transferee = 0;
    }
    if (term != r->term) {
        CN_ASSERT(term > r->term);
        r->term = term;
        r->vote = 0;
        set_leader(r, 0);
    }
    set_leader(r, leader);
    if (leader != 0)
        r->leader_seen_ms = r->now_ms;
    r->role = RAFT_FOLLOWER;
    r->n_votes = 0;
    raft_reset_election_timer(r);
    RAFT_LOG(r, CN_LOG_DEBUG, "became follower node=%llu term=%llu leader=%llu",
             (unsigned long long)r->o.id, (unsigned long long)r->term,
             (unsigned long long)leader);
}

void raft_become_leader(struct raft *r)
{
    r->role = RAFT_LEADER;
    set_leader(r, r->o.id);
    r->transferee = 0;
    r->n_prs = 0;
    raft_prs_rebuild(r);
    r->n_reads = 0;
    r->read_seq = 0;
    r->read_confirmed = 0;
    r->heartbeat_deadline_ms = r->now_ms + r->o.heartbeat_ms;
    r->quorum_deadline_ms = r->now_ms + r->o.election_timeout_ms;
    RAFT_LOG(r, CN_LOG_INFO, "became leader node=%llu term=%llu",
             (unsigned long long)r->o.id, (unsigned long long)r->term);
    /* Raft paper 8 / dissertation 6.4: a no-op of the new term lets the
     * leader commit (and so serve reads) without waiting for a client. If it
     * cannot be allocated the first proposal plays its part. */
    if (raft_log_append_new(r, RAFT_ENTRY_NOOP, NULL, 0, r->term) != 0)
        RAFT_LOG(r, CN_LOG_WARN, "no memory for no-op node=%llu term=%llu",
                 (unsigned long long)r->o.id, (unsigned long long)r->term);
    raft_bcast_append(r);
    raft_maybe_commit(r); /* a single voter with nothing new to persist */
}

static void record_vote(struct raft *r, raft_id id, int granted)
{
    for (unsigned i = 0; i < r->n_votes; i++)
        if (r->votes[i].id == id)
            return;
    if (r->n_votes < RAFT_SERVERS_MAX) {
        r->votes[r->n_votes].id = id;
        r->votes[r->n_votes].granted = granted;
        r->n_votes++;
    }
}

/* 1 won, -1 lost, 0 pending. */
static int tally(const struct raft *r)
{
    unsigned yes = 0, no = 0;
    for (unsigned i = 0; i < r->n_votes; i++) {
        if (!raft_is_voter(r, r->votes[i].id))
            continue;
        if (r->votes[i].granted)
            yes++;
        else
            no++;
    }
    unsigned q = raft_quorum(r);
    if (yes >= q)
        return 1;
    if (raft_conf_voters(&r->conf) - no < q)
        return -1;
    return 0;
}

static void won(struct raft *r, int pre)
{
    if (pre)
        raft_campaign(r, 0, 0);
    else
        raft_become_leader(r);
}

/* Starts a (pre-)election: Raft paper 5.2, dissertation 9.6. force marks a
 * leadership transfer, which voters honour even during a lease. */
void raft_campaign(struct raft *r, int pre, int force)
{
    raft_term t;
    if (pre) {
        r->role = RAFT_PRECANDIDATE;
        t = r->term + 1;
        set_leader(r, 0);
    } else {
        r->term++;
        r->vote = r->o.id;
        r->role = RAFT_CANDIDATE;
        set_leader(r, 0);
        t = r->term;
    }
    r->n_votes = 0;
    raft_reset_election_timer(r);
    record_vote(r, r->o.id, 1);
    if (tally(r) == 1) {
        won(r, pre);
        return;
    }
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = pre ? RAFT_MSG_PREVOTE : RAFT_MSG_VOTE;
    m.term = t;
    m.index = raft_log_last(r);
    m.log_term = raft_log_last_term(r);
    m.force = (uint8_t)force;
    for (unsigned i = 0; i < r->conf.n; i++) {
        const struct raft_server *s = &r->conf.servers[i];
        if (s->role != RAFT_VOTER || s->id == r->o.id)
            continue;
        m.to = s->id;
        raft_send(r, &m, 0);
    }
}

void raft_recv_vote(struct raft *r, const struct raft_msg *m)
{
    int pre = m->type == RAFT_MSG_PREVOTE;
    int can = r->vote == m->from || (r->vote == 0 && r->leader == 0) ||
              (pre && m->term > r->term);
    int ok = can;
#ifndef RAFT_BUG_VOTE_NO_LOG_CHECK
    ok = ok && raft_log_up_to_date(r, m->index, m->log_term);
#endif
    struct raft_msg resp;
    memset(&resp, 0, sizeof(resp));
    resp.type = pre ? RAFT_MSG_PREVOTE_RESP : RAFT_MSG_VOTE_RESP;
    resp.to = m->from;
    if (ok) {
        resp.term = m->term;
        if (!pre) {
            r->vote = m->from;
            raft_reset_election_timer(r);
        }
    } else {
        resp.term = r->term;
        resp.reject = 1;
    }
    raft_send(r, &resp, 0);
}

void raft_recv_vote_resp(struct raft *r, const struct raft_msg *m)
{
    int pre = m->type == RAFT_MSG_PREVOTE_RESP;
    if (pre) {
        if (r->role != RAFT_PRECANDIDATE)
            return;
        if (!m->reject && m->term != r->term + 1)
            return; /* from an older round */
    } else if (r->role != RAFT_CANDIDATE) {
        return;
    }
    record_vote(r, m->from, !m->reject);
    int t = tally(r);
    if (t == 1)
        won(r, pre);
    else if (t == -1)
        raft_become_follower(r, r->term, 0);
}

static void check_quorum(struct raft *r)
{
    unsigned active = 0;
    for (unsigned i = 0; i < r->n_prs; i++) {
        struct raft_progress *pr = &r->prs[i];
        if (!raft_is_voter(r, pr->id))
            continue;
        if (pr->id == r->o.id || pr->recent_active)
            active++;
    }
    for (unsigned i = 0; i < r->n_prs; i++)
        r->prs[i].recent_active = 0;
    if (active < raft_quorum(r)) {
        RAFT_LOG(r, CN_LOG_INFO,
                 "lost quorum, stepping down node=%llu term=%llu",
                 (unsigned long long)r->o.id, (unsigned long long)r->term);
        raft_become_follower(r, r->term, 0);
    }
}

void raft_tick(struct raft *r)
{
    if (r->role == RAFT_LEADER) {
        if (r->now_ms >= r->heartbeat_deadline_ms) {
            r->heartbeat_deadline_ms = r->now_ms + r->o.heartbeat_ms;
            raft_bcast_heartbeat(r);
        }
        if (r->transferee != 0 && r->now_ms >= r->transfer_deadline_ms)
            r->transferee = 0; /* dissertation 3.10: abort */
        if (r->o.check_quorum && r->now_ms >= r->quorum_deadline_ms) {
            r->quorum_deadline_ms = r->now_ms + r->o.election_timeout_ms;
            check_quorum(r);
        }
        return;
    }
    if (r->now_ms < r->election_deadline_ms)
        return;
    if (raft_is_voter(r, r->o.id))
        raft_campaign(r, r->o.pre_vote, 0);
    else
        raft_reset_election_timer(r);
}
