/*
 * Unit tests for the peer transport over real loopback sockets: several
 * transports (and raw POSIX sockets playing a bad peer) in one uv loop, on
 * ports the kernel picks. Includes peer.c to build frames the way it does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/peer.c"
#include "tap.h"

#define NODES_MAX 4
#define SEQ_PEERS 8

struct node {
    struct server_peers *t;
    uint64_t id;
    unsigned port;
    char url[64];
    uint64_t next_seq[SEQ_PEERS]; /* per sender index: next expected */
    uint64_t recv_count;
    uint64_t bad;       /* out of order or wrong content */
    struct cn_buf last; /* last message's bytes */
    uint8_t last_type;
    uint64_t last_from;
    uint64_t close_at;      /* non-zero: close the transport on this seq */
    unsigned removed_calls; /* cfg.removed calls */
    uint64_t removed_by;
    int close_on_removed; /* close the transport from cfg.removed */
    size_t members_len;   /* bytes cfg.members produces */
    int members_rc;       /* what cfg.members returns */
    uint64_t type9_recv;  /* messages of type 9 (the expiring type) */
    unsigned members_calls;
};

static uv_loop_t loop;
static int closed_count;

static void on_closed(void *arg)
{
    CN_UNUSED(arg);
    closed_count++;
}
static struct node nodes[NODES_MAX];

static int idx_of(uint64_t id)
{
    for (int i = 0; i < NODES_MAX; i++)
        if (nodes[i].id == id)
            return i;
    return SEQ_PEERS - 1;
}

/* Message: u64 seq, u64 from, then filler bytes derived from seq. */
static size_t make_msg(uint8_t *buf, uint64_t seq, uint64_t from, size_t len)
{
    put64(buf, seq);
    put64(buf + 8, from);
    for (size_t i = 16; i < len; i++)
        buf[i] = (uint8_t)(seq * 31 + i);
    return len;
}

static void on_recv(void *ctx, uint64_t from, uint8_t type, const void *bytes,
                    size_t len)
{
    struct node *n = ctx;
    const uint8_t *b = bytes;
    n->recv_count++;
    if (type == 9)
        n->type9_recv++;
    n->last_type = type;
    n->last_from = from;
    cn_buf_reset(&n->last);
    REQUIRE_EQ(cn_buf_append(&n->last, bytes, len), CN_OK);
    if (type != 7 || len < 16)
        return;
    uint64_t seq = get64(b);
    int fi = idx_of(from);
    if (get64(b + 8) != from || seq < n->next_seq[fi]) {
        n->bad++;
        return;
    }
    for (size_t i = 16; i < len; i++)
        if (b[i] != (uint8_t)(seq * 31 + i)) {
            n->bad++;
            return;
        }
    n->next_seq[fi] = seq + 1;
    if (n->close_at != 0 && seq == n->close_at && n->t != NULL) {
        server_peers_close(n->t, on_closed, NULL);
        n->t = NULL;
    }
}

static void on_removed(void *ctx, uint64_t by)
{
    struct node *n = ctx;
    n->removed_calls++;
    n->removed_by = by;
    if (n->close_on_removed && n->t != NULL) {
        server_peers_close(n->t, on_closed, NULL);
        n->t = NULL;
    }
}

/* The member list of node n: members_len bytes derived from its ID. */
static uint8_t list_byte(uint64_t id, size_t i)
{
    return (uint8_t)(id * 7 + i * 13 + (i >> 8));
}

static int on_members(void *ctx, struct cn_buf *out)
{
    struct node *n = ctx;
    n->members_calls++;
    CHECK_EQ(out->len, 0);
    for (size_t i = 0; i < n->members_len; i++) {
        uint8_t b = list_byte(n->id, i);
        if (cn_buf_append(out, &b, 1) != CN_OK)
            return CN_ENOMEM;
    }
    return n->members_rc;
}

static struct server_peers_config base_cfg(struct node *n, uint64_t cluster)
{
    struct server_peers_config c;
    memset(&c, 0, sizeof(c));
    c.self_id = n->id;
    c.cluster_id = cluster;
    c.recv = on_recv;
    c.recv_ctx = n;
    c.removed = on_removed;
    c.removed_ctx = n;
    c.seed = n->id;
    c.backoff_min_ms = 10;
    c.backoff_max_ms = 80;
    c.ping_interval_ms = 20;
    return c;
}

/* Starts node i listening on port (0: any), with cfg tweaks applied. */
static void node_start(int i, uint64_t id, uint64_t cluster, unsigned port,
                       const struct server_peers_config *over)
{
    struct node *n = &nodes[i];
    n->id = id;
    struct cn_url_list l;
    memset(&l, 0, sizeof(l));
    char e[CN_ERRMSG_SIZE];
    char u[64];
    snprintf(u, sizeof(u), "http://127.0.0.1:%u", port);
    REQUIRE_EQ(config_url_parse(u, &l.urls[0], e), CN_OK);
    l.count = 1;
    struct server_peers_config c = over ? *over : base_cfg(n, cluster);
    c.listen_urls = &l;
    int rc = server_peers_new(&n->t, &loop, &c, e);
    if (rc != CN_OK)
        tap_diag("server_peers_new: %s", e);
    REQUIRE_EQ(rc, CN_OK);
    n->port = server_peers_port(n->t, 0);
    REQUIRE(n->port != 0);
    snprintf(n->url, sizeof(n->url), "http://127.0.0.1:%u", n->port);
}

static void node_stop(int i)
{
    if (nodes[i].t == NULL)
        return;
    server_peers_close(nodes[i].t, on_closed, NULL);
    nodes[i].t = NULL;
}

static void link_nodes(int a, int b)
{
    const char *u = nodes[b].url;
    REQUIRE_EQ(server_peers_add(nodes[a].t, nodes[b].id, &u, 1), CN_OK);
}

static void on_tick(uv_timer_t *h)
{
    CN_UNUSED(h);
}

typedef int cond_fn(void *arg);

/* Runs the loop until cond holds or timeout_ms passes. Returns cond. */
static int run_until(cond_fn *cond, void *arg, unsigned timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(&loop) + timeout_ms;
    int ok = 0;
    while (!(ok = cond(arg)) && uv_now(&loop) < end)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static int never(void *arg)
{
    CN_UNUSED(arg);
    return 0;
}

static void run_for(unsigned ms)
{
    run_until(never, NULL, ms);
}

static void setup(void)
{
    memset(nodes, 0, sizeof(nodes));
    closed_count = 0;
    REQUIRE_EQ(uv_loop_init(&loop), 0);
}

/* Stops every node and checks that the loop ends with nothing left. */
static void teardown(void)
{
    int n = 0;
    for (int i = 0; i < NODES_MAX; i++) {
        if (nodes[i].t != NULL) {
            node_stop(i);
            n++;
        }
    }
    for (int i = 0; i < 200 && uv_run(&loop, UV_RUN_NOWAIT) != 0; i++)
        usleep(1000);
    CHECK(uv_loop_alive(&loop) == 0);
    CHECK_EQ(uv_loop_close(&loop), 0);
    for (int i = 0; i < NODES_MAX; i++)
        cn_buf_close(&nodes[i].last);
    CN_UNUSED(n);
}

struct want {
    int node;
    int from;
    uint64_t seq; /* next_seq to reach */
};

static int got_all(void *arg)
{
    const struct want *w = arg;
    for (; w->node >= 0; w++)
        if (nodes[w->node].next_seq[w->from] < w->seq)
            return 0;
    return 1;
}

static int link_up(void *arg)
{
    int *ab = arg;
    struct server_peer_stats st;
    if (server_peers_stats(nodes[ab[0]].t, nodes[ab[1]].id, &st) != CN_OK)
        return 0;
    return st.up;
}

TEST(peer_three_transports_exchange_in_order)
{
    setup();
    for (int i = 0; i < 3; i++)
        node_start(i, 0x100 + (uint64_t)i, 42, 0, NULL);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                link_nodes(i, j);
    enum { N = 3000 };
    static uint8_t buf[4096];
    struct cn_prng r;
    cn_prng_seed(&r, 7);
    /* Half sent before any link is up (queued), half in rounds. */
    for (uint64_t s = 0; s < N; s++) {
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) {
                if (i == j)
                    continue;
                size_t len = 16 + (size_t)cn_prng_below(&r, 2000);
                make_msg(buf, s, nodes[i].id, len);
                REQUIRE_EQ(
                    server_peers_send(nodes[i].t, nodes[j].id, 7, buf, len),
                    CN_OK);
            }
        if (s >= N / 2 && s % 100 == 0)
            uv_run(&loop, UV_RUN_NOWAIT);
    }
    struct want w[7];
    int k = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            if (i != j)
                w[k++] = (struct want){j, i, N};
    w[k] = (struct want){-1, 0, 0};
    REQUIRE(run_until(got_all, w, 10000));
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(nodes[i].bad, 0);
        CHECK_EQ(nodes[i].recv_count, 2 * N);
    }
    /* batching: far fewer writes than messages */
    struct server_peer_stats st;
    REQUIRE_EQ(server_peers_stats(nodes[0].t, nodes[1].id, &st), CN_OK);
    CHECK_EQ(st.msgs_sent, N);
    CHECK_EQ(st.msgs_dropped, 0);
    CHECK(st.up);
    CHECK_EQ(st.inbound, 1);
    CHECK_EQ(st.msgs_recv, N);
    tap_diag("0->1: %" PRIu64 " messages in %" PRIu64 " writes", st.msgs_sent,
             st.writes);
    CHECK(st.writes * 10 < st.msgs_sent);
    /* pings measured a round trip */
    run_for(100);
    REQUIRE_EQ(server_peers_stats(nodes[0].t, nodes[1].id, &st), CN_OK);
    CHECK(st.rtt_count > 0);
    CHECK(st.rtt_last_ns >= 0 && st.rtt_min_ns <= st.rtt_max_ns);
    CHECK(st.rtt_avg_ns > 0);
    teardown();
}

TEST(peer_reconnects_after_receiver_restart)
{
    setup();
    node_start(0, 0xa1, 5, 0, NULL);
    node_start(1, 0xb2, 5, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    uint8_t buf[64];
    for (uint64_t s = 0; s < 100; s++)
        REQUIRE_EQ(server_peers_send(nodes[0].t, nodes[1].id, 7, buf,
                                     make_msg(buf, s, nodes[0].id, 40)),
                   CN_OK);
    struct want w[] = {{1, 0, 100}, {-1, 0, 0}};
    REQUIRE(run_until(got_all, w, 5000));
    /* the receiver goes away */
    unsigned port = nodes[1].port;
    node_stop(1);
    int ab[2] = {0, 1};
    run_for(100);
    CHECK(!link_up(ab));
    /* sent while it is down: queued, or lost with the broken link */
    for (uint64_t s = 100; s < 150; s++)
        server_peers_send(nodes[0].t, 0xb2, 7, buf,
                          make_msg(buf, s, nodes[0].id, 40));
    run_for(200);
    /* it comes back on the same port with no memory of the old stream */
    nodes[1].t = NULL;
    uint64_t recv_before = nodes[1].recv_count;
    node_start(1, 0xb2, 5, port, NULL);
    link_nodes(1, 0);
    REQUIRE(run_until(link_up, ab, 5000));
    for (uint64_t s = 1000; s < 1100; s++)
        REQUIRE_EQ(server_peers_send(nodes[0].t, nodes[1].id, 7, buf,
                                     make_msg(buf, s, nodes[0].id, 40)),
                   CN_OK);
    struct want w2[] = {{1, 0, 1100}, {-1, 0, 0}};
    REQUIRE(run_until(got_all, w2, 5000));
    CHECK_EQ(nodes[1].bad, 0);
    CHECK(nodes[1].recv_count - recv_before >= 100);
    struct server_peer_stats st;
    REQUIRE_EQ(server_peers_stats(nodes[0].t, nodes[1].id, &st), CN_OK);
    CHECK(st.connects >= 2);
    CHECK(st.disconnects >= 1);
    teardown();
}

static int type9_seen(void *arg)
{
    return nodes[*(int *)arg].type9_recv > 0;
}

TEST(peer_expiring_type_is_dropped_after_waiting_in_the_queue)
{
    setup();
    struct server_peers_config c0 = base_cfg(&nodes[0], 5);
    nodes[0].id = 0xa1;
    c0.self_id = 0xa1;
    c0.seed = 0xa1;
    c0.expire_type = 9;
    c0.expire_ms = 150;
    node_start(0, 0xa1, 5, 0, &c0);
    node_start(1, 0xb2, 5, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    int ab[2] = {0, 1};
    REQUIRE(run_until(link_up, ab, 5000));
    uint8_t buf[64];
    /* with the link up, the expiring type goes out as any other */
    int one = 1;
    REQUIRE_EQ(server_peers_send(nodes[0].t, 0xb2, 9, "now", 3), CN_OK);
    REQUIRE(run_until(type9_seen, &one, 5000));
    CHECK_EQ(nodes[1].type9_recv, 1u);
    /* the receiver goes away; both types are queued meanwhile */
    unsigned port = nodes[1].port;
    node_stop(1);
    run_for(100);
    CHECK(!link_up(ab));
    nodes[1].t = NULL;
    for (uint64_t s = 0; s < 20; s++) {
        CHECK_EQ(server_peers_send(nodes[0].t, 0xb2, 9, "late", 4), CN_OK);
        CHECK_EQ(server_peers_send(nodes[0].t, 0xb2, 7, buf,
                                   make_msg(buf, s, nodes[0].id, 40)),
                 CN_OK);
    }
    run_for(300); /* longer than expire_ms */
    memset(nodes[1].next_seq, 0, sizeof(nodes[1].next_seq));
    nodes[1].type9_recv = 0;
    node_start(1, 0xb2, 5, port, NULL);
    link_nodes(1, 0);
    REQUIRE(run_until(link_up, ab, 5000));
    struct want w[] = {{1, 0, 20}, {-1, 0, 0}};
    REQUIRE(run_until(got_all, w, 5000)); /* the others were kept */
    run_for(100);
    CHECK_EQ(nodes[1].type9_recv, 0u); /* the expiring ones were not */
    CHECK_EQ(nodes[1].bad, 0);
    struct server_peer_stats st;
    REQUIRE_EQ(server_peers_stats(nodes[0].t, 0xb2, &st), CN_OK);
    CHECK(st.msgs_dropped >= 20);
    teardown();
}

static int refused_seen(void *arg)
{
    int *ab = arg; /* dialer, acceptor */
    struct server_peer_stats st;
    struct server_peers_counters c;
    server_peers_stats(nodes[ab[0]].t, nodes[ab[1]].id, &st);
    server_peers_counters(nodes[ab[1]].t, &c);
    return st.refusals >= 2 && c.refused >= 2;
}

TEST(peer_wrong_cluster_or_unknown_member_refused)
{
    setup();
    node_start(0, 0xa1, 1, 0, NULL);
    node_start(1, 0xb2, 2, 0, NULL); /* another cluster */
    node_start(2, 0xc3, 1, 0, NULL); /* same cluster, 0 does not know it */
    link_nodes(0, 1);
    link_nodes(1, 0);
    link_nodes(2, 0);
    uint8_t buf[32];
    REQUIRE_EQ(server_peers_send(nodes[0].t, nodes[1].id, 7, buf,
                                 make_msg(buf, 0, nodes[0].id, 32)),
               CN_OK);
    REQUIRE_EQ(server_peers_send(nodes[2].t, nodes[0].id, 7, buf,
                                 make_msg(buf, 0, nodes[2].id, 32)),
               CN_OK);
    int ab[2] = {0, 1}, ca[2] = {2, 0};
    REQUIRE(run_until(refused_seen, ab, 5000));
    REQUIRE(run_until(refused_seen, ca, 5000));
    CHECK(!link_up(ab));
    CHECK(!link_up(ca));
    CHECK_EQ(nodes[0].recv_count, 0);
    CHECK_EQ(nodes[1].recv_count, 0);
    /* once 0 knows 2, 2's link comes up and the queued message arrives */
    link_nodes(0, 2);
    REQUIRE(run_until(link_up, ca, 5000));
    struct want w[] = {{0, 2, 1}, {-1, 0, 0}};
    REQUIRE(run_until(got_all, w, 5000));
    teardown();
}

/* ---- a raw socket playing a peer ---- */

static int raw_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
    return fd;
}

static size_t raw_frame(uint8_t *out, uint8_t kind, uint8_t mtype,
                        uint8_t flags, const void *pl, uint32_t len)
{
    memcpy(out + HDR, pl, len);
    frame_header(out, len, kind, mtype, flags, out + HDR);
    return HDR + len;
}

static size_t raw_hello(uint8_t *out, uint64_t cluster, uint64_t from,
                        uint64_t to)
{
    uint8_t h[HELLO_BYTES] = {0};
    put32(h, HELLO_MAGIC);
    h[4] = SERVER_PEER_PROTO_VERSION;
    put64(h + 8, cluster);
    put64(h + 16, from);
    put64(h + 24, to);
    return raw_frame(out, FK_HELLO, 0, 0, h, HELLO_BYTES);
}

struct corrupt_want {
    int node;
    uint64_t count;
};

static int corrupt_seen(void *arg)
{
    const struct corrupt_want *w = arg;
    struct server_peers_counters c;
    server_peers_counters(nodes[w->node].t, &c);
    return c.corrupt >= w->count;
}

/* Reads until EOF (or 2 s); returns bytes read, -1 on error. */
static long raw_drain(int fd)
{
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    long total = 0;
    char b[256];
    for (;;) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n == 0)
            return total;
        if (n < 0)
            return -1;
        total += n;
    }
}

TEST(peer_corrupted_frame_closes_connection)
{
    setup();
    node_start(0, 0xa1, 9, 0, NULL);
    const char *u = "http://127.0.0.1:1";
    REQUIRE_EQ(server_peers_add(nodes[0].t, 0xee, &u, 1), CN_OK);
    int fd = raw_connect(nodes[0].port);
    uint8_t out[512];
    size_t n = raw_hello(out, 9, 0xee, 0xa1);
    uint8_t pl[48];
    make_msg(pl, 0, 0xee, sizeof(pl));
    n += raw_frame(out + n, FK_MSG, 7, 0, pl, sizeof(pl)); /* good */
    size_t bad_at = n;
    make_msg(pl, 1, 0xee, sizeof(pl));
    n += raw_frame(out + n, FK_MSG, 7, 0, pl, sizeof(pl));
    out[bad_at + HDR + 20] ^= 0x40; /* flip one payload bit */
    make_msg(pl, 2, 0xee, sizeof(pl));
    n += raw_frame(out + n, FK_MSG, 7, 0, pl, sizeof(pl)); /* never read */
    REQUIRE_EQ(send(fd, out, n, 0), (ssize_t)n);
    struct corrupt_want want = {0, 1};
    REQUIRE(run_until(corrupt_seen, &want, 5000));
    CHECK_EQ(nodes[0].recv_count, 1); /* the frame before the damage */
    CHECK_EQ(nodes[0].next_seq[SEQ_PEERS - 1], 1);
    /* the connection is closed: the ACK, then EOF */
    run_for(50);
    CHECK_EQ(raw_drain(fd), HDR + ACK_BYTES);
    close(fd);
    /* a damaged header (length field) is caught too */
    fd = raw_connect(nodes[0].port);
    n = raw_hello(out, 9, 0xee, 0xa1);
    n += raw_frame(out + n, FK_MSG, 7, 0, pl, sizeof(pl));
    out[n - sizeof(pl) - HDR] ^= 0x01; /* len 48 -> 49 */
    memset(out + n, 0, 16);            /* the missing byte and more */
    n += 16;
    REQUIRE_EQ(send(fd, out, n, 0), (ssize_t)n);
    want.count = 2;
    REQUIRE(run_until(corrupt_seen, &want, 5000));
    CHECK_EQ(nodes[0].recv_count, 1);
    close(fd);
    /* garbage instead of a handshake */
    fd = raw_connect(nodes[0].port);
    REQUIRE_EQ(send(fd, "GET / HTTP/1.1\r\n\r\n", 18, 0), 18);
    want.count = 3;
    REQUIRE(run_until(corrupt_seen, &want, 5000));
    close(fd);
    teardown();
}

TEST(peer_large_message_travels_in_chunks)
{
    setup();
    struct server_peers_config c0 = base_cfg(&nodes[0], 3);
    nodes[0].id = 0xa1;
    c0.self_id = 0xa1;
    c0.frame_bytes_max = 64 * 1024;
    c0.msg_bytes_max = 8u * 1024 * 1024;
    node_start(0, 0xa1, 3, 0, &c0);
    node_start(1, 0xb2, 3, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    size_t big = 3u * 1024 * 1024 + 77;
    uint8_t *buf = cn_malloc(big);
    REQUIRE(buf != NULL);
    uint8_t small[32];
    REQUIRE_EQ(server_peers_send(nodes[0].t, 0xb2, 7, small,
                                 make_msg(small, 0, 0xa1, 32)),
               CN_OK);
    make_msg(buf, 1, 0xa1, big);
    REQUIRE_EQ(server_peers_send(nodes[0].t, 0xb2, 7, buf, big), CN_OK);
    REQUIRE_EQ(server_peers_send(nodes[0].t, 0xb2, 7, small,
                                 make_msg(small, 2, 0xa1, 32)),
               CN_OK);
    struct want w[] = {{1, 0, 3}, {-1, 0, 0}};
    REQUIRE(run_until(got_all, w, 5000));
    CHECK_EQ(nodes[1].bad, 0);
    CHECK_EQ(nodes[1].recv_count, 3);
    /* the receiver's limit (4 MiB) refuses a bigger one whole */
    size_t huge = 5u * 1024 * 1024;
    uint8_t *hb = cn_malloc(huge);
    REQUIRE(hb != NULL);
    make_msg(hb, 3, 0xa1, huge);
    REQUIRE_EQ(server_peers_send(nodes[0].t, 0xb2, 7, hb, huge), CN_OK);
    struct corrupt_want want = {1, 1};
    CHECK(run_until(corrupt_seen, &want, 5000));
    struct server_peers_counters c;
    server_peers_counters(nodes[1].t, &c);
    CHECK_EQ(c.oversize, 1);
    CHECK_EQ(nodes[1].recv_count, 3);
    cn_free(hb);
    cn_free(buf);
    teardown();
}

TEST(peer_send_limits_and_queue_bound)
{
    setup();
    struct server_peers_config c0;
    nodes[0].id = 0xa1;
    c0 = base_cfg(&nodes[0], 3);
    c0.queue_msgs_max = 10;
    c0.snap_type = 9;
    c0.msg_bytes_max = 1000;
    c0.snap_bytes_max = 5000;
    node_start(0, 0xa1, 3, 0, &c0);
    /* a peer that never answers: port 1 refuses */
    const char *u = "http://127.0.0.1:1";
    REQUIRE_EQ(server_peers_add(nodes[0].t, 0xdead, &u, 1), CN_OK);
    uint8_t buf[4000] = {0};
    for (int i = 0; i < 10; i++)
        CHECK_EQ(server_peers_send(nodes[0].t, 0xdead, 7, buf, 100), CN_OK);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(server_peers_send(nodes[0].t, 0xdead, 7, buf, 100), CN_EBUSY);
    struct server_peer_stats st;
    REQUIRE_EQ(server_peers_stats(nodes[0].t, 0xdead, &st), CN_OK);
    CHECK_EQ(st.queue_msgs, 10);
    CHECK_EQ(st.msgs_dropped, 5);
    /* a snapshot makes room by dropping the oldest other message */
    CHECK_EQ(server_peers_send(nodes[0].t, 0xdead, 9, buf, 4000), CN_OK);
    REQUIRE_EQ(server_peers_stats(nodes[0].t, 0xdead, &st), CN_OK);
    CHECK_EQ(st.queue_msgs, 10);
    CHECK_EQ(st.msgs_dropped, 6);
    /* size limits per type */
    CHECK_EQ(server_peers_send(nodes[0].t, 0xdead, 7, buf, 1001), CN_ETOOBIG);
    CHECK_EQ(server_peers_send(nodes[0].t, 0xdead, 9, buf, 4000), CN_OK);
    CHECK_EQ(server_peers_send(nodes[0].t, 0xbeef, 7, buf, 1), CN_ENOTFOUND);
    /* back-off keeps trying without piling up */
    run_for(300);
    REQUIRE_EQ(server_peers_stats(nodes[0].t, 0xdead, &st), CN_OK);
    CHECK(!st.up);
    CHECK_EQ(st.connects, 0);
    CHECK_EQ(st.queue_msgs, 10);
    /* bad arguments */
    const char *tls = "https://127.0.0.1:2380";
    CHECK_EQ(server_peers_add(nodes[0].t, 0x77, &tls, 1), CN_EINVAL);
    CHECK_EQ(server_peers_add(nodes[0].t, 0xa1, &u, 1), CN_EINVAL);
    CHECK_EQ(server_peers_add(nodes[0].t, 0xdead, &u, 1), CN_EEXIST);
    CHECK_EQ(server_peers_remove(nodes[0].t, 0xdead), CN_OK);
    CHECK_EQ(server_peers_remove(nodes[0].t, 0xdead), CN_ENOTFOUND);
    CHECK_EQ(server_peers_send(nodes[0].t, 0xdead, 7, buf, 1), CN_ENOTFOUND);
    teardown();
}

TEST(peer_remove_closes_both_directions)
{
    setup();
    node_start(0, 0xa1, 4, 0, NULL);
    node_start(1, 0xb2, 4, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    int ab[2] = {0, 1}, ba[2] = {1, 0};
    REQUIRE(run_until(link_up, ab, 5000));
    REQUIRE(run_until(link_up, ba, 5000));
    REQUIRE_EQ(server_peers_remove(nodes[1].t, 0xa1), CN_OK);
    run_for(200);
    /* 1 refuses 0 now: 0's link stays down and counts refusals */
    struct server_peer_stats st;
    REQUIRE_EQ(server_peers_stats(nodes[0].t, 0xb2, &st), CN_OK);
    CHECK(!st.up);
    CHECK(st.refusals >= 1);
    /* peer URL update: 0 is pointed at a dead port, then back */
    const char *dead = "http://127.0.0.1:1";
    const char *u0 = nodes[0].url;
    REQUIRE_EQ(server_peers_add(nodes[1].t, 0xa1, &u0, 1), CN_OK);
    REQUIRE_EQ(server_peers_update(nodes[0].t, 0xb2, &dead, 1), CN_OK);
    run_for(100);
    CHECK(!link_up(ab));
    const char *good = nodes[1].url;
    REQUIRE_EQ(server_peers_update(nodes[0].t, 0xb2, &good, 1), CN_OK);
    REQUIRE(run_until(link_up, ab, 5000));
    teardown();
}

TEST(peer_close_from_inside_recv)
{
    /* Closing the transport from its own callback must be safe. */
    setup();
    node_start(0, 0xa1, 4, 0, NULL);
    node_start(1, 0xb2, 4, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    uint8_t buf[32];
    for (uint64_t s = 0; s < 50; s++)
        REQUIRE_EQ(server_peers_send(nodes[0].t, 0xb2, 7, buf,
                                     make_msg(buf, s, 0xa1, 32)),
                   CN_OK);
    nodes[1].close_at = 10;
    struct want w[] = {{1, 0, 11}, {-1, 0, 0}};
    REQUIRE(run_until(got_all, w, 5000));
    run_for(50);
    CHECK(nodes[1].t == NULL);
    CHECK_EQ(closed_count, 1);
    CHECK_EQ(nodes[1].next_seq[0], 11); /* nothing after the close */
    teardown();
}

/* ---- removed members ---- */

static int fd_readable(void *arg)
{
    struct pollfd pf = {*(int *)arg, POLLIN, 0};
    return poll(&pf, 1, 0) > 0;
}

/* Reads up to n bytes (2 s timeout); returns how many came before EOF. */
static size_t raw_read(int fd, uint8_t *buf, size_t n)
{
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* A HELLO from member from (believing it talks to member to) to node i:
 * the status of the ACK it gets, or -1 for no well-formed ACK. */
static int raw_hello_status(int i, uint64_t cluster, uint64_t from, uint64_t to)
{
    int fd = raw_connect(nodes[i].port);
    uint8_t out[HDR + HELLO_BYTES];
    size_t n = raw_hello(out, cluster, from, to);
    REQUIRE_EQ(send(fd, out, n, 0), (ssize_t)n);
    run_until(fd_readable, &fd, 3000);
    uint8_t in[HDR + ACK_BYTES];
    size_t got = raw_read(fd, in, sizeof(in));
    close(fd);
    if (got != sizeof(in) || get32(in) != ACK_BYTES || in[4] != FK_ACK)
        return -1;
    if (cn_crc32c(cn_crc32c(0, in, 8), in + HDR, ACK_BYTES) != get32(in + 8))
        return -1;
    return in[HDR];
}

struct refusals_want {
    int node;
    uint64_t peer;
    uint64_t count;
};

static int refusals_reached(void *arg)
{
    const struct refusals_want *w = arg;
    struct server_peer_stats st;
    if (nodes[w->node].t == NULL ||
        server_peers_stats(nodes[w->node].t, w->peer, &st) != CN_OK)
        return 0;
    return st.refusals >= w->count;
}

TEST(peer_removed_member_is_told_once)
{
    setup();
    node_start(0, 0xa1, 4, 0, NULL);
    node_start(1, 0xb2, 4, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    int ab[2] = {0, 1}, ba[2] = {1, 0};
    REQUIRE(run_until(link_up, ab, 5000));
    REQUIRE(run_until(link_up, ba, 5000));
    REQUIRE_EQ(server_peers_remove(nodes[1].t, 0xa1), CN_OK);
    struct refusals_want w = {0, 0xb2, 3};
    REQUIRE(run_until(refusals_reached, &w, 5000));
    CHECK_EQ(nodes[0].removed_calls, 1);
    CHECK_EQ(nodes[0].removed_by, 0xb2);
    CHECK_EQ(nodes[1].removed_calls, 0);
    CHECK(!link_up(ab));
    /* it keeps dialing and keeps being refused; told only once */
    w.count = 6;
    REQUIRE(run_until(refusals_reached, &w, 5000));
    CHECK_EQ(nodes[0].removed_calls, 1);
    CHECK(!link_up(ab));
    struct server_peers_counters c;
    server_peers_counters(nodes[1].t, &c);
    CHECK(c.refused >= 6);
    /* "removed" whatever member the dialer takes us for; the cluster ID
     * is checked first; other members are still just unknown */
    CHECK_EQ(raw_hello_status(1, 4, 0xa1, 0xb2), ACK_REMOVED);
    CHECK_EQ(raw_hello_status(1, 4, 0xa1, 0x999), ACK_REMOVED);
    CHECK_EQ(raw_hello_status(1, 5, 0xa1, 0xb2), ACK_CLUSTER);
    CHECK_EQ(raw_hello_status(1, 4, 0xcc, 0xb2), ACK_UNKNOWN);
    teardown();
}

TEST(peer_mark_removed_before_any_connection)
{
    setup();
    node_start(1, 0xb2, 4, 0, NULL);
    /* a restarted member loads its list of removed IDs */
    CHECK_EQ(server_peers_mark_removed(nodes[1].t, 0xa1), CN_OK);
    CHECK_EQ(server_peers_mark_removed(nodes[1].t, 0xa1), CN_OK);
    CHECK_EQ(nodes[1].t->nremoved, 1);
    CHECK_EQ(server_peers_mark_removed(nodes[1].t, 0), CN_EINVAL);
    CHECK_EQ(server_peers_mark_removed(nodes[1].t, 0xb2), CN_EINVAL);
    /* marking a current peer removes it */
    const char *dead = "http://127.0.0.1:1";
    REQUIRE_EQ(server_peers_add(nodes[1].t, 0xc3, &dead, 1), CN_OK);
    CHECK_EQ(server_peers_mark_removed(nodes[1].t, 0xc3), CN_OK);
    struct server_peer_stats st;
    CHECK_EQ(server_peers_stats(nodes[1].t, 0xc3, &st), CN_ENOTFOUND);
    CHECK_EQ(server_peers_send(nodes[1].t, 0xc3, 7, "x", 1), CN_ENOTFOUND);
    CHECK_EQ(raw_hello_status(1, 4, 0xc3, 0xb2), ACK_REMOVED);
    /* the removed member starts and dials */
    node_start(0, 0xa1, 4, 0, NULL);
    link_nodes(0, 1);
    struct refusals_want w = {0, 0xb2, 3};
    REQUIRE(run_until(refusals_reached, &w, 5000));
    CHECK_EQ(nodes[0].removed_calls, 1);
    CHECK_EQ(nodes[0].removed_by, 0xb2);
    /* adding it again clears the mark: the retrying link comes up */
    link_nodes(1, 0);
    CHECK_EQ(nodes[1].t->nremoved, 1);
    int ab[2] = {0, 1};
    REQUIRE(run_until(link_up, ab, 5000));
    CHECK_EQ(nodes[0].removed_calls, 1);
    CHECK_EQ(raw_hello_status(1, 4, 0xc3, 0xb2), ACK_REMOVED);
    teardown();
}

static int transport_gone(void *arg)
{
    return nodes[*(int *)arg].t == NULL;
}

TEST(peer_removed_callback_may_close_the_transport)
{
    setup();
    node_start(1, 0xb2, 4, 0, NULL);
    REQUIRE_EQ(server_peers_mark_removed(nodes[1].t, 0xa1), CN_OK);
    node_start(0, 0xa1, 4, 0, NULL);
    nodes[0].close_on_removed = 1;
    link_nodes(0, 1);
    uint8_t buf[32];
    REQUIRE_EQ(
        server_peers_send(nodes[0].t, 0xb2, 7, buf, make_msg(buf, 0, 0xa1, 32)),
        CN_OK);
    int zero = 0;
    REQUIRE(run_until(transport_gone, &zero, 5000));
    run_for(50);
    CHECK_EQ(nodes[0].removed_calls, 1);
    CHECK_EQ(closed_count, 1);
    CHECK_EQ(nodes[1].recv_count, 0);
    teardown();
}

TEST(peer_removed_list_keeps_the_newest)
{
    setup();
    node_start(0, 0xa1, 4, 0, NULL);
    for (uint64_t i = 0; i <= SERVER_PEERS_REMOVED_MAX; i++)
        REQUIRE_EQ(server_peers_mark_removed(nodes[0].t, 0x10000 + i), CN_OK);
    CHECK_EQ(nodes[0].t->nremoved, SERVER_PEERS_REMOVED_MAX);
    /* the oldest mark went: that member is refused, as unknown */
    CHECK_EQ(raw_hello_status(0, 4, 0x10000, 0xa1), ACK_UNKNOWN);
    CHECK_EQ(raw_hello_status(0, 4, 0x10001, 0xa1), ACK_REMOVED);
    CHECK_EQ(raw_hello_status(0, 4, 0x10000 + SERVER_PEERS_REMOVED_MAX, 0xa1),
             ACK_REMOVED);
    teardown();
}

TEST(peer_remove_out_of_memory_changes_nothing)
{
    setup();
    node_start(0, 0xa1, 4, 0, NULL);
    const char *dead = "http://127.0.0.1:1";
    REQUIRE_EQ(server_peers_add(nodes[0].t, 0xdead, &dead, 1), CN_OK);
    struct server_peer_stats st;
    cn_mem_fault_arm(1, 0);
    CHECK_EQ(server_peers_remove(nodes[0].t, 0xdead), CN_ENOMEM);
    CHECK_EQ(cn_mem_fault_disarm(), 1);
    CHECK_EQ(server_peers_stats(nodes[0].t, 0xdead, &st), CN_OK);
    cn_mem_fault_arm(1, 0);
    CHECK_EQ(server_peers_mark_removed(nodes[0].t, 0x55), CN_ENOMEM);
    CHECK_EQ(cn_mem_fault_disarm(), 1);
    CHECK_EQ(nodes[0].t->nremoved, 0);
    CHECK_EQ(raw_hello_status(0, 4, 0x55, 0xa1), ACK_UNKNOWN);
    CHECK_EQ(server_peers_remove(nodes[0].t, 0xdead), CN_OK);
    CHECK_EQ(server_peers_stats(nodes[0].t, 0xdead, &st), CN_ENOTFOUND);
    CHECK_EQ(raw_hello_status(0, 4, 0xdead, 0xa1), ACK_REMOVED);
    teardown();
}

/* ---- member-list fetch ---- */

static int write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, void *p, size_t n)
{
    char *b = p;
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

struct fetched {
    int rc;
    char errmsg[CN_ERRMSG_SIZE];
    struct cn_buf bytes;
};

/* Runs the blocking fetch in a child process while this one's loop serves
 * it (so the two never share cn_malloc's fault counters); the child sends
 * back rc, errmsg and the bytes through a pipe. */
static void fetch_in_child(const char *url, unsigned timeout_ms,
                           struct fetched *f)
{
    memset(f, 0, sizeof(*f));
    f->rc = 1; /* no such code */
    int pfd[2];
    REQUIRE_EQ(pipe(pfd), 0);
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        close(pfd[0]);
        struct cn_buf out;
        cn_buf_init(&out);
        char e[CN_ERRMSG_SIZE] = "";
        int rc = server_peers_fetch_members(url, timeout_ms, &out, e);
        uint64_t len = out.len;
        int ok = write_all(pfd[1], &rc, sizeof(rc)) == 0 &&
                 write_all(pfd[1], e, sizeof(e)) == 0 &&
                 write_all(pfd[1], &len, sizeof(len)) == 0 &&
                 write_all(pfd[1], out.data, out.len) == 0;
        cn_buf_close(&out);
        _exit(ok ? 0 : 1);
    }
    close(pfd[1]);
    int rfd = pfd[0];
    CHECK(run_until(fd_readable, &rfd, timeout_ms + 5000));
    uint64_t len = 0;
    int ok = read_all(rfd, &f->rc, sizeof(f->rc)) == 0 &&
             read_all(rfd, f->errmsg, sizeof(f->errmsg)) == 0 &&
             read_all(rfd, &len, sizeof(len)) == 0;
    if (ok && len > 0) {
        REQUIRE_EQ(cn_buf_reserve(&f->bytes, (size_t)len), CN_OK);
        ok = read_all(rfd, f->bytes.data, (size_t)len) == 0;
        if (ok)
            f->bytes.len = (size_t)len;
    }
    close(rfd);
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(ok);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (f->rc != CN_OK)
        tap_diag("fetch: %s (%s)", f->errmsg, cn_errname(f->rc));
}

static size_t list_mismatches(const struct cn_buf *b, uint64_t id)
{
    size_t bad = 0;
    for (size_t i = 0; i < b->len; i++)
        if ((uint8_t)b->data[i] != list_byte(id, i))
            bad++;
    return bad;
}

static size_t raw_members_req(uint8_t *out, unsigned version)
{
    uint8_t pl[MREQ_BYTES] = {0};
    put32(pl, HELLO_MAGIC);
    pl[4] = (uint8_t)version;
    pl[5] = (uint8_t)(version >> 8);
    return raw_frame(out, FK_MEMBERS_REQ, 0, 0, pl, MREQ_BYTES);
}

/* Reads a member-list answer from fd (2 s timeout) through the client's
 * own parser; *raw_bytes counts what arrived. CN_EIO: EOF first. */
static int raw_read_answer(int fd, struct cn_buf *out, size_t *raw_bytes)
{
    struct mresp r;
    memset(&r, 0, sizeof(r));
    char why[CN_ERRMSG_SIZE];
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    int rc = CN_OK;
    *raw_bytes = 0;
    uint8_t b[4096];
    while (rc == CN_OK && !r.done) {
        ssize_t n = recv(fd, b, sizeof(b), 0);
        if (n <= 0) {
            rc = n == 0 ? CN_EIO : CN_ETIMEDOUT;
            break;
        }
        *raw_bytes += (size_t)n;
        REQUIRE_EQ(cn_buf_append(&r.in, b, (size_t)n), CN_OK);
        rc = mresp_parse(&r, why);
    }
    if (rc == CN_OK)
        rc = mresp_result(&r, out, why);
    cn_buf_close(&r.in);
    cn_buf_close(&r.body);
    return rc;
}

static void members_node_start(int i, uint64_t id, size_t list_len,
                               uint32_t frame_bytes_max, uint32_t msg_bytes_max)
{
    nodes[i].id = id;
    nodes[i].members_len = list_len;
    struct server_peers_config c = base_cfg(&nodes[i], 8);
    c.members = on_members;
    c.members_ctx = &nodes[i];
    c.frame_bytes_max = frame_bytes_max;
    c.msg_bytes_max = msg_bytes_max;
    node_start(i, id, 8, 0, &c);
}

TEST(peer_fetch_members_gets_the_callbacks_bytes)
{
    setup();
    /* small frames: the answer takes several */
    members_node_start(0, 0xa1, 4321, 1000, 10000);
    struct fetched f;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_OK);
    CHECK_EQ(f.bytes.len, 4321);
    CHECK_EQ(list_mismatches(&f.bytes, 0xa1), 0);
    cn_buf_close(&f.bytes);
    CHECK_EQ(nodes[0].members_calls, 1);
    struct server_peers_counters c;
    server_peers_counters(nodes[0].t, &c);
    CHECK_EQ(c.members_served, 1);
    CHECK_EQ(c.accepted, 1);
    CHECK_EQ(c.refused, 0);
    CHECK_EQ(c.corrupt, 0);
    /* an empty list is a list */
    nodes[0].members_len = 0;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_OK);
    CHECK_EQ(f.bytes.len, 0);
    /* the callback fails, or its list is over msg_bytes_max: unavailable */
    nodes[0].members_len = 10;
    nodes[0].members_rc = CN_EIO;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_EAGAIN);
    CHECK_EQ(f.bytes.len, 0);
    nodes[0].members_len = 10001;
    nodes[0].members_rc = CN_OK;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_EAGAIN);
    nodes[0].members_len = 10000;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_OK);
    CHECK_EQ(f.bytes.len, 10000);
    CHECK_EQ(list_mismatches(&f.bytes, 0xa1), 0);
    cn_buf_close(&f.bytes);
    server_peers_counters(nodes[0].t, &c);
    CHECK_EQ(c.members_served, 3);
    CHECK_EQ(nodes[0].members_calls, 5);
    /* another protocol version is told so, not given the list */
    int fd = raw_connect(nodes[0].port);
    uint8_t out[64];
    size_t n = raw_members_req(out, SERVER_PEER_PROTO_VERSION + 1);
    REQUIRE_EQ(send(fd, out, n, 0), (ssize_t)n);
    run_until(fd_readable, &fd, 3000);
    struct cn_buf got = {0};
    size_t raw = 0;
    CHECK_EQ(raw_read_answer(fd, &got, &raw), CN_EVERSION);
    close(fd);
    CHECK_EQ(nodes[0].members_calls, 5);
    /* a malformed request is a protocol error */
    fd = raw_connect(nodes[0].port);
    n = raw_frame(out, FK_MEMBERS_REQ, 0, 0, "CRNQ\1\0\0\0", MREQ_BYTES);
    REQUIRE_EQ(send(fd, out, n, 0), (ssize_t)n);
    struct corrupt_want want = {0, 1};
    CHECK(run_until(corrupt_seen, &want, 3000));
    close(fd);
    /* meanwhile the transport carries messages as usual */
    node_start(1, 0xb2, 8, 0, NULL);
    link_nodes(0, 1);
    link_nodes(1, 0);
    uint8_t buf[32];
    REQUIRE_EQ(
        server_peers_send(nodes[1].t, 0xa1, 7, buf, make_msg(buf, 0, 0xb2, 32)),
        CN_OK);
    struct want w[] = {{0, 1, 1}, {-1, 0, 0}};
    CHECK(run_until(got_all, w, 5000));
    teardown();
}

TEST(peer_fetch_members_without_callback_is_not_found)
{
    setup();
    node_start(0, 0xa1, 8, 0, NULL);
    struct fetched f;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_ENOTFOUND);
    CHECK_EQ(f.bytes.len, 0);
    CHECK(strstr(f.errmsg, nodes[0].url + 7) != NULL);
    CHECK(strstr(f.errmsg, "a1 does not serve the member list") != NULL);
    struct server_peers_counters c;
    server_peers_counters(nodes[0].t, &c);
    CHECK_EQ(c.members_served, 0);
    CHECK_EQ(c.corrupt, 0);
    teardown();
}

static int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listening socket on a free port (backlog only: nobody accepts). */
static int listen_fd(unsigned *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    REQUIRE_EQ(listen(fd, 8), 0);
    socklen_t len = sizeof(sa);
    REQUIRE_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *port = ntohs(sa.sin_port);
    return fd;
}

TEST(peer_fetch_members_closed_port_silent_listener_bad_url)
{
    struct cn_buf out = {0};
    REQUIRE_EQ(cn_buf_append_cstr(&out, "keep"), CN_OK);
    char e[CN_ERRMSG_SIZE];
    char url[64];
    unsigned port = 0;
    /* nobody listens: refused at once */
    close(listen_fd(&port));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    int64_t t0 = test_now_ms();
    CHECK_EQ(server_peers_fetch_members(url, 2000, &out, e), CN_EIO);
    CHECK(test_now_ms() - t0 < 1000);
    CHECK(strstr(e, "refused") != NULL);
    tap_diag("%s", e);
    /* a listener that never answers: the timeout */
    int lfd = listen_fd(&port);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    t0 = test_now_ms();
    CHECK_EQ(server_peers_fetch_members(url, 300, &out, e), CN_ETIMEDOUT);
    int64_t took = test_now_ms() - t0;
    tap_diag("%s (after %" PRId64 " ms)", e, took);
    CHECK(took >= 290 && took < 2000);
    close(lfd);
    /* URLs */
    CHECK_EQ(server_peers_fetch_members("127.0.0.1:2380", 100, &out, e),
             CN_EINVAL);
    CHECK_EQ(server_peers_fetch_members("https://127.0.0.1:2380", 100, &out, e),
             CN_EINVAL);
    CHECK_STR(out.data, "keep");
    cn_buf_close(&out);
}

/* ---- a raw socket playing an acceptor ---- */

struct fake_acceptor {
    int lfd;
    unsigned port;
    const uint8_t *reply; /* sent after the request, then closed */
    size_t reply_len;
    int stop;     /* atomic */
    int served;   /* atomic: connections answered */
    int bad_reqs; /* atomic: requests not as the protocol says */
    pthread_t thread;
};

/* Checks the request frame the client sent. */
static int request_ok(const uint8_t *q, size_t n)
{
    return n == HDR + MREQ_BYTES && get32(q) == MREQ_BYTES &&
           q[4] == FK_MEMBERS_REQ && q[5] == 0 && q[6] == 0 && q[7] == 0 &&
           cn_crc32c(cn_crc32c(0, q, 8), q + HDR, MREQ_BYTES) == get32(q + 8) &&
           get32(q + HDR) == HELLO_MAGIC &&
           (q[HDR + 4] | q[HDR + 5] << 8) == SERVER_PEER_PROTO_VERSION;
}

/* The thread: no cn_malloc, no TAP macros. */
static void *fake_acceptor_main(void *arg)
{
    struct fake_acceptor *fa = arg;
    while (!__atomic_load_n(&fa->stop, __ATOMIC_ACQUIRE)) {
        struct pollfd pf = {fa->lfd, POLLIN, 0};
        if (poll(&pf, 1, 20) <= 0)
            continue;
        int fd = accept(fa->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {2, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        uint8_t q[HDR + MREQ_BYTES];
        size_t got = 0;
        while (got < sizeof(q)) {
            ssize_t r = recv(fd, q + got, sizeof(q) - got, 0);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (!request_ok(q, got))
            __atomic_add_fetch(&fa->bad_reqs, 1, __ATOMIC_RELEASE);
        size_t off = 0;
        while (off < fa->reply_len) {
            ssize_t w =
                send(fd, fa->reply + off, fa->reply_len - off, MSG_NOSIGNAL);
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(fd);
        __atomic_add_fetch(&fa->served, 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void fake_start(struct fake_acceptor *fa)
{
    memset(fa, 0, sizeof(*fa));
    fa->lfd = listen_fd(&fa->port);
    REQUIRE_EQ(pthread_create(&fa->thread, NULL, fake_acceptor_main, fa), 0);
}

static void fake_stop(struct fake_acceptor *fa)
{
    __atomic_store_n(&fa->stop, 1, __ATOMIC_RELEASE);
    pthread_join(fa->thread, NULL);
    close(fa->lfd);
    CHECK_EQ(fa->bad_reqs, 0);
}

/* An answer as an acceptor writes it: status head + list in frames of at
 * most fmax payload bytes. Returns the bytes (cn_free them). */
static uint8_t *make_answer(unsigned status, const uint8_t *list, size_t len,
                            uint32_t fmax, size_t *out_len)
{
    uint8_t head[MRESP_HEAD_BYTES] = {0};
    head[0] = (uint8_t)status;
    head[1] = SERVER_PEER_PROTO_VERSION;
    put64(head + 8, 0xfe);
    struct pmsg *m =
        pmsg_new(FK_MEMBERS_RESP, 0, head, sizeof(head), list, len, fmax);
    REQUIRE(m != NULL);
    uint8_t *out = cn_malloc((size_t)m->nframes * HDR + m->len);
    REQUIRE(out != NULL);
    size_t n = 0;
    for (uint32_t f = 0; f < m->nframes; f++) {
        size_t off = (size_t)f * fmax;
        size_t flen = m->len - off < fmax ? m->len - off : fmax;
        memcpy(out + n, m->hdrs + (size_t)f * HDR, HDR);
        memcpy(out + n + HDR, m->data + off, flen);
        n += HDR + flen;
    }
    cn_free(m);
    *out_len = n;
    return out;
}

/* Fetches from fa answering reply; out starts as "keep" and must stay so
 * on failure. Returns the code. */
static int fetch_reply(struct fake_acceptor *fa, const uint8_t *reply,
                       size_t len, struct cn_buf *out)
{
    fa->reply = reply;
    fa->reply_len = len;
    int served = __atomic_load_n(&fa->served, __ATOMIC_ACQUIRE);
    char url[64], e[CN_ERRMSG_SIZE];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", fa->port);
    cn_buf_reset(out);
    REQUIRE_EQ(cn_buf_append_cstr(out, "keep"), CN_OK);
    int rc = server_peers_fetch_members(url, 3000, out, e);
    if (rc != CN_OK) {
        tap_diag("%s: %s", cn_errname(rc), e);
        CHECK_STR(out->data, "keep");
    }
    /* the next reply is set only once this connection is done */
    while (__atomic_load_n(&fa->served, __ATOMIC_ACQUIRE) == served)
        usleep(1000);
    return rc;
}

TEST(peer_fetch_members_bad_answers)
{
    struct fake_acceptor fa;
    fake_start(&fa);
    struct cn_buf out = {0};
    uint8_t list[1000];
    for (size_t i = 0; i < sizeof(list); i++)
        list[i] = list_byte(0xfe, i);
    size_t n;
    /* well formed, in 11 frames: the client reassembles it */
    uint8_t *good = make_answer(MEMBERS_OK, list, sizeof(list), 100, &n);
    CHECK_EQ(n, 11 * HDR + MRESP_HEAD_BYTES + sizeof(list));
    CHECK_EQ(fetch_reply(&fa, good, n, &out), CN_OK);
    CHECK_EQ(out.len, 4 + sizeof(list)); /* appended */
    CHECK(memcmp(out.data + 4, list, sizeof(list)) == 0);
    /* one payload bit flipped in the third frame */
    uint8_t *bad = cn_malloc(n);
    REQUIRE(bad != NULL);
    memcpy(bad, good, n);
    bad[2 * (HDR + 100) + HDR + 5] ^= 0x10;
    CHECK_EQ(fetch_reply(&fa, bad, n, &out), CN_ECORRUPT);
    /* a frame of another kind, CRC and all */
    size_t an = raw_frame(bad, FK_ACK, 0, 0, good + HDR, 16);
    CHECK_EQ(fetch_reply(&fa, bad, an, &out), CN_ECORRUPT);
    /* a length over the receiver's limit */
    memcpy(bad, good, n);
    put32(bad, FRAME_WIRE_MAX + 1);
    CHECK_EQ(fetch_reply(&fa, bad, n, &out), CN_ECORRUPT);
    /* shorter than the status head */
    an = raw_frame(bad, FK_MEMBERS_RESP, 0, 0, good + HDR, 4);
    CHECK_EQ(fetch_reply(&fa, bad, an, &out), CN_ECORRUPT);
    /* cut in the middle, or closed without a word */
    CHECK_EQ(fetch_reply(&fa, good, n / 2, &out), CN_EIO);
    CHECK_EQ(fetch_reply(&fa, good, 0, &out), CN_EIO);
    /* statuses */
    static const int want[][2] = {{MEMBERS_NONE, CN_ENOTFOUND},
                                  {MEMBERS_VERSION, CN_EVERSION},
                                  {MEMBERS_UNAVAILABLE, CN_EAGAIN},
                                  {9, CN_ECORRUPT}};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t sn;
        uint8_t *s = make_answer((unsigned)want[i][0], NULL, 0, 100, &sn);
        CHECK_EQ(fetch_reply(&fa, s, sn, &out), want[i][1]);
        cn_free(s);
    }
    /* a list over the client's limit */
    size_t big_len = MEMBERS_BYTES_MAX + 1;
    uint8_t *big_list = cn_calloc(1, big_len);
    REQUIRE(big_list != NULL);
    size_t bn;
    uint8_t *big = make_answer(MEMBERS_OK, big_list, big_len, 1u << 20, &bn);
    CHECK_EQ(fetch_reply(&fa, big, bn, &out), CN_ETOOBIG);
    /* the limit itself is fine */
    cn_free(big);
    big = make_answer(MEMBERS_OK, big_list, big_len - 1, 1u << 20, &bn);
    CHECK_EQ(fetch_reply(&fa, big, bn, &out), CN_OK);
    CHECK_EQ(out.len, 4 + big_len - 1);
    cn_free(big);
    cn_free(big_list);
    cn_free(bad);
    cn_free(good);
    cn_buf_close(&out);
    fake_stop(&fa);
}

TEST(peer_fetch_members_out_of_memory)
{
    struct fake_acceptor fa;
    fake_start(&fa);
    uint8_t list[3000];
    for (size_t i = 0; i < sizeof(list); i++)
        list[i] = list_byte(0xfe, i);
    size_t n;
    uint8_t *good = make_answer(MEMBERS_OK, list, sizeof(list), 700, &n);
    struct cn_buf out = {0};
    int clean = 0;
    long n_fail;
    for (n_fail = 1; n_fail < 100 && !clean; n_fail++) {
        fa.reply = good;
        fa.reply_len = n;
        int served = __atomic_load_n(&fa.served, __ATOMIC_ACQUIRE);
        char url[64], e[CN_ERRMSG_SIZE];
        snprintf(url, sizeof(url), "http://127.0.0.1:%u", fa.port);
        cn_buf_reset(&out);
        REQUIRE_EQ(cn_buf_append_cstr(&out, "keep"), CN_OK);
        cn_mem_fault_arm(n_fail, 0);
        int rc = server_peers_fetch_members(url, 3000, &out, e);
        long failed = cn_mem_fault_disarm();
        if (failed == 0) {
            CHECK_EQ(rc, CN_OK);
            CHECK_EQ(out.len, 4 + sizeof(list));
            CHECK(memcmp(out.data + 4, list, sizeof(list)) == 0);
            clean = 1;
        } else {
            CHECK_EQ(rc, CN_ENOMEM);
            CHECK_STR(out.data, "keep");
        }
        while (__atomic_load_n(&fa.served, __ATOMIC_ACQUIRE) == served)
            usleep(1000);
    }
    CHECK(clean);
    tap_diag("clean after %ld failing allocations", n_fail - 2);
    cn_free(good);
    cn_buf_close(&out);
    fake_stop(&fa);
}

TEST(peer_members_answer_out_of_memory)
{
    setup();
    members_node_start(0, 0xa1, 3000, 1024, 0);
    int clean = 0;
    long n_fail;
    for (n_fail = 1; n_fail < 60 && !clean; n_fail++) {
        int fd = raw_connect(nodes[0].port);
        uint8_t req[HDR + MREQ_BYTES];
        size_t n = raw_members_req(req, SERVER_PEER_PROTO_VERSION);
        REQUIRE_EQ(send(fd, req, n, 0), (ssize_t)n);
        cn_mem_fault_arm(n_fail, 0);
        int answered = run_until(fd_readable, &fd, 3000);
        long failed = cn_mem_fault_disarm();
        CHECK(answered);
        struct cn_buf got = {0};
        size_t raw = 0;
        int rc = raw_read_answer(fd, &got, &raw);
        close(fd);
        if (failed == 0) {
            CHECK_EQ(rc, CN_OK);
            clean = 1;
        }
        /* a whole list, "unavailable" (the callback got no memory) or a
         * close before any byte; never a damaged answer */
        if (rc == CN_OK) {
            CHECK_EQ(got.len, 3000);
            CHECK_EQ(list_mismatches(&got, 0xa1), 0);
        } else if (rc != CN_EAGAIN) {
            CHECK_EQ(rc, CN_EIO);
            CHECK_EQ(raw, 0);
        }
        cn_buf_close(&got);
    }
    CHECK(clean);
    tap_diag("clean after %ld failing allocations", n_fail - 2);
    /* still answering */
    struct fetched f;
    fetch_in_child(nodes[0].url, 3000, &f);
    CHECK_EQ(f.rc, CN_OK);
    CHECK_EQ(f.bytes.len, 3000);
    cn_buf_close(&f.bytes);
    teardown();
}
