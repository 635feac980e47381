/*
 * Unit tests for the peer transport over real loopback sockets: several
 * transports (and raw POSIX sockets playing a bad peer) in one uv loop, on
 * ports the kernel picks. Includes peer.c to build frames the way it does.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
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
    uint64_t close_at; /* non-zero: close the transport on this seq */
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

static struct server_peers_config base_cfg(struct node *n, uint64_t cluster)
{
    struct server_peers_config c;
    memset(&c, 0, sizeof(c));
    c.self_id = n->id;
    c.cluster_id = cluster;
    c.recv = on_recv;
    c.recv_ctx = n;
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
