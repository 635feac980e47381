/*
 * discovery.c: etcd's discovery protocol, client side (see
 * server_discovery.h for the steps). Three parts: a blocking HTTP/1.1
 * client (one request per connection, Connection: close, chunked or
 * sized bodies), a small JSON tokenizer for etcd's key answers (no
 * third-party JSON library in this module), and the protocol itself.
 */
#include "server_discovery.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server_member_id.h"

#define RESP_BYTES_MAX (8u * 1024 * 1024)
#define JSON_TOKENS_MAX 4096
#define NODES_MAX 1024

#define DLOG(d, lvl, ...)                                                      \
    CN_LOG(&(d)->cfg.logger, lvl, "discovery", __VA_ARGS__)

struct endpoint {
    char host[256];
    char port[8];
};

struct disc {
    struct server_discovery_config cfg; /* defaults filled */
    struct endpoint server;             /* the discovery service */
    struct endpoint proxy;              /* used when has_proxy */
    int has_proxy;
    char origin[300]; /* "http://host:port" for proxy requests */
    char path[1024];  /* the token directory, e.g. /v2/keys/_etcd/... */
    char self_key[SERVER_ID_HEX_SIZE];
    unsigned retries; /* connection-error retries used */
    char *errmsg;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int fail(struct disc *d, int rc, const char *fmt, const char *arg)
{
    snprintf(d->errmsg, CN_ERRMSG_SIZE, fmt, arg);
    return rc;
}

/* ---- URLs ---- */

/* "http://host[:port][/path]" -> endpoint and path. */
static int split_url(const char *url, struct endpoint *ep, char *path,
                     size_t path_size)
{
    if (strncmp(url, "http://", 7) != 0)
        return CN_EINVAL;
    const char *a = url + 7;
    const char *slash = strchr(a, '/');
    size_t alen = slash ? (size_t)(slash - a) : strlen(a);
    if (alen == 0 || alen >= sizeof(ep->host))
        return CN_EINVAL;
    char auth[256];
    memcpy(auth, a, alen);
    auth[alen] = '\0';
    char *host = auth, *port = NULL;
    if (auth[0] == '[') {
        char *close = strchr(auth, ']');
        if (close == NULL)
            return CN_EINVAL;
        *close = '\0';
        host = auth + 1;
        if (close[1] == ':')
            port = close + 2;
        else if (close[1] != '\0')
            return CN_EINVAL;
    } else {
        char *colon = strrchr(auth, ':');
        if (colon != NULL) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    if (*host == '\0' || (port != NULL && (*port == '\0' || strlen(port) > 5)))
        return CN_EINVAL;
    for (const char *p = port; p != NULL && *p; p++)
        if (*p < '0' || *p > '9')
            return CN_EINVAL;
    snprintf(ep->host, sizeof(ep->host), "%s", host);
    snprintf(ep->port, sizeof(ep->port), "%s", port ? port : "80");
    if (path != NULL) {
        const char *p = slash ? slash : "";
        if (strlen(p) >= path_size)
            return CN_EINVAL;
        strcpy(path, p);
        /* path.Join semantics: no trailing slash */
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/')
            path[--n] = '\0';
    }
    return CN_OK;
}

/* ---- HTTP ---- */

struct resp {
    int status;
    uint64_t etcd_index; /* X-Etcd-Index, 0 when absent */
    struct cn_buf body;  /* decoded */
};

/* Connects with a deadline. Returns the fd, or -1 (errno-style reason in
 * why). */
static int tcp_connect(const struct endpoint *ep, unsigned timeout_ms,
                       const char **why)
{
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(ep->host, ep->port, &hints, &ai);
    if (g != 0) {
        *why = gai_strerror(g);
        return -1;
    }
    int fd = -1;
    *why = "no address";
    for (struct addrinfo *p = ai; p != NULL; p = p->ai_next) {
        fd = socket(p->ai_family, p->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int rc = connect(fd, p->ai_addr, p->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pf = {fd, POLLOUT, 0};
            rc = poll(&pf, 1, (int)timeout_ms);
            if (rc == 1) {
                int err = 0;
                socklen_t len = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
                rc = err == 0 ? 0 : -1;
                errno = err;
            } else {
                rc = -1;
                errno = ETIMEDOUT;
            }
        }
        if (rc == 0)
            break;
        *why = strerror(errno);
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

static int send_all(int fd, const char *p, size_t n, int64_t deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        int64_t left = deadline - now_ms();
        struct pollfd pf = {fd, POLLOUT, 0};
        if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
            return -1;
    }
    return 0;
}

/* Reads until EOF or the deadline (deadline < 0: none). */
static int recv_all(int fd, struct cn_buf *out, int64_t deadline)
{
    char buf[16384];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r == 0)
            return CN_OK;
        if (r > 0) {
            if (out->len + (size_t)r > RESP_BYTES_MAX)
                return CN_ETOOBIG;
            if (cn_buf_append(out, buf, (size_t)r) != CN_OK)
                return CN_ENOMEM;
            continue;
        }
        if (errno != EAGAIN && errno != EINTR)
            return CN_EIO;
        int wait = 1000;
        if (deadline >= 0) {
            int64_t left = deadline - now_ms();
            if (left <= 0)
                return CN_ETIMEDOUT;
            if (left < wait)
                wait = (int)left;
        }
        struct pollfd pf = {fd, POLLIN, 0};
        poll(&pf, 1, wait);
    }
}

static int dechunk(const char *p, size_t n, struct cn_buf *out)
{
    size_t i = 0;
    for (;;) {
        char *end;
        unsigned long len = strtoul(p + i, &end, 16);
        size_t at = (size_t)(end - p);
        if (at == i || at > n)
            return CN_EIO;
        const char *crlf = memmem(p + at, n - at, "\r\n", 2);
        if (crlf == NULL)
            return CN_EIO;
        i = (size_t)(crlf - p) + 2;
        if (len == 0)
            return CN_OK;
        if (len > n - i)
            return CN_EIO;
        if (cn_buf_append(out, p + i, len) != CN_OK)
            return CN_ENOMEM;
        i += len + 2;
        if (i > n)
            return CN_EIO;
    }
}

static int hdr_is(const char *line, size_t len, const char *name)
{
    size_t n = strlen(name);
    return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

static int parse_response(const struct cn_buf *raw, struct resp *r)
{
    const char *p = raw->data;
    size_t n = raw->len;
    if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0)
        return CN_EIO;
    r->status = atoi(p + 9);
    const char *hend = memmem(p, n, "\r\n\r\n", 4);
    if (hend == NULL)
        return CN_EIO;
    int chunked = 0;
    long clen = -1;
    const char *line = (const char *)memchr(p, '\n', n) + 1;
    while (line < hend) {
        const char *eol = memchr(line, '\r', (size_t)(hend + 2 - line));
        size_t len = (size_t)(eol - line);
        const char *v = memchr(line, ':', len);
        if (v != NULL) {
            v++;
            while (*v == ' ')
                v++;
            if (hdr_is(line, len, "X-Etcd-Index"))
                r->etcd_index = strtoull(v, NULL, 10);
            else if (hdr_is(line, len, "Content-Length"))
                clen = strtol(v, NULL, 10);
            else if (hdr_is(line, len, "Transfer-Encoding") &&
                     strncasecmp(v, "chunked", 7) == 0)
                chunked = 1;
        }
        line = eol + 2;
    }
    const char *body = hend + 4;
    size_t blen = n - (size_t)(body - p);
    if (chunked)
        return dechunk(body, blen, &r->body);
    if (clen >= 0 && (size_t)clen < blen)
        blen = (size_t)clen;
    return cn_buf_append(&r->body, body, blen);
}

static void resp_close(struct resp *r)
{
    cn_buf_close(&r->body);
    memset(r, 0, sizeof(*r));
}

/* One request. timeout_ms < 0: wait without limit (a watch). Returns
 * CN_OK with r filled, CN_ECONNREFUSED for a connection-level failure
 * (retried by the caller), CN_ETIMEDOUT, CN_EIO, CN_ENOMEM. */
static int http_do(struct disc *d, const char *method, const char *target,
                   const char *form, long timeout_ms, struct resp *r,
                   const char **why)
{
    memset(r, 0, sizeof(*r));
    const struct endpoint *ep = d->has_proxy ? &d->proxy : &d->server;
    int fd = tcp_connect(ep, d->cfg.timeout_ms, why);
    if (fd < 0)
        return CN_ECONNREFUSED;
    struct cn_buf req = {0}, raw = {0};
    int rc = cn_buf_printf(&req, "%s %s%s HTTP/1.1\r\nHost: %s:%s\r\n", method,
                           d->has_proxy ? d->origin : "", target,
                           d->server.host, d->server.port);
    if (form != NULL)
        rc |= cn_buf_printf(&req,
                            "Content-Type: application/x-www-form-"
                            "urlencoded\r\nContent-Length: %zu\r\n",
                            strlen(form));
    rc |= cn_buf_append_cstr(&req, "Connection: close\r\n\r\n");
    if (form != NULL)
        rc |= cn_buf_append_cstr(&req, form);
    if (rc != CN_OK) {
        rc = CN_ENOMEM;
        goto out;
    }
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    if (send_all(fd, req.data, req.len,
                 deadline < 0 ? now_ms() + d->cfg.timeout_ms : deadline) != 0) {
        *why = "cannot send the request";
        rc = CN_ECONNREFUSED;
        goto out;
    }
    rc = recv_all(fd, &raw, deadline);
    if (rc == CN_EIO) {
        *why = "connection reset";
        rc = CN_ECONNREFUSED;
        goto out;
    }
    if (rc != CN_OK) {
        *why = rc == CN_ETIMEDOUT ? "timed out" : cn_strerror(rc);
        goto out;
    }
    if (raw.len == 0) {
        *why = "connection closed without an answer";
        rc = CN_ECONNREFUSED;
        goto out;
    }
    rc = parse_response(&raw, r);
    if (rc != CN_OK)
        *why = "malformed HTTP answer";
out:
    close(fd);
    cn_buf_close(&req);
    cn_buf_close(&raw);
    if (rc != CN_OK)
        resp_close(r);
    return rc;
}

/* ---- JSON: a flat token list (objects, arrays, strings, primitives) ---- */

enum jtype { J_OBJ = 1, J_ARR, J_STR, J_PRIM };

struct jtok {
    int type;
    int start, end; /* byte range (strings: inside the quotes) */
    int size;       /* children (object: keys + values) */
    int next;       /* index of the next sibling subtree */
};

struct json {
    const char *s;
    struct jtok t[JSON_TOKENS_MAX];
    int n;
};

static int j_skip_ws(const char *s, int i, int len)
{
    while (i < len &&
           (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t'))
        i++;
    return i;
}

/* Parses the value at *pos; returns its token index or -1. */
static int j_value(struct json *j, int *pos, int len, int depth)
{
    const char *s = j->s;
    int i = j_skip_ws(s, *pos, len);
    if (i >= len || j->n >= JSON_TOKENS_MAX || depth > 64)
        return -1;
    int me = j->n++;
    struct jtok *t = &j->t[me];
    t->size = 0;
    if (s[i] == '{' || s[i] == '[') {
        int obj = s[i] == '{';
        t->type = obj ? J_OBJ : J_ARR;
        t->start = i++;
        i = j_skip_ws(s, i, len);
        if (i < len && s[i] == (obj ? '}' : ']')) {
            i++;
        } else {
            for (;;) {
                if (obj) {
                    i = j_skip_ws(s, i, len);
                    if (i >= len || s[i] != '"')
                        return -1;
                    if (j_value(j, &i, len, depth + 1) < 0)
                        return -1;
                    i = j_skip_ws(s, i, len);
                    if (i >= len || s[i] != ':')
                        return -1;
                    i++;
                    j->t[me].size++;
                }
                if (j_value(j, &i, len, depth + 1) < 0)
                    return -1;
                j->t[me].size++;
                i = j_skip_ws(s, i, len);
                if (i < len && s[i] == ',') {
                    i++;
                    continue;
                }
                if (i < len && s[i] == (obj ? '}' : ']')) {
                    i++;
                    break;
                }
                return -1;
            }
        }
        j->t[me].end = i;
    } else if (s[i] == '"') {
        t->type = J_STR;
        t->start = ++i;
        while (i < len && s[i] != '"')
            i += s[i] == '\\' ? 2 : 1;
        if (i >= len)
            return -1;
        t->end = i++;
    } else {
        if (strchr("-0123456789tfn", s[i]) == NULL)
            return -1;
        t->type = J_PRIM;
        t->start = i;
        while (i < len && strchr(",]} \t\r\n", s[i]) == NULL)
            i++;
        t->end = i;
        if (t->end == t->start)
            return -1;
    }
    j->t[me].next = j->n;
    *pos = i;
    return me;
}

static int json_parse(struct json *j, const char *s, size_t len)
{
    j->s = s;
    j->n = 0;
    int pos = 0;
    if (len > (size_t)INT32_MAX || j_value(j, &pos, (int)len, 0) != 0)
        return CN_ECORRUPT;
    return j_skip_ws(s, pos, (int)len) == (int)len ? CN_OK : CN_ECORRUPT;
}

static int j_eq(const struct json *j, int k, const char *lit)
{
    size_t n = strlen(lit);
    return j->t[k].type == J_STR &&
           (size_t)(j->t[k].end - j->t[k].start) == n &&
           memcmp(j->s + j->t[k].start, lit, n) == 0;
}

/* The value of key in object obj, or -1. */
static int j_get(const struct json *j, int obj, const char *key)
{
    if (obj < 0 || j->t[obj].type != J_OBJ)
        return -1;
    int k = obj + 1;
    for (int i = 0; i < j->t[obj].size / 2; i++) {
        int v = k + 1;
        if (j_eq(j, k, key))
            return v;
        k = j->t[v].next;
    }
    return -1;
}

static uint64_t j_u64(const struct json *j, int k)
{
    if (k < 0 || j->t[k].type != J_PRIM)
        return 0;
    return strtoull(j->s + j->t[k].start, NULL, 10);
}

/* Copies string token k unescaped into out (size bytes). CN_OK or
 * CN_ETOOBIG / CN_ECORRUPT. */
static int j_str(const struct json *j, int k, char *out, size_t size)
{
    if (k < 0 || j->t[k].type != J_STR)
        return CN_ECORRUPT;
    size_t o = 0;
    for (int i = j->t[k].start; i < j->t[k].end; i++) {
        char c = j->s[i];
        char enc[4];
        size_t ne = 1;
        enc[0] = c;
        if (c == '\\') {
            char e = j->s[++i];
            switch (e) {
            case 'n':
                enc[0] = '\n';
                break;
            case 't':
                enc[0] = '\t';
                break;
            case 'r':
                enc[0] = '\r';
                break;
            case 'b':
                enc[0] = '\b';
                break;
            case 'f':
                enc[0] = '\f';
                break;
            case 'u': {
                if (i + 4 >= j->t[k].end)
                    return CN_ECORRUPT;
                char hex[5] = {0};
                memcpy(hex, j->s + i + 1, 4);
                unsigned cp = (unsigned)strtoul(hex, NULL, 16);
                i += 4;
                if (cp < 0x80) {
                    enc[0] = (char)cp;
                } else if (cp < 0x800) {
                    enc[0] = (char)(0xc0 | cp >> 6);
                    enc[1] = (char)(0x80 | (cp & 0x3f));
                    ne = 2;
                } else {
                    enc[0] = (char)(0xe0 | cp >> 12);
                    enc[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                    enc[2] = (char)(0x80 | (cp & 0x3f));
                    ne = 3;
                }
                break;
            }
            default:
                enc[0] = e; /* \" \\ \/ */
            }
        }
        if (o + ne >= size)
            return CN_ETOOBIG;
        memcpy(out + o, enc, ne);
        o += ne;
    }
    out[o] = '\0';
    return CN_OK;
}

/* ---- the protocol ---- */

struct reg {
    char key[64]; /* base name: the member ID in hex */
    char value[CN_CONFIG_URLS_MAX * 300];
    uint64_t created;
};

struct cluster_state {
    unsigned size;
    uint64_t index; /* X-Etcd-Index of the listing */
    struct reg *regs;
    int nregs;
};

static const char *base_name(const char *key)
{
    const char *s = strrchr(key, '/');
    return s ? s + 1 : key;
}

static int cmp_reg(const void *a, const void *b)
{
    uint64_t x = ((const struct reg *)a)->created,
             y = ((const struct reg *)b)->created;
    return x < y ? -1 : x > y;
}

/* Sleeps before retry number d->retries + 1, or gives up. */
static int backoff(struct disc *d, const char *step, const char *why)
{
    if (d->retries >= d->cfg.retries_max) {
        DLOG(d, CN_LOG_ERROR,
             "giving up on the discovery service url=%s step=\"%s\" "
             "reason=\"%s\" retries=%u",
             d->cfg.url, step, why, d->retries);
        return fail(d, CN_ETIMEDOUT, "discovery: too many retries (%s)", why);
    }
    unsigned shift = d->retries < 16 ? d->retries : 16;
    uint64_t ms = (uint64_t)d->cfg.backoff_ms << shift;
    if (ms > d->cfg.backoff_max_ms)
        ms = d->cfg.backoff_max_ms;
    d->retries++;
    DLOG(d, CN_LOG_WARN,
         "retry connecting to discovery service url=%s step=\"%s\" "
         "reason=\"%s\" retry=%u backoff_ms=%" PRIu64,
         d->cfg.url, step, why, d->retries, ms);
    sleep_ms((unsigned)ms);
    return CN_OK;
}

/* A request retried on connection errors. */
static int request(struct disc *d, const char *step, const char *method,
                   const char *target, const char *form, long timeout_ms,
                   struct resp *r)
{
    for (;;) {
        const char *why = "";
        int rc = http_do(d, method, target, form, timeout_ms, r, &why);
        if (rc == CN_OK)
            return CN_OK;
        if (rc != CN_ECONNREFUSED && rc != CN_ETIMEDOUT)
            return fail(d, rc, "discovery: %s", why);
        if (rc == CN_ETIMEDOUT && timeout_ms < 0)
            return fail(d, rc, "discovery: %s", why);
        rc = backoff(d, step, why);
        if (rc != CN_OK)
            return rc;
    }
}

static int etcd_error_code(const struct resp *r)
{
    struct json *j = cn_malloc(sizeof(*j));
    if (j == NULL)
        return -1;
    int code = -1;
    if (json_parse(j, r->body.data ? r->body.data : "", r->body.len) == CN_OK)
        code = (int)j_u64(j, j_get(j, 0, "errorCode"));
    cn_free(j);
    return code;
}

/* Reads one registration node (object at k) into reg. */
static int read_reg(const struct json *j, int k, struct reg *reg)
{
    char key[1024];
    if (j_str(j, j_get(j, k, "key"), key, sizeof(key)) != CN_OK)
        return CN_ECORRUPT;
    const char *b = base_name(key);
    if (strlen(b) >= sizeof(reg->key))
        return CN_ECORRUPT;
    strcpy(reg->key, b);
    int v = j_get(j, k, "value");
    if (v < 0)
        reg->value[0] = '\0';
    else if (j_str(j, v, reg->value, sizeof(reg->value)) != CN_OK)
        return CN_ECORRUPT;
    reg->created = j_u64(j, j_get(j, k, "createdIndex"));
    return CN_OK;
}

/* Steps 1 and 2 (etcd's checkCluster). On CN_EBUSY st is still filled. */
static int check_cluster(struct disc *d, struct cluster_state *st)
{
    char target[1200];
    struct resp r;
    snprintf(target, sizeof(target), "%s/_config/size", d->path);
    int rc = request(d, "cluster status check", "GET", target, NULL,
                     d->cfg.timeout_ms, &r);
    if (rc != CN_OK)
        return rc;
    struct json *j = cn_malloc(sizeof(*j));
    if (j == NULL) {
        resp_close(&r);
        return CN_ENOMEM;
    }
    if (json_parse(j, r.body.data ? r.body.data : "", r.body.len) != CN_OK) {
        rc = fail(d, CN_ECORRUPT, "discovery: bad discovery endpoint%s", "");
        goto out;
    }
    if (r.status == 404 && j_u64(j, j_get(j, 0, "errorCode")) == 100) {
        rc = fail(d, CN_ENOTFOUND, "discovery: size key not found%s", "");
        goto out;
    }
    char val[32];
    char *end;
    if (r.status != 200 ||
        j_str(j, j_get(j, j_get(j, 0, "node"), "value"), val, sizeof(val)) !=
            CN_OK ||
        val[0] < '0' || val[0] > '9' ||
        (st->size = (unsigned)strtoul(val, &end, 10), *end != '\0') ||
        st->size == 0 || st->size > CN_CONFIG_MEMBERS_MAX) {
        rc = fail(d, CN_ECORRUPT, "discovery: size key is bad%s", "");
        goto out;
    }
    resp_close(&r);
    rc = request(d, "cluster status check", "GET", d->path, NULL,
                 d->cfg.timeout_ms, &r);
    if (rc != CN_OK)
        goto out;
    if (json_parse(j, r.body.data ? r.body.data : "", r.body.len) != CN_OK ||
        r.status != 200) {
        rc = r.status == 404
                 ? fail(d, CN_ENOTFOUND, "discovery: token not found%s", "")
                 : fail(d, CN_ECORRUPT, "discovery: bad discovery endpoint%s",
                        "");
        goto out;
    }
    st->index = r.etcd_index;
    st->nregs = 0;
    int nodes = j_get(j, j_get(j, 0, "node"), "nodes");
    if (nodes >= 0 && j->t[nodes].type == J_ARR) {
        int k = nodes + 1;
        for (int i = 0; i < j->t[nodes].size && st->nregs < NODES_MAX; i++) {
            struct reg *g = &st->regs[st->nregs];
            if (read_reg(j, k, g) == CN_OK && strcmp(g->key, "_config") != 0)
                st->nregs++;
            k = j->t[k].next;
        }
    }
    qsort(st->regs, (size_t)st->nregs, sizeof(st->regs[0]), cmp_reg);
    rc = CN_OK;
    for (int i = 0; i < st->nregs; i++) {
        if (strcmp(st->regs[i].key, d->self_key) == 0)
            break;
        if ((unsigned)i + 1 >= st->size) {
            rc = fail(d, CN_EBUSY, "discovery: cluster is full%s", "");
            break;
        }
    }
out:
    cn_free(j);
    resp_close(&r);
    return rc;
}

/* Step 3 (etcd's createSelf). */
static int register_self(struct disc *d)
{
    struct cn_buf value = {0}, form = {0};
    int rc = CN_OK;
    const struct cn_url_list *l = d->cfg.peer_urls;
    for (int i = 0; i < l->count; i++)
        rc |= cn_buf_printf(&value, "%s%s=%s", i ? "," : "", d->cfg.name,
                            l->urls[i].raw);
    rc |= cn_buf_append_cstr(&form, "value=");
    for (size_t i = 0; rc == CN_OK && i < value.len; i++) {
        unsigned char c = (unsigned char)value.data[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || strchr("-_.~", c) != NULL)
            rc |= cn_buf_append_char(&form, (char)c);
        else
            rc |= cn_buf_printf(&form, "%%%02X", c);
    }
    if (rc != CN_OK) {
        rc = CN_ENOMEM;
        goto out;
    }
    char target[1200];
    snprintf(target, sizeof(target), "%s/%s?prevExist=false", d->path,
             d->self_key);
    struct resp r;
    rc = request(d, "registration", "PUT", target, form.data, d->cfg.timeout_ms,
                 &r);
    if (rc != CN_OK)
        goto out;
    if (r.status == 201) {
        DLOG(d, CN_LOG_INFO, "registered with the discovery service key=%s",
             d->self_key);
    } else if (r.status == 412 && etcd_error_code(&r) == 105) {
        DLOG(d, CN_LOG_INFO,
             "already registered with the discovery service key=%s",
             d->self_key);
    } else {
        char why[64];
        snprintf(why, sizeof(why), "%d", r.status);
        rc = fail(d, CN_EIO, "discovery: registration answered %s", why);
    }
    resp_close(&r);
out:
    cn_buf_close(&value);
    cn_buf_close(&form);
    return rc;
}

/* Step 4 (etcd's waitNodes): watches until size registrations exist. */
static int wait_nodes(struct disc *d, struct cluster_state *st)
{
    int64_t deadline =
        d->cfg.wait_timeout_ms ? now_ms() + d->cfg.wait_timeout_ms : -1;
    uint64_t index = st->index;
    struct json *j = cn_malloc(sizeof(*j));
    if (j == NULL)
        return CN_ENOMEM;
    int rc = CN_OK;
    while ((unsigned)st->nregs < st->size) {
        DLOG(d, CN_LOG_INFO,
             "found peers from discovery server; waiting for more "
             "found=%d needed=%u",
             st->nregs, st->size - (unsigned)st->nregs);
        long left = -1;
        if (deadline >= 0) {
            left = (long)(deadline - now_ms());
            if (left <= 0) {
                rc = fail(d, CN_ETIMEDOUT,
                          "discovery: timed out waiting for peers%s", "");
                break;
            }
        }
        char target[1200];
        snprintf(target, sizeof(target),
                 "%s?wait=true&recursive=true&waitIndex=%" PRIu64, d->path,
                 index + 1);
        struct resp r;
        rc = request(d, "waiting for other nodes", "GET", target, NULL, left,
                     &r);
        if (rc != CN_OK)
            break;
        int ok =
            json_parse(j, r.body.data ? r.body.data : "", r.body.len) == CN_OK;
        if (ok && r.status == 400 &&
            j_u64(j, j_get(j, 0, "errorCode")) == 401) {
            /* history cleared past our index: list again */
            resp_close(&r);
            rc = check_cluster(d, st);
            if (rc != CN_OK)
                break;
            index = st->index;
            continue;
        }
        int node = ok ? j_get(j, 0, "node") : -1;
        if (r.status != 200 || node < 0) {
            resp_close(&r);
            rc = fail(d, CN_EIO, "discovery: unexpected watch answer%s", "");
            break;
        }
        index = j_u64(j, j_get(j, node, "modifiedIndex"));
        char action[32] = "";
        j_str(j, j_get(j, 0, "action"), action, sizeof(action));
        struct reg g;
        if ((strcmp(action, "create") == 0 || strcmp(action, "set") == 0) &&
            read_reg(j, node, &g) == CN_OK && strcmp(g.key, "_config") != 0 &&
            st->nregs < NODES_MAX) {
            int dup = 0;
            for (int i = 0; i < st->nregs && !dup; i++)
                dup = strcmp(st->regs[i].key, g.key) == 0;
            if (!dup) {
                DLOG(d, CN_LOG_INFO, "found peer from discovery server peer=%s",
                     g.key);
                st->regs[st->nregs++] = g;
            }
        }
        resp_close(&r);
    }
    cn_free(j);
    return rc;
}

/* Step 5 (etcd's nodesToCluster). */
static int to_cluster(struct disc *d, const struct cluster_state *st,
                      struct server_discovery_result *res)
{
    struct cn_buf all = {0};
    int rc = CN_OK;
    for (unsigned i = 0; i < st->size; i++)
        rc |= cn_buf_printf(&all, "%s%s", i ? "," : "", st->regs[i].value);
    if (rc != CN_OK || all.len >= sizeof(res->initial_cluster)) {
        cn_buf_close(&all);
        return fail(d, rc ? CN_ENOMEM : CN_EINVAL,
                    "discovery: initial cluster too long%s", "");
    }
    memcpy(res->initial_cluster, all.data, all.len + 1);
    res->count = 0;
    res->size = st->size;
    char names[CN_CONFIG_MEMBERS_MAX][128];
    int nnames = 0;
    for (char *save = NULL, *e = strtok_r(all.data, ",", &save); e != NULL;
         e = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(e, '=');
        if (eq == NULL || eq == e || res->count >= CN_CONFIG_MEMBERS_MAX) {
            rc = fail(d, CN_EINVAL, "discovery: invalid URL \"%s\"", e);
            break;
        }
        *eq = '\0';
        struct cn_member_spec *m = &res->members[res->count];
        snprintf(m->name, sizeof(m->name), "%s", e);
        char err[CN_ERRMSG_SIZE];
        if (config_url_parse(eq + 1, &m->url, err) != CN_OK) {
            rc = fail(d, CN_EINVAL, "discovery: invalid URL \"%s\"", eq + 1);
            break;
        }
        res->count++;
        int seen = 0;
        for (int i = 0; i < nnames && !seen; i++)
            seen = strcmp(names[i], m->name) == 0;
        if (!seen)
            snprintf(names[nnames++], sizeof(names[0]), "%s", m->name);
    }
    if (rc == CN_OK && (unsigned)nnames != st->size)
        rc = fail(d, CN_EINVAL, "discovery: found duplicate name%s", "");
    cn_buf_close(&all);
    return rc;
}

static void fill_defaults(struct server_discovery_config *c)
{
    if (c->retries_max == 0)
        c->retries_max = 8;
    if (c->backoff_ms == 0)
        c->backoff_ms = 500;
    if (c->backoff_max_ms == 0)
        c->backoff_max_ms = 8000;
    if (c->timeout_ms == 0)
        c->timeout_ms = 5000;
}

int server_discovery_join(const struct server_discovery_config *cfg,
                          struct server_discovery_result *res,
                          char errmsg[CN_ERRMSG_SIZE])
{
    struct disc *d = cn_calloc(1, sizeof(*d));
    struct cluster_state st = {0};
    st.regs = cn_malloc(NODES_MAX * sizeof(*st.regs));
    if (d == NULL || st.regs == NULL) {
        cn_free(d);
        cn_free(st.regs);
        snprintf(errmsg, CN_ERRMSG_SIZE, "discovery: out of memory");
        return CN_ENOMEM;
    }
    d->cfg = *cfg;
    fill_defaults(&d->cfg);
    d->errmsg = errmsg;
    server_id_format(cfg->member_id, d->self_key);
    int rc;
    if (strncmp(cfg->url, "https://", 8) == 0) {
        rc = fail(d, CN_EINVAL,
                  "discovery: https discovery URLs are not supported yet "
                  "(%s)",
                  cfg->url);
        goto out;
    }
    if (split_url(cfg->url, &d->server, d->path, sizeof(d->path)) != CN_OK ||
        strlen(d->path) <= 1) {
        rc = fail(d, CN_EINVAL, "discovery: invalid URL \"%s\"", cfg->url);
        goto out;
    }
    snprintf(d->origin, sizeof(d->origin), "http://%s%s%s:%s",
             strchr(d->server.host, ':') ? "[" : "", d->server.host,
             strchr(d->server.host, ':') ? "]" : "", d->server.port);
    if (cfg->proxy != NULL && cfg->proxy[0] != '\0') {
        char proxy[1100];
        snprintf(proxy, sizeof(proxy), "%s%s",
                 strstr(cfg->proxy, "://") ? "" : "http://", cfg->proxy);
        if (split_url(proxy, &d->proxy, NULL, 0) != CN_OK) {
            rc = fail(d, CN_EINVAL, "discovery: invalid proxy address \"%s\"",
                      cfg->proxy);
            goto out;
        }
        d->has_proxy = 1;
        DLOG(d, CN_LOG_INFO, "running proxy with discovery proxy=%s",
             cfg->proxy);
    }
    /* fast path: a full cluster does not take our registration */
    rc = check_cluster(d, &st);
    if (rc != CN_OK)
        goto out;
    rc = register_self(d);
    if (rc != CN_OK)
        goto out;
    rc = check_cluster(d, &st);
    if (rc != CN_OK)
        goto out;
    if ((unsigned)st.nregs > st.size)
        st.nregs = (int)st.size;
    rc = wait_nodes(d, &st);
    if (rc != CN_OK)
        goto out;
    rc = to_cluster(d, &st, res);
    if (rc == CN_OK)
        DLOG(d, CN_LOG_INFO,
             "found all needed peers from discovery server "
             "initial_cluster=\"%s\"",
             res->initial_cluster);
out:
    cn_free(st.regs);
    cn_free(d);
    return rc;
}
