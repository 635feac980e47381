/*
 * http_discovery.c: cairn as an etcd discovery service (GET /new), so one
 * cairn cluster can bootstrap others the way discovery.etcd.io does:
 *
 *   GET /new?size=N   (N defaults to 3; 1..CN_CONFIG_MEMBERS_MAX)
 *     -> a random 128-bit token T; /_etcd/registry/T/_config/size = N is
 *        written through server_propose() (replicated and durable like
 *        any write, created only if absent)
 *     -> 200 text/plain: http://<first advertised client URL>/v2/keys/
 *        _etcd/registry/T
 *   size not a number in range -> 400; another method -> 405.
 *
 * The rest of the protocol (members reading the size, registering, and
 * watching the token directory) is the ordinary v2 keys API.
 *
 * Pipeline contract (see http_int.h): this runs as a KIND_IMMEDIATE request
 * routed through http_req_start(). While the write is in flight the request
 * is marked KIND_PROPOSAL so that a closing connection keeps it (orphan())
 * until on_proposed() recycles it; it is set back to KIND_IMMEDIATE before
 * http_req_done(), because the connection never counted it as a running
 * proposal. Later pipelined requests may start meanwhile; answers still
 * leave in request order.
 */
#include "http_discovery.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define TOKEN_BYTES 16

static void answer_text(struct http_req *r, int status, const char *text)
{
    cn_buf_reset(&r->body);
    int rc = cn_buf_append_cstr(&r->body, text);
    rc |= http_resp_begin(r, status);
    if (status == 405)
        rc |= http_resp_header_str(r, "Allow", "GET");
    rc |= http_resp_finish(r, "text/plain; charset=utf-8", r->body.len);
    if (rc != CN_OK)
        http_resp_simple(r, 500, NULL, "", 0);
}

/* The value of query parameter name (first occurrence), raw. */
static int query_param(struct cn_slice q, const char *name,
                       struct cn_slice *out)
{
    size_t n = strlen(name);
    const char *p = q.base, *end = q.base + q.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) >= n && memcmp(p, name, n) == 0 &&
            (p + n == e || p[n] == '=')) {
            out->base = p + n < e ? p + n + 1 : e;
            out->len = (size_t)(e - out->base);
            return 1;
        }
        p = e + 1;
    }
    return 0;
}

/* Parses size: 1..CN_CONFIG_MEMBERS_MAX. Returns 0 when invalid. */
static unsigned parse_size(struct cn_slice s)
{
    if (s.len == 0 || s.len > 4)
        return 0;
    unsigned v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.base[i] < '0' || s.base[i] > '9')
            return 0;
        v = v * 10 + (unsigned)(s.base[i] - '0');
    }
    return v >= 1 && v <= CN_CONFIG_MEMBERS_MAX ? v : 0;
}

static int new_token(char out[2 * TOKEN_BYTES + 1])
{
    unsigned char b[TOKEN_BYTES];
    size_t got = 0;
    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
        if (n <= 0)
            return CN_EIO;
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof(b); i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return CN_OK;
}

static void on_proposed(struct server_proposal *p)
{
    struct http_req *r = p->arg;
    int ok = p->rc == CN_OK && p->res.ecode == 0;
    store_result_close(&p->res);
    if (r->conn == NULL) {
        /* the client went away meanwhile */
        http_req_put(r->api, r);
        return;
    }
    r->kind = KIND_IMMEDIATE;
    if (!ok) {
        answer_text(r, 500, "cannot create the discovery token\n");
        http_req_done(r);
        return;
    }
    /* r->scratch holds "<key>\0<value>\0"; the token is the key's 4th part */
    const char *key = r->scratch.data;
    const char *tok = key + strlen("/_etcd/registry/");
    size_t tok_len = strcspn(tok, "/");
    const struct cn_url_list *l =
        &server_config(r->api->srv)->advertise_client_urls;
    const char *base = l->count > 0 ? l->urls[0].raw : "http://localhost:2379";
    cn_buf_reset(&r->body);
    int rc = cn_buf_printf(&r->body, "%s/v2/keys/_etcd/registry/%.*s", base,
                           (int)tok_len, tok);
    rc |= http_resp_begin(r, 200);
    rc |= http_resp_finish(r, "text/plain; charset=utf-8", r->body.len);
    if (rc != CN_OK)
        http_resp_simple(r, 500, NULL, "", 0);
    http_req_done(r);
}

int http_discovery_start(struct http_api *api, struct http_req *r)
{
    if (!cn_slice_eq_cstr((struct cn_slice){r->path.data, r->path.len}, "/new"))
        return 0;
    if (r->method != HM_GET) {
        answer_text(r, 405, "Method Not Allowed\n");
        http_req_done(r);
        return 1;
    }
    unsigned size = 3;
    struct cn_slice v;
    if (query_param(r->query, "size", &v) && (size = parse_size(v)) == 0) {
        char msg[96];
        snprintf(msg, sizeof(msg), "invalid size: want a number from 1 to %d\n",
                 CN_CONFIG_MEMBERS_MAX);
        answer_text(r, 400, msg);
        http_req_done(r);
        return 1;
    }
    char token[2 * TOKEN_BYTES + 1];
    cn_buf_reset(&r->scratch);
    int rc = new_token(token);
    if (rc == CN_OK)
        rc = cn_buf_printf(&r->scratch, "/_etcd/registry/%s/_config/size%c%u",
                           token, '\0', size);
    if (rc != CN_OK) {
        answer_text(r, 500, "cannot create the discovery token\n");
        http_req_done(r);
        return 1;
    }
    size_t key_len = strlen(r->scratch.data);
    struct server_proposal *p = &r->prop;
    memset(p, 0, sizeof(*p));
    p->cmd.method = STORE_CMD_PUT;
    p->cmd.path = (struct cn_slice){r->scratch.data, key_len};
    p->cmd.value = (struct cn_slice){r->scratch.data + key_len + 1,
                                     r->scratch.len - key_len - 1};
    p->cmd.prev_exist = 0; /* a fresh token only */
    p->ttl_s = -1;
    p->cb = on_proposed;
    p->arg = r;
    r->kind = KIND_PROPOSAL;
    if (server_propose(api->srv, p) != CN_OK) {
        r->kind = KIND_IMMEDIATE;
        answer_text(r, 503, "the server is shutting down\n");
        http_req_done(r);
    }
    return 1;
}
