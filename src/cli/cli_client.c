/*
 * cli_client: the v2 client of cairnctl, behaving like etcd's Go client
 * (client/client.go) as etcdctl v2 configures it:
 *   - endpoints are tried in turn starting from the pinned one; a connect
 *     or I/O failure, a header timeout or a 5xx moves to the next endpoint
 *     and is collected into a "cluster error";
 *   - one-shot requests (create with prevExist=false, delete) are not sent
 *     twice: their first failure is final (the write may have happened),
 *     except a refused connection (nothing was sent: unlike the Go client,
 *     the next endpoint is tried, so a dead member that endpoint sync put
 *     first does not fail every mk and rm);
 *   - a success pins the endpoint that answered;
 *   - unless --no-sync, the endpoint list is first replaced by the members'
 *     client URLs (GET /v2/members);
 *   - redirects (3xx with Location) are followed.
 */
#include "cli_int.h"

#include <stdlib.h>
#include <string.h>

#define CLI_DEFAULT_ENDPOINTS "http://127.0.0.1:2379,http://127.0.0.1:4001"
#define CLI_REDIRECTS_MAX 10

int cli_form_add(struct cn_buf *b, const char *k, const char *v)
{
    int rc = CN_OK;
    if (b->len > 0)
        rc = cn_buf_append_char(b, '&');
    if (rc == CN_OK)
        rc = cli_fmt_escape_query(b, k);
    if (rc == CN_OK)
        rc = cn_buf_append_char(b, '=');
    if (rc == CN_OK)
        rc = cli_fmt_escape_query(b, v);
    return rc;
}

static int set_endpoints(struct cli_client *cl, const char *list)
{
    char errmsg[CN_ERRMSG_SIZE];
    struct cli_url tmp[CLI_ENDPOINTS_MAX];
    size_t n = 0;
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        char one[CLI_URL_MAX];
        snprintf(one, sizeof(one), "%.*s", (int)len, p);
        if (n == CLI_ENDPOINTS_MAX) {
            cn_buf_reset(&cl->fail);
            cn_buf_printf(&cl->fail, "too many endpoints (at most %d)",
                          CLI_ENDPOINTS_MAX);
            return CN_EINVAL;
        }
        if (cli_url_parse(one, &tmp[n], errmsg) != CN_OK) {
            cn_buf_reset(&cl->fail);
            cn_buf_append_cstr(&cl->fail, errmsg);
            return CN_EINVAL;
        }
        n++;
        p += len;
        if (*p != ',')
            break;
        p++;
    }
    memcpy(cl->eps, tmp, n * sizeof(tmp[0]));
    cl->ep_count = n;
    cl->pinned = 0;
    return CN_OK;
}

int cli_client_init(struct cli_client *cl, const struct cli_global *g)
{
    memset(cl, 0, sizeof(*cl));
    cli_http_conn_init(&cl->conn);
    cn_buf_init(&cl->fail);
    cn_buf_init(&cl->fail_detail);
    cl->timeout_ms = g->timeout_ms;
    cl->debug = g->debug;
    const char *list = g->endpoints;
    if (list == NULL || *list == '\0')
        list = CLI_DEFAULT_ENDPOINTS;
    return set_endpoints(cl, list);
}

void cli_client_close(struct cli_client *cl)
{
    cli_http_conn_close(&cl->conn);
    cn_buf_close(&cl->fail);
    cn_buf_close(&cl->fail_detail);
}

static void endpoints_text(const struct cli_client *cl, struct cn_buf *b,
                           const char *sep)
{
    for (size_t i = 0; i < cl->ep_count; i++)
        cn_buf_printf(b, "%s%s", i ? sep : "", cl->eps[i].text);
}

/* Go's %q for the debug line's body. */
static void go_quote(struct cn_buf *b, const char *s)
{
    cn_buf_append_char(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            cn_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            cn_buf_append_cstr(b, "\\n");
        else if (*p < 0x20 || *p == 0x7f)
            cn_buf_printf(b, "\\x%02x", *p);
        else
            cn_buf_append_char(b, (char)*p);
    }
    cn_buf_append_char(b, '"');
}

static void debug_curl(const char *method, const struct cli_url *u,
                       const char *target, const char *body)
{
    struct cn_buf b = {0};
    cn_buf_printf(&b, "cURL Command: curl -X %s http://%s%s%s:%s%s", method,
                  strchr(u->host, ':') ? "[" : "", u->host,
                  strchr(u->host, ':') ? "]" : "", u->port, target);
    if (body != NULL) {
        cn_buf_append_cstr(&b, " -d ");
        go_quote(&b, body);
    }
    cn_buf_append_char(&b, '\n');
    cli_err(&b);
    cn_buf_close(&b);
}

/* One endpoint, following redirects. */
static int do_one(struct cli_client *cl, const struct cli_url *ep,
                  const char *method, const char *target, const char *body,
                  int64_t deadline_ms, struct cli_http_resp *resp)
{
    struct cli_url u = *ep;
    struct cn_buf tgt = {0};
    int rc = cn_buf_append_cstr(&tgt, target);
    for (int hops = 0; rc == CN_OK; hops++) {
        struct cli_http_req req = {
            .method = method,
            .target = tgt.data,
            .content_type =
                body ? (body[0] == '{' ? "application/json"
                                       : "application/x-www-form-urlencoded")
                     : NULL,
            .body = body,
            .body_len = body ? strlen(body) : 0,
            .deadline_ms = deadline_ms,
        };
        if (cl->debug)
            debug_curl(method, &u, tgt.data, body);
        cli_http_resp_close(resp);
        cli_http_resp_init(resp);
        rc = cli_http_do(&cl->conn, &u, &req, resp);
        if (rc != CN_OK || resp->status / 100 != 3 || resp->status == 304)
            break;
        if (hops >= CLI_REDIRECTS_MAX || resp->location[0] == '\0') {
            snprintf(cl->conn.errmsg, sizeof(cl->conn.errmsg),
                     hops >= CLI_REDIRECTS_MAX ? "client: too many redirects"
                                               : "location header not set");
            rc = CN_EPROTO;
            break;
        }
        char errmsg[CN_ERRMSG_SIZE];
        const char *loc = resp->location;
        if (loc[0] == '/') {
            cn_buf_reset(&tgt);
            rc = cn_buf_append_cstr(&tgt, loc);
            continue;
        }
        if (cli_url_parse(loc, &u, errmsg) != CN_OK) {
            snprintf(cl->conn.errmsg, sizeof(cl->conn.errmsg),
                     "location header not valid URL: %.200s", loc);
            rc = CN_EPROTO;
            break;
        }
        const char *path = strstr(loc, "://");
        path = path ? strchr(path + 3, '/') : NULL;
        cn_buf_reset(&tgt);
        rc = cn_buf_append_cstr(&tgt, path ? path : "/");
        u.path[0] = '\0';
    }
    cn_buf_close(&tgt);
    return rc;
}

int cli_client_do(struct cli_client *cl, const char *method, const char *target,
                  const char *body, int flags, int64_t deadline_ms,
                  struct cli_http_resp *resp)
{
    cn_buf_reset(&cl->fail);
    cn_buf_reset(&cl->fail_detail);
    cl->fail_conn = 1;
    if (deadline_ms == 0)
        deadline_ms = cl->deadline_ms;
    if (cl->ep_count == 0) {
        cn_buf_append_cstr(&cl->fail, "client: no endpoints available");
        cl->fail_conn = 0;
        return CN_ENOTFOUND;
    }
    struct cn_buf errs = {0};
    int nerr = 0;
    int rc = CN_EIO;
    for (size_t i = 0; i < cl->ep_count; i++) {
        size_t k = (cl->pinned + i) % cl->ep_count;
        const struct cli_url *ep = &cl->eps[k];
        int64_t dl = deadline_ms > 0 ? deadline_ms : 0;
        int header_timeout = 0;
        if (!(flags & CLI_REQ_WAIT) && cl->timeout_ms > 0) {
            int64_t h = cli_now_ms() + cl->timeout_ms;
            if (dl == 0 || h < dl) {
                dl = h;
                header_timeout = 1;
            }
        }
        /* Prefix of the endpoint's own path ("http://h:p/base"). */
        struct cn_buf full = {0};
        cn_buf_printf(&full, "%s%s", ep->path, target);
        rc = do_one(cl, ep, method, full.data, body, dl, resp);
        cn_buf_close(&full);
        char msg[CN_ERRMSG_SIZE + CLI_URL_MAX];
        msg[0] = '\0';
        int conn_err = 0;
        if (rc == CN_ESHUTDOWN) {
            cn_buf_append_cstr(&cl->fail, "context canceled");
            cl->fail_conn = 0;
            goto out;
        }
        if (rc == CN_ETIMEDOUT && !header_timeout) {
            cn_buf_append_cstr(&cl->fail, "context deadline exceeded");
            cl->fail_conn = 0;
            goto out;
        }
        if (rc == CN_ETIMEDOUT) {
            snprintf(msg, sizeof(msg),
                     "client: endpoint %s exceeded header timeout", ep->text);
        } else if (rc != CN_OK) {
            snprintf(msg, sizeof(msg), "%s", cl->conn.errmsg);
            conn_err = rc == CN_EIO || rc == CN_ECONNREFUSED;
        } else if (resp->status / 100 == 5) {
            if (resp->status == 500 || resp->status == 503)
                snprintf(msg, sizeof(msg),
                         "client: etcd member %s has no leader", ep->text);
            else
                snprintf(msg, sizeof(msg),
                         "client: etcd member %s returns server error [%d]",
                         ep->text, resp->status);
            rc = CN_EIO;
        }
        if (rc == CN_OK) {
            cl->pinned = k;
            goto out;
        }
        if (!conn_err)
            cl->fail_conn = 0;
        cn_buf_printf(&errs, "error #%d: %s\n", nerr, msg);
        nerr++;
        /* A one-shot request fails with its first failure (the write may
         * have happened), except a refused connection to an endpoint that
         * is not the last: nothing was sent, the next one is tried. */
        if ((flags & CLI_REQ_ONESHOT) &&
            (rc != CN_ECONNREFUSED || i + 1 == cl->ep_count)) {
            cl->pinned = (k + 1) % cl->ep_count;
            cn_buf_append_cstr(&cl->fail, msg);
            cl->fail_conn = 0;
            goto out;
        }
    }
    cn_buf_append_cstr(&cl->fail,
                       "client: etcd cluster is unavailable or misconfigured");
    {
        /* ClusterError.Error(): each error as "; error #i: msg\n". */
        const char *p = errs.data;
        for (int i = 0; i < nerr; i++) {
            const char *nl = strchr(p, '\n');
            cn_buf_printf(&cl->fail, "; %.*s\n", (int)(nl - p), p);
            p = nl + 1;
        }
        cn_buf_append(&cl->fail_detail, errs.data, errs.len);
    }
out:
    cn_buf_close(&errs);
    return rc;
}

int cli_client_report(struct cli_client *cl, int code)
{
    fflush(stdout);
    fprintf(stderr, "Error:  %s\n", cl->fail.data ? cl->fail.data : "");
    if (cl->fail_detail.len > 0)
        fprintf(stderr, "%s\n", cl->fail_detail.data);
    return code;
}

int cli_keys_call(struct cli_client *cl, const struct cli_keys_req *req,
                  struct cli_resp *resp, struct cli_etcd_error *eerr)
{
    struct cn_buf path = {0}, target = {0}, raw = {0};
    struct cli_http_resp hr;
    cli_http_resp_init(&hr);
    memset(resp, 0, sizeof(*resp));
    memset(eerr, 0, sizeof(*eerr));
    int result = CLI_KEYS_FAILED;
    int64_t deadline = req->deadline_ms;
    if (deadline == 0)
        deadline = cl->deadline_ms;
    if (cn_buf_append_cstr(&raw, "/v2/keys") != CN_OK ||
        (req->key[0] != '/' && cn_buf_append_char(&raw, '/') != CN_OK) ||
        cn_buf_append_cstr(&raw, req->key) != CN_OK ||
        cli_fmt_clean_path(&path, raw.data) != CN_OK ||
        cli_fmt_escape_path(&target, path.data) != CN_OK ||
        (req->query && req->query[0] &&
         cn_buf_printf(&target, "?%s", req->query) != CN_OK)) {
        cn_buf_append_cstr(&cl->fail, "out of memory");
        goto out;
    }
    int rc = cli_client_do(cl, req->method, target.data, req->form, req->flags,
                           deadline, &hr);
    if (rc != CN_OK)
        goto out;
    cn_buf_reset(&cl->fail);
    cl->fail_conn = 0;
    if (hr.status == 200 || hr.status == 201) {
        if (hr.body.len == 0) {
            cn_buf_append_cstr(&cl->fail, "client: response body is empty");
            goto out;
        }
        if (cli_json_parse_resp(hr.body.data, hr.body.len, resp) != CN_OK) {
            cli_resp_close(resp);
            cn_buf_append_cstr(&cl->fail,
                               "client: response is invalid json. The "
                               "endpoint is probably not valid etcd cluster "
                               "endpoint.");
            goto out;
        }
        resp->index = hr.etcd_index;
        result = CLI_KEYS_OK;
        goto out;
    }
    if (cli_json_parse_error(hr.body.data ? hr.body.data : "", hr.body.len,
                             eerr) != CN_OK) {
        cli_etcd_error_close(eerr);
        cn_buf_append_cstr(&cl->fail,
                           "client: response is invalid json. The endpoint is "
                           "probably not valid etcd cluster endpoint.");
        goto out;
    }
    result = CLI_KEYS_ETCD;
out:
    cli_http_resp_close(&hr);
    cn_buf_close(&raw);
    cn_buf_close(&path);
    cn_buf_close(&target);
    return result;
}

int cli_client_sync(struct cli_client *cl, const struct cli_global *g)
{
    if (g->no_sync) {
        if (g->debug) {
            struct cn_buf b = {0};
            cn_buf_append_cstr(&b, "Cluster-Endpoints: ");
            endpoints_text(cl, &b, ", ");
            cn_buf_append_char(&b, '\n');
            cli_err(&b);
            cn_buf_close(&b);
        }
        return CLI_EXIT_OK;
    }
    struct cn_buf b = {0};
    if (g->debug) {
        cn_buf_append_cstr(&b, "start to sync cluster using endpoints(");
        endpoints_text(cl, &b, ",");
        cn_buf_append_cstr(&b, ")\n");
        cli_err(&b);
        cn_buf_reset(&b);
    }
    struct cli_http_resp hr;
    cli_http_resp_init(&hr);
    struct cli_member *ms = NULL;
    size_t n = 0;
    int code = CLI_EXIT_OK;
    int64_t deadline = cli_now_ms() + g->total_timeout_ms;
    int rc = cli_client_do(cl, "GET", "/v2/members", NULL, 0, deadline, &hr);
    if (rc != CN_OK) {
        if (cl->fail_conn)
            code = cli_client_report(cl, CLI_EXIT_BAD_CONN);
        goto out;
    }
    if (hr.status != 200 ||
        cli_json_parse_members(hr.body.data ? hr.body.data : "", hr.body.len,
                               &ms, &n) != CN_OK)
        goto out; /* etcdctl ignores other sync failures */
    cn_buf_reset(&b);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ms[i].client_count; j++)
            cn_buf_printf(&b, "%s%s", b.len ? "," : "", ms[i].client_urls[j]);
    if (b.len == 0) {
        struct cn_buf e = {0};
        fprintf(stderr, "etcd cluster has no published client endpoints.\n");
        endpoints_text(cl, &e, ",");
        fprintf(stderr,
                "Try '--no-sync' if you want to access non-published client "
                "endpoints(%s).\n",
                e.data ? e.data : "");
        fprintf(stderr, "Error:  client: no endpoints available\n");
        cn_buf_close(&e);
        code = CLI_EXIT_SERVER;
        goto out;
    }
    if (set_endpoints(cl, b.data) != CN_OK) {
        fprintf(stderr, "%s\n", cl->fail.data);
        code = CLI_EXIT_BAD_ARGS;
        goto out;
    }
    if (g->debug) {
        cn_buf_reset(&b);
        cn_buf_append_cstr(&b, "got endpoints(");
        endpoints_text(cl, &b, ",");
        cn_buf_append_cstr(&b, ") after sync\n");
        cli_err(&b);
    }
out:
    if (code == CLI_EXIT_OK && g->debug) {
        cn_buf_reset(&b);
        cn_buf_append_cstr(&b, "Cluster-Endpoints: ");
        endpoints_text(cl, &b, ", ");
        cn_buf_append_char(&b, '\n');
        cli_err(&b);
    }
    cli_members_free(ms, n);
    cli_http_resp_close(&hr);
    cn_buf_close(&b);
    return code;
}
