/*
 * http_misc.c: routing (Go's ServeMux as etcd registers it), the endpoints
 * other than /v2/keys, Prometheus metrics, and the glue that makes an
 * http_conn the protocol of the server's client connections.
 */
#include "http_discovery.h"
#include "http_int.h"
#include "server/server_members.h"
#include "server/server_member_id.h"
#include "server/server_peer.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ---- routing ---- */

static void prepared_answer(struct http_api *api, struct http_req *r)
{
    r->kind = KIND_IMMEDIATE;
    r->state = REQ_DONE;
    http_metrics_record(api, r, server_mono_ns(api->srv));
}

static void bad_request(struct http_api *api, struct http_req *r)
{
    static const char body[] = "400 Bad Request";
    r->close_after = 1;
    cn_buf_reset(&r->head);
    cn_buf_reset(&r->body);
    r->status = 400;
    if (cn_buf_append_cstr(&r->head, "HTTP/1.1 400 Bad Request\r\n"
                                     "Content-Type: text/plain; "
                                     "charset=utf-8\r\n"
                                     "Connection: close\r\n\r\n") ||
        cn_buf_append(&r->body, body, sizeof(body) - 1))
        http_resp_simple(r, 500, NULL, "", 0);
    api->counters.bad_requests++;
    prepared_answer(api, r);
}

static void redirect(struct http_api *api, struct http_req *r,
                     struct cn_slice clean)
{
    struct cn_buf loc = {0};
    int rc = http_path_escape(clean, &loc);
    if (r->query.len > 0) {
        rc |= cn_buf_append_char(&loc, '?');
        rc |= cn_buf_append(&loc, r->query.base, r->query.len);
    }
    cn_buf_reset(&r->body);
    rc |= http_resp_begin(r, 301);
    rc |= http_resp_header_str(r, "Location", loc.data ? loc.data : "/");
    const char *ctype = NULL;
    if (r->method == HM_GET || r->method == HM_HEAD) {
        ctype = "text/html; charset=utf-8";
        rc |= cn_buf_append_cstr(&r->body, "<a href=\"");
        for (size_t i = 0; i < loc.len; i++) {
            switch (loc.data[i]) {
            case '&':
                rc |= cn_buf_append_cstr(&r->body, "&amp;");
                break;
            case '<':
                rc |= cn_buf_append_cstr(&r->body, "&lt;");
                break;
            case '>':
                rc |= cn_buf_append_cstr(&r->body, "&gt;");
                break;
            case '"':
                rc |= cn_buf_append_cstr(&r->body, "&#34;");
                break;
            case '\'':
                rc |= cn_buf_append_cstr(&r->body, "&#39;");
                break;
            default:
                rc |= cn_buf_append_char(&r->body, loc.data[i]);
            }
        }
        rc |= cn_buf_append_cstr(&r->body, "\">Moved Permanently</a>.\n\n");
    }
    rc |= http_resp_finish(r, ctype, r->body.len);
    cn_buf_close(&loc);
    if (rc != CN_OK)
        http_resp_simple(r, 500, NULL, "", 0);
    prepared_answer(api, r);
}

static int path_is(const struct http_req *r, const char *p)
{
    return cn_slice_eq_cstr((struct cn_slice){r->path.data, r->path.len}, p);
}

static int path_under(const struct http_req *r, const char *p)
{
    size_t n = strlen(p);
    return r->path.len >= n && memcmp(r->path.data, p, n) == 0;
}

static int route_of(const struct http_req *r)
{
    if (path_is(r, "/v2/keys") || path_under(r, "/v2/keys/"))
        return ROUTE_KEYS;
    if (path_is(r, "/version"))
        return ROUTE_VERSION;
    if (path_is(r, "/health"))
        return ROUTE_HEALTH;
    if (path_is(r, "/metrics"))
        return ROUTE_METRICS;
    if (path_is(r, "/v2/machines"))
        return ROUTE_MACHINES;
    if (path_is(r, "/v2/members") || path_under(r, "/v2/members/"))
        return ROUTE_MEMBERS;
    if (path_is(r, "/v2/stats/self"))
        return ROUTE_STATS_SELF;
    if (path_is(r, "/v2/stats/store"))
        return ROUTE_STATS_STORE;
    if (path_is(r, "/v2/stats/leader"))
        return ROUTE_STATS_LEADER;
    return ROUTE_NONE;
}

void http_req_prepare(struct http_api *api, struct http_req *r)
{
    struct cn_slice rawpath;
    if (http_parse_url(r->raw.data, r->url_len, &rawpath, &r->query) != CN_OK ||
        rawpath.len == 0 || rawpath.base[0] != '/') {
        bad_request(api, r);
        return;
    }
    int rc = http_path_decode(rawpath, &r->scratch);
    if (rc == CN_EINVAL) {
        bad_request(api, r);
        return;
    }
    if (r->method == HM_OPTIONS) {
        /* The CORS wrapper answers every OPTIONS itself. */
        r->route = ROUTE_OPTIONS;
        http_resp_simple(r, 200, NULL, "", 0);
        prepared_answer(api, r);
        return;
    }
    struct cn_slice decoded = {r->scratch.data, r->scratch.len};
    cn_buf_reset(&r->path);
    rc |= http_path_clean(decoded, &r->path);
    if (rc != CN_OK) {
        http_resp_simple(r, 500, NULL, "", 0);
        prepared_answer(api, r);
        return;
    }
    if (!cn_slice_eq(decoded, (struct cn_slice){r->path.data, r->path.len})) {
        r->route = ROUTE_REDIRECT;
        redirect(api, r, (struct cn_slice){r->path.data, r->path.len});
        return;
    }
    cn_buf_reset(&r->scratch);
    r->route = route_of(r);
    if (r->route == ROUTE_KEYS) {
        http_keys_prepare(api, r);
        return;
    }
    r->kind = KIND_IMMEDIATE;
}

void http_req_start(struct http_api *api, struct http_req *r)
{
    if (r->route == ROUTE_KEYS)
        http_keys_start(api, r);
    else if (r->route != ROUTE_NONE || !http_discovery_start(api, r))
        http_misc_start(api, r);
}

/* ---- the other endpoints ---- */

static int allow(struct http_req *r, const char *methods)
{
    const char *m = http_method_names[r->method];
    size_t n = strlen(m);
    for (const char *p = methods; *p != '\0';) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && memcmp(p, m, n) == 0 && r->method != HM_OTHER)
            return 1;
        p += len + (e ? 1 : 0);
    }
    static const char msg[] = "Method Not Allowed\n";
    cn_buf_reset(&r->body);
    int rc = http_resp_begin(r, 405);
    rc |= http_resp_header_str(r, "Allow", methods);
    rc |= http_resp_header_str(r, "X-Content-Type-Options", "nosniff");
    rc |= cn_buf_append(&r->body, msg, sizeof(msg) - 1);
    rc |= http_resp_finish(r, "text/plain; charset=utf-8", r->body.len);
    if (rc != CN_OK)
        http_resp_simple(r, 500, NULL, "", 0);
    return 0;
}

/* Sends r->body with content type ctype (cluster id header if asked). */
static void send_body(struct http_req *r, int status, const char *ctype,
                      int cluster_hdr, int rc)
{
    rc |= http_resp_begin(r, status);
    if (cluster_hdr)
        rc |= http_resp_header_str(r, "X-Etcd-Cluster-Id",
                                   r->api->cluster_id_hex);
    rc |= http_resp_finish(r, ctype, r->body.len);
    if (rc != CN_OK)
        http_resp_simple(r, 500, NULL, "", 0);
}

static void fmt_time(struct cn_buf *b, int64_t ns, int *rc)
{
    time_t t = (time_t)(ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char s[64];
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%S", &tm);
    *rc |= cn_buf_printf(b, "%s.%09ldZ", s, (long)(ns % 1000000000));
}

static const char *state_name(const struct server *srv)
{
    if (server_is_leader(srv))
        return "StateLeader";
    return server_leader_id(srv) != 0 ? "StateFollower" : "StateCandidate";
}

static void stats_self(struct http_api *api, struct http_req *r)
{
    struct server *srv = api->srv;
    const struct cn_config *cfg = server_config(srv);
    struct server_raft_stats rs;
    server_raft_stats_get(srv, &rs);
    int64_t start = server_start_ns(srv);
    int64_t since = rs.leader_since_ns ? rs.leader_since_ns : start;
    int64_t up = server_now_ns(srv) - since;
    if (up < 0)
        up = 0;
    char leader[SERVER_ID_HEX_SIZE];
    server_id_format(server_leader_id(srv), leader);
    int rc = cn_buf_printf(&r->body,
                           "{\"name\":\"%s\",\"id\":\"%s\",\"state\":"
                           "\"%s\",\"startTime\":\"",
                           cfg->name, api->member_id_hex, state_name(srv));
    fmt_time(&r->body, start, &rc);
    rc |= cn_buf_printf(&r->body,
                        "\",\"leaderInfo\":{\"leader\":\"%s\",\"uptime\":"
                        "\"%" PRId64 ".%09" PRId64 "s\",\"startTime\":\"",
                        server_leader_id(srv) ? leader : "", up / 1000000000,
                        up % 1000000000);
    fmt_time(&r->body, since, &rc);
    rc |= cn_buf_printf(&r->body, "\"},\"recvAppendRequestCnt\":%" PRIu64,
                        rs.append_recv);
    if (rs.recv_pkg_rate > 0)
        rc |= cn_buf_printf(&r->body,
                            ",\"recvPkgRate\":%.6f,\"recvBandwidthRate\":%.6f",
                            rs.recv_pkg_rate, rs.recv_bytes_rate);
    rc |= cn_buf_printf(&r->body, ",\"sendAppendRequestCnt\":%" PRIu64,
                        rs.append_sent);
    if (rs.send_pkg_rate > 0)
        rc |= cn_buf_printf(&r->body,
                            ",\"sendPkgRate\":%.6f,\"sendBandwidthRate\":%.6f",
                            rs.send_pkg_rate, rs.send_bytes_rate);
    rc |= cn_buf_append_char(&r->body, '}');
    send_body(r, 200, "application/json", 0, rc);
}

static void stats_leader(struct http_api *api, struct http_req *r)
{
    struct server *srv = api->srv;
    int rc;
    if (!server_is_leader(srv)) {
        rc = cn_buf_append_cstr(&r->body,
                                "{\"message\":\"not current leader\"}");
        send_body(r, 403, "application/json", 0, rc);
        return;
    }
    const struct server_members *t = server_members_table(srv);
    rc = cn_buf_printf(&r->body, "{\"leader\":\"%s\",\"followers\":{",
                       api->member_id_hex);
    int first = 1;
    for (unsigned i = 0; i < t->n; i++) {
        const struct server_member *m = &t->m[i];
        if (m->id == server_member_id(srv))
            continue;
        struct server_peer_stats ps;
        memset(&ps, 0, sizeof(ps));
        ps.rtt_last_ns = -1;
        server_peer_stats_get(srv, m->id, &ps);
        char hex[SERVER_ID_HEX_SIZE];
        double cur = ps.rtt_last_ns > 0 ? (double)ps.rtt_last_ns / 1e6 : 0;
        double mn = ps.rtt_count ? (double)ps.rtt_min_ns / 1e6 : 0;
        double mx = ps.rtt_count ? (double)ps.rtt_max_ns / 1e6 : 0;
        rc |= cn_buf_printf(
            &r->body,
            "%s\"%s\":{\"latency\":{\"current\":%.6f,\"average\":%.6f,"
            "\"standardDeviation\":%.6f,\"minimum\":%.6f,\"maximum\":%.6f},"
            "\"counts\":{\"fail\":%" PRIu64 ",\"success\":%" PRIu64 "}}",
            first ? "" : ",", server_id_format(m->id, hex), cur,
            ps.rtt_avg_ns / 1e6, ps.rtt_sd_ns / 1e6, mn, mx, ps.msgs_dropped,
            ps.msgs_sent);
        first = 0;
    }
    rc |= cn_buf_append_cstr(&r->body, "}}");
    send_body(r, 200, "application/json", 0, rc);
}

static void json_urls(struct cn_buf *b, char (*urls)[SERVER_MEMBER_URL_BYTES],
                      unsigned n, int *rc)
{
    *rc |= cn_buf_append_char(b, '[');
    for (unsigned i = 0; i < n; i++)
        *rc |= cn_buf_printf(b, "%s\"%s\"", i ? "," : "", urls[i]);
    *rc |= cn_buf_append_char(b, ']');
}

static void member_json(struct cn_buf *b, const struct server_member *m,
                        int *rc)
{
    char hex[SERVER_ID_HEX_SIZE];
    *rc |= cn_buf_printf(b, "{\"id\":\"%s\",\"name\":\"%s\",\"peerURLs\":",
                         server_id_format(m->id, hex), m->name);
    json_urls(b, (char(*)[SERVER_MEMBER_URL_BYTES])m->peer, m->n_peer, rc);
    *rc |= cn_buf_append_cstr(b, ",\"clientURLs\":");
    json_urls(b, (char(*)[SERVER_MEMBER_URL_BYTES])m->client, m->n_client, rc);
    *rc |= cn_buf_append_char(b, '}');
}

static void members_error(struct http_req *r, int status, const char *msg)
{
    cn_buf_reset(&r->body);
    int rc = cn_buf_printf(&r->body, "{\"message\":\"%s\"}", msg);
    send_body(r, status, "application/json", 1, rc);
}

/* A member change in flight: its URLs live here until the callback. */
struct http_member_op {
    char urls[SERVER_MEMBER_URLS_MAX][256];
    const char *ptrs[SERVER_MEMBER_URLS_MAX];
    char id_hex[SERVER_ID_HEX_SIZE];
};

static void on_member_done(struct server_proposal *p)
{
    struct http_req *r = p->arg;
    struct http_member_op *op = r->mop;
    r->mop = NULL;
    store_result_close(&p->res);
    if (r->conn == NULL) {
        cn_free(op);
        http_req_put(r->api, r);
        return;
    }
    char msg[160];
    cn_buf_reset(&r->body);
    if (p->rc != CN_OK) {
        members_error(r, 500,
                      p->rc == CN_ETIMEDOUT ? "etcdserver: request timed out"
                                            : cn_strerror(p->rc));
    } else if (p->member_err == SERVER_MEMBER_NOT_FOUND) {
        snprintf(msg, sizeof(msg), "No such member: %s", op->id_hex);
        members_error(r, 404, msg);
    } else if (p->member_err == SERVER_MEMBER_REMOVED) {
        snprintf(msg, sizeof(msg), "Member permanently removed: %s",
                 op->id_hex);
        members_error(r, 410, msg);
    } else if (p->member_err == SERVER_MEMBER_URL_EXISTS) {
        members_error(r, 409, "membership: peerURL exists");
    } else if (p->member_err == SERVER_MEMBER_ID_EXISTS) {
        members_error(r, 409, "membership: ID exists");
    } else if (p->member_err != SERVER_MEMBER_OK) {
        members_error(r, 500, "etcdserver: too many members");
    } else if (p->op == SERVER_OP_MEMBER_ADD) {
        struct server_member m;
        memset(&m, 0, sizeof(m));
        m.id = p->member_id;
        for (unsigned i = 0; i < p->n_urls; i++)
            strcpy(m.peer[i], op->urls[i]);
        m.n_peer = (uint8_t)p->n_urls;
        int rc = CN_OK;
        member_json(&r->body, &m, &rc);
        send_body(r, 201, "application/json", 1, rc);
    } else {
        http_resp_simple(r, 204, NULL, "", 0);
    }
    cn_free(op);
    http_req_done(r);
}

/* Returns 1 when the answer comes later (a member change). */
static int members(struct http_api *api, struct http_req *r)
{
    if (!allow(r, "GET,POST,DELETE,PUT"))
        return 0;
    struct server *srv = api->srv;
    const struct server_members *t = server_members_table(srv);
    const char *sub = r->path.data + strlen("/v2/members");
    if (*sub == '/')
        sub++;
    int rc = CN_OK;
    if (r->method == HM_GET) {
        if (*sub == '\0') {
            /* By ID, as etcd lists them; a member being removed is gone
             * already for clients, as in etcd once DELETE has answered. */
            const struct server_member *v[SERVER_MEMBERS_MAX];
            unsigned n = 0;
            for (unsigned i = 0; i < t->n; i++) {
                if (t->m[i].flags & SERVER_MEMBER_LEAVING)
                    continue;
                unsigned j = n++;
                while (j > 0 && v[j - 1]->id > t->m[i].id) {
                    v[j] = v[j - 1];
                    j--;
                }
                v[j] = &t->m[i];
            }
            rc |= cn_buf_append_cstr(&r->body, "{\"members\":[");
            for (unsigned i = 0; i < n; i++) {
                if (i)
                    rc |= cn_buf_append_char(&r->body, ',');
                member_json(&r->body, v[i], &rc);
            }
            rc |= cn_buf_append_cstr(&r->body, "]}\n");
        } else if (strcmp(sub, "leader") == 0) {
            const struct server_member *m =
                server_members_find_const(t, server_leader_id(srv));
            if (m == NULL) {
                members_error(r, 503, "During election");
                return 0;
            }
            member_json(&r->body, m, &rc);
            rc |= cn_buf_append_char(&r->body, '\n');
        } else {
            members_error(r, 404, "Not found");
            return 0;
        }
        send_body(r, 200, "application/json", 1, rc);
        return 0;
    }
    if (r->method != HM_POST && *sub == '\0') {
        http_resp_simple(r, 405, "text/plain; charset=utf-8",
                         "Method Not Allowed\n", 19);
        return 0;
    }
    struct http_member_op *op = cn_calloc(1, sizeof(*op));
    if (op == NULL) {
        members_error(r, 500, "out of memory");
        return 0;
    }
    int count = 0;
    if (r->method == HM_POST || r->method == HM_PUT) {
        char err[HTTP_CAUSE_SIZE];
        if (http_json_peer_urls(r->raw.data + r->body_off,
                                r->raw.len - r->body_off, op->urls,
                                SERVER_MEMBER_URLS_MAX, &count, err) != CN_OK) {
            cn_free(op);
            members_error(r, 400, err);
            return 0;
        }
        for (int i = 0; i < count; i++)
            op->ptrs[i] = op->urls[i];
    }
    struct server_proposal *p = &r->prop;
    memset(p, 0, sizeof(*p));
    p->ttl_s = -1;
    p->urls = op->ptrs;
    p->n_urls = (unsigned)count;
    p->cb = on_member_done;
    p->arg = r;
    if (r->method == HM_POST) {
        if (*sub != '\0') {
            cn_free(op);
            members_error(r, 404, "Not found");
            return 0;
        }
        p->op = SERVER_OP_MEMBER_ADD;
    } else {
        uint64_t id = 0;
        snprintf(op->id_hex, sizeof(op->id_hex), "%.16s", sub);
        if (strlen(sub) > 16 || server_id_parse(sub, &id) != CN_OK) {
            char msg[160];
            snprintf(msg, sizeof(msg), "No such member: %.40s", sub);
            cn_free(op);
            members_error(r, 404, msg);
            return 0;
        }
        p->member_id = id;
        p->op = r->method == HM_PUT ? SERVER_OP_MEMBER_UPDATE
                                    : SERVER_OP_MEMBER_REMOVE;
    }
    r->mop = op;
    rc = server_propose(srv, p);
    if (rc != CN_OK) {
        r->mop = NULL;
        cn_free(op);
        members_error(r, rc == CN_ESTOPPED ? 503 : 500, cn_strerror(rc));
        return 0;
    }
    return 1;
}

static void metrics(struct http_api *api, struct http_req *r);

void http_misc_start(struct http_api *api, struct http_req *r)
{
    struct server *srv = api->srv;
    int rc = CN_OK;
    cn_buf_reset(&r->body);
    switch (r->route) {
    case ROUTE_VERSION:
        if (!allow(r, "GET"))
            break;
        rc = cn_buf_printf(&r->body,
                           "{\"etcdserver\":\"%s\",\"etcdcluster\":\"%s\"}",
                           CN_VERSION, CN_CLUSTER_VERSION);
        send_body(r, 200, "application/json", 0, rc);
        break;
    case ROUTE_HEALTH:
        if (!allow(r, "GET"))
            break;
        if (server_write_refusal(srv) != NULL || server_leader_id(srv) == 0) {
            /* As etcd with an alarm raised (e.g. NOSPACE) or no leader. */
            rc = cn_buf_append_cstr(&r->body, "{\"health\":\"false\"}");
            send_body(r, 503, "text/plain; charset=utf-8", 0, rc);
            break;
        }
        rc = cn_buf_append_cstr(&r->body, "{\"health\":\"true\"}");
        send_body(r, 200, "text/plain; charset=utf-8", 0, rc);
        break;
    case ROUTE_MACHINES: {
        if (!allow(r, "GET,HEAD"))
            break;
        const struct server_members *t = server_members_table(srv);
        int k = 0;
        for (unsigned i = 0; i < t->n; i++)
            for (unsigned j = 0; j < t->m[i].n_client; j++)
                rc |= cn_buf_printf(&r->body, "%s%s", k++ ? ", " : "",
                                    t->m[i].client[j]);
        send_body(r, 200, "text/plain; charset=utf-8", 0, rc);
        break;
    }
    case ROUTE_MEMBERS:
        if (members(api, r))
            return; /* answered by on_member_done */
        break;
    case ROUTE_STATS_SELF:
        if (allow(r, "GET"))
            stats_self(api, r);
        break;
    case ROUTE_STATS_STORE:
        if (!allow(r, "GET"))
            break;
        rc = store_stats_json(server_store(srv), &r->body);
        send_body(r, 200, "application/json", 0, rc);
        break;
    case ROUTE_STATS_LEADER:
        if (allow(r, "GET"))
            stats_leader(api, r);
        break;
    case ROUTE_METRICS:
        metrics(api, r);
        break;
    default: {
        static const char nf[] = "404 page not found\n";
        rc = http_resp_begin(r, 404);
        rc |= http_resp_header_str(r, "X-Content-Type-Options", "nosniff");
        rc |= cn_buf_append(&r->body, nf, sizeof(nf) - 1);
        rc |= http_resp_finish(r, "text/plain; charset=utf-8", r->body.len);
        if (rc != CN_OK)
            http_resp_simple(r, 500, NULL, "", 0);
    }
    }
    http_req_done(r);
}

/* ---- metrics ---- */

/* Request latency buckets, seconds (upper bounds). */
static const double latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
};
#define LATENCY_BUCKETS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

void http_metrics_record(struct http_api *api, const struct http_req *r,
                         int64_t end_ns)
{
    int cls = r->status / 100;
    if (cls < 1 || cls > 5)
        cls = 0;
    int m = r->method >= 0 && r->method < HM_COUNT ? r->method : HM_OTHER;
    api->req_count[m][cls]++;
    if (r->kind == KIND_WATCH)
        return; /* a watch's duration is the client's choice */
    double s = (double)(end_ns - r->start_ns) / 1e9;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        if (s <= latency_bounds[i]) {
            api->latency_buckets[i]++;
            break;
        }
    }
    api->latency_count++;
    api->latency_sum_s += s;
}

static void metrics(struct http_api *api, struct http_req *r)
{
    if (!allow(r, "GET"))
        return;
    struct cn_buf *b = &r->body;
    struct server_stats st;
    server_stats_get(api->srv, &st);
    const struct store *s = server_store(api->srv);
    int rc = cn_buf_append_cstr(
        b, "# HELP cairn_http_requests_total HTTP requests answered.\n"
           "# TYPE cairn_http_requests_total counter\n");
    for (int m = 0; m < HM_COUNT; m++) {
        for (int c = 0; c < 6; c++) {
            if (api->req_count[m][c] == 0)
                continue;
            rc |= cn_buf_printf(b,
                                "cairn_http_requests_total{method=\"%s\","
                                "code=\"%dxx\"} %" PRIu64 "\n",
                                http_method_names[m], c, api->req_count[m][c]);
        }
    }
    rc |= cn_buf_append_cstr(
        b, "# HELP cairn_http_request_duration_seconds Request latency.\n"
           "# TYPE cairn_http_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < LATENCY_BUCKETS; i++) {
        cum += api->latency_buckets[i];
        rc |= cn_buf_printf(b,
                            "cairn_http_request_duration_seconds_bucket{le=\""
                            "%g\"} %" PRIu64 "\n",
                            latency_bounds[i], cum);
    }
    rc |= cn_buf_printf(
        b,
        "cairn_http_request_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64
        "\ncairn_http_request_duration_seconds_sum %.9f\n"
        "cairn_http_request_duration_seconds_count %" PRIu64 "\n",
        api->latency_count, api->latency_sum_s, api->latency_count);
    rc |= cn_buf_printf(
        b,
        "# TYPE cairn_proposals_applied_total counter\n"
        "cairn_proposals_applied_total %" PRIu64 "\n"
        "# TYPE cairn_proposals_failed_total counter\n"
        "cairn_proposals_failed_total %" PRIu64 "\n"
        "# TYPE cairn_proposals_pending gauge\n"
        "cairn_proposals_pending %" PRIu64 "\n"
        "# TYPE cairn_store_keys gauge\ncairn_store_keys %" PRIu64 "\n"
        "# TYPE cairn_store_watchers gauge\ncairn_store_watchers %" PRIu64
        "\n# TYPE cairn_store_index gauge\ncairn_store_index %" PRIu64 "\n"
        "# TYPE cairn_raft_applied_index gauge\n"
        "cairn_raft_applied_index %" PRIu64 "\n"
        "# TYPE cairn_http_connections gauge\n"
        "cairn_http_connections %" PRIu64 "\n"
        "# TYPE cairn_http_watches gauge\ncairn_http_watches %" PRIu64 "\n",
        st.proposals_applied, st.proposals_failed, st.proposals_pending,
        store_key_count(s), store_watcher_count(s), store_index(s),
        server_raft_index(api->srv), api->counters.conns_open,
        api->counters.watches_open);
    rc |= cn_buf_printf(b,
                        "# TYPE cairn_wal_fsyncs_total counter\n"
                        "cairn_wal_fsyncs_total %" PRIu64 "\n"
                        "# TYPE cairn_wal_entries_total counter\n"
                        "cairn_wal_entries_total %" PRIu64 "\n"
                        "# TYPE cairn_snapshots_total counter\n"
                        "cairn_snapshots_total %" PRIu64 "\n"
                        "# TYPE cairn_wal_failed gauge\ncairn_wal_failed %d\n",
                        st.wal_batches, st.wal_entries, st.snapshots,
                        server_write_refusal(api->srv) != NULL);
    send_body(r, 200, "text/plain; version=0.0.4; charset=utf-8", 0, rc);
}

/* ---- the server glue ---- */

static int tr_write(void *t, const struct cn_slice *iov, unsigned n,
                    http_write_done_fn *done, void *arg)
{
    return server_conn_write(t, iov, n, done, arg);
}

static void tr_close(void *t)
{
    server_conn_close(t);
}

static void tr_read(void *t, int on)
{
    server_conn_read(t, on);
}

static void tr_deadline(void *t, unsigned ms)
{
    server_conn_deadline(t, ms);
}

static const struct http_transport server_transport = {
    .write = tr_write,
    .close = tr_close,
    .read = tr_read,
    .deadline = tr_deadline,
};

static void *proto_open(void *ctx, struct server_conn *conn)
{
    struct http_conn *c;
    if (http_conn_new(&c, ctx, &server_transport, conn) != CN_OK)
        return NULL;
    return c;
}

static void proto_data(void *state, const char *buf, size_t len)
{
    http_conn_feed(state, buf, len);
}

static void proto_closed(void *state)
{
    http_conn_closed(state);
}

int http_api_new(struct http_api **out, struct server *srv)
{
    struct http_api *api = cn_calloc(1, sizeof(*api));
    if (api == NULL)
        return CN_ENOMEM;
    api->srv = srv;
    const struct cn_config *cfg = server_config(srv);
    api->body_bytes_max = cfg->max_request_bytes ? cfg->max_request_bytes
                                                 : CN_MAX_REQUEST_BYTES_DEFAULT;
    snprintf(api->cluster_id_hex, sizeof(api->cluster_id_hex), "%" PRIx64,
             server_cluster_id(srv));
    snprintf(api->member_id_hex, sizeof(api->member_id_hex), "%" PRIx64,
             server_member_id(srv));
    api->date_sec = -1;
    struct server_proto proto = {
        .open = proto_open,
        .data = proto_data,
        .closed = proto_closed,
        .ctx = api,
    };
    server_set_proto(srv, &proto);
    *out = api;
    return CN_OK;
}

void http_api_free(struct http_api *api)
{
    if (api == NULL)
        return;
    while (api->free_reqs != NULL) {
        struct http_req *r = api->free_reqs;
        api->free_reqs = r->next;
        cn_buf_close(&r->raw);
        cn_buf_close(&r->path);
        cn_buf_close(&r->scratch);
        cn_buf_close(&r->head);
        cn_buf_close(&r->body);
        cn_free(r->evq);
        cn_free(r);
    }
    cn_free(api);
}

void http_api_counters(const struct http_api *api, struct http_counters *out)
{
    *out = api->counters;
}
