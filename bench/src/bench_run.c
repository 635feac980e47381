/*
 * bench_run: the load engine of cairn-bench (see bench.h for the model).
 *
 * Connections are workers (send the workload's requests) or, in the watch
 * workload, watchers (long polls re-armed with waitIndex, or one stream).
 * Each connection has at most one request outstanding.
 *
 *   DOWN --conn_connect--> CONNECTING --on_connect--> IDLE
 *   IDLE --conn_send--> BUSY --on_read: answer complete--> IDLE
 *   any --conn_fail / finish--> CLOSING --on_closed--> DOWN
 *   DOWN --on_tick after retry_at--> CONNECTING (unless finishing)
 *
 * The run goes through phases, advanced by kick():
 *
 *   PRELOAD (PUT every key once; not measured)
 *     -> SYNC (watch: read the store index) -> ARM (watch: start watchers)
 *     -> MEASURE -> DRAIN (watch: wait for watchers to catch up) -> DONE
 *
 * Watch latency: every writer PUT carries its sequence number at the start
 * of its value; a ring indexed by sequence number keeps when it was due and
 * when its answer arrived, and each watcher's event looks its write up
 * there. An event that arrives before the writer has seen the PUT's answer
 * counts as latency 0 (the server sent both at once) and as "early".
 */
#include "bench.h"
#include "bench_http.h"

#include <inttypes.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <string.h>
#include <uv.h>

#define BENCH_RBUF_BYTES (64 * 1024)
#define BENCH_RING (1u << 16)
#define BENCH_RETRY_NS (100 * 1000 * 1000ull)
#define BENCH_ARM_WAIT_NS (3 * 1000 * 1000 * 1000ull)
#define BENCH_DRAIN_WAIT_NS (5 * 1000 * 1000 * 1000ull)
#define BENCH_NO_CONNECT_NS (5 * 1000 * 1000 * 1000ull)
#define NS_PER_S 1000000000.0

enum conn_state {
    CONN_DOWN,
    CONN_CONNECTING,
    CONN_IDLE,
    CONN_BUSY,
    CONN_CLOSING
};

enum op {
    OP_NONE,
    OP_PRELOAD, /* PUT during preload */
    OP_GET,
    OP_QGET,
    OP_PUT,
    OP_TXN_GET, /* first half of a compare-and-swap */
    OP_TXN_PUT, /* PUT ?prevIndex= (or prevExist=false) */
    OP_WATCH,   /* watcher's long poll or stream */
    OP_WPUT,    /* watch writer's PUT */
    OP_SYNC,    /* GET of the prefix to learn the store index */
};

enum phase { PH_PRELOAD, PH_SYNC, PH_ARM, PH_MEASURE, PH_DRAIN, PH_DONE };

struct wslot {
    uint64_t seq;   /* writer sequence number owning the slot */
    uint64_t t_due; /* ns, when the PUT was due */
    uint64_t t_ack; /* ns, when its answer arrived (0: not yet) */
};

struct run;

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct run *run;
    unsigned id;
    int ep; /* endpoint index */
    int is_watcher;
    enum conn_state state;
    enum op op;          /* request outstanding when BUSY */
    uint64_t t_due;      /* ns, latency origin of the request */
    uint64_t t_sent;     /* ns, for the timeout */
    uint64_t key;        /* key number of the request */
    uint64_t seq;        /* OP_WPUT: writer sequence number */
    uint64_t wait_index; /* watcher: next waitIndex */
    uint64_t last_seq;   /* watcher: newest write seen + 1 (0: none) */
    int armed;           /* watcher: headers of its watch arrived */
    int want_body;       /* keep body bytes in body */
    uint64_t retry_at;   /* ns, DOWN: reconnect after this */
    struct bench_http_parser parser;
    struct cn_buf body; /* answer body (watch, txn, sync) */
    struct cn_buf out;  /* request being built */
    char rbuf[BENCH_RBUF_BYTES];
};

struct wreq {
    uv_write_t req;
    struct conn *c;
    size_t len;
    char data[]; /* request bytes, owned by this struct */
};

struct run {
    const struct bench_opts *o;
    struct bench_result *res;
    uv_loop_t loop;
    uv_timer_t tick;
    struct conn **conns; /* owned; watchers first */
    unsigned conn_count;
    unsigned watcher_count;
    unsigned watchers_idle; /* watchers connected but not watching */
    unsigned *idle;         /* stack of idle worker ids */
    unsigned idle_count;
    struct cn_prng prng;
    char *value; /* val_size random letters (owned) */
    enum phase phase;
    uint64_t t_created;      /* ns */
    uint64_t t_phase;        /* ns, start of the current phase */
    uint64_t t_start, t_end; /* ns, measured phase */
    uint64_t deadline;       /* ns, 0: run by total */
    uint64_t limit;          /* requests to issue (0: until deadline) */
    uint64_t issued;         /* measured requests started */
    uint64_t outstanding;    /* worker requests in flight */
    uint64_t key_next;       /* sequential key counter */
    uint64_t preload_next, preload_done;
    int sync_sent;
    uint64_t start_index; /* watch: store index before writes */
    struct wslot *ring;   /* watch: BENCH_RING slots (owned) */
    uint64_t wseq;        /* watch: next writer sequence */
    uint64_t wseq_ok_max; /* watch: highest acked seq + 1 */
    uint64_t t_last_event;
    int ever_connected;
    int finishing;
    int failed; /* CN_E* that ended the run early */
};

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

/* CPU seconds (user + system) this process has used. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void kick(struct run *r);
static void conn_fail(struct conn *c, uint64_t *counter);

/* ---- requests ---- */

static void build_key_path(struct run *r, struct cn_buf *b, uint64_t key)
{
    cn_buf_printf(b, "/v2/keys%s/k%08" PRIu64, r->o->prefix, key);
}

static void build_get(struct conn *c, uint64_t key, int quorum)
{
    struct run *r = c->run;
    cn_buf_reset(&c->out);
    cn_buf_append_cstr(&c->out, "GET ");
    build_key_path(r, &c->out, key);
    cn_buf_printf(&c->out, "%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                  quorum ? "?quorum=true" : "", r->o->endpoints[c->ep].host);
}

/* PUT value=<seq-><value>; extra is appended to the form ("&prevIndex=3"). */
static void build_put(struct conn *c, uint64_t key, const char *extra,
                      int with_seq)
{
    struct run *r = c->run;
    char head[32] = "";
    size_t vlen = r->o->val_size;
    size_t head_len = 0;
    if (with_seq) {
        head_len = (size_t)snprintf(head, sizeof(head), "%" PRIu64 "-", c->seq);
        if (head_len > vlen)
            vlen = head_len;
    }
    size_t body_len = 6 + vlen + strlen(extra);
    cn_buf_reset(&c->out);
    cn_buf_append_cstr(&c->out, "PUT ");
    build_key_path(r, &c->out, key);
    cn_buf_printf(&c->out,
                  " HTTP/1.1\r\nHost: %s\r\nContent-Type: "
                  "application/x-www-form-urlencoded\r\nContent-Length: "
                  "%zu\r\n\r\nvalue=",
                  r->o->endpoints[c->ep].host, body_len);
    cn_buf_append(&c->out, head, head_len);
    cn_buf_append(&c->out, r->value, vlen - head_len);
    cn_buf_append_cstr(&c->out, extra);
}

static void build_watch(struct conn *c)
{
    struct run *r = c->run;
    cn_buf_reset(&c->out);
    cn_buf_printf(&c->out,
                  "GET /v2/keys%s?wait=true&recursive=true&waitIndex=%" PRIu64
                  "%s HTTP/1.1\r\nHost: %s\r\n\r\n",
                  r->o->prefix, c->wait_index,
                  r->o->watch_stream ? "&stream=true" : "",
                  r->o->endpoints[c->ep].host);
}

static void on_write(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    struct conn *c = w->c;
    cn_free(w);
    if (status < 0 && status != UV_ECANCELED && c->state == CONN_BUSY)
        conn_fail(c, &c->run->res->err_closed);
}

/* Sends c->out as request op; c must be IDLE. The bytes go out at once when
 * the socket takes them (uv_try_write); only a rest is queued. A queued
 * write costs libuv an epoll_ctl when it completes, a syscall per request
 * that would otherwise make this client, not the server, the bound. */
static void conn_send(struct conn *c, enum op op, uint64_t t_due)
{
    struct run *r = c->run;
    if (c->out.data == NULL) {
        r->failed = CN_ENOMEM;
        return;
    }
    c->op = op;
    c->t_due = t_due;
    c->t_sent = now_ns();
    c->state = CONN_BUSY;
    c->want_body = op == OP_TXN_GET || op == OP_WATCH || op == OP_SYNC;
    c->armed = 0;
    cn_buf_reset(&c->body);
    bench_http_parser_reset(&c->parser, 0);
    if (!c->is_watcher)
        r->outstanding++;
    else
        r->watchers_idle--;
    uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
    int done = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (done < 0 && done != UV_EAGAIN) {
        conn_fail(c, &r->res->err_closed);
        return;
    }
    size_t sent = done > 0 ? (size_t)done : 0;
    if (sent == c->out.len)
        return;
    struct wreq *w = cn_malloc(sizeof(*w) + c->out.len - sent);
    if (w == NULL) {
        r->failed = CN_ENOMEM;
        return;
    }
    memcpy(w->data, c->out.data + sent, c->out.len - sent);
    w->len = c->out.len - sent;
    w->c = c;
    b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        cn_free(w);
        conn_fail(c, &r->res->err_closed);
    }
}

static uint64_t next_key(struct run *r)
{
    if (r->o->seq_keys)
        return r->o->key_start + r->key_next++ % r->o->key_space;
    return r->o->key_start + cn_prng_below(&r->prng, r->o->key_space);
}

/* Starts the next measured request of the workload on worker c. */
static void issue(struct conn *c, uint64_t t_due)
{
    struct run *r = c->run;
    const struct bench_opts *o = r->o;
    uint64_t key = next_key(r);
    c->key = key;
    r->issued++;
    switch (o->workload) {
    case BENCH_PUT:
        build_put(c, key, "", 0);
        conn_send(c, OP_PUT, t_due);
        break;
    case BENCH_GET:
    case BENCH_QGET:
        build_get(c, key, o->workload == BENCH_QGET);
        conn_send(c, o->workload == BENCH_QGET ? OP_QGET : OP_GET, t_due);
        break;
    case BENCH_MIXED:
        if ((double)(cn_prng_next(&r->prng) >> 11) / 9007199254740992.0 <
            o->read_ratio) {
            build_get(c, key, 0);
            conn_send(c, OP_GET, t_due);
        } else {
            build_put(c, key, "", 0);
            conn_send(c, OP_PUT, t_due);
        }
        break;
    case BENCH_TXN:
        build_get(c, key, 0);
        conn_send(c, OP_TXN_GET, t_due);
        break;
    case BENCH_WATCH: {
        c->seq = r->wseq++;
        struct wslot *s = &r->ring[c->seq % BENCH_RING];
        s->seq = c->seq;
        s->t_due = t_due;
        s->t_ack = 0;
        build_put(c, key, "", 1);
        conn_send(c, OP_WPUT, t_due);
        break;
    }
    }
}

/* ---- answers ---- */

static void count_status(struct run *r, int status)
{
    if (status >= 200 && status < 300)
        r->res->ok++;
    else if (status > 0 && status < BENCH_STATUS_MAX)
        r->res->status[status]++;
    else
        r->res->err_proto++;
}

static void record(struct run *r, uint64_t t_due, uint64_t now)
{
    bench_hist_record(r->res->lat, now > t_due ? now - t_due : 0);
    r->res->completed++;
}

/* One watch event (a JSON object) reached watcher c at now. */
static void watch_event(struct conn *c, const char *json, size_t len,
                        uint64_t now)
{
    struct run *r = c->run;
    uint64_t idx, seq;
    if (bench_http_json_u64(json, len, "modifiedIndex", &idx) == 0)
        c->wait_index = idx + 1;
    if (r->phase < PH_MEASURE)
        return;
    if (bench_http_json_u64(json, len, "value", &seq) != 0 || seq >= r->wseq ||
        r->ring[seq % BENCH_RING].seq != seq) {
        r->res->events_unmatched++;
        return;
    }
    struct wslot *s = &r->ring[seq % BENCH_RING];
    uint64_t lat = 0;
    if (s->t_ack == 0)
        r->res->events_early++;
    else if (now > s->t_ack)
        lat = now - s->t_ack;
    bench_hist_record(r->res->lat, lat);
    bench_hist_record(r->res->lat2, now > s->t_due ? now - s->t_due : 0);
    r->res->completed++;
    r->res->ok++;
    if (seq + 1 > c->last_seq)
        c->last_seq = seq + 1;
    r->t_last_event = now;
}

/* Stream watches: split the body into lines as it arrives. */
static void on_stream_body(struct conn *c, uint64_t now)
{
    char *nl;
    while ((nl = memchr(c->body.data, '\n', c->body.len)) != NULL) {
        size_t n = (size_t)(nl - c->body.data);
        if (n > 0)
            watch_event(c, c->body.data, n, now);
        memmove(c->body.data, nl + 1, c->body.len - n - 1);
        c->body.len -= n + 1;
    }
}

static void on_body(void *ctx, const char *data, size_t len)
{
    struct conn *c = ctx;
    if (c->want_body && cn_buf_append(&c->body, data, len) != 0)
        c->run->failed = CN_ENOMEM;
    if (c->op == OP_WATCH && c->run->o->watch_stream)
        on_stream_body(c, now_ns());
}

static void become_idle(struct conn *c)
{
    struct run *r = c->run;
    c->state = CONN_IDLE;
    c->op = OP_NONE;
    if (!c->is_watcher)
        r->idle[r->idle_count++] = c->id;
    else
        r->watchers_idle++;
}

/* The GET half of a compare-and-swap came back to c (just made idle):
 * send the conditional PUT on the same connection, or end the attempt. */
static void txn_read_answered(struct conn *c, int st, uint64_t now)
{
    struct run *r = c->run;
    uint64_t idx;
    char extra[48];
    if (st == 200 && bench_http_json_u64(c->body.data, c->body.len,
                                         "modifiedIndex", &idx) == 0) {
        snprintf(extra, sizeof(extra), "&prevIndex=%" PRIu64, idx);
    } else if (st == 404) {
        snprintf(extra, sizeof(extra), "&prevExist=false");
    } else {
        count_status(r, st == 200 ? 0 : st);
        record(r, c->t_due, now);
        return;
    }
    r->idle_count--; /* c stays ours: become_idle just pushed it */
    build_put(c, c->key, extra, 0);
    conn_send(c, OP_TXN_PUT, c->t_due);
}

/* A watch writer's PUT was answered: note when, for the watchers. */
static void writer_answered(struct conn *c, int st, uint64_t now)
{
    struct run *r = c->run;
    struct wslot *s = &r->ring[c->seq % BENCH_RING];
    if (s->seq == c->seq)
        s->t_ack = now;
    bench_hist_record(r->res->wlat, now > c->t_due ? now - c->t_due : 0);
    if (st == 200 || st == 201) {
        r->res->writes++;
        if (c->seq + 1 > r->wseq_ok_max)
            r->wseq_ok_max = c->seq + 1;
    } else {
        count_status(r, st);
    }
}

/* The answer to c's request is complete. */
static void on_answer(struct conn *c, uint64_t now)
{
    struct run *r = c->run;
    struct bench_result *res = r->res;
    int st = c->parser.status;
    enum op op = c->op;
    if (!c->is_watcher)
        r->outstanding--;
    become_idle(c);
    switch (op) {
    case OP_PRELOAD:
        r->preload_done++;
        if (st != 200 && st != 201)
            res->preload_errors++;
        break;
    case OP_SYNC:
        r->start_index = c->parser.etcd_index;
        r->phase = PH_ARM;
        r->t_phase = now;
        for (unsigned i = 0; i < r->watcher_count; i++)
            r->conns[i]->wait_index = r->start_index + 1;
        break;
    case OP_GET:
    case OP_QGET:
    case OP_PUT:
        count_status(r, st);
        record(r, c->t_due, now);
        break;
    case OP_TXN_GET:
        txn_read_answered(c, st, now);
        break;
    case OP_TXN_PUT:
        record(r, c->t_due, now);
        if (st == 412) {
            res->cas_conflict++;
        } else {
            count_status(r, st);
            if (st == 200 || st == 201)
                res->cas_ok++;
        }
        break;
    case OP_WPUT:
        writer_answered(c, st, now);
        break;
    case OP_WATCH:
        if (st == 200) {
            if (!r->o->watch_stream)
                watch_event(c, c->body.data, c->body.len, now);
        } else {
            count_status(r, st);
            /* 401 "outdated": history moved on; go on from the present */
            if (c->parser.etcd_index)
                c->wait_index = c->parser.etcd_index + 1;
        }
        break;
    case OP_NONE:
        break;
    }
}

/* ---- connections ---- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct conn *c = h->data;
    buf->base = c->rbuf;
    buf->len = sizeof(c->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct run *r = c->run;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->state == CONN_BUSY && nread == UV_EOF &&
            bench_http_parse_eof(&c->parser) == BENCH_HTTP_COMPLETE) {
            on_answer(c, now_ns());
            conn_fail(c, NULL);
        } else {
            conn_fail(c, c->state == CONN_BUSY ? &r->res->err_closed : NULL);
        }
        kick(r);
        return;
    }
    size_t off = 0;
    uint64_t now = now_ns();
    while (c->state == CONN_BUSY) {
        size_t used = 0;
        int ev = bench_http_parse(&c->parser, buf->base + off,
                                  (size_t)nread - off, &used, on_body, c);
        off += used;
        if (ev < 0) {
            conn_fail(c, &r->res->err_proto);
            break;
        }
        if (ev == BENCH_HTTP_NEED_MORE)
            break;
        if (ev == BENCH_HTTP_HEADERS) {
            if (c->op == OP_WATCH)
                c->armed = 1;
            continue;
        }
        int close_after = c->parser.conn_close;
        on_answer(c, now);
        if (close_after) {
            conn_fail(c, NULL);
            break;
        }
        if (off < (size_t)nread && c->state != CONN_BUSY) {
            conn_fail(c, &r->res->err_proto); /* bytes nobody asked for */
            break;
        }
    }
    if (c->state == CONN_IDLE && off < (size_t)nread)
        conn_fail(c, &r->res->err_proto);
    kick(r);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct run *r = c->run;
    if (c->state != CONN_CONNECTING)
        return; /* closed meanwhile */
    if (status < 0) {
        conn_fail(c, &r->res->err_connect);
        return;
    }
    r->ever_connected = 1;
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) {
        conn_fail(c, &r->res->err_connect);
        return;
    }
    become_idle(c);
    kick(r);
}

static void conn_connect(struct conn *c)
{
    struct run *r = c->run;
    uv_tcp_init(&r->loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    c->state = CONN_CONNECTING;
    const struct sockaddr *sa =
        (const struct sockaddr *)&r->o->endpoints[c->ep].addr;
    if (uv_tcp_connect(&c->creq, &c->tcp, sa, on_connect) < 0)
        conn_fail(c, &r->res->err_connect);
}

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    c->state = CONN_DOWN;
    c->retry_at = now_ns() + BENCH_RETRY_NS;
}

/* Drops c's socket; a request outstanding is lost and counted in *counter
 * (NULL: not an error). The tick reconnects it later. */
static void conn_fail(struct conn *c, uint64_t *counter)
{
    struct run *r = c->run;
    if (c->state == CONN_CLOSING || c->state == CONN_DOWN)
        return;
    if (c->state == CONN_BUSY) {
        if (!c->is_watcher)
            r->outstanding--;
        if (c->op == OP_PRELOAD) {
            r->preload_done++;
            r->res->preload_errors++;
        } else if (c->op == OP_SYNC) {
            r->sync_sent = 0; /* ask again on another connection */
            if (counter != NULL)
                (*counter)++;
        } else if (counter != NULL) {
            (*counter)++;
        }
    } else if (counter != NULL) {
        (*counter)++;
    }
    if (c->state == CONN_IDLE && c->is_watcher)
        r->watchers_idle--;
    if (c->state == CONN_IDLE && !c->is_watcher) {
        for (unsigned i = 0; i < r->idle_count; i++)
            if (r->idle[i] == c->id) {
                r->idle[i] = r->idle[--r->idle_count];
                break;
            }
    }
    c->state = CONN_CLOSING;
    c->op = OP_NONE;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* ---- phases ---- */

static void begin_measure(struct run *r, uint64_t now)
{
    const struct bench_opts *o = r->o;
    r->phase = PH_MEASURE;
    r->t_start = now;
    r->res->client_cpu_s = -cpu_s();
    r->t_phase = now;
    r->deadline = o->total ? 0 : now + (uint64_t)(o->duration_s * NS_PER_S);
    r->limit = o->total;
    if (o->rate > 0 && r->limit == 0)
        r->limit = (uint64_t)(o->rate * o->duration_s);
    if (o->rate > 0 && r->limit == 0)
        r->limit = 1;
}

static void finish(struct run *r)
{
    if (r->finishing)
        return;
    r->finishing = 1;
    if (r->t_start)
        r->res->client_cpu_s += cpu_s();
    r->phase = PH_DONE;
    uv_close((uv_handle_t *)&r->tick, NULL);
    for (unsigned i = 0; i < r->conn_count; i++) {
        struct conn *c = r->conns[i];
        if (c->state != CONN_DOWN && c->state != CONN_CLOSING) {
            c->state = CONN_CLOSING;
            uv_close((uv_handle_t *)&c->tcp, on_closed);
        }
    }
}

static int watchers_caught_up(struct run *r)
{
    for (unsigned i = 0; i < r->watcher_count; i++)
        if (r->conns[i]->last_seq < r->wseq_ok_max)
            return 0;
    return 1;
}

static void end_measure(struct run *r, uint64_t now)
{
    r->t_end = now;
    if (r->o->workload == BENCH_WATCH) {
        r->phase = PH_DRAIN;
        r->t_phase = now;
    } else {
        finish(r);
    }
}

/* May a closed-loop worker start another measured request now? */
static int may_issue(struct run *r, uint64_t now)
{
    if (r->limit)
        return r->issued < r->limit;
    return now < r->deadline;
}

static void kick_measure(struct run *r, uint64_t now)
{
    const struct bench_opts *o = r->o;
    if (o->rate > 0) {
        /* request k is due at t_start + k / rate */
        uint64_t due =
            (uint64_t)((double)(now - r->t_start) * o->rate / NS_PER_S) + 1;
        if (due > r->limit)
            due = r->limit;
        while (r->idle_count > 0 && r->issued < due) {
            struct conn *c = r->conns[r->idle[--r->idle_count]];
            uint64_t t_due =
                r->t_start + (uint64_t)((double)r->issued * NS_PER_S / o->rate);
            issue(c, t_due);
        }
        if (r->issued >= r->limit && r->outstanding == 0)
            end_measure(r, now);
        return;
    }
    while (r->idle_count > 0 && may_issue(r, now)) {
        struct conn *c = r->conns[r->idle[--r->idle_count]];
        issue(c, now_ns());
    }
    if (!may_issue(r, now) && r->outstanding == 0)
        end_measure(r, now);
}

/* Hands work to idle connections according to the phase. */
static void kick(struct run *r)
{
    const struct bench_opts *o = r->o;
    uint64_t now = now_ns();
    if (r->finishing)
        return;
    if (r->failed) {
        finish(r);
        return;
    }
    if (r->phase == PH_PRELOAD) {
        while (r->idle_count > 0 && r->preload_next < o->key_space) {
            struct conn *c = r->conns[r->idle[--r->idle_count]];
            c->key = o->key_start + r->preload_next++;
            build_put(c, c->key, "", 0);
            conn_send(c, OP_PRELOAD, now);
        }
        if (r->preload_done < o->key_space)
            return;
        if (o->workload == BENCH_WATCH) {
            r->phase = PH_SYNC;
        } else {
            begin_measure(r, now);
        }
    }
    if (r->phase == PH_SYNC) {
        if (!r->sync_sent && r->idle_count > 0) {
            struct conn *c = r->conns[r->idle[--r->idle_count]];
            cn_buf_reset(&c->out);
            cn_buf_printf(&c->out, "GET /v2/keys/ HTTP/1.1\r\nHost: %s\r\n\r\n",
                          o->endpoints[c->ep].host);
            conn_send(c, OP_SYNC, now);
            r->sync_sent = 1;
        }
        return;
    }
    if (r->phase >= PH_ARM && r->watchers_idle > 0) {
        for (unsigned i = 0; i < r->watcher_count; i++) {
            struct conn *c = r->conns[i];
            if (c->state == CONN_IDLE) {
                build_watch(c);
                conn_send(c, OP_WATCH, now);
            }
        }
    }
    if (r->phase == PH_ARM) {
        unsigned armed = 0;
        for (unsigned i = 0; i < r->watcher_count; i++)
            armed += r->conns[i]->armed;
        if (armed < r->watcher_count && now - r->t_phase < BENCH_ARM_WAIT_NS)
            return;
        begin_measure(r, now);
    }
    if (r->phase == PH_MEASURE)
        kick_measure(r, now);
    if (r->phase == PH_DRAIN &&
        (watchers_caught_up(r) || now - r->t_phase > BENCH_DRAIN_WAIT_NS)) {
        if (r->t_last_event > r->t_end)
            r->t_end = r->t_last_event;
        finish(r);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct run *r = t->data;
    uint64_t now = now_ns();
    uint64_t timeout_ns = (uint64_t)(r->o->timeout_s * NS_PER_S);
    if (!r->ever_connected && now - r->t_created > BENCH_NO_CONNECT_NS) {
        r->failed = CN_ECONNREFUSED;
        finish(r);
        return;
    }
    for (unsigned i = 0; i < r->conn_count; i++) {
        struct conn *c = r->conns[i];
        if (c->state == CONN_DOWN && now >= c->retry_at)
            conn_connect(c);
        else if (c->state == CONN_BUSY && c->op != OP_WATCH &&
                 now - c->t_sent > timeout_ns)
            conn_fail(c, &r->res->err_timeout);
    }
    kick(r);
}

/* ---- setup ---- */

static int run_init(struct run *r, const struct bench_opts *o,
                    struct bench_result *res)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->res = res;
    cn_prng_seed(&r->prng, o->seed);
    r->watcher_count = o->workload == BENCH_WATCH ? o->conns : 0;
    r->conn_count =
        o->workload == BENCH_WATCH ? o->conns + o->writers : o->conns;
    r->conns = cn_calloc(r->conn_count, sizeof(*r->conns));
    r->idle = cn_calloc(r->conn_count, sizeof(*r->idle));
    r->value = cn_malloc(o->val_size + 1);
    if (o->workload == BENCH_WATCH)
        r->ring = cn_calloc(BENCH_RING, sizeof(*r->ring));
    if (r->conns == NULL || r->idle == NULL || r->value == NULL ||
        (o->workload == BENCH_WATCH && r->ring == NULL))
        return CN_ENOMEM;
    for (unsigned i = 0; i < o->val_size; i++)
        r->value[i] = (char)('a' + cn_prng_below(&r->prng, 26));
    r->value[o->val_size] = '\0';
    for (unsigned i = 0; i < r->conn_count; i++) {
        struct conn *c = cn_calloc(1, sizeof(*c));
        if (c == NULL)
            return CN_ENOMEM;
        r->conns[i] = c;
        c->run = r;
        c->id = i;
        c->ep = (int)(i % (unsigned)o->endpoint_count);
        c->is_watcher = i < r->watcher_count;
        c->state = CONN_DOWN;
    }
    return 0;
}

static void run_close(struct run *r)
{
    if (r->conns != NULL) {
        for (unsigned i = 0; i < r->conn_count; i++) {
            if (r->conns[i] == NULL)
                continue;
            cn_buf_close(&r->conns[i]->body);
            cn_buf_close(&r->conns[i]->out);
            cn_free(r->conns[i]);
        }
    }
    cn_free(r->conns);
    cn_free(r->idle);
    cn_free(r->value);
    cn_free(r->ring);
}

void bench_result_close(struct bench_result *res)
{
    cn_free(res->lat);
    cn_free(res->lat2);
    cn_free(res->wlat);
    memset(res, 0, sizeof(*res));
}

static int result_init(struct bench_result *res)
{
    memset(res, 0, sizeof(*res));
    res->lat = cn_malloc(sizeof(*res->lat));
    res->lat2 = cn_malloc(sizeof(*res->lat2));
    res->wlat = cn_malloc(sizeof(*res->wlat));
    if (res->lat == NULL || res->lat2 == NULL || res->wlat == NULL) {
        bench_result_close(res);
        return CN_ENOMEM;
    }
    bench_hist_init(res->lat);
    bench_hist_init(res->lat2);
    bench_hist_init(res->wlat);
    return 0;
}

int bench_run(const struct bench_opts *o, struct bench_result *res)
{
    struct run *r = cn_malloc(sizeof(*r));
    int rc = CN_ENOMEM;
    if (r == NULL)
        goto err;
    rc = result_init(res);
    if (rc != 0)
        goto err_after_alloc;
    rc = run_init(r, o, res);
    if (rc != 0)
        goto err_after_result;
    rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        rc = CN_EIO;
        goto err_after_result;
    }
    uv_timer_init(&r->loop, &r->tick);
    r->tick.data = r;
    uint64_t tick_ms = o->rate > 0 ? 1 : 20;
    uv_timer_start(&r->tick, on_tick, tick_ms, tick_ms);
    int preload = o->preload;
    if (preload < 0)
        preload = o->workload == BENCH_GET || o->workload == BENCH_QGET ||
                  o->workload == BENCH_MIXED || o->workload == BENCH_TXN;
    r->t_created = now_ns();
    if (preload)
        r->phase = PH_PRELOAD;
    else
        r->phase = o->workload == BENCH_WATCH ? PH_SYNC : PH_MEASURE;
    if (r->phase == PH_MEASURE)
        begin_measure(r, r->t_created);
    for (unsigned i = 0; i < r->conn_count; i++)
        conn_connect(r->conns[i]);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    if (r->t_end == 0)
        r->t_end = now_ns();
    res->elapsed_s = r->t_start && r->t_end > r->t_start
                         ? (double)(r->t_end - r->t_start) / NS_PER_S
                         : 0.0;
    res->events_expected = res->writes * r->watcher_count;
    rc = r->failed;
    run_close(r);
    cn_free(r);
    return rc;

err_after_result:
    run_close(r);
    bench_result_close(res);
err_after_alloc:
    cn_free(r);
err:
    return rc;
}

uint64_t bench_result_errors(const struct bench_result *res)
{
    uint64_t n =
        res->err_connect + res->err_closed + res->err_timeout + res->err_proto;
    for (int i = 0; i < BENCH_STATUS_MAX; i++)
        n += res->status[i];
    return n;
}
