/*
 * raft: cairn's Raft consensus core, a pure state machine.
 *
 * The core does no I/O, reads no clock, starts no thread and allocates only
 * through cn_malloc. A driver feeds it events with raft_step() and carries out
 * the update it returns: save the hard state, append entries (after
 * truncating), send messages, apply committed entries, install a snapshot,
 * answer reads; then it calls raft_update_done() (etcd-io/raft's Advance()).
 * docs/raft.md gives the exact order the driver must follow.
 *
 * Features: leader election with randomised timeouts (seeded PRNG), pre-vote
 * and check-quorum (dissertation 9.6, 6.2); log replication with pipelining,
 * batching and per-follower flow control (probe / replicate / snapshot);
 * fast backtracking with a conflict (index, term) hint; commit of
 * current-term entries only, by counting (Raft paper, Figure 8); ReadIndex
 * (dissertation 6.4) batched over heartbeat rounds; leadership transfer
 * (TimeoutNow, dissertation 3.10); single-server membership changes with
 * non-voting learners (dissertation 4); snapshots, chunked InstallSnapshot
 * and log compaction (dissertation 5).
 *
 * Durability rule (dissertation 10.2.1): the leader may send entries before
 * its own fsync but counts itself toward a quorum only after the
 * RAFT_EVENT_PERSISTED event for them; a follower acknowledges entries only
 * after they are persisted.
 *
 * Invariants the core keeps: at most one vote per term (the vote is in the
 * hard state and must be durable before any message of the same update is
 * sent, see raft_update.hard_state_sync); a committed entry is never
 * truncated; commit only moves forward; a configuration takes effect as soon
 * as it is appended and at most one change is uncommitted.
 */
#ifndef RAFT_H
#define RAFT_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

typedef uint64_t raft_id;    /* server id; 0 means none */
typedef uint64_t raft_term;  /* election term */
typedef uint64_t raft_index; /* log position, first entry is 1 */

/* Most servers in one configuration (voters and learners). */
#define RAFT_SERVERS_MAX 16
/* Most AppendEntries messages in flight to one follower. */
#define RAFT_INFLIGHT_MAX 256

enum raft_role {
    RAFT_FOLLOWER = 1,
    RAFT_PRECANDIDATE = 2,
    RAFT_CANDIDATE = 3,
    RAFT_LEADER = 4,
};

enum raft_entry_type {
    RAFT_ENTRY_COMMAND = 1, /* opaque payload for the state machine */
    RAFT_ENTRY_NOOP = 2,    /* a new leader's first entry (empty) */
    RAFT_ENTRY_CONFIG = 3,  /* payload: raft_conf_encode() */
};

struct raft_entry {
    raft_term term;
    raft_index index;
    uint8_t type;    /* enum raft_entry_type */
    void *data;      /* owned by whoever built the entry, see each use */
    size_t data_len; /* bytes */
};

enum raft_server_role {
    RAFT_VOTER = 1,
    RAFT_LEARNER = 2, /* receives the log, never votes or counts */
};

struct raft_server {
    raft_id id;
    uint8_t role; /* enum raft_server_role */
};

struct raft_conf {
    unsigned n; /* servers used */
    struct raft_server servers[RAFT_SERVERS_MAX];
};

/* What must survive a crash besides the log (Raft paper, Figure 2). */
struct raft_hard_state {
    raft_term term;
    raft_id vote;      /* 0: voted for nobody in term */
    raft_index commit; /* advisory: may lag, never needs an fsync */
};

struct raft_snapshot_meta {
    raft_index index;      /* last entry covered */
    raft_term term;        /* its term */
    raft_index conf_index; /* index of the entry that set conf (0: initial) */
    struct raft_conf conf; /* configuration as of index */
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,      /* AppendEntries */
    RAFT_MSG_APPEND_RESP = 2, /* ack (index = match) or reject with hint */
    RAFT_MSG_VOTE = 3,        /* RequestVote */
    RAFT_MSG_VOTE_RESP = 4,
    RAFT_MSG_PREVOTE = 5, /* term = candidate's term + 1, nothing changes */
    RAFT_MSG_PREVOTE_RESP = 6,
    RAFT_MSG_HEARTBEAT = 7, /* commit + read round, no entries */
    RAFT_MSG_HEARTBEAT_RESP = 8,
    RAFT_MSG_SNAPSHOT = 9, /* one chunk of InstallSnapshot */
    RAFT_MSG_SNAPSHOT_RESP = 10,
    RAFT_MSG_TIMEOUT_NOW = 11, /* leadership transfer: campaign now */
};
#define RAFT_MSG_TYPE_MAX 11

/*
 * One message. Fields not listed for a type are zero.
 *   APPEND       index/log_term: entry before entries; commit; entries
 *   APPEND_RESP  reject=0: index = highest index known to match the leader
 *                reject=1: index = rejected prev index, hint/log_term =
 *                follower's guess of the last matching (index, term)
 *   VOTE/PREVOTE index/log_term: candidate's last entry; force: transfer
 *   *_RESP       reject
 *   HEARTBEAT    commit, ctx: read round;  HEARTBEAT_RESP ctx
 *   SNAPSHOT     snap, offset, chunk, last;  SNAPSHOT_RESP offset (next
 *                byte wanted), reject (offset restarts the transfer)
 */
struct raft_msg {
    uint8_t type; /* enum raft_msg_type */
    raft_id from;
    raft_id to;
    raft_term term;
    raft_index index;
    raft_term log_term;
    raft_index commit;
    raft_index hint;
    uint64_t ctx;
    uint8_t reject;
    uint8_t force;
    struct raft_entry *entries; /* borrowed, see raft_update / decode */
    unsigned n_entries;
    struct raft_snapshot_meta snap;
    uint64_t offset;   /* bytes */
    const void *chunk; /* borrowed, like entries */
    size_t chunk_len;  /* bytes */
    uint8_t last;      /* last chunk */
};

struct raft_options {
    raft_id id;                   /* this server, non-zero */
    uint64_t seed;                /* PRNG seed for election timeouts */
    unsigned election_timeout_ms; /* base; actual is random in [t, 2t) */
    unsigned heartbeat_ms;        /* leader heartbeat interval */
    int pre_vote;                 /* 1: pre-vote before each election */
    int check_quorum;             /* 1: leader steps down without quorum,
                                     followers ignore votes during lease */
    unsigned max_inflight;        /* AppendEntries in flight per follower */
    unsigned max_entries_per_msg; /* batching limit */
    size_t max_bytes_per_msg;     /* payload bytes per AppendEntries */
    size_t snapshot_chunk_bytes;  /* InstallSnapshot chunk size */
    raft_index snapshot_trailing; /* entries kept behind a snapshot */
    struct cn_logger logger;      /* copied; zero = silent */
};

/* Fills o with defaults (1000 ms election, 100 ms heartbeat, pre-vote and
 * check-quorum on, 64 in flight, 64 entries / 1 MiB per message, 64 KiB
 * chunks, 128 trailing entries); the caller sets id and seed. */
void raft_options_default(struct raft_options *o);

enum raft_event_type {
    RAFT_EVENT_TICK = 1,           /* time passed */
    RAFT_EVENT_RECEIVE = 2,        /* a message arrived */
    RAFT_EVENT_PROPOSE = 3,        /* leader: append commands */
    RAFT_EVENT_PERSISTED = 4,      /* the driver's fsync up to index finished */
    RAFT_EVENT_SNAPSHOT_TAKEN = 5, /* state machine saved at index */
    RAFT_EVENT_SNAPSHOT_APPLIED = 6, /* update.snapshot installed durably */
    RAFT_EVENT_READ = 7,             /* leader: ReadIndex request */
    RAFT_EVENT_CONF_CHANGE = 8,      /* leader: one membership change */
    RAFT_EVENT_TRANSFER = 9,         /* leader: hand leadership over */
    RAFT_EVENT_CAMPAIGN = 10,        /* start an election now */
};

enum raft_conf_op {
    RAFT_CONF_ADD_LEARNER = 1, /* new server, non-voting */
    RAFT_CONF_PROMOTE = 2,     /* learner that caught up becomes a voter */
    RAFT_CONF_REMOVE = 3,      /* voter or learner leaves */
};

struct raft_event {
    uint8_t type;    /* enum raft_event_type */
    uint64_t now_ms; /* driver's monotonic clock; the core keeps the max */
    union {
        struct {
            const struct raft_msg *msg; /* borrowed */
        } receive;
        struct {
            const struct cn_slice *cmds; /* borrowed; payloads are copied */
            unsigned n;
        } propose;
        struct {
            raft_index index; /* last entry made durable */
            raft_term term;   /* its term, as in the update */
        } persisted;
        struct {
            raft_index index; /* <= last applied index */
            const void *data; /* borrowed and copied; or, with give, */
            size_t len;       /* from cn_malloc and kept by the core */
            int give;         /* (freed with cn_free): no copy; on 0
                                 the core owns it, on an error the
                                 caller still does */
        } snapshot_taken;
        struct {
            raft_index index; /* update.snapshot.index */
        } snapshot_applied;
        struct {
            uint64_t id; /* driver's cookie, returned with the result */
        } read;
        struct {
            uint8_t op; /* enum raft_conf_op */
            raft_id id;
        } conf_change;
        struct {
            raft_id to;
        } transfer;
        struct {
            uint8_t force; /* 1: no pre-vote, and voters grant it even
                            * within a leader's lease (as TimeoutNow) */
        } campaign;
    };
};

struct raft_read_result {
    uint64_t id;      /* raft_event.read.id */
    raft_index index; /* serve once applied >= index */
    int rc;           /* 0, or CN_ENOTLEADER: leadership lost, retry */
};

/*
 * The work one raft_step() asks of the driver. Every pointer is borrowed from
 * the core and stays valid until raft_update_done(). Arrays are empty when
 * their count is zero.
 */
struct raft_update {
    /* Soft state, for the driver's information. */
    uint8_t role;
    raft_term term;
    raft_id leader; /* 0: unknown; proposals go here */

    /* Hard state: save when changed. hard_state_sync: term or vote changed,
     * so it must be durable before any message below is sent. */
    int hard_state_changed;
    int hard_state_sync;
    struct raft_hard_state hard_state;

    /* Snapshot received from the leader: install it into the state machine,
     * make it durable, discard the whole log, then step
     * RAFT_EVENT_SNAPSHOT_APPLIED. Precedes entries below. */
    int snapshot_install;
    struct raft_snapshot_meta snapshot;
    const void *snapshot_data;
    size_t snapshot_len;

    /* Log: delete entries with index >= truncate_from (0: none), then append
     * entries; when they are durable step RAFT_EVENT_PERSISTED with the last
     * one's (index, term). */
    raft_index truncate_from;
    struct raft_entry *entries;
    unsigned n_entries;

    /* Send after hard_state_sync is honoured; delivery may fail. */
    struct raft_msg *msgs;
    unsigned n_msgs;

    /* Apply in order; clients waiting on these indexes may be answered. */
    struct raft_entry *committed;
    unsigned n_committed;

    /* ReadIndex results ready. */
    struct raft_read_result *reads;
    unsigned n_reads;

    /* RAFT_EVENT_PROPOSE / CONF_CHANGE: where the first new entry went. */
    raft_index proposed_index;
    raft_term proposed_term;

    /* Step RAFT_EVENT_TICK no later than this (driver clock, ms). */
    uint64_t next_timeout_ms;

    /* The previous snapshot's bytes, replaced by a newer one: the driver
     * may take them (set released to NULL) and free them off its hot path,
     * as they can be large, with released_free (NULL: cn_free);
     * raft_update_done frees them otherwise. */
    void *released;
    size_t released_len;
    void (*released_free)(void *data, size_t len);

    /* Payloads of entries the log dropped at a compaction (thousands at
     * once): the driver may take the array (set garbage to NULL) and free
     * it off its hot path with raft_garbage_free; raft_update_done frees
     * it otherwise. */
    void **garbage;
    size_t n_garbage;
};

struct raft; /* opaque */

/*
 * Creates a core. o is copied. The core starts empty (term 0, no log, empty
 * configuration); call raft_restore() before the first raft_step().
 * Returns CN_EINVAL (o->id == 0, bad limits) or CN_ENOMEM.
 * *out is freed with raft_free().
 */
int raft_new(const struct raft_options *o, struct raft **out);
void raft_free(struct raft *r);

/*
 * Loads what the driver read back from disk: the hard state, the newest
 * snapshot (meta and data; meta->index may be 0 with the bootstrap
 * configuration and no data) and the entries after it, in order. Everything
 * is borrowed and copied. Entries must be contiguous and start at
 * meta->index + 1. Returns CN_EINVAL (gap, bad terms), CN_ENOMEM (r then
 * unusable: free it). Only before the first raft_step().
 */
int raft_restore(struct raft *r, const struct raft_hard_state *hs,
                 const struct raft_snapshot_meta *meta, const void *snap_data,
                 size_t snap_len, const struct raft_entry *entries,
                 unsigned n_entries);

/*
 * raft_restore, but the snapshot's bytes and the entries' payloads are
 * taken, not copied: on success the core owns them. It frees the snapshot
 * with snap_free(data, len) (NULL: cn_free), or hands it back through
 * raft_update.released (with released_free) once a newer snapshot replaces
 * it; each entries[i].data must come from cn_malloc (or be NULL). On an
 * error the caller still owns all of it. A restart maps a snapshot of hundreds
 * of MB from its file and gives it here with the log's entries.
 */
int raft_restore_take(struct raft *r, const struct raft_hard_state *hs,
                      const struct raft_snapshot_meta *meta, void *snap_data,
                      size_t snap_len, void (*snap_free)(void *, size_t),
                      const struct raft_entry *entries, unsigned n_entries);

/* Frees raft_update.garbage: each payload, then the array. */
void raft_garbage_free(void **garbage, size_t n);

/* Frees snapshot bytes with their free function (NULL: cn_free), as
 * raft_update.released must be. */
void raft_bytes_free(void *data, size_t len, void (*fr)(void *, size_t));

/*
 * Steps one event. up is filled (the caller's struct, previous contents
 * ignored) and must be passed to raft_update_done() before the next step,
 * whatever the return code.
 * Returns 0; CN_ENOTLEADER (propose/read/conf change/transfer on a
 * non-leader: up->leader names the leader to forward to, if known);
 * CN_EBUSY (a transfer is in progress, a membership change is uncommitted,
 * or the leader has not committed an entry in its term yet); CN_EINVAL (bad
 * event or argument); CN_EAGAIN (promote: learner not caught up yet);
 * CN_ENOMEM (state unchanged; messages that could not be queued count as
 * lost, which Raft tolerates).
 */
int raft_step(struct raft *r, const struct raft_event *ev,
              struct raft_update *up);

/* Advance(): the driver has carried out up. Releases its arrays. */
void raft_update_done(struct raft *r, struct raft_update *up);

/* Introspection (tests, status pages). */
struct raft_status {
    raft_id id;
    uint8_t role;
    raft_term term;
    raft_id vote;
    raft_id leader;
    raft_index commit;
    raft_index applied;   /* last entry handed out for apply */
    raft_index persisted; /* last entry the driver reported durable */
    raft_index first_index;
    raft_index last_index;
    raft_term last_term;
    raft_index snapshot_index;
    raft_index conf_index;
    struct raft_conf conf;
    raft_id transferee;
};
void raft_status(const struct raft *r, struct raft_status *st);
/* Term of the entry at index, 0 if it is not in the log (compacted or
 * beyond the end). Index 0 and the snapshot index are known. */
raft_term raft_term_at(const struct raft *r, raft_index index);
/* The entry at index (borrowed until the next step), NULL if absent. */
const struct raft_entry *raft_entry_at(const struct raft *r, raft_index index);
/* The metadata a snapshot taken at index (<= applied, still in the log)
 * must be saved with: term and configuration as of index. The driver saves
 * it with the snapshot data, durably, before stepping
 * RAFT_EVENT_SNAPSHOT_TAKEN. Returns CN_EINVAL if index is not in the log
 * or not yet applied. */
int raft_snapshot_meta_at(const struct raft *r, raft_index index,
                          struct raft_snapshot_meta *out);
const char *raft_role_name(int role);
const char *raft_msg_type_name(int type);

/* Configuration helpers. */
const struct raft_server *raft_conf_get(const struct raft_conf *c, raft_id id);
int raft_conf_add(struct raft_conf *c, raft_id id, int role);
unsigned raft_conf_voters(const struct raft_conf *c);

/*
 * Codecs. Every record is: version byte (RAFT_CODEC_VERSION), kind byte,
 * little-endian body, CRC-32C of all preceding bytes. Encoders append to out
 * and return 0 or CN_ENOMEM (out unchanged in length on failure). Decoders
 * check everything and return CN_ECORRUPT for any malformed input; they
 * read exactly len bytes.
 */
#define RAFT_CODEC_VERSION 1

int raft_msg_encode(const struct raft_msg *m, struct cn_buf *out);
/* m->entries is allocated (free with raft_msg_release); entry data and the
 * chunk point into p, which must outlive m. CN_ENOMEM possible. */
int raft_msg_decode(const void *p, size_t len, struct raft_msg *m);
void raft_msg_release(struct raft_msg *m);

int raft_entry_encode(const struct raft_entry *e, struct cn_buf *out);
/* e->data points into p (borrowed). */
int raft_entry_decode(const void *p, size_t len, struct raft_entry *e);

int raft_hard_state_encode(const struct raft_hard_state *hs,
                           struct cn_buf *out);
int raft_hard_state_decode(const void *p, size_t len,
                           struct raft_hard_state *hs);

int raft_snapshot_meta_encode(const struct raft_snapshot_meta *m,
                              struct cn_buf *out);
int raft_snapshot_meta_decode(const void *p, size_t len,
                              struct raft_snapshot_meta *m);

int raft_conf_encode(const struct raft_conf *c, struct cn_buf *out);
int raft_conf_decode(const void *p, size_t len, struct raft_conf *c);

#endif
