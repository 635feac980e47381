/*
 * Unit tests of the Raft core's rules, one core or a few wired by hand.
 * Messages travel encoded (so they outlive the update), persistence is
 * explicit unless a core is in auto-persist mode.
 */
#include "raft/raft.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define NODES 5
#define QMAX 4096

struct node {
    struct raft *r;
    int auto_persist;
    raft_index pend_index; /* last appended, not yet reported persisted */
    raft_term pend_term;
    raft_index applied;
    unsigned n_reads;
    struct raft_read_result reads[16];
};

static struct node nodes[NODES + 1];
static struct cn_buf queue[QMAX];
static size_t n_queue;
static uint64_t now_ms;

static struct raft_conf conf_of(unsigned voters, unsigned learners)
{
    struct raft_conf c;
    memset(&c, 0, sizeof(c));
    for (unsigned i = 1; i <= voters; i++)
        raft_conf_add(&c, i, RAFT_VOTER);
    for (unsigned i = voters + 1; i <= voters + learners; i++)
        raft_conf_add(&c, i, RAFT_LEARNER);
    return c;
}

static void opts(struct raft_options *o, raft_id id)
{
    raft_options_default(o);
    o->id = id;
    o->seed = id * 7919;
    o->election_timeout_ms = 100;
    o->heartbeat_ms = 10;
}

static struct raft *mk_with(const struct raft_options *o,
                            const struct raft_conf *c)
{
    struct raft *r;
    REQUIRE_EQ(raft_new(o, &r), 0);
    struct raft_hard_state hs = {0, 0, 0};
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.conf = *c;
    REQUIRE_EQ(raft_restore(r, &hs, &meta, NULL, 0, NULL, 0), 0);
    return r;
}

static int ev_simple(unsigned id, uint8_t type);

/* A cluster of n voters; all auto-persist. */
static void cluster(unsigned n, int pre_vote, int check_quorum)
{
    for (size_t i = 0; i < n_queue; i++)
        cn_buf_close(&queue[i]);
    n_queue = 0;
    now_ms = 0;
    struct raft_conf c = conf_of(n, 0);
    for (unsigned i = 1; i <= NODES; i++) {
        if (nodes[i].r)
            raft_free(nodes[i].r);
        memset(&nodes[i], 0, sizeof(nodes[i]));
        if (i > n)
            continue;
        struct raft_options o;
        opts(&o, i);
        o.pre_vote = pre_vote;
        o.check_quorum = check_quorum;
        nodes[i].r = mk_with(&o, &c);
        nodes[i].auto_persist = 1;
    }
    /* The first step starts each core's clock and election timer. */
    for (unsigned i = 1; i <= n; i++)
        ev_simple(i, RAFT_EVENT_TICK);
}

static int step(unsigned id, struct raft_event *ev, struct raft_update *out);

static void persist(unsigned id)
{
    struct node *n = &nodes[id];
    if (n->pend_index == 0)
        return;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PERSISTED;
    ev.persisted.index = n->pend_index;
    ev.persisted.term = n->pend_term;
    n->pend_index = 0;
    struct raft_update up;
    step(id, &ev, &up);
}

/* Steps and handles the update like a driver; out keeps the scalars and
 * counts. */
static int step(unsigned id, struct raft_event *ev, struct raft_update *out)
{
    struct node *n = &nodes[id];
    struct raft_update up;
    ev->now_ms = now_ms;
    int rc = raft_step(n->r, ev, &up);
    if (up.n_entries) {
        n->pend_index = up.entries[up.n_entries - 1].index;
        n->pend_term = up.entries[up.n_entries - 1].term;
    }
    for (unsigned k = 0; k < up.n_msgs && n_queue < QMAX; k++) {
        cn_buf_init(&queue[n_queue]);
        REQUIRE_EQ(raft_msg_encode(&up.msgs[k], &queue[n_queue]), 0);
        n_queue++;
    }
    if (up.n_committed)
        n->applied = up.committed[up.n_committed - 1].index;
    for (unsigned k = 0; k < up.n_reads && n->n_reads < 16; k++)
        n->reads[n->n_reads++] = up.reads[k];
    int install = up.snapshot_install;
    raft_index snap = up.snapshot.index;
    if (install)
        n->applied = snap;
    *out = up;
    raft_update_done(n->r, &up);
    if (install) {
        struct raft_event ap;
        memset(&ap, 0, sizeof(ap));
        ap.type = RAFT_EVENT_SNAPSHOT_APPLIED;
        ap.snapshot_applied.index = snap;
        struct raft_update u2;
        step(id, &ap, &u2);
    }
    if (n->auto_persist)
        persist(id);
    return rc;
}

static int ev_simple(unsigned id, uint8_t type)
{
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = type;
    struct raft_update up;
    return step(id, &ev, &up);
}

/* Delivers the messages queued now (FIFO), not those they cause, which
 * stay queued. Messages from or to nodes in cut_mask are dropped. */
static unsigned deliver_round(unsigned cut_mask)
{
    size_t end = n_queue;
    unsigned n = 0;
    for (size_t i = 0; i < end; i++) {
        struct raft_msg m;
        REQUIRE_EQ(raft_msg_decode(queue[i].data, queue[i].len, &m), 0);
        unsigned to = (unsigned)m.to;
        if (to <= NODES && nodes[to].r && !(cut_mask & (1u << to)) &&
            !(cut_mask & (1u << m.from))) {
            struct raft_event ev;
            memset(&ev, 0, sizeof(ev));
            ev.type = RAFT_EVENT_RECEIVE;
            ev.receive.msg = &m;
            struct raft_update up;
            step(to, &ev, &up);
            n++;
        }
        raft_msg_release(&m);
        cn_buf_close(&queue[i]);
    }
    memmove(queue, queue + end, (n_queue - end) * sizeof(queue[0]));
    n_queue -= end;
    return n;
}

/* Delivers until the network is quiet. */
static unsigned deliver_cut(unsigned cut_mask)
{
    unsigned n = 0;
    for (int round = 0; round < 100 && n_queue > 0; round++)
        n += deliver_round(cut_mask);
    return n;
}

static unsigned deliver(void)
{
    return deliver_cut(0);
}

static void drop_all(void)
{
    for (size_t i = 0; i < n_queue; i++)
        cn_buf_close(&queue[i]);
    n_queue = 0;
}

static struct raft_status st(unsigned id)
{
    struct raft_status s;
    raft_status(nodes[id].r, &s);
    return s;
}

/* Role of server who in node id's configuration, 0 if absent. */
static int role_in(unsigned id, raft_id who)
{
    struct raft_status s = st(id);
    const struct raft_server *sv = raft_conf_get(&s.conf, who);
    return sv ? sv->role : 0;
}

static unsigned voters_of(unsigned id)
{
    struct raft_status s = st(id);
    return raft_conf_voters(&s.conf);
}

static int propose(unsigned id, const char *cmd, struct raft_update *up)
{
    struct cn_slice sl = cn_slice_from_cstr(cmd);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_PROPOSE;
    ev.propose.cmds = &sl;
    ev.propose.n = 1;
    return step(id, &ev, up);
}

static void elect(unsigned id)
{
    REQUIRE_EQ(ev_simple(id, RAFT_EVENT_CAMPAIGN), 0);
    deliver();
    REQUIRE_EQ(st(id).role, RAFT_LEADER);
}

/* --- options, restore ------------------------------------------------- */

TEST(raft_new_rejects_bad_options)
{
    struct raft_options o;
    struct raft *r;
    opts(&o, 0);
    CHECK_EQ(raft_new(&o, &r), CN_EINVAL);
    opts(&o, 1);
    o.heartbeat_ms = o.election_timeout_ms;
    CHECK_EQ(raft_new(&o, &r), CN_EINVAL);
    opts(&o, 1);
    o.max_inflight = RAFT_INFLIGHT_MAX + 1;
    CHECK_EQ(raft_new(&o, &r), CN_EINVAL);
}

TEST(raft_restore_rejects_gaps_and_falling_terms)
{
    struct raft_options o;
    opts(&o, 1);
    struct raft *r;
    REQUIRE_EQ(raft_new(&o, &r), 0);
    struct raft_hard_state hs = {3, 0, 0};
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    struct raft_entry es[2] = {{2, 1, RAFT_ENTRY_NOOP, NULL, 0},
                               {1, 2, RAFT_ENTRY_NOOP, NULL, 0}};
    CHECK_EQ(raft_restore(r, &hs, &meta, NULL, 0, es, 2), CN_EINVAL);
    es[1].term = 2;
    es[1].index = 3;
    CHECK_EQ(raft_restore(r, &hs, &meta, NULL, 0, es, 2), CN_EINVAL);
    raft_free(r);
}

TEST(raft_restore_clamps_commit_to_log)
{
    struct raft_options o;
    opts(&o, 1);
    struct raft *r;
    REQUIRE_EQ(raft_new(&o, &r), 0);
    struct raft_hard_state hs = {2, 1, 9};
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    struct raft_entry es[2] = {{1, 1, RAFT_ENTRY_NOOP, NULL, 0},
                               {2, 2, RAFT_ENTRY_NOOP, NULL, 0}};
    REQUIRE_EQ(raft_restore(r, &hs, &meta, NULL, 0, es, 2), 0);
    struct raft_status s;
    raft_status(r, &s);
    CHECK_EQ(s.commit, 2);
    CHECK_EQ(s.term, 2);
    CHECK_EQ(s.vote, 1);
    raft_free(r);
}

static int freed_count;
static size_t freed_len;

static void counting_free(void *data, size_t len)
{
    freed_count++;
    freed_len = len;
    cn_free(data);
}

TEST(raft_restore_take_owns_the_bytes_until_a_newer_snapshot)
{
    struct raft_options o;
    opts(&o, 1);
    o.snapshot_trailing = 0; /* a snapshot compacts the whole log */
    struct raft *r;
    REQUIRE_EQ(raft_new(&o, &r), 0);
    struct raft_snapshot_meta meta;
    memset(&meta, 0, sizeof(meta));
    meta.index = 5;
    meta.term = 1;
    meta.conf = conf_of(1, 0);
    char *bytes = cn_malloc(6);
    REQUIRE(bytes != NULL);
    memcpy(bytes, "ABCDEF", 6);
    freed_count = 0;
    /* On an error the caller keeps them. */
    struct raft_hard_state hs = {1, 0, 7};
    struct raft_entry gap[1] = {
        {1, 7, RAFT_ENTRY_NOOP, NULL, 0}}; /* term, index */
    CHECK_EQ(raft_restore_take(r, &hs, &meta, bytes, 6, counting_free, gap, 1),
             CN_EINVAL);
    CHECK_EQ(freed_count, 0);
    /* The entries' payloads are taken too. */
    char *p6 = cn_malloc(1), *p7 = cn_malloc(1);
    REQUIRE(p6 != NULL && p7 != NULL);
    struct raft_entry es[2] = {{1, 6, RAFT_ENTRY_NOOP, p6, 0},
                               {1, 7, RAFT_ENTRY_NOOP, p7, 0}};
    REQUIRE_EQ(raft_restore_take(r, &hs, &meta, bytes, 6, counting_free, es, 2),
               0);
    /* Applying the committed entries lets a snapshot at 7 be taken. */
    struct raft_event ev;
    struct raft_update up;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TICK;
    REQUIRE_EQ(raft_step(r, &ev, &up), 0);
    CHECK_EQ(up.n_committed, 2);
    CHECK(up.released == NULL);
    raft_update_done(r, &up);
    CHECK_EQ(freed_count, 0);
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT_TAKEN;
    ev.snapshot_taken.index = 7;
    ev.snapshot_taken.data = "newer";
    ev.snapshot_taken.len = 5;
    REQUIRE_EQ(raft_step(r, &ev, &up), 0);
    /* The compacted entries' payloads go to the driver, to free off its
     * loop... */
    REQUIRE_EQ(up.n_garbage, 2);
    CHECK(up.garbage[0] == p6 && up.garbage[1] == p7);
    /* ...and the replaced bytes come back with their own free function. */
    CHECK(up.released == bytes);
    CHECK_EQ(up.released_len, 6);
    CHECK(up.released_free == counting_free);
    raft_update_done(r, &up); /* not taken by the driver: freed here */
    CHECK_EQ(freed_count, 1);
    CHECK_EQ(freed_len, 6);
    raft_free(r); /* the newer copy is the core's own: cn_free */
    CHECK_EQ(freed_count, 1);
}

/* --- election ------------------------------------------------------------ */

TEST(raft_single_voter_commits_only_after_persisting)
{
    cluster(1, 1, 1);
    nodes[1].auto_persist = 0;
    REQUIRE_EQ(ev_simple(1, RAFT_EVENT_CAMPAIGN), 0);
    CHECK_EQ(st(1).role, RAFT_LEADER);
    CHECK_EQ(st(1).last_index, 1); /* the no-op */
    CHECK_EQ(st(1).commit, 0);     /* not durable yet: 10.2.1 */
    persist(1);
    CHECK_EQ(st(1).commit, 1);
    CHECK_EQ(nodes[1].applied, 1);
}

TEST(raft_election_timeout_is_randomised_in_range)
{
    cluster(3, 1, 1);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TICK;
    struct raft_update up;
    int distinct = 0;
    uint64_t prev = 0;
    for (unsigned i = 1; i <= 3; i++) {
        step(i, &ev, &up);
        CHECK(up.next_timeout_ms >= 100 && up.next_timeout_ms < 200);
        distinct += up.next_timeout_ms != prev;
        prev = up.next_timeout_ms;
    }
    CHECK(distinct >= 2);
}

TEST(raft_timeout_starts_prevote_without_changing_term)
{
    cluster(3, 1, 1);
    now_ms = 1000;
    ev_simple(2, RAFT_EVENT_TICK);
    CHECK_EQ(st(2).role, RAFT_PRECANDIDATE);
    CHECK_EQ(st(2).term, 0);
    CHECK_EQ(n_queue, 2);
    deliver();
    CHECK_EQ(st(2).role, RAFT_LEADER);
    CHECK_EQ(st(2).term, 1);
}

TEST(raft_prevote_failure_leaves_terms_alone)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    raft_term t = st(1).term;
    /* Node 3 starts an election while the leader is alive: the others are
     * in the leader's lease and ignore it; no term moves anywhere. */
    now_ms = 50;
    ev_simple(3, RAFT_EVENT_CAMPAIGN);
    CHECK_EQ(st(3).role, RAFT_PRECANDIDATE);
    deliver();
    CHECK_EQ(st(1).term, t);
    CHECK_EQ(st(2).term, t);
    CHECK_EQ(st(3).term, t);
}

TEST(raft_vote_requires_up_to_date_log)
{
    cluster(3, 0, 0);
    elect(1);
    struct raft_update up;
    /* Node 3 misses entry 2. */
    REQUIRE_EQ(propose(1, "x", &up), 0);
    deliver_cut(1u << 3);
    REQUIRE_EQ(st(2).last_index, 2);
    REQUIRE_EQ(st(3).last_index, 1);
    /* 3 campaigns: 2 has a longer log and refuses; 1 is leader of the
     * same log and also refuses, so 3 loses. */
    ev_simple(3, RAFT_EVENT_CAMPAIGN);
    deliver();
    CHECK(st(3).role != RAFT_LEADER);
    /* 2 campaigns and wins. */
    ev_simple(2, RAFT_EVENT_CAMPAIGN);
    deliver();
    CHECK_EQ(st(2).role, RAFT_LEADER);
}

TEST(raft_votes_once_per_term)
{
    cluster(3, 0, 0);
    /* Craft two vote requests for term 5 from 2 and then 3. */
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE;
    m.term = 5;
    m.to = 1;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_RECEIVE;
    ev.receive.msg = &m;
    struct raft_update up;
    m.from = 2;
    step(1, &ev, &up);
    REQUIRE_EQ(up.n_msgs, 1);
    CHECK_EQ(up.msgs[0].reject, 0);
    CHECK(up.hard_state_sync); /* the vote must be durable first */
    CHECK_EQ(st(1).vote, 2);
    drop_all();
    m.from = 3;
    step(1, &ev, &up);
    REQUIRE_EQ(up.n_msgs, 1);
    CHECK_EQ(up.msgs[0].reject, 1);
    CHECK_EQ(st(1).vote, 2);
    drop_all();
    /* The same candidate may ask again (lost response). */
    m.from = 2;
    step(1, &ev, &up);
    CHECK_EQ(up.msgs[0].reject, 0);
    drop_all();
}

TEST(raft_lease_ignores_votes_unless_forced)
{
    cluster(3, 0, 1);
    elect(1);
    deliver();
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE;
    m.term = 9;
    m.from = 3;
    m.to = 2;
    m.index = 5;
    m.log_term = 9;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_RECEIVE;
    ev.receive.msg = &m;
    struct raft_update up;
    step(2, &ev, &up);
    CHECK_EQ(up.n_msgs, 0);
    CHECK_EQ(st(2).term, 1);
    m.force = 1; /* leadership transfer */
    step(2, &ev, &up);
    CHECK_EQ(st(2).term, 9);
    CHECK_EQ(st(2).vote, 3);
    drop_all();
}

TEST(raft_forced_campaign_wins_within_a_dead_leaders_lease)
{
    /* Pre-vote and check-quorum on: an ordinary campaign by 2 right after
     * leader 1 dies is refused by 3 (it heard from 1 within its lease);
     * a forced one (the driver saw 1's port refuse connections) wins. */
    cluster(3, 1, 1);
    elect(1);
    deliver();
    REQUIRE_EQ(ev_simple(2, RAFT_EVENT_CAMPAIGN), 0);
    deliver_cut(1u << 1);
    CHECK(st(2).role != RAFT_LEADER);
    CHECK_EQ(st(3).leader, 1);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CAMPAIGN;
    ev.campaign.force = 1;
    struct raft_update up;
    REQUIRE_EQ(step(2, &ev, &up), 0);
    deliver_cut(1u << 1);
    CHECK_EQ(st(2).role, RAFT_LEADER);
    CHECK_EQ(st(3).leader, 2);
    CHECK(st(2).term > st(1).term);
    drop_all();
}

TEST(raft_check_quorum_steps_isolated_leader_down)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    for (int i = 1; i <= 30; i++) {
        now_ms = (uint64_t)i * 10;
        ev_simple(1, RAFT_EVENT_TICK);
        drop_all(); /* the leader hears nothing back */
    }
    CHECK_EQ(st(1).role, RAFT_FOLLOWER);
    CHECK_EQ(st(1).leader, 0);
}

/* --- replication and commit ------------------------------------------------
 */

TEST(raft_propose_on_follower_names_the_leader)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    struct raft_update up;
    CHECK_EQ(propose(2, "x", &up), CN_ENOTLEADER);
    CHECK_EQ(up.leader, 1);
    CHECK_EQ(st(2).last_index, 1);
}

TEST(raft_follower_acks_only_after_persisting)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    nodes[2].auto_persist = 0;
    nodes[3].auto_persist = 0;
    struct raft_update up;
    REQUIRE_EQ(propose(1, "x", &up), 0);
    deliver();
    /* Followers hold the entry but have not acknowledged it. */
    CHECK_EQ(st(2).last_index, 2);
    CHECK_EQ(st(1).commit, 1);
    persist(2);
    deliver();
    CHECK_EQ(st(1).commit, 2);
}

TEST(raft_leader_counts_itself_only_after_persisting)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    nodes[1].auto_persist = 0;
    nodes[3].auto_persist = 0;
    struct raft_update up;
    REQUIRE_EQ(propose(1, "x", &up), 0);
    /* Entries go out before the leader's own fsync. */
    CHECK_EQ(n_queue, 2);
    deliver();
    /* Only node 2 acked durably; the leader's copy is not durable. */
    CHECK_EQ(st(1).commit, 1);
    persist(1);
    CHECK_EQ(st(1).commit, 2);
}

static void ack(unsigned from, unsigned to, raft_term term, raft_index index)
{
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND_RESP;
    m.from = from;
    m.to = to;
    m.term = term;
    m.index = index;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_RECEIVE;
    ev.receive.msg = &m;
    struct raft_update up;
    step(to, &ev, &up);
}

TEST(raft_leader_commits_only_current_term_entries)
{
    /* Raft paper Figure 8: an entry of an older term held by a majority is
     * not committed by counting; it commits with an entry of the current
     * term. */
    cluster(3, 0, 1);
    elect(1);
    deliver();
    struct raft_update up;
    REQUIRE_EQ(propose(1, "old", &up), 0); /* index 2, term 1 */
    drop_all();
    /* Cut off, 1 steps down (check-quorum), then campaigns for term 2
     * once the others' lease has run out. */
    for (int i = 1; i <= 30; i++) {
        now_ms = (uint64_t)i * 10;
        ev_simple(1, RAFT_EVENT_TICK);
        drop_all();
    }
    REQUIRE_EQ(st(1).role, RAFT_FOLLOWER);
    ev_simple(1, RAFT_EVENT_CAMPAIGN); /* term 2 */
    deliver_round(0);                  /* vote requests */
    deliver_round(0);                  /* grants */
    REQUIRE_EQ(st(1).role, RAFT_LEADER);
    REQUIRE_EQ(st(1).term, 2);
    REQUIRE_EQ(st(1).last_index, 3); /* the no-op of term 2 */
    drop_all();
    ack(2, 1, 2, 2);
    ack(3, 1, 2, 2);
    CHECK_EQ(st(1).commit, 1); /* index 2 is on all three, term 1 */
    ack(2, 1, 2, 3);
    CHECK_EQ(st(1).commit, 3);
    drop_all();
}

TEST(raft_follower_truncates_conflicting_suffix)
{
    cluster(3, 0, 0);
    elect(1);
    deliver();
    struct raft_update up;
    /* 1 appends two entries only it has. */
    propose(1, "a", &up);
    propose(1, "b", &up);
    drop_all();
    /* 2 becomes leader of term 2 with 3's vote and writes index 2. */
    ev_simple(2, RAFT_EVENT_CAMPAIGN);
    deliver_cut(1u << 1);
    REQUIRE_EQ(st(2).role, RAFT_LEADER);
    propose(2, "c", &up);
    deliver_cut(1u << 1);
    /* Now 1 hears from 2: its entries 2..3 of term 1 are replaced. */
    now_ms += 20;
    ev_simple(2, RAFT_EVENT_TICK);
    deliver();
    deliver();
    CHECK_EQ(st(1).last_index, 3);
    CHECK_EQ(raft_term_at(nodes[1].r, 2), 2);
    CHECK_EQ(raft_term_at(nodes[1].r, 3), 2);
    CHECK_EQ(st(1).commit, 3);
}

TEST(raft_reject_carries_conflict_hint)
{
    cluster(3, 0, 0);
    struct raft_msg m;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_APPEND;
    m.from = 2;
    m.to = 1;
    m.term = 3;
    m.index = 50;
    m.log_term = 3;
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_RECEIVE;
    ev.receive.msg = &m;
    struct raft_update up;
    step(1, &ev, &up);
    REQUIRE_EQ(up.n_msgs, 1);
    CHECK_EQ(up.msgs[0].type, RAFT_MSG_APPEND_RESP);
    CHECK_EQ(up.msgs[0].reject, 1);
    CHECK_EQ(up.msgs[0].index, 50);
    CHECK_EQ(up.msgs[0].hint, 0); /* our log is empty: start at 1 */
    drop_all();
}

TEST(raft_replicate_window_bounds_messages_in_flight)
{
    cluster(3, 1, 1);
    struct raft_options o;
    for (unsigned i = 1; i <= 3; i++) {
        raft_free(nodes[i].r);
        opts(&o, i);
        o.max_inflight = 2;
        o.max_entries_per_msg = 1;
        struct raft_conf c = conf_of(3, 0);
        nodes[i].r = mk_with(&o, &c);
    }
    elect(1);
    deliver(); /* both followers in replicate state */
    struct raft_update up;
    for (int k = 0; k < 5; k++)
        propose(1, "x", &up);
    /* One message per follower per entry, at most 2 in flight each. */
    unsigned to2 = 0;
    for (size_t i = 0; i < n_queue; i++) {
        struct raft_msg m;
        REQUIRE_EQ(raft_msg_decode(queue[i].data, queue[i].len, &m), 0);
        if (m.type == RAFT_MSG_APPEND && m.to == 2) {
            to2++;
            CHECK(m.n_entries <= 1);
        }
        raft_msg_release(&m);
    }
    CHECK_EQ(to2, 2);
    for (int k = 0; k < 10; k++)
        deliver();
    CHECK_EQ(st(1).commit, 6);
    CHECK_EQ(st(2).last_index, 6);
}

TEST(raft_propose_under_memory_failure_changes_nothing)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    struct raft_status before = st(1);
    int failures = 0;
    for (long n = 1; n <= 8; n++) {
        struct cn_slice sl = CN_SLICE_LIT("payload");
        struct raft_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.type = RAFT_EVENT_PROPOSE;
        ev.propose.cmds = &sl;
        ev.propose.n = 1;
        ev.now_ms = now_ms;
        struct raft_update up;
        cn_mem_fault_arm(n, 1);
        int rc = raft_step(nodes[1].r, &ev, &up);
        cn_mem_fault_disarm();
        raft_update_done(nodes[1].r, &up);
        if (rc == 0) {
            CHECK_EQ(st(1).last_index, before.last_index + 1);
            break;
        }
        failures++;
        CHECK_EQ(rc, CN_ENOMEM);
        CHECK_EQ(st(1).last_index, before.last_index);
    }
    CHECK(failures >= 1);
}

/* --- reads ---------------------------------------------------------------- */

static int read_req(unsigned id, uint64_t rid)
{
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_READ;
    ev.read.id = rid;
    struct raft_update up;
    return step(id, &ev, &up);
}

TEST(raft_read_index_needs_a_heartbeat_quorum)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    REQUIRE_EQ(read_req(1, 7), 0);
    CHECK_EQ(nodes[1].n_reads, 0);
    deliver_cut(1u << 2); /* node 3 answers: quorum with the leader */
    REQUIRE_EQ(nodes[1].n_reads, 1);
    CHECK_EQ(nodes[1].reads[0].id, 7);
    CHECK_EQ(nodes[1].reads[0].rc, 0);
    CHECK_EQ(nodes[1].reads[0].index, st(1).commit);
    CHECK_EQ(read_req(2, 8), CN_ENOTLEADER);
}

TEST(raft_read_index_batches_reads_into_one_round)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    read_req(1, 1);
    size_t first_round = n_queue;
    read_req(1, 2);
    read_req(1, 3);
    CHECK_EQ(n_queue, first_round); /* no new round while one is out */
    deliver();
    deliver();
    CHECK_EQ(nodes[1].n_reads, 3);
}

TEST(raft_read_index_waits_for_commit_in_term)
{
    cluster(3, 1, 1);
    nodes[1].auto_persist = 0;
    nodes[2].auto_persist = 0;
    nodes[3].auto_persist = 0;
    ev_simple(1, RAFT_EVENT_CAMPAIGN);
    deliver();
    REQUIRE_EQ(st(1).role, RAFT_LEADER);
    REQUIRE_EQ(st(1).commit, 0);
    read_req(1, 5);
    deliver();
    CHECK_EQ(nodes[1].n_reads, 0); /* the no-op is not committed */
    persist(1);
    persist(2);
    persist(3);
    deliver();
    deliver();
    REQUIRE_EQ(nodes[1].n_reads, 1);
    CHECK_EQ(nodes[1].reads[0].index, 1);
}

TEST(raft_reads_fail_when_leadership_is_lost)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    read_req(1, 9);
    drop_all();
    for (int i = 1; i <= 30; i++) {
        now_ms = (uint64_t)i * 10;
        ev_simple(1, RAFT_EVENT_TICK);
        drop_all();
    }
    REQUIRE_EQ(nodes[1].n_reads, 1);
    CHECK_EQ(nodes[1].reads[0].rc, CN_ENOTLEADER);
}

/* --- snapshots ---------------------------------------------------------------
 */

static void take_snapshot(unsigned id, raft_index idx)
{
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT_TAKEN;
    ev.snapshot_taken.index = idx;
    ev.snapshot_taken.data = "0123456789abcdefghijklmnopqrstuvwxyz";
    ev.snapshot_taken.len = 36;
    struct raft_update up;
    REQUIRE_EQ(step(id, &ev, &up), 0);
}

TEST(raft_lagging_follower_gets_chunked_snapshot)
{
    cluster(3, 1, 1);
    for (unsigned i = 1; i <= 3; i++) {
        raft_free(nodes[i].r);
        struct raft_options o;
        opts(&o, i);
        o.snapshot_trailing = 0;
        o.snapshot_chunk_bytes = 10;
        struct raft_conf c = conf_of(3, 0);
        nodes[i].r = mk_with(&o, &c);
    }
    elect(1);
    deliver();
    struct raft_update up;
    for (int k = 0; k < 4; k++) {
        propose(1, "x", &up);
        deliver_cut(1u << 3);
    }
    deliver_cut(1u << 3);
    REQUIRE_EQ(st(1).commit, 5);
    take_snapshot(1, 5);
    CHECK_EQ(st(1).first_index, 6);
    CHECK_EQ(st(1).snapshot_index, 5);
    unsigned chunks = 0;
    for (int round = 0; round < 20 && st(3).commit < 5; round++) {
        now_ms += 10;
        ev_simple(1, RAFT_EVENT_TICK);
        while (n_queue > 0) {
            for (size_t i = 0; i < n_queue; i++) {
                struct raft_msg m;
                REQUIRE_EQ(raft_msg_decode(queue[i].data, queue[i].len, &m), 0);
                chunks += m.type == RAFT_MSG_SNAPSHOT;
                raft_msg_release(&m);
            }
            deliver_round(0);
        }
    }
    CHECK_EQ(st(3).snapshot_index, 5);
    CHECK_EQ(st(3).commit, 5);
    CHECK(chunks >= 4); /* 36 bytes in chunks of 10 */
    propose(1, "after", &up);
    deliver();
    deliver();
    CHECK_EQ(st(3).last_index, 6);
}

TEST(raft_snapshot_of_unapplied_index_is_refused)
{
    cluster(1, 1, 1);
    elect(1);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_SNAPSHOT_TAKEN;
    ev.snapshot_taken.index = 5;
    struct raft_update up;
    CHECK_EQ(step(1, &ev, &up), CN_EINVAL);
}

/* --- transfer and membership
 * -------------------------------------------------- */

TEST(raft_transfer_hands_over_and_refuses_proposals_meanwhile)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    struct raft_update up;
    propose(1, "x", &up);
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_TRANSFER;
    ev.transfer.to = 3;
    REQUIRE_EQ(step(1, &ev, &up), 0);
    CHECK_EQ(propose(1, "y", &up), CN_EBUSY);
    for (int k = 0; k < 4; k++)
        deliver();
    CHECK_EQ(st(3).role, RAFT_LEADER);
    CHECK_EQ(st(1).role, RAFT_FOLLOWER);
    CHECK_EQ(st(3).term, 2);
}

static int conf_change(unsigned id, uint8_t op, raft_id who)
{
    struct raft_event ev;
    memset(&ev, 0, sizeof(ev));
    ev.type = RAFT_EVENT_CONF_CHANGE;
    ev.conf_change.op = op;
    ev.conf_change.id = who;
    struct raft_update up;
    return step(id, &ev, &up);
}

TEST(raft_membership_one_change_at_a_time_and_learner_promotion)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    /* A fresh server 4 with an empty configuration. */
    struct raft_options o;
    opts(&o, 4);
    struct raft_conf empty;
    memset(&empty, 0, sizeof(empty));
    nodes[4].r = mk_with(&o, &empty);
    nodes[4].auto_persist = 1;
    REQUIRE_EQ(conf_change(1, RAFT_CONF_ADD_LEARNER, 4), 0);
    /* Takes effect on append, before commit. */
    CHECK(role_in(1, 4) != 0);
    CHECK_EQ(conf_change(1, RAFT_CONF_REMOVE, 2), CN_EBUSY);
    for (int k = 0; k < 4; k++)
        deliver();
    CHECK_EQ(st(4).last_index, st(1).last_index);
    CHECK_EQ(role_in(4, 4), RAFT_LEARNER);
    /* A learner never campaigns. */
    CHECK_EQ(ev_simple(4, RAFT_EVENT_CAMPAIGN), CN_EINVAL);
    REQUIRE_EQ(conf_change(1, RAFT_CONF_PROMOTE, 4), 0);
    for (int k = 0; k < 4; k++)
        deliver();
    CHECK_EQ(role_in(4, 4), RAFT_VOTER);
    CHECK_EQ(voters_of(1), 4);
    CHECK_EQ(conf_change(2, RAFT_CONF_REMOVE, 3), CN_ENOTLEADER);
}

TEST(raft_removed_leader_steps_down_after_commit)
{
    cluster(3, 1, 1);
    elect(1);
    deliver();
    REQUIRE_EQ(conf_change(1, RAFT_CONF_REMOVE, 1), 0);
    CHECK_EQ(st(1).role, RAFT_LEADER); /* until the change commits */
    deliver();
    CHECK_EQ(st(1).role, RAFT_FOLLOWER);
    CHECK(role_in(2, 1) == 0);
}
