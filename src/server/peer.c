/*
 * peer.c: the peer transport (see server_peer.h for the model and the
 * state machine of an outbound link, docs/cluster.md for the wire format).
 *
 * Wire format. Every frame is a 12-byte header and a payload:
 *
 *   0  u32 len     payload bytes (little-endian)
 *   4  u8  kind    FK_HELLO, FK_ACK, FK_MSG, FK_PING, FK_PONG,
 *                  FK_MEMBERS_REQ, FK_MEMBERS_RESP
 *   5  u8  mtype   the message type (FK_MSG), else 0
 *   6  u8  flags   FF_MORE: more frames of this message (or member-list
 *                  answer) follow
 *   7  u8  0
 *   8  u32 crc     CRC-32C of header bytes 0..7, then of the payload
 *
 * HELLO (dialer -> acceptor, first frame): u32 magic "CRNP", u16 version,
 * u16 0, u64 cluster ID, u64 sender ID, u64 receiver ID. ACK (acceptor ->
 * dialer): u8 status (enum ack_status), u8 version, u16 0, u32 0, u64
 * acceptor ID; a refused dialer is closed after the ACK. PING/PONG carry
 * the dialer's monotonic time in ns (u64), echoed back.
 *
 * MEMBERS_REQ (asker -> acceptor, first and only frame, instead of HELLO):
 * u32 magic, u16 version, u16 0. MEMBERS_RESP (acceptor -> asker): a body
 * split into frames like a message: u8 status (enum members_status), u8
 * version, u16 0, u32 0, u64 acceptor ID, then the list's bytes (status
 * MEMBERS_OK only); the acceptor closes the connection after it.
 *
 * Removed members: ids removed with server_peers_remove (or marked with
 * server_peers_mark_removed) are kept in t->removed (oldest first, at most
 * SERVER_PEERS_REMOVED_MAX) and their HELLOs get ACK_REMOVED.
 *
 * Ownership: a queued message (struct pmsg, one allocation with its frame
 * headers and payload copy) belongs to its peer's queue, then to the
 * connection writing it (inflight) until the write callback frees it.
 * Connections and peers are freed in their handles' close callbacks; the
 * transport is freed when its last handle has closed.
 */
#include "server_peer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define HDR 12
#define FF_MORE 1
#define HELLO_BYTES 32
#define ACK_BYTES 16
#define PING_BYTES 8
#define HELLO_MAGIC 0x504e5243u /* "CRNP" read little-endian */
#define MREQ_BYTES 8
#define MRESP_HEAD_BYTES 16
/* Largest member list the blocking client takes. */
#define MEMBERS_BYTES_MAX CN_RAFT_MSG_BYTES_MAX
/* Largest frame payload a receiver accepts, whatever the sender's setting. */
#define FRAME_WIRE_MAX (16u * 1024 * 1024)
#define READ_BUF_BYTES (64u * 1024)
#define SWEEP_MS 1000u
_Static_assert(CN_CONFIG_URLS_MAX <= 32, "accept_stalled is a 32-bit mask");

enum frame_kind {
    FK_HELLO = 1,
    FK_ACK = 2,
    FK_MSG = 3,
    FK_PING = 4,
    FK_PONG = 5,
    FK_MEMBERS_REQ = 6,
    FK_MEMBERS_RESP = 7,
};

enum ack_status {
    ACK_OK = 0,
    ACK_VERSION = 1,  /* unsupported protocol version */
    ACK_CLUSTER = 2,  /* cluster ID mismatch */
    ACK_WRONG_TO = 3, /* the dialer thinks we are another member */
    ACK_UNKNOWN = 4,  /* the dialer is not a member we know */
    ACK_REMOVED = 5,  /* the dialer was removed from the cluster */
};

enum members_status {
    MEMBERS_OK = 0,
    MEMBERS_NONE = 1,        /* no members callback here */
    MEMBERS_VERSION = 2,     /* unsupported protocol version */
    MEMBERS_UNAVAILABLE = 3, /* the callback failed, or its list is too big */
};

static const char *ack_reason(unsigned s)
{
    switch (s) {
    case ACK_VERSION:
        return "unsupported protocol version";
    case ACK_CLUSTER:
        return "cluster ID mismatch";
    case ACK_WRONG_TO:
        return "receiver member ID mismatch";
    case ACK_UNKNOWN:
        return "unknown sender member";
    case ACK_REMOVED:
        return "the member has been removed from the cluster";
    default:
        return "unknown reason";
    }
}

enum peer_state {
    PS_IDLE = 0,
    PS_RESOLVING,
    PS_CONNECTING,
    PS_HANDSHAKE,
    PS_UP,
    PS_BACKOFF,
};

struct pmsg {
    struct pmsg *next;
    uint64_t queued_ms; /* uv_now() when server_peers_send queued it */
    size_t len;         /* payload bytes */
    uint32_t nframes;   /* >= 1 */
    uint8_t type;
    uint8_t *hdrs; /* nframes * HDR, in the same allocation */
    uint8_t *data; /* len bytes, in the same allocation */
};

struct peer;

struct conn {
    uv_tcp_t tcp; /* first: handle->data is the conn */
    struct server_peers *t;
    struct peer *peer; /* outbound: the link (NULL once detached) */
    uint64_t from;     /* inbound: the sender, after the handshake */
    int outbound;
    int handshaken;
    int closing;
    int close_after_write;
    struct conn *prev, *next; /* t->conns */
    uint64_t born_ms;         /* uv_now() at accept */
    uv_connect_t creq;
    /* reading */
    struct cn_buf in; /* received, not yet parsed from in_off */
    size_t in_off;
    struct cn_buf asm_buf; /* a multi-frame message being reassembled */
    int asm_active;
    uint8_t asm_type;
    /* writing: one uv_write at a time */
    uv_write_t wreq;
    int writing;
    uv_buf_t *bufs;
    size_t bufs_cap;
    struct pmsg *inflight; /* messages in the write in flight */
    uint64_t inflight_msgs;
    uint64_t inflight_bytes;
    uint8_t ctl[HDR + HELLO_BYTES]; /* HELLO, ACK or PONG being written */
    uint8_t ping[HDR + PING_BYTES]; /* outbound: a PING in the batch */
};

struct peer {
    struct server_peers *t;
    struct peer *next; /* t->peers */
    uint64_t id;
    struct cn_url urls[CN_CONFIG_URLS_MAX];
    int nurls;
    int url_idx;
    int state; /* enum peer_state */
    struct conn *conn;
    struct gai_req *gai; /* resolution in flight */
    uv_timer_t timer;    /* handshake timeout, back-off, pings */
    unsigned attempts;   /* failures since the last successful handshake */
    int ping_due;
    uint64_t last_pong_ms;
    /* queue */
    struct pmsg *qhead, *qtail;
    uint64_t qmsgs, qbytes;
    /* stats */
    uint64_t writes;
    uint64_t msgs_sent, bytes_sent, msgs_recv, bytes_recv, msgs_dropped;
    uint64_t connects, disconnects, refusals;
    uint64_t refused_since_up; /* connects refused since the link was up */
    int64_t rtt_last_ns, rtt_min_ns, rtt_max_ns;
    double rtt_sum, rtt_sumsq;
    uint64_t rtt_count;
};

/* A name lookup outlives a removed peer: peer is then NULL. */
struct gai_req {
    uv_getaddrinfo_t req;
    struct peer *peer;
};

struct server_peers {
    uv_loop_t *loop;
    struct server_peers_config cfg; /* defaults filled in */
    struct cn_prng prng;
    uv_tcp_t listeners[CN_CONFIG_URLS_MAX];
    int nlisteners;
    uint32_t accept_stalled; /* bit i: listener i has a connection waiting
                              * for memory to accept it */
    uv_idle_t idle;          /* flushes queues on the next loop iteration */
    int idle_on;
    uv_timer_t sweep; /* inbound handshake timeouts */
    struct peer *peers;
    struct conn *conns;
    int closing;
    unsigned handles; /* open handles; freed at 0 while closing */
    server_peer_closed_fn *closed_cb;
    void *closed_arg;
    struct server_peers_counters counters;
    uint64_t *removed; /* removed member IDs, oldest first */
    size_t nremoved, removed_cap;
    int removed_reported; /* cfg.removed was called */
    char rbuf[READ_BUF_BYTES];
};

#define PLOG(t, lvl, ...) CN_LOG(&(t)->cfg.logger, lvl, "peer", __VA_ARGS__)

/* ---- helpers ---- */

static void put32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void frame_header(uint8_t *h, uint32_t len, uint8_t kind, uint8_t mtype,
                         uint8_t flags, const void *payload)
{
    put32(h, len);
    h[4] = kind;
    h[5] = mtype;
    h[6] = flags;
    h[7] = 0;
    uint32_t crc = cn_crc32c(0, h, 8);
    put32(h + 8, cn_crc32c(crc, payload, len));
}

static int64_t mono_ns(void)
{
    return (int64_t)uv_hrtime();
}

static struct peer *peer_find(const struct server_peers *t, uint64_t id)
{
    for (struct peer *p = t->peers; p != NULL; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

/* Index of id in t->removed, or -1. */
static long removed_find(const struct server_peers *t, uint64_t id)
{
    for (size_t i = 0; i < t->nremoved; i++)
        if (t->removed[i] == id)
            return (long)i;
    return -1;
}

static void handle_closed(uv_handle_t *h);

/* Closes h; the transport counts it until its close callback. */
static void close_handle(struct server_peers *t, uv_handle_t *h, uv_close_cb cb)
{
    CN_UNUSED(t);
    uv_close(h, cb != NULL ? cb : handle_closed);
}

static void transport_handle_gone(struct server_peers *t)
{
    CN_ASSERT(t->handles > 0);
    t->handles--;
    if (t->closing && t->handles == 0) {
        server_peer_closed_fn *cb = t->closed_cb;
        void *arg = t->closed_arg;
        cn_free(t->removed);
        cn_free(t);
        if (cb != NULL)
            cb(arg);
    }
}

static void handle_closed(uv_handle_t *h)
{
    transport_handle_gone(h->data);
}

static void schedule_flush(struct server_peers *t);
static void peer_dial(struct peer *p);
static void conn_close(struct conn *c, const char *why);

/* ---- queue ---- */

static void pmsg_free_list(struct pmsg *m)
{
    while (m != NULL) {
        struct pmsg *next = m->next;
        cn_free(m);
        m = next;
    }
}

/* One allocation holding head then body (copied) as frames of kind (and
 * mtype) of at most fmax payload bytes each, with their headers. NULL: out
 * of memory. */
static struct pmsg *pmsg_new(uint8_t kind, uint8_t mtype, const void *head,
                             size_t head_len, const void *body, size_t body_len,
                             uint32_t fmax)
{
    size_t len = head_len + body_len;
    uint32_t nframes = len == 0 ? 1 : (uint32_t)((len + fmax - 1) / fmax);
    struct pmsg *m = cn_malloc(sizeof(*m) + (size_t)nframes * HDR + len);
    if (m == NULL)
        return NULL;
    m->next = NULL;
    m->queued_ms = 0;
    m->len = len;
    m->nframes = nframes;
    m->type = mtype;
    m->hdrs = (uint8_t *)(m + 1);
    m->data = m->hdrs + (size_t)nframes * HDR;
    if (head_len > 0)
        memcpy(m->data, head, head_len);
    if (body_len > 0)
        memcpy(m->data + head_len, body, body_len);
    for (uint32_t f = 0; f < nframes; f++) {
        size_t off = (size_t)f * fmax;
        size_t flen = len - off < fmax ? len - off : fmax;
        frame_header(m->hdrs + (size_t)f * HDR, (uint32_t)flen, kind, mtype,
                     f + 1 < nframes ? FF_MORE : 0, m->data + off);
    }
    return m;
}

/* Points bufs[0..) at m's frames (at most 2 * nframes); returns how many. */
static size_t pmsg_bufs(const struct pmsg *m, uint32_t fmax, uv_buf_t *bufs)
{
    size_t n = 0;
    for (uint32_t f = 0; f < m->nframes; f++) {
        size_t off = (size_t)f * fmax;
        size_t flen = m->len - off < fmax ? m->len - off : fmax;
        bufs[n++] = uv_buf_init((char *)m->hdrs + (size_t)f * HDR, HDR);
        if (flen > 0)
            bufs[n++] = uv_buf_init((char *)m->data + off, (unsigned)flen);
    }
    return n;
}

static void queue_drop_all(struct peer *p)
{
    p->msgs_dropped += p->qmsgs;
    pmsg_free_list(p->qhead);
    p->qhead = p->qtail = NULL;
    p->qmsgs = p->qbytes = 0;
}

/* Drops the queued message *pp (prev before it, NULL at the head). */
static void queue_drop_at(struct peer *p, struct pmsg **pp, struct pmsg *prev)
{
    struct pmsg *m = *pp;
    *pp = m->next;
    if (p->qtail == m)
        p->qtail = prev;
    p->qmsgs--;
    p->qbytes -= m->len;
    p->msgs_dropped++;
    cn_free(m);
}

/* Drops the queued messages of the expiring type that waited too long.
 * The queue is in the order messages were queued, so the walk ends at the
 * first one younger than expire_ms (at once while the link is up). */
static void queue_expire(struct peer *p)
{
    const struct server_peers_config *cfg = &p->t->cfg;
    if (cfg->expire_type == 0 || cfg->expire_ms == 0)
        return;
    uint64_t now = uv_now(p->t->loop);
    struct pmsg **pp = &p->qhead, *prev = NULL;
    while (*pp != NULL && now - (*pp)->queued_ms >= cfg->expire_ms) {
        struct pmsg *m = *pp;
        if (m->type == cfg->expire_type) {
            queue_drop_at(p, pp, prev);
            continue;
        }
        prev = m;
        pp = &m->next;
    }
}

/* Drops the oldest queued messages not of type keep until room for one
 * more message of len bytes exists. Returns 1 if there is room then. */
static int queue_make_room(struct peer *p, size_t len, uint8_t keep)
{
    const struct server_peers_config *cfg = &p->t->cfg;
    struct pmsg **pp = &p->qhead, *prev = NULL;
    while (*pp != NULL && (p->qmsgs + 1 > cfg->queue_msgs_max ||
                           p->qbytes + len > cfg->queue_bytes_max)) {
        struct pmsg *m = *pp;
        if (m->type != keep) {
            queue_drop_at(p, pp, prev);
            continue;
        }
        prev = m;
        pp = &m->next;
    }
    return p->qmsgs + 1 <= cfg->queue_msgs_max &&
           p->qbytes + len <= cfg->queue_bytes_max;
}

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct server_peers *t = c->t;
    CN_ASSERT(!c->writing);
    cn_buf_close(&c->in);
    cn_buf_close(&c->asm_buf);
    cn_free(c->bufs);
    cn_free(c);
    transport_handle_gone(t);
}

static struct conn *conn_new(struct server_peers *t, int outbound)
{
    struct conn *c = cn_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->t = t;
    c->outbound = outbound;
    c->born_ms = uv_now(t->loop);
    uv_tcp_init(t->loop, &c->tcp);
    c->tcp.data = c;
    c->wreq.data = c;
    t->handles++;
    c->next = t->conns;
    if (t->conns != NULL)
        t->conns->prev = c;
    t->conns = c;
    return c;
}

static void peer_link_down(struct peer *p, const char *why);

/* Closes c (idempotent). An outbound link goes to back-off. */
static void conn_close(struct conn *c, const char *why)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct server_peers *t = c->t;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    struct peer *p = c->peer;
    if (p != NULL) {
        p->msgs_dropped += c->inflight_msgs;
        c->peer = NULL;
        p->conn = NULL;
        peer_link_down(p, why);
    } else if (!c->outbound && c->handshaken) {
        PLOG(t, CN_LOG_DEBUG,
             "inbound connection closed from=%" PRIx64 " reason=\"%s\"",
             c->from, why);
    }
    close_handle(t, (uv_handle_t *)&c->tcp, on_conn_closed);
}

static int conn_bufs_reserve(struct conn *c, size_t n)
{
    if (n <= c->bufs_cap)
        return CN_OK;
    size_t cap = c->bufs_cap ? c->bufs_cap : 16;
    while (cap < n)
        cap *= 2;
    uv_buf_t *b = cn_realloc(c->bufs, cap * sizeof(*b));
    if (b == NULL)
        return CN_ENOMEM;
    c->bufs = b;
    c->bufs_cap = cap;
    return CN_OK;
}

static void on_write(uv_write_t *req, int status);

/* Writes one control frame (HELLO, ACK, PONG) held in c->ctl. */
static int conn_write_ctl(struct conn *c, uint8_t kind, const uint8_t *payload,
                          uint32_t len)
{
    CN_ASSERT(!c->writing && len <= HELLO_BYTES);
    memcpy(c->ctl + HDR, payload, len);
    frame_header(c->ctl, len, kind, 0, 0, c->ctl + HDR);
    uv_buf_t b = uv_buf_init((char *)c->ctl, HDR + len);
    c->writing = 1;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        c->writing = 0;
        return CN_EIO;
    }
    return CN_OK;
}

static void peer_flush(struct peer *p);

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = 0;
    struct peer *p = c->peer;
    if (status == 0 && p != NULL) {
        p->msgs_sent += c->inflight_msgs;
        p->bytes_sent += c->inflight_bytes;
    } else if (p != NULL) {
        p->msgs_dropped += c->inflight_msgs;
    }
    pmsg_free_list(c->inflight);
    c->inflight = NULL;
    c->inflight_msgs = c->inflight_bytes = 0;
    if (c->closing)
        return;
    if (status != 0) {
        conn_close(c, uv_strerror(status));
        return;
    }
    if (c->close_after_write) {
        conn_close(c, "answered");
        return;
    }
    if (p != NULL)
        peer_flush(p); /* whatever queued meanwhile goes in one write */
}

/* ---- outbound: flushing ---- */

/* Writes the ping (if due) and every queued message in one uv_write. */
static void peer_flush(struct peer *p)
{
    struct conn *c = p->conn;
    if (p->state != PS_UP || c == NULL || c->writing || c->closing)
        return;
    queue_expire(p);
    if (p->qhead == NULL && !p->ping_due)
        return;
    size_t nbufs = p->ping_due ? 1 : 0;
    for (struct pmsg *m = p->qhead; m != NULL; m = m->next)
        nbufs += 2 * (size_t)m->nframes;
    if (conn_bufs_reserve(c, nbufs) != CN_OK) {
        conn_close(c, "out of memory");
        return;
    }
    size_t n = 0;
    if (p->ping_due) {
        uint8_t pl[PING_BYTES];
        put64(pl, (uint64_t)mono_ns());
        memcpy(c->ping + HDR, pl, PING_BYTES);
        frame_header(c->ping, PING_BYTES, FK_PING, 0, 0, pl);
        c->bufs[n++] = uv_buf_init((char *)c->ping, HDR + PING_BYTES);
        p->ping_due = 0;
    }
    uint32_t fmax = p->t->cfg.frame_bytes_max;
    for (struct pmsg *m = p->qhead; m != NULL; m = m->next)
        n += pmsg_bufs(m, fmax, c->bufs + n);
    c->inflight = p->qhead;
    c->inflight_msgs = p->qmsgs;
    c->inflight_bytes = p->qbytes;
    p->qhead = p->qtail = NULL;
    p->qmsgs = p->qbytes = 0;
    c->writing = 1;
    p->writes++;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs, (unsigned)n,
                      on_write);
    if (rc != 0) {
        c->writing = 0;
        p->msgs_dropped += c->inflight_msgs;
        pmsg_free_list(c->inflight);
        c->inflight = NULL;
        c->inflight_msgs = c->inflight_bytes = 0;
        conn_close(c, uv_strerror(rc));
    }
}

static void on_idle(uv_idle_t *h)
{
    struct server_peers *t = h->data;
    uv_idle_stop(h);
    t->idle_on = 0;
    for (struct peer *p = t->peers; p != NULL; p = p->next)
        peer_flush(p);
}

static void schedule_flush(struct server_peers *t)
{
    if (t->idle_on || t->closing)
        return;
    t->idle_on = 1;
    uv_idle_start(&t->idle, on_idle);
}

/* ---- outbound: connecting, back-off, pings ---- */

static void on_peer_timer(uv_timer_t *h);

static void peer_link_down(struct peer *p, const char *why)
{
    struct server_peers *t = p->t;
    const struct server_peers_config *cfg = &t->cfg;
    if (p->state == PS_UP) {
        p->disconnects++;
        PLOG(t, CN_LOG_INFO,
             "peer link down peer=%" PRIx64 " url=%s reason=\"%s\"", p->id,
             p->urls[p->url_idx].raw, why);
    } else {
        PLOG(t, CN_LOG_DEBUG,
             "peer connect failed peer=%" PRIx64 " url=%s reason=\"%s\"", p->id,
             p->urls[p->url_idx].raw, why);
    }
    p->state = PS_BACKOFF;
    p->ping_due = 0;
    p->url_idx = (p->url_idx + 1) % p->nurls;
    unsigned shift = p->attempts < 16 ? p->attempts : 16;
    p->attempts++;
    uint64_t delay = (uint64_t)cfg->backoff_min_ms << shift;
    if (delay > cfg->backoff_max_ms)
        delay = cfg->backoff_max_ms;
    /* jitter: uniform in [delay/2, delay] */
    delay = delay / 2 + cn_prng_below(&t->prng, delay / 2 + 1);
    if (!t->closing)
        uv_timer_start(&p->timer, on_peer_timer, delay, 0);
}

static void send_hello(struct conn *c, struct peer *p)
{
    struct server_peers *t = c->t;
    uint8_t h[HELLO_BYTES] = {0};
    put32(h, HELLO_MAGIC);
    h[4] = SERVER_PEER_PROTO_VERSION & 0xff;
    h[5] = SERVER_PEER_PROTO_VERSION >> 8;
    put64(h + 8, t->cfg.cluster_id);
    put64(h + 16, t->cfg.self_id);
    put64(h + 24, p->id);
    if (conn_write_ctl(c, FK_HELLO, h, HELLO_BYTES) != CN_OK)
        conn_close(c, "cannot write handshake");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->closing)
        return;
    if (status != 0) {
        if (status == UV_ECONNREFUSED && c->peer != NULL)
            c->peer->refused_since_up++; /* nothing listens there now */
        conn_close(c, uv_strerror(status));
        return;
    }
    struct peer *p = c->peer;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    p->state = PS_HANDSHAKE;
    send_hello(c, p);
}

static void peer_connect_addr(struct peer *p, const struct sockaddr *sa)
{
    struct server_peers *t = p->t;
    struct conn *c = conn_new(t, 1);
    if (c == NULL) {
        peer_link_down(p, "out of memory");
        return;
    }
    c->peer = p;
    p->conn = c;
    p->state = PS_CONNECTING;
    c->creq.data = c;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, sa, on_connect);
    if (rc != 0)
        conn_close(c, uv_strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai)
{
    struct gai_req *g = req->data;
    struct peer *p = g->peer;
    cn_free(g);
    if (p == NULL) {
        uv_freeaddrinfo(ai);
        return;
    }
    p->gai = NULL;
    if (status != 0 || ai == NULL) {
        uv_freeaddrinfo(ai);
        peer_link_down(p, status ? uv_strerror(status) : "no address");
        return;
    }
    peer_connect_addr(p, ai->ai_addr);
    uv_freeaddrinfo(ai);
}

static void peer_dial(struct peer *p)
{
    struct server_peers *t = p->t;
    const struct cn_url *u = &p->urls[p->url_idx];
    p->state = PS_RESOLVING;
    uv_timer_start(&p->timer, on_peer_timer, t->cfg.handshake_timeout_ms, 0);
    struct sockaddr_storage ss;
    if (uv_ip4_addr(u->host, u->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(u->host, u->port, (struct sockaddr_in6 *)&ss) == 0) {
        peer_connect_addr(p, (struct sockaddr *)&ss);
        return;
    }
    struct gai_req *g = cn_malloc(sizeof(*g));
    if (g == NULL) {
        peer_link_down(p, "out of memory");
        return;
    }
    g->peer = p;
    g->req.data = g;
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc =
        uv_getaddrinfo(t->loop, &g->req, on_resolved, u->host, port, &hints);
    if (rc != 0) {
        cn_free(g);
        peer_link_down(p, uv_strerror(rc));
        return;
    }
    p->gai = g;
}

static void on_peer_timer(uv_timer_t *h)
{
    struct peer *p = h->data;
    struct server_peers *t = p->t;
    switch (p->state) {
    case PS_BACKOFF:
        peer_dial(p);
        break;
    case PS_RESOLVING:
        if (p->gai != NULL) {
            p->gai->peer = NULL;
            p->gai = NULL;
        }
        peer_link_down(p, "timed out resolving");
        break;
    case PS_CONNECTING:
    case PS_HANDSHAKE:
        if (p->conn != NULL)
            conn_close(p->conn, "timed out connecting");
        else
            peer_link_down(p, "timed out connecting");
        break;
    case PS_UP:
        if (uv_now(t->loop) - p->last_pong_ms >= t->cfg.dead_after_ms) {
            conn_close(p->conn, "no answer to pings");
            break;
        }
        p->ping_due = 1;
        peer_flush(p);
        uv_timer_start(&p->timer, on_peer_timer, t->cfg.ping_interval_ms, 0);
        break;
    default:
        break;
    }
}

/* ---- reading and frames ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    CN_UNUSED(suggested);
    *buf = uv_buf_init(c->t->rbuf, READ_BUF_BYTES);
}

static void corrupt(struct conn *c, const char *what)
{
    struct server_peers *t = c->t;
    t->counters.corrupt++;
    PLOG(t, CN_LOG_WARN,
         "peer protocol error, closing connection %s=%" PRIx64 " reason=\"%s\"",
         c->outbound ? "peer" : "from",
         c->outbound ? (c->peer ? c->peer->id : 0) : c->from, what);
    conn_close(c, what);
}

static uint64_t msg_limit(const struct server_peers *t, uint8_t type)
{
    if (t->cfg.snap_type != 0 && type == t->cfg.snap_type)
        return t->cfg.snap_bytes_max;
    return t->cfg.msg_bytes_max;
}

static void inbound_hello(struct conn *c, const uint8_t *pl, uint32_t len)
{
    struct server_peers *t = c->t;
    if (len != HELLO_BYTES || get32(pl) != HELLO_MAGIC) {
        corrupt(c, "expected a handshake");
        return;
    }
    unsigned version = pl[4] | (unsigned)pl[5] << 8;
    uint64_t cluster = get64(pl + 8), from = get64(pl + 16),
             to = get64(pl + 24);
    unsigned status = ACK_OK;
    if (version != SERVER_PEER_PROTO_VERSION)
        status = ACK_VERSION;
    else if (cluster != t->cfg.cluster_id)
        status = ACK_CLUSTER;
    else if (removed_find(t, from) >= 0)
        status = ACK_REMOVED; /* whatever it thinks we are */
    else if (to != t->cfg.self_id)
        status = ACK_WRONG_TO;
    else if (peer_find(t, from) == NULL)
        status = ACK_UNKNOWN;
    uint8_t ack[ACK_BYTES] = {0};
    ack[0] = (uint8_t)status;
    ack[1] = SERVER_PEER_PROTO_VERSION;
    put64(ack + 8, t->cfg.self_id);
    if (status != ACK_OK) {
        t->counters.refused++;
        PLOG(t, CN_LOG_WARN,
             "refused peer connection from=%" PRIx64 " cluster=%" PRIx64
             " to=%" PRIx64 " version=%u reason=\"%s\"",
             from, cluster, to, version, ack_reason(status));
        c->close_after_write = 1;
    } else {
        c->handshaken = 1;
        c->from = from;
        PLOG(t, CN_LOG_DEBUG, "accepted peer connection from=%" PRIx64, from);
    }
    if (conn_write_ctl(c, FK_ACK, ack, ACK_BYTES) != CN_OK)
        conn_close(c, "cannot write handshake answer");
}

/* Writes m (taken), the only answer on c, which closes after it. */
static void conn_write_answer(struct conn *c, struct pmsg *m)
{
    CN_ASSERT(!c->writing);
    if (conn_bufs_reserve(c, 2 * (size_t)m->nframes) != CN_OK) {
        cn_free(m);
        conn_close(c, "out of memory");
        return;
    }
    size_t n = pmsg_bufs(m, c->t->cfg.frame_bytes_max, c->bufs);
    c->inflight = m;
    c->close_after_write = 1;
    c->writing = 1;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, c->bufs, (unsigned)n,
                      on_write);
    if (rc != 0) {
        c->writing = 0;
        pmsg_free_list(c->inflight);
        c->inflight = NULL;
        conn_close(c, uv_strerror(rc));
    }
}

/* A member-list request (instead of a HELLO): answers with the status and
 * what cfg.members produced, then closes. */
static void inbound_members(struct conn *c, const uint8_t *pl, uint32_t len)
{
    struct server_peers *t = c->t;
    if (len != MREQ_BYTES || get32(pl) != HELLO_MAGIC) {
        corrupt(c, "bad member-list request");
        return;
    }
    unsigned version = pl[4] | (unsigned)pl[5] << 8;
    unsigned status = MEMBERS_OK;
    struct cn_buf list;
    cn_buf_init(&list);
    if (version != SERVER_PEER_PROTO_VERSION) {
        status = MEMBERS_VERSION;
    } else if (t->cfg.members == NULL) {
        status = MEMBERS_NONE;
    } else {
        int rc = t->cfg.members(t->cfg.members_ctx, &list);
        if (rc == CN_OK && list.len > t->cfg.msg_bytes_max)
            rc = CN_ETOOBIG;
        if (rc != CN_OK) {
            status = MEMBERS_UNAVAILABLE;
            PLOG(t, CN_LOG_WARN,
                 "cannot answer a member-list request list_bytes=%zu "
                 "error=\"%s\"",
                 list.len, cn_strerror(rc));
        }
    }
    uint8_t head[MRESP_HEAD_BYTES] = {0};
    head[0] = (uint8_t)status;
    head[1] = SERVER_PEER_PROTO_VERSION;
    put64(head + 8, t->cfg.self_id);
    struct pmsg *m =
        pmsg_new(FK_MEMBERS_RESP, 0, head, sizeof(head), list.data,
                 status == MEMBERS_OK ? list.len : 0, t->cfg.frame_bytes_max);
    cn_buf_close(&list);
    if (m == NULL) {
        conn_close(c, "out of memory");
        return;
    }
    if (status == MEMBERS_OK)
        t->counters.members_served++;
    PLOG(t, CN_LOG_DEBUG, "member-list request answered status=%u bytes=%zu",
         status, m->len - MRESP_HEAD_BYTES);
    conn_write_answer(c, m);
}

static void deliver(struct conn *c, uint8_t type, const void *p, size_t len)
{
    struct server_peers *t = c->t;
    struct peer *pe = peer_find(t, c->from);
    if (pe == NULL) {
        conn_close(c, "sender was removed");
        return;
    }
    pe->msgs_recv++;
    pe->bytes_recv += len;
    t->cfg.recv(t->cfg.recv_ctx, c->from, type, p, len);
}

static void inbound_msg(struct conn *c, uint8_t type, uint8_t flags,
                        const uint8_t *pl, uint32_t len)
{
    struct server_peers *t = c->t;
    uint64_t limit = msg_limit(t, type);
    if (c->asm_active && c->asm_type != type) {
        corrupt(c, "message type changed inside a message");
        return;
    }
    size_t total = (c->asm_active ? c->asm_buf.len : 0) + len;
    if (total > limit) {
        t->counters.oversize++;
        corrupt(c, "message over the size limit");
        return;
    }
    if (!c->asm_active && !(flags & FF_MORE)) {
        deliver(c, type, pl, len);
        return;
    }
    if (cn_buf_append(&c->asm_buf, pl, len) != CN_OK) {
        conn_close(c, "out of memory");
        return;
    }
    c->asm_active = 1;
    c->asm_type = type;
    if (flags & FF_MORE)
        return;
    c->asm_active = 0;
    deliver(c, type, c->asm_buf.data, c->asm_buf.len);
    if (c->asm_buf.cap > 4 * (size_t)t->cfg.frame_bytes_max)
        cn_buf_close(&c->asm_buf); /* do not keep a snapshot's worth */
    else
        cn_buf_reset(&c->asm_buf);
}

/* A peer said we were removed: tell the driver, once. */
static void report_removed(struct server_peers *t, uint64_t by)
{
    if (t->removed_reported || t->closing)
        return;
    t->removed_reported = 1;
    PLOG(t, CN_LOG_ERROR,
         "the member has been permanently removed from the cluster by=%" PRIx64,
         by);
    if (t->cfg.removed != NULL)
        t->cfg.removed(t->cfg.removed_ctx, by);
}

static void outbound_frame(struct conn *c, uint8_t kind, const uint8_t *pl,
                           uint32_t len)
{
    struct peer *p = c->peer;
    struct server_peers *t = c->t;
    if (p == NULL)
        return;
    if (kind == FK_ACK && p->state == PS_HANDSHAKE && len == ACK_BYTES) {
        if (pl[0] != ACK_OK) {
            p->refusals++;
            PLOG(t, CN_LOG_WARN,
                 "peer refused our connection peer=%" PRIx64
                 " url=%s reason=\"%s\"",
                 p->id, p->urls[p->url_idx].raw, ack_reason(pl[0]));
            conn_close(c, ack_reason(pl[0]));
            if (pl[0] == ACK_REMOVED)
                report_removed(t, get64(pl + 8)); /* last: may close t */
            return;
        }
        p->state = PS_UP;
        p->attempts = 0;
        p->refused_since_up = 0;
        p->connects++;
        p->last_pong_ms = uv_now(t->loop);
        PLOG(t, CN_LOG_INFO, "peer link up peer=%" PRIx64 " url=%s", p->id,
             p->urls[p->url_idx].raw);
        uv_timer_start(&p->timer, on_peer_timer, t->cfg.ping_interval_ms, 0);
        peer_flush(p);
        return;
    }
    if (kind == FK_PONG && p->state == PS_UP && len == PING_BYTES) {
        int64_t rtt = mono_ns() - (int64_t)get64(pl);
        if (rtt < 0)
            rtt = 0;
        p->last_pong_ms = uv_now(t->loop);
        p->rtt_last_ns = rtt;
        if (p->rtt_count == 0 || rtt < p->rtt_min_ns)
            p->rtt_min_ns = rtt;
        if (rtt > p->rtt_max_ns)
            p->rtt_max_ns = rtt;
        p->rtt_sum += (double)rtt;
        p->rtt_sumsq += (double)rtt * (double)rtt;
        p->rtt_count++;
        return;
    }
    corrupt(c, "unexpected frame from the receiver");
}

static void on_frame(struct conn *c, uint8_t kind, uint8_t mtype, uint8_t flags,
                     const uint8_t *pl, uint32_t len)
{
    if (c->outbound) {
        outbound_frame(c, kind, pl, len);
        return;
    }
    if (!c->handshaken) {
        if (c->close_after_write)
            return; /* refused or answered: ignore what follows */
        if (kind == FK_MEMBERS_REQ) {
            inbound_members(c, pl, len);
            return;
        }
        if (kind != FK_HELLO) {
            corrupt(c, "expected a handshake");
            return;
        }
        inbound_hello(c, pl, len);
        return;
    }
    if (kind == FK_MSG) {
        inbound_msg(c, mtype, flags, pl, len);
    } else if (kind == FK_PING && len == PING_BYTES) {
        if (!c->writing) {
            if (conn_write_ctl(c, FK_PONG, pl, PING_BYTES) != CN_OK)
                conn_close(c, "cannot write pong");
        }
    } else {
        corrupt(c, "unexpected frame kind");
    }
}

/* Parses every complete frame in c->in. */
static void conn_parse(struct conn *c)
{
    while (!c->closing) {
        size_t avail = c->in.len - c->in_off;
        if (avail < HDR)
            break;
        const uint8_t *h = (const uint8_t *)c->in.data + c->in_off;
        uint32_t len = get32(h);
        if (len > FRAME_WIRE_MAX) {
            corrupt(c, "frame length over the limit");
            return;
        }
        if (avail < HDR + (size_t)len)
            break;
        uint32_t crc = cn_crc32c(cn_crc32c(0, h, 8), h + HDR, len);
        if (crc != get32(h + 8) || h[7] != 0) {
            corrupt(c, "frame checksum mismatch");
            return;
        }
        c->in_off += HDR + (size_t)len;
        on_frame(c, h[4], h[5], h[6], h + HDR, len);
    }
    if (c->closing)
        return;
    if (c->in_off == c->in.len) {
        c->in_off = 0;
        cn_buf_reset(&c->in);
        if (c->in.cap > 4 * READ_BUF_BYTES)
            cn_buf_close(&c->in);
    } else if (c->in_off > READ_BUF_BYTES) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    CN_UNUSED(buf);
    if (c->closing)
        return;
    if (nread < 0) {
        conn_close(c, nread == UV_EOF ? "closed by the other end"
                                      : uv_strerror((int)nread));
        return;
    }
    if (nread == 0)
        return;
    if (cn_buf_append(&c->in, buf->base, (size_t)nread) != CN_OK) {
        conn_close(c, "out of memory");
        return;
    }
    conn_parse(c);
}

/* ---- inbound: listeners ---- */

static void on_connection(uv_stream_t *ls, int status)
{
    struct server_peers *t = ls->data;
    if (status != 0 || t->closing)
        return;
    struct conn *c = conn_new(t, 0);
    if (c == NULL) {
        /* libuv stops listening until the pending connection is taken
         * with uv_accept: retry from the sweep timer. */
        t->accept_stalled |= 1u << ((uv_tcp_t *)ls - t->listeners);
        PLOG(t, CN_LOG_WARN, "cannot accept a peer connection: out of memory");
        return;
    }
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c, "accept failed");
        return;
    }
    t->counters.accepted++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_sweep(uv_timer_t *h)
{
    struct server_peers *t = h->data;
    for (int i = 0; i < t->nlisteners; i++) {
        if (t->accept_stalled & 1u << i) {
            t->accept_stalled &= ~(1u << i);
            on_connection((uv_stream_t *)&t->listeners[i], 0);
        }
    }
    uint64_t now = uv_now(t->loop);
    struct conn *c = t->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        if (!c->outbound && !c->handshaken &&
            now - c->born_ms >= t->cfg.handshake_timeout_ms)
            conn_close(c, "no handshake in time");
        c = next;
    }
}

static int listen_one(struct server_peers *t, const struct cn_url *u,
                      char errmsg[CN_ERRMSG_SIZE])
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t gai;
    int rc = uv_getaddrinfo(t->loop, &gai, NULL, u->host, port, &hints);
    if (rc != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "listen on %s: %s", u->raw,
                 uv_strerror(rc));
        return CN_EIO;
    }
    uv_tcp_t *l = &t->listeners[t->nlisteners];
    uv_tcp_init(t->loop, l);
    l->data = t;
    t->handles++;
    t->nlisteners++;
    rc = uv_tcp_bind(l, gai.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(gai.addrinfo);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)l, 128, on_connection);
    if (rc != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "listen on %s: %s", u->raw,
                 uv_strerror(rc));
        return CN_EIO;
    }
    return CN_OK;
}

/* ---- the API ---- */

static void fill_defaults(struct server_peers_config *c)
{
    if (c->queue_msgs_max == 0)
        c->queue_msgs_max = 4096;
    if (c->queue_bytes_max == 0)
        c->queue_bytes_max = 64ull * 1024 * 1024;
    if (c->msg_bytes_max == 0)
        c->msg_bytes_max = CN_RAFT_MSG_BYTES_MAX;
    if (c->snap_bytes_max == 0)
        c->snap_bytes_max = 512ull * 1024 * 1024;
    if (c->frame_bytes_max == 0 || c->frame_bytes_max > FRAME_WIRE_MAX)
        c->frame_bytes_max = 1024 * 1024;
    if (c->backoff_min_ms == 0)
        c->backoff_min_ms = 50;
    if (c->backoff_max_ms == 0)
        c->backoff_max_ms = 2000;
    if (c->backoff_max_ms < c->backoff_min_ms)
        c->backoff_max_ms = c->backoff_min_ms;
    if (c->handshake_timeout_ms == 0)
        c->handshake_timeout_ms = 3000;
    if (c->ping_interval_ms == 0)
        c->ping_interval_ms = 500;
    if (c->dead_after_ms == 0)
        c->dead_after_ms = 10000;
}

int server_peers_new(struct server_peers **out, struct uv_loop_s *loop,
                     const struct server_peers_config *cfg,
                     char errmsg[CN_ERRMSG_SIZE])
{
    if (cfg->recv == NULL || cfg->self_id == 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "peer transport: %s",
                 cfg->recv == NULL ? "no receive callback" : "member ID 0");
        return CN_EINVAL;
    }
    struct server_peers *t = cn_calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "peer transport: out of memory");
        return CN_ENOMEM;
    }
    t->loop = loop;
    t->cfg = *cfg;
    t->cfg.listen_urls = NULL;
    fill_defaults(&t->cfg);
    cn_prng_seed(&t->prng, cfg->seed);
    uv_idle_init(loop, &t->idle);
    t->idle.data = t;
    uv_timer_init(loop, &t->sweep);
    t->sweep.data = t;
    t->handles += 2;
    uv_timer_start(&t->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_unref((uv_handle_t *)&t->sweep);
    const struct cn_url_list *l = cfg->listen_urls;
    for (int i = 0; l != NULL && i < l->count; i++) {
        int rc = CN_OK;
        if (strcmp(l->urls[i].scheme, "http") != 0) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "listen on %s: TLS peer URLs are not supported yet",
                     l->urls[i].raw);
            rc = CN_EINVAL;
        } else {
            rc = listen_one(t, &l->urls[i], errmsg);
        }
        if (rc != CN_OK) {
            server_peers_close(t, NULL, NULL);
            return rc;
        }
    }
    *out = t;
    return CN_OK;
}

static void on_peer_timer_closed(uv_handle_t *h)
{
    struct peer *p = h->data;
    struct server_peers *t = p->t;
    cn_free(p);
    transport_handle_gone(t);
}

static void peer_destroy(struct peer *p)
{
    struct server_peers *t = p->t;
    if (p->gai != NULL) {
        p->gai->peer = NULL;
        p->gai = NULL;
    }
    if (p->conn != NULL) {
        struct conn *c = p->conn;
        p->msgs_dropped += c->inflight_msgs;
        c->peer = NULL;
        p->conn = NULL;
        conn_close(c, "member removed");
    }
    queue_drop_all(p);
    /* inbound connections from it */
    struct conn *c = t->conns;
    while (c != NULL) {
        struct conn *next = c->next;
        if (!c->outbound && c->handshaken && c->from == p->id)
            conn_close(c, "member removed");
        c = next;
    }
    uv_timer_stop(&p->timer);
    close_handle(t, (uv_handle_t *)&p->timer, on_peer_timer_closed);
}

void server_peers_close(struct server_peers *t, server_peer_closed_fn *cb,
                        void *arg)
{
    CN_ASSERT(!t->closing);
    t->closing = 1;
    t->closed_cb = cb;
    t->closed_arg = arg;
    while (t->peers != NULL) {
        struct peer *p = t->peers;
        t->peers = p->next;
        peer_destroy(p);
    }
    while (t->conns != NULL)
        conn_close(t->conns, "shutting down");
    for (int i = 0; i < t->nlisteners; i++)
        close_handle(t, (uv_handle_t *)&t->listeners[i], NULL);
    uv_idle_stop(&t->idle);
    close_handle(t, (uv_handle_t *)&t->idle, NULL);
    close_handle(t, (uv_handle_t *)&t->sweep, NULL);
}

static int parse_urls(const char *const *urls, size_t n, struct cn_url *out,
                      int *nout)
{
    if (n == 0 || n > CN_CONFIG_URLS_MAX)
        return CN_EINVAL;
    for (size_t i = 0; i < n; i++) {
        char e[CN_ERRMSG_SIZE];
        if (config_url_parse(urls[i], &out[i], e) != CN_OK ||
            strcmp(out[i].scheme, "http") != 0)
            return CN_EINVAL;
    }
    *nout = (int)n;
    return CN_OK;
}

/* Makes room for one more removed ID. CN_OK or CN_ENOMEM (nothing
 * changes). At the cap there is always room: the oldest goes. */
static int removed_reserve(struct server_peers *t)
{
    if (t->nremoved < t->removed_cap ||
        t->removed_cap >= SERVER_PEERS_REMOVED_MAX)
        return CN_OK;
    size_t cap = t->removed_cap > 0 ? 2 * t->removed_cap : 8;
    if (cap > SERVER_PEERS_REMOVED_MAX)
        cap = SERVER_PEERS_REMOVED_MAX;
    uint64_t *r = cn_realloc(t->removed, cap * sizeof(*r));
    if (r == NULL)
        return CN_ENOMEM;
    t->removed = r;
    t->removed_cap = cap;
    return CN_OK;
}

/* Appends id (room reserved, not yet listed); a full list forgets its
 * oldest. */
static void removed_push(struct server_peers *t, uint64_t id)
{
    CN_ASSERT(removed_find(t, id) < 0 && t->removed_cap > 0);
    if (t->nremoved == t->removed_cap) {
        memmove(t->removed, t->removed + 1,
                (t->nremoved - 1) * sizeof(t->removed[0]));
        t->nremoved--;
    }
    t->removed[t->nremoved++] = id;
}

static void removed_clear(struct server_peers *t, uint64_t id)
{
    long i = removed_find(t, id);
    if (i < 0)
        return;
    memmove(t->removed + i, t->removed + i + 1,
            (t->nremoved - (size_t)i - 1) * sizeof(t->removed[0]));
    t->nremoved--;
}

int server_peers_add(struct server_peers *t, uint64_t id,
                     const char *const *urls, size_t n)
{
    if (id == 0 || id == t->cfg.self_id || t->closing)
        return CN_EINVAL;
    if (peer_find(t, id) != NULL)
        return CN_EEXIST;
    struct peer *p = cn_calloc(1, sizeof(*p));
    if (p == NULL)
        return CN_ENOMEM;
    if (parse_urls(urls, n, p->urls, &p->nurls) != CN_OK) {
        cn_free(p);
        return CN_EINVAL;
    }
    p->t = t;
    p->id = id;
    p->rtt_last_ns = -1;
    uv_timer_init(t->loop, &p->timer);
    p->timer.data = p;
    t->handles++;
    p->next = t->peers;
    t->peers = p;
    removed_clear(t, id);
    peer_dial(p);
    return CN_OK;
}

int server_peers_update(struct server_peers *t, uint64_t id,
                        const char *const *urls, size_t n)
{
    struct peer *p = peer_find(t, id);
    if (p == NULL)
        return CN_ENOTFOUND;
    struct cn_url tmp[CN_CONFIG_URLS_MAX];
    int ntmp = 0;
    if (parse_urls(urls, n, tmp, &ntmp) != CN_OK)
        return CN_EINVAL;
    if (p->gai != NULL) {
        p->gai->peer = NULL;
        p->gai = NULL;
    }
    if (p->conn != NULL)
        conn_close(p->conn, "peer URLs changed");
    memcpy(p->urls, tmp, sizeof(tmp[0]) * (size_t)ntmp);
    p->nurls = ntmp;
    p->url_idx = 0;
    p->attempts = 0;
    uv_timer_stop(&p->timer);
    peer_dial(p);
    return CN_OK;
}

int server_peers_remove(struct server_peers *t, uint64_t id)
{
    for (struct peer **pp = &t->peers; *pp != NULL; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            if (removed_reserve(t) != CN_OK)
                return CN_ENOMEM;
            struct peer *p = *pp;
            *pp = p->next;
            peer_destroy(p);
            removed_push(t, id);
            return CN_OK;
        }
    }
    return CN_ENOTFOUND;
}

int server_peers_mark_removed(struct server_peers *t, uint64_t id)
{
    if (id == 0 || id == t->cfg.self_id)
        return CN_EINVAL;
    if (peer_find(t, id) != NULL)
        return server_peers_remove(t, id);
    if (removed_find(t, id) >= 0)
        return CN_OK;
    if (removed_reserve(t) != CN_OK)
        return CN_ENOMEM;
    removed_push(t, id);
    return CN_OK;
}

int server_peers_send(struct server_peers *t, uint64_t to, uint8_t type,
                      const void *bytes, size_t len)
{
    struct peer *p = peer_find(t, to);
    if (p == NULL || t->closing)
        return CN_ENOTFOUND;
    if (len > msg_limit(t, type))
        return CN_ETOOBIG;
    uint8_t keep = t->cfg.snap_type != 0 && type == t->cfg.snap_type ? type : 0;
    int room = keep ? queue_make_room(p, len, keep)
                    : p->qmsgs + 1 <= t->cfg.queue_msgs_max &&
                          p->qbytes + len <= t->cfg.queue_bytes_max;
    if (!room) {
        p->msgs_dropped++;
        return CN_EBUSY;
    }
    struct pmsg *m =
        pmsg_new(FK_MSG, type, NULL, 0, bytes, len, t->cfg.frame_bytes_max);
    if (m == NULL)
        return CN_ENOMEM;
    m->queued_ms = uv_now(t->loop);
    if (p->qtail != NULL)
        p->qtail->next = m;
    else
        p->qhead = m;
    p->qtail = m;
    p->qmsgs++;
    p->qbytes += len;
    if (p->state == PS_UP)
        schedule_flush(t);
    return CN_OK;
}

int server_peers_stats(const struct server_peers *t, uint64_t id,
                       struct server_peer_stats *st)
{
    const struct peer *p = peer_find(t, id);
    if (p == NULL)
        return CN_ENOTFOUND;
    memset(st, 0, sizeof(*st));
    st->id = id;
    st->up = p->state == PS_UP;
    for (const struct conn *c = t->conns; c != NULL; c = c->next)
        if (!c->outbound && c->handshaken && c->from == id)
            st->inbound++;
    st->writes = p->writes;
    st->msgs_sent = p->msgs_sent;
    st->bytes_sent = p->bytes_sent;
    st->msgs_recv = p->msgs_recv;
    st->bytes_recv = p->bytes_recv;
    st->msgs_dropped = p->msgs_dropped;
    st->queue_msgs = p->qmsgs;
    st->queue_bytes = p->qbytes;
    st->connects = p->connects;
    st->disconnects = p->disconnects;
    st->refusals = p->refusals;
    st->refused_since_up = p->refused_since_up;
    st->rtt_last_ns = p->rtt_last_ns;
    st->rtt_min_ns = p->rtt_min_ns;
    st->rtt_max_ns = p->rtt_max_ns;
    st->rtt_count = p->rtt_count;
    if (p->rtt_count > 0) {
        double n = (double)p->rtt_count;
        st->rtt_avg_ns = p->rtt_sum / n;
        double var = p->rtt_sumsq / n - st->rtt_avg_ns * st->rtt_avg_ns;
        st->rtt_sd_ns = var > 0 ? sqrt(var) : 0;
    }
    return CN_OK;
}

void server_peers_counters(const struct server_peers *t,
                           struct server_peers_counters *out)
{
    *out = t->counters;
}

unsigned server_peers_port(const struct server_peers *t, int i)
{
    if (i < 0 || i >= t->nlisteners)
        return 0;
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&t->listeners[i], (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* ---- the blocking member-list client ---- */

static int64_t fetch_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline. 1: ready, 0: timed out, -1: poll
 * failed (errno). */
static int fetch_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - fetch_now_ms();
        if (left <= 0)
            return 0;
        struct pollfd pf = {fd, events, 0};
        int rc = poll(&pf, 1, left > INT32_MAX ? INT32_MAX : (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/* Connects to one address before deadline: CN_OK with *fd, CN_EIO or
 * CN_ETIMEDOUT with why set. */
static int fetch_connect_one(const struct addrinfo *ai, int64_t deadline,
                             int *fd, char why[CN_ERRMSG_SIZE])
{
    int s = socket(ai->ai_family,
                   ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (s < 0) {
        snprintf(why, CN_ERRMSG_SIZE, "socket: %s", strerror(errno));
        return CN_EIO;
    }
    int err = 0;
    if (connect(s, ai->ai_addr, ai->ai_addrlen) != 0) {
        err = errno;
        if (err == EINPROGRESS) {
            int w = fetch_wait(s, POLLOUT, deadline);
            if (w == 0) {
                close(s);
                snprintf(why, CN_ERRMSG_SIZE, "connect: timed out");
                return CN_ETIMEDOUT;
            }
            socklen_t len = sizeof(err);
            if (w < 0)
                err = errno;
            else if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
                err = errno;
        }
    }
    if (err != 0) {
        close(s);
        snprintf(why, CN_ERRMSG_SIZE, "connect: %s", strerror(err));
        return CN_EIO;
    }
    *fd = s;
    return CN_OK;
}

/* Resolves u and connects to its first address that answers. */
static int fetch_connect(const struct cn_url *u, int64_t deadline, int *fd,
                         char why[CN_ERRMSG_SIZE])
{
    char port[8];
    snprintf(port, sizeof(port), "%u", (unsigned)u->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    int g = getaddrinfo(u->host, port, &hints, &res);
    if (g != 0) {
        snprintf(why, CN_ERRMSG_SIZE, "resolve %s: %s", u->host,
                 gai_strerror(g));
        return CN_EIO;
    }
    int rc = CN_EIO;
    snprintf(why, CN_ERRMSG_SIZE, "resolve %s: no address", u->host);
    for (const struct addrinfo *a = res; a != NULL; a = a->ai_next) {
        rc = fetch_connect_one(a, deadline, fd, why);
        if (rc != CN_EIO)
            break; /* connected, or no time left for the next address */
    }
    freeaddrinfo(res);
    return rc;
}

/* A member-list answer being read: raw bytes, then reassembled frames. */
struct mresp {
    struct cn_buf in; /* received, not parsed from off */
    size_t off;
    struct cn_buf body; /* the answer: MRESP_HEAD_BYTES head, then the list */
    int done;           /* the last frame arrived */
};

/* Takes every complete frame out of r->in into r->body. Returns CN_OK
 * (r->done once the last frame is in), CN_ECORRUPT, CN_ETOOBIG or
 * CN_ENOMEM, with why set. */
static int mresp_parse(struct mresp *r, char why[CN_ERRMSG_SIZE])
{
    while (!r->done) {
        size_t avail = r->in.len - r->off;
        if (avail < HDR)
            break;
        const uint8_t *h = (const uint8_t *)r->in.data + r->off;
        uint32_t len = get32(h);
        if (len > FRAME_WIRE_MAX) {
            snprintf(why, CN_ERRMSG_SIZE, "frame length over the limit");
            return CN_ECORRUPT;
        }
        if (r->body.len + len > MRESP_HEAD_BYTES + MEMBERS_BYTES_MAX) {
            /* before buffering the frame, whose CRC is still unchecked */
            snprintf(why, CN_ERRMSG_SIZE, "member list over %u bytes",
                     MEMBERS_BYTES_MAX);
            return CN_ETOOBIG;
        }
        if (avail < HDR + (size_t)len)
            break;
        uint32_t crc = cn_crc32c(cn_crc32c(0, h, 8), h + HDR, len);
        if (crc != get32(h + 8) || h[7] != 0) {
            snprintf(why, CN_ERRMSG_SIZE, "frame checksum mismatch");
            return CN_ECORRUPT;
        }
        if (h[4] != FK_MEMBERS_RESP || h[5] != 0) {
            snprintf(why, CN_ERRMSG_SIZE,
                     "unexpected frame kind %u in the answer", h[4]);
            return CN_ECORRUPT;
        }
        if (cn_buf_append(&r->body, h + HDR, len) != CN_OK) {
            snprintf(why, CN_ERRMSG_SIZE, "out of memory");
            return CN_ENOMEM;
        }
        r->off += HDR + (size_t)len;
        r->done = !(h[6] & FF_MORE);
    }
    if (r->off == r->in.len) {
        r->off = 0;
        cn_buf_reset(&r->in);
    }
    return CN_OK;
}

/* The outcome of a whole answer; on CN_OK appends the list to out. */
static int mresp_result(const struct mresp *r, struct cn_buf *out,
                        char why[CN_ERRMSG_SIZE])
{
    const uint8_t *b = (const uint8_t *)r->body.data;
    if (r->body.len < MRESP_HEAD_BYTES) {
        snprintf(why, CN_ERRMSG_SIZE, "answer shorter than its head");
        return CN_ECORRUPT;
    }
    uint64_t by = get64(b + 8);
    switch (b[0]) {
    case MEMBERS_OK:
        if (cn_buf_append(out, b + MRESP_HEAD_BYTES,
                          r->body.len - MRESP_HEAD_BYTES) != CN_OK) {
            snprintf(why, CN_ERRMSG_SIZE, "out of memory");
            return CN_ENOMEM;
        }
        return CN_OK;
    case MEMBERS_NONE:
        snprintf(why, CN_ERRMSG_SIZE,
                 "member %" PRIx64 " does not serve the member list", by);
        return CN_ENOTFOUND;
    case MEMBERS_VERSION:
        snprintf(why, CN_ERRMSG_SIZE,
                 "member %" PRIx64 " does not speak peer protocol version %u "
                 "(it speaks %u)",
                 by, SERVER_PEER_PROTO_VERSION, b[1]);
        return CN_EVERSION;
    case MEMBERS_UNAVAILABLE:
        snprintf(why, CN_ERRMSG_SIZE,
                 "member %" PRIx64 " cannot give the member list now", by);
        return CN_EAGAIN;
    default:
        snprintf(why, CN_ERRMSG_SIZE, "unknown answer status %u", b[0]);
        return CN_ECORRUPT;
    }
}

/* Sends the request on fd and reads the whole answer into r. */
static int fetch_exchange(int fd, int64_t deadline, struct mresp *r,
                          char why[CN_ERRMSG_SIZE])
{
    uint8_t req[HDR + MREQ_BYTES] = {0};
    put32(req + HDR, HELLO_MAGIC);
    req[HDR + 4] = SERVER_PEER_PROTO_VERSION & 0xff;
    req[HDR + 5] = SERVER_PEER_PROTO_VERSION >> 8;
    frame_header(req, MREQ_BYTES, FK_MEMBERS_REQ, 0, 0, req + HDR);
    size_t sent = 0;
    while (sent < sizeof(req)) {
        ssize_t n = send(fd, req + sent, sizeof(req) - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf(why, CN_ERRMSG_SIZE, "send: %s", strerror(errno));
            return CN_EIO;
        }
        int w = fetch_wait(fd, POLLOUT, deadline);
        if (w <= 0) {
            snprintf(why, CN_ERRMSG_SIZE, "send: %s",
                     w == 0 ? "timed out" : strerror(errno));
            return w == 0 ? CN_ETIMEDOUT : CN_EIO;
        }
    }
    char buf[16384];
    while (!r->done) {
        int w = fetch_wait(fd, POLLIN, deadline);
        if (w == 0) {
            snprintf(why, CN_ERRMSG_SIZE, "no whole answer in time");
            return CN_ETIMEDOUT;
        }
        ssize_t n = w < 0 ? -1 : recv(fd, buf, sizeof(buf), 0);
        if (n == 0) {
            snprintf(why, CN_ERRMSG_SIZE, "%s",
                     r->body.len == 0 && r->in.len == 0
                         ? "closed without an answer (an older member, or "
                           "not a cairn peer port?)"
                         : "closed in the middle of the answer");
            return CN_EIO;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            snprintf(why, CN_ERRMSG_SIZE, "receive: %s", strerror(errno));
            return CN_EIO;
        }
        if (cn_buf_append(&r->in, buf, (size_t)n) != CN_OK) {
            snprintf(why, CN_ERRMSG_SIZE, "out of memory");
            return CN_ENOMEM;
        }
        int rc = mresp_parse(r, why);
        if (rc != CN_OK)
            return rc;
    }
    return CN_OK;
}

int server_peers_fetch_members(const char *peer_url, unsigned timeout_ms,
                               struct cn_buf *out, char errmsg[CN_ERRMSG_SIZE])
{
    struct cn_url u;
    char why[CN_ERRMSG_SIZE];
    if (config_url_parse(peer_url, &u, why) != CN_OK) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "member list: %.200s", why);
        return CN_EINVAL;
    }
    if (strcmp(u.scheme, "http") != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "member list from %.180s: TLS peer URLs are not supported yet",
                 u.raw);
        return CN_EINVAL;
    }
    int64_t deadline = fetch_now_ms() + (int64_t)timeout_ms;
    struct mresp r;
    memset(&r, 0, sizeof(r));
    int fd = -1;
    int rc = fetch_connect(&u, deadline, &fd, why);
    if (rc == CN_OK) {
        rc = fetch_exchange(fd, deadline, &r, why);
        close(fd);
    }
    if (rc == CN_OK)
        rc = mresp_result(&r, out, why);
    cn_buf_close(&r.in);
    cn_buf_close(&r.body);
    if (rc != CN_OK)
        snprintf(errmsg, CN_ERRMSG_SIZE, "member list from %.100s: %.130s",
                 u.raw, why);
    return rc;
}
