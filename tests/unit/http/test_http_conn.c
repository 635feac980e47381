/*
 * Unit tests for the HTTP layer through its sockets-free entry point: a
 * real server (store, pipeline, watches; no listener) and connections over
 * an in-memory transport whose writes complete when the test says so.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "http/http_int.h"
#include "tap.h"

#include "http_harness.h"

TEST(http_version_and_health)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "HTTP/1.1 200 OK\r\n") == out(&cl));
    CHECK(strstr(out(&cl), "{\"etcdserver\":\"" CN_VERSION
                           "\",\"etcdcluster\":\"3.4.0\"}") != NULL);
    CHECK(strstr(out(&cl), "{\"health\":\"true\"}") != NULL);
    CHECK(strstr(out(&cl), "{\"etcdserver\"") < strstr(out(&cl), "health"));
    CHECK(!cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

TEST(http_put_then_get_pipelined_in_order)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "PUT /v2/keys/a HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  "application/x-www-form-urlencoded\r\nContent-Length: 7\r\n"
                  "\r\nvalue=1"
                  "GET /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n"
                  "DELETE /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    const char *o = out(&cl);
    const char *p1 = strstr(o, "HTTP/1.1 201 Created");
    const char *p2 = strstr(o, "\"action\":\"get\"");
    const char *p3 = strstr(o, "\"action\":\"delete\"");
    const char *p4 = strstr(o, "HTTP/1.1 404 Not Found");
    REQUIRE(p1 && p2 && p3 && p4);
    CHECK(p1 < p2 && p2 < p3 && p3 < p4);
    CHECK(strstr(o, "\"value\":\"1\"") != NULL);
    char term[40];
    snprintf(term, sizeof(term), "X-Raft-Term: %llu\r\n",
             (unsigned long long)server_raft_term(e.srv));
    CHECK(server_raft_term(e.srv) >= 1);
    CHECK(strstr(o, term) != NULL);
    CHECK(strstr(o, "{\"errorCode\":100,\"message\":\"Key not found\"") !=
          NULL);
    client_free(&cl);
    env_close(&e);
}

TEST(http_responses_wait_for_earlier_writes)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    send_str(&cl, "GET /version HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cl.tr.writes, 1u);
    CHECK(cl.tr.pending);
    /* The first write has not completed: later answers must wait. */
    send_str(&cl, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_EQ(cl.tr.writes, 1u);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 "), 1);
    struct client *all[] = {&cl};
    settle(&e, all, 1);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 "), 3);
    /* Both waiting answers leave in one write, in order. */
    CHECK_EQ(cl.tr.writes, 2u);
    CHECK(strstr(out(&cl), "health") < strstr(out(&cl), "404 page not found"));
    client_free(&cl);
    env_close(&e);
}

TEST(http_malformed_request_is_400_and_closes)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GARBAGE\r\n\r\nGET /version HTTP/1.1\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 400 Bad Request\r\n", 26) == 0);
    CHECK(strstr(out(&cl), "Connection: close") != NULL);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 "), 1);
    CHECK(cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

TEST(http_missing_host_is_400)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GET /version HTTP/1.1\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 400 ", 13) == 0);
    CHECK(cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

TEST(http_huge_headers_are_431)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GET /version HTTP/1.1\r\nHost: x\r\nX-Big: ");
    static char big[65536];
    memset(big, 'a', sizeof(big));
    unsigned fed = 0;
    for (int i = 0; i < 40 && !cl.tr.closed; i++) {
        http_conn_feed(cl.c, big, sizeof(big));
        fed += sizeof(big);
        settle(&e, all, 1);
    }
    CHECK(strncmp(out(&cl), "HTTP/1.1 431 Request Header Fields Too Large\r\n",
                  46) == 0);
    CHECK(cl.tr.closed);
    /* Go's bound: 1 MiB + 4096 of line and headers, no sooner. */
    CHECK(fed > CN_HTTP_HEADER_BYTES_MAX);
    CHECK(fed <= CN_HTTP_HEADER_BYTES_MAX + sizeof(big));
    client_free(&cl);
    env_close(&e);
}

/* Sends a PUT whose request line plus headers take exactly total bytes. */
static void put_line_of(struct client *cl, const char *key, size_t total)
{
    static const char pre[] = "PUT /v2/keys/";
    static const char post[] = " HTTP/1.1\r\nHost: x\r\n\r\n";
    struct cn_buf b = {0};
    size_t fixed = strlen(pre) + strlen(key) + strlen("?value=") + strlen(post);
    REQUIRE(total > fixed);
    REQUIRE_EQ(cn_buf_printf(&b, "%s%s?value=", pre, key), CN_OK);
    for (size_t i = 0; i < total - fixed; i++)
        REQUIRE_EQ(cn_buf_append_char(&b, 'L'), CN_OK);
    REQUIRE_EQ(cn_buf_append_cstr(&b, post), CN_OK);
    REQUIRE_EQ(b.len, total);
    http_conn_feed(cl->c, b.data, b.len);
    cn_buf_close(&b);
}

TEST(http_long_query_up_to_go_header_limit)
{
    struct env e;
    struct client cl, cl2;
    env_init(&e);
    client_open(&e, &cl);
    client_open(&e, &cl2);
    struct client *all[] = {&cl, &cl2};
    /* A 66 KB value in the query is stored; so is one that brings the
     * request line and headers to the limit exactly. */
    put_line_of(&cl, "a", 66 * 1024);
    put_line_of(&cl, "b", CN_HTTP_HEADER_BYTES_MAX);
    settle(&e, all, 2);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 201 Created\r\n"), 2);
    CHECK(!cl.tr.closed);
    CHECK_EQ(store_index(server_store(e.srv)), 2);
    /* The values are whole (the URL splitter is not limited to 64 KiB). */
    size_t want[2] = {66 * 1024 - strlen("PUT /v2/keys/a?value=") -
                          strlen(" HTTP/1.1\r\nHost: x\r\n\r\n"),
                      CN_HTTP_HEADER_BYTES_MAX -
                          strlen("PUT /v2/keys/b?value=") -
                          strlen(" HTTP/1.1\r\nHost: x\r\n\r\n")};
    size_t got[2] = {0, 0};
    const char *v = out(&cl);
    for (int i = 0; i < 2 && (v = strstr(v, "\"value\":\"")) != NULL; i++) {
        v += strlen("\"value\":\"");
        while (v[got[i]] == 'L')
            got[i]++;
    }
    CHECK_EQ(got[0], want[0]);
    CHECK_EQ(got[1], want[1]);
    /* One byte more is 431 and the connection ends. */
    put_line_of(&cl2, "c", CN_HTTP_HEADER_BYTES_MAX + 1);
    settle(&e, all, 2);
    CHECK(strncmp(out(&cl2), "HTTP/1.1 431 ", 13) == 0);
    CHECK(cl2.tr.closed);
    CHECK_EQ(store_index(server_store(e.srv)), 2);
    client_free(&cl);
    client_free(&cl2);
    env_close(&e);
}

TEST(http_body_over_limit_is_413)
{
    struct env e;
    struct client cl, cl2;
    env_init(&e);
    client_open(&e, &cl);
    client_open(&e, &cl2);
    struct client *all[] = {&cl, &cl2};
    send_str(&cl, "PUT /v2/keys/a HTTP/1.1\r\nHost: x\r\n"
                  "Content-Length: 5000\r\n\r\n");
    /* Chunked bodies are counted as they arrive. */
    send_str(&cl2, "PUT /v2/keys/a HTTP/1.1\r\nHost: x\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n");
    static char chunk[1100];
    memset(chunk, 'v', sizeof(chunk));
    for (int i = 0; i < 5 && !cl2.tr.closed; i++) {
        send_str(&cl2, "400\r\n");
        http_conn_feed(cl2.c, chunk, 1024);
        send_str(&cl2, "\r\n");
    }
    settle(&e, all, 2);
    CHECK(strncmp(out(&cl), "HTTP/1.1 413 ", 13) == 0);
    CHECK(strstr(out(&cl), "\"errorCode\":210") != NULL);
    CHECK(cl.tr.closed);
    CHECK(strncmp(out(&cl2), "HTTP/1.1 413 ", 13) == 0);
    CHECK(cl2.tr.closed);
    CHECK_EQ(store_index(server_store(e.srv)), 0);
    client_free(&cl);
    client_free(&cl2);
    env_close(&e);
}

TEST(http_unclean_path_redirects)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "PUT /v2/keys//a/./b?value=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 301 Moved Permanently\r\n", 32) == 0);
    CHECK(strstr(out(&cl), "Location: /v2/keys/a/b?value=1\r\n") != NULL);
    CHECK_EQ(store_index(server_store(e.srv)), 0); /* nothing stored */
    client_free(&cl);
    env_close(&e);
}

TEST(http_method_not_allowed_has_allow)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "PATCH /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 405 ", 13) == 0);
    CHECK(strstr(out(&cl), "Allow: HEAD,GET,PUT,POST,DELETE\r\n") != NULL);
    client_free(&cl);
    env_close(&e);
}

TEST(http_unknown_method_is_405_and_keeps_the_connection)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    /* Any token is a method (Go): split across reads, after an empty line,
     * in lower case, longer than any known one, with a body that must be
     * skipped, and CONNECT (no upgrade); each one 405, the connection
     * goes on. */
    send_str(&cl, "\r\nFO");
    send_str(&cl, "O /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    send_str(&cl, "get /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    send_str(&cl, "BREWCOFFEEWITHMILKANDSUGAR /v2/keys/a HTTP/1.1\r\n"
                  "Host: x\r\n\r\n");
    send_str(&cl, "FOO /v2/keys/a HTTP/1.1\r\nHost: x\r\n"
                  "Content-Length: 7\r\n\r\nvalue=1");
    send_str(&cl, "CONNECT /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    send_str(&cl, "GET /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 405 Method Not Allowed\r\n"), 5);
    CHECK_EQ(count(out(&cl), "Allow: HEAD,GET,PUT,POST,DELETE\r\n"), 5);
    CHECK_EQ(count(out(&cl), "Access-Control-Allow-Origin: *\r\n"), 6);
    CHECK_EQ(count(out(&cl), "\r\n\r\nMethod Not Allowed\n"), 5);
    CHECK(strstr(out(&cl), "HTTP/1.1 404 Not Found\r\n") != NULL);
    CHECK_EQ(store_index(server_store(e.srv)), 0);
    CHECK(!cl.tr.closed);
    /* The other endpoints answer their own Allow. */
    send_str(&cl, "FOO /version HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "Allow: GET\r\n") != NULL);
    CHECK(!cl.tr.closed);
    /* Not a token: still a malformed request. */
    send_str(&cl, "F(O /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "HTTP/1.1 400 Bad Request\r\n") != NULL);
    CHECK(cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

TEST(http_partial_method_is_under_the_header_deadline)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_IDLE_TIMEOUT_MS);
    send_str(&cl, "\r\n");
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_IDLE_TIMEOUT_MS);
    send_str(&cl, "BR"); /* a method, not yet known to be one */
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_HEADER_TIMEOUT_MS);
    send_str(&cl, "EW /v2/keys/a HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 405 ", 13) == 0);
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_IDLE_TIMEOUT_MS);
    /* A method token as long as the header limit is 431. */
    static char tok[65536];
    memset(tok, 'M', sizeof(tok));
    for (int i = 0; i < 40 && !cl.tr.closed; i++)
        http_conn_feed(cl.c, tok, sizeof(tok));
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "HTTP/1.1 431 ") != NULL);
    CHECK(cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

/* Feeds one request line (byte by byte when split) and tells whether the
 * answer was 400 with the connection closed. */
static int line_is_400(struct env *e, const char *line, int split)
{
    struct client cl;
    client_open(e, &cl);
    struct client *all[] = {&cl};
    char req[256];
    snprintf(req, sizeof(req), "%s\r\nHost: x\r\n\r\n", line);
    if (split) {
        for (size_t i = 0; req[i] != 0; i++)
            http_conn_feed(cl.c, req + i, 1);
    } else {
        send_str(&cl, req);
    }
    settle(e, all, 1);
    int bad = strncmp(out(&cl), "HTTP/1.1 400 Bad Request\r\n", 26) == 0 &&
              cl.tr.closed && count(out(&cl), "HTTP/1.1 ") == 1;
    int ok = strncmp(out(&cl), "HTTP/1.1 200 OK\r\n", 17) == 0 && !cl.tr.closed;
    client_free(&cl);
    return bad ? 1 : ok ? 0 : -1;
}

TEST(http_malformed_request_lines_are_400)
{
    struct env e;
    env_init(&e);
    static const char *const bad[] = {
        "GET /v2/keys/ HTTP/9.1",  "GET  /v2/keys/ HTTP/1.1",
        "GET /v2/keys/  HTTP/1.1", "GET /v2/keys/ HTTP/2.0",
        "GET /v2/keys/ HTTP/1.10", "GET /v2/keys/ HTTP/01.1",
        "GET /v2/keys/ http/1.1",  "GET /v2/keys/",
        "GET /v2/keys/\tHTTP/1.1", " GET /v2/keys/ HTTP/1.1",
        "GET /v2/keys/ HTTP/1.1 ", "GET",
    };
    for (int split = 0; split < 2; split++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
            int rc = line_is_400(&e, bad[i], split);
            if (rc != 1)
                fprintf(stderr, "# line %s (split %d)\n", bad[i], split);
            CHECK_EQ(rc, 1);
        }
    /* What Go takes: HTTP/1.x with one digit. */
    static const char *const good[] = {
        "GET /v2/keys/ HTTP/1.1",
        "GET /v2/keys/ HTTP/1.2",
    };
    for (int split = 0; split < 2; split++)
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
            CHECK_EQ(line_is_400(&e, good[i], split), 0);
    env_close(&e);
}

TEST(http_version_other_than_1_is_400)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GET /version HTTP/9.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 400 ", 13) == 0);
    CHECK(cl.tr.closed);
    client_free(&cl);
    env_close(&e);
}

TEST(http_param_error_has_index_zero)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "PUT /v2/keys/a?ttl=abc HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 400 ", 13) == 0);
    CHECK(strstr(out(&cl), "X-Etcd-Index: 0\r\n") != NULL);
    CHECK(strstr(out(&cl), "{\"errorCode\":202,\"message\":\"The given TTL in "
                           "POST form is not a number\",\"cause\":\"invalid "
                           "value for \\\"ttl\\\"\",\"index\":0}\n") != NULL);
    CHECK(strstr(out(&cl), "X-Raft-Index") == NULL);
    client_free(&cl);
    env_close(&e);
}

TEST(http_head_has_length_but_no_body)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "HEAD /v2/keys/ HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out(&cl), "Content-Length: ") != NULL);
    const char *end = strstr(out(&cl), "\r\n\r\n");
    REQUIRE(end != NULL);
    CHECK_EQ(end[4], '\0');
    client_free(&cl);
    env_close(&e);
}

static const char put_b[] =
    "PUT /v2/keys/dir/b?value=2 HTTP/1.1\r\nHost: x\r\n\r\n";

TEST(http_long_poll_watch_gets_one_chunk)
{
    struct env e;
    struct client w, p;
    env_init(&e);
    client_open(&e, &w);
    client_open(&e, &p);
    struct client *all[] = {&w, &p};
    send_str(&w, "GET /v2/keys/dir?wait=true&recursive=true HTTP/1.1\r\n"
                 "Host: x\r\n\r\nGET /version HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 2);
    /* Headers at once, no body yet, the pipelined request waits. */
    CHECK(strstr(out(&w), "Transfer-Encoding: chunked\r\n") != NULL);
    CHECK(strstr(out(&w), "etcdserver") == NULL);
    CHECK_EQ(store_watcher_count(server_store(e.srv)), 1);
    send_str(&p, put_b);
    settle(&e, all, 2);
    const char *o = out(&w);
    const char *ev = strstr(o, "{\"action\":\"set\"");
    REQUIRE(ev != NULL);
    CHECK(strstr(ev, "}\n\r\n0\r\n\r\n") != NULL);
    CHECK(strstr(o, "etcdserver") > ev); /* then the pipelined answer */
    CHECK_EQ(store_watcher_count(server_store(e.srv)), 0);
    client_free(&w);
    client_free(&p);
    env_close(&e);
}

TEST(http_stream_watch_and_close_unwatches)
{
    struct env e;
    struct client w, p;
    env_init(&e);
    client_open(&e, &w);
    client_open(&e, &p);
    struct client *all[] = {&w, &p};
    send_str(&w, "GET /v2/keys/dir/b?wait=true&stream=true HTTP/1.1\r\n"
                 "Host: x\r\n\r\n");
    settle(&e, all, 2);
    send_str(&p, put_b);
    send_str(&p, put_b);
    settle(&e, all, 2);
    CHECK_EQ(count(out(&w), "{\"action\":\"set\""), 2);
    CHECK(strstr(out(&w), "0\r\n\r\n") == NULL);
    CHECK_EQ(store_watcher_count(server_store(e.srv)), 1);
    client_free(&w); /* the client goes away */
    CHECK_EQ(store_watcher_count(server_store(e.srv)), 0);
    send_str(&p, put_b);
    struct client *rest[] = {&p};
    settle(&e, rest, 1);
    client_free(&p);
    env_close(&e);
}

TEST(http_pipeline_limit_pauses_reading)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct cn_buf in = {0};
    unsigned n = CN_HTTP_PIPELINE_MAX + 50;
    for (unsigned i = 0; i < n; i++)
        cn_buf_append_cstr(&in, "GET /v2/keys/ HTTP/1.1\r\nHost: x\r\n\r\n");
    http_conn_feed(cl.c, in.data, in.len);
    CHECK_EQ(cl.tr.reading, 0);
    struct client *all[] = {&cl};
    settle(&e, all, 1);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 200 OK"), (int)n);
    CHECK_EQ(cl.tr.reading, 1);
    cn_buf_close(&in);
    client_free(&cl);
    env_close(&e);
}

TEST(http_queued_bytes_pause_reading)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    /* Far fewer requests than the pipeline takes, but each one large:
     * reading stops once the queued ones hold CN_HTTP_QUEUED_BYTES_MAX. */
    struct cn_buf in = {0};
    static char big[200 * 1024];
    memset(big, 'L', sizeof(big));
    unsigned n = 48;
    CHECK(n < CN_HTTP_PIPELINE_MAX);
    CHECK(n * sizeof(big) > 2 * CN_HTTP_QUEUED_BYTES_MAX);
    for (unsigned i = 0; i < n; i++) {
        cn_buf_append_cstr(&in, "GET /v2/keys/?x=");
        cn_buf_append(&in, big, sizeof(big));
        cn_buf_append_cstr(&in, " HTTP/1.1\r\nHost: x\r\n\r\n");
    }
    http_conn_feed(cl.c, in.data, in.len);
    CHECK_EQ(cl.tr.reading, 0);
    struct client *all[] = {&cl};
    settle(&e, all, 1);
    CHECK_EQ(count(out(&cl), "HTTP/1.1 200 OK"), (int)n);
    CHECK_EQ(cl.tr.reading, 1);
    CHECK(!cl.tr.closed);
    cn_buf_close(&in);
    client_free(&cl);
    env_close(&e);
}

TEST(http_ttl_expires_through_sync)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "PUT /v2/keys/t?value=x&ttl=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strstr(out(&cl), "\"ttl\":1") != NULL);
    server_expire_check(e.srv);
    server_flush(e.srv);
    CHECK_EQ(store_key_count(server_store(e.srv)) > 0, 1);
    e.now_ns += 2000000000ll;
    server_expire_check(e.srv);
    server_flush(e.srv);
    cn_buf_reset(&cl.tr.out);
    send_str(&cl, "GET /v2/keys/t HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    CHECK(strncmp(out(&cl), "HTTP/1.1 404 ", 13) == 0);
    client_free(&cl);
    env_close(&e);
}

TEST(http_deadlines_follow_state)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_IDLE_TIMEOUT_MS);
    send_str(&cl, "GET /version HTTP/1.1\r\n");
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_HEADER_TIMEOUT_MS);
    send_str(&cl, "Host: x\r\n\r\n");
    struct client *all[] = {&cl};
    settle(&e, all, 1);
    CHECK_EQ(cl.tr.deadline_ms, CN_HTTP_IDLE_TIMEOUT_MS);
    client_free(&cl);
    env_close(&e);
}

TEST(http_members_and_stats)
{
    struct env e;
    struct client cl;
    env_init(&e);
    client_open(&e, &cl);
    struct client *all[] = {&cl};
    send_str(&cl, "GET /v2/members HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /v2/stats/store HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /v2/stats/self HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /v2/machines HTTP/1.1\r\nHost: x\r\n\r\n"
                  "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    settle(&e, all, 1);
    char id[32];
    snprintf(id, sizeof(id), "\"id\":\"%" PRIx64 "\"", server_member_id(e.srv));
    CHECK_EQ(count(out(&cl), id), 2);
    CHECK(strstr(out(&cl), "\"name\":\"t1\"") != NULL);
    CHECK(strstr(out(&cl), "\"getsSuccess\"") != NULL);
    CHECK(strstr(out(&cl), "\"state\":\"StateLeader\"") != NULL);
    CHECK(strstr(out(&cl), "\r\n\r\nhttp://127.0.0.1:1") != NULL);
    CHECK(strstr(out(&cl), "cairn_http_requests_total{method=\"GET\"") != NULL);
    client_free(&cl);
    env_close(&e);
}
