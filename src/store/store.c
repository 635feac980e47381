/*
 * store: the etcd v2 key space (see store.h for the contract and
 * docs/store.md for the design).
 *
 * Every write follows two phases:
 *
 *   prepare  look the path up, decide the answer (an etcd error, or the
 *            change), allocate everything the change needs (new nodes,
 *            value copy, the event and its JSON, the answer body) and
 *            reserve capacity (child table, TTL heap, delivery ring);
 *   commit   link/unlink nodes, raise the index, record the event in the
 *            history and wake watchers; nothing here can fail.
 *
 * So CN_ENOMEM from any step of prepare leaves the tree, index, history,
 * stats and watchers as they were. Statistics follow etcd's stats.go,
 * including where etcd counts an error answer as a success (see
 * docs/store.md, "Statistics").
 */
#include "store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- events and results ------------------------------------------------ */

struct store_event *store_event_alloc(int action, const char *key,
                                      size_t key_len)
{
    /* the key lives in the same block, right after the struct */
    struct store_event *ev = cn_malloc(sizeof(*ev) + key_len + 1);
    if (ev == NULL)
        return NULL;
    memset(ev, 0, sizeof(*ev));
    ev->key = (char *)(ev + 1);
    memcpy(ev->key, key, key_len);
    ev->key[key_len] = '\0';
    ev->key_len = key_len;
    ev->refs = 1;
    ev->action = action;
    return ev;
}

void store_event_ref(struct store_event *ev)
{
    ev->refs++;
}

void store_event_unref(struct store_event *ev)
{
    if (ev == NULL)
        return;
    CN_ASSERT(ev->refs > 0);
    if (--ev->refs > 0)
        return;
    cn_free(ev->json);
    cn_free(ev);
}

void store_result_close(struct store_result *res)
{
    cn_buf_close(&res->body);
    store_event_unref(res->event);
    res->event = NULL;
}

/* Builds {"action":..,"node":..,"prevNode":..} into ev->json. */
static int event_json(struct store_event *ev, const struct store_view *node,
                      const struct store_view *prev)
{
    struct cn_buf b = {0};
    const char *act = store_action_name(ev->action);
    /* one allocation in the common case: the size plus escaping slack */
    size_t guess = 192 + 2 * node->key_len + node->value_len;
    if (prev != NULL)
        guess += 2 * prev->key_len + prev->value_len;
    int rc = cn_buf_reserve(&b, guess + guess / 8);
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(&b, "{\"action\":\"");
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(&b, act);
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(&b, "\",\"node\":");
    if (rc == CN_OK)
        rc = store_json_view(&b, node);
    if (rc == CN_OK && prev != NULL) {
        rc = cn_buf_append_cstr(&b, ",\"prevNode\":");
        if (rc == CN_OK)
            rc = store_json_view(&b, prev);
    }
    if (rc == CN_OK)
        rc = cn_buf_append_char(&b, '}');
    if (rc != CN_OK) {
        cn_buf_close(&b);
        return rc;
    }
    ev->json = cn_buf_take(&b, &ev->json_len);
    return CN_OK;
}

/* etcd's Repr(false, false): the node alone, no children. */
static void view_of(struct store_view *v, const struct store_node *n,
                    const char *key, size_t key_len, int64_t now_ns)
{
    memset(v, 0, sizeof(*v));
    v->key = key;
    v->key_len = key_len;
    v->dir = n->is_dir;
    if (!n->is_dir) {
        v->value = n->u.value.data ? n->u.value.data : "";
        v->value_len = n->u.value.len;
    }
    v->expire_ns = n->expire_ns;
    v->now_ns = now_ns;
    v->show_ttl = 1;
    v->modified_index = n->modified_index;
    v->created_index = n->created_index;
}

/* Counts an answered error in /v2/stats/store: as a failure, or, where
 * etcd's own counters miss it, as a success (docs/store.md). Nothing is
 * counted when answering failed (rc != CN_OK). */
static void count_error(int rc, int counts_as_fail, uint64_t *fail,
                        uint64_t *success)
{
    if (rc == CN_OK)
        ++*(counts_as_fail ? fail : success);
}

static int result_error(struct store *s, struct store_result *res, int ecode,
                        const char *cause, size_t cause_len)
{
    cn_buf_reset(&res->body);
    int rc = store_error_json_n(&res->body, ecode, cause, cause_len, s->index);
    if (rc != CN_OK)
        return rc;
    res->ecode = ecode;
    res->action = 0;
    res->status = store_ecode_status(ecode);
    res->index = s->index;
    return CN_OK;
}

/* Reserves the answer body for ev (prepare). */
static int result_reserve(struct store_result *res, struct store_event *ev)
{
    cn_buf_reset(&res->body);
    return cn_buf_reserve(&res->body, ev->json_len);
}

/* Fills a success answer (commit; the body was reserved). The result takes
 * one new reference to ev. */
static void result_event(struct store *s, struct store_result *res,
                         struct store_event *ev, int status)
{
    int rc = cn_buf_append(&res->body, ev->json, ev->json_len);
    CN_ASSERT(rc == CN_OK);
    res->ecode = 0;
    res->action = ev->action;
    res->status = status;
    res->index = s->index;
    store_event_ref(ev);
    res->event = ev;
}

/* ---- store life cycle -------------------------------------------------- */

int store_new(struct store **out, const struct store_config *cfg)
{
    struct store *s = cn_calloc(1, sizeof(*s));
    if (s == NULL)
        return CN_ENOMEM;
    if (cfg != NULL)
        s->cfg = *cfg;
    if (s->cfg.history_events == 0)
        s->cfg.history_events = CN_STORE_HISTORY_EVENTS;
    if (s->cfg.watchers_max == 0)
        s->cfg.watchers_max = CN_STORE_WATCHERS_MAX;
    s->root = store_node_new("", 0, 1);
    s->hist = cn_calloc(s->cfg.history_events, sizeof(*s->hist));
    s->scratch_cap = CN_STORE_KEY_BYTES_MAX + 64;
    s->scratch = cn_malloc(s->scratch_cap);
    if (s->root == NULL || s->hist == NULL || s->scratch == NULL) {
        cn_free(s->root);
        cn_free(s->hist);
        cn_free(s->scratch);
        cn_free(s);
        return CN_ENOMEM;
    }
    s->next_watcher_id = 1;
    *out = s;
    return CN_OK;
}

static void history_clear(struct store *s)
{
    for (uint32_t i = 0; i < s->hist_len; i++) {
        uint32_t slot = (s->hist_front + i) % s->cfg.history_events;
        store_event_unref(s->hist[slot]);
        s->hist[slot] = NULL;
    }
    s->hist_front = 0;
    s->hist_len = 0;
}

void store_free(struct store *s)
{
    if (s == NULL)
        return;
    store_hub_close(s);
    store_ring_close(&s->ring);
    history_clear(s);
    cn_free(s->hist);
    store_node_free_tree(s->root);
    cn_free(s->heap.a);
    cn_free(s->scratch);
    cn_free(s);
}

uint64_t store_index(const struct store *s)
{
    return s->index;
}

int64_t store_next_expiry_ns(const struct store *s)
{
    return s->heap.len ? s->heap.a[0]->expire_ns : 0;
}

uint64_t store_key_count(const struct store *s)
{
    return s->node_count;
}

uint64_t store_watcher_count(const struct store *s)
{
    return s->watcher_count;
}

int store_stats_json(const struct store *s, struct cn_buf *out)
{
    const struct store_stats *t = &s->stats;
    return cn_buf_printf(
        out,
        "{\"getsSuccess\":%llu,\"getsFail\":%llu,\"setsSuccess\":%llu,"
        "\"setsFail\":%llu,\"deleteSuccess\":%llu,\"deleteFail\":%llu,"
        "\"updateSuccess\":%llu,\"updateFail\":%llu,\"createSuccess\":%llu,"
        "\"createFail\":%llu,\"compareAndSwapSuccess\":%llu,"
        "\"compareAndSwapFail\":%llu,\"compareAndDeleteSuccess\":%llu,"
        "\"compareAndDeleteFail\":%llu,\"expireCount\":%llu,"
        "\"watchers\":%llu}",
        (unsigned long long)t->gets_success, (unsigned long long)t->gets_fail,
        (unsigned long long)t->sets_success, (unsigned long long)t->sets_fail,
        (unsigned long long)t->delete_success,
        (unsigned long long)t->delete_fail,
        (unsigned long long)t->update_success,
        (unsigned long long)t->update_fail,
        (unsigned long long)t->create_success,
        (unsigned long long)t->create_fail, (unsigned long long)t->cas_success,
        (unsigned long long)t->cas_fail, (unsigned long long)t->cad_success,
        (unsigned long long)t->cad_fail, (unsigned long long)t->expire_count,
        (unsigned long long)s->watcher_count);
}

/* ---- paths ------------------------------------------------------------- */

/* etcd's internalGet. On failure returns NULL, *ecode 100 or 104 and
 * *cause_len: the cause is the first cause_len bytes of path. */
static struct store_node *tree_get(struct store *s, const char *path,
                                   size_t len, int *ecode, size_t *cause_len)
{
    struct store_node *cur = s->root;
    size_t i = 1;
    while (i < len) {
        size_t j = i;
        while (j < len && path[j] != '/')
            j++;
        if (!cur->is_dir) {
            *ecode = STORE_E_NOT_DIR;
            *cause_len = i - 1;
            return NULL;
        }
        struct store_node *c =
            store_dir_find(cur, path + i, j - i, store_hash(path + i, j - i));
        if (c == NULL) {
            *ecode = STORE_E_KEY_NOT_FOUND;
            *cause_len = j;
            return NULL;
        }
        cur = c;
        i = j + 1;
    }
    return cur;
}

/* ---- commit helpers ---------------------------------------------------- */

static void set_ttl(struct store *s, struct store_node *n, int64_t expire_ns)
{
    if (n->heap_pos != STORE_HEAP_NONE) {
        n->expire_ns = expire_ns;
        if (expire_ns == 0)
            store_heap_remove(&s->heap, n);
        else
            store_heap_fix(&s->heap, n);
        return;
    }
    n->expire_ns = expire_ns;
    if (expire_ns != 0)
        store_heap_push(&s->heap, n);
}

/* Detaches n (and its subtree) from the tree and the heap; returns the
 * number of nodes removed. Frees nothing. */
static uint64_t subtree_detach(struct store *s, struct store_node *n)
{
    uint64_t count = 0;
    struct store_node *c = n;
    for (;;) {
        count++;
        if (c->heap_pos != STORE_HEAP_NONE)
            store_heap_remove(&s->heap, c);
        if (c->is_dir && c->u.dir.first != NULL) {
            c = c->u.dir.first;
            continue;
        }
        while (c != n && c->next == NULL)
            c = c->parent;
        if (c == n)
            break;
        c = c->next;
    }
    store_dir_unlink(n->parent, n);
    return count;
}

/* Records ev (taking the caller's reference) and wakes watchers unless it
 * is a refresh. The ring was reserved in prepare. */
static void publish(struct store *s, struct store_event *ev)
{
    store_history_add(s, ev);
    if (!ev->refresh && s->watcher_count)
        store_hub_notify(s, ev, 0);
}

/* Deleted-node notifications (etcd's Remove callback) for n's subtree,
 * children first. */
static size_t notify_deleted(struct store *s, struct store_event *ev,
                             const struct store_node *n, int count_only)
{
    if (s->watcher_count == 0)
        return 0;
    size_t len = store_node_path(n, s->scratch, s->scratch_cap);
    return store_hub_notify_subtree(s, ev, n, len, count_only);
}

/* Reserves the ring for ev's ancestors and, for a removal, the deleted
 * subtree of n. */
static int reserve_deliveries(struct store *s, struct store_event *ev,
                              const struct store_node *removed)
{
    if (s->watcher_count == 0 || ev->refresh)
        return CN_OK;
    size_t need = store_hub_notify(s, ev, 1);
    if (removed != NULL)
        need += notify_deleted(s, ev, removed, 1);
    return store_ring_reserve(&s->ring, need);
}

/* ---- create / set ------------------------------------------------------ */

struct create_args {
    const char *path; /* requested path (clean) */
    size_t path_len;
    int dir;
    const char *value;
    size_t value_len;
    int unique;
    int replace;
    int refresh;
    int64_t expire_ns;
    int64_t now_ns;
    int action;
};

/* etcd's internalCreate plus what Create/Set do around it. Returns CN_OK
 * with *ecode/cause set for an etcd error, CN_ENOMEM, or CN_OK with the
 * change committed and res filled. *walk_failed tells an error from the
 * directory walk (etcd counts it as a failed set too). */
static int do_create(struct store *s, const struct create_args *a,
                     struct store_result *res, int *ecode, size_t *cause_len,
                     const char **cause, int *walk_failed)
{
    uint64_t next = s->index + 1;
    char *key = s->scratch;
    size_t key_len = a->path_len;
    memcpy(key, a->path, a->path_len);
    if (a->unique) {
        if (key_len == 1)
            key_len = 0;
        key_len += (size_t)snprintf(key + key_len, 32, "/%020llu",
                                    (unsigned long long)next);
    }
    *cause = key;
    if (key_len == 1) {
        *ecode = STORE_E_ROOT_RONLY;
        *cause = "/";
        *cause_len = 1;
        return CN_OK;
    }
    int64_t expire = a->expire_ns;
    if (expire < STORE_MIN_EXPIRE_NS)
        expire = 0;

    /* walk the parent directories */
    size_t last = key_len;
    while (key[last - 1] != '/')
        last--;
    struct store_node *d = s->root;
    size_t i = 1, missing_at = 0;
    while (i < last) {
        size_t j = i;
        while (key[j] != '/')
            j++;
        struct store_node *c =
            store_dir_find(d, key + i, j - i, store_hash(key + i, j - i));
        if (c == NULL) {
            missing_at = i;
            break;
        }
        if (!c->is_dir) {
            *ecode = STORE_E_NOT_DIR;
            *cause_len = j;
            *walk_failed = 1;
            return CN_OK;
        }
        d = c;
        i = j + 1;
    }
    const char *name = key + last;
    size_t name_len = key_len - last;
    struct store_node *prev = NULL;
    if (missing_at == 0) {
        prev = store_dir_find(d, name, name_len, store_hash(name, name_len));
        if (prev != NULL) {
            if (!a->replace) {
                *ecode = STORE_E_NODE_EXIST;
                *cause_len = key_len;
                return CN_OK;
            }
            if (prev->is_dir) {
                *ecode = STORE_E_NOT_FILE;
                *cause_len = key_len;
                return CN_OK;
            }
        }
    }

    /* prepare: the new chain of directories, the node, the event */
    struct store_node *top = NULL, *bottom = NULL, *n = NULL;
    struct store_event *ev = NULL;
    int rc = CN_ENOMEM;
    if (missing_at) {
        size_t p = missing_at;
        while (p < last) {
            size_t q = p;
            while (key[q] != '/')
                q++;
            struct store_node *nd = store_node_new(key + p, q - p, 1);
            if (nd == NULL)
                goto err;
            nd->created_index = nd->modified_index = next;
            if (bottom == NULL)
                top = nd;
            else
                store_dir_link(bottom, nd);
            bottom = nd;
            p = q + 1;
        }
    }
    n = store_node_new(name, name_len, a->dir);
    if (n == NULL)
        goto err;
    n->created_index = n->modified_index = next;
    n->expire_ns = expire;
    if (!a->dir && a->value_len) {
        n->u.value.data = cn_malloc(a->value_len);
        if (n->u.value.data == NULL)
            goto err;
        memcpy(n->u.value.data, a->value, a->value_len);
        n->u.value.len = a->value_len;
    }
    ev = store_event_alloc(a->action, key, key_len);
    if (ev == NULL)
        goto err;
    ev->index = next;
    ev->refresh = a->refresh;
    struct store_view nv = {0}, pv;
    nv.key = key;
    nv.key_len = key_len;
    nv.dir = a->dir;
    if (!a->dir) {
        nv.value = a->value ? a->value : "";
        nv.value_len = a->value_len;
    }
    nv.expire_ns = expire;
    nv.now_ns = a->now_ns;
    nv.show_ttl = 1;
    nv.modified_index = nv.created_index = next;
    if (prev != NULL)
        view_of(&pv, prev, key, key_len, a->now_ns);
    if (event_json(ev, &nv, prev ? &pv : NULL) != CN_OK)
        goto err;
    if (store_dir_reserve(d) != CN_OK)
        goto err;
    if (expire && store_heap_reserve(&s->heap, 1) != CN_OK)
        goto err;
    if (reserve_deliveries(s, ev, NULL) != CN_OK)
        goto err;
    if (result_reserve(res, ev) != CN_OK)
        goto err;

    /* commit */
    if (prev != NULL) {
        s->node_count -= subtree_detach(s, prev);
        store_node_free_tree(prev);
    }
    if (top != NULL) {
        store_dir_link(d, top);
        store_dir_link(bottom, n);
        for (struct store_node *x = top; x != n; x = x->u.dir.first)
            s->node_count++;
    } else {
        store_dir_link(d, n);
    }
    s->node_count++;
    if (expire)
        store_heap_push(&s->heap, n);
    s->index = next;
    int status = 200;
    if (a->action == STORE_ACT_CREATE ||
        (a->action == STORE_ACT_SET && prev == NULL))
        status = 201;
    result_event(s, res, ev, status);
    publish(s, ev);
    return CN_OK;

err:
    store_event_unref(ev);
    if (n != NULL)
        store_node_free_tree(n);
    if (top != NULL)
        store_node_free_tree(top);
    return rc;
}

static int apply_create(struct store *s, const struct store_cmd *c,
                        struct store_result *res, int unique)
{
    struct create_args a = {
        c->path.base,    c->path.len, c->dir, c->value.base, c->value.len,
        unique,          0,           0,      c->expire_ns,  c->now_ns,
        STORE_ACT_CREATE};
    int ecode = 0, walk_failed = 0;
    size_t cause_len = 0;
    const char *cause = NULL;
    int rc = do_create(s, &a, res, &ecode, &cause_len, &cause, &walk_failed);
    if (rc != CN_OK)
        return rc;
    if (ecode == 0) {
        s->stats.create_success++;
        return CN_OK;
    }
    rc = result_error(s, res, ecode, cause, cause_len);
    if (rc == CN_OK) {
        s->stats.create_fail++;
        if (walk_failed)
            s->stats.sets_fail++;
    }
    return rc;
}

static int apply_set(struct store *s, const struct store_cmd *c,
                     struct store_result *res)
{
    int ecode = 0, walk_failed = 0;
    size_t cause_len = 0;
    const char *cause = c->path.base;
    struct store_node *n =
        tree_get(s, c->path.base, c->path.len, &ecode, &cause_len);
    const char *value = c->value.base;
    size_t value_len = c->value.len;
    if (n == NULL && ecode == STORE_E_KEY_NOT_FOUND && !c->refresh)
        ecode = 0;
    if (ecode == 0 && c->refresh) {
        if (n->is_dir) {
            value = "";
            value_len = 0;
        } else {
            value = n->u.value.data;
            value_len = n->u.value.len;
        }
    }
    if (ecode == 0) {
        struct create_args a = {c->path.base,
                                c->path.len,
                                c->dir,
                                value,
                                value_len,
                                0,
                                1,
                                c->refresh,
                                c->expire_ns,
                                c->now_ns,
                                STORE_ACT_SET};
        int rc =
            do_create(s, &a, res, &ecode, &cause_len, &cause, &walk_failed);
        if (rc != CN_OK)
            return rc;
        if (ecode == 0) {
            s->stats.sets_success++;
            return CN_OK;
        }
    }
    int rc = result_error(s, res, ecode, cause, cause_len);
    if (rc == CN_OK)
        s->stats.sets_fail += walk_failed ? 2 : 1;
    return rc;
}

/* ---- update / compareAndSwap ------------------------------------------- */

/* Appends etcd's compare-failure cause; returns CN_OK or CN_ENOMEM. */
static int compare_cause(struct cn_buf *b, const struct store_node *n,
                         const struct store_cmd *c, int value_bad,
                         int index_bad)
{
    int rc = CN_OK;
    if (value_bad) {
        rc = cn_buf_append_char(b, '[');
        if (rc == CN_OK)
            rc = cn_buf_append(b, c->prev_value.base, c->prev_value.len);
        if (rc == CN_OK)
            rc = cn_buf_append(b, " != ", 4);
        if (rc == CN_OK)
            rc = cn_buf_append(b, n->u.value.data, n->u.value.len);
        if (rc == CN_OK)
            rc = cn_buf_append_char(b, ']');
    }
    if (rc == CN_OK && index_bad)
        rc = cn_buf_printf(b, "%s[%llu != %llu]", value_bad ? " " : "",
                           (unsigned long long)c->prev_index,
                           (unsigned long long)n->modified_index);
    return rc;
}

/* Shared commit of update and compareAndSwap: new value (files), TTL,
 * modifiedIndex (files only: etcd's Write fails on a directory and leaves
 * its modifiedIndex alone, although the event reports the new index). */
static int modify_node(struct store *s, struct store_node *n,
                       const struct store_cmd *c, int action, const char *v,
                       size_t vlen, struct store_result *res)
{
    uint64_t next = s->index + 1;
    const char *key = c->path.base;
    size_t key_len = c->path.len;
    char *copy = NULL;
    int keep = c->refresh || n->is_dir;
    if (!keep && vlen) {
        copy = cn_malloc(vlen);
        if (copy == NULL)
            return CN_ENOMEM;
        memcpy(copy, v, vlen);
    }
    struct store_event *ev = store_event_alloc(action, key, key_len);
    if (ev == NULL)
        goto err;
    ev->index = next;
    ev->refresh = c->refresh;
    struct store_view nv = {0}, pv;
    nv.key = key;
    nv.key_len = key_len;
    nv.dir = n->is_dir;
    if (!n->is_dir) {
        nv.value = v ? v : "";
        nv.value_len = vlen;
    }
    nv.expire_ns = c->expire_ns;
    nv.now_ns = c->now_ns;
    nv.show_ttl = 1;
    nv.modified_index = next;
    nv.created_index = n->created_index;
    view_of(&pv, n, key, key_len, c->now_ns);
    if (event_json(ev, &nv, &pv) != CN_OK)
        goto err;
    if (c->expire_ns && n->heap_pos == STORE_HEAP_NONE &&
        store_heap_reserve(&s->heap, 1) != CN_OK)
        goto err;
    if (reserve_deliveries(s, ev, NULL) != CN_OK)
        goto err;
    if (result_reserve(res, ev) != CN_OK)
        goto err;

    if (!n->is_dir) {
        if (!keep) {
            cn_free(n->u.value.data);
            n->u.value.data = copy;
            n->u.value.len = vlen;
        }
        n->modified_index = next;
    }
    set_ttl(s, n, c->expire_ns);
    s->index = next;
    result_event(s, res, ev, 200);
    publish(s, ev);
    return CN_OK;

err:
    store_event_unref(ev);
    cn_free(copy);
    return CN_ENOMEM;
}

static int apply_update(struct store *s, const struct store_cmd *c,
                        struct store_result *res)
{
    int ecode = 0, rc;
    size_t cause_len = 0;
    const char *cause = c->path.base;
    struct store_node *n = NULL;
    int counts_as_fail = 1;
    if (c->path.len == 1) {
        ecode = STORE_E_ROOT_RONLY;
        cause_len = 1;
        counts_as_fail = 0; /* etcd: returned without setting err */
    } else {
        n = tree_get(s, c->path.base, c->path.len, &ecode, &cause_len);
        if (n != NULL && n->is_dir && c->value.len != 0) {
            ecode = STORE_E_NOT_FILE;
            cause_len = c->path.len;
            counts_as_fail = 0;
        }
    }
    if (ecode == 0) {
        const char *v = c->value.base;
        size_t vlen = c->value.len;
        if (c->refresh && !n->is_dir) {
            v = n->u.value.data;
            vlen = n->u.value.len;
        }
        rc = modify_node(s, n, c, STORE_ACT_UPDATE, v, vlen, res);
        if (rc == CN_OK)
            s->stats.update_success++;
        return rc;
    }
    rc = result_error(s, res, ecode, cause, cause_len);
    count_error(rc, counts_as_fail, &s->stats.update_fail,
                &s->stats.update_success);
    return rc;
}

static int apply_cas(struct store *s, const struct store_cmd *c,
                     struct store_result *res)
{
    int ecode = 0, rc;
    size_t cause_len = 0;
    const char *cause = c->path.base;
    struct cn_buf cb = {0};
    struct store_node *n = NULL;
    int counts_as_fail = 1;
    if (c->path.len == 1) {
        ecode = STORE_E_ROOT_RONLY;
        cause_len = 1;
        counts_as_fail = 0;
    } else {
        n = tree_get(s, c->path.base, c->path.len, &ecode, &cause_len);
        if (n != NULL && n->is_dir) {
            ecode = STORE_E_NOT_FILE;
            cause_len = c->path.len;
        } else if (n != NULL) {
            int vbad = c->prev_value.len != 0 &&
                       !(c->prev_value.len == n->u.value.len &&
                         memcmp(c->prev_value.base, n->u.value.data,
                                n->u.value.len) == 0);
            int ibad = c->prev_index != 0 && c->prev_index != n->modified_index;
            if (vbad || ibad) {
                ecode = STORE_E_TEST_FAILED;
                if (compare_cause(&cb, n, c, vbad, ibad) != CN_OK) {
                    cn_buf_close(&cb);
                    return CN_ENOMEM;
                }
                cause = cb.data;
                cause_len = cb.len;
            }
        }
    }
    if (ecode == 0) {
        const char *v = c->value.base;
        size_t vlen = c->value.len;
        if (c->refresh) {
            v = n->u.value.data;
            vlen = n->u.value.len;
        }
        rc = modify_node(s, n, c, STORE_ACT_CAS, v, vlen, res);
        if (rc == CN_OK)
            s->stats.cas_success++;
        return rc;
    }
    rc = result_error(s, res, ecode, cause, cause_len);
    cn_buf_close(&cb);
    count_error(rc, counts_as_fail, &s->stats.cas_fail, &s->stats.cas_success);
    return rc;
}

/* ---- delete / compareAndDelete ----------------------------------------- */

static int remove_node(struct store *s, struct store_node *n,
                       const struct store_cmd *c, int action,
                       struct store_result *res)
{
    uint64_t next = s->index + 1;
    const char *key = c->path.base;
    size_t key_len = c->path.len;
    struct store_event *ev = store_event_alloc(action, key, key_len);
    if (ev == NULL)
        return CN_ENOMEM;
    ev->index = next;
    ev->prev_dir = n->is_dir;
    struct store_view nv = {0}, pv;
    nv.key = key;
    nv.key_len = key_len;
    nv.dir = action == STORE_ACT_DELETE && n->is_dir;
    nv.modified_index = next;
    nv.created_index = n->created_index;
    view_of(&pv, n, key, key_len, c->now_ns);
    if (event_json(ev, &nv, &pv) != CN_OK ||
        reserve_deliveries(s, ev, n) != CN_OK ||
        result_reserve(res, ev) != CN_OK) {
        store_event_unref(ev);
        return CN_ENOMEM;
    }
    s->index = next;
    notify_deleted(s, ev, n, 0);
    s->node_count -= subtree_detach(s, n);
    store_node_free_tree(n);
    result_event(s, res, ev, 200);
    publish(s, ev);
    return CN_OK;
}

static int apply_delete(struct store *s, const struct store_cmd *c,
                        struct store_result *res)
{
    int ecode = 0, rc;
    size_t cause_len = 0;
    struct store_node *n = NULL;
    int counts_as_fail = 1;
    int dir = c->dir || c->recursive;
    if (c->path.len == 1) {
        ecode = STORE_E_ROOT_RONLY;
        cause_len = 1;
        counts_as_fail = 0;
    } else {
        n = tree_get(s, c->path.base, c->path.len, &ecode, &cause_len);
        if (n != NULL && n->is_dir) {
            if (!dir) {
                ecode = STORE_E_NOT_FILE;
                cause_len = c->path.len;
            } else if (n->u.dir.count != 0 && !c->recursive) {
                ecode = STORE_E_DIR_NOT_EMPTY;
                cause_len = c->path.len;
            }
        }
    }
    if (ecode == 0) {
        rc = remove_node(s, n, c, STORE_ACT_DELETE, res);
        if (rc == CN_OK)
            s->stats.delete_success++;
        return rc;
    }
    rc = result_error(s, res, ecode, c->path.base, cause_len);
    count_error(rc, counts_as_fail, &s->stats.delete_fail,
                &s->stats.delete_success);
    return rc;
}

static int apply_cad(struct store *s, const struct store_cmd *c,
                     struct store_result *res)
{
    int ecode = 0, rc;
    size_t cause_len = 0;
    const char *cause = c->path.base;
    struct cn_buf cb = {0};
    int counts_as_fail = 0; /* etcd counts most CAD errors as successes */
    struct store_node *n =
        tree_get(s, c->path.base, c->path.len, &ecode, &cause_len);
    if (n == NULL) {
        counts_as_fail = 1;
    } else if (n->is_dir) {
        ecode = STORE_E_NOT_FILE;
        /* etcd's cause is the internal path, "/1" for the root, which
         * loses its "/1" prefix on the way out: no cause at all. */
        cause_len = c->path.len == 1 ? 0 : c->path.len;
    } else {
        int vbad =
            c->prev_value.len != 0 &&
            !(c->prev_value.len == n->u.value.len &&
              memcmp(c->prev_value.base, n->u.value.data, n->u.value.len) == 0);
        int ibad = c->prev_index != 0 && c->prev_index != n->modified_index;
        if (vbad || ibad) {
            ecode = STORE_E_TEST_FAILED;
            if (compare_cause(&cb, n, c, vbad, ibad) != CN_OK) {
                cn_buf_close(&cb);
                return CN_ENOMEM;
            }
            cause = cb.data;
            cause_len = cb.len;
        }
    }
    if (ecode == 0) {
        rc = remove_node(s, n, c, STORE_ACT_CAD, res);
        if (rc == CN_OK)
            s->stats.cad_success++;
        return rc;
    }
    rc = result_error(s, res, ecode, cause, cause_len);
    cn_buf_close(&cb);
    count_error(rc, counts_as_fail, &s->stats.cad_fail, &s->stats.cad_success);
    return rc;
}

/* ---- SYNC: expiry ------------------------------------------------------ */

static int node_ptr_cmp(const void *a, const void *b)
{
    const struct store_node *x = *(const struct store_node *const *)a;
    const struct store_node *y = *(const struct store_node *const *)b;
    return store_heap_less(x, y) ? -1 : store_heap_less(y, x) ? 1 : 0;
}

/* Collects heap entries with expire_ns <= now (a pruned walk of the heap:
 * O(expired)), in expiry order. */
static int expired_collect(struct store *s, int64_t now,
                           struct store_node ***out, size_t *count)
{
    size_t cap = 16, n = 0, top = 0, scap = 16;
    struct store_node **arr = NULL;
    uint32_t *stack = NULL;
    *out = NULL;
    *count = 0;
    if (s->heap.len == 0 || s->heap.a[0]->expire_ns > now)
        return CN_OK;
    arr = cn_malloc(cap * sizeof(*arr));
    stack = cn_malloc(scap * sizeof(*stack));
    if (arr == NULL || stack == NULL)
        goto err;
    stack[top++] = 0;
    while (top) {
        uint32_t i = stack[--top];
        struct store_node *x = s->heap.a[i];
        if (x->expire_ns > now)
            continue;
        if (n == cap) {
            struct store_node **na = cn_realloc(arr, cap * 2 * sizeof(*arr));
            if (na == NULL)
                goto err;
            arr = na;
            cap *= 2;
        }
        arr[n++] = x;
        if (top + 2 > scap) {
            uint32_t *ns = cn_realloc(stack, scap * 2 * sizeof(*stack));
            if (ns == NULL)
                goto err;
            stack = ns;
            scap *= 2;
        }
        uint64_t l = 2 * (uint64_t)i + 1;
        if (l < s->heap.len)
            stack[top++] = (uint32_t)l;
        if (l + 1 < s->heap.len)
            stack[top++] = (uint32_t)(l + 1);
    }
    cn_free(stack);
    qsort(arr, n, sizeof(*arr), node_ptr_cmp);
    *out = arr;
    *count = n;
    return CN_OK;
err:
    cn_free(arr);
    cn_free(stack);
    return CN_ENOMEM;
}

static int apply_sync(struct store *s, const struct store_cmd *c,
                      struct store_result *res)
{
    struct store_node **cand = NULL;
    struct store_event **evs = NULL;
    size_t ncand = 0, nev = 0, need = 0;
    int rc = expired_collect(s, c->now_ns, &cand, &ncand);
    if (rc != CN_OK)
        return rc;
    if (ncand) {
        evs = cn_calloc(ncand, sizeof(*evs));
        if (evs == NULL)
            goto err;
    }
    /* Plan: a candidate inside a subtree that expires earlier in this
     * SYNC goes with that subtree (no event of its own). */
    for (size_t i = 0; i < ncand; i++) {
        struct store_node *n = cand[i];
        int covered = 0;
        for (struct store_node *p = n->parent; p != NULL; p = p->parent)
            if (p->mark) {
                covered = 1;
                break;
            }
        if (covered) {
            cand[i] = NULL;
            continue;
        }
        n->mark = 1;
        size_t klen = store_node_path(n, s->scratch, s->scratch_cap);
        struct store_event *ev =
            store_event_alloc(STORE_ACT_EXPIRE, s->scratch, klen);
        if (ev == NULL)
            goto err;
        evs[nev++] = ev;
        ev->index = s->index + nev;
        ev->prev_dir = n->is_dir;
        struct store_view nv = {0}, pv;
        nv.key = ev->key;
        nv.key_len = klen;
        nv.dir = n->is_dir;
        nv.modified_index = ev->index;
        nv.created_index = n->created_index;
        view_of(&pv, n, ev->key, klen, c->now_ns);
        pv.show_ttl = 0;
        if (event_json(ev, &nv, &pv) != CN_OK)
            goto err;
        if (s->watcher_count) {
            need += store_hub_notify(s, ev, 1);
            need += notify_deleted(s, ev, n, 1);
        }
    }
    if (need && store_ring_reserve(&s->ring, need) != CN_OK)
        goto err;
    cn_buf_reset(&res->body);

    /* commit */
    size_t k = 0;
    for (size_t i = 0; i < ncand; i++) {
        struct store_node *n = cand[i];
        if (n == NULL)
            continue;
        struct store_event *ev = evs[k++];
        s->index = ev->index;
        notify_deleted(s, ev, n, 0);
        s->node_count -= subtree_detach(s, n);
        store_node_free_tree(n);
        s->stats.expire_count++;
        publish(s, ev);
    }
    cn_free(evs);
    cn_free(cand);
    res->ecode = 0;
    res->action = 0;
    res->status = 200;
    res->index = s->index;
    return CN_OK;

err:
    for (size_t i = 0; i < ncand; i++)
        if (cand[i] != NULL)
            cand[i]->mark = 0;
    for (size_t i = 0; i < nev; i++)
        store_event_unref(evs[i]);
    cn_free(evs);
    cn_free(cand);
    return CN_ENOMEM;
}

/* ---- entry points ------------------------------------------------------ */

int store_apply(struct store *s, const struct store_cmd *c,
                struct store_result *res)
{
    if (c->method == STORE_CMD_SYNC)
        return apply_sync(s, c, res);
    if (!store_path_valid(c->path))
        return CN_EINVAL;
    switch (c->method) {
    case STORE_CMD_POST:
        return apply_create(s, c, res, 1);
    case STORE_CMD_PUT:
        if (c->prev_exist == 1) {
            if (c->prev_index == 0 && c->prev_value.len == 0)
                return apply_update(s, c, res);
            return apply_cas(s, c, res);
        }
        if (c->prev_exist == 0)
            return apply_create(s, c, res, 0);
        if (c->prev_index > 0 || c->prev_value.len != 0)
            return apply_cas(s, c, res);
        return apply_set(s, c, res);
    case STORE_CMD_DELETE:
        if (c->prev_index > 0 || c->prev_value.len != 0)
            return apply_cad(s, c, res);
        return apply_delete(s, c, res);
    default:
        return CN_EINVAL;
    }
}

int store_get(struct store *s, struct cn_slice path, int recursive, int sorted,
              int64_t now_ns, struct store_result *res)
{
    if (!store_path_valid(path))
        return CN_EINVAL;
    int ecode = 0;
    size_t cause_len = 0;
    struct store_node *n = tree_get(s, path.base, path.len, &ecode, &cause_len);
    if (n == NULL) {
        int rc = result_error(s, res, ecode, path.base, cause_len);
        if (rc == CN_OK)
            s->stats.gets_fail++;
        return rc;
    }
    cn_buf_reset(&res->body);
    memcpy(s->scratch, path.base, path.len);
    int rc = cn_buf_append_cstr(&res->body, "{\"action\":\"get\",\"node\":");
    if (rc == CN_OK)
        rc = store_json_node(&res->body, n, s->scratch, path.len,
                             s->scratch_cap, 1, recursive, sorted, now_ns);
    if (rc == CN_OK)
        rc = cn_buf_append_char(&res->body, '}');
    if (rc != CN_OK) {
        cn_buf_reset(&res->body);
        return rc;
    }
    res->ecode = 0;
    res->action = STORE_ACT_GET;
    res->status = 200;
    res->index = s->index;
    s->stats.gets_success++;
    return CN_OK;
}
