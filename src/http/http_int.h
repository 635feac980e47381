/*
 * http_int: private to src/http. The request object, the connection, the
 * parser wrapper (http_parse.c, the only user of http_parser.h), parameter
 * and path helpers (http_params.c, pure), the handlers (http_keys.c,
 * http_misc.c) and the JSON wrapper (http_json.c, the only user of
 * jansson).
 *
 * A request's life (struct http_req, state field):
 *
 *   RECEIVING --message complete, http_req_prepare--> QUEUED
 *   QUEUED --conn_pump: http_req_start--> RUNNING (proposal, watch) or DONE
 *   RUNNING --proposal callback--> DONE
 *   RUNNING --watch started--> STREAMING --last event / error--> DONE
 *   DONE --response written (conn_flush, on_write_done)--> recycled
 */
#ifndef CN_HTTP_INT_H
#define CN_HTTP_INT_H

#include "http.h"

/* ---- methods ---- */
enum http_verb {
    HM_GET = 0,
    HM_HEAD,
    HM_PUT,
    HM_POST,
    HM_DELETE,
    HM_OPTIONS,
    HM_OTHER,
    HM_COUNT,
};
extern const char *const http_method_names[HM_COUNT];

/* ---- parser wrapper (http_parse.c) ---- */

struct http_parse; /* opaque: http_parser + settings */

/* What on_headers_complete learns. */
struct http_head_info {
    int method; /* enum http_verb */
    int http_major;
    int http_minor;
    int keep_alive; /* per HTTP version and Connection header */
    int has_length; /* Content-Length given */
    uint64_t content_length;
    int chunked; /* Transfer-Encoding: chunked */
    int upgrade;
};

enum http_parse_status {
    HTTP_PARSE_MORE = 0,  /* all bytes consumed, message incomplete */
    HTTP_PARSE_MESSAGE,   /* a message completed; *used bytes consumed */
    HTTP_PARSE_STOPPED,   /* a callback stopped parsing (it answered) */
    HTTP_PARSE_ERROR,     /* malformed input */
    HTTP_PARSE_TOO_LARGE, /* request line + headers over the limit */
};

int http_parse_new(struct http_parse **out, struct http_conn *c);
void http_parse_free(struct http_parse *p);
/* Parses until a message completes or the bytes end. */
int http_parse_exec(struct http_parse *p, const char *buf, size_t len,
                    size_t *used);
/* Splits a request target into path and query (slices into url). CN_OK or
 * CN_EINVAL. */
int http_parse_url(const char *url, size_t len, struct cn_slice *path,
                   struct cn_slice *query);

/* Callbacks from the parser into the connection (http_conn.c). A non-zero
 * return stops parsing (HTTP_PARSE_STOPPED). */
int http_conn_on_begin(struct http_conn *c);
int http_conn_on_url(struct http_conn *c, const char *at, size_t n);
int http_conn_on_hfield(struct http_conn *c, const char *at, size_t n);
int http_conn_on_hvalue(struct http_conn *c, const char *at, size_t n);
int http_conn_on_headers(struct http_conn *c, const struct http_head_info *h);
int http_conn_on_body(struct http_conn *c, const char *at, size_t n);
int http_conn_on_complete(struct http_conn *c);

/* ---- parameters and paths (http_params.c, pure) ---- */

enum http_param {
    HP_VALUE = 0,
    HP_TTL,
    HP_DIR,
    HP_PREV_EXIST,
    HP_PREV_VALUE,
    HP_PREV_INDEX,
    HP_RECURSIVE,
    HP_SORTED,
    HP_WAIT,
    HP_WAIT_INDEX,
    HP_QUORUM,
    HP_STREAM,
    HP_REFRESH,
    HP_NO_VALUE_ON_SUCCESS,
    HP_COUNT,
};

/* The first value of each known parameter: the body's first, else the
 * query's (Go's Request.Form order). */
struct http_form {
    struct cn_slice v[HP_COUNT];
    unsigned char present[HP_COUNT];
};

#define HTTP_CAUSE_SIZE 96

/* Parses an x-www-form-urlencoded body (if body.base != NULL) then the
 * query into f, decoding into scratch (reset by the caller; it is reserved
 * here so slices into it stay valid). Returns CN_OK, CN_ENOMEM, or
 * CN_EINVAL with Go's message in cause ("invalid URL escape \"%zz\""). */
int http_form_parse(struct cn_slice body, struct cn_slice query,
                    struct http_form *f, struct cn_buf *scratch,
                    char cause[HTTP_CAUSE_SIZE]);

/* A keys request after validation (etcd's parseKeyRequest). */
struct http_key_params {
    struct cn_slice value; /* "" when absent */
    int64_t ttl_s;         /* -1: none */
    int dir, recursive, sorted, wait, quorum, stream, no_value;
    int prev_exist;             /* -1 unset, 0, 1 */
    struct cn_slice prev_value; /* len 0: none */
    uint64_t prev_index;
    uint64_t wait_index;
    int refresh;
};

/* Validates f for method (enum http_verb). Returns 0, or an etcd error
 * code (201-212) with *cause a static string. */
int http_key_params_parse(const struct http_form *f, int method,
                          struct http_key_params *kp, const char **cause);

/* strconv.ParseBool / ParseUint(s, 10, 64). 1 ok, 0 invalid. */
int http_parse_bool(struct cn_slice s, int *out);
int http_parse_u64(struct cn_slice s, uint64_t *out);

/* Percent-decodes a URL path into out ('+' stays '+'). CN_OK, CN_ENOMEM,
 * CN_EINVAL on a bad escape. */
int http_path_decode(struct cn_slice in, struct cn_buf *out);
/* Go's ServeMux cleanPath: a rooted path without //, /./, /../; a trailing
 * slash is kept. Appends to out. CN_OK or CN_ENOMEM. */
int http_path_clean(struct cn_slice p, struct cn_buf *out);
/* Appends p escaped for a URL path (as Go's url.URL.EscapedPath). */
int http_path_escape(struct cn_slice p, struct cn_buf *out);

/* ---- requests and connections (http_conn.c) ---- */

enum http_req_state {
    REQ_RECEIVING = 0,
    REQ_QUEUED,
    REQ_RUNNING,
    REQ_STREAMING,
    REQ_DONE,
};

enum http_req_kind {
    KIND_IMMEDIATE = 0, /* answered at start, synchronously */
    KIND_PROPOSAL,      /* a write through server_propose */
    KIND_WATCH,         /* a long poll or a stream */
};

enum http_route {
    ROUTE_NONE = 0,
    ROUTE_KEYS,
    ROUTE_VERSION,
    ROUTE_HEALTH,
    ROUTE_METRICS,
    ROUTE_MACHINES,
    ROUTE_MEMBERS,
    ROUTE_STATS_SELF,
    ROUTE_STATS_STORE,
    ROUTE_STATS_LEADER,
    ROUTE_OPTIONS,
    ROUTE_REDIRECT,
    ROUTE_ERROR, /* answered while parsing (400, 413, 431) */
};

struct http_req {
    struct http_req *next;  /* the connection's FIFO */
    struct http_conn *conn; /* NULL once the connection is gone */
    struct http_api *api;
    int state; /* enum http_req_state */
    int kind;  /* enum http_req_kind */
    int route; /* enum http_route */
    /* request */
    int method;
    int http_minor;
    int keep_alive;
    int expect_continue;
    struct cn_buf raw; /* URL, then kept header values, then body */
    size_t url_len;
    size_t ctype_off, ctype_len;
    int has_ctype;
    int has_host;
    size_t body_off;     /* the body is raw[body_off..raw.len) */
    size_t queued_bytes; /* counted in the connection's queued_bytes */
    uint64_t body_max;
    char hname[24]; /* header name being read (lower case) */
    size_t hname_len;
    int hkeep; /* current header value is kept: 1 ctype,
                * 2 host, 3 expect */
    int in_value;
    size_t header_bytes;
    size_t expect_off, expect_len;
    /* parsed */
    struct cn_buf path;    /* decoded, then the store key */
    struct cn_buf scratch; /* decoded parameters */
    struct http_key_params kp;
    struct cn_slice query; /* raw query (into raw) */
    struct cn_slice key;   /* store key (into path) */
    int64_t start_ns;
    /* response */
    int status;
    int close_after;         /* close the connection after this one */
    struct cn_buf head;      /* status line and headers */
    struct cn_buf body;      /* a body we built */
    struct store_result res; /* a body from the store */
    int has_res;
    int chunked; /* watch: chunked body follows the head */
    /* writing */
    int head_queued; /* head (and body) in a write batch */
    int all_queued;  /* the whole response is in a batch */
    int continue_sent;
    /* async */
    struct server_proposal prop;
    struct server_watch watch;
    struct server_read read;    /* quorum GET, watch: ReadIndex first */
    int read_pending;           /* read in flight: keep r until its cb */
    struct http_member_op *mop; /* member change in flight (owned) */
    struct store_event **evq;   /* events waiting to be written */
    unsigned evq_cap, evq_head, evq_len;
    unsigned evq_sending; /* at evq_head, in the write in flight */
    int watch_over;       /* no more events will come */
    int end_queued;       /* the final chunk is in a batch */
};

struct http_api {
    struct server *srv;
    uint64_t body_bytes_max;
    struct http_req *free_reqs; /* recycled requests */
    unsigned free_count;
    struct http_counters counters;
    /* metrics: requests by method and status class */
    uint64_t req_count[HM_COUNT][6]; /* [method][status / 100] */
    uint64_t latency_buckets[16];    /* see http_misc.c */
    uint64_t latency_count;
    double latency_sum_s;
    char cluster_id_hex[17];
    char member_id_hex[17];
    int64_t date_sec; /* cached Date header */
    char date_hdr[48];
};

/* Returns a request from the free list or the heap; NULL on ENOMEM. */
struct http_req *http_req_get(struct http_api *api);
/* Releases what the request holds and recycles it. */
void http_req_put(struct http_api *api, struct http_req *r);

/* Response building (http_conn.c). begin writes the status line and the
 * common headers; finish adds Content-Type, Content-Length (of the body
 * that will be sent), Connection and the blank line. */
int http_resp_begin(struct http_req *r, int status);
int http_resp_header_u64(struct http_req *r, const char *name, uint64_t v);
int http_resp_header_str(struct http_req *r, const char *name, const char *v);
int http_resp_finish(struct http_req *r, const char *ctype, size_t body_len);
/* A complete answer with our own body: status, content type, body. */
void http_resp_simple(struct http_req *r, int status, const char *ctype,
                      const char *body, size_t len);
/* A complete etcd error answer (JSON, X-Etcd-Index, X-Etcd-Cluster-Id). */
void http_resp_etcd_error(struct http_req *r, int ecode, const char *cause,
                          uint64_t index);
/* The same with an explicit HTTP status (status 0: the code's own). */
void http_resp_etcd_error_status(struct http_req *r, int status, int ecode,
                                 const char *cause, uint64_t index);
/* An answer built in r->head/r->body/r->res is complete: mark it DONE and
 * let the connection write it. Safe from callbacks. */
void http_req_done(struct http_req *r);
/* A watch's event arrived (ref taken) / the watch ended. */
void http_req_stream_event(struct http_req *r, struct store_event *ev);
/* A request started later than its turn (a watch after its ReadIndex)
 * has something to send: write it. */
void http_req_kick(struct http_req *r);
void http_req_stream_end(struct http_req *r);

/* ---- handlers (http_keys.c, http_misc.c) ---- */

/* Routes and validates a complete request: sets route and kind, or answers
 * it (DONE) when it is invalid. Never touches the store. */
void http_req_prepare(struct http_api *api, struct http_req *r);
/* Runs a prepared request: answers it, proposes it or starts its watch. */
void http_req_start(struct http_api *api, struct http_req *r);
/* The keys handler parts. */
void http_keys_prepare(struct http_api *api, struct http_req *r);
void http_keys_start(struct http_api *api, struct http_req *r);
/* The other endpoints. */
void http_misc_start(struct http_api *api, struct http_req *r);
/* Records a finished request in the metrics. */
void http_metrics_record(struct http_api *api, const struct http_req *r,
                         int64_t end_ns);

/* ---- JSON (http_json.c, the only user of jansson) ---- */

/* Parses {"peerURLs":["http://..."]}: CN_OK with the URL count, or
 * CN_EINVAL with a message in err. */
/* Parses {"peerURLs":[...]} into urls[0..cap) (each < 256 bytes).
 * CN_OK with *count, or CN_EINVAL with err. */
int http_json_peer_urls(const char *body, size_t len, char (*urls)[256],
                        int cap, int *count, char err[HTTP_CAUSE_SIZE]);

#endif
