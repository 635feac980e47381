/*
 * bench_http: the minimal HTTP/1.1 client side cairn-bench needs: request
 * text for the v2 key API, and an incremental response parser (status
 * line, headers, a Content-Length, chunked or until-close body).
 *
 * The parser is a push parser: feed it whatever the socket gave, in pieces
 * of any size, and it reports when the headers are complete and when the
 * response is complete. Body bytes go to a callback as they arrive (for a
 * chunked body, without the chunk framing), so a stream=true watch can be
 * consumed while the response is still open.
 *
 * States (bench_http_parse performs every transition):
 *
 *   STATUS -> HEADER* -> (BODY_LEN | CHUNK_SIZE <-> CHUNK_DATA -> CHUNK_CRLF
 *                         | BODY_EOF | done) ; CHUNK_SIZE(0) -> TRAILER* ->
 * done
 */
#ifndef BENCH_HTTP_H
#define BENCH_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define BENCH_HTTP_LINE_MAX 8192 /* longest status/header/chunk-size line */

enum bench_http_state {
    BENCH_HTTP_STATUS,
    BENCH_HTTP_HEADER,
    BENCH_HTTP_BODY_LEN,
    BENCH_HTTP_BODY_EOF,
    BENCH_HTTP_CHUNK_SIZE,
    BENCH_HTTP_CHUNK_DATA,
    BENCH_HTTP_CHUNK_CRLF,
    BENCH_HTTP_TRAILER,
    BENCH_HTTP_DONE,
};

/* Results of bench_http_parse besides negative CN_E* codes. */
enum bench_http_event {
    BENCH_HTTP_NEED_MORE = 0, /* everything consumed, response incomplete */
    BENCH_HTTP_HEADERS = 1,   /* headers complete (body may follow) */
    BENCH_HTTP_COMPLETE = 2,  /* response complete */
};

/* Receives body bytes (borrowed for the call). */
typedef void bench_http_body_fn(void *ctx, const char *data, size_t len);

struct bench_http_parser {
    enum bench_http_state state;
    int status;             /* HTTP status code */
    int chunked;            /* Transfer-Encoding: chunked */
    int conn_close;         /* Connection: close */
    int head_only;          /* response to HEAD: no body */
    int64_t content_length; /* -1 when absent */
    uint64_t body_left;     /* bytes left in this body / chunk */
    uint64_t etcd_index;    /* X-Etcd-Index, 0 when absent */
    size_t line_len;        /* bytes in line */
    char line[BENCH_HTTP_LINE_MAX];
};

/* Ready for a new response; head_only for the answer to a HEAD. */
void bench_http_parser_reset(struct bench_http_parser *p, int head_only);

/* Feeds len bytes. Stops after reporting an event: *consumed says how many
 * bytes were used (the caller feeds the rest again). Returns an enum
 * bench_http_event, or CN_EPROTO for a malformed response (the parser must
 * then be reset and the connection closed). body_fn may be NULL. */
int bench_http_parse(struct bench_http_parser *p, const char *data, size_t len,
                     size_t *consumed, bench_http_body_fn *body_fn, void *ctx);

/* The peer closed the connection: BENCH_HTTP_COMPLETE if that ends a body
 * that runs until close, else CN_EPROTO (response cut short). */
int bench_http_parse_eof(struct bench_http_parser *p);

/* Finds the first "name":<unsigned number> (or "name":"<digits>...") in a
 * JSON text: a crude scan that is right for etcd's answers, where the
 * node's fields come before prevNode's. Returns 0 and sets *out, or
 * CN_ENOTFOUND. */
int bench_http_json_u64(const char *json, size_t len, const char *name,
                        uint64_t *out);

#endif
