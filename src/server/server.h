/*
 * server: the driver of one cairn node. It owns the event loop, the client
 * listeners and connections, the clock, the write-ahead log, the store and
 * the apply pipeline; it is the only module that touches sockets, files
 * and time.
 *
 * Apply pipeline (see docs/server.md):
 *
 *   server_propose() --> queue --> [end of loop iteration] wal_append_entry
 *        --> wait list --> wal_batch_run on a worker (pwrite + fdatasync,
 *            one fsync for everything appended meanwhile: group commit)
 *        --> [Raft commit, later] --> store_apply() --> callback
 *
 * A proposal is asynchronous from the caller's view, never applied inside
 * server_propose(). It is applied and answered only after the log record
 * holding it is durable, so an answered write survives kill -9 and power
 * loss. After every apply the store's watch deliveries are drained and
 * handed to the watchers registered with server_watch().
 *
 * Connections: the server accepts TCP clients and hands their bytes to a
 * protocol (struct server_proto, installed by the HTTP layer). The protocol
 * writes back with server_conn_write(); at most one write is outstanding
 * per connection.
 *
 * Invariants: proposals are applied in the order they were appended to the
 * log, each at its log index (X-Raft-Index), so a restart that replays the
 * log rebuilds the same store with the same indexes; nothing is applied or
 * answered before it is durable; after a failed log write or fsync no
 * write is taken again (sticky) while reads go on; a watcher's callback is
 * never called after server_unwatch().
 */
#ifndef CN_SERVER_H
#define CN_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "config/config.h"
#include "store/store.h"

struct server;      /* opaque */
struct server_conn; /* opaque: one client connection */

/* The protocol spoken on client connections. Callbacks run on the loop. */
struct server_proto {
    /* A client connected. Returns the protocol's state for it, or NULL to
     * refuse (the connection is closed, closed() is not called). */
    void *(*open)(void *ctx, struct server_conn *conn);
    /* Bytes arrived; buf is borrowed for the call. */
    void (*data)(void *state, const char *buf, size_t len);
    /* The connection is gone (peer closed, error, timeout, shutdown, or
     * server_conn_close()); conn must not be used after this returns. */
    void (*closed)(void *state);
    void *ctx; /* borrowed; passed to open */
};

/* Creates a node from cfg (borrowed; the server keeps a copy): locks the
 * data dir (<data-dir>/LOCK), opens its write-ahead log and restores the
 * store from the newest snapshot plus the log after it (a torn tail is cut
 * and logged). Does not listen yet. logger is copied (NULL: silent).
 * Returns CN_OK, CN_ENOMEM, CN_EIO, CN_ENOSPC, CN_ELOCKED when another
 * process holds the data dir, CN_ECORRUPT or CN_EVERSION when the log or
 * snapshots are damaged or too new; errmsg says why (for damage: the file,
 * the byte offset and how to recover). */
int server_new(struct server **out, const struct cn_config *cfg,
               const struct cn_logger *logger, char errmsg[CN_ERRMSG_SIZE]);
/* Stops everything still running and frees srv. NULL is a no-op. */
void server_free(struct server *srv);

/* Installs the protocol for client connections (copied). */
void server_set_proto(struct server *srv, const struct server_proto *proto);

/* Listens on every --listen-client-urls address (printing "cairn: listening
 * for client requests on URL" for each), then runs the loop until SIGINT,
 * SIGTERM or server_stop(). Returns CN_OK after a graceful stop, or
 * CN_EIO with errmsg set when an address cannot be bound. */
int server_run(struct server *srv, char errmsg[CN_ERRMSG_SIZE]);
/* Asks the loop to stop: closes listeners, connections and timers. */
void server_stop(struct server *srv);

/* ---- connections ---- */

typedef void server_write_fn(void *arg, int status);
/* Writes iov[0..n) (n <= SERVER_IOV_MAX) in order. The bytes are borrowed
 * until cb runs (always later, on the loop) with 0 or a CN_E* code (also
 * when the connection closes first). One write at a time. Returns CN_OK, or
 * CN_ECLOSED/CN_EIO if nothing was started (cb is then not called). */
#define SERVER_IOV_MAX 64
int server_conn_write(struct server_conn *conn, const struct cn_slice *iov,
                      unsigned n, server_write_fn *cb, void *arg);
/* Closes the connection; the proto's closed() follows on the loop. */
void server_conn_close(struct server_conn *conn);
/* Stops (on = 0) or resumes (on = 1) reading from the client. */
void server_conn_read(struct server_conn *conn, int on);
/* Closes the connection if it is still open timeout_ms from now (0: no
 * deadline). Checked about once a second. */
void server_conn_deadline(struct server_conn *conn, unsigned timeout_ms);

/* ---- apply pipeline ---- */

struct server_proposal;
typedef void server_propose_fn(struct server_proposal *p);

/* What a proposal does. */
enum server_op {
    SERVER_OP_STORE = 0,         /* a v2 store command (cmd) */
    SERVER_OP_MEMBER_ADD = 1,    /* POST /v2/members (urls) */
    SERVER_OP_MEMBER_UPDATE = 2, /* PUT /v2/members/<id> (member_id, urls) */
    SERVER_OP_MEMBER_REMOVE = 3, /* DELETE /v2/members/<id> (member_id) */
};

/* Outcome of a member operation (valid in cb when rc == CN_OK). */
enum server_member_err {
    SERVER_MEMBER_OK = 0,
    SERVER_MEMBER_NOT_FOUND = 1,  /* no member with that ID */
    SERVER_MEMBER_REMOVED = 2,    /* that ID was removed */
    SERVER_MEMBER_URL_EXISTS = 3, /* a peer URL is another member's */
    SERVER_MEMBER_ID_EXISTS = 4,  /* the new ID is taken */
    SERVER_MEMBER_FULL = 5,       /* too many members or URLs */
};

/* One write in flight. Allocated by the caller, kept until cb. */
struct server_proposal {
    uint8_t op;              /* enum server_op; SERVER_OP_STORE when zeroed */
    struct store_cmd cmd;    /* method, path, value...; slices kept until cb.
                              * now_ns and expire_ns are set by the server */
    int64_t ttl_s;           /* -1: no TTL; else seconds from now */
    uint64_t member_id;      /* member ops: the member (ADD: set by the
                              * server when queued) */
    const char *const *urls; /* ADD, UPDATE: peer URLs, kept until cb */
    unsigned n_urls;
    server_propose_fn *cb; /* called once, later, on the loop */
    void *arg;             /* borrowed; for cb */
    /* results, valid in cb */
    int rc;                  /* CN_OK (see res.ecode / member_err),
                              * CN_ENOMEM, CN_ESHUTDOWN, CN_ETIMEDOUT
                              * (no commit within the request timeout:
                              * no leader, or it was lost; the outcome
                              * is unknown), or CN_ESTOPPED: the log
                              * failed, the write is refused */
    int member_err;          /* enum server_member_err */
    struct store_result res; /* the caller closes it after cb */
    uint64_t raft_index;     /* X-Raft-Index of the applied command */
    uint64_t raft_term;      /* X-Raft-Term */
    /* private */
    uint64_t req_id;              /* unique per member, across restarts */
    uint64_t deadline_ms;         /* monotonic ms: fail with ETIMEDOUT */
    int sent;                     /* proposed or forwarded to a leader */
    struct server_proposal *next; /* queue / in-flight list */
    struct server_proposal *prev;
};

/* Queues p for the log and apply. Returns CN_OK (cb will run),
 * CN_ESHUTDOWN while stopping, or CN_ESTOPPED once the log has failed (cb
 * will not run; server_write_refusal() says why). */
int server_propose(struct server *srv, struct server_proposal *p);

/* ---- linearizable reads (ReadIndex) ---- */
struct server_read;
typedef void server_read_fn(struct server_read *rd);
/* Allocated by the caller, kept until cb. */
struct server_read {
    server_read_fn *cb; /* called once, later, on the loop */
    void *arg;          /* borrowed; for cb */
    int rc;             /* in cb: CN_OK (the local store now reflects every
                         * write committed before the call), CN_ETIMEDOUT
                         * (no leader confirmed it in time), CN_ESHUTDOWN */
    /* private */
    uint64_t cookie;
    uint64_t index;
    uint64_t deadline_ms;
    int state;
    struct server_read *next;
};
/* Waits until this member has applied everything committed cluster-wide
 * when the call was made (Raft ReadIndex through the leader; no log
 * entry). Returns CN_OK (cb will run) or CN_ESHUTDOWN. */
int server_read_index(struct server *srv, struct server_read *rd);

/* Reads path from the store (GET). res is zero-initialised by the caller
 * and closed by it. Returns CN_OK or CN_ENOMEM. */
int server_get(struct server *srv, struct cn_slice path, int recursive,
               int sorted, struct store_result *res);

/* ---- watches ---- */

struct server_watch;
/* An event for a watcher; the callee owns the reference to ev. last: the
 * watch is over (its id is dead; do not unwatch). */
typedef void server_watch_fn(struct server_watch *w, struct store_event *ev,
                             int last);

/* Allocated by the caller, kept until server_unwatch() or a last event. */
struct server_watch {
    server_watch_fn *cb;
    void *arg;            /* borrowed; for cb */
    uint64_t id;          /* 0 when not watching */
    uint64_t start_index; /* store index when the watch began */
};

/* Starts a watch (see store_watch). Events are delivered later, on the
 * loop, never from inside this call. Returns CN_OK (w watching, or
 * res->ecode set when since_index is older than the history), CN_ENOMEM,
 * or CN_EBUSY (too many watchers). res as in server_get. */
int server_watch(struct server *srv, struct server_watch *w,
                 struct cn_slice path, int recursive, int stream,
                 uint64_t since_index, struct store_result *res);
/* Ends a watch; w->cb is not called again. No-op when not watching. */
void server_unwatch(struct server *srv, struct server_watch *w);

/* ---- state for handlers, stats and metrics ---- */

struct server_stats {
    uint64_t proposals_applied; /* commands applied (incl. tree errors) */
    uint64_t proposals_failed;  /* rc != CN_OK */
    uint64_t proposals_pending; /* queued, not applied yet */
    uint64_t connections;       /* open client connections */
    uint64_t connections_total; /* accepted since start */
    uint64_t expire_syncs;      /* SYNC commands applied */
    uint64_t wal_batches;       /* log batches made durable */
    uint64_t wal_entries;       /* entries appended to the log */
    uint64_t snapshots;         /* snapshots saved */
};

const struct cn_config *server_config(const struct server *srv);
const struct store *server_store(const struct server *srv);
void server_stats_get(const struct server *srv, struct server_stats *st);
uint64_t server_raft_index(const struct server *srv);
/* NULL while writes are taken; after a failed log write or fsync, the
 * cause to put in the 503 answer ("etcdserver: ..."). Valid until
 * server_free. */
const char *server_write_refusal(const struct server *srv);
uint64_t server_raft_term(const struct server *srv);
/* Cluster state. */
uint64_t server_leader_id(const struct server *srv); /* 0: none known */
int server_is_leader(const struct server *srv);
/* The member table (valid until the next loop iteration). */
struct server_members;
const struct server_members *server_members_table(const struct server *srv);
/* Driver counters for /v2/stats/self. */
struct server_raft_stats {
    uint64_t append_sent; /* AppendEntries sent */
    uint64_t append_recv; /* AppendEntries received */
    double send_pkg_rate; /* per second, last interval */
    double send_bytes_rate;
    double recv_pkg_rate;
    double recv_bytes_rate;
    int64_t leader_since_ns; /* unix ns when the current leader was seen */
};
void server_raft_stats_get(const struct server *srv,
                           struct server_raft_stats *st);
/* Per-peer link figures for /v2/stats/leader (CN_OK or CN_ENOTFOUND). */
struct server_peer_stats;
int server_peer_stats_get(const struct server *srv, uint64_t id,
                          struct server_peer_stats *st);

/* Member and cluster IDs, computed as etcd 3.4 computes them at bootstrap
 * (server_member_id.h) and kept in the data dir from then on. */
uint64_t server_member_id(const struct server *srv);
uint64_t server_cluster_id(const struct server *srv);
/* Wall clock, unix ns (or the test clock), and a monotonic clock in ns. */
int64_t server_now_ns(const struct server *srv);
int64_t server_mono_ns(const struct server *srv);
/* Unix ns when this server started (stats/self). */
int64_t server_start_ns(const struct server *srv);

/* ---- tests and the fuzzer (no sockets needed) ---- */

typedef int64_t server_clock_fn(void *ctx);
/* Replaces the wall clock (fn NULL: the real one again). */
void server_set_clock(struct server *srv, server_clock_fn *fn, void *ctx);
/* Appends every queued proposal to the log and delivers queued watch
 * events, as the loop does at the end of an iteration. When the loop is not
 * running (tests, the fuzzer), it also syncs the log and applies them at
 * once. */
void server_flush(struct server *srv);
/* Proposes a SYNC if a key's TTL has run out (the 500 ms timer's job). */
void server_expire_check(struct server *srv);

#endif
