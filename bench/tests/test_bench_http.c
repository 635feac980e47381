/*
 * Tests of bench_http's response parser: every framing (Content-Length,
 * chunked, until close, no body), fed whole and one byte at a time, two
 * answers back to back on one connection, and malformed input.
 */
#include "../src/bench_http.h"

#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "tap.h"

struct sink {
    char body[4096];
    size_t len;
    int headers; /* HEADERS events seen */
    int complete;
};

static void on_body(void *ctx, const char *data, size_t len)
{
    struct sink *s = ctx;
    REQUIRE(s->len + len < sizeof(s->body));
    memcpy(s->body + s->len, data, len);
    s->len += len;
    s->body[s->len] = '\0';
}

/* Feeds text in pieces of step bytes; returns the bytes consumed when the
 * first answer completed (or -1 if it did not, or an error code). */
static long feed(struct bench_http_parser *p, struct sink *s, const char *text,
                 size_t step)
{
    size_t n = strlen(text), off = 0;
    while (off <= n) {
        size_t piece = n - off < step ? n - off : step;
        size_t pos = 0;
        for (;;) {
            size_t used = 0;
            int ev = bench_http_parse(p, text + off + pos, piece - pos, &used,
                                      on_body, s);
            pos += used;
            if (ev < 0)
                return ev;
            if (ev == BENCH_HTTP_HEADERS)
                s->headers++;
            if (ev == BENCH_HTTP_COMPLETE) {
                s->complete++;
                return (long)(off + pos);
            }
            if (ev == BENCH_HTTP_NEED_MORE)
                break;
        }
        if (off == n)
            break;
        off += piece;
    }
    return -1;
}

static const char content_length_answer[] = "HTTP/1.1 201 Created\r\n"
                                            "Content-Type: application/json\r\n"
                                            "X-Etcd-Index: 42\r\n"
                                            "content-length: 11\r\n"
                                            "\r\n"
                                            "hello world";

static const char chunked_answer[] = "HTTP/1.1 200 OK\r\n"
                                     "Transfer-Encoding: chunked\r\n"
                                     "\r\n"
                                     "5\r\nhello\r\n"
                                     "1;ext=1\r\n \r\n"
                                     "5\r\nworld\r\n"
                                     "0\r\n"
                                     "\r\n";

TEST(bench_http_content_length_whole_and_bytewise)
{
    for (size_t step = 1; step <= sizeof(content_length_answer); step++) {
        struct bench_http_parser p;
        struct sink s = {0};
        bench_http_parser_reset(&p, 0);
        long used = feed(&p, &s, content_length_answer, step);
        REQUIRE_EQ(used, (long)strlen(content_length_answer));
        CHECK_EQ(p.status, 201);
        CHECK_EQ(p.etcd_index, 42);
        CHECK_EQ(p.content_length, 11);
        CHECK_EQ(s.headers, 1);
        CHECK_STR(s.body, "hello world");
    }
}

TEST(bench_http_chunked_body_is_unframed)
{
    for (size_t step = 1; step <= sizeof(chunked_answer); step++) {
        struct bench_http_parser p;
        struct sink s = {0};
        bench_http_parser_reset(&p, 0);
        long used = feed(&p, &s, chunked_answer, step);
        REQUIRE_EQ(used, (long)strlen(chunked_answer));
        CHECK(p.chunked);
        CHECK_STR(s.body, "hello world");
    }
}

TEST(bench_http_two_answers_back_to_back)
{
    char two[1024];
    snprintf(two, sizeof(two), "%s%s", content_length_answer, chunked_answer);
    struct bench_http_parser p;
    struct sink s = {0};
    bench_http_parser_reset(&p, 0);
    long used = feed(&p, &s, two, sizeof(two));
    REQUIRE_EQ(used, (long)strlen(content_length_answer));
    bench_http_parser_reset(&p, 0);
    s.len = 0;
    long used2 = feed(&p, &s, two + used, sizeof(two));
    CHECK_EQ(used2, (long)strlen(chunked_answer));
    CHECK_STR(s.body, "hello world");
    CHECK_EQ(s.complete, 2);
}

TEST(bench_http_no_body_answers_complete_after_headers)
{
    static const char *const answers[] = {
        "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    };
    for (int i = 0; i < 2; i++) {
        struct bench_http_parser p;
        struct sink s = {0};
        bench_http_parser_reset(&p, 0);
        CHECK_EQ(feed(&p, &s, answers[i], 1), (long)strlen(answers[i]));
        CHECK_EQ(s.headers, 1);
        CHECK_EQ(s.len, 0);
    }
    struct bench_http_parser p;
    struct sink s = {0};
    bench_http_parser_reset(&p, 1); /* HEAD: Content-Length but no body */
    const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
    CHECK_EQ(feed(&p, &s, head, 100), (long)strlen(head));
}

TEST(bench_http_body_until_close)
{
    const char *a = "HTTP/1.0 200 OK\r\n\r\nsome bytes";
    struct bench_http_parser p;
    struct sink s = {0};
    bench_http_parser_reset(&p, 0);
    CHECK_EQ(feed(&p, &s, a, 3), -1); /* never complete by itself */
    CHECK(p.conn_close);
    CHECK_EQ(bench_http_parse_eof(&p), BENCH_HTTP_COMPLETE);
    CHECK_STR(s.body, "some bytes");
    /* EOF in the middle of a Content-Length body is an error */
    bench_http_parser_reset(&p, 0);
    s.len = 0;
    CHECK_EQ(
        feed(&p, &s, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 100),
        -1);
    CHECK_EQ(bench_http_parse_eof(&p), CN_EPROTO);
}

TEST(bench_http_malformed_answers_are_errors)
{
    static const char *const bad[] = {
        "HTTX/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        struct bench_http_parser p;
        struct sink s = {0};
        bench_http_parser_reset(&p, 0);
        long rc = feed(&p, &s, bad[i], 1000);
        if (rc != CN_EPROTO)
            tap_fail(__FILE__, __LINE__, "answer %zu: got %ld", i, rc);
    }
    /* a header line longer than the line buffer */
    static char huge[BENCH_HTTP_LINE_MAX + 64];
    memset(huge, 'a', sizeof(huge) - 1);
    memcpy(huge, "HTTP/1.1 200 OK\r\nX: ", 20);
    struct bench_http_parser p;
    struct sink s = {0};
    bench_http_parser_reset(&p, 0);
    CHECK_EQ(feed(&p, &s, huge, 512), CN_EPROTO);
}

TEST(bench_http_json_u64_finds_first_number_or_digit_string)
{
    const char *j = "{\"action\":\"set\",\"node\":{\"key\":\"/b/k1\",\"value\":"
                    "\"17-abc\",\"modifiedIndex\":9,\"createdIndex\":9},"
                    "\"prevNode\":{\"value\":\"3-x\",\"modifiedIndex\":4}}";
    uint64_t v = 0;
    CHECK_EQ(bench_http_json_u64(j, strlen(j), "modifiedIndex", &v), 0);
    CHECK_EQ(v, 9);
    CHECK_EQ(bench_http_json_u64(j, strlen(j), "value", &v), 0);
    CHECK_EQ(v, 17);
    CHECK_EQ(bench_http_json_u64(j, strlen(j), "action", &v), CN_ENOTFOUND);
    CHECK_EQ(bench_http_json_u64(j, strlen(j), "nope", &v), CN_ENOTFOUND);
}
