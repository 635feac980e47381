/*
 * server_peer: the peer transport, cairn's member-to-member links over TCP
 * on the peer URLs (server-internal; see docs/cluster.md for the wire
 * format and how the driver uses it).
 *
 * Model: every member dials one outbound connection to each known peer and
 * only writes messages on it; the peer accepts it and only reads messages
 * from it. So a pair of members has two connections, one per direction,
 * and a message is delivered at most once, in the order it was sent on
 * that link (lost on a broken connection; Raft tolerates loss).
 *
 * Per outbound link (struct peer in peer.c):
 *
 *   IDLE --peer_dial--> RESOLVING --on_resolved--> CONNECTING
 *   CONNECTING --on_connect--> HANDSHAKE (our HELLO sent)
 *   HANDSHAKE --on_frame(ACK ok)--> UP (queued messages flow, pings start)
 *   any --conn_fail / ACK refused / timeout--> BACKOFF
 *     (ACK_REMOVED, the first time: cfg.removed(ctx, by) is called once)
 *   BACKOFF --on_peer_timer--> RESOLVING (next URL)
 *   any --server_peers_remove / close--> gone
 *
 * Invariants: at most one uv_write in flight per connection; everything
 * queued for a peer between two flushes leaves in one uv_write; the send
 * queue never holds more than queue_msgs_max messages or queue_bytes_max
 * bytes; a message larger than frame_bytes_max travels as several frames
 * and is delivered whole or not at all; every frame's CRC-32C is checked
 * before its payload is used; nothing is delivered from a connection
 * before its handshake was accepted.
 *
 * Two more uses of the listener, one request per connection: a member
 * that is joining a running cluster asks any member for the member list
 * (server_peers_fetch_members(), a blocking client used before the loop
 * runs; the acceptor answers with what cfg.members produced and closes);
 * and a member that was removed from the cluster is told so when it dials
 * (status "removed" instead of "unknown sender"), so it can stop.
 */
#ifndef CN_SERVER_PEER_H
#define CN_SERVER_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "config/config.h"

struct uv_loop_s;
struct server_peers; /* opaque: the transport */

/* Wire protocol version carried in the handshake. */
#define SERVER_PEER_PROTO_VERSION 1

/* A whole message arrived from member from. bytes are borrowed for the
 * call. The callback may call any server_peers_* function, including
 * server_peers_close(). */
typedef void server_peer_recv_fn(void *ctx, uint64_t from, uint8_t type,
                                 const void *bytes, size_t len);
typedef void server_peer_closed_fn(void *arg);
/* Produces the member list for a joining member: appends opaque bytes
 * (what the driver's decoder reads back; the transport does not look at
 * them) to out (borrowed, empty on entry). Returns CN_OK, or an error
 * code: the asker is then told "unavailable" (whatever was appended is
 * dropped). Runs on the loop; must not call server_peers_* functions. */
typedef int server_peer_members_fn(void *ctx, struct cn_buf *out);
/* A member we dialed (by_member) answered that this member has been
 * removed from the cluster. Called at most once per transport; the
 * callback may call any server_peers_* function, including
 * server_peers_close(). The links keep retrying (and keep being
 * refused) until the transport is closed. */
typedef void server_peer_removed_fn(void *ctx, uint64_t by_member);

struct server_peers_config {
    uint64_t self_id;                      /* our member ID (non-zero) */
    uint64_t cluster_id;                   /* refused when a peer differs */
    const struct cn_url_list *listen_urls; /* borrowed for new(); may be
                                            * NULL or empty: dial only */
    struct cn_logger logger;               /* copied */
    server_peer_recv_fn *recv;             /* required */
    void *recv_ctx;                        /* borrowed; for recv */
    server_peer_members_fn *members;       /* optional (NULL: askers get
                                            * CN_ENOTFOUND) */
    void *members_ctx;                     /* borrowed; for members */
    server_peer_removed_fn *removed;       /* optional */
    void *removed_ctx;                     /* borrowed; for removed */
    uint64_t seed;                         /* back-off jitter PRNG */
    /* Tuning; 0 picks the default in brackets. */
    uint32_t queue_msgs_max;       /* per peer (4096) */
    uint64_t queue_bytes_max;      /* per peer (64 MiB) */
    uint32_t msg_bytes_max;        /* per message (CN_RAFT_MSG_BYTES_MAX) */
    uint64_t snap_bytes_max;       /* per message of snap_type (512 MiB) */
    uint8_t snap_type;             /* type never dropped for room (0: none) */
    uint8_t expire_type;           /* type dropped once queued expire_ms */
    uint32_t expire_ms;            /* (0: never) */
    uint32_t frame_bytes_max;      /* payload per frame (1 MiB) */
    uint32_t backoff_min_ms;       /* first reconnect delay (50) */
    uint32_t backoff_max_ms;       /* cap (2000) */
    uint32_t handshake_timeout_ms; /* connect + handshake (3000) */
    uint32_t ping_interval_ms;     /* RTT probes on an up link (500) */
    uint32_t dead_after_ms;        /* no pong for this long: reconnect
                                    * (10000) */
};

/* Creates the transport on loop (borrowed, must outlive it) and listens on
 * every listen URL (http only; port 0 picks a free port, see
 * server_peers_port). cfg is borrowed for the call. Returns CN_OK,
 * CN_ENOMEM, CN_EINVAL (bad URL or https: TLS is not supported yet) or
 * CN_EIO (cannot bind), with errmsg set. */
int server_peers_new(struct server_peers **out, struct uv_loop_s *loop,
                     const struct server_peers_config *cfg,
                     char errmsg[CN_ERRMSG_SIZE]);
/* Closes every connection, timer and listener; queued messages are
 * dropped. cb(arg) runs later on the loop once every handle is closed; p is
 * already freed then. Must not be called twice. */
void server_peers_close(struct server_peers *p, server_peer_closed_fn *cb,
                        void *arg);

/* Starts talking to member id at its peer URLs urls[0..n) (borrowed;
 * "http://host:port", n >= 1; tried in turn). Also the list of members
 * whose inbound connections are accepted (a removed mark on id is
 * cleared). Returns CN_OK, CN_EEXIST, CN_EINVAL (bad URL, id 0 or self)
 * or CN_ENOMEM. */
int server_peers_add(struct server_peers *p, uint64_t id,
                     const char *const *urls, size_t n);
/* Replaces id's URLs; the outbound link reconnects to the new ones.
 * Returns CN_OK, CN_ENOTFOUND, CN_EINVAL or CN_ENOMEM. */
int server_peers_update(struct server_peers *p, uint64_t id,
                        const char *const *urls, size_t n);
/* Forgets id: closes its links (both directions), drops its queue, and
 * refuses its connections from now on, telling it that it was removed
 * (see server_peers_mark_removed). Returns CN_OK, CN_ENOTFOUND (not a
 * peer; nothing changes: use server_peers_mark_removed for such an id) or
 * CN_ENOMEM (nothing changes). */
int server_peers_remove(struct server_peers *p, uint64_t id);
/* Records that member id was removed from the cluster (a restarted member
 * passes its persisted list of removed IDs before its loop runs): its
 * handshakes are refused with status "removed", and its dialer's
 * cfg.removed fires. If id is a current peer it is removed as by
 * server_peers_remove. Idempotent. server_peers_add(id) clears the mark.
 * At most SERVER_PEERS_REMOVED_MAX IDs are kept; beyond that the oldest
 * mark is forgotten (that ID is then refused as an unknown member).
 * Returns CN_OK, CN_EINVAL (id 0 or self) or CN_ENOMEM (nothing
 * changes). */
int server_peers_mark_removed(struct server_peers *p, uint64_t id);
#define SERVER_PEERS_REMOVED_MAX 4096

/* Queues len bytes (copied) of message type for member to; they leave in
 * the next flush (same loop iteration or the next). Returns CN_OK,
 * CN_ENOTFOUND (unknown member), CN_ETOOBIG (over msg_bytes_max /
 * snap_bytes_max), CN_ENOMEM, or CN_EBUSY when the queue is full and the
 * message was dropped (counted in msgs_dropped). A message of snap_type is
 * made room for by dropping the oldest other queued messages. A message of
 * expire_type still queued expire_ms after it was sent here (the link was
 * down) is dropped, not written (counted in msgs_dropped). */
int server_peers_send(struct server_peers *p, uint64_t to, uint8_t type,
                      const void *bytes, size_t len);

/* What /v2/stats/leader and /v2/stats/self need, per peer. */
struct server_peer_stats {
    uint64_t id;
    int up;                /* outbound link handshaken and open */
    unsigned inbound;      /* accepted connections from it now */
    uint64_t writes;       /* uv_write calls (batches) */
    uint64_t msgs_sent;    /* written to the socket */
    uint64_t bytes_sent;   /* payload bytes written */
    uint64_t msgs_recv;    /* delivered to recv */
    uint64_t bytes_recv;   /* payload bytes delivered */
    uint64_t msgs_dropped; /* queue full, or lost with a broken link */
    uint64_t queue_msgs;   /* waiting now */
    uint64_t queue_bytes;
    uint64_t connects;         /* handshakes accepted (outbound) */
    uint64_t disconnects;      /* up links that went down */
    uint64_t refusals;         /* handshakes the peer refused */
    uint64_t refused_since_up; /* TCP connects refused (nothing listening
                                * on its peer URL) since the link was last
                                * up: the member is most likely down */
    int64_t rtt_last_ns;       /* -1: no sample yet */
    int64_t rtt_min_ns;
    int64_t rtt_max_ns;
    double rtt_avg_ns;
    double rtt_sd_ns; /* standard deviation */
    uint64_t rtt_count;
};

/* Fills st for member id. CN_OK or CN_ENOTFOUND. */
int server_peers_stats(const struct server_peers *p, uint64_t id,
                       struct server_peer_stats *st);
/* Connections refused at our end (wrong cluster, unknown member...) and
 * corrupt frames seen, for tests and metrics. */
struct server_peers_counters {
    uint64_t accepted;       /* inbound TCP connections */
    uint64_t refused;        /* inbound handshakes refused */
    uint64_t corrupt;        /* connections closed on a bad frame */
    uint64_t oversize;       /* messages over the size limit */
    uint64_t members_served; /* member-list requests answered with a list */
};
void server_peers_counters(const struct server_peers *p,
                           struct server_peers_counters *out);
/* The port listener i is bound to (after port 0), or 0. */
unsigned server_peers_port(const struct server_peers *p, int i);

/* Asks the member at peer_url ("http://host:port", one of the peer URLs a
 * member joining with --initial-cluster-state existing was given) for the
 * member list: what its cfg.members callback produced. Blocking (POSIX
 * sockets and poll; no loop needed): call it before the server's loop
 * runs. timeout_ms bounds connect, request and answer together (name
 * resolution with getaddrinfo is not bounded by it). On success appends
 * the bytes to out (borrowed, initialised by the caller); on failure out is
 * unchanged and errmsg says what happened. Returns:
 *   CN_OK
 *   CN_EINVAL     peer_url is not an http URL
 *   CN_EIO        cannot resolve or connect (refused, unreachable), or the
 *                 connection broke or was closed before a whole answer
 *                 (e.g. a member too old to know the request)
 *   CN_ETIMEDOUT  no whole answer within timeout_ms
 *   CN_ECORRUPT   a bad frame (checksum, kind, layout)
 *   CN_ETOOBIG    the list is over CN_RAFT_MSG_BYTES_MAX
 *   CN_ENOTFOUND  the member has no members callback
 *   CN_EVERSION   the member does not speak our protocol version
 *   CN_EAGAIN     the member's callback failed (try another member)
 *   CN_ENOMEM */
int server_peers_fetch_members(const char *peer_url, unsigned timeout_ms,
                               struct cn_buf *out, char errmsg[CN_ERRMSG_SIZE]);

#endif
