/*
 * cli_http: a small blocking HTTP/1.1 client over POSIX sockets.
 *
 * One struct cli_http_conn holds at most one open connection, reused while
 * requests go to the same host:port and the server keeps it alive. Every
 * wait is a poll() bounded by the request's deadline and by 100 ms slices so
 * that a termination signal (cli_signal_pending) ends it promptly.
 *
 * Response bodies may be delimited by Content-Length, chunked encoding
 * (etcd's watches) or the end of the connection. The head parser and the
 * chunked decoder are pure and unit-tested (tests/unit/cli/test_cli_http.c).
 *
 * Chunked decoder states (cli_chunked_feed):
 *   SIZE --hex digits, ';ext', CRLF--> DATA (size > 0) | TRAILER (size 0)
 *   DATA --remaining bytes--> DATA_CRLF --CRLF--> SIZE
 *   TRAILER --empty line--> DONE ; TRAILER --"name: v" line--> TRAILER
 */
#include "cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLI_POLL_SLICE_MS 100

int cli_url_parse(const char *s, struct cli_url *u, char *errmsg)
{
    memset(u, 0, sizeof(*u));
    const char *rest = s;
    const char *sep = strstr(s, "://");
    if (sep != NULL) {
        if ((size_t)(sep - s) != 4 || strncasecmp(s, "http", 4) != 0) {
            if ((size_t)(sep - s) == 5 && strncasecmp(s, "https", 5) == 0)
                snprintf(errmsg, CN_ERRMSG_SIZE,
                         "https endpoints are not supported yet: %s", s);
            else
                snprintf(errmsg, CN_ERRMSG_SIZE,
                         "unsupported protocol scheme in \"%.200s\"", s);
            return CN_EINVAL;
        }
        rest = sep + 3;
    } else {
        /* Go's url.Parse rejects "host:port" without a scheme. */
        const char *colon = strchr(s, ':');
        const char *slash = strchr(s, '/');
        if (colon != NULL && (slash == NULL || colon < slash)) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "parse \"%s\": first path segment in URL cannot "
                     "contain colon",
                     s);
            return CN_EINVAL;
        }
    }
    size_t hostlen = strcspn(rest, "/?#");
    const char *path = rest + hostlen;
    const char *h = rest;
    const char *port = NULL;
    size_t hl = hostlen;
    if (hostlen > 0 && h[0] == '[') {
        const char *close = memchr(h, ']', hostlen);
        if (close == NULL)
            goto bad;
        hl = (size_t)(close - h - 1);
        h++;
        if (close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = memchr(h, ':', hostlen);
        if (colon != NULL) {
            hl = (size_t)(colon - h);
            port = colon + 1;
        }
    }
    if (hl == 0 || hl >= sizeof(u->host))
        goto bad;
    memcpy(u->host, h, hl);
    if (port != NULL) {
        size_t pl = (size_t)(rest + hostlen - port);
        if (pl == 0 || pl >= sizeof(u->port))
            goto bad;
        for (size_t i = 0; i < pl; i++)
            if (port[i] < '0' || port[i] > '9')
                goto bad;
        memcpy(u->port, port, pl);
    } else {
        strcpy(u->port, "80");
    }
    size_t pathlen = strcspn(path, "?#");
    while (pathlen > 0 && path[pathlen - 1] == '/')
        pathlen--;
    if (pathlen >= sizeof(u->path))
        goto bad;
    memcpy(u->path, path, pathlen);
    snprintf(u->text, sizeof(u->text), "%s%s", sep ? "" : "http://", s);
    return CN_OK;
bad:
    snprintf(errmsg, CN_ERRMSG_SIZE, "parse \"%s\": invalid URL", s);
    return CN_EINVAL;
}

void cli_http_resp_init(struct cli_http_resp *r)
{
    memset(r, 0, sizeof(*r));
    r->content_length = -1;
    cn_buf_init(&r->body);
}

void cli_http_resp_close(struct cli_http_resp *r)
{
    cn_buf_close(&r->body);
}

static void copy_value(char *dst, size_t size, const char *v, size_t n)
{
    if (n >= size)
        n = size - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static int header_is(const char *name, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(name, want, n) == 0;
}

static int parse_u64(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0)
        return CN_EPROTO;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9' || x > (UINT64_MAX - 9) / 10)
            return CN_EPROTO;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return CN_OK;
}

static int parse_header_line(const char *line, size_t n,
                             struct cli_http_resp *r)
{
    const char *colon = memchr(line, ':', n);
    if (colon == NULL || colon == line)
        return CN_EPROTO;
    size_t nl = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        vl--;
    if (header_is(line, nl, "Content-Length")) {
        uint64_t x;
        if (parse_u64(v, vl, &x) != CN_OK || x > INT64_MAX)
            return CN_EPROTO;
        r->content_length = (int64_t)x;
    } else if (header_is(line, nl, "Transfer-Encoding")) {
        if (vl >= 7 && strncasecmp(v + vl - 7, "chunked", 7) == 0)
            r->chunked = 1;
    } else if (header_is(line, nl, "Connection")) {
        if (vl == 5 && strncasecmp(v, "close", 5) == 0)
            r->conn_close = 1;
    } else if (header_is(line, nl, "X-Etcd-Index")) {
        if (parse_u64(v, vl, &r->etcd_index) == CN_OK)
            r->has_etcd_index = 1;
    } else if (header_is(line, nl, "Location")) {
        copy_value(r->location, sizeof(r->location), v, vl);
    } else if (header_is(line, nl, "Content-Type")) {
        copy_value(r->content_type, sizeof(r->content_type), v, vl);
    }
    return CN_OK;
}

long cli_http_parse_head(const char *p, size_t n, struct cli_http_resp *r)
{
    const char *end = NULL;
    for (size_t i = 0; i + 3 < n; i++) {
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' &&
            p[i + 3] == '\n') {
            end = p + i;
            break;
        }
    }
    if (end == NULL)
        return n > CN_HTTP_HEADER_BYTES_MAX ? CN_ETOOBIG : 0;
    size_t headlen = (size_t)(end - p) + 4;
    /* Status line: HTTP/1.x SSS reason */
    const char *eol = memchr(p, '\r', headlen);
    size_t sl = (size_t)(eol - p);
    if (sl < 12 || strncmp(p, "HTTP/1.", 7) != 0 || p[8] != ' ')
        return CN_EPROTO;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return CN_EPROTO;
        status = status * 10 + (p[i] - '0');
    }
    r->status = status;
    if (p[7] == '0')
        r->conn_close = 1; /* HTTP/1.0 without keep-alive */
    const char *line = eol + 2;
    while (line < end) {
        const char *le = memchr(line, '\r', (size_t)(end + 2 - line));
        if (le == NULL || le[1] != '\n')
            return CN_EPROTO;
        int rc = parse_header_line(line, (size_t)(le - line), r);
        if (rc != CN_OK)
            return rc;
        line = le + 2;
    }
    return (long)headlen;
}

enum {
    CH_SIZE = 0,
    CH_SIZE_DIGITS,
    CH_EXT,
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER,
    CH_TRAILER_LINE,
    CH_TRAILER_LF,
    CH_TRAILER_LINE_LF,
    CH_DONE,
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

int cli_chunked_feed(struct cli_chunked *d, const char *in, size_t n,
                     size_t *used, struct cn_buf *out)
{
    size_t i = 0;
    int rc;
    while (i < n && d->state != CH_DONE) {
        char c = in[i];
        switch (d->state) {
        case CH_SIZE: /* at least one hex digit */
            if (hexval(c) < 0)
                return CN_EPROTO;
            d->remaining = (uint64_t)hexval(c);
            d->state = CH_SIZE_DIGITS;
            i++;
            break;
        case CH_SIZE_DIGITS:
            if (hexval(c) >= 0) {
                if (d->remaining > (UINT64_MAX >> 4))
                    return CN_EPROTO;
                d->remaining = d->remaining * 16 + (uint64_t)hexval(c);
            } else if (c == ';' || c == ' ' || c == '\t') {
                d->state = CH_EXT;
            } else if (c == '\r') {
                d->state = CH_SIZE_LF;
            } else {
                return CN_EPROTO;
            }
            i++;
            break;
        case CH_EXT:
            if (c == '\r')
                d->state = CH_SIZE_LF;
            i++;
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return CN_EPROTO;
            d->state = d->remaining > 0 ? CH_DATA : CH_TRAILER;
            i++;
            break;
        case CH_DATA: {
            size_t take = n - i;
            if ((uint64_t)take > d->remaining)
                take = (size_t)d->remaining;
            rc = cn_buf_append(out, in + i, take);
            if (rc != CN_OK)
                return rc;
            i += take;
            d->remaining -= take;
            if (d->remaining == 0)
                d->state = CH_DATA_CR;
            break;
        }
        case CH_DATA_CR:
            if (c != '\r')
                return CN_EPROTO;
            d->state = CH_DATA_LF;
            i++;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return CN_EPROTO;
            d->state = CH_SIZE;
            i++;
            break;
        case CH_TRAILER: /* at the start of a trailer line */
            d->state = c == '\r' ? CH_TRAILER_LF : CH_TRAILER_LINE;
            i++;
            break;
        case CH_TRAILER_LINE:
            if (c == '\r')
                d->state = CH_TRAILER_LINE_LF;
            i++;
            break;
        case CH_TRAILER_LINE_LF:
            if (c != '\n')
                return CN_EPROTO;
            d->state = CH_TRAILER;
            i++;
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return CN_EPROTO;
            d->state = CH_DONE;
            i++;
            break;
        default:
            return CN_EPROTO;
        }
    }
    *used = i;
    return d->state == CH_DONE ? 1 : 0;
}

void cli_http_conn_init(struct cli_http_conn *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
}

void cli_http_conn_close(struct cli_http_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->rlen = 0;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, int64_t deadline_ms)
{
    for (;;) {
        if (cli_signal_pending())
            return CN_ESHUTDOWN;
        int slice = CLI_POLL_SLICE_MS;
        if (deadline_ms > 0) {
            int64_t left = deadline_ms - cli_now_ms();
            if (left <= 0)
                return CN_ETIMEDOUT;
            if (left < slice)
                slice = (int)left;
        }
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, slice);
        if (n > 0)
            return CN_OK;
        if (n < 0 && errno != EINTR)
            return cn_err_from_errno(errno);
    }
}

static void lower_strerror(char *dst, size_t size, int errnum)
{
    snprintf(dst, size, "%s", strerror(errnum));
    if (dst[0] >= 'A' && dst[0] <= 'Z')
        dst[0] = (char)(dst[0] - 'A' + 'a');
}

static int connect_to(struct cli_http_conn *c, const char *host,
                      const char *port, int64_t deadline_ms)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        snprintf(c->errmsg, sizeof(c->errmsg),
                 "dial tcp: lookup %s: no such host", host);
        return CN_EIO;
    }
    int rc = CN_EIO;
    char why[128] = "connection refused";
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int err = 0;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            err = errno;
            if (err == EINPROGRESS) {
                int w = wait_fd(fd, POLLOUT, deadline_ms);
                if (w != CN_OK) {
                    close(fd);
                    rc = w;
                    snprintf(why, sizeof(why), "i/o timeout");
                    if (w == CN_ESHUTDOWN)
                        break;
                    continue;
                }
                socklen_t len = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
            }
        }
        if (err == 0) {
            c->fd = fd;
            snprintf(c->host, sizeof(c->host), "%s", host);
            snprintf(c->port, sizeof(c->port), "%s", port);
            c->rlen = 0;
            freeaddrinfo(res);
            return CN_OK;
        }
        close(fd);
        lower_strerror(why, sizeof(why), err);
        rc = err == ECONNREFUSED ? CN_ECONNREFUSED : CN_EIO;
    }
    freeaddrinfo(res);
    int v6 = strchr(host, ':') != NULL;
    snprintf(c->errmsg, sizeof(c->errmsg), "dial tcp %s%s%s:%s: connect: %s",
             v6 ? "[" : "", host, v6 ? "]" : "", port, why);
    return rc;
}

int cli_tcp_probe(const char *host, const char *port, int64_t deadline_ms)
{
    struct cli_http_conn c;
    cli_http_conn_init(&c);
    int rc = connect_to(&c, host, port, deadline_ms);
    cli_http_conn_close(&c);
    return rc;
}

static int send_all(struct cli_http_conn *c, const char *p, size_t n,
                    int64_t deadline_ms)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(c->fd, POLLOUT, deadline_ms);
            if (rc != CN_OK)
                return rc;
            continue;
        }
        char why[128];
        lower_strerror(why, sizeof(why), errno);
        snprintf(c->errmsg, sizeof(c->errmsg), "write tcp %.100s:%.8s: %.100s",
                 c->host, c->port, why);
        return CN_EIO;
    }
    return CN_OK;
}

/* Reads more bytes into c->rbuf. 0 on data, CN_ECLOSED at EOF. */
static int fill(struct cli_http_conn *c, int64_t deadline_ms)
{
    if (c->rlen == sizeof(c->rbuf))
        return CN_ETOOBIG;
    for (;;) {
        ssize_t r =
            recv(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - c->rlen, 0);
        if (r > 0) {
            c->rlen += (size_t)r;
            return CN_OK;
        }
        if (r == 0)
            return CN_ECLOSED;
        if (errno == EAGAIN || errno == EINTR) {
            int rc = wait_fd(c->fd, POLLIN, deadline_ms);
            if (rc != CN_OK)
                return rc;
            continue;
        }
        char why[128];
        lower_strerror(why, sizeof(why), errno);
        snprintf(c->errmsg, sizeof(c->errmsg), "read tcp %.100s:%.8s: %.100s",
                 c->host, c->port, why);
        return CN_EIO;
    }
}

static void consume(struct cli_http_conn *c, size_t n)
{
    memmove(c->rbuf, c->rbuf + n, c->rlen - n);
    c->rlen -= n;
}

static int read_body(struct cli_http_conn *c, const struct cli_http_req *req,
                     struct cli_http_resp *resp)
{
    int rc;
    if (strcmp(req->method, "HEAD") == 0 || resp->status == 204 ||
        resp->status == 304 || (resp->status >= 100 && resp->status < 200))
        return CN_OK;
    if (resp->chunked) {
        struct cli_chunked d = {0};
        for (;;) {
            size_t used = 0;
            rc = cli_chunked_feed(&d, c->rbuf, c->rlen, &used, &resp->body);
            if (rc < 0)
                return rc;
            consume(c, used);
            if (rc == 1)
                return CN_OK;
            if (resp->body.len > CN_MAX_REQUEST_BYTES_DEFAULT * 64)
                return CN_ETOOBIG;
            rc = fill(c, req->deadline_ms);
            if (rc != CN_OK)
                return rc == CN_ECLOSED ? CN_EPROTO : rc;
        }
    }
    if (resp->content_length >= 0) {
        uint64_t left = (uint64_t)resp->content_length;
        while (left > 0) {
            if (c->rlen == 0) {
                rc = fill(c, req->deadline_ms);
                if (rc != CN_OK)
                    return rc == CN_ECLOSED ? CN_EPROTO : rc;
            }
            size_t take = c->rlen < left ? c->rlen : (size_t)left;
            rc = cn_buf_append(&resp->body, c->rbuf, take);
            if (rc != CN_OK)
                return rc;
            consume(c, take);
            left -= take;
        }
        return CN_OK;
    }
    /* Until the server closes. */
    resp->conn_close = 1;
    for (;;) {
        rc = cn_buf_append(&resp->body, c->rbuf, c->rlen);
        if (rc != CN_OK)
            return rc;
        c->rlen = 0;
        rc = fill(c, req->deadline_ms);
        if (rc == CN_ECLOSED)
            return CN_OK;
        if (rc != CN_OK)
            return rc;
    }
}

static int build_request(struct cn_buf *b, const struct cli_url *u,
                         const struct cli_http_req *req)
{
    int v6 = strchr(u->host, ':') != NULL;
    int rc = cn_buf_printf(b,
                           "%s %s HTTP/1.1\r\nHost: %s%s%s:%s\r\n"
                           "User-Agent: cairnctl\r\nAccept-Encoding: "
                           "identity\r\n",
                           req->method, req->target, v6 ? "[" : "", u->host,
                           v6 ? "]" : "", u->port);
    if (rc == CN_OK && req->content_type != NULL)
        rc = cn_buf_printf(b, "Content-Type: %s\r\n", req->content_type);
    if (rc == CN_OK && (req->body != NULL || strcmp(req->method, "PUT") == 0 ||
                        strcmp(req->method, "POST") == 0))
        rc = cn_buf_printf(b, "Content-Length: %zu\r\n", req->body_len);
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(b, "\r\n");
    if (rc == CN_OK && req->body != NULL)
        rc = cn_buf_append(b, req->body, req->body_len);
    return rc;
}

/* One attempt on the current or a fresh connection. *fresh says whether
 * the connection was new (a failure on a reused one is retried once). */
static int attempt(struct cli_http_conn *c, const struct cli_url *u,
                   const struct cli_http_req *req, const struct cn_buf *wire,
                   struct cli_http_resp *resp, int *fresh)
{
    int rc;
    *fresh = 0;
    if (c->fd >= 0 &&
        (strcmp(c->host, u->host) != 0 || strcmp(c->port, u->port) != 0))
        cli_http_conn_close(c);
    if (c->fd < 0) {
        rc = connect_to(c, u->host, u->port, req->deadline_ms);
        if (rc != CN_OK)
            return rc;
        *fresh = 1;
    }
    rc = send_all(c, wire->data, wire->len, req->deadline_ms);
    if (rc != CN_OK)
        return rc;
    long head;
    for (;;) {
        head = cli_http_parse_head(c->rbuf, c->rlen, resp);
        if (head != 0)
            break;
        rc = fill(c, req->deadline_ms);
        if (rc != CN_OK)
            return rc;
    }
    if (head < 0) {
        snprintf(c->errmsg, sizeof(c->errmsg), "malformed HTTP response");
        return (int)head;
    }
    consume(c, (size_t)head);
    *fresh = 1; /* the server answered: no silent retry from here */
    rc = read_body(c, req, resp);
    if (rc == CN_EPROTO)
        snprintf(c->errmsg, sizeof(c->errmsg), "malformed HTTP response");
    return rc;
}

int cli_http_do(struct cli_http_conn *c, const struct cli_url *u,
                const struct cli_http_req *req, struct cli_http_resp *resp)
{
    struct cn_buf wire = {0};
    struct cli_http_req r = *req;
    c->errmsg[0] = '\0';
    int rc = build_request(&wire, u, &r);
    if (rc != CN_OK)
        goto out;
    for (int tries = 0; tries < 2; tries++) {
        int fresh = 0;
        cn_buf_reset(&resp->body);
        rc = attempt(c, u, &r, &wire, resp, &fresh);
        if (rc == CN_OK)
            break;
        cli_http_conn_close(c);
        /* A kept-alive connection the server already closed. */
        if (fresh || (rc != CN_ECLOSED && rc != CN_EIO))
            break;
    }
    if (rc == CN_ECLOSED) {
        snprintf(c->errmsg, sizeof(c->errmsg), "EOF");
        rc = CN_EIO;
    } else if (rc == CN_ETIMEDOUT && c->errmsg[0] == '\0') {
        snprintf(c->errmsg, sizeof(c->errmsg), "i/o timeout");
    }
    if (rc != CN_OK || resp->conn_close)
        cli_http_conn_close(c);
out:
    cn_buf_close(&wire);
    return rc;
}
