/*
 * http_keys.c: the /v2/keys handler (etcd's keysHandler).
 *
 * prepare (pure, at message complete): method check (405), form parsing
 * (210), parameter validation (201-212), the store key, and the kind:
 * GET/HEAD read, GET wait=true watch, PUT/POST/DELETE proposal.
 * start: reads answer at once from the store; writes go through
 * server_propose() and answer in on_proposed(); watches send their headers
 * at once and each event as a chunk (on_watch_event).
 */
#include "http_int.h"

#include <string.h>
#include <strings.h>

#define KEYS_PREFIX "/v2/keys"

static void prepared_answer(struct http_api *api, struct http_req *r)
{
    r->kind = KIND_IMMEDIATE;
    r->state = REQ_DONE;
    http_metrics_record(api, r, server_mono_ns(api->srv));
}

/* Go parses a form body only for POST, PUT (and PATCH) with this type. */
static int body_is_form(const struct http_req *r)
{
    if ((r->method != HM_PUT && r->method != HM_POST) || !r->has_ctype)
        return 0;
    const char *ct = r->raw.data + r->ctype_off;
    size_t n = r->ctype_len;
    const char *semi = memchr(ct, ';', n);
    if (semi != NULL)
        n = (size_t)(semi - ct);
    while (n > 0 && (*ct == ' ' || *ct == '\t')) {
        ct++;
        n--;
    }
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    static const char form[] = "application/x-www-form-urlencoded";
    return n == sizeof(form) - 1 && strncasecmp(ct, form, n) == 0;
}

void http_keys_prepare(struct http_api *api, struct http_req *r)
{
    if (r->method != HM_GET && r->method != HM_HEAD && r->method != HM_PUT &&
        r->method != HM_POST && r->method != HM_DELETE) {
        static const char msg[] = "Method Not Allowed\n";
        http_resp_begin(r, 405);
        http_resp_header_str(r, "Allow", "HEAD,GET,PUT,POST,DELETE");
        http_resp_header_str(r, "X-Content-Type-Options", "nosniff");
        cn_buf_reset(&r->body);
        if (cn_buf_append(&r->body, msg, sizeof(msg) - 1) != CN_OK ||
            http_resp_finish(r, "text/plain; charset=utf-8", r->body.len))
            http_resp_simple(r, 500, NULL, "", 0);
        prepared_answer(api, r);
        return;
    }
    struct cn_slice body = {NULL, 0};
    if (body_is_form(r)) {
        body.base = r->raw.data + r->body_off;
        body.len = r->raw.len - r->body_off;
    }
    struct http_form form;
    char cause[HTTP_CAUSE_SIZE];
    int rc = http_form_parse(body, r->query, &form, &r->scratch, cause);
    if (rc == CN_EINVAL) {
        http_resp_etcd_error(r, STORE_E_INVALID_FORM, cause, 0);
        prepared_answer(api, r);
        return;
    }
    if (rc != CN_OK) {
        http_resp_etcd_error(r, STORE_E_RAFT_INTERNAL, "out of memory", 0);
        prepared_answer(api, r);
        return;
    }
    const char *pcause = NULL;
    int ecode = http_key_params_parse(&form, r->method, &r->kp, &pcause);
    if (ecode != 0) {
        http_resp_etcd_error(r, ecode, pcause, 0);
        prepared_answer(api, r);
        return;
    }
    /* The key: the clean path after the prefix, no trailing slash. */
    const char *k = r->path.data + strlen(KEYS_PREFIX);
    size_t klen = r->path.len - strlen(KEYS_PREFIX);
    while (klen > 1 && k[klen - 1] == '/')
        klen--;
    if (klen == 0 || (klen == 1 && k[0] == '/')) {
        k = "/";
        klen = 1;
    }
    r->key.base = k;
    r->key.len = klen;
    if (r->method == HM_PUT || r->method == HM_POST || r->method == HM_DELETE)
        r->kind = KIND_PROPOSAL;
    else if (r->kp.wait)
        r->kind = KIND_WATCH;
    else
        r->kind = KIND_IMMEDIATE;
}

/* Ends a store body with etcd's newline. */
static int body_newline(struct cn_buf *b)
{
    if (b->len > 0 && b->data[b->len - 1] == '\n')
        return CN_OK;
    return cn_buf_append_char(b, '\n');
}

/* The answer to a read or a write from the store result in r->res. */
static void answer_result(struct http_req *r, uint64_t raft_index,
                          uint64_t raft_term)
{
    struct http_api *api = r->api;
    struct store_result *res = &r->res;
    int rc = body_newline(&res->body);
    rc |= http_resp_begin(r, res->status);
    rc |= http_resp_header_str(r, "X-Etcd-Cluster-Id", api->cluster_id_hex);
    rc |= http_resp_header_u64(r, "X-Etcd-Index", res->index);
    if (res->ecode == 0) {
        rc |= http_resp_header_u64(r, "X-Raft-Index", raft_index);
        rc |= http_resp_header_u64(r, "X-Raft-Term", raft_term);
        int a = res->action;
        if (r->kp.no_value &&
            (a == STORE_ACT_SET || a == STORE_ACT_CAS ||
             a == STORE_ACT_CREATE || a == STORE_ACT_UPDATE)) {
            /* noValueOnSuccess: only the action. */
            cn_buf_reset(&res->body);
            rc |= cn_buf_printf(&res->body, "{\"action\":\"%s\"}\n",
                                store_action_name(a));
        }
    }
    rc |= http_resp_finish(r, "application/json", res->body.len);
    if (rc != CN_OK)
        http_resp_etcd_error(r, STORE_E_RAFT_INTERNAL, "out of memory", 0);
}

static void answer_internal(struct http_req *r, int err)
{
    if (r->has_res) {
        store_result_close(&r->res);
        r->has_res = 0;
    }
    const char *refusal = server_write_refusal(r->api->srv);
    if (err == CN_ESTOPPED && refusal != NULL) {
        /* The log failed: the member takes no writes (sticky). 503 tells
         * clients to go elsewhere; the body is etcd's error 300. */
        http_resp_etcd_error_status(r, 503, STORE_E_RAFT_INTERNAL, refusal, 0);
        return;
    }
    /* etcd's causes for the same situations. */
    const char *cause = err == CN_ETIMEDOUT    ? "etcdserver: request timed out"
                        : err == CN_ESHUTDOWN  ? "etcdserver: server stopped"
                        : err == CN_ENOTLEADER ? "etcdserver: leader changed"
                                               : cn_strerror(err);
    http_resp_etcd_error(r, STORE_E_RAFT_INTERNAL, cause, 0);
}

static void on_proposed(struct server_proposal *p)
{
    struct http_req *r = p->arg;
    if (r->conn == NULL) {
        /* The client went away while the write was applied. */
        store_result_close(&p->res);
        http_req_put(r->api, r);
        return;
    }
    r->res = p->res;
    memset(&p->res, 0, sizeof(p->res));
    r->has_res = 1;
    if (p->rc != CN_OK)
        answer_internal(r, p->rc);
    else
        answer_result(r, p->raft_index, p->raft_term);
    http_req_done(r);
}

static void start_proposal(struct http_api *api, struct http_req *r)
{
    struct server_proposal *p = &r->prop;
    memset(p, 0, sizeof(*p));
    struct store_cmd *cmd = &p->cmd;
    cmd->method = r->method == HM_PUT    ? STORE_CMD_PUT
                  : r->method == HM_POST ? STORE_CMD_POST
                                         : STORE_CMD_DELETE;
    cmd->path = r->key;
    cmd->value = r->kp.value;
    cmd->dir = r->kp.dir;
    cmd->prev_exist = r->kp.prev_exist;
    cmd->prev_value = r->kp.prev_value;
    cmd->prev_index = r->kp.prev_index;
    cmd->recursive = r->kp.recursive;
    cmd->refresh = r->kp.refresh;
    p->ttl_s = r->method == HM_DELETE ? -1 : r->kp.ttl_s;
    p->cb = on_proposed;
    p->arg = r;
    int rc = server_propose(api->srv, p);
    if (rc != CN_OK) {
        answer_internal(r, rc);
        http_req_done(r);
    }
}

static void on_watch_event(struct server_watch *w, struct store_event *ev,
                           int last)
{
    struct http_req *r = w->arg;
    if (ev != NULL)
        http_req_stream_event(r, ev);
    if (last || !r->kp.stream) {
        /* A long poll ends with its first event. */
        if (!last)
            server_unwatch(r->api->srv, w);
        r->api->counters.watches_open--;
        http_req_stream_end(r);
    }
}

static void start_watch_now(struct http_api *api, struct http_req *r)
{
    r->watch.cb = on_watch_event;
    r->watch.arg = r;
    memset(&r->res, 0, sizeof(r->res));
    int rc = server_watch(api->srv, &r->watch, r->key, r->kp.recursive,
                          r->kp.stream, r->kp.wait_index, &r->res);
    if (rc != CN_OK) {
        answer_internal(r, rc);
        http_req_done(r);
        return;
    }
    if (r->watch.id == 0) {
        /* An answer instead of a watch (event index cleared). */
        r->has_res = 1;
        answer_result(r, server_raft_index(api->srv),
                      server_raft_term(api->srv));
        http_req_done(r);
        return;
    }
    api->counters.watches_open++;
    r->chunked = r->http_minor >= 1 ? 1 : 2;
    if (r->chunked == 2 || !r->keep_alive)
        r->close_after = 1; /* HTTP/1.0: the close ends the body; or the
                             * client asked for Connection: close */
    int hrc = http_resp_begin(r, 200);
    hrc |= http_resp_header_str(r, "X-Etcd-Cluster-Id", api->cluster_id_hex);
    hrc |= http_resp_header_u64(r, "X-Etcd-Index", r->watch.start_index);
    hrc |= http_resp_header_u64(r, "X-Raft-Index", server_raft_index(api->srv));
    hrc |= http_resp_header_u64(r, "X-Raft-Term", server_raft_term(api->srv));
    hrc |= http_resp_header_str(r, "Content-Type", "application/json");
    if (r->close_after)
        hrc |= http_resp_header_str(r, "Connection", "close");
    if (r->chunked == 1)
        hrc |= http_resp_header_str(r, "Transfer-Encoding", "chunked");
    hrc |= cn_buf_append(&r->head, "\r\n", 2);
    if (hrc != CN_OK) {
        server_unwatch(api->srv, &r->watch);
        api->counters.watches_open--;
        r->chunked = 0;
        answer_internal(r, CN_ENOMEM);
        http_req_done(r);
        return;
    }
    r->state = REQ_STREAMING;
}

static void get_now(struct http_api *api, struct http_req *r)
{
    memset(&r->res, 0, sizeof(r->res));
    int rc =
        server_get(api->srv, r->key, r->kp.recursive, r->kp.sorted, &r->res);
    r->has_res = 1;
    if (rc != CN_OK)
        answer_internal(r, rc);
    else
        answer_result(r, server_raft_index(api->srv),
                      server_raft_term(api->srv));
    http_req_done(r);
}

/* A quorum GET or a watch: this member has caught up with every write
 * committed before the request (ReadIndex through the leader). */
static void on_read_index(struct server_read *rd)
{
    struct http_req *r = rd->arg;
    r->read_pending = 0;
    if (r->conn == NULL) {
        http_req_put(r->api, r);
        return;
    }
    if (rd->rc != CN_OK) {
        answer_internal(r, rd->rc);
        http_req_done(r);
        return;
    }
    if (r->kind == KIND_WATCH) {
        start_watch_now(r->api, r);
        http_req_kick(r); /* the head goes now */
    } else {
        get_now(r->api, r);
    }
}

void http_keys_start(struct http_api *api, struct http_req *r)
{
    if (r->kind == KIND_PROPOSAL) {
        start_proposal(api, r);
        return;
    }
    if (r->kind != KIND_WATCH && !r->kp.quorum) {
        get_now(api, r); /* serializable: served from this member */
        return;
    }
    r->read.cb = on_read_index;
    r->read.arg = r;
    int rc = server_read_index(api->srv, &r->read);
    if (rc == CN_OK)
        r->read_pending = 1;
    else {
        answer_internal(r, rc);
        http_req_done(r);
    }
}
