/*
 * http_params.c: query strings, form bodies, key parameters and URL paths,
 * as Go's net/http and etcd's parseKeyRequest treat them. Pure functions:
 * no I/O, no state; errors carry Go's and etcd's messages.
 */
#include "http_int.h"

#include <stdio.h>
#include <string.h>

static const char *const param_names[HP_COUNT] = {
    [HP_VALUE] = "value",
    [HP_TTL] = "ttl",
    [HP_DIR] = "dir",
    [HP_PREV_EXIST] = "prevExist",
    [HP_PREV_VALUE] = "prevValue",
    [HP_PREV_INDEX] = "prevIndex",
    [HP_RECURSIVE] = "recursive",
    [HP_SORTED] = "sorted",
    [HP_WAIT] = "wait",
    [HP_WAIT_INDEX] = "waitIndex",
    [HP_QUORUM] = "quorum",
    [HP_STREAM] = "stream",
    [HP_REFRESH] = "refresh",
    [HP_NO_VALUE_ON_SUCCESS] = "noValueOnSuccess",
};

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes s into dst (room for s.len bytes). plus: '+' is a space (query
 * mode). Returns the decoded length, or -1 with cause set. */
static long unescape(struct cn_slice s, char *dst, int plus,
                     char cause[HTTP_CAUSE_SIZE])
{
    size_t o = 0;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.base[i];
        if (ch == '%') {
            int hi = i + 1 < s.len ? hexval(s.base[i + 1]) : -1;
            int lo = i + 2 < s.len ? hexval(s.base[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                size_t n = s.len - i < 3 ? s.len - i : 3;
                snprintf(cause, HTTP_CAUSE_SIZE, "invalid URL escape \"%.*s\"",
                         (int)n, s.base + i);
                return -1;
            }
            dst[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (ch == '+' && plus) {
            dst[o++] = ' ';
        } else {
            dst[o++] = ch;
        }
    }
    return (long)o;
}

static int needs_unescape(struct cn_slice s)
{
    return memchr(s.base, '%', s.len) != NULL ||
           memchr(s.base, '+', s.len) != NULL;
}

/* One name=value pair of a query or form. Returns 0, or -1 with cause. */
static int form_pair(struct cn_slice kv, struct http_form *f,
                     struct cn_buf *scratch, char cause[HTTP_CAUSE_SIZE])
{
    const char *eq = memchr(kv.base, '=', kv.len);
    struct cn_slice k = {kv.base, eq ? (size_t)(eq - kv.base) : kv.len};
    struct cn_slice v = {eq ? eq + 1 : kv.base + kv.len,
                         eq ? kv.len - k.len - 1 : 0};
    if (needs_unescape(k)) {
        char *dst = scratch->data + scratch->len;
        long n = unescape(k, dst, 1, cause);
        if (n < 0)
            return -1;
        k.base = dst;
        k.len = (size_t)n;
        scratch->len += (size_t)n;
    }
    int idx = -1;
    for (int i = 0; i < HP_COUNT; i++) {
        if (strlen(param_names[i]) == k.len &&
            memcmp(param_names[i], k.base, k.len) == 0) {
            idx = i;
            break;
        }
    }
    if (needs_unescape(v)) {
        char *dst = scratch->data + scratch->len;
        long n = unescape(v, dst, 1, cause);
        if (n < 0)
            return -1;
        v.base = dst;
        v.len = (size_t)n;
        scratch->len += (size_t)n;
    }
    if (idx >= 0 && !f->present[idx]) {
        f->present[idx] = 1;
        f->v[idx] = v;
    }
    return 0;
}

/* Go's url.ParseQuery: '&'-separated; a ';' in a pair is an error; the
 * first error is reported but parsing goes on. Returns 0 or -1. */
static int form_parse_one(struct cn_slice q, struct http_form *f,
                          struct cn_buf *scratch, char cause[HTTP_CAUSE_SIZE])
{
    int failed = 0;
    char tmp[HTTP_CAUSE_SIZE];
    size_t i = 0;
    while (i < q.len) {
        const char *amp = memchr(q.base + i, '&', q.len - i);
        size_t end = amp ? (size_t)(amp - q.base) : q.len;
        struct cn_slice kv = {q.base + i, end - i};
        i = end + 1;
        if (memchr(kv.base, ';', kv.len) != NULL) {
            if (!failed)
                snprintf(cause, HTTP_CAUSE_SIZE,
                         "invalid semicolon separator in query");
            failed = 1;
            continue;
        }
        if (kv.len == 0)
            continue;
        if (form_pair(kv, f, scratch, failed ? tmp : cause) != 0)
            failed = 1;
    }
    return failed ? -1 : 0;
}

int http_form_parse(struct cn_slice body, struct cn_slice query,
                    struct http_form *f, struct cn_buf *scratch,
                    char cause[HTTP_CAUSE_SIZE])
{
    memset(f, 0, sizeof(*f));
    /* Decoded bytes never exceed the input: reserve once, so slices into
     * scratch stay valid. */
    if (cn_buf_reserve(scratch, body.len + query.len + 1) != CN_OK)
        return CN_ENOMEM;
    int berr = 0;
    if (body.base != NULL)
        berr = form_parse_one(body, f, scratch, cause);
    char qcause[HTTP_CAUSE_SIZE];
    int qerr = form_parse_one(query, f, scratch, qcause);
    if (berr)
        return CN_EINVAL;
    if (qerr) {
        memcpy(cause, qcause, HTTP_CAUSE_SIZE);
        return CN_EINVAL;
    }
    return CN_OK;
}

int http_parse_bool(struct cn_slice s, int *out)
{
    static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (int i = 0; i < 6; i++) {
        if (cn_slice_eq_cstr(s, t[i])) {
            *out = 1;
            return 1;
        }
        if (cn_slice_eq_cstr(s, f[i])) {
            *out = 0;
            return 1;
        }
    }
    return 0;
}

int http_parse_u64(struct cn_slice s, uint64_t *out)
{
    if (s.len == 0)
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned d = (unsigned char)s.base[i] - '0';
        if (d > 9)
            return 0;
        if (v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

/* Bools in the order etcd checks them, with its causes. */
static const struct {
    int param;
    const char *cause;
} bool_params[] = {
    {HP_RECURSIVE, "invalid value for \"recursive\""},
    {HP_SORTED, "invalid value for \"sorted\""},
    {HP_WAIT, "invalid value for \"wait\""},
    {HP_DIR, "invalid value for \"dir\""},
    {HP_QUORUM, "invalid value for \"quorum\""},
    {HP_STREAM, "invalid value for \"stream\""},
};

static int get_bool(const struct http_form *f, int p, int *out)
{
    *out = 0;
    return !f->present[p] || http_parse_bool(f->v[p], out);
}

static int get_u64(const struct http_form *f, int p, uint64_t *out)
{
    *out = 0;
    return !f->present[p] || http_parse_u64(f->v[p], out);
}

/* Follows etcd 3.4's parseKeyRequest check by check. */
int http_key_params_parse(const struct http_form *f, int method,
                          struct http_key_params *kp, const char **cause)
{
    memset(kp, 0, sizeof(*kp));
    kp->ttl_s = -1;
    kp->prev_exist = -1;
    kp->value = CN_SLICE_LIT("");
    if (!get_u64(f, HP_PREV_INDEX, &kp->prev_index)) {
        *cause = "invalid value for \"prevIndex\"";
        return STORE_E_INDEX_NAN;
    }
    if (!get_u64(f, HP_WAIT_INDEX, &kp->wait_index)) {
        *cause = "invalid value for \"waitIndex\"";
        return STORE_E_INDEX_NAN;
    }
    int *bools[] = {&kp->recursive, &kp->sorted, &kp->wait,
                    &kp->dir,       &kp->quorum, &kp->stream};
    for (int i = 0; i < 6; i++) {
        if (!get_bool(f, bool_params[i].param, bools[i])) {
            *cause = bool_params[i].cause;
            return STORE_E_INVALID_FIELD;
        }
    }
    if (kp->wait && method != HM_GET) {
        *cause = "\"wait\" can only be used with GET requests";
        return STORE_E_INVALID_FIELD;
    }
    if (f->present[HP_PREV_VALUE] && f->v[HP_PREV_VALUE].len == 0) {
        *cause = "\"prevValue\" cannot be empty";
        return STORE_E_PREV_VALUE_REQUIRED;
    }
    kp->prev_value = f->v[HP_PREV_VALUE];
    if (!get_bool(f, HP_NO_VALUE_ON_SUCCESS, &kp->no_value)) {
        *cause = "invalid value for \"noValueOnSuccess\"";
        return STORE_E_INVALID_FIELD;
    }
    if (f->present[HP_TTL] && f->v[HP_TTL].len > 0) {
        uint64_t ttl;
        if (!http_parse_u64(f->v[HP_TTL], &ttl)) {
            *cause = "invalid value for \"ttl\"";
            return STORE_E_TTL_NAN;
        }
        kp->ttl_s = ttl > (uint64_t)CN_STORE_TTL_SECONDS_MAX
                        ? CN_STORE_TTL_SECONDS_MAX
                        : (int64_t)ttl;
    }
    if (f->present[HP_PREV_EXIST]) {
        if (!http_parse_bool(f->v[HP_PREV_EXIST], &kp->prev_exist)) {
            *cause = "invalid value for prevExist";
            return STORE_E_INVALID_FIELD;
        }
    }
    if (f->present[HP_REFRESH]) {
        if (!http_parse_bool(f->v[HP_REFRESH], &kp->refresh)) {
            *cause = "invalid value for refresh";
            return STORE_E_INVALID_FIELD;
        }
        if (kp->refresh && f->present[HP_VALUE] && f->v[HP_VALUE].len > 0) {
            *cause = "A value was provided on a refresh";
            return STORE_E_REFRESH_VALUE;
        }
        if (kp->refresh && kp->ttl_s < 0) {
            *cause = "No TTL value set";
            return STORE_E_REFRESH_TTL_REQUIRED;
        }
    }
    if (f->present[HP_VALUE])
        kp->value = f->v[HP_VALUE];
    return 0;
}

int http_path_decode(struct cn_slice in, struct cn_buf *out)
{
    if (cn_buf_reserve(out, in.len + 1) != CN_OK)
        return CN_ENOMEM;
    char cause[HTTP_CAUSE_SIZE];
    long n = unescape(in, out->data + out->len, 0, cause);
    if (n < 0)
        return CN_EINVAL;
    out->len += (size_t)n;
    out->data[out->len] = '\0';
    return CN_OK;
}

/* Go's path.Clean for a rooted path, appended to out. */
static int clean_rooted(struct cn_slice p, struct cn_buf *out)
{
    size_t start = out->len;
    if (cn_buf_reserve(out, p.len + 2) != CN_OK)
        return CN_ENOMEM;
    char *o = out->data + start;
    size_t w = 1;
    o[0] = '/';
    size_t i = 0;
    while (i < p.len) {
        if (p.base[i] == '/') {
            i++;
        } else if (p.base[i] == '.' &&
                   (i + 1 == p.len || p.base[i + 1] == '/')) {
            i++;
        } else if (p.base[i] == '.' && p.base[i + 1] == '.' &&
                   (i + 2 == p.len || p.base[i + 2] == '/')) {
            i += 2;
            /* Back up to the previous '/', never above the root. */
            while (w > 1 && o[w - 1] != '/')
                w--;
            if (w > 1)
                w--;
        } else {
            if (w > 1)
                o[w++] = '/';
            while (i < p.len && p.base[i] != '/')
                o[w++] = p.base[i++];
        }
    }
    out->len = start + w;
    out->data[out->len] = '\0';
    return CN_OK;
}

int http_path_clean(struct cn_slice p, struct cn_buf *out)
{
    size_t start = out->len;
    int rc = clean_rooted(p, out);
    if (rc != CN_OK)
        return rc;
    /* Keep a trailing slash, as ServeMux does. */
    if (p.len > 0 && p.base[p.len - 1] == '/' && out->len - start > 1)
        return cn_buf_append_char(out, '/');
    return CN_OK;
}

/* Go's shouldEscape(c, encodePath). */
static int path_keep(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9'))
        return 1;
    return strchr("-_.~$&+,/:;=@", c) != NULL && c != '\0';
}

int http_path_escape(struct cn_slice p, struct cn_buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    if (cn_buf_reserve(out, p.len * 3 + 1) != CN_OK)
        return CN_ENOMEM;
    for (size_t i = 0; i < p.len; i++) {
        unsigned char c = (unsigned char)p.base[i];
        if (path_keep(c)) {
            out->data[out->len++] = (char)c;
        } else {
            out->data[out->len++] = '%';
            out->data[out->len++] = hex[c >> 4];
            out->data[out->len++] = hex[c & 15];
        }
    }
    out->data[out->len] = '\0';
    return CN_OK;
}
