/*
 * cli_elect: leader election on a TTL key (the state machine and its
 * guarantees are in cli_elect.h; docs/recipes.md states the limits).
 *
 * Invariants: every write carries a compare on our own value (create only
 * if absent, refresh and delete only if still ours); e->leader is 1 only
 * between a won campaign and the first refresh answered 100/101, a resign,
 * or (cli_elect_step) any failed refresh.
 */
#include "cli_elect.h"

#include <stdio.h>
#include <string.h>

#include "cli_int.h"

int cli_elect_init(struct cli_elect *e, struct cli_client *cl, const char *key,
                   const char *value, long long ttl_s, int64_t timeout_ms)
{
    memset(e, 0, sizeof(*e));
    e->cl = cl;
    e->ttl_s = ttl_s;
    e->interval_ms = ttl_s * 1000 / 3;
    e->timeout_ms = timeout_ms;
    if (key == NULL || key[0] == '\0' || ttl_s < 1) {
        snprintf(e->errmsg, sizeof(e->errmsg),
                 "election needs a key and ttl >= 1");
        return CN_EINVAL;
    }
    e->key = cn_strdup(key);
    if (e->key == NULL || (value != NULL && !(e->value = cn_strdup(value)))) {
        snprintf(e->errmsg, sizeof(e->errmsg), "out of memory");
        return CN_ENOMEM;
    }
    return CN_OK;
}

void cli_elect_close(struct cli_elect *e)
{
    cn_free(e->key);
    cn_free(e->value);
    cn_free(e->holder);
    e->key = e->value = e->holder = NULL;
    e->leader = 0;
}

/* Records a failed call in e and returns its code. */
static int failed(struct cli_elect *e, int r, const struct cli_etcd_error *ee)
{
    if (r == CLI_KEYS_ETCD) {
        e->etcd_code = ee->code;
        snprintf(e->errmsg, sizeof(e->errmsg), "%d: %s (%s)", ee->code,
                 ee->message ? ee->message : "", ee->cause ? ee->cause : "");
        switch (ee->code) {
        case 100:
            return CN_ENOTFOUND;
        case 101:
            return CN_EBUSY;
        case 105:
            return CN_EEXIST;
        default:
            return CN_EIO;
        }
    }
    e->etcd_code = 0;
    snprintf(e->errmsg, sizeof(e->errmsg), "%s",
             e->cl->fail.data ? e->cl->fail.data : "request failed");
    if (cli_signal_pending())
        return CN_ESHUTDOWN;
    if (strstr(e->errmsg, "deadline exceeded"))
        return CN_ETIMEDOUT;
    return CN_EIO;
}

/* One key call with e's deadline; resp and ee are closed by the caller. */
static int call(struct cli_elect *e, const char *method, const char *query,
                const char *form, int flags, struct cli_resp *resp,
                struct cli_etcd_error *ee)
{
    struct cli_keys_req req = {
        .method = method,
        .key = e->key,
        .query = query,
        .form = form,
        .flags = flags,
        .deadline_ms = cli_now_ms() + e->timeout_ms,
    };
    return cli_keys_call(e->cl, &req, resp, ee);
}

int cli_elect_campaign(struct cli_elect *e, uint64_t *index)
{
    CN_ASSERT(e->value != NULL);
    struct cn_buf form = {0};
    char ttl[32];
    snprintf(ttl, sizeof(ttl), "%lld", e->ttl_s);
    e->leader = 0;
    if (cli_form_add(&form, "ttl", ttl) != CN_OK ||
        cli_form_add(&form, "value", e->value) != CN_OK) {
        cn_buf_close(&form);
        snprintf(e->errmsg, sizeof(e->errmsg), "out of memory");
        return CN_ENOMEM;
    }
    struct cli_resp resp;
    struct cli_etcd_error ee;
    int r = call(e, "PUT", "prevExist=false", form.data, CLI_REQ_ONESHOT, &resp,
                 &ee);
    int rc = CN_OK;
    if (r == CLI_KEYS_OK) {
        e->leader = 1;
        e->etcd_code = 0;
        *index = resp.node ? resp.node->modified_index : resp.index;
    } else {
        rc = failed(e, r, &ee);
        if (rc == CN_EEXIST)
            *index = ee.index;
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&ee);
    cn_buf_close(&form);
    return rc;
}

int cli_elect_refresh(struct cli_elect *e, uint64_t *index)
{
    CN_ASSERT(e->value != NULL);
    struct cn_buf q = {0}, form = {0};
    char ttl[32];
    snprintf(ttl, sizeof(ttl), "%lld", e->ttl_s);
    int rc = CN_OK;
    if (cli_form_add(&q, "prevExist", "true") != CN_OK ||
        cli_form_add(&q, "prevValue", e->value) != CN_OK ||
        cli_form_add(&form, "refresh", "true") != CN_OK ||
        cli_form_add(&form, "ttl", ttl) != CN_OK) {
        snprintf(e->errmsg, sizeof(e->errmsg), "out of memory");
        rc = CN_ENOMEM;
        goto out;
    }
    struct cli_resp resp;
    struct cli_etcd_error ee;
    int r = call(e, "PUT", q.data, form.data, 0, &resp, &ee);
    if (r == CLI_KEYS_OK) {
        e->etcd_code = 0;
        if (resp.node != NULL)
            *index = resp.node->modified_index;
    } else {
        rc = failed(e, r, &ee);
        if (rc == CN_ENOTFOUND || rc == CN_EBUSY)
            e->leader = 0;
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&ee);
out:
    cn_buf_close(&q);
    cn_buf_close(&form);
    return rc;
}

int cli_elect_resign(struct cli_elect *e)
{
    if (!e->leader)
        return CN_OK;
    e->leader = 0;
    struct cn_buf q = {0};
    if (cli_form_add(&q, "prevValue", e->value) != CN_OK) {
        cn_buf_close(&q);
        return CN_ENOMEM;
    }
    struct cli_resp resp;
    struct cli_etcd_error ee;
    int r = call(e, "DELETE", q.data, NULL, CLI_REQ_ONESHOT, &resp, &ee);
    int rc = r == CLI_KEYS_OK ? CN_OK : failed(e, r, &ee);
    cli_resp_close(&resp);
    cli_etcd_error_close(&ee);
    cn_buf_close(&q);
    return rc;
}

void cli_elect_wait(struct cli_elect *e, uint64_t index)
{
    while (!cli_signal_pending()) {
        struct cli_resp resp;
        struct cli_etcd_error ee;
        int timed_out = 0;
        int r = cli_recipe_watch(e->cl, e->key, 0, index + 1, -1, &resp, &ee,
                                 &timed_out);
        int done = 1;
        if (r == CLI_KEYS_OK && resp.node != NULL) {
            index = resp.node->modified_index;
            done = cli_action_removes(resp.action);
        } else if (r == CLI_KEYS_FAILED && timed_out) {
            done = 0;
        } else if (r == CLI_KEYS_FAILED) {
            cli_sleep_ms(500);
        }
        cli_resp_close(&resp);
        cli_etcd_error_close(&ee);
        if (done)
            return;
    }
}

/* A follower's look at the key: remembers the holder's value. */
static int learn_holder(struct cli_elect *e)
{
    struct cli_resp resp;
    struct cli_etcd_error ee;
    int r = call(e, "GET", NULL, NULL, 0, &resp, &ee);
    int rc = CN_OK;
    if (r == CLI_KEYS_OK && resp.node != NULL) {
        char *v = cn_strdup(resp.node->value);
        if (v == NULL) {
            rc = CN_ENOMEM;
        } else {
            cn_free(e->holder);
            e->holder = v;
        }
    } else if (r != CLI_KEYS_OK) {
        rc = failed(e, r, &ee);
        if (rc == CN_ENOTFOUND) /* expired meanwhile: next step campaigns */
            rc = CN_OK;
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&ee);
    return rc;
}

/* Sets e->holder to our own value (or forgets it with NULL). */
static void set_holder(struct cli_elect *e, const char *v)
{
    cn_free(e->holder);
    e->holder = v ? cn_strdup(v) : NULL;
}

int cli_elect_step(struct cli_elect *e)
{
    uint64_t index = 0;
    int rc;
    if (e->leader) {
        rc = cli_elect_refresh(e, &index);
        if (rc == CN_OK)
            return CN_OK;
        e->leader = 0; /* a leader that cannot refresh steps down at once */
        set_holder(e, NULL);
        if (rc != CN_EBUSY && rc != CN_ENOTFOUND)
            return rc;
    }
    rc = cli_elect_campaign(e, &index);
    if (rc == CN_OK) {
        set_holder(e, e->value);
        return CN_OK;
    }
    if (rc != CN_EEXIST)
        return rc;
    return learn_holder(e);
}

/* Reports v when it differs from *current (owned), which then holds it. */
static void observed(char **current, const char *v, cli_elect_observe_fn *fn,
                     void *ctx)
{
    if (*current != NULL && strcmp(*current, v) == 0)
        return;
    fn(ctx, v);
    cn_free(*current);
    *current = cn_strdup(v);
}

/* Follows the key from index + 1 until the watch history runs out, a
 * watch fails or a signal arrives; *index follows the events. */
static void observe_watch(struct cli_elect *e, uint64_t *index, char **current,
                          cli_elect_observe_fn *fn, void *ctx)
{
    while (!cli_signal_pending()) {
        struct cli_resp resp;
        struct cli_etcd_error ee;
        int timed_out = 0;
        int r = cli_recipe_watch(e->cl, e->key, 0, *index + 1, -1, &resp, &ee,
                                 &timed_out);
        int again = r == CLI_KEYS_OK || (r == CLI_KEYS_FAILED && timed_out);
        if (r == CLI_KEYS_OK && resp.node != NULL) {
            *index = resp.node->modified_index;
            if (!cli_action_removes(resp.action)) {
                observed(current, resp.node->value, fn, ctx);
            } else {
                cn_free(*current);
                *current = NULL;
            }
        } else if (r == CLI_KEYS_FAILED && !timed_out) {
            cli_sleep_ms(500);
        }
        cli_resp_close(&resp);
        cli_etcd_error_close(&ee);
        if (!again)
            return;
    }
}

int cli_elect_observe(struct cli_elect *e, cli_elect_observe_fn *fn, void *ctx)
{
    char *current = NULL;
    uint64_t index = 0; /* kept when a read fails with an etcd error */
    int rc = CN_OK;
    while (!cli_signal_pending()) {
        struct cli_resp resp;
        struct cli_etcd_error ee;
        int r = call(e, "GET", "quorum=true", NULL, 0, &resp, &ee);
        if (r == CLI_KEYS_OK && resp.node != NULL) {
            index = resp.index;
            observed(&current, resp.node->value, fn, ctx);
        } else if (r == CLI_KEYS_ETCD && ee.code == 100) {
            index = ee.index;
        }
        if (r == CLI_KEYS_FAILED)
            rc = failed(e, r, &ee);
        cli_resp_close(&resp);
        cli_etcd_error_close(&ee);
        if (rc != CN_OK)
            break;
        observe_watch(e, &index, &current, fn, ctx);
    }
    cn_free(current);
    return rc;
}
