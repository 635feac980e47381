/*
 * http: cairn's HTTP/1.1 front end and the etcd v2 API (keys, stats,
 * members, machines, version, health, metrics).
 *
 * Sockets-free by design: a struct http_conn takes request bytes with
 * http_conn_feed() and produces response bytes through a struct
 * http_transport (write, close, read on/off, deadline). The server's client
 * connections are one transport (installed by http_api_new()); unit tests
 * and the fuzzer use an in-memory one.
 *
 * Invariants: responses leave in request order, even when a later request
 * completes first; a long-poll watch at the head of a connection holds back
 * the responses to later pipelined requests (as Go's net/http does);
 * invalid input gets an error response and never touches the store.
 */
#ifndef CN_HTTP_H
#define CN_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "server/server.h"

struct http_api;  /* the API over one server; opaque */
struct http_conn; /* one client connection; opaque */

typedef void http_write_done_fn(void *arg, int status);

/* How a connection reaches its client. t is the transport's own state. */
struct http_transport {
    /* Writes iov[0..n), n <= SERVER_IOV_MAX, bytes borrowed until done is
     * called with 0 or an error. done is never called from inside write.
     * One write at a time. Returns CN_OK or an error (done not called). */
    int (*write)(void *t, const struct cn_slice *iov, unsigned n,
                 http_write_done_fn *done, void *arg);
    /* Closes the connection. The transport then calls http_conn_closed()
     * later (never from inside close). */
    void (*close)(void *t);
    /* Stops (0) or resumes (1) reading. */
    void (*read)(void *t, int on);
    /* Close the connection unless it is active again within timeout_ms
     * (0: no deadline). */
    void (*deadline)(void *t, unsigned timeout_ms);
};

/* Creates the API over srv (borrowed, outlives api) and installs it as the
 * protocol of srv's client connections. Returns CN_OK or CN_ENOMEM. */
int http_api_new(struct http_api **out, struct server *srv);
/* Frees api; its connections must be closed already. NULL is a no-op. */
void http_api_free(struct http_api *api);

/* A connection over transport tr (copied) with state t (borrowed until
 * http_conn_closed). Returns CN_OK or CN_ENOMEM. */
int http_conn_new(struct http_conn **out, struct http_api *api,
                  const struct http_transport *tr, void *t);
/* Request bytes from the client; buf is borrowed for the call. */
void http_conn_feed(struct http_conn *c, const char *buf, size_t len);
/* The transport is gone: stops watches, frees c. */
void http_conn_closed(struct http_conn *c);

/* Counters for tests and /metrics. */
struct http_counters {
    uint64_t requests;     /* requests answered */
    uint64_t bad_requests; /* malformed HTTP, closed */
    uint64_t watches_open; /* long-poll or stream watches in progress */
    uint64_t conns_open;   /* http_conn objects alive */
};
void http_api_counters(const struct http_api *api, struct http_counters *out);

#endif
