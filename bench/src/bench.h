/*
 * bench: cairn-bench, a load generator for etcd-v2-compatible servers
 * (cairn and etcd 3.4 with --enable-v2), and its helper tools.
 *
 * One libuv loop on one thread drives every connection: keep-alive
 * HTTP/1.1, one request in flight per connection (no pipelining, as real v2
 * clients behave). The loop thread competes with the server for the CPU
 * when both run on one machine; docs/performance.md says what that means
 * for the figures.
 *
 * Closed loop (default): each connection sends its next request as soon as
 * the previous answer arrives; latency runs from the send. Open loop
 * (--rate R): request k is due at start + k/R whatever happens; a due
 * request waits for a free connection, and its latency runs from the time it
 * was due, so a slow server cannot hide its stalls by slowing the client
 * down (coordinated omission).
 */
#ifndef BENCH_H
#define BENCH_H

#include <netinet/in.h>
#include <stdio.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/base.h"
#include "bench_hist.h"

#define BENCH_ENDPOINTS_MAX 16
#define BENCH_CONNS_MAX 4096
#define BENCH_STATUS_MAX 600

enum bench_workload {
    BENCH_PUT,   /* PUT value=<val-size bytes> */
    BENCH_GET,   /* serializable GET of preloaded keys */
    BENCH_QGET,  /* GET ?quorum=true */
    BENCH_MIXED, /* GET with probability read-ratio, else PUT */
    BENCH_WATCH, /* watchers on the prefix; writers PUT under it */
    BENCH_TXN,   /* GET then PUT ?prevIndex= on a few hot keys */
};

struct bench_endpoint {
    struct sockaddr_storage addr; /* resolved at option parsing */
    char host[256];               /* "host:port" for the Host header */
};

struct bench_opts {
    enum bench_workload workload;
    struct bench_endpoint endpoints[BENCH_ENDPOINTS_MAX];
    int endpoint_count; /* connection i uses endpoint i % count */
    unsigned conns;     /* connections (watch: watchers) */
    unsigned writers;   /* watch: writer connections (1) */
    uint64_t total;     /* requests to complete (0: use duration) */
    double duration_s;  /* run time when total is 0 */
    double rate;        /* open-loop requests/s (0: closed loop) */
    unsigned key_space; /* keys <prefix>/k<key_start> .. */
    unsigned key_start; /* first key number (0) */
    unsigned val_size;  /* value bytes */
    int seq_keys;       /* 1: keys in order, 0: uniform random */
    double read_ratio;  /* mixed: share of GETs, 0..1 */
    int preload;        /* -1 auto (get, qget, mixed, txn), 0, 1 */
    int watch_stream;   /* watch with stream=true instead of polls */
    double timeout_s;   /* per request (watches excepted) */
    uint64_t seed;      /* PRNG seed (keys, mixed choice) */
    int json;           /* print one JSON object */
    char prefix[128];   /* key directory, "/bench" */
};

struct bench_result {
    struct bench_hist *lat;  /* the workload's latency, ns (owned) */
    struct bench_hist *lat2; /* watch: PUT send -> event, ns (owned) */
    struct bench_hist *wlat; /* watch: writers' PUT latency, ns (owned) */
    double elapsed_s;        /* measured phase */
    double client_cpu_s;     /* CPU cairn-bench used while measuring */
    uint64_t completed;      /* requests answered (watch: events) */
    uint64_t ok;             /* answered 2xx */
    uint64_t status[BENCH_STATUS_MAX]; /* non-2xx answers by status */
    uint64_t err_connect;              /* failed connects */
    uint64_t err_closed;               /* connection lost with a request out */
    uint64_t err_timeout;              /* no answer within timeout_s */
    uint64_t err_proto;                /* unparseable answers */
    uint64_t preload_errors;           /* failed preload PUTs */
    uint64_t cas_ok;                   /* txn: successful compare-and-swaps */
    uint64_t cas_conflict;             /* txn: 412 Compare failed (expected) */
    uint64_t writes;                   /* watch: PUTs acknowledged */
    uint64_t events_expected;          /* watch: writes x watchers */
    uint64_t events_early;     /* watch: event seen before the PUT's ack */
    uint64_t events_unmatched; /* watch: events not from our writers */
};

/* Parses argv ("cairn-bench <workload> --opt value ...") into o. Prints the
 * problem to stderr and returns CN_EINVAL on a bad command line. */
int bench_opts_parse(struct bench_opts *o, int argc, char **argv);
void bench_usage(FILE *out);

/* Runs the workload; fills res (caller frees with bench_result_close).
 * Returns 0, CN_ENOMEM, or CN_ECONNREFUSED when no connection could ever be
 * made. */
int bench_run(const struct bench_opts *o, struct bench_result *res);
void bench_result_close(struct bench_result *res);
/* Errors of any kind (non-2xx statuses other than txn conflicts, lost
 * connections, timeouts, protocol errors). */
uint64_t bench_result_errors(const struct bench_result *res);
void bench_report(FILE *out, const struct bench_opts *o,
                  const struct bench_result *res);
const char *bench_workload_name(enum bench_workload w);

/* Tools for the physical ceilings (bench_tools.c). */
/* A trivial keep-alive HTTP server answering every request with a fixed
 * small JSON 200, on host:port, until SIGTERM/SIGINT. */
int bench_nullserver(const char *listen, int json_out);
/* write(size bytes) + fdatasync on a file in dir for duration_s; prints
 * the rate. */
int bench_fsync(const char *dir, unsigned size, double duration_s,
                int json_out);

#endif
