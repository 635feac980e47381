/*
 * server_net.c: client listeners and connections on libuv.
 *
 * A connection's life:
 *
 *   accept --> proto.open --> reading <--> paused (server_conn_read)
 *      --> closing (peer EOF/error, deadline, server_conn_close, stop)
 *      --> uv close callback: proto.closed, unlink, free
 *
 * Reads land in one shared buffer (the protocol copies what it keeps), so a
 * read costs no allocation. A write in flight when the connection closes
 * completes with an error before proto.closed runs (libuv cancels it first).
 *
 * A write is first tried at once (uv_try_write). Most responses fit the
 * socket buffer, and then no uv_write_t is queued: libuv re-arms the
 * socket's epoll interest after every queued write it completes, one
 * epoll_ctl per response, which on these machines costs as much as the
 * write itself. The callback of a write done at once still runs later: the
 * connection waits on srv->wdone_* until the check phase right after the
 * poll (or the idle phase, for writes made outside the poll).
 */
#include "server_int.h"

#include <stdio.h>
#include <string.h>

static void conn_close(struct server_conn *c);

/* The write in flight ended: its callback (taken off c first, so that it
 * may write again) runs with status. */
static void write_done(struct server_conn *c, int status)
{
    server_write_fn *cb = c->wcb;
    void *arg = c->warg;
    c->wcb = NULL;
    c->warg = NULL;
    if (cb != NULL)
        cb(arg, status);
}

/* Runs the callbacks of the writes done at once, in the order they were
 * made; a callback may write again (it is run in this same drain). */
static void wdone_drain(struct server *srv)
{
    while (srv->wdone_head != NULL) {
        struct server_conn *c = srv->wdone_head;
        srv->wdone_head = c->wdone_next;
        if (srv->wdone_head == NULL)
            srv->wdone_tail = NULL;
        c->wdone_next = NULL;
        c->wdone = 0;
        write_done(c, c->wdone_status);
    }
    uv_idle_stop(&srv->wdone_idle);
}

static void on_wdone_check(uv_check_t *h)
{
    wdone_drain(h->data);
}

static void on_wdone_idle(uv_idle_t *h)
{
    wdone_drain(h->data);
}

static void wdone_push(struct server_conn *c, int status)
{
    struct server *srv = c->srv;
    c->wdone = 1;
    c->wdone_status = status;
    c->wdone_next = NULL;
    if (srv->wdone_tail != NULL)
        srv->wdone_tail->wdone_next = c;
    else
        srv->wdone_head = c;
    srv->wdone_tail = c;
    uv_idle_start(&srv->wdone_idle, on_wdone_idle);
}

/* Takes c off the list (it closes first); its callback runs with status. */
static void wdone_cancel(struct server_conn *c, int status)
{
    struct server *srv = c->srv;
    struct server_conn *prev = NULL;
    for (struct server_conn *p = srv->wdone_head; p != NULL;
         prev = p, p = p->wdone_next) {
        if (p != c)
            continue;
        if (prev != NULL)
            prev->wdone_next = c->wdone_next;
        else
            srv->wdone_head = c->wdone_next;
        if (srv->wdone_tail == c)
            srv->wdone_tail = prev;
        break;
    }
    c->wdone = 0;
    c->wdone_next = NULL;
    write_done(c, status);
}

void server_net_init(struct server *srv)
{
    uv_check_init(&srv->loop, &srv->wdone_check);
    srv->wdone_check.data = srv;
    uv_check_start(&srv->wdone_check, on_wdone_check);
    uv_unref((uv_handle_t *)&srv->wdone_check);
    uv_idle_init(&srv->loop, &srv->wdone_idle);
    srv->wdone_idle.data = srv;
    uv_unref((uv_handle_t *)&srv->wdone_idle);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct server_conn *c = h->data;
    struct server *srv = c->srv;
    if (c->wdone)
        wdone_cancel(c, CN_ECLOSED);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    srv->stats.connections--;
    if (c->state != NULL && srv->proto.closed != NULL)
        srv->proto.closed(c->state);
    cn_free(c);
}

static void conn_close(struct server_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->reading = 0;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct server_conn *c = h->data;
    (void)suggested;
    buf->base = c->srv->read_buf;
    buf->len = SERVER_READ_BUF_BYTES;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct server_conn *c = s->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->closing)
        return;
    c->srv->proto.data(c->state, c->srv->read_buf, (size_t)nread);
}

static void on_write(uv_write_t *req, int status)
{
    struct server_conn *c = req->data;
    write_done(c, status == 0 ? CN_OK : CN_EIO);
}

int server_conn_write(struct server_conn *c, const struct cn_slice *iov,
                      unsigned n, server_write_fn *cb, void *arg)
{
    if (c->closing)
        return CN_ECLOSED;
    CN_ASSERT(c->wcb == NULL);
    CN_ASSERT(n <= SERVER_IOV_MAX);
    uv_buf_t bufs[SERVER_IOV_MAX];
    for (unsigned i = 0; i < n; i++)
        bufs[i] = uv_buf_init((char *)iov[i].base, (unsigned)iov[i].len);
    c->wreq.data = c;
    c->wcb = cb;
    c->warg = arg;
    /* At once if the socket takes it all; the rest, if any, queued. */
    int done = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
    if (done < 0 && done != UV_EAGAIN) {
        wdone_push(c, CN_EIO);
        return CN_OK;
    }
    unsigned first = 0;
    for (size_t left = done > 0 ? (size_t)done : 0; left > 0;) {
        if (left >= bufs[first].len) {
            left -= bufs[first].len;
            first++;
        } else {
            bufs[first].base += left;
            bufs[first].len -= (unsigned)left;
            left = 0;
        }
    }
    while (first < n && bufs[first].len == 0)
        first++;
    if (first == n) {
        wdone_push(c, CN_OK);
        return CN_OK;
    }
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, bufs + first, n - first,
                      on_write);
    if (rc != 0) {
        c->wcb = NULL;
        c->warg = NULL;
        return CN_EIO;
    }
    return CN_OK;
}

void server_conn_close(struct server_conn *c)
{
    conn_close(c);
}

void server_conn_read(struct server_conn *c, int on)
{
    if (c->closing || c->reading == on)
        return;
    c->reading = on;
    if (on)
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
}

void server_conn_deadline(struct server_conn *c, unsigned timeout_ms)
{
    c->deadline_ms = timeout_ms ? uv_now(&c->srv->loop) + timeout_ms : 0;
}

void server_net_check_deadlines(struct server *srv)
{
    uint64_t now = uv_now(&srv->loop);
    struct server_conn *c = srv->conns;
    while (c != NULL) {
        struct server_conn *next = c->next;
        if (c->deadline_ms != 0 && now >= c->deadline_ms && !c->closing) {
            SRV_LOG(&srv->logger, CN_LOG_DEBUG,
                    "closing a client connection after its timeout");
            conn_close(c);
        }
        c = next;
    }
}

static void on_refused_closed(uv_handle_t *h)
{
    cn_free(h->data);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct server_listener *l = ls->data;
    struct server *srv = l->srv;
    if (status != 0 || srv->stopping)
        return;
    struct server_conn *c = cn_calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->srv = srv;
    uv_tcp_init(&srv->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0 ||
        srv->stats.connections >= CN_HTTP_CONNECTIONS_MAX ||
        srv->proto.open == NULL) {
        c->tcp.data = c;
        uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.connections++;
    srv->stats.connections_total++;
    c->state = srv->proto.open(srv->proto.ctx, c);
    if (c->state == NULL) {
        conn_close(c);
        return;
    }
    server_conn_read(c, 1);
}

static int listen_one(struct server *srv, const struct cn_url *url,
                      char errmsg[CN_ERRMSG_SIZE])
{
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    uv_getaddrinfo_t gai;
    char port[16];
    snprintf(port, sizeof(port), "%u", (unsigned)url->port);
    int rc = uv_getaddrinfo(&srv->loop, &gai, NULL, url->host, port, &hints);
    if (rc != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "listen %.200s: %s", url->raw,
                 uv_strerror(rc));
        return CN_EIO;
    }
    struct server_listener *l = &srv->listeners[srv->listener_count];
    l->srv = srv;
    uv_tcp_init(&srv->loop, &l->tcp);
    l->tcp.data = l;
    rc = uv_tcp_bind(&l->tcp, gai.addrinfo->ai_addr, 0);
    uv_freeaddrinfo(gai.addrinfo);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 1024, on_connection);
    if (rc != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "listen %.200s: %s", url->raw,
                 uv_strerror(rc));
        uv_close((uv_handle_t *)&l->tcp, NULL);
        return CN_EIO;
    }
    srv->listener_count++;
    /* Port 0 binds a free port: print the real one. */
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    unsigned port_bound = url->port;
    if (uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET)
            port_bound = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            port_bound = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    int v6 = strchr(url->host, ':') != NULL;
    snprintf(l->url, sizeof(l->url), "%s://%s%s%s:%u", url->scheme,
             v6 ? "[" : "", url->host, v6 ? "]" : "", port_bound);
    fprintf(stderr, "cairn: listening for client requests on %s\n", l->url);
    return CN_OK;
}

int server_net_listen(struct server *srv, char errmsg[CN_ERRMSG_SIZE])
{
    const struct cn_url_list *urls = &srv->cfg.listen_client_urls;
    for (int i = 0; i < urls->count && i < SERVER_LISTENERS_MAX; i++) {
        if (strcmp(urls->urls[i].scheme, "http") != 0) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "listen %.200s: only http is supported for now",
                     urls->urls[i].raw);
            return CN_EINVAL;
        }
        int rc = listen_one(srv, &urls->urls[i], errmsg);
        if (rc != CN_OK)
            return rc;
    }
    return CN_OK;
}

void server_net_close_all(struct server *srv)
{
    for (int i = 0; i < srv->listener_count; i++) {
        if (!uv_is_closing((uv_handle_t *)&srv->listeners[i].tcp))
            uv_close((uv_handle_t *)&srv->listeners[i].tcp, NULL);
    }
    for (struct server_conn *c = srv->conns; c != NULL; c = c->next)
        conn_close(c);
}
