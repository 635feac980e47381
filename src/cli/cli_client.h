/*
 * cli_client: the public face of cairnctl's v2 client, for other layers
 * (src/fleet) that talk to a cairn or etcd cluster through the HTTP API.
 *
 * Everything here is blocking and single-threaded: one struct cli_client
 * holds the endpoints and one keep-alive connection; a key API call sends one
 * request (trying the next endpoint on a connection failure unless
 * CLI_REQ_ONESHOT) and parses the answer into struct cli_resp, or an etcd
 * error body into struct cli_etcd_error. Waits are cut short when a
 * termination signal recorded by cli_signal_install's handlers is pending.
 *
 * What is not declared here (HTTP internals, JSON, output formats, commands)
 * is private to src/cli (cli_int.h) and may change without notice.
 */
#ifndef CLI_CLIENT_H
#define CLI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* ---- Endpoints and the connection ------------------------------------ */

#define CLI_HOST_MAX 256
#define CLI_URL_MAX 1024
#define CLI_ENDPOINTS_MAX 64

struct cli_url {
    char host[CLI_HOST_MAX]; /* without brackets */
    char port[8];            /* decimal */
    char path[CLI_URL_MAX];  /* path prefix, "" for none */
    char text[CLI_URL_MAX];  /* scheme://host[:port][path] as given */
};

/* One keep-alive connection. Its fields belong to the client code; other
 * layers only embed it (through struct cli_client). */
struct cli_http_conn {
    int fd;                  /* -1 when not connected */
    char host[CLI_HOST_MAX]; /* what fd is connected to */
    char port[8];
    char rbuf[16384];            /* bytes read but not consumed */
    size_t rlen;                 /* bytes in rbuf */
    char errmsg[CN_ERRMSG_SIZE]; /* Go-style message of the last failure */
};

/* ---- Answers --------------------------------------------------------- */

struct cli_node {
    char *key;        /* owned; "" for the root */
    int dir;          /* 1 for directories */
    char *value;      /* owned; "" when absent */
    char *expiration; /* owned; NULL when absent */
    int64_t ttl;      /* seconds; 0 when absent */
    uint64_t created_index;
    uint64_t modified_index;
    int has_nodes;          /* "nodes" was present (even empty) */
    struct cli_node *nodes; /* owned array */
    size_t node_count;
};

struct cli_resp {
    char *action;               /* owned */
    struct cli_node *node;      /* owned; NULL when absent */
    struct cli_node *prev_node; /* owned; NULL when absent */
    uint64_t index;             /* X-Etcd-Index (not in the JSON) */
};

struct cli_etcd_error {
    int code;      /* etcd error code: 100 key not found, 101 compare ... */
    char *message; /* owned */
    char *cause;   /* owned */
    uint64_t index;
};

/* Free what the structs own; safe on a zeroed struct and after a failed
 * call that was given it (every call leaves them closable). */
void cli_resp_close(struct cli_resp *r);
void cli_node_close(struct cli_node *n);
void cli_etcd_error_close(struct cli_etcd_error *e);

/* ---- Client ---------------------------------------------------------- */

struct cli_global {
    const char *endpoints;    /* comma-separated; NULL: environment/default */
    const char *output;       /* "simple" | "extended" | "json" */
    int64_t timeout_ms;       /* per request, header (default 2 s) */
    int64_t total_timeout_ms; /* per command except watches (default 5 s) */
    int no_sync;
    int debug;
};

struct cli_client {
    struct cli_url eps[CLI_ENDPOINTS_MAX];
    size_t ep_count;
    size_t pinned; /* endpoint tried first */
    struct cli_http_conn conn;
    int64_t timeout_ms;
    int64_t deadline_ms; /* total timeout of the command; 0: none */
    int debug;
    /* Last failure, etcdctl's wording: */
    struct cn_buf fail;        /* "client: etcd cluster is unavailable..." */
    struct cn_buf fail_detail; /* "error #0: ..." lines; empty if none */
    int fail_conn;             /* every attempt failed to connect */
};

/* Request flags. */
enum {
    CLI_REQ_ONESHOT = 1, /* do not retry on another endpoint (not
                          * idempotent: create, delete) */
    CLI_REQ_WAIT = 2,    /* a watch: no header timeout */
};

/* Sets up cl's endpoints from g->endpoints (or the default
 * http://127.0.0.1:2379,http://127.0.0.1:4001); g is borrowed during the
 * call, the endpoints are copied. cl is caller-allocated. Returns 0 or
 * CN_EINVAL with the message in cl->fail; call cli_client_close in both
 * cases. */
int cli_client_init(struct cli_client *cl, const struct cli_global *g);
/* Closes the connection and frees what cl owns; cl itself is the
 * caller's. */
void cli_client_close(struct cli_client *cl);

/* Key API call result. */
enum {
    CLI_KEYS_OK = 0,      /* resp is set */
    CLI_KEYS_ETCD = 1,    /* eerr is set (an etcd error body) */
    CLI_KEYS_FAILED = -1, /* cl->fail is set */
};

struct cli_keys_req {
    const char *method;  /* GET PUT POST DELETE */
    const char *key;     /* "/a/b" */
    const char *query;   /* "recursive=true&..." (already escaped) or NULL */
    const char *form;    /* form body (already escaped) or NULL */
    int flags;           /* CLI_REQ_* */
    int64_t deadline_ms; /* cli_now_ms clock; 0: client default, -1: none */
};

/* Calls the key API. req and its strings are borrowed during the call.
 * resp and eerr are caller-allocated and always initialised by the call:
 * close both with cli_resp_close / cli_etcd_error_close whatever it returns.
 * Returns CLI_KEYS_OK (resp holds the answer), CLI_KEYS_ETCD (eerr holds
 * the etcd error) or CLI_KEYS_FAILED (no answer: cl->fail says why,
 * "context deadline exceeded" for a deadline). */
int cli_keys_call(struct cli_client *cl, const struct cli_keys_req *req,
                  struct cli_resp *resp, struct cli_etcd_error *eerr);

/* Appends "k=v" (both borrowed, escaped on the way) to the query or form
 * in b (owned by the caller), with '&' when needed. 0 or CN_ENOMEM. */
int cli_form_add(struct cn_buf *b, const char *k, const char *v);

/* ---- Clock and signals ----------------------------------------------- */

int64_t cli_now_ms(void);      /* monotonic */
void cli_sleep_ms(int64_t ms); /* returns early on a termination signal */
/* Installs handlers for SIGINT/SIGTERM/SIGHUP that only record the signal
 * (the process's only mutable global, set by the handler). */
void cli_signal_install(void);
/* The pending termination signal number, or 0. */
int cli_signal_pending(void);
/* Returns the pending signal (or 0) and clears it, so that clean-up
 * requests after a signal are not cut short. */
int cli_signal_take(void);

#endif
