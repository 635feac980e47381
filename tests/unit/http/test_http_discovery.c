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

#include "http_harness.h"

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
