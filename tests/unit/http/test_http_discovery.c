/*
 * Unit tests for the discovery service (GET /new) through the HTTP layer's
 * sockets-free entry point: a real server (store and propose pipeline, no
 * listener) and connections over an in-memory transport whose writes
 * complete when the test says so (the harness of test_http_conn.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "http/http_int.h"
#include "tap.h"

struct mem_tr {
    struct cn_buf out; /* every byte written */
    int closed;
    int reading;
    unsigned deadline_ms;
    int pending; /* a write in flight */
    http_write_done_fn *done;
    void *arg;
    unsigned writes;
};

static int mt_write(void *t, const struct cn_slice *iov, unsigned n,
                    http_write_done_fn *done, void *arg)
{
    struct mem_tr *m = t;
    CHECK(!m->pending); /* one write at a time */
    for (unsigned i = 0; i < n; i++)
        REQUIRE_EQ(cn_buf_append(&m->out, iov[i].base, iov[i].len), CN_OK);
    m->pending = 1;
    m->done = done;
    m->arg = arg;
    m->writes++;
    return CN_OK;
}

static void mt_close(void *t)
{
    ((struct mem_tr *)t)->closed = 1;
}

static void mt_read(void *t, int on)
{
    ((struct mem_tr *)t)->reading = on;
}

static void mt_deadline(void *t, unsigned ms)
{
    ((struct mem_tr *)t)->deadline_ms = ms;
}

static const struct http_transport mem_transport = {
    mt_write,
    mt_close,
    mt_read,
    mt_deadline,
};

struct env {
    char dir[64];
    struct server *srv;
    struct http_api *api;
    int64_t now_ns;
};

static int64_t fake_clock(void *ctx)
{
    return ((struct env *)ctx)->now_ns;
}

static void env_init(struct env *e)
{
    static struct cn_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    strcpy(e->dir, "/tmp/cairn-http-XXXXXX");
    REQUIRE(mkdtemp(e->dir) != NULL);
    strcpy(cfg.name, "t1");
    strcpy(cfg.data_dir, e->dir);
    strcpy(cfg.initial_cluster_token, "tok");
    cfg.max_request_bytes = 4096;
    cfg.advertise_client_urls.count = 1;
    strcpy(cfg.advertise_client_urls.urls[0].raw, "http://127.0.0.1:1");
    char errmsg[CN_ERRMSG_SIZE];
    REQUIRE_EQ(server_new(&e->srv, &cfg, NULL, errmsg), CN_OK);
    REQUIRE_EQ(http_api_new(&e->api, e->srv), CN_OK);
    e->now_ns = 1700000000ll * 1000000000;
    server_set_clock(e->srv, fake_clock, e);
}

static void env_close(struct env *e)
{
    server_free(e->srv);
    http_api_free(e->api);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    CHECK_EQ(system(cmd), 0);
}

struct client {
    struct mem_tr tr;
    struct http_conn *c;
};

static void client_open(struct env *e, struct client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->tr.reading = 1;
    REQUIRE_EQ(http_conn_new(&cl->c, e->api, &mem_transport, &cl->tr), CN_OK);
}

static void client_free(struct client *cl)
{
    if (cl->c != NULL)
        http_conn_closed(cl->c);
    cl->c = NULL;
    cn_buf_close(&cl->tr.out);
}

/* Completes writes and applies proposals until nothing moves. */
static void settle(struct env *e, struct client **cls, int n)
{
    for (int round = 0; round < 1000; round++) {
        int moved = 0;
        server_flush(e->srv);
        for (int i = 0; i < n; i++) {
            struct mem_tr *m = &cls[i]->tr;
            if (m->pending) {
                m->pending = 0;
                m->done(m->arg, CN_OK);
                moved = 1;
            }
        }
        if (!moved)
            return;
    }
}

static void send_str(struct client *cl, const char *s)
{
    http_conn_feed(cl->c, s, strlen(s));
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static const char *out(struct client *cl)
{
    return cl->tr.out.data ? cl->tr.out.data : "";
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* The token from an answer to GET /new, or "" */
static void token_of(const char *resp, char tok[64])
{
    const char *prefix = "http://127.0.0.1:1/v2/keys/_etcd/registry/";
    const char *b = strstr(resp, prefix);
    tok[0] = '\0';
    if (b == NULL)
        return;
    b += strlen(prefix);
    size_t n = strspn(b, "0123456789abcdef");
    if (n < 64) {
        memcpy(tok, b, n);
        tok[n] = '\0';
    }
}

TEST(http_discovery_new_creates_token_with_size)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    uint64_t index0 = server_raft_index(e.srv);
    send_str(&cl, "GET /new?size=5 HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    const char *o = out(&cl);
    CHECK(strstr(o, "HTTP/1.1 200 OK\r\n") == o);
    CHECK(strstr(o, "Content-Type: text/plain; charset=utf-8\r\n") != NULL);
    char tok[64];
    token_of(o, tok);
    CHECK_EQ(strlen(tok), 32);
    char want[160];
    snprintf(want, sizeof(want), "http://127.0.0.1:1/v2/keys/_etcd/registry/%s",
             tok);
    CHECK_STR(body_of(o), want);
    /* written through the propose path: the raft index moved */
    CHECK_EQ(server_raft_index(e.srv), index0 + 1);
    /* the size key is there */
    cn_buf_reset(&cl.tr.out);
    char req[256];
    snprintf(req, sizeof(req),
             "GET /v2/keys/_etcd/registry/%s/_config/size HTTP/1.1\r\n"
             "Host: x\r\n\r\n",
             tok);
    send_str(&cl, req);
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "\"value\":\"5\"") != NULL);
    /* default size 3, another token */
    cn_buf_reset(&cl.tr.out);
    send_str(&cl, "GET /new HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    char tok2[64];
    token_of(out(&cl), tok2);
    CHECK_EQ(strlen(tok2), 32);
    CHECK(strcmp(tok, tok2) != 0);
    cn_buf_reset(&cl.tr.out);
    snprintf(req, sizeof(req),
             "GET /v2/keys/_etcd/registry/%s/_config/size HTTP/1.1\r\n"
             "Host: x\r\n\r\n",
             tok2);
    send_str(&cl, req);
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "\"value\":\"3\"") != NULL);
    client_free(&cl);
    env_close(&e);
}

TEST(http_discovery_new_bad_requests)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    uint64_t index0 = server_raft_index(e.srv);
    const char *bad[] = {"0", "abc", "-1", "", "65", "99999", "3x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cn_buf_reset(&cl.tr.out);
        char req[128];
        snprintf(req, sizeof(req),
                 "GET /new?size=%s HTTP/1.1\r\nHost: x\r\n\r\n", bad[i]);
        send_str(&cl, req);
        settle(&e, all, 1);
        CHECK(strstr(out(&cl), "HTTP/1.1 400 Bad Request\r\n") == out(&cl));
        CHECK(strstr(out(&cl), "invalid size") != NULL);
    }
    cn_buf_reset(&cl.tr.out);
    send_str(&cl, "POST /new HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "HTTP/1.1 405 Method Not Allowed\r\n") == out(&cl));
    CHECK(strstr(out(&cl), "Allow: GET\r\n") != NULL);
    /* other unknown paths stay 404 */
    cn_buf_reset(&cl.tr.out);
    send_str(&cl, "GET /new/x HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /newer HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 404 Not Found\r\n"), 2);
    /* nothing was written */
    CHECK_EQ(server_raft_index(e.srv), index0);
    CHECK(!cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

TEST(http_discovery_new_pipelined_answers_in_order)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GET /new?size=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /new?size=2 HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    const char *o = out(&cl);
    const char *a = strstr(o, "/_etcd/registry/");
    const char *v = strstr(o, "etcdserver");
    const char *b = a ? strstr(a + 1, "/_etcd/registry/") : NULL;
    REQUIRE(a && v && b);
    CHECK(a < v && v < b);
    CHECK_EQ(count(o, "HTTP/1.1 200 OK\r\n"), 3);
    client_free(&cl);
    env_close(&e);
}

TEST(http_discovery_client_gone_while_proposing)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    uint64_t index0 = server_raft_index(e.srv);
    send_str(&cl, "GET /new HTTP/1.1\r\nHost: x\r\n\r\n");
    /* the connection closes before the write is applied */
    client_free(&cl);
    server_flush(e.srv);
    CHECK_EQ(server_raft_index(e.srv), index0 + 1);
    struct http_counters c;
    http_api_counters(e.api, &c);
    CHECK_EQ(c.conns_open, 0);
    env_close(&e);
}
