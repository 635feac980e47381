/*
 * http_parse.c: the wrapper around http_parser (the only file that
 * includes it). It turns the parser's callbacks into http_conn_on_*()
 * calls and pauses after every complete message, so that the connection
 * handles one request at a time and can stop parsing (pipeline full) with
 * the remaining bytes untouched.
 *
 * The request line goes through a small scanner before the parser sees it,
 * to accept and refuse what Go's server (behind etcd) does:
 * - the method is any token (RFC 7230 tchar). http_parser knows a fixed
 *   list; any other token (and CONNECT, which http_parser treats as an
 *   upgrade) is held back and replaced by a stand-in method that the
 *   handlers answer 405 (HM_OTHER), so the message is still framed and the
 *   connection goes on, as with etcd;
 * - exactly one space after the method and after the target;
 * - the version is exactly "HTTP/1." and one digit (Go takes HTTP/1.2 as
 *   1.x too); no version (HTTP/0.9) or any other is malformed: 400, close.
 * Request line and headers together are bounded by CN_HTTP_HEADER_BYTES_MAX
 * (Go's DefaultMaxHeaderBytes plus its 4096 bytes of slop); beyond, 431.
 */
#include "http_int.h"

#include <http_parser.h>
#include <stdint.h>
#include <string.h>

/* Where the scanner is in the request line. */
enum {
    LS_START = 0, /* before a message: empty lines are skipped */
    LS_METHOD,    /* the method token, held back */
    LS_SP1,       /* the space after the method */
    LS_TARGET0,   /* the first byte of the target */
    LS_TARGET,
    LS_VERSION,
    LS_LF,   /* after the CR ending the line */
    LS_REST, /* headers and body: the parser's alone */
};

#define METHOD_HELD_MAX 16 /* longer than any method http_parser knows */
#define VERSION_LEN 8      /* "HTTP/1.x" */

/* Stands for a method http_parser does not know: framed like any other
 * request (no upgrade, a body only with a length or chunked). */
static const char method_stand_in[] = "PATCH";

struct http_parse {
    http_parser parser;
    struct http_conn *conn;
    int stopped; /* a callback asked to stop */
    int line;    /* LS_* */
    int other;   /* the method was replaced by the stand-in */
    char method[METHOD_HELD_MAX];
    size_t method_len; /* may exceed METHOD_HELD_MAX (then only counted) */
    char version[VERSION_LEN];
    size_t version_len;
};

static struct http_conn *conn_of(http_parser *p)
{
    return ((struct http_parse *)p->data)->conn;
}

static int stop(http_parser *p, int rc)
{
    if (rc != 0)
        ((struct http_parse *)p->data)->stopped = 1;
    return rc;
}

static int cb_url(http_parser *p, const char *at, size_t n)
{
    return stop(p, http_conn_on_url(conn_of(p), at, n));
}

static int cb_hfield(http_parser *p, const char *at, size_t n)
{
    return stop(p, http_conn_on_hfield(conn_of(p), at, n));
}

static int cb_hvalue(http_parser *p, const char *at, size_t n)
{
    return stop(p, http_conn_on_hvalue(conn_of(p), at, n));
}

static int map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET:
        return HM_GET;
    case HTTP_HEAD:
        return HM_HEAD;
    case HTTP_PUT:
        return HM_PUT;
    case HTTP_POST:
        return HM_POST;
    case HTTP_DELETE:
        return HM_DELETE;
    case HTTP_OPTIONS:
        return HM_OPTIONS;
    default:
        return HM_OTHER;
    }
}

static int cb_headers(http_parser *p)
{
    struct http_parse *w = p->data;
    struct http_head_info h = {
        .method = w->other ? HM_OTHER : map_method(p->method),
        .http_major = p->http_major,
        .http_minor = p->http_minor,
        .keep_alive = http_should_keep_alive(p),
        .has_length = (p->flags & F_CONTENTLENGTH) != 0,
        .content_length = p->content_length,
        .chunked = (p->flags & F_CHUNKED) != 0,
        .upgrade = p->upgrade,
    };
    /* 0 goes on; anything else is an answer already given. */
    int rc = http_conn_on_headers(conn_of(p), &h);
    if (rc != 0) {
        ((struct http_parse *)p->data)->stopped = 1;
        return -1;
    }
    return 0;
}

static int cb_body(http_parser *p, const char *at, size_t n)
{
    return stop(p, http_conn_on_body(conn_of(p), at, n));
}

static int cb_complete(http_parser *p)
{
    int rc = http_conn_on_complete(conn_of(p));
    if (rc != 0)
        return stop(p, rc);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    /* no on_message_begin: http_parse_exec begins the request at its
     * method's first byte */
    .on_url = cb_url,
    .on_header_field = cb_hfield,
    .on_header_value = cb_hvalue,
    .on_headers_complete = cb_headers,
    .on_body = cb_body,
    .on_message_complete = cb_complete,
};

int http_parse_new(struct http_parse **out, struct http_conn *c)
{
    struct http_parse *p = cn_calloc(1, sizeof(*p));
    if (p == NULL)
        return CN_ENOMEM;
    /* http_parser keeps this bound in a library global (80 KiB by default);
     * http_parse.c is its only user, so every parser sets the same value.
     * It counts the request line and the headers, as Go does. */
    http_parser_set_max_header_size(CN_HTTP_HEADER_BYTES_MAX);
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    p->conn = c;
    p->line = LS_START;
    *out = p;
    return CN_OK;
}

void http_parse_free(struct http_parse *p)
{
    cn_free(p);
}

/* RFC 7230 tchar, as Go's validMethod. */
static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9'))
        return 1;
    return ch != 0 && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* The method to give the parser for the held token: the token itself when
 * http_parser knows it (CONNECT excepted), else the stand-in. */
static const char *method_for_parser(struct http_parse *p)
{
    static const char *const known[] = {
#define XX(num, name, string) #string,
        HTTP_METHOD_MAP(XX)
#undef XX
    };
    p->other = 1;
    if (p->method_len > METHOD_HELD_MAX)
        return method_stand_in;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (strlen(known[i]) == p->method_len &&
            memcmp(known[i], p->method, p->method_len) == 0 &&
            strcmp(known[i], "CONNECT") != 0) {
            p->other = 0;
            return known[i];
        }
    }
    return method_stand_in;
}

static int version_ok(const struct http_parse *p)
{
    return p->version_len == VERSION_LEN &&
           memcmp(p->version, "HTTP/1.", 7) == 0 && p->version[7] >= '0' &&
           p->version[7] <= '9';
}

/* Steps the request-line scanner over one byte that will be passed on to
 * the parser (states LS_SP1..LS_LF). Returns 0, or HTTP_PARSE_ERROR. */
static int line_step(struct http_parse *p, unsigned char ch)
{
    switch (p->line) {
    case LS_SP1:
        if (ch != ' ')
            return HTTP_PARSE_ERROR;
        p->line = LS_TARGET0;
        return 0;
    case LS_TARGET0:
        if (ch == ' ' || ch == '\r' || ch == '\n')
            return HTTP_PARSE_ERROR;
        p->line = LS_TARGET;
        return 0;
    case LS_TARGET:
        if (ch == '\r' || ch == '\n') /* no version: HTTP/0.9 */
            return HTTP_PARSE_ERROR;
        if (ch == ' ') {
            p->line = LS_VERSION;
            p->version_len = 0;
        }
        return 0;
    case LS_VERSION:
        if (ch == '\r' || ch == '\n') {
            if (!version_ok(p))
                return HTTP_PARSE_ERROR;
            p->line = ch == '\r' ? LS_LF : LS_REST;
            return 0;
        }
        if (p->version_len >= VERSION_LEN)
            return HTTP_PARSE_ERROR;
        p->version[p->version_len++] = (char)ch;
        return 0;
    case LS_LF:
        if (ch != '\n')
            return HTTP_PARSE_ERROR;
        p->line = LS_REST;
        return 0;
    default:
        return HTTP_PARSE_ERROR;
    }
}

/* What the parser's state says after it consumed bytes. */
static int parser_status(struct http_parse *p)
{
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    if (e == HPE_PAUSED) {
        p->line = LS_START;
        return HTTP_PARSE_MESSAGE;
    }
    if (p->stopped)
        return HTTP_PARSE_STOPPED;
    if (e == HPE_HEADER_OVERFLOW)
        return HTTP_PARSE_TOO_LARGE;
    if (e != HPE_OK)
        return HTTP_PARSE_ERROR;
    if (p->parser.upgrade) {
        /* An upgrade request ends the HTTP stream: treat as complete. */
        return HTTP_PARSE_STOPPED;
    }
    return HTTP_PARSE_MORE;
}

/* Feeds buf[0..len) to the parser. Returns HTTP_PARSE_MORE when it took
 * everything and goes on, else the status (with *used its bytes). */
static int feed(struct http_parse *p, const char *buf, size_t len, size_t *used)
{
    *used = http_parser_execute(&p->parser, &settings, buf, len);
    int st = parser_status(p);
    if (st == HTTP_PARSE_MORE && *used < len)
        st = HTTP_PARSE_ERROR;
    return st;
}

int http_parse_exec(struct http_parse *p, const char *buf, size_t len,
                    size_t *used)
{
    if (HTTP_PARSER_ERRNO(&p->parser) == HPE_PAUSED)
        http_parser_pause(&p->parser, 0);
    size_t off = 0;
    *used = 0;
    while (off < len) {
        unsigned char ch = (unsigned char)buf[off];
        if (p->line == LS_START) {
            if (ch == '\r' || ch == '\n') {
                off++;
                continue;
            }
            p->line = LS_METHOD;
            p->method_len = 0;
            p->other = 0;
            /* The request begins here, not when the parser is given its
             * method: a slow method token is under the header deadline. */
            if (http_conn_on_begin(p->conn) != 0) {
                p->stopped = 1;
                *used = off;
                return HTTP_PARSE_STOPPED;
            }
        }
        if (p->line == LS_METHOD) {
            if (ch == ' ') {
                const char *m = method_for_parser(p);
                size_t n;
                int st = feed(p, m, strlen(m), &n);
                if (st != HTTP_PARSE_MORE) {
                    *used = off;
                    return st == HTTP_PARSE_MESSAGE ? HTTP_PARSE_ERROR : st;
                }
                p->line = LS_SP1;
                continue;
            }
            if (!is_tchar(ch)) {
                *used = off;
                return HTTP_PARSE_ERROR;
            }
            if (p->method_len < METHOD_HELD_MAX)
                p->method[p->method_len] = (char)ch;
            p->method_len++;
            if (p->method_len > CN_HTTP_HEADER_BYTES_MAX) {
                *used = off;
                return HTTP_PARSE_TOO_LARGE;
            }
            off++;
            continue;
        }
        size_t start = off, n;
        int bad = 0;
        if (p->line != LS_REST) {
            /* Check the rest of the line as far as this buffer goes, then
             * give the checked bytes to the parser. */
            while (off < len && p->line != LS_REST) {
                if (line_step(p, (unsigned char)buf[off]) != 0) {
                    bad = 1;
                    break;
                }
                off++;
            }
        } else {
            off = len;
        }
        int st = feed(p, buf + start, off - start, &n);
        if (st != HTTP_PARSE_MORE) {
            *used = start + n;
            return st;
        }
        if (bad) {
            *used = off;
            return HTTP_PARSE_ERROR;
        }
    }
    *used = len;
    return HTTP_PARSE_MORE;
}

/* http_parser_parse_url keeps offsets and lengths in 16 bits: it is given
 * only what comes before the query ('?') or fragment ('#'), which are
 * split here, so a request target of any length (up to the header limit)
 * keeps its whole query. */
int http_parse_url(const char *url, size_t len, struct cn_slice *path,
                   struct cn_slice *query)
{
    size_t q = 0;
    while (q < len && url[q] != '?' && url[q] != '#')
        q++;
    path->base = "";
    path->len = 0;
    query->base = "";
    query->len = 0;
    if (q > UINT16_MAX) {
        /* Only an origin-form path gets this long. */
        if (url[0] != '/')
            return CN_EINVAL;
        path->base = url;
        path->len = q;
    } else {
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(url, q, 0, &u) != 0)
            return CN_EINVAL;
        if (u.field_set & (1 << UF_PATH)) {
            path->base = url + u.field_data[UF_PATH].off;
            path->len = u.field_data[UF_PATH].len;
        }
    }
    if (q < len && url[q] == '?') {
        size_t end = q + 1;
        while (end < len && url[end] != '#')
            end++;
        query->base = url + q + 1;
        query->len = end - q - 1;
    }
    return CN_OK;
}
