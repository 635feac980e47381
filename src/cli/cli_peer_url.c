/*
 * cli_peer_url: the peer URL checks of `member add` and `member update`,
 * with the error texts etcdctl prints. etcdctl validates with etcd's
 * types.NewURLs: each URL trimmed of white space, parsed by Go's
 * net/url.Parse (whose errors read `parse "URL": reason`), then the scheme
 * must be http, https, unix or unixs, the host must split as host:port
 * (net.SplitHostPort) and the path must be empty. The URLs sent are the
 * parsed ones (scheme in lower case), sorted.
 *
 * Only the parts of url.Parse that can reject a URL or change the text
 * sent are followed: scheme, query split, opaque form, authority (user
 * info, host, port) and percent-escapes.
 */
#include "cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Go's %q of an ASCII string. */
static void go_quote(struct cn_buf *b, const char *s, size_t n)
{
    cn_buf_append_char(b, '"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            cn_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            cn_buf_printf(b, "\\x%02x", c);
        else
            cn_buf_append_char(b, (char)c);
    }
    cn_buf_append_char(b, '"');
}

enum { ESC_PATH, ESC_HOST, ESC_FRAGMENT, ESC_USER };

/* url.unescape's checks: NULL, or the reason (written into why). */
static const char *check_escapes(const char *s, size_t n, int mode,
                                 struct cn_buf *why)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
                size_t k = n - i < 3 ? n - i : 3;
                cn_buf_append_cstr(why, "invalid URL escape ");
                go_quote(why, s + i, k);
                return why->data;
            }
            /* In a host only non-ASCII bytes may be escaped (and %25). */
            if (mode == ESC_HOST && s[i + 1] < '8' &&
                strncmp(s + i, "%25", 3) != 0) {
                cn_buf_append_cstr(why, "invalid URL escape ");
                go_quote(why, s + i, 3);
                return why->data;
            }
            i += 2;
            continue;
        }
        if (mode == ESC_HOST && (unsigned char)c < 0x80 && !is_alpha(c) &&
            !is_digit(c) && strchr("-_.~!$&'()*+,;=:[]<>\"", c) == NULL) {
            cn_buf_append_cstr(why, "invalid character ");
            go_quote(why, s + i, 1);
            cn_buf_append_cstr(why, " in host name");
            return why->data;
        }
    }
    return NULL;
}

/* validOptionalPort: "" or ":" followed by digits. */
static int valid_optional_port(const char *p, size_t n)
{
    if (n == 0)
        return 1;
    if (p[0] != ':')
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!is_digit(p[i]))
            return 0;
    return 1;
}

/* url.parseHost: NULL or the reason. */
static const char *check_host(const char *h, size_t n, struct cn_buf *why)
{
    const char *port = NULL;
    if (n > 0 && h[0] == '[') {
        const char *close = NULL;
        for (size_t i = 0; i < n; i++)
            if (h[i] == ']')
                close = h + i;
        if (close == NULL) {
            cn_buf_append_cstr(why, "missing ']' in host");
            return why->data;
        }
        port = close + 1;
    } else {
        for (size_t i = 0; i < n; i++)
            if (h[i] == ':')
                port = h + i;
    }
    if (port != NULL && !valid_optional_port(port, (size_t)(h + n - port))) {
        cn_buf_append_cstr(why, "invalid port ");
        go_quote(why, port, (size_t)(h + n - port));
        cn_buf_append_cstr(why, " after host");
        return why->data;
    }
    return check_escapes(h, n, ESC_HOST, why);
}

/* net.SplitHostPort succeeds. */
static int splits_host_port(const char *h, size_t n)
{
    if (n > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', n);
        if (close == NULL || close + 1 == h + n || close[1] != ':')
            return 0;
        /* no other bracket, one colon after the ] */
        return memchr(h + 1, '[', n - 1) == NULL &&
               memchr(close + 1, ']', (size_t)(h + n - close - 1)) == NULL &&
               memchr(close + 2, ':', (size_t)(h + n - close - 2)) == NULL;
    }
    const char *colon = NULL;
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        if (h[i] == ':') {
            colon = h + i;
            count++;
        }
    return colon != NULL && count == 1 && memchr(h, '[', n) == NULL &&
           memchr(h, ']', n) == NULL;
}

/* One URL: 0 and the URL to send in out, or CN_EINVAL and etcdctl's text
 * in err. */
static int parse_one(const char *in, struct cn_buf *out, struct cn_buf *err)
{
    struct cn_buf why = {0};
    const char *reason = NULL;
    const char *s = in;
    size_t n = strlen(in);
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    /* Parse errors name the URL without its fragment, later ones all. */
    const char *hash = memchr(s, '#', n);
    size_t un = hash ? (size_t)(hash - s) : n;
    for (size_t i = 0; i < n && reason == NULL; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            reason = "net/url: invalid control character in URL";
    /* getScheme */
    size_t scheme_len = 0;
    int has_scheme = 0;
    for (size_t i = 0; i < un && reason == NULL; i++) {
        char c = s[i];
        if (is_alpha(c))
            continue;
        if (is_digit(c) || c == '+' || c == '-' || c == '.') {
            if (i == 0)
                break;
            continue;
        }
        if (c == ':') {
            if (i == 0)
                reason = "missing protocol scheme";
            scheme_len = i;
            has_scheme = 1;
        }
        break;
    }
    const char *rest = has_scheme ? s + scheme_len + 1 : s;
    const char *end = s + un;
    /* the query is split off ("a?" keeps a bare "?") */
    const char *q = memchr(rest, '?', (size_t)(end - rest));
    const char *rest_end = q ? q : end;
    const char *host = NULL;
    size_t host_len = 0;
    int opaque = 0;
    if (reason == NULL && (rest_end == rest || rest[0] != '/')) {
        if (has_scheme) {
            opaque = 1;
        } else {
            const char *slash = memchr(rest, '/', (size_t)(rest_end - rest));
            const char *seg_end = slash ? slash : rest_end;
            if (memchr(rest, ':', (size_t)(seg_end - rest)) != NULL)
                reason = "first path segment in URL cannot contain colon";
        }
    }
    const char *path = rest;
    if (reason == NULL && !opaque && rest_end - rest >= 2 && rest[0] == '/' &&
        rest[1] == '/' &&
        (has_scheme || rest_end - rest < 3 || rest[2] != '/')) {
        const char *auth = rest + 2;
        const char *slash = memchr(auth, '/', (size_t)(rest_end - auth));
        const char *auth_end = slash ? slash : rest_end;
        const char *at = NULL;
        for (const char *p = auth; p < auth_end; p++)
            if (*p == '@')
                at = p;
        host = at ? at + 1 : auth;
        host_len = (size_t)(auth_end - host);
        reason = check_host(host, host_len, &why);
        if (reason == NULL && at != NULL) {
            for (const char *p = auth; p < at && reason == NULL; p++)
                if (!is_alpha(*p) && !is_digit(*p) &&
                    strchr("-._:~!$&'()*+,;=%@", *p) == NULL)
                    reason = "net/url: invalid userinfo";
            if (reason == NULL)
                reason =
                    check_escapes(auth, (size_t)(at - auth), ESC_USER, &why);
        }
        path = auth_end;
    }
    if (reason == NULL && !opaque)
        reason = check_escapes(path, (size_t)(rest_end - path), ESC_PATH, &why);
    if (reason != NULL) {
        cn_buf_append_cstr(err, "parse ");
        go_quote(err, s, un);
        cn_buf_printf(err, ": %s", reason);
        cn_buf_close(&why);
        return CN_EINVAL;
    }
    if (hash != NULL &&
        (reason = check_escapes(hash + 1, (size_t)(s + n - hash - 1),
                                ESC_FRAGMENT, &why)) != NULL) {
        cn_buf_append_cstr(err, "parse ");
        go_quote(err, s, n);
        cn_buf_printf(err, ": %s", reason);
        cn_buf_close(&why);
        return CN_EINVAL;
    }
    cn_buf_close(&why);
    /* types.NewURLs */
    char scheme[8] = "";
    if (has_scheme && scheme_len < sizeof(scheme))
        for (size_t i = 0; i < scheme_len; i++)
            scheme[i] = (char)(s[i] | 0x20);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0 &&
        strcmp(scheme, "unix") != 0 && strcmp(scheme, "unixs") != 0) {
        cn_buf_printf(err,
                      "URL scheme must be http, https, unix, or unixs: %.*s",
                      (int)n, s);
        return CN_EINVAL;
    }
    if (host == NULL || !splits_host_port(host, host_len)) {
        cn_buf_printf(err,
                      "URL address does not have the form \"host:port\": %.*s",
                      (int)n, s);
        return CN_EINVAL;
    }
    if (path != rest_end) {
        cn_buf_printf(err, "URL must not contain a path: %.*s", (int)n, s);
        return CN_EINVAL;
    }
    cn_buf_append_cstr(out, scheme);
    return cn_buf_append(out, s + scheme_len, n - scheme_len);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cli_peer_urls_parse(char *const *in, size_t n, char **out,
                        struct cn_buf *err)
{
    for (size_t i = 0; i < n; i++)
        out[i] = NULL;
    for (size_t i = 0; i < n; i++) {
        struct cn_buf one = {0};
        int rc = parse_one(in[i], &one, err);
        if (rc == CN_OK && (out[i] = cn_buf_take(&one, NULL)) == NULL)
            rc = CN_ENOMEM;
        if (rc != CN_OK) {
            cn_buf_close(&one);
            cli_peer_urls_free(out, n);
            return rc;
        }
    }
    qsort(out, n, sizeof(out[0]), cmp_str);
    return CN_OK;
}

void cli_peer_urls_free(char **urls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cn_free(urls[i]);
        urls[i] = NULL;
    }
}
