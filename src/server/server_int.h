/*
 * server_int: the server's private state, shared by server.c (pipeline,
 * watches, timers, data dir) and server_net.c (listeners, connections).
 * libuv is included here and in the server's .c files only.
 */
#ifndef CN_SERVER_INT_H
#define CN_SERVER_INT_H

#include <uv.h>

#include "raft/raft.h"
#include "server.h"
#include "server_members.h"
#include "server_peer.h"
#include "wal/wal.h"

/* CN_LOG in base/cn_log.h names its macro parameter "level", which also
 * rewrites "(l)->level"; this variant avoids that until it is fixed. */
#define SRV_LOG(l, lvl, ...)                                                   \
    do {                                                                       \
        if ((l)->fn != NULL && (lvl) >= (l)->level)                            \
            cn_log((l), (lvl), "server", __VA_ARGS__);                         \
    } while (0)

#define SERVER_LISTENERS_MAX CN_CONFIG_URLS_MAX
#define SERVER_READ_BUF_BYTES (64u * 1024)
#define SERVER_DEADLINE_CHECK_MS 1000u

struct server_conn {
    uv_tcp_t tcp;             /* first: handle->data is the conn */
    struct server *srv;       /* borrowed */
    void *state;              /* the protocol's; NULL until opened */
    struct server_conn *prev; /* srv->conns list */
    struct server_conn *next;
    uv_write_t wreq;      /* the one write in flight */
    server_write_fn *wcb; /* NULL: no write in flight */
    void *warg;
    uint64_t deadline_ms; /* uv_now() ms; 0: none */
    int reading;          /* uv_read_start active */
    int closing;          /* uv_close called */
    /* A write done at once (uv_try_write) waits on srv->wdone_* for its
     * callback, which runs later on the loop as the contract says. */
    struct server_conn *wdone_next;
    int wdone;        /* on the list */
    int wdone_status; /* CN_OK or CN_EIO */
};

struct server_listener {
    uv_tcp_t tcp;
    struct server *srv;
    char url[300]; /* as printed */
};

/* Snapshot states (server_wal.c):
 *   IDLE --snap_start--> SAVING (a forked child encodes and saves)
 *   SAVING --after work, ok--> MARKED (marker appended, not yet durable)
 *   SAVING --after work, error--> IDLE (logged; retried later)
 *   MARKED --batch covering the marker ends--> IDLE (after wal_purge) */
enum {
    SERVER_SNAP_IDLE = 0,
    SERVER_SNAP_SAVING,
    SERVER_SNAP_MARKED,
};

/* Peer message types of the driver, beside Raft's (1..RAFT_MSG_TYPE_MAX). */
enum {
    SERVER_MSG_FORWARD = 32,      /* follower -> leader: commands to propose */
    SERVER_MSG_FORWARD_NACK = 33, /* leader -> follower: not proposed */
    SERVER_MSG_READ = 34,         /* follower -> leader: ReadIndex request */
    SERVER_MSG_READ_RESP = 35,    /* leader -> follower: its result */
};

/* Internal proposal ops beside enum server_op. */
#define SERVER_OP_ATTR 16 /* publish this member's name and client URLs */

/* A ReadIndex the leader runs for a follower. */
struct server_remote_read {
    uint64_t from;
    uint64_t their_cookie;
    uint64_t my_cookie;
};

/* id -> watch, open addressing with linear probing, backward-shift
 * deletion; capacity a power of two, at most half full. */
struct server_watch_map {
    uint64_t *ids; /* 0: empty slot */
    struct server_watch **ws;
    size_t cap;
    size_t count;
};

struct server {
    struct cn_config cfg;
    struct cn_logger logger;
    uv_loop_t loop;
    int loop_ready;
    struct store *store;
    /* pipeline */
    struct server_proposal *queue_head; /* pending, in proposal order */
    struct server_proposal *queue_tail;
    uv_idle_t flush_idle; /* runs server_flush when work is queued */
    /* client writes done at once, whose callbacks are still to run
     * (server_net.c): drained after every poll (check) and before the next
     * (idle, so the poll does not block while some wait) */
    uv_check_t wdone_check;
    uv_idle_t wdone_idle;
    struct server_conn *wdone_head;
    struct server_conn *wdone_tail;
    int flush_scheduled;
    struct server_proposal sync_prop; /* the expiry SYNC in flight */
    int sync_pending;
    uint64_t raft_index; /* applied log index */
    uint64_t raft_term;  /* current term */
    /* raft (server_raft.c) */
    struct raft *raft;
    struct server_members members;
    struct server_peers *peers;
    uint64_t leader_id;
    int role;
    int in_step;
    int last_step_rc; /* raft_step's result in the last raft_step_event */
    uint64_t req_seq;
    struct server_proposal *fl_head; /* in flight: proposed, forwarded or */
    struct server_proposal *fl_tail; /* waiting for a leader, by req_id */
    struct server_read *reads;       /* pending linearizable reads */
    uint64_t read_seq;
    struct server_remote_read *rreads;
    size_t n_rreads;
    size_t cap_rreads;
    struct cn_buf prop_enc; /* scratch: proposals being encoded */
    struct cn_buf msg_enc;  /* scratch: one peer message */
    struct cn_buf hold;     /* messages held until hold_seq is durable */
    uint64_t hold_seq;
    uint64_t hs_commit_saved; /* commit index of the last hard state */
    uv_timer_t tick_timer;
    uv_timer_t house_timer;
    uv_timer_t stop_timer;
    int stop_transfer; /* graceful stop: leadership moving away */
    uint64_t request_timeout_ms;
    struct server_proposal attr_prop; /* publishing our attributes */
    int attr_state;                   /* 0 to do, 1 in flight, 2 done */
    int removed_self;                 /* this member was removed */
    uint64_t gone_leader;             /* a leader whose peer port refuses us */
    uint64_t gone_term;               /* in that term */
    uint64_t gone_since_ms; /* since (0: the leader is not known gone) */
    int gone_tried;         /* we campaigned for it already */
    int serving;            /* client listeners opened */
    int run_rc;             /* server_run's result */
    char run_errmsg[CN_ERRMSG_SIZE];
    uint64_t snap_applied_index; /* installed snapshot awaiting its */
    uint64_t snap_applied_seq;   /* marker's fsync (0: none) */
    struct server_raft_stats rstats;
    uint64_t rate_last_ms;
    uint64_t rate_sent_msgs, rate_sent_bytes, rate_recv_msgs, rate_recv_bytes;
    uint64_t sent_msgs, sent_bytes, recv_msgs, recv_bytes;
    /* durability (server_wal.c) */
    const struct cn_fs *fs;         /* posix, or fs_nosync */
    struct cn_fs fs_nosync;         /* --unsafe-no-fsync: syncs do nothing */
    struct cn_fs_file *wal_lock;    /* <data-dir>/LOCK */
    struct wal *wal;                /* NULL until opened */
    struct cn_buf enc;              /* scratch: one log record payload */
    uint64_t last_index;            /* last index appended to the log */
    uv_work_t batch_work;           /* runs wal_batch_run */
    struct wal_batch *batch;        /* in flight; NULL: none */
    int batch_rc;                   /* wal_batch_run's result */
    int wal_failed;                 /* sticky: no more writes */
    char wal_cause[CN_ERRMSG_SIZE]; /* cause for refused writes */
    int snap_state;                 /* SERVER_SNAP_* */
    uint64_t snap_index;            /* index of the newest snapshot */
    uint64_t snap_save_index;       /* the one being saved */
    uint64_t snap_save_term;
    uint64_t snap_marker_seq; /* record number of its marker */
    struct cn_buf snap_buf;   /* its payload while SAVING */
    uv_pipe_t snap_pipe;      /* the snapshot child's payload, as it comes */
    int snap_pid;             /* that child (0: none) */
    int snap_pipe_live;       /* snap_pipe initialised, close not done */
    int64_t snap_fork_ns;     /* how long fork() held the loop */
    int64_t boot_read_ns;     /* start: reading the log and snapshot */
    int booting;              /* in server_new: no snapshot yet (a restart
                               * serves first, snapshots later) */
    char snap_errmsg[CN_ERRMSG_SIZE];
    /* watches */
    struct server_watch_map watches;
    /* timers and signals */
    uv_timer_t expire_timer;
    uv_timer_t deadline_timer;
    uv_signal_t sig_int;
    uv_signal_t sig_term;
    int handles_started;
    int stopping;
    /* network */
    struct server_proto proto;
    struct server_listener listeners[SERVER_LISTENERS_MAX];
    int listener_count;
    struct server_conn *conns;
    char *read_buf; /* shared by all reads (one callback at a time) */
    int read_buf_busy;
    /* identity, clock, data dir */
    uint64_t member_id;
    uint64_t cluster_id;
    int64_t start_ns;
    server_clock_fn *clock_fn;
    void *clock_ctx;
    struct server_stats stats;
};

/* server_wal.c */
/* Locks the data dir, opens the log and hands what it recovered to
 * server_raft_boot. CN_ELOCKED, CN_ECORRUPT, CN_EVERSION, CN_EIO,
 * CN_ENOSPC, CN_ENOMEM with errmsg set. */
int server_wal_open(struct server *srv, char errmsg[CN_ERRMSG_SIZE]);
/* Closes the log and releases the lock (no batch may be in flight). */
void server_wal_close(struct server *srv);
/* Starts a batch with everything appended (on the loop), or, when the
 * loop is not running (tests), syncs at once. */
void server_wal_kick(struct server *srv);
/* The log failed (rc): refuse writes from now on, say so once. */
void server_wal_failed(struct server *srv, int rc);
/* Starts a snapshot if --snapshot-count entries were applied since the
 * last one. */
void server_snap_maybe_start(struct server *srv);
/* Writes the encoded snapshot data (index, term) durably and appends its
 * marker (a snapshot received from the leader, or the bootstrap one);
 * *seq gets the marker's record number. */
int server_wal_install(struct server *srv, uint64_t index, uint64_t term,
                       struct cn_slice data, uint64_t *seq);

/* server_raft.c */
/* Builds the Raft core from what the log recovered: a new member
 * bootstraps (static list, discovery, or joining), a restarted one
 * restores. Applies nothing yet (server_raft_start does). */
int server_raft_boot(struct server *srv, struct wal_recovery *rec,
                     char errmsg[CN_ERRMSG_SIZE]);
/* First step after boot: applies the committed log; a single voter
 * campaigns at once. */
void server_raft_start(struct server *srv);
/* Starts the peer transport and the Raft timers (server_run). */
int server_raft_run(struct server *srv, char errmsg[CN_ERRMSG_SIZE]);
/* Stops timers and closes the transport (server_stop). */
void server_raft_stop(struct server *srv);
void server_raft_free(struct server *srv);
/* A batch made everything up to pos durable. */
void server_raft_persisted(struct server *srv, const struct wal_pos *pos);
/* A snapshot taken here is durable (its marker synced). data must come
 * from cn_malloc: on CN_OK Raft owns it now (the caller forgets it). */
int server_raft_snapshot_taken(struct server *srv, uint64_t index,
                               struct cn_slice data);
/* Encodes the snapshot data of the current state at the applied index. */
int server_raft_snapshot_data(struct server *srv, struct cn_buf *out,
                              uint64_t *term);
/* Proposes or forwards the queued proposals and reads. */
void server_raft_flush(struct server *srv);
/* Fails every queued and in-flight proposal (and, unless rc is
 * CN_ESTOPPED, every read) with rc. */
void server_raft_fail_all(struct server *srv, int rc);
/* Graceful stop: hand leadership over first. Returns 1 if a transfer
 * started (server_stop follows when it ends). */
int server_raft_transfer_before_stop(struct server *srv);

/* server.c */
/* Runs server_flush at the end of this loop iteration. */
void server_schedule_flush(struct server *srv);
/* Hands the store's watch deliveries to their watchers. */
void server_deliver(struct server *srv);
/* Ends every watch (the store was replaced by a snapshot). */
void server_end_watches(struct server *srv);
/* Opens the client listeners: once this member's attributes are
 * committed, as etcd serves clients only once it has published them. */
void server_serve_clients(struct server *srv);

/* server_net.c */
void server_net_init(struct server *srv); /* with the loop */
int server_net_listen(struct server *srv, char errmsg[CN_ERRMSG_SIZE]);
void server_net_close_all(struct server *srv);
void server_net_check_deadlines(struct server *srv);

#endif
