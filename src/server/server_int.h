/*
 * server_int: the server's private state, shared by server.c (pipeline,
 * watches, timers, data dir) and server_net.c (listeners, connections).
 * libuv is included here and in the server's .c files only.
 */
#ifndef CN_SERVER_INT_H
#define CN_SERVER_INT_H

#include <uv.h>

#include "server.h"
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
};

struct server_listener {
    uv_tcp_t tcp;
    struct server *srv;
    char url[300]; /* as printed */
};

/* Snapshot states (server_wal.c):
 *   IDLE --snap_start--> SAVING (wal_snap_save on a worker)
 *   SAVING --after work, ok--> MARKED (marker appended, not yet durable)
 *   SAVING --after work, error--> IDLE (logged; retried later)
 *   MARKED --batch covering the marker ends--> IDLE (after wal_purge) */
enum {
    SERVER_SNAP_IDLE = 0,
    SERVER_SNAP_SAVING,
    SERVER_SNAP_MARKED,
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
    int flush_scheduled;
    struct server_proposal sync_prop; /* the expiry SYNC in flight */
    int sync_pending;
    uint64_t raft_index; /* applied log index */
    uint64_t raft_term;
    /* durability (server_wal.c) */
    const struct cn_fs *fs;            /* posix, or fs_nosync */
    struct cn_fs fs_nosync;            /* --unsafe-no-fsync: syncs do nothing */
    struct cn_fs_file *wal_lock;       /* <data-dir>/LOCK */
    struct wal *wal;                   /* NULL until opened */
    struct cn_buf enc;                 /* scratch: one encoded command */
    uint64_t last_index;               /* last index appended to the log */
    struct server_proposal *wait_head; /* appended, waiting for fsync */
    struct server_proposal *wait_tail;
    uv_work_t batch_work;           /* runs wal_batch_run */
    struct wal_batch *batch;        /* in flight; NULL: none */
    int batch_rc;                   /* wal_batch_run's result */
    int wal_failed;                 /* sticky: no more writes */
    char wal_cause[CN_ERRMSG_SIZE]; /* cause for refused writes */
    int snap_state;                 /* SERVER_SNAP_* */
    uint64_t snap_index;            /* index of the newest snapshot */
    uint64_t snap_save_index;       /* the one being saved */
    uint64_t snap_marker_seq;       /* record number of its marker */
    struct cn_buf snap_buf;         /* its payload while SAVING */
    uv_work_t snap_work;
    int snap_rc;
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
/* Locks the data dir, opens the log and restores the store from the
 * newest snapshot and the entries after it. CN_ELOCKED, CN_ECORRUPT,
 * CN_EVERSION, CN_EIO, CN_ENOSPC, CN_ENOMEM with errmsg set. */
int server_wal_open(struct server *srv, char errmsg[CN_ERRMSG_SIZE]);
/* Closes the log and releases the lock (no batch may be in flight). */
void server_wal_close(struct server *srv);
/* Appends the queued proposals to the log and moves them to the wait
 * list; then, on the loop, starts a batch if none is in flight, or, when
 * the loop is not running (tests), syncs and applies at once. */
void server_wal_flush(struct server *srv);
/* Fails every waiting and queued proposal with rc (shutdown). */
void server_wal_fail_all(struct server *srv, int rc);

/* server.c */
/* Applies one proposal whose entry is durable and answers it. */
void server_apply_durable(struct server *srv, struct server_proposal *p);
/* Runs server_flush at the end of this loop iteration. */
void server_schedule_flush(struct server *srv);

/* server_net.c */
int server_net_listen(struct server *srv, char errmsg[CN_ERRMSG_SIZE]);
void server_net_close_all(struct server *srv);
void server_net_check_deadlines(struct server *srv);

#endif
