/*
 * config_url: URLs and URL lists as etcd 3.4 accepts them (pkg/types
 * NewURLs): scheme http or https, an explicit host:port (a URL without a
 * port is refused, as etcd refuses it), no path. cairn is a little stricter
 * than etcd where etcd would accept nonsense and fail later: user info, a
 * query, a fragment, an empty or out-of-range port are refused here.
 */
#include "config_int.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* snprintf that may cut long messages (errmsg is one line of at most
 * CN_ERRMSG_SIZE - 1 bytes). */
static void config_msg(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void config_msg(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

static int config_url_fail(char errmsg[CN_ERRMSG_SIZE], const char *why,
                           const char *s)
{
    config_msg(errmsg, CN_ERRMSG_SIZE, "%s: \"%.180s\"", why, s);
    return CN_EINVAL;
}

static int config_lower_ascii(char c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int config_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Copies s[0..n) with surrounding whitespace removed into dst (cap bytes).
 * Returns 0 if it does not fit. */
static int config_trim_copy(char *dst, size_t cap, const char *s, size_t n)
{
    while (n > 0 && config_is_space(*s))
        s++, n--;
    while (n > 0 && config_is_space(s[n - 1]))
        n--;
    if (n >= cap)
        return 0;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 1;
}

static int config_host_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_' ||
           c == '~';
}

static int config_url_host_port(const char *auth, const char *s,
                                struct cn_url *url, char errmsg[CN_ERRMSG_SIZE])
{
    const char *colon;
    size_t host_len;
    const char *host = auth;

    if (auth[0] == '[') {
        const char *close = strchr(auth, ']');
        if (close == NULL)
            return config_url_fail(errmsg, "missing ']' in URL", s);
        host = auth + 1;
        host_len = (size_t)(close - host);
        colon = close + 1;
        if (*colon != ':')
            return config_url_fail(
                errmsg, "URL address does not have the form \"host:port\"", s);
        char v6[64];
        struct in6_addr a6;
        if (host_len >= sizeof(v6))
            return config_url_fail(errmsg, "bad IPv6 address in URL", s);
        memcpy(v6, host, host_len);
        v6[host_len] = '\0';
        if (inet_pton(AF_INET6, v6, &a6) != 1)
            return config_url_fail(errmsg, "bad IPv6 address in URL", s);
    } else {
        colon = strrchr(auth, ':');
        if (colon == NULL || memchr(auth, ':', (size_t)(colon - auth)))
            return config_url_fail(
                errmsg, "URL address does not have the form \"host:port\"", s);
        host_len = (size_t)(colon - auth);
        for (size_t i = 0; i < host_len; i++)
            if (!config_host_char_ok(auth[i]))
                return config_url_fail(errmsg, "bad host in URL", s);
    }
    if (host_len == 0)
        return config_url_fail(errmsg, "URL has an empty host", s);
    if (host_len >= sizeof(url->host))
        return config_url_fail(errmsg, "URL host is too long", s);
    memcpy(url->host, host, host_len);
    url->host[host_len] = '\0';

    const char *p = colon + 1;
    unsigned long port = 0;
    if (*p == '\0')
        return config_url_fail(errmsg, "URL has no port", s);
    for (; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            return config_url_fail(errmsg, "bad port in URL", s);
        port = port * 10 + (unsigned long)(*p - '0');
        if (port > 65535)
            return config_url_fail(errmsg, "URL port is out of range", s);
    }
    url->port = (uint16_t)port;
    return CN_OK;
}

int config_url_parse(const char *s, struct cn_url *url,
                     char errmsg[CN_ERRMSG_SIZE])
{
    char buf[sizeof(url->raw)];
    struct cn_url u;

    memset(&u, 0, sizeof(u));
    if (!config_trim_copy(buf, sizeof(buf), s, strlen(s)))
        return config_url_fail(errmsg, "URL is too long", s);

    const char *sep = strstr(buf, "://");
    size_t scheme_len = sep ? (size_t)(sep - buf) : 0;
    if (sep == NULL || scheme_len >= sizeof(u.scheme))
        return config_url_fail(errmsg, "URL scheme must be http or https", s);
    for (size_t i = 0; i < scheme_len; i++)
        u.scheme[i] = (char)config_lower_ascii(buf[i]);
    if (strcmp(u.scheme, "unix") == 0 || strcmp(u.scheme, "unixs") == 0)
        return config_url_fail(errmsg, "unix socket URLs are not supported", s);
    if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
        return config_url_fail(errmsg, "URL scheme must be http or https", s);

    char *auth = buf + scheme_len + 3;
    size_t auth_len = strcspn(auth, "/?#");
    switch (auth[auth_len]) {
    case '/':
        return config_url_fail(errmsg, "URL must not contain a path", s);
    case '?':
        return config_url_fail(errmsg, "URL must not contain a query", s);
    case '#':
        return config_url_fail(errmsg, "URL must not contain a fragment", s);
    default:
        break;
    }
    if (strchr(auth, '@') != NULL)
        return config_url_fail(errmsg, "URL must not contain user info", s);
    int rc = config_url_host_port(auth, s, &u, errmsg);
    if (rc != CN_OK)
        return rc;

    /* raw: the canonical spelling (lower-case scheme, decimal port). */
    const char *fmt = strchr(u.host, ':') ? "%s://[%s]:%u" : "%s://%s:%u";
    snprintf(u.raw, sizeof(u.raw), fmt, u.scheme, u.host, (unsigned)u.port);
    *url = u;
    return CN_OK;
}

static int config_url_cmp(const void *a, const void *b)
{
    return strcmp(((const struct cn_url *)a)->raw,
                  ((const struct cn_url *)b)->raw);
}

int config_url_list_parse(const char *s, struct cn_url_list *list,
                          char errmsg[CN_ERRMSG_SIZE])
{
    struct cn_url_list l;
    char one[sizeof(l.urls[0].raw) + 1];

    memset(&l, 0, sizeof(l));
    for (;;) {
        size_t n = strcspn(s, ",");
        if (!config_trim_copy(one, sizeof(one), s, n)) {
            config_msg(errmsg, CN_ERRMSG_SIZE, "URL is too long: \"%.60s...\"",
                       s);
            return CN_EINVAL;
        }
        if (l.count == CN_CONFIG_URLS_MAX) {
            config_msg(errmsg, CN_ERRMSG_SIZE, "more than %d URLs",
                       CN_CONFIG_URLS_MAX);
            return CN_EINVAL;
        }
        int rc = config_url_parse(one, &l.urls[l.count], errmsg);
        if (rc != CN_OK)
            return rc;
        l.count++;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    qsort(l.urls, (size_t)l.count, sizeof(l.urls[0]), config_url_cmp);
    int kept = 0;
    for (int i = 0; i < l.count; i++)
        if (kept == 0 || strcmp(l.urls[kept - 1].raw, l.urls[i].raw) != 0)
            l.urls[kept++] = l.urls[i];
    l.count = kept;
    *list = l;
    return CN_OK;
}

int config_initial_cluster_parse(const char *s, struct cn_config *cfg,
                                 char errmsg[CN_ERRMSG_SIZE])
{
    int count = 0;
    char entry[512];

    while (*s != '\0') {
        size_t n = strcspn(s, ",");
        const char *next = s[n] == ',' ? s + n + 1 : s + n;
        if (n == 0) {
            s = next;
            continue;
        }
        if (n >= sizeof(entry)) {
            config_msg(errmsg, CN_ERRMSG_SIZE,
                       "entry is too long: \"%.60s...\"", s);
            return CN_EINVAL;
        }
        memcpy(entry, s, n);
        entry[n] = '\0';
        s = next;

        char *eq = strchr(entry, '=');
        if (eq == NULL) {
            config_msg(errmsg, CN_ERRMSG_SIZE,
                       "entry \"%.100s\" is not name=url", entry);
            return CN_EINVAL;
        }
        *eq = '\0';
        if (entry[0] == '\0') {
            config_msg(errmsg, CN_ERRMSG_SIZE, "entry \"=%.100s\" has no name",
                       eq + 1);
            return CN_EINVAL;
        }
        if (strlen(entry) >= sizeof(cfg->initial_cluster[0].name)) {
            config_msg(errmsg, CN_ERRMSG_SIZE,
                       "member name \"%.60s...\" is "
                       "too long",
                       entry);
            return CN_EINVAL;
        }
        if (count == CN_CONFIG_MEMBERS_MAX) {
            config_msg(errmsg, CN_ERRMSG_SIZE, "more than %d entries",
                       CN_CONFIG_MEMBERS_MAX);
            return CN_EINVAL;
        }
        struct cn_member_spec *m = &cfg->initial_cluster[count];
        int rc = config_url_parse(eq + 1, &m->url, errmsg);
        if (rc != CN_OK)
            return rc;
        strcpy(m->name, entry);
        count++;
    }
    cfg->initial_cluster_count = count;
    return CN_OK;
}

int config_host_bindable(const char *host)
{
    struct in6_addr a6;
    struct in_addr a4;
    return strcmp(host, "localhost") == 0 ||
           inet_pton(AF_INET, host, &a4) == 1 ||
           inet_pton(AF_INET6, host, &a6) == 1;
}

static int config_raw_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int config_in_list(const char *raw, const char *const *v, int n)
{
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], raw) == 0)
            return 1;
    return 0;
}

/* Compares this member's initial-cluster URLs with its advertised peer
 * URLs, as text (etcd resolves names first; cairn does not). */
static int config_verify_advertise(const struct cn_config *cfg,
                                   char errmsg[CN_ERRMSG_SIZE])
{
    const char *mine[CN_CONFIG_MEMBERS_MAX], *ap[CN_CONFIG_URLS_MAX];
    int n_mine = 0, n_ap = cfg->initial_advertise_peer_urls.count;
    for (int i = 0; i < cfg->initial_cluster_count; i++)
        if (strcmp(cfg->initial_cluster[i].name, cfg->name) == 0)
            mine[n_mine++] = cfg->initial_cluster[i].url.raw;
    for (int i = 0; i < n_ap; i++)
        ap[i] = cfg->initial_advertise_peer_urls.urls[i].raw;
    qsort(mine, (size_t)n_mine, sizeof(mine[0]), config_raw_cmp);
    for (int i = 0; i < n_mine; i++) {
        if (!config_in_list(mine[i], ap, n_ap)) {
            config_msg(errmsg, CN_ERRMSG_SIZE,
                       "--initial-cluster has %.100s=%.60s but missing from "
                       "--initial-advertise-peer-urls=%.60s%s",
                       cfg->name, mine[i], n_ap > 0 ? ap[0] : "",
                       n_ap > 1 ? ",..." : "");
            return CN_EINVAL;
        }
    }
    for (int i = 0; i < n_ap; i++) {
        if (!config_in_list(ap[i], mine, n_mine)) {
            config_msg(errmsg, CN_ERRMSG_SIZE,
                       "--initial-advertise-peer-urls has %.60s but missing "
                       "from --initial-cluster=%.100s=%.60s%s",
                       ap[i], cfg->name, ap[0], n_ap > 1 ? ",..." : "");
            return CN_EINVAL;
        }
    }
    return CN_OK;
}

int config_verify_bootstrap(const struct cn_config *cfg,
                            char errmsg[CN_ERRMSG_SIZE])
{
    int found = 0;
    if (cfg->discovery[0] != '\0' || cfg->discovery_srv[0] != '\0')
        return CN_OK; /* the cluster comes from discovery */
    for (int i = 0; i < cfg->initial_cluster_count; i++)
        found |= strcmp(cfg->initial_cluster[i].name, cfg->name) == 0;
    if (!found) {
        config_msg(errmsg, CN_ERRMSG_SIZE,
                   "couldn't find local name \"%.100s\" in the initial cluster "
                   "configuration",
                   cfg->name);
        return CN_EINVAL;
    }
    int rc = config_verify_advertise(cfg, errmsg);
    if (rc != CN_OK)
        return rc;
    for (int i = 0; i < cfg->initial_cluster_count; i++) {
        for (int j = 0; j < i; j++) {
            if (strcmp(cfg->initial_cluster[i].url.raw,
                       cfg->initial_cluster[j].url.raw) == 0) {
                config_msg(errmsg, CN_ERRMSG_SIZE,
                           "initial cluster has duplicate url %.100s",
                           cfg->initial_cluster[i].url.raw);
                return CN_EINVAL;
            }
        }
    }
    return CN_OK;
}
