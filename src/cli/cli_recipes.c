/*
 * cli_recipes: service registration and lookup on the public v2 API, plus
 * the helpers the election and lock recipes share (cli_cmd_elect.c).
 * docs/recipes.md states the guarantees and their limits.
 *
 * register keeps /services/<service>/<instance> alive:
 *
 *   start --> WRITE --ok--> REFRESH (every ttl/3) --check changes--> WRITE
 *                              |  \--100 (key expired meanwhile)--> WRITE
 *                              \--signal / command exit--> DELETE, exit
 *
 *   WRITE   PUT value=<json> ttl=<ttl> (a watch event: lookups see it)
 *   REFRESH PUT refresh=true prevExist=true ttl=<ttl> (no watch event)
 *   DELETE  DELETE prevIndex=<our last modifiedIndex> (never removes a
 *           registration somebody else wrote since)
 *
 * lookup lists the instances, then (--watch) follows one recursive watch,
 * each request starting at the index after the last event seen, so no event
 * is missed; when the server's history no longer holds that index (error
 * 401) it lists again and prints the difference.
 */
#include "cli_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NFLAGS(a) (sizeof(a) / sizeof((a)[0]))

int cli_recipe_call(struct cli_client *cl, const struct cli_global *g,
                    const char *method, const char *key, const char *query,
                    const char *form, int flags, int64_t deadline_ms,
                    struct cli_resp *resp, struct cli_etcd_error *e)
{
    struct cli_keys_req req = {
        .method = method,
        .key = key,
        .query = query,
        .form = form,
        .flags = flags,
        .deadline_ms =
            deadline_ms == 0 ? cli_now_ms() + g->total_timeout_ms : deadline_ms,
    };
    return cli_keys_call(cl, &req, resp, e);
}

int cli_recipe_refresh(struct cli_client *cl, const struct cli_global *g,
                       const char *key, long long ttl, const char *prev_value,
                       uint64_t *index, struct cli_etcd_error *e)
{
    struct cn_buf q = {0}, form = {0}, num = {0};
    cli_form_add(&q, "prevExist", "true");
    if (prev_value != NULL)
        cli_form_add(&q, "prevValue", prev_value);
    cn_buf_printf(&num, "%lld", ttl);
    cli_form_add(&form, "refresh", "true");
    cli_form_add(&form, "ttl", num.data);
    struct cli_resp resp;
    int r =
        cli_recipe_call(cl, g, "PUT", key, q.data, form.data, 0, 0, &resp, e);
    if (r == CLI_KEYS_OK)
        *index = resp.node->modified_index;
    cli_resp_close(&resp);
    cn_buf_close(&q);
    cn_buf_close(&form);
    cn_buf_close(&num);
    return r;
}

int cli_recipe_watch(struct cli_client *cl, const char *key, int recursive,
                     uint64_t wait_index, int64_t deadline_ms,
                     struct cli_resp *resp, struct cli_etcd_error *e,
                     int *timed_out)
{
    struct cn_buf q = {0}, num = {0};
    cn_buf_printf(&num, "%llu", (unsigned long long)wait_index);
    cli_form_add(&q, "recursive", recursive ? "true" : "false");
    cli_form_add(&q, "wait", "true");
    cli_form_add(&q, "waitIndex", num.data);
    struct cli_keys_req req = {.method = "GET",
                               .key = key,
                               .query = q.data,
                               .flags = CLI_REQ_WAIT,
                               .deadline_ms = deadline_ms};
    int r = cli_keys_call(cl, &req, resp, e);
    *timed_out = 0;
    if (r == CLI_KEYS_FAILED && cl->fail.data != NULL &&
        (strcmp(cl->fail.data, "context deadline exceeded") == 0 ||
         strcmp(cl->fail.data, "client: response body is empty") == 0))
        *timed_out = 1;
    cn_buf_close(&q);
    cn_buf_close(&num);
    return r;
}

void cli_recipe_split(char **pos, int npos, int *nargs, char ***cmd)
{
    *nargs = npos;
    *cmd = NULL;
    for (int i = 0; i < npos; i++) {
        if (strcmp(pos[i], "--") == 0) {
            *nargs = i;
            if (i + 1 < npos)
                *cmd = pos + i + 1;
            return;
        }
    }
}

void cli_recipe_log(const char *what, const char *fmt, ...)
{
    va_list ap;
    char ts[32];
    cli_utc_now(ts, sizeof(ts));
    fflush(stdout);
    fprintf(stderr, "%s cairnctl %s: ", ts, what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

int cli_action_removes(const char *action)
{
    return strcmp(action, "delete") == 0 || strcmp(action, "expire") == 0 ||
           strcmp(action, "compareAndDelete") == 0;
}

/* ---- register -------------------------------------------------------- */

struct reg {
    struct cli_client cl;
    const struct cli_global *g;
    char key[CLI_URL_MAX];
    const char *addr;
    long long ttl;          /* seconds */
    const char *check_cmd;  /* --check */
    const char *check_http; /* --http */
    const char *check_tcp;  /* --tcp */
    int written_healthy;    /* -1: nothing written yet */
    uint64_t index;         /* our last modifiedIndex */
};

static int reg_check(struct reg *r, int64_t deadline_ms)
{
    if (r->check_cmd != NULL)
        return cli_proc_check(r->check_cmd, deadline_ms) == CN_OK;
    if (r->check_http != NULL) {
        char errmsg[CN_ERRMSG_SIZE];
        struct cli_url u;
        if (cli_url_parse(r->check_http, &u, errmsg) != CN_OK)
            return 0;
        const char *path = strstr(r->check_http, "://");
        path = path ? strchr(path + 3, '/') : NULL;
        struct cli_http_conn c;
        struct cli_http_resp hr;
        cli_http_conn_init(&c);
        cli_http_resp_init(&hr);
        struct cli_http_req req = {.method = "GET",
                                   .target = path ? path : "/",
                                   .deadline_ms = deadline_ms};
        int ok =
            cli_http_do(&c, &u, &req, &hr) == CN_OK && hr.status / 100 == 2;
        cli_http_resp_close(&hr);
        cli_http_conn_close(&c);
        return ok;
    }
    if (r->check_tcp != NULL) {
        char host[CLI_HOST_MAX];
        const char *colon = strrchr(r->check_tcp, ':');
        if (colon == NULL)
            return 0;
        snprintf(host, sizeof(host), "%.*s", (int)(colon - r->check_tcp),
                 r->check_tcp);
        return cli_tcp_probe(host, colon + 1, deadline_ms) == CN_OK;
    }
    return 1;
}

static int reg_write(struct reg *r, int healthy)
{
    struct cn_buf value = {0}, form = {0}, num = {0};
    char ts[32];
    cli_utc_now(ts, sizeof(ts));
    cli_json_service_encode(&value, r->addr, healthy, ts);
    cn_buf_printf(&num, "%lld", r->ttl);
    cli_form_add(&form, "ttl", num.data);
    cli_form_add(&form, "value", value.data);
    struct cli_resp resp;
    struct cli_etcd_error e;
    int res = cli_recipe_call(&r->cl, r->g, "PUT", r->key, NULL, form.data, 0,
                              0, &resp, &e);
    if (res == CLI_KEYS_OK) {
        r->index = resp.node->modified_index;
        r->written_healthy = healthy;
        cli_recipe_log("register", "%s %s (index %llu)", r->key,
                       healthy ? "healthy" : "unhealthy",
                       (unsigned long long)r->index);
    } else if (res == CLI_KEYS_ETCD) {
        cli_recipe_log("register", "%s: %d: %s (%s)", r->key, e.code, e.message,
                       e.cause);
    } else {
        cli_recipe_log("register", "%s: %s", r->key, r->cl.fail.data);
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&e);
    cn_buf_close(&value);
    cn_buf_close(&form);
    cn_buf_close(&num);
    return res;
}

/* One heartbeat: write on a change of health (or when the key is gone),
 * otherwise refresh the TTL. */
static void reg_beat(struct reg *r, int healthy)
{
    if (r->written_healthy != healthy) {
        reg_write(r, healthy);
        return;
    }
    struct cli_etcd_error e;
    int res =
        cli_recipe_refresh(&r->cl, r->g, r->key, r->ttl, NULL, &r->index, &e);
    if (res == CLI_KEYS_ETCD && e.code == 100) {
        cli_recipe_log("register", "%s expired; writing it again", r->key);
        reg_write(r, healthy);
    } else if (res == CLI_KEYS_FAILED) {
        cli_recipe_log("register", "%s: %s", r->key, r->cl.fail.data);
    }
    cli_etcd_error_close(&e);
}

/* The modifiedIndex of our own registration, read back from the store:
 * used when a signal cut a write short after the server applied it, so our
 * remembered index is stale. 0 when the key is gone or holds another
 * address (someone else's registration: leave it alone). */
static uint64_t reg_current_index(struct reg *r)
{
    struct cli_resp resp;
    struct cli_etcd_error e;
    uint64_t index = 0;
    int res = cli_recipe_call(&r->cl, r->g, "GET", r->key, "quorum=true", NULL,
                              CLI_REQ_ONESHOT, 0, &resp, &e);
    if (res == CLI_KEYS_OK && resp.node != NULL) {
        struct cli_service_value v;
        const char *val = resp.node->value;
        if (cli_json_service_decode(val, strlen(val), &v) == CN_OK) {
            if (v.addr != NULL && strcmp(v.addr, r->addr) == 0)
                index = resp.node->modified_index;
            cli_service_value_close(&v);
        }
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&e);
    return index;
}

/* Compare-and-delete of our registration at index. Returns CLI_KEYS_*;
 * *code is the etcd error code on CLI_KEYS_ETCD. */
static int reg_delete_at(struct reg *r, uint64_t index, int *code)
{
    struct cn_buf q = {0};
    char num[32];
    snprintf(num, sizeof(num), "%llu", (unsigned long long)index);
    cli_form_add(&q, "prevIndex", num);
    struct cli_resp resp;
    struct cli_etcd_error e;
    int res = cli_recipe_call(&r->cl, r->g, "DELETE", r->key, q.data, NULL,
                              CLI_REQ_ONESHOT, 0, &resp, &e);
    *code = res == CLI_KEYS_ETCD ? e.code : 0;
    if (res == CLI_KEYS_OK)
        cli_recipe_log("register", "%s removed", r->key);
    else if (res != CLI_KEYS_ETCD || e.code != 101)
        cli_recipe_log("register", "%s not removed: %s", r->key,
                       res == CLI_KEYS_ETCD ? e.message : r->cl.fail.data);
    cli_resp_close(&resp);
    cli_etcd_error_close(&e);
    cn_buf_close(&q);
    return res;
}

/* Removes our registration. A write cut short by the signal that ends us
 * may have been applied without our learning its index (or, for the first
 * write, at all): on a failed compare, or when nothing was confirmed, the
 * current index of a registration with our address is read back and the
 * delete retried, a bounded number of times. */
static void reg_delete(struct reg *r)
{
    uint64_t index = r->written_healthy >= 0 ? r->index : 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (index == 0 && (index = reg_current_index(r)) == 0)
            return;
        int code = 0;
        int res = reg_delete_at(r, index, &code);
        if (res != CLI_KEYS_ETCD || code != 101)
            return;
        index = 0;
    }
}

int cli_cmd_register(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                     char **argv)
{
    struct reg r;
    memset(&r, 0, sizeof(r));
    r.ttl = 10;
    r.g = g;
    r.written_healthy = -1;
    long long interval_ms = 0;
    struct cli_flag flags[] = {
        {"ttl", CLI_FLAG_INT, &r.ttl, "value",
         "seconds the registration outlives its last heartbeat",
         "(default: 10)"},
        {"interval", CLI_FLAG_INT, &interval_ms, "value",
         "milliseconds between heartbeats and checks", "(default: ttl/3)"},
        {"check", CLI_FLAG_STRING, &r.check_cmd, "value",
         "shell command; healthy while it exits 0", NULL},
        {"http", CLI_FLAG_STRING, &r.check_http, "value",
         "URL; healthy while a GET answers 2xx", NULL},
        {"tcp", CLI_FLAG_STRING, &r.check_tcp, "value",
         "host:port; healthy while it accepts connections", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, nargs = 0, rc = CLI_EXIT_OK;
    char **command = NULL;
    pid_t child = 0;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    cli_recipe_split(pos, npos, &nargs, &command);
    if (nargs != 3 || strchr(pos[0], '/') || strchr(pos[1], '/') ||
        !pos[0][0] || !pos[1][0]) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS,
                      "usage: register <service> <instance> <addr> "
                      "[-- command...] (names without '/')");
        goto out;
    }
    if (r.ttl < 1 || (!!r.check_cmd + !!r.check_http + !!r.check_tcp) > 1) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS,
                      "--ttl must be at least 1 and at most one of --check, "
                      "--http, --tcp may be given");
        goto out;
    }
    if (interval_ms <= 0)
        interval_ms = r.ttl * 1000 / 3;
    snprintf(r.key, sizeof(r.key), "/services/%s/%s", pos[0], pos[1]);
    r.addr = pos[2];
    if ((rc = cli_connect(&r.cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (command != NULL && cli_proc_spawn(command, NULL, &child) != CN_OK) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "cannot start %s", command[0]);
        goto out_client;
    }
    int status = 0, ended = 0;
    while (!cli_signal_pending()) {
        int64_t next = cli_now_ms() + interval_ms;
        if (child > 0 && cli_proc_poll(child, &status)) {
            ended = 1;
            break;
        }
        int healthy = reg_check(&r, next);
        if (child > 0 && cli_proc_poll(child, &status)) {
            ended = 1;
            break;
        }
        reg_beat(&r, healthy);
        while (!cli_signal_pending() && cli_now_ms() < next) {
            if (child > 0 && cli_proc_poll(child, &status)) {
                ended = 1;
                break;
            }
            cli_sleep_ms(20);
        }
        if (ended)
            break;
    }
    int sig = cli_signal_take();
    if (child > 0 && !ended)
        status = cli_proc_stop(child, 5000);
    reg_delete(&r);
    if (child <= 0 && sig != 0)
        status = CLI_EXIT_OK;
    rc = child > 0 ? status : CLI_EXIT_OK;
out_client:
    cli_client_close(&r.cl);
out:
    cn_free(pos);
    return rc;
}

/* ---- lookup ---------------------------------------------------------- */

struct inst {
    char *name;
    char *addr;
    int healthy;
};

struct inst_set {
    struct inst *v;
    size_t n;
};

static void inst_set_free(struct inst_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        cn_free(s->v[i].name);
        cn_free(s->v[i].addr);
    }
    cn_free(s->v);
    s->v = NULL;
    s->n = 0;
}

static struct inst *inst_find(struct inst_set *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].name, name) == 0)
            return &s->v[i];
    return NULL;
}

static void inst_decode(const char *value, char **addr, int *healthy)
{
    struct cli_service_value sv;
    if (cli_json_service_decode(value, strlen(value), &sv) == CN_OK) {
        *addr = cn_strdup(sv.addr);
        *healthy = sv.healthy;
    } else {
        *addr = cn_strdup(value); /* a plain address written by hand */
        *healthy = 1;
    }
    cli_service_value_close(&sv);
}

static int inst_put(struct inst_set *s, const char *name, const char *value)
{
    struct inst *in = inst_find(s, name);
    if (in == NULL) {
        struct inst *v = cn_realloc(s->v, (s->n + 1) * sizeof(*v));
        if (v == NULL)
            return CN_ENOMEM;
        s->v = v;
        in = &s->v[s->n++];
        in->name = cn_strdup(name);
    } else {
        cn_free(in->addr);
    }
    inst_decode(value, &in->addr, &in->healthy);
    return CN_OK;
}

static void inst_remove(struct inst_set *s, const char *name)
{
    struct inst *in = inst_find(s, name);
    if (in == NULL)
        return;
    cn_free(in->name);
    cn_free(in->addr);
    *in = s->v[--s->n];
}

static int inst_set_copy(struct inst_set *dst, const struct inst_set *src)
{
    dst->v = cn_calloc(src->n ? src->n : 1, sizeof(*dst->v));
    dst->n = 0;
    if (dst->v == NULL)
        return CN_ENOMEM;
    for (size_t i = 0; i < src->n; i++) {
        dst->v[i].name = cn_strdup(src->v[i].name);
        dst->v[i].addr = cn_strdup(src->v[i].addr);
        dst->v[i].healthy = src->v[i].healthy;
        dst->n++;
    }
    return CN_OK;
}

/* Lists the service: the set and the index to watch from. Returns
 * CLI_KEYS_OK (a missing service is an empty set) or an error result. */
static int lookup_list(struct cli_client *cl, const struct cli_global *g,
                       const char *dir, struct inst_set *s, uint64_t *index)
{
    struct cli_resp resp;
    struct cli_etcd_error e;
    int r = cli_recipe_call(cl, g, "GET", dir,
                            "quorum=true&recursive=true&sorted=true", NULL, 0,
                            0, &resp, &e);
    if (r == CLI_KEYS_ETCD && e.code == 100) {
        *index = e.index;
        r = CLI_KEYS_OK;
    } else if (r == CLI_KEYS_OK) {
        *index = resp.index;
        for (size_t i = 0; i < resp.node->node_count; i++) {
            const struct cli_node *n = &resp.node->nodes[i];
            const char *base = strrchr(n->key, '/');
            if (!n->dir)
                inst_put(s, base ? base + 1 : n->key, n->value);
        }
    } else if (r == CLI_KEYS_ETCD) {
        cli_recipe_log("lookup", "%d: %s (%s)", e.code, e.message, e.cause);
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&e);
    return r;
}

static void print_inst(struct cn_buf *out, const char *prefix,
                       const struct inst *in)
{
    cn_buf_printf(out, "%s%s %s %s\n", prefix, in->name, in->addr,
                  in->healthy ? "healthy" : "unhealthy");
}

/* Prints how "before" became "after" (visible = passes the filter). */
static void print_diff(struct inst_set *before, struct inst_set *after,
                       int only_healthy)
{
    struct cn_buf out = {0};
    for (size_t i = 0; i < before->n; i++) {
        struct inst *b = &before->v[i];
        struct inst *a = inst_find(after, b->name);
        int was = !only_healthy || b->healthy;
        int is = a != NULL && (!only_healthy || a->healthy);
        if (was && !is)
            cn_buf_printf(&out, "- %s\n", b->name);
    }
    for (size_t i = 0; i < after->n; i++) {
        struct inst *a = &after->v[i];
        struct inst *b = inst_find(before, a->name);
        int is = !only_healthy || a->healthy;
        int was = b != NULL && (!only_healthy || b->healthy);
        int same = b != NULL && strcmp(a->addr, b->addr) == 0 &&
                   a->healthy == b->healthy;
        if (is && (!was || !same))
            print_inst(&out, "+ ", a);
    }
    cli_out(&out);
    cn_buf_close(&out);
}

static int lookup_watch(struct cli_client *cl, const struct cli_global *g,
                        const char *dir, struct inst_set *known, uint64_t index,
                        int only_healthy)
{
    size_t dirlen = strlen(dir);
    while (!cli_signal_pending()) {
        struct cli_resp resp;
        struct cli_etcd_error e;
        int timed_out = 0;
        int r =
            cli_recipe_watch(cl, dir, 1, index + 1, -1, &resp, &e, &timed_out);
        if (r == CLI_KEYS_ETCD && e.code == 401) {
            /* History cleared past our index: list again, print the
             * difference and go on from the new index. */
            struct inst_set now = {0};
            uint64_t idx = index;
            if (lookup_list(cl, g, dir, &now, &idx) == CLI_KEYS_OK) {
                print_diff(known, &now, only_healthy);
                inst_set_free(known);
                *known = now;
                index = idx;
            } else {
                inst_set_free(&now);
                cli_sleep_ms(1000);
            }
        } else if (r == CLI_KEYS_OK) {
            struct inst_set before = {0};
            inst_set_copy(&before, known);
            const char *key = resp.node->key;
            if (strncmp(key, dir, dirlen) == 0 && key[dirlen] == '/' &&
                strchr(key + dirlen + 1, '/') == NULL && !resp.node->dir) {
                const char *name = key + dirlen + 1;
                if (cli_action_removes(resp.action))
                    inst_remove(known, name);
                else
                    inst_put(known, name, resp.node->value);
            } else if (strcmp(key, dir) == 0 &&
                       cli_action_removes(resp.action)) {
                inst_set_free(known); /* the whole service went */
            }
            print_diff(&before, known, only_healthy);
            inst_set_free(&before);
            index = resp.node->modified_index;
        } else if (r == CLI_KEYS_ETCD) {
            cli_recipe_log("lookup", "%d: %s (%s)", e.code, e.message, e.cause);
            cli_sleep_ms(1000);
        } else if (!timed_out && !cli_signal_pending()) {
            cli_recipe_log("lookup", "%s", cl->fail.data);
            cli_sleep_ms(1000);
        }
        cli_resp_close(&resp);
        cli_etcd_error_close(&e);
    }
    return CLI_EXIT_OK;
}

int cli_cmd_lookup(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv)
{
    int only_healthy = 0, watch = 0;
    struct cli_flag flags[] = {
        {"healthy", CLI_FLAG_BOOL, &only_healthy, NULL,
         "only instances whose value says \"healthy\":true", NULL},
        {"watch,w", CLI_FLAG_BOOL, &watch, NULL,
         "after the list, print changes as they happen until CTRL+C", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    struct inst_set set = {0};
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    if (npos != 1 || strchr(pos[0], '/') || !pos[0][0]) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "usage: lookup <service> [--healthy] "
                                         "[--watch]");
        goto out;
    }
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    char dir[CLI_URL_MAX];
    snprintf(dir, sizeof(dir), "/services/%s", pos[0]);
    uint64_t index = 0;
    int r = lookup_list(&cl, g, dir, &set, &index);
    if (r == CLI_KEYS_FAILED) {
        rc = cli_client_report(&cl, CLI_EXIT_SERVER);
        goto out_client;
    }
    if (r == CLI_KEYS_ETCD) {
        rc = CLI_EXIT_SERVER;
        goto out_client;
    }
    struct cn_buf out = {0};
    for (size_t i = 0; i < set.n; i++)
        if (!only_healthy || set.v[i].healthy)
            print_inst(&out, "", &set.v[i]);
    cli_out(&out);
    cn_buf_close(&out);
    if (watch)
        rc = lookup_watch(&cl, g, dir, &set, index, only_healthy);
out_client:
    cli_client_close(&cl);
out:
    inst_set_free(&set);
    cn_free(pos);
    return rc;
}
