/*
 * bench_http: see bench_http.h. Lines are gathered into p->line (bounded by
 * BENCH_HTTP_LINE_MAX) so a line split across reads parses the same as one
 * that arrives whole; body bytes are never copied.
 */
#include "bench_http.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

void bench_http_parser_reset(struct bench_http_parser *p, int head_only)
{
    p->state = BENCH_HTTP_STATUS;
    p->status = 0;
    p->chunked = 0;
    p->conn_close = 0;
    p->head_only = head_only;
    p->content_length = -1;
    p->body_left = 0;
    p->etcd_index = 0;
    p->line_len = 0;
}

static int parse_u64(const char *s, size_t n, int base, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    size_t start = i;
    for (; i < n; i++) {
        int d;
        char c = s[i];
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (base == 16 && c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (base == 16 && c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            break;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return CN_EPROTO;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (i == start)
        return CN_EPROTO;
    /* chunk extensions (";...") and trailing blanks are allowed */
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n && !(base == 16 && s[i] == ';'))
        return CN_EPROTO;
    *out = v;
    return 0;
}

static int parse_status_line(struct bench_http_parser *p)
{
    /* "HTTP/1.1 200 OK" */
    const char *l = p->line;
    if (p->line_len < 12 || strncmp(l, "HTTP/1.", 7) != 0 || l[8] != ' ')
        return CN_EPROTO;
    for (int i = 9; i < 12; i++)
        if (!isdigit((unsigned char)l[i]))
            return CN_EPROTO;
    p->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (l[7] == '0')
        p->conn_close = 1; /* HTTP/1.0 closes by default */
    return 0;
}

static int header_value_has(const char *v, size_t n, const char *word)
{
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= n; i++)
        if (strncasecmp(v + i, word, wl) == 0)
            return 1;
    return 0;
}

static int parse_header_line(struct bench_http_parser *p)
{
    const char *l = p->line;
    const char *colon = memchr(l, ':', p->line_len);
    if (colon == NULL || colon == l)
        return CN_EPROTO;
    size_t name_len = (size_t)(colon - l);
    const char *v = colon + 1;
    size_t vn = p->line_len - name_len - 1;
    while (vn > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        vn--;
    }
    while (vn > 0 && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
        vn--;
#define NAME_IS(s)                                                             \
    (name_len == sizeof(s) - 1 && strncasecmp(l, s, name_len) == 0)
    if (NAME_IS("content-length")) {
        uint64_t n;
        if (parse_u64(v, vn, 10, &n) != 0 || n > INT64_MAX)
            return CN_EPROTO;
        p->content_length = (int64_t)n;
    } else if (NAME_IS("transfer-encoding")) {
        if (header_value_has(v, vn, "chunked"))
            p->chunked = 1;
    } else if (NAME_IS("connection")) {
        if (header_value_has(v, vn, "close"))
            p->conn_close = 1;
    } else if (NAME_IS("x-etcd-index")) {
        uint64_t n;
        if (parse_u64(v, vn, 10, &n) == 0)
            p->etcd_index = n;
    }
#undef NAME_IS
    return 0;
}

/* Headers are done: choose how the body is framed. */
static int start_body(struct bench_http_parser *p)
{
    if (p->head_only || p->status == 204 || p->status == 304 ||
        (p->status >= 100 && p->status < 200)) {
        p->state = BENCH_HTTP_DONE;
    } else if (p->chunked) {
        p->state = BENCH_HTTP_CHUNK_SIZE;
    } else if (p->content_length >= 0) {
        p->body_left = (uint64_t)p->content_length;
        p->state = p->body_left ? BENCH_HTTP_BODY_LEN : BENCH_HTTP_DONE;
    } else {
        p->state = BENCH_HTTP_BODY_EOF;
    }
    return BENCH_HTTP_HEADERS;
}

/* A complete line is in p->line (without CRLF). Returns an event or error. */
static int on_line(struct bench_http_parser *p)
{
    int rc;
    switch (p->state) {
    case BENCH_HTTP_STATUS:
        rc = parse_status_line(p);
        if (rc != 0)
            return rc;
        p->state = BENCH_HTTP_HEADER;
        return BENCH_HTTP_NEED_MORE;
    case BENCH_HTTP_HEADER:
        if (p->line_len == 0)
            return start_body(p);
        rc = parse_header_line(p);
        return rc != 0 ? rc : BENCH_HTTP_NEED_MORE;
    case BENCH_HTTP_CHUNK_SIZE:
        rc = parse_u64(p->line, p->line_len, 16, &p->body_left);
        if (rc != 0)
            return rc;
        p->state = p->body_left ? BENCH_HTTP_CHUNK_DATA : BENCH_HTTP_TRAILER;
        return BENCH_HTTP_NEED_MORE;
    case BENCH_HTTP_CHUNK_CRLF:
        if (p->line_len != 0)
            return CN_EPROTO;
        p->state = BENCH_HTTP_CHUNK_SIZE;
        return BENCH_HTTP_NEED_MORE;
    case BENCH_HTTP_TRAILER:
        if (p->line_len == 0) {
            p->state = BENCH_HTTP_DONE;
            return BENCH_HTTP_COMPLETE;
        }
        return BENCH_HTTP_NEED_MORE;
    default:
        return CN_EPROTO;
    }
}

static int line_state(enum bench_http_state s)
{
    return s == BENCH_HTTP_STATUS || s == BENCH_HTTP_HEADER ||
           s == BENCH_HTTP_CHUNK_SIZE || s == BENCH_HTTP_CHUNK_CRLF ||
           s == BENCH_HTTP_TRAILER;
}

int bench_http_parse(struct bench_http_parser *p, const char *data, size_t len,
                     size_t *consumed, bench_http_body_fn *body_fn, void *ctx)
{
    size_t i = 0;
    while (i < len) {
        if (p->state == BENCH_HTTP_DONE)
            break;
        if (line_state(p->state)) {
            const char *nl = memchr(data + i, '\n', len - i);
            size_t take = nl ? (size_t)(nl - (data + i)) : len - i;
            if (p->line_len + take >= BENCH_HTTP_LINE_MAX)
                return CN_EPROTO;
            memcpy(p->line + p->line_len, data + i, take);
            p->line_len += take;
            i += take;
            if (nl == NULL)
                break;
            i++; /* the '\n' */
            if (p->line_len > 0 && p->line[p->line_len - 1] == '\r')
                p->line_len--;
            p->line[p->line_len] = '\0';
            int ev = on_line(p);
            p->line_len = 0;
            if (ev != BENCH_HTTP_NEED_MORE) {
                *consumed = i;
                if (ev == BENCH_HTTP_HEADERS && p->state == BENCH_HTTP_DONE)
                    return BENCH_HTTP_HEADERS; /* COMPLETE follows next call */
                return ev;
            }
            continue;
        }
        /* body bytes */
        size_t take = len - i;
        if (p->state != BENCH_HTTP_BODY_EOF && take > p->body_left)
            take = (size_t)p->body_left;
        if (body_fn != NULL && take > 0)
            body_fn(ctx, data + i, take);
        i += take;
        if (p->state == BENCH_HTTP_BODY_EOF)
            continue;
        p->body_left -= take;
        if (p->body_left == 0) {
            if (p->state == BENCH_HTTP_BODY_LEN) {
                p->state = BENCH_HTTP_DONE;
                *consumed = i;
                return BENCH_HTTP_COMPLETE;
            }
            p->state = BENCH_HTTP_CHUNK_CRLF;
        }
    }
    *consumed = i;
    if (p->state == BENCH_HTTP_DONE)
        return BENCH_HTTP_COMPLETE;
    return BENCH_HTTP_NEED_MORE;
}

int bench_http_parse_eof(struct bench_http_parser *p)
{
    if (p->state == BENCH_HTTP_BODY_EOF) {
        p->state = BENCH_HTTP_DONE;
        return BENCH_HTTP_COMPLETE;
    }
    return CN_EPROTO;
}

int bench_http_json_u64(const char *json, size_t len, const char *name,
                        uint64_t *out)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl + 3 <= len; i++) {
        if (json[i] != '"' || json[i + nl + 1] != '"' ||
            memcmp(json + i + 1, name, nl) != 0)
            continue;
        size_t j = i + nl + 2;
        while (j < len && (json[j] == ' ' || json[j] == ':'))
            j++;
        if (j < len && json[j] == '"')
            j++; /* a string that starts with digits: "value":"42-..." */
        uint64_t v = 0;
        size_t start = j;
        while (j < len && json[j] >= '0' && json[j] <= '9')
            v = v * 10 + (uint64_t)(json[j++] - '0');
        if (j == start)
            continue;
        *out = v;
        return 0;
    }
    return CN_ENOTFOUND;
}
