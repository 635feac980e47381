/*
 * fleet_store: v2 key calls relative to the fleet key prefix, over the cli
 * module's blocking client. Every call maps etcd's error codes into the
 * cn_err space the rest of the module switches on.
 */
#include <stdio.h>
#include <string.h>

#include "fleet_store.h"

int fleet_store_init(struct fleet_store *st, const char *endpoints,
                     const char *prefix)
{
    memset(st, 0, sizeof(*st));
    st->timeout_ms = 3000;
    size_t n = strlen(prefix);
    if (n == 0 || n + 2 >= sizeof(st->prefix)) {
        snprintf(st->errmsg, sizeof(st->errmsg), "bad key prefix \"%s\"",
                 prefix);
        return CN_EINVAL;
    }
    snprintf(st->prefix, sizeof(st->prefix), "%s%s%s",
             prefix[0] == '/' ? "" : "/", prefix,
             prefix[n - 1] == '/' ? "" : "/");
    struct cli_global g = {0};
    g.endpoints = endpoints;
    g.timeout_ms = st->timeout_ms;
    if (cli_client_init(&st->cl, &g) != 0) {
        snprintf(st->errmsg, sizeof(st->errmsg), "%s",
                 st->cl.fail.data ? st->cl.fail.data : "bad endpoints");
        cli_client_close(&st->cl);
        return CN_EINVAL;
    }
    return 0;
}

void fleet_store_close(struct fleet_store *st)
{
    cli_client_close(&st->cl);
}

static int map_etcd(struct fleet_store *st, const struct cli_etcd_error *e)
{
    snprintf(st->errmsg, sizeof(st->errmsg), "%d: %s (%s)", e->code,
             e->message ? e->message : "", e->cause ? e->cause : "");
    if (e->index)
        st->index = e->index;
    switch (e->code) {
    case 100:
        return CN_ENOTFOUND;
    case 101:
        return CN_EBUSY;
    case 105:
        return CN_EEXIST;
    case 401:
        return CN_EAGAIN;
    default:
        return CN_EIO;
    }
}

static int call(struct fleet_store *st, const char *method, const char *key,
                const char *query, const char *form, int flags,
                int64_t deadline_ms, struct cli_resp *resp)
{
    struct cn_buf full = {0};
    struct cli_resp local;
    struct cli_etcd_error eerr;
    if (cn_buf_printf(&full, "%s%s", st->prefix, key) != 0)
        return CN_ENOMEM;
    struct cli_keys_req req = {
        .method = method,
        .key = full.data,
        .query = query,
        .form = form,
        .flags = flags,
        .deadline_ms =
            deadline_ms ? deadline_ms : cli_now_ms() + st->timeout_ms,
    };
    int r = cli_keys_call(&st->cl, &req, resp ? resp : &local, &eerr);
    cn_buf_close(&full);
    int rc;
    if (r == CLI_KEYS_OK) {
        st->index = (resp ? resp : &local)->index;
        rc = 0;
    } else if (r == CLI_KEYS_ETCD) {
        rc = map_etcd(st, &eerr);
    } else {
        snprintf(st->errmsg, sizeof(st->errmsg), "%s",
                 st->cl.fail.data ? st->cl.fail.data : "request failed");
        if (cli_signal_pending())
            rc = CN_ESHUTDOWN;
        else if (strstr(st->errmsg, "deadline exceeded"))
            rc = CN_ETIMEDOUT;
        else
            rc = CN_EIO;
    }
    cli_etcd_error_close(&eerr);
    if (resp == NULL)
        cli_resp_close(&local);
    return rc;
}

int fleet_store_get(struct fleet_store *st, const char *key, int recursive,
                    struct cli_resp *resp)
{
    return call(st, "GET", key, recursive ? "recursive=true&sorted=true" : NULL,
                NULL, 0, 0, resp);
}

int fleet_store_set(struct fleet_store *st, const char *key, const char *value,
                    int64_t ttl_s, int prev_exist, const char *prev_value)
{
    struct cn_buf form = {0};
    int rc = cli_form_add(&form, "value", value);
    if (rc == 0 && ttl_s > 0) {
        char t[32];
        snprintf(t, sizeof(t), "%lld", (long long)ttl_s);
        rc = cli_form_add(&form, "ttl", t);
    }
    if (rc == 0 && prev_exist != FLEET_PREV_ANY)
        rc = cli_form_add(&form, "prevExist", prev_exist ? "true" : "false");
    if (rc == 0 && prev_value)
        rc = cli_form_add(&form, "prevValue", prev_value);
    if (rc == 0)
        rc = call(st, "PUT", key, NULL, form.data, CLI_REQ_ONESHOT, 0, NULL);
    cn_buf_close(&form);
    return rc;
}

int fleet_store_delete(struct fleet_store *st, const char *key, int recursive,
                       const char *prev_value)
{
    struct cn_buf q = {0};
    int rc = 0;
    if (recursive)
        rc = cli_form_add(&q, "recursive", "true");
    if (rc == 0 && prev_value)
        rc = cli_form_add(&q, "prevValue", prev_value);
    if (rc == 0)
        rc = call(st, "DELETE", key, q.data, NULL, CLI_REQ_ONESHOT, 0, NULL);
    cn_buf_close(&q);
    return rc;
}

int fleet_store_watch(struct fleet_store *st, const char *key, int recursive,
                      uint64_t wait_index, int64_t deadline_ms,
                      struct cli_resp *resp)
{
    char q[96];
    snprintf(q, sizeof(q), "wait=true%s&waitIndex=%llu",
             recursive ? "&recursive=true" : "",
             (unsigned long long)wait_index);
    int rc = call(st, "GET", key, q, NULL, CLI_REQ_WAIT, deadline_ms, resp);
    return rc;
}

const char *fleet_node_name(const struct cli_node *n)
{
    const char *s = strrchr(n->key, '/');
    return s ? s + 1 : n->key;
}

const struct cli_node *fleet_node_child(const struct cli_node *n,
                                        const char *name)
{
    if (n == NULL)
        return NULL;
    for (size_t i = 0; i < n->node_count; i++)
        if (strcmp(fleet_node_name(&n->nodes[i]), name) == 0)
            return &n->nodes[i];
    return NULL;
}
