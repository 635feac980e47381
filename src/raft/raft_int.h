/*
 * raft_int.h: the core's private state, shared by the files of src/raft/.
 *
 * Roles and transitions (Raft paper Figure 4, with pre-vote, dissertation
 * 9.6):
 *
 *            timeout (pre_vote)        prevote quorum
 *   FOLLOWER ------------------> PRECANDIDATE ------> CANDIDATE
 *      ^  |        timeout (no pre_vote) / TimeoutNow     |  vote quorum
 *      |  +-------------------------------------------->  |------------> LEADER
 *      +-- higher term, leader's message, lost quorum ----+----------------+
 *
 *   raft_become_follower()    any role, on a higher term, a current leader's
 *                             message, check-quorum failure, removal
 *   raft_campaign()           FOLLOWER/PRECANDIDATE/CANDIDATE on election
 *                             timeout, RAFT_EVENT_CAMPAIGN or TimeoutNow
 *   raft_become_leader()      CANDIDATE with a quorum of votes
 *
 * The log holds every entry after base_index in memory (entries up to the
 * snapshot are compacted away except snapshot_trailing of them). Indexes:
 *
 *   base_index < first .. applied <= commit .. persisted? .. last
 *
 * persisted is independent of commit: a follower may learn that an entry is
 * committed (on a quorum) before its own copy is durable.
 */
#ifndef RAFT_INT_H
#define RAFT_INT_H

#include "raft.h"

/* CN_LOG's parameter named level collides with the logger's field of the
 * same name, so the core uses its own gate (checked before formatting). */
#define RAFT_LOG(r, lvl, ...)                                                  \
    do {                                                                       \
        const struct cn_logger *raft_l_ = &(r)->o.logger;                      \
        if (raft_l_->fn != NULL && (lvl) >= raft_l_->level)                    \
            cn_log(raft_l_, (lvl), "raft", __VA_ARGS__);                       \
    } while (0)

enum raft_pr_state {
    RAFT_PR_PROBE = 1,     /* one AppendEntries at a time, find the match */
    RAFT_PR_REPLICATE = 2, /* pipelined, up to max_inflight messages */
    RAFT_PR_SNAPSHOT = 3,  /* sending InstallSnapshot chunks */
};

/* Leader's view of one server (etcd-io/raft tracker.Progress). */
struct raft_progress {
    raft_id id;
    uint8_t state;     /* enum raft_pr_state */
    raft_index match;  /* highest index known replicated (durable) */
    raft_index next;   /* next index to send */
    int paused;        /* PROBE: a message is outstanding */
    int recent_active; /* heard from since the last quorum check */
    uint64_t read_ack; /* highest read round acknowledged this term */
    raft_index infl[RAFT_INFLIGHT_MAX]; /* last index of each message */
    unsigned infl_start, infl_count;
    raft_index snap_index; /* SNAPSHOT: snapshot being sent */
    uint64_t snap_offset;  /* SNAPSHOT: bytes acknowledged */
    int snap_progress;     /* SNAPSHOT: ack seen since last heartbeat */
};

struct raft_pending_read {
    uint64_t id;
    raft_index index;
    uint64_t seq; /* read round that confirms it; 0: waiting for the
                     leader's first commit in its term */
};

struct raft_vote {
    raft_id id;
    int granted; /* 1 granted, 0 rejected */
};

struct raft {
    struct raft_options o;
    struct cn_prng prng;
    uint64_t now_ms;
    int started; /* the first step sets the clock and the election timer */

    /* Persistent state. */
    raft_term term;
    raft_id vote;
    raft_index commit;

    /* Volatile state. */
    uint8_t role;
    raft_id leader;
    uint64_t leader_seen_ms; /* last message from the current leader */
    uint64_t election_deadline_ms;
    uint64_t heartbeat_deadline_ms;
    uint64_t quorum_deadline_ms;
    raft_index applied;   /* handed to the driver for apply */
    raft_index persisted; /* durable per the driver */
    raft_index confirmed; /* follower: matches current leader */
    raft_index acked;     /* follower: last success ack sent */
    int ack_pending;      /* follower: owe an ack after persist */

    /* Log. ents[i].index == base_index + 1 + i. */
    struct raft_entry *ents;
    size_t n_ents, cap_ents;
    raft_index base_index;
    raft_term base_term;

    /* Snapshot (owned copy) and configuration. */
    struct raft_snapshot_meta snap;
    void *snap_data;
    size_t snap_len;
    void (*snap_free)(void *data, size_t len); /* its free; NULL: cn_free */
    void *released; /* replaced snapshot bytes, handed to the driver */
    void **garbage; /* payloads of compacted entries, handed to the driver */
    size_t n_garbage, cap_garbage;
    size_t released_len;
    void (*released_free)(void *data, size_t len);
    struct raft_conf conf; /* latest in the log (takes effect on append) */
    raft_index conf_index;

    /* Follower: snapshot being received / installed. */
    struct raft_snapshot_meta recv_meta;
    struct cn_buf recv_buf;
    int installing; /* emitted, waiting for SNAPSHOT_APPLIED */
    raft_id install_from;

    /* Candidate. */
    struct raft_vote votes[RAFT_SERVERS_MAX];
    unsigned n_votes;

    /* Leader. */
    struct raft_progress *prs;     /* one per server in conf */
    struct raft_progress *prs_tmp; /* scratch for raft_prs_rebuild() */
    unsigned n_prs;
    raft_id transferee;
    uint64_t transfer_deadline_ms;
    struct raft_pending_read *reads;
    size_t n_reads, cap_reads;
    uint64_t read_seq;       /* last read round started */
    uint64_t read_confirmed; /* last round confirmed by a quorum */

    /* The update being built / handed out. */
    int up_pending;
    struct raft_msg *q;  /* messages queued during the step */
    raft_index *q_first; /* APPEND: index of entries[0], resolved at the
                            end of the step (the log may move) */
    size_t n_q, cap_q;
    struct raft_read_result *ready;
    size_t n_ready, cap_ready;
    raft_index unstable_from;        /* first entry not yet handed out */
    raft_index truncate_from;        /* pending truncation for the driver */
    int snap_emit;                   /* emit recv snapshot in this update */
    struct raft_hard_state saved_hs; /* as of the last update */
    raft_index emitted_commit;       /* committed entries handed out up to */
};

/* raft_log.c */
raft_index raft_log_last(const struct raft *r);
raft_term raft_log_last_term(const struct raft *r);
/* 1 and *t set if the term at index is known. */
int raft_log_term(const struct raft *r, raft_index index, raft_term *t);
struct raft_entry *raft_log_get(const struct raft *r, raft_index index);
/* Appends copies; all or nothing. CN_ENOMEM. */
int raft_log_append(struct raft *r, const struct raft_entry *e, unsigned n);
/* raft_log_append, adopting each e[i].data (from cn_malloc) instead of
 * copying it; on CN_ENOMEM nothing is adopted. */
int raft_log_append_take(struct raft *r, const struct raft_entry *e,
                         unsigned n);
/* Appends one entry with the given payload copied. */
int raft_log_append_new(struct raft *r, uint8_t type, const void *data,
                        size_t len, raft_term term);
void raft_log_truncate(struct raft *r, raft_index from);
void raft_log_compact(struct raft *r, raft_index upto);
void raft_log_reset(struct raft *r, raft_index index, raft_term term);
void raft_log_free(struct raft *r);
int raft_log_up_to_date(const struct raft *r, raft_index last, raft_term term);
raft_index raft_log_find_conflict(const struct raft *r, raft_index index,
                                  raft_term term, raft_term *found_term);
void raft_conf_refresh(struct raft *r);
int raft_conf_at(const struct raft *r, raft_index index, struct raft_conf *c,
                 raft_index *conf_index);

/* raft.c */
void raft_send(struct raft *r, const struct raft_msg *m, raft_index first);
int raft_is_voter(const struct raft *r, raft_id id);
unsigned raft_quorum(const struct raft *r);
void raft_reset_election_timer(struct raft *r);
void raft_read_result(struct raft *r, uint64_t id, raft_index index, int rc);
void raft_prs_rebuild(struct raft *r);
struct raft_progress *raft_pr(struct raft *r, raft_id id);
int raft_conf_eq(const struct raft_conf *a, const struct raft_conf *b);

/* raft_election.c */
void raft_become_follower(struct raft *r, raft_term term, raft_id leader);
void raft_become_leader(struct raft *r);
void raft_campaign(struct raft *r, int pre, int force);
void raft_tick(struct raft *r);
void raft_recv_vote(struct raft *r, const struct raft_msg *m);
void raft_recv_vote_resp(struct raft *r, const struct raft_msg *m);
int raft_in_lease(const struct raft *r);

/* raft_replication.c */
int raft_send_append(struct raft *r, struct raft_progress *pr, int empty);
void raft_bcast_append(struct raft *r);
void raft_pr_free_first(struct raft_progress *pr);
void raft_bcast_heartbeat(struct raft *r);
int raft_maybe_commit(struct raft *r);
void raft_recv_append(struct raft *r, const struct raft_msg *m);
void raft_recv_append_resp(struct raft *r, const struct raft_msg *m);
void raft_recv_heartbeat(struct raft *r, const struct raft_msg *m);
void raft_recv_snapshot(struct raft *r, const struct raft_msg *m);
void raft_recv_snapshot_resp(struct raft *r, const struct raft_msg *m);
void raft_on_persisted(struct raft *r, raft_index index, raft_term term);
void raft_on_snapshot_applied(struct raft *r, raft_index index);
void raft_follower_ack(struct raft *r);
void raft_send_snapshot_chunk(struct raft *r, struct raft_progress *pr);

/* raft_read.c */
int raft_read_request(struct raft *r, uint64_t id);
void raft_read_on_term_commit(struct raft *r);
void raft_read_on_ack(struct raft *r);
void raft_read_fail_all(struct raft *r);
int raft_conf_change(struct raft *r, uint8_t op, raft_id id, raft_index *index);
int raft_transfer(struct raft *r, raft_id to);
void raft_transfer_check(struct raft *r, struct raft_progress *pr);

/* Makes data (owned, freed with fr) the snapshot's bytes; the old ones go
 * to the driver through the next update's released. */
void raft_snap_replace(struct raft *r, void *data, size_t len,
                       void (*fr)(void *, size_t));

#endif
