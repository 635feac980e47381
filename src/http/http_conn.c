/*
 * http_conn.c: one client connection, independent of sockets.
 *
 * Bytes go in with http_conn_feed(); the parser (paused after every
 * message) yields one request at a time into a FIFO. Requests start in
 * order (conn_pump): a write may start while earlier writes are still being
 * applied (the pipeline keeps their order), anything else waits until every
 * earlier request is answered, and a running watch holds back everything
 * behind it. Responses leave in FIFO order (conn_flush) in batches of one
 * write each; a request is recycled once its bytes are written.
 *
 * Limits: at most CN_HTTP_PIPELINE_MAX queued requests, and no new one
 * once those hold CN_HTTP_QUEUED_BYTES_MAX of input (then reading stops and
 * the rest of the input waits in inbuf); request line and headers
 * at most CN_HTTP_HEADER_BYTES_MAX (431); body at most --max-request-bytes
 * (413); malformed input gets 400; all three close the connection. A
 * partial request must complete within CN_HTTP_HEADER_TIMEOUT_MS and an
 * idle connection is closed after CN_HTTP_IDLE_TIMEOUT_MS.
 */
#include "http_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_FREE_REQS_MAX 4096u

enum { DL_NONE = 0, DL_IDLE, DL_HEADER };

struct http_conn {
    struct http_api *api;
    struct http_transport tr;
    void *t;
    struct http_parse *parser;
    struct http_req *head; /* FIFO of received requests */
    struct http_req *tail;
    struct http_req *next_start; /* first request not started */
    struct http_req *cur;        /* being received */
    unsigned queued;
    size_t queued_bytes; /* raw buffers of the queued requests */
    unsigned run_props;  /* started proposals not answered */
    unsigned run_other;  /* started watches not over */
    struct cn_buf inbuf; /* input held while the pipeline is full */
    size_t inbuf_off;
    int read_paused;
    int no_more_input; /* after a fatal request error or an upgrade */
    int writing;
    int closing;
    int pumping;
    int repump;
    int dl_state;
    struct cn_slice iov[SERVER_IOV_MAX];
    char chunk_lines[SERVER_IOV_MAX][20];
};

const char *const http_method_names[HM_COUNT] = {
    "GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "OTHER",
};

static void conn_pump(struct http_conn *c);
static void conn_flush(struct http_conn *c);
static void conn_close(struct http_conn *c);

/* ---- request objects ---- */

struct http_req *http_req_get(struct http_api *api)
{
    struct http_req *r = api->free_reqs;
    if (r != NULL) {
        api->free_reqs = r->next;
        api->free_count--;
    } else {
        r = cn_calloc(1, sizeof(*r));
        if (r == NULL)
            return NULL;
    }
    /* Keep the buffers' memory, reset everything else. */
    struct cn_buf raw = r->raw, path = r->path, scratch = r->scratch;
    struct cn_buf head = r->head, body = r->body;
    struct store_event **evq = r->evq;
    unsigned evq_cap = r->evq_cap;
    memset(r, 0, sizeof(*r));
    r->api = api;
    r->raw = raw;
    r->path = path;
    r->scratch = scratch;
    r->head = head;
    r->body = body;
    r->evq = evq;
    r->evq_cap = evq_cap;
    cn_buf_reset(&r->raw);
    cn_buf_reset(&r->path);
    cn_buf_reset(&r->scratch);
    cn_buf_reset(&r->head);
    cn_buf_reset(&r->body);
    return r;
}

static void req_release(struct http_req *r)
{
    for (unsigned i = 0; i < r->evq_len; i++)
        store_event_unref(r->evq[(r->evq_head + i) % r->evq_cap]);
    r->evq_len = 0;
    if (r->has_res) {
        store_result_close(&r->res);
        r->has_res = 0;
    }
}

static void req_free(struct http_req *r)
{
    cn_buf_close(&r->raw);
    cn_buf_close(&r->path);
    cn_buf_close(&r->scratch);
    cn_buf_close(&r->head);
    cn_buf_close(&r->body);
    cn_free(r->evq);
    cn_free(r);
}

void http_req_put(struct http_api *api, struct http_req *r)
{
    req_release(r);
    /* Large buffers go back to the heap rather than sit in the pool. */
    if (api->free_count >= HTTP_FREE_REQS_MAX || r->raw.cap > 65536 ||
        r->body.cap > 65536 || r->scratch.cap > 65536) {
        req_free(r);
        return;
    }
    r->next = api->free_reqs;
    api->free_reqs = r;
    api->free_count++;
}

/* ---- responses ---- */

static const char *status_text(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 410:
        return "Gone";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Request Entity Too Large";
    case 415:
        return "Unsupported Media Type";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

static const char *date_header(struct http_api *api)
{
    int64_t sec = server_now_ns(api->srv) / 1000000000;
    if (sec != api->date_sec) {
        time_t t = (time_t)sec;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(api->date_hdr, sizeof(api->date_hdr),
                 "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        api->date_sec = sec;
    }
    return api->date_hdr;
}

static const char cors_headers[] =
    "Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
    "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
    "Access-Control-Allow-Origin: *\r\n";

int http_resp_begin(struct http_req *r, int status)
{
    struct http_api *api = r->conn->api;
    r->status = status;
    cn_buf_reset(&r->head);
    int rc = cn_buf_printf(&r->head, "HTTP/1.1 %d %s\r\n", status,
                           status_text(status));
    rc |= cn_buf_append(&r->head, cors_headers, sizeof(cors_headers) - 1);
    rc |= cn_buf_append_cstr(&r->head, date_header(api));
    return rc ? CN_ENOMEM : CN_OK;
}

int http_resp_header_u64(struct http_req *r, const char *name, uint64_t v)
{
    int rc = cn_buf_append_cstr(&r->head, name);
    rc |= cn_buf_append(&r->head, ": ", 2);
    rc |= cn_buf_append_u64(&r->head, v);
    rc |= cn_buf_append(&r->head, "\r\n", 2);
    return rc ? CN_ENOMEM : CN_OK;
}

int http_resp_header_str(struct http_req *r, const char *name, const char *v)
{
    return cn_buf_printf(&r->head, "%s: %s\r\n", name, v);
}

static int resp_connection(struct http_req *r)
{
    if (!r->keep_alive)
        r->close_after = 1;
    if (r->close_after)
        return cn_buf_append_cstr(&r->head, "Connection: close\r\n");
    if (r->http_minor == 0)
        return cn_buf_append_cstr(&r->head, "Connection: keep-alive\r\n");
    return CN_OK;
}

int http_resp_finish(struct http_req *r, const char *ctype, size_t body_len)
{
    int rc = CN_OK;
    if (ctype != NULL)
        rc |= cn_buf_printf(&r->head, "Content-Type: %s\r\n", ctype);
    rc |= cn_buf_append_cstr(&r->head, "Content-Length: ");
    rc |= cn_buf_append_u64(&r->head, body_len);
    rc |= cn_buf_append(&r->head, "\r\n", 2);
    rc |= resp_connection(r);
    rc |= cn_buf_append(&r->head, "\r\n", 2);
    return rc ? CN_ENOMEM : CN_OK;
}

/* The last resort when a response cannot be built: close after a bare
 * 500 from static memory. */
static void resp_oom(struct http_req *r)
{
    static const char oom[] = "HTTP/1.1 500 Internal Server Error\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";
    cn_buf_reset(&r->head);
    cn_buf_reset(&r->body);
    if (r->has_res) {
        store_result_close(&r->res);
        r->has_res = 0;
    }
    r->status = 500;
    r->close_after = 1;
    r->chunked = 0;
    if (cn_buf_append(&r->head, oom, sizeof(oom) - 1) != CN_OK)
        r->head.len = 0; /* nothing to send: the close says it all */
}

void http_resp_simple(struct http_req *r, int status, const char *ctype,
                      const char *body, size_t len)
{
    cn_buf_reset(&r->body);
    int rc = http_resp_begin(r, status);
    rc |= cn_buf_append(&r->body, body, len);
    rc |= http_resp_finish(r, ctype, len);
    if (rc != CN_OK)
        resp_oom(r);
}

void http_resp_etcd_error(struct http_req *r, int ecode, const char *cause,
                          uint64_t index)
{
    http_resp_etcd_error_status(r, 0, ecode, cause, index);
}

void http_resp_etcd_error_status(struct http_req *r, int status, int ecode,
                                 const char *cause, uint64_t index)
{
    struct http_api *api = r->conn->api;
    cn_buf_reset(&r->body);
    int rc = http_resp_begin(r, status ? status : store_ecode_status(ecode));
    rc |= http_resp_header_str(r, "X-Etcd-Cluster-Id", api->cluster_id_hex);
    rc |= http_resp_header_u64(r, "X-Etcd-Index", index);
    rc |= store_error_json(&r->body, ecode, cause, index);
    if (r->body.len == 0 || r->body.data[r->body.len - 1] != '\n')
        rc |= cn_buf_append_char(&r->body, '\n');
    rc |= http_resp_finish(r, "application/json", r->body.len);
    if (rc != CN_OK)
        resp_oom(r);
}

/* ---- the request pipeline ---- */

void http_req_done(struct http_req *r)
{
    struct http_conn *c = r->conn;
    int prev = r->state;
    r->state = REQ_DONE;
    if (c == NULL)
        return;
    if (prev == REQ_RUNNING && r->kind == KIND_PROPOSAL)
        c->run_props--;
    else if ((prev == REQ_RUNNING || prev == REQ_STREAMING) &&
             (r->kind == KIND_WATCH || r->kp.quorum))
        c->run_other--;
    http_metrics_record(c->api, r, server_mono_ns(c->api->srv));
    conn_pump(c);
}

void http_req_stream_event(struct http_req *r, struct store_event *ev)
{
    if (r->evq_len == r->evq_cap) {
        if (r->evq_len >= CN_STORE_STREAM_QUEUE_EVENTS_MAX) {
            /* The client does not keep up: give up on it. */
            store_event_unref(ev);
            if (r->conn != NULL)
                conn_close(r->conn);
            return;
        }
        unsigned cap = r->evq_cap ? r->evq_cap * 2 : 4;
        struct store_event **q = cn_malloc(cap * sizeof(*q));
        if (q == NULL) {
            store_event_unref(ev);
            if (r->conn != NULL)
                conn_close(r->conn);
            return;
        }
        for (unsigned i = 0; i < r->evq_len; i++)
            q[i] = r->evq[(r->evq_head + i) % r->evq_cap];
        cn_free(r->evq);
        r->evq = q;
        r->evq_cap = cap;
        r->evq_head = 0;
    }
    r->evq[(r->evq_head + r->evq_len) % r->evq_cap] = ev;
    r->evq_len++;
    if (r->conn != NULL)
        conn_flush(r->conn);
}

void http_req_kick(struct http_req *r)
{
    if (r->conn != NULL)
        conn_pump(r->conn);
}

void http_req_stream_end(struct http_req *r)
{
    r->watch_over = 1;
    http_req_done(r);
}

static int can_start(const struct http_conn *c, const struct http_req *r)
{
    if (c->run_other > 0)
        return 0;
    return r->kind == KIND_PROPOSAL || c->run_props == 0;
}

static void conn_pump(struct http_conn *c)
{
    if (c->pumping) {
        c->repump = 1;
        return;
    }
    c->pumping = 1;
    do {
        c->repump = 0;
        struct http_req *r;
        while (!c->closing && (r = c->next_start) != NULL) {
            if (r->state == REQ_QUEUED) {
                if (!can_start(c, r))
                    break;
                if (r->kind == KIND_PROPOSAL)
                    c->run_props++;
                else if (r->kind == KIND_WATCH || r->kp.quorum)
                    c->run_other++; /* later requests wait for it */
                r->state = REQ_RUNNING;
                c->next_start = r->next;
                http_req_start(c->api, r);
            } else {
                c->next_start = r->next; /* answered at prepare */
            }
        }
    } while (c->repump);
    c->pumping = 0;
    conn_flush(c);
}

/* ---- writing ---- */

static void on_write_done(void *arg, int status);

static int iov_add(struct http_conn *c, unsigned *n, const void *p, size_t len)
{
    if (len == 0)
        return 1;
    if (*n >= SERVER_IOV_MAX)
        return 0;
    c->iov[*n].base = p;
    c->iov[*n].len = len;
    (*n)++;
    return 1;
}

/* Adds what r can send now. Returns 1 when r is wholly queued (the next
 * request may follow in the same batch). */
static int batch_add(struct http_conn *c, struct http_req *r, unsigned *n)
{
    if (r->state != REQ_DONE && r->state != REQ_STREAMING)
        return 0;
    if (!r->head_queued) {
        if (*n + 2 > SERVER_IOV_MAX)
            return 0;
        iov_add(c, n, r->head.data, r->head.len);
        if (!r->chunked && r->method != HM_HEAD) {
            if (r->has_res)
                iov_add(c, n, r->res.body.data, r->res.body.len);
            else
                iov_add(c, n, r->body.data, r->body.len);
        }
        r->head_queued = 1;
    }
    if (!r->chunked) {
        r->all_queued = 1;
        return 1;
    }
    while (r->evq_sending < r->evq_len && *n + 3 <= SERVER_IOV_MAX) {
        struct store_event *ev =
            r->evq[(r->evq_head + r->evq_sending) % r->evq_cap];
        if (r->chunked == 1) {
            char *line = c->chunk_lines[*n];
            int len = snprintf(line, sizeof(c->chunk_lines[0]), "%zx\r\n",
                               ev->json_len + 1);
            iov_add(c, n, line, (size_t)len);
            iov_add(c, n, ev->json, ev->json_len);
            iov_add(c, n, "\n\r\n", 3);
        } else {
            iov_add(c, n, ev->json, ev->json_len);
            iov_add(c, n, "\n", 1);
        }
        r->evq_sending++;
    }
    if (r->state == REQ_DONE && r->evq_sending == r->evq_len &&
        *n + 1 <= SERVER_IOV_MAX) {
        if (r->chunked == 1)
            iov_add(c, n, "0\r\n\r\n", 5);
        r->end_queued = 1;
        r->all_queued = 1;
        return 1;
    }
    return 0;
}

static void conn_flush(struct http_conn *c)
{
    if (c->writing || c->closing)
        return;
    unsigned n = 0;
    int close_now = 0;
    for (struct http_req *r = c->head; r != NULL; r = r->next) {
        if (!batch_add(c, r, &n))
            break;
        if (r->close_after) {
            close_now = 1;
            break;
        }
    }
    if (n == 0) {
        if (close_now)
            conn_close(c);
        return;
    }
    c->writing = 1;
    if (c->tr.write(c->t, c->iov, n, on_write_done, c) != CN_OK) {
        c->writing = 0;
        conn_close(c);
    }
}

static void update_deadline(struct http_conn *c)
{
    int want = DL_NONE;
    if (c->cur != NULL)
        want = DL_HEADER;
    else if (c->head == NULL)
        want = DL_IDLE;
    if (want == c->dl_state || c->closing)
        return;
    c->dl_state = want;
    unsigned ms = want == DL_HEADER ? CN_HTTP_HEADER_TIMEOUT_MS
                  : want == DL_IDLE ? CN_HTTP_IDLE_TIMEOUT_MS
                                    : 0;
    c->tr.deadline(c->t, ms);
}

static void conn_resume_input(struct http_conn *c);

static void on_write_done(void *arg, int status)
{
    struct http_conn *c = arg;
    c->writing = 0;
    if (status != CN_OK) {
        conn_close(c);
        return;
    }
    while (c->head != NULL) {
        struct http_req *r = c->head;
        if (!r->all_queued) {
            /* A stream: drop the events just written. */
            for (unsigned i = 0; i < r->evq_sending; i++) {
                store_event_unref(r->evq[r->evq_head]);
                r->evq_head = (r->evq_head + 1) % r->evq_cap;
                r->evq_len--;
            }
            r->evq_sending = 0;
            break;
        }
        c->head = r->next;
        if (c->head == NULL)
            c->tail = NULL;
        c->queued--;
        c->queued_bytes -= r->queued_bytes;
        int close_after = r->close_after;
        c->api->counters.requests++;
        http_req_put(c->api, r);
        if (close_after) {
            conn_close(c);
            return;
        }
    }
    conn_resume_input(c);
    if (!c->closing) {
        conn_flush(c);
        update_deadline(c);
    }
}

/* ---- reading ---- */

static struct http_req *cur_req(struct http_conn *c)
{
    return c->cur;
}

static void enqueue(struct http_conn *c, struct http_req *r)
{
    r->next = NULL;
    if (c->tail != NULL)
        c->tail->next = r;
    else
        c->head = r;
    c->tail = r;
    c->queued++;
    r->queued_bytes = r->raw.cap;
    c->queued_bytes += r->queued_bytes;
    if (c->next_start == NULL)
        c->next_start = r;
}

/* A request the parser cannot go on with: answer with plain text (as Go's
 * server does) or with r's prepared answer, and stop reading. */
static void fail_request(struct http_conn *c, int status, int etcd_json)
{
    struct http_req *r = c->cur;
    c->cur = NULL;
    if (r == NULL) {
        r = http_req_get(c->api);
        if (r == NULL) {
            conn_close(c);
            return;
        }
        r->conn = c;
        r->keep_alive = 0;
        r->start_ns = server_mono_ns(c->api->srv);
    }
    r->route = ROUTE_ERROR;
    r->kind = KIND_IMMEDIATE;
    r->close_after = 1;
    if (etcd_json) {
        /* etcd's form error, with the status Go gives an oversize body */
        struct http_api *api = c->api;
        cn_buf_reset(&r->body);
        int rc = http_resp_begin(r, status);
        rc |= http_resp_header_str(r, "X-Etcd-Cluster-Id", api->cluster_id_hex);
        rc |= http_resp_header_u64(r, "X-Etcd-Index", 0);
        rc |= store_error_json(&r->body, STORE_E_INVALID_FORM,
                               "http: request body too large", 0);
        rc |= cn_buf_append_char(&r->body, '\n');
        rc |= http_resp_finish(r, "application/json", r->body.len);
        if (rc != CN_OK)
            resp_oom(r);
    } else {
        char msg[64];
        int len =
            snprintf(msg, sizeof(msg), "%d %s", status, status_text(status));
        static const char fmt[] = "HTTP/1.1 %d %s\r\n"
                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                  "Connection: close\r\n\r\n";
        cn_buf_reset(&r->head);
        cn_buf_reset(&r->body);
        r->status = status;
        if (cn_buf_printf(&r->head, fmt, status, status_text(status)) ||
            cn_buf_append(&r->body, msg, (size_t)len))
            resp_oom(r);
    }
    if (status == 400)
        c->api->counters.bad_requests++;
    r->state = REQ_DONE;
    c->no_more_input = 1;
    enqueue(c, r);
    http_metrics_record(c->api, r, server_mono_ns(c->api->srv));
}

int http_conn_on_begin(struct http_conn *c)
{
    struct http_req *r = http_req_get(c->api);
    if (r == NULL)
        return -1;
    r->conn = c;
    r->state = REQ_RECEIVING;
    r->start_ns = server_mono_ns(c->api->srv);
    r->body_max = c->api->body_bytes_max;
    r->keep_alive = 1;
    c->cur = r;
    update_deadline(c);
    return 0;
}

static int header_bytes(struct http_conn *c, size_t n)
{
    struct http_req *r = cur_req(c);
    r->header_bytes += n;
    if (r->header_bytes > CN_HTTP_HEADER_BYTES_MAX) {
        fail_request(c, 431, 0);
        return -1;
    }
    return 0;
}

int http_conn_on_url(struct http_conn *c, const char *at, size_t n)
{
    struct http_req *r = cur_req(c);
    if (header_bytes(c, n) != 0)
        return -1;
    if (cn_buf_append(&r->raw, at, n) != CN_OK)
        return -1;
    r->url_len += n;
    return 0;
}

int http_conn_on_hfield(struct http_conn *c, const char *at, size_t n)
{
    struct http_req *r = cur_req(c);
    if (header_bytes(c, n) != 0)
        return -1;
    if (r->in_value) {
        r->in_value = 0;
        r->hname_len = 0;
        r->hkeep = 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (r->hname_len < sizeof(r->hname))
            r->hname[r->hname_len] = (char)(at[i] | 0x20);
        r->hname_len++;
    }
    return 0;
}

static int header_kind(const struct http_req *r)
{
    struct cn_slice h = {r->hname, r->hname_len};
    if (r->hname_len > sizeof(r->hname))
        return 0;
    if (cn_slice_eq_cstr(h, "content-type") && !r->has_ctype)
        return 1;
    if (cn_slice_eq_cstr(h, "host"))
        return 2;
    if (cn_slice_eq_cstr(h, "expect"))
        return 3;
    return 0;
}

int http_conn_on_hvalue(struct http_conn *c, const char *at, size_t n)
{
    struct http_req *r = cur_req(c);
    if (header_bytes(c, n) != 0)
        return -1;
    if (!r->in_value) {
        r->in_value = 1;
        r->hkeep = header_kind(r);
        if (r->hkeep == 1) {
            r->has_ctype = 1;
            r->ctype_off = r->raw.len;
        } else if (r->hkeep == 2) {
            r->has_host = 1;
        } else if (r->hkeep == 3) {
            r->expect_off = r->raw.len;
            r->expect_len = 0;
        }
    }
    if (r->hkeep == 1 || r->hkeep == 3) {
        if (cn_buf_append(&r->raw, at, n) != CN_OK)
            return -1;
        if (r->hkeep == 1)
            r->ctype_len += n;
        else
            r->expect_len += n;
    }
    return 0;
}

static void send_continue(struct http_conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    /* Only when nothing else is queued: the 100 must not overtake an
     * earlier response. Otherwise the client sends its body after its own
     * short wait. */
    if (c->writing || c->head != NULL || c->closing)
        return;
    c->iov[0].base = cont;
    c->iov[0].len = sizeof(cont) - 1;
    c->writing = 1;
    if (c->tr.write(c->t, c->iov, 1, on_write_done, c) != CN_OK) {
        c->writing = 0;
        conn_close(c);
    }
}

int http_conn_on_headers(struct http_conn *c, const struct http_head_info *h)
{
    struct http_req *r = cur_req(c);
    r->method = h->method;
    r->http_minor = h->http_major == 1 ? h->http_minor : 0;
    r->keep_alive = h->keep_alive;
    if (h->upgrade)
        r->close_after = 1;
    if (h->http_major != 1) {
        /* Go's server takes HTTP/1.x only; anything else is refused
         * (cmux in front of etcd drops it). */
        fail_request(c, 400, 0);
        return -1;
    }
    if (h->http_minor >= 1 && !r->has_host) {
        fail_request(c, 400, 0);
        return -1;
    }
    if (h->has_length && h->content_length > r->body_max) {
        fail_request(c, 413, 1);
        return -1;
    }
    r->body_off = r->raw.len;
    struct cn_slice ex = {r->raw.data + r->expect_off, r->expect_len};
    if (r->expect_len == 12 && strncasecmp(ex.base, "100-continue", 12) == 0 &&
        (h->chunked || (h->has_length && h->content_length > 0)))
        send_continue(c);
    return 0;
}

int http_conn_on_body(struct http_conn *c, const char *at, size_t n)
{
    struct http_req *r = cur_req(c);
    if (r->raw.len - r->body_off + n > r->body_max) {
        fail_request(c, 413, 1);
        return -1;
    }
    return cn_buf_append(&r->raw, at, n) == CN_OK ? 0 : -1;
}

int http_conn_on_complete(struct http_conn *c)
{
    struct http_req *r = c->cur;
    c->cur = NULL;
    r->state = REQ_QUEUED;
    if (r->close_after)
        c->no_more_input = 1;
    enqueue(c, r);
    http_req_prepare(c->api, r);
    return 0;
}

/* Parses buf until the pipeline is full or the bytes end. Returns the
 * bytes consumed. */
static size_t conn_parse(struct http_conn *c, const char *buf, size_t len)
{
    size_t off = 0;
    while (off < len && !c->no_more_input && !c->closing) {
        if (c->queued >= CN_HTTP_PIPELINE_MAX ||
            (c->queued > 0 && c->queued_bytes >= CN_HTTP_QUEUED_BYTES_MAX))
            break;
        size_t used = 0;
        int st = http_parse_exec(c->parser, buf + off, len - off, &used);
        off += used;
        if (st == HTTP_PARSE_MESSAGE) {
            conn_pump(c);
        } else if (st == HTTP_PARSE_ERROR || st == HTTP_PARSE_TOO_LARGE) {
            fail_request(c, st == HTTP_PARSE_ERROR ? 400 : 431, 0);
            conn_pump(c);
        } else if (st == HTTP_PARSE_STOPPED) {
            if (c->cur != NULL) /* a callback failed without answering */
                fail_request(c, 400, 0);
            c->no_more_input = 1;
            conn_pump(c);
        } else if (used == 0) {
            break;
        }
    }
    if (c->no_more_input)
        return len;
    return off;
}

static void conn_resume_input(struct http_conn *c)
{
    if (c->inbuf.len > c->inbuf_off && !c->closing) {
        size_t used = conn_parse(c, c->inbuf.data + c->inbuf_off,
                                 c->inbuf.len - c->inbuf_off);
        c->inbuf_off += used;
        if (c->inbuf_off < c->inbuf.len)
            return; /* still full */
    }
    c->inbuf_off = 0;
    cn_buf_reset(&c->inbuf);
    if (c->read_paused && !c->closing) {
        c->read_paused = 0;
        c->tr.read(c->t, 1);
    }
}

void http_conn_feed(struct http_conn *c, const char *buf, size_t len)
{
    if (c->closing || c->no_more_input)
        return;
    if (c->inbuf.len > c->inbuf_off) {
        /* Already holding input: keep order. */
        if (cn_buf_append(&c->inbuf, buf, len) != CN_OK)
            conn_close(c);
        return;
    }
    size_t used = conn_parse(c, buf, len);
    if (used < len && !c->closing) {
        if (cn_buf_append(&c->inbuf, buf + used, len - used) != CN_OK) {
            conn_close(c);
            return;
        }
        c->inbuf_off = 0;
        if (!c->read_paused) {
            c->read_paused = 1;
            c->tr.read(c->t, 0);
        }
    }
    update_deadline(c);
}

/* ---- lifecycle ---- */

static void conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->tr.close(c->t);
}

int http_conn_new(struct http_conn **out, struct http_api *api,
                  const struct http_transport *tr, void *t)
{
    struct http_conn *c = cn_calloc(1, sizeof(*c));
    if (c == NULL)
        return CN_ENOMEM;
    if (http_parse_new(&c->parser, c) != CN_OK) {
        cn_free(c);
        return CN_ENOMEM;
    }
    c->api = api;
    c->tr = *tr;
    c->t = t;
    api->counters.conns_open++;
    update_deadline(c);
    *out = c;
    return CN_OK;
}

/* A request whose connection went away: stop its watch; a proposal or a
 * read in flight keeps the request until its callback (conn NULL)
 * recycles it. */
static void orphan(struct http_api *api, struct http_req *r)
{
    r->conn = NULL;
    if (r->kind == KIND_WATCH && r->watch.id != 0) {
        server_unwatch(api->srv, &r->watch);
        api->counters.watches_open--;
    }
    if (r->state == REQ_RUNNING &&
        (r->kind == KIND_PROPOSAL || r->read_pending || r->mop != NULL))
        return;
    http_req_put(api, r);
}

void http_conn_closed(struct http_conn *c)
{
    struct http_api *api = c->api;
    c->closing = 1;
    struct http_req *r = c->head;
    while (r != NULL) {
        struct http_req *next = r->next;
        orphan(api, r);
        r = next;
    }
    if (c->cur != NULL)
        http_req_put(api, c->cur);
    http_parse_free(c->parser);
    cn_buf_close(&c->inbuf);
    api->counters.conns_open--;
    cn_free(c);
}
