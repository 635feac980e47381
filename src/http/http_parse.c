/*
 * http_parse.c: the wrapper around http_parser (the only file that
 * includes it). It turns the parser's callbacks into http_conn_on_*()
 * calls and pauses after every complete message, so that the connection
 * handles one request at a time and can stop parsing (pipeline full) with
 * the remaining bytes untouched.
 */
#include "http_int.h"

#include <http_parser.h>

struct http_parse {
    http_parser parser;
    struct http_conn *conn;
    int stopped; /* a callback asked to stop */
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

static int cb_begin(http_parser *p)
{
    return stop(p, http_conn_on_begin(conn_of(p)));
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
    struct http_head_info h = {
        .method = map_method(p->method),
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
    .on_message_begin = cb_begin,
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
    http_parser_init(&p->parser, HTTP_REQUEST);
    p->parser.data = p;
    p->conn = c;
    *out = p;
    return CN_OK;
}

void http_parse_free(struct http_parse *p)
{
    cn_free(p);
}

int http_parse_exec(struct http_parse *p, const char *buf, size_t len,
                    size_t *used)
{
    if (HTTP_PARSER_ERRNO(&p->parser) == HPE_PAUSED)
        http_parser_pause(&p->parser, 0);
    size_t n = http_parser_execute(&p->parser, &settings, buf, len);
    *used = n;
    enum http_errno e = HTTP_PARSER_ERRNO(&p->parser);
    if (e == HPE_PAUSED)
        return HTTP_PARSE_MESSAGE;
    if (p->stopped)
        return HTTP_PARSE_STOPPED;
    if (e != HPE_OK)
        return HTTP_PARSE_ERROR;
    if (p->parser.upgrade) {
        /* An upgrade request ends the HTTP stream: treat as complete. */
        return HTTP_PARSE_STOPPED;
    }
    return HTTP_PARSE_MORE;
}

int http_parse_url(const char *url, size_t len, struct cn_slice *path,
                   struct cn_slice *query)
{
    struct http_parser_url u;
    http_parser_url_init(&u);
    if (http_parser_parse_url(url, len, 0, &u) != 0)
        return CN_EINVAL;
    path->base = "";
    path->len = 0;
    query->base = "";
    query->len = 0;
    if (u.field_set & (1 << UF_PATH)) {
        path->base = url + u.field_data[UF_PATH].off;
        path->len = u.field_data[UF_PATH].len;
    }
    if (u.field_set & (1 << UF_QUERY)) {
        query->base = url + u.field_data[UF_QUERY].off;
        query->len = u.field_data[UF_QUERY].len;
    }
    return CN_OK;
}
