/* Unit tests for src/cli/cli_http.c: URL parsing, response heads, chunked
 * decoding (whole, byte by byte, malformed). */
#include "cli/cli_int.h"
#include "tap.h"

#include <string.h>

TEST(cli_url_parse_host_port_and_path)
{
    struct cli_url u;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(cli_url_parse("http://127.0.0.1:2379", &u, err), CN_OK);
    CHECK_STR(u.host, "127.0.0.1");
    CHECK_STR(u.port, "2379");
    CHECK_STR(u.path, "");
    REQUIRE_EQ(cli_url_parse("http://[::1]:80/base/", &u, err), CN_OK);
    CHECK_STR(u.host, "::1");
    CHECK_STR(u.port, "80");
    CHECK_STR(u.path, "/base");
    REQUIRE_EQ(cli_url_parse("http://example.com", &u, err), CN_OK);
    CHECK_STR(u.port, "80");
}

TEST(cli_url_parse_rejects_host_port_without_scheme)
{
    struct cli_url u;
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(cli_url_parse("127.0.0.1:1", &u, err), CN_EINVAL);
    CHECK_STR(err, "parse \"127.0.0.1:1\": first path segment in URL cannot "
                   "contain colon");
    CHECK_EQ(cli_url_parse("ftp://x:1", &u, err), CN_EINVAL);
    CHECK_EQ(cli_url_parse("http://:1", &u, err), CN_EINVAL);
    CHECK_EQ(cli_url_parse("http://h:12a", &u, err), CN_EINVAL);
}

TEST(cli_http_parse_head_reads_status_and_headers)
{
    const char *h = "HTTP/1.1 404 Not Found\r\n"
                    "Content-Type: application/json\r\n"
                    "X-Etcd-Index: 42\r\n"
                    "content-length: 17\r\n\r\n{\"errorCode\":100}";
    struct cli_http_resp r;
    cli_http_resp_init(&r);
    long n = cli_http_parse_head(h, strlen(h), &r);
    REQUIRE(n > 0);
    CHECK_EQ(n, strlen(h) - 17);
    CHECK_EQ(r.status, 404);
    CHECK_EQ(r.content_length, 17);
    CHECK_EQ(r.has_etcd_index, 1);
    CHECK_EQ(r.etcd_index, 42);
    CHECK_STR(r.content_type, "application/json");
    CHECK_EQ(r.chunked, 0);
    CHECK_EQ(r.conn_close, 0);
    cli_http_resp_close(&r);
}

TEST(cli_http_parse_head_needs_more_and_rejects_garbage)
{
    struct cli_http_resp r;
    cli_http_resp_init(&r);
    const char *partial = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n";
    CHECK_EQ(cli_http_parse_head(partial, strlen(partial), &r), 0);
    const char *bad = "HTTX/1.1 200 OK\r\n\r\n";
    CHECK_EQ(cli_http_parse_head(bad, strlen(bad), &r), CN_EPROTO);
    const char *badstatus = "HTTP/1.1 2x0 OK\r\n\r\n";
    CHECK_EQ(cli_http_parse_head(badstatus, strlen(badstatus), &r), CN_EPROTO);
    const char *noc = "HTTP/1.1 200 OK\r\nNoColonHere\r\n\r\n";
    CHECK_EQ(cli_http_parse_head(noc, strlen(noc), &r), CN_EPROTO);
    const char *h10 = "HTTP/1.0 301 Moved\r\nLocation: /v2/keys/a\r\n"
                      "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
    REQUIRE(cli_http_parse_head(h10, strlen(h10), &r) > 0);
    CHECK_EQ(r.status, 301);
    CHECK_EQ(r.chunked, 1);
    CHECK_EQ(r.conn_close, 1);
    CHECK_STR(r.location, "/v2/keys/a");
    cli_http_resp_close(&r);
}

static const char chunked_body[] =
    "7\r\n{\"actio\r\n"
    "1a;ext=1\r\nn\":\"set\",\"node\":{\"key\":\"/a\r\n"
    "3\r\n\"}}\r\n"
    "0\r\nX-Trailer: y\r\n\r\nNEXT";

TEST(cli_chunked_decodes_whole_stream_and_stops_at_end)
{
    struct cli_chunked d = {0};
    struct cn_buf out = {0};
    size_t used = 0;
    size_t n = sizeof(chunked_body) - 1;
    REQUIRE_EQ(cli_chunked_feed(&d, chunked_body, n, &used, &out), 1);
    CHECK_EQ(used, n - 4); /* "NEXT" is not consumed */
    CHECK_STR(out.data, "{\"action\":\"set\",\"node\":{\"key\":\"/a\"}}");
    cn_buf_close(&out);
}

TEST(cli_chunked_decodes_byte_by_byte)
{
    struct cli_chunked d = {0};
    struct cn_buf out = {0};
    size_t n = sizeof(chunked_body) - 1 - 4;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used = 0;
        rc = cli_chunked_feed(&d, chunked_body + i, 1, &used, &out);
        REQUIRE(rc >= 0);
        CHECK_EQ(used, 1);
        if (i + 1 < n)
            CHECK_EQ(rc, 0);
    }
    CHECK_EQ(rc, 1);
    CHECK_STR(out.data, "{\"action\":\"set\",\"node\":{\"key\":\"/a\"}}");
    cn_buf_close(&out);
}

TEST(cli_chunked_rejects_malformed_streams)
{
    const char *bad[] = {"x\r\n", "3\r\nabcX", "3\nabc", "3\r\nabc\r\r",
                         "0\r\nX\r\r"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct cli_chunked d = {0};
        struct cn_buf out = {0};
        size_t used = 0;
        CHECK_EQ(cli_chunked_feed(&d, bad[i], strlen(bad[i]), &used, &out),
                 CN_EPROTO);
        cn_buf_close(&out);
    }
    /* A huge size overflows instead of wrapping. */
    struct cli_chunked d = {0};
    struct cn_buf out = {0};
    size_t used = 0;
    const char *big = "fffffffffffffffff\r\n";
    CHECK_EQ(cli_chunked_feed(&d, big, strlen(big), &used, &out), CN_EPROTO);
    cn_buf_close(&out);
}

TEST(cli_chunked_reports_allocation_failure)
{
    struct cli_chunked d = {0};
    struct cn_buf out = {0};
    size_t used = 0;
    cn_mem_fault_arm(1, 0);
    int rc = cli_chunked_feed(&d, "3\r\nabc\r\n", 8, &used, &out);
    cn_mem_fault_disarm();
    CHECK_EQ(rc, CN_ENOMEM);
    cn_buf_close(&out);
}
