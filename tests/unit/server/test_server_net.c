/*
 * Unit tests for the client connections of server_net.c over real loopback
 * sockets: a bare struct server with its loop, one listener on a port the
 * kernel picks, a test protocol, and a raw POSIX client in the same thread
 * (the loop is run in NOWAIT steps while the client reads).
 *
 * What is checked is server_conn_write's contract: the bytes arrive whole
 * and in order, whether the socket takes them at once or only in part; the
 * callback runs exactly once, never inside server_conn_write, and before
 * the protocol's closed() when the connection goes first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/server_net.c"
#include "tap.h"

struct tproto {
    struct server_conn *conn;
    const char *out; /* what data() answers with, once */
    size_t out_len;
    int close_after_write; /* data() closes right after writing */
    int written;
    int write_rc;
    int cb_calls;
    int cb_calls_in_write; /* callbacks run inside server_conn_write */
    int cb_status;
    int closed;
    int cb_calls_at_close;
};

static struct tproto tp;

static void t_cb(void *arg, int status)
{
    struct tproto *t = arg;
    t->cb_calls++;
    t->cb_status = status;
}

static void *t_open(void *ctx, struct server_conn *c)
{
    struct tproto *t = ctx;
    t->conn = c;
    return t;
}

static void t_data(void *state, const char *buf, size_t len)
{
    struct tproto *t = state;
    (void)buf;
    (void)len;
    if (t->written)
        return;
    t->written = 1;
    /* two slices, so a partial write can end inside either */
    size_t half = t->out_len / 2;
    struct cn_slice iov[2] = {{t->out, half},
                              {t->out + half, t->out_len - half}};
    int before = t->cb_calls;
    t->write_rc = server_conn_write(t->conn, iov, 2, t_cb, t);
    t->cb_calls_in_write = t->cb_calls - before;
    if (t->close_after_write)
        server_conn_close(t->conn);
}

static void t_closed(void *state)
{
    struct tproto *t = state;
    t->closed = 1;
    t->cb_calls_at_close = t->cb_calls;
}

struct rig {
    struct server srv;
    unsigned port;
};

static int rig_open(struct rig *r)
{
    memset(r, 0, sizeof(*r));
    memset(&tp, 0, sizeof(tp));
    struct server *srv = &r->srv;
    if (uv_loop_init(&srv->loop) != 0)
        return -1;
    srv->read_buf = cn_malloc(SERVER_READ_BUF_BYTES);
    srv->proto.open = t_open;
    srv->proto.data = t_data;
    srv->proto.closed = t_closed;
    srv->proto.ctx = &tp;
    server_net_init(srv);
    struct server_listener *l = &srv->listeners[0];
    l->srv = srv;
    uv_tcp_init(&srv->loop, &l->tcp);
    l->tcp.data = l;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    if (uv_tcp_bind(&l->tcp, (const struct sockaddr *)&a, 0) != 0 ||
        uv_listen((uv_stream_t *)&l->tcp, 16, on_connection) != 0)
        return -1;
    srv->listener_count = 1;
    int alen = sizeof(a);
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&a, &alen);
    r->port = ntohs(a.sin_port);
    return 0;
}

static void rig_close(struct rig *r)
{
    struct server *srv = &r->srv;
    srv->stopping = 1;
    server_net_close_all(srv);
    uv_close((uv_handle_t *)&srv->wdone_check, NULL);
    uv_close((uv_handle_t *)&srv->wdone_idle, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    cn_free(srv->read_buf);
}

/* A connected client socket, non-blocking, with the request sent. */
static int client(struct rig *r, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)r->port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        send(fd, "GET / HTTP/1.1\r\n\r\n", 18, 0) != 18) {
        close(fd);
        return -1;
    }
    return fd;
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop and reads from fd until want bytes came (or EOF, or 10 s);
 * returns the bytes read into got. */
static size_t pump(struct rig *r, int fd, char *got, size_t want)
{
    size_t n = 0;
    uint64_t end = ms_now() + 10000;
    while (n < want && ms_now() < end) {
        uv_run(&r->srv.loop, UV_RUN_NOWAIT);
        ssize_t k = recv(fd, got + n, want - n, MSG_DONTWAIT);
        if (k == 0)
            break;
        if (k > 0)
            n += (size_t)k;
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            break;
        else
            usleep(200);
    }
    return n;
}

/* Runs the loop until cond holds or 10 s pass. */
#define RUN_UNTIL(r, cond)                                                     \
    do {                                                                       \
        uint64_t end_ = ms_now() + 10000;                                      \
        while (!(cond) && ms_now() < end_) {                                   \
            uv_run(&(r)->srv.loop, UV_RUN_NOWAIT);                             \
            usleep(200);                                                       \
        }                                                                      \
    } while (0)

TEST(server_net_small_write_arrives_and_calls_back_later)
{
    struct rig r;
    REQUIRE(rig_open(&r) == 0);
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    tp.out = answer;
    tp.out_len = sizeof(answer) - 1;
    int fd = client(&r, 0);
    REQUIRE(fd >= 0);
    char got[sizeof(answer)] = {0};
    size_t n = pump(&r, fd, got, tp.out_len);
    CHECK_EQ(n, tp.out_len);
    CHECK(memcmp(got, answer, tp.out_len) == 0);
    CHECK_EQ(tp.write_rc, CN_OK);
    RUN_UNTIL(&r, tp.cb_calls > 0);
    CHECK_EQ(tp.cb_calls_in_write, 0);
    CHECK_EQ(tp.cb_calls, 1);
    CHECK_EQ(tp.cb_status, CN_OK);
    close(fd);
    RUN_UNTIL(&r, tp.closed);
    CHECK(tp.closed);
    CHECK_EQ(tp.cb_calls, 1);
    rig_close(&r);
}

TEST(server_net_write_larger_than_the_socket_takes_arrives_whole)
{
    struct rig r;
    REQUIRE(rig_open(&r) == 0);
    size_t len = (size_t)8 << 20;
    char *big = cn_malloc(len);
    char *got = cn_malloc(len);
    REQUIRE(big != NULL && got != NULL);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)('a' + (i * 7 + i / 4099) % 26);
    tp.out = big;
    tp.out_len = len;
    int fd = client(&r, 64 * 1024);
    REQUIRE(fd >= 0);
    /* the socket cannot take 8 MiB at once: the rest is queued */
    RUN_UNTIL(&r, tp.written);
    CHECK_EQ(tp.write_rc, CN_OK);
    CHECK_EQ(tp.cb_calls, 0);
    size_t n = pump(&r, fd, got, len);
    CHECK_EQ(n, len);
    CHECK(memcmp(got, big, len) == 0);
    RUN_UNTIL(&r, tp.cb_calls > 0);
    CHECK_EQ(tp.cb_calls_in_write, 0);
    CHECK_EQ(tp.cb_calls, 1);
    CHECK_EQ(tp.cb_status, CN_OK);
    close(fd);
    rig_close(&r);
    cn_free(big);
    cn_free(got);
}

TEST(server_net_close_right_after_a_write_calls_back_once_before_closed)
{
    struct rig r;
    REQUIRE(rig_open(&r) == 0);
    tp.out = "bye";
    tp.out_len = 3;
    tp.close_after_write = 1;
    int fd = client(&r, 0);
    REQUIRE(fd >= 0);
    RUN_UNTIL(&r, tp.closed);
    CHECK(tp.written);
    CHECK(tp.closed);
    CHECK_EQ(tp.cb_calls_in_write, 0);
    CHECK_EQ(tp.cb_calls_at_close, 1);
    CHECK_EQ(tp.cb_calls, 1);
    char got[8] = {0};
    size_t n = pump(&r, fd, got, sizeof(got));
    CHECK_EQ(n, 3u); /* the bytes were out before the close */
    CHECK(memcmp(got, "bye", 3) == 0);
    close(fd);
    rig_close(&r);
}

TEST(server_net_write_to_a_reset_client_calls_back_once)
{
    struct rig r;
    REQUIRE(rig_open(&r) == 0);
    tp.out = "late";
    tp.out_len = 4;
    int fd = client(&r, 0);
    REQUIRE(fd >= 0);
    /* the request is in the server's socket; the client resets it */
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    usleep(20000);
    close(fd);
    RUN_UNTIL(&r, tp.closed);
    CHECK(tp.closed);
    if (tp.written) { /* the request was read before the reset */
        CHECK_EQ(tp.cb_calls_in_write, 0);
        CHECK_EQ(tp.cb_calls, 1);
        CHECK_EQ(tp.cb_calls_at_close, 1);
    } else {
        CHECK_EQ(tp.cb_calls, 0);
    }
    rig_close(&r);
}
