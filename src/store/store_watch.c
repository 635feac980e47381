/*
 * store_watch: event history, watchers (etcd's watcherHub) and the queue
 * of deliveries the driver drains.
 *
 * Who is woken by an event at key K (etcd's notify): the watchers at "/"
 * and at every prefix path of K, down to K itself. At a path P != K only
 * recursive watchers are woken, and not when the part of K below P holds
 * a hidden segment ("/_x"). For a delete or expiry, every node of the
 * removed subtree is also visited first (children before parents) and all
 * watchers at those exact paths are woken ("deleted"). A watcher is woken
 * only by events with index >= its since_index. A non-stream watcher is
 * removed by its first delivery; a stream watcher stays. As in etcd, a
 * stream watcher on a removed key is visited twice (once as deleted, once
 * as the key itself) and so receives that event twice.
 *
 * Deliveries wait in a ring until store_next_delivery() pops them. A
 * stream watcher with CN_STORE_STREAM_QUEUE_EVENTS_MAX deliveries waiting
 * that would get one more is ended instead: its newest waiting delivery is
 * marked last and the watcher is removed (etcd closes a watcher whose
 * channel is full the same way).
 */
#include "store_int.h"

#include <stdio.h>
#include <string.h>

/* ---- delivery ring ----------------------------------------------------- */

void store_ring_close(struct store_ring *r)
{
    for (size_t i = 0; i < r->len; i++)
        store_event_unref(r->a[(r->head + i) % r->cap].event);
    cn_free(r->a);
    memset(r, 0, sizeof(*r));
}

int store_ring_reserve(struct store_ring *r, size_t extra)
{
    if (r->len + extra <= r->cap)
        return CN_OK;
    size_t cap = r->cap ? r->cap : 64;
    while (cap < r->len + extra) {
        if (cap > SIZE_MAX / 2 / sizeof(*r->a))
            return CN_ENOMEM;
        cap *= 2;
    }
    struct store_delivery *a = cn_malloc(cap * sizeof(*a));
    if (a == NULL)
        return CN_ENOMEM;
    for (size_t i = 0; i < r->len; i++)
        a[i] = r->a[(r->head + i) % r->cap];
    cn_free(r->a);
    r->a = a;
    r->cap = cap;
    r->head = 0;
    return CN_OK;
}

static struct store_delivery *ring_at(struct store_ring *r, uint64_t seq)
{
    CN_ASSERT(seq >= r->head_seq && seq - r->head_seq < r->len);
    return &r->a[(r->head + (size_t)(seq - r->head_seq)) % r->cap];
}

/* Appends (the ring was reserved). Returns the entry's sequence. */
static uint64_t ring_push(struct store_ring *r, uint64_t id,
                          struct store_event *ev, int last)
{
    CN_ASSERT(r->len < r->cap);
    struct store_delivery *d = &r->a[(r->head + r->len) % r->cap];
    d->watcher_id = id;
    d->event = ev;
    d->last = last;
    store_event_ref(ev);
    r->len++;
    return r->head_seq + r->len - 1;
}

/* ---- history ----------------------------------------------------------- */

void store_history_add(struct store *s, struct store_event *ev)
{
    uint32_t cap = s->cfg.history_events;
    if (s->hist_len == cap) {
        store_event_unref(s->hist[s->hist_front]);
        s->hist[s->hist_front] = ev;
        s->hist_front = (s->hist_front + 1) % cap;
    } else {
        s->hist[(s->hist_front + s->hist_len) % cap] = ev;
        s->hist_len++;
    }
}

static struct store_event *hist_at(const struct store *s, uint32_t i)
{
    return s->hist[(s->hist_front + i) % s->cfg.history_events];
}

/* etcd's EventHistory.scan condition for one event. */
static int hist_match(const struct store_event *e, const char *key, size_t len,
                      int recursive)
{
    if (e->refresh)
        return 0;
    if (e->key_len == len && memcmp(e->key, key, len) == 0)
        return 1;
    if (recursive) {
        /* prefix key + "/" ("/" for the root) */
        size_t plen = len == 1 ? 1 : len + 1;
        if (e->key_len >= plen && memcmp(e->key, key, len) == 0 &&
            e->key[plen - 1] == '/')
            return 1;
    }
    /* a removed directory is a prefix of the watched key (a plain string
     * prefix, as etcd checks it: "/foo" also matches "/foobar") */
    if ((e->action == STORE_ACT_DELETE || e->action == STORE_ACT_EXPIRE) &&
        e->prev_dir && len >= e->key_len &&
        memcmp(key, e->key, e->key_len) == 0)
        return 1;
    return 0;
}

/* ---- path map and id map ----------------------------------------------- */

static struct store_watch_path *wp_find(const struct store *s, const char *path,
                                        size_t len, uint32_t h)
{
    if (s->wp_nbuckets == 0)
        return NULL;
    struct store_watch_path *wp = s->wp_buckets[h & (s->wp_nbuckets - 1)];
    for (; wp != NULL; wp = wp->hnext)
        if (wp->hash == h && wp->len == len && memcmp(wp->path, path, len) == 0)
            return wp;
    return NULL;
}

static uint32_t id_hash(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    id ^= id >> 33;
    return (uint32_t)id;
}

static struct store_watcher *id_find(const struct store *s, uint64_t id)
{
    if (s->id_nbuckets == 0)
        return NULL;
    struct store_watcher *w = s->id_buckets[id_hash(id) & (s->id_nbuckets - 1)];
    for (; w != NULL; w = w->id_next)
        if (w->id == id)
            return w;
    return NULL;
}

/* Grows the bucket arrays so one more path and one more watcher fit. */
static int maps_reserve(struct store *s)
{
    if (s->wp_count + 1 > s->wp_nbuckets) {
        uint32_t nb = s->wp_nbuckets ? s->wp_nbuckets * 2 : 64;
        struct store_watch_path **b = cn_calloc(nb, sizeof(*b));
        if (b == NULL)
            return CN_ENOMEM;
        for (uint32_t i = 0; i < s->wp_nbuckets; i++) {
            struct store_watch_path *wp = s->wp_buckets[i], *nx;
            for (; wp != NULL; wp = nx) {
                nx = wp->hnext;
                wp->hnext = b[wp->hash & (nb - 1)];
                b[wp->hash & (nb - 1)] = wp;
            }
        }
        cn_free(s->wp_buckets);
        s->wp_buckets = b;
        s->wp_nbuckets = nb;
    }
    if (s->watcher_count + 1 > s->id_nbuckets) {
        uint32_t nb = s->id_nbuckets ? s->id_nbuckets * 2 : 64;
        struct store_watcher **b = cn_calloc(nb, sizeof(*b));
        if (b == NULL)
            return CN_ENOMEM;
        for (uint32_t i = 0; i < s->id_nbuckets; i++) {
            struct store_watcher *w = s->id_buckets[i], *nx;
            for (; w != NULL; w = nx) {
                nx = w->id_next;
                uint32_t slot = id_hash(w->id) & (nb - 1);
                w->id_next = b[slot];
                b[slot] = w;
            }
        }
        cn_free(s->id_buckets);
        s->id_buckets = b;
        s->id_nbuckets = nb;
    }
    return CN_OK;
}

static void wp_unlink(struct store *s, struct store_watch_path *wp)
{
    struct store_watch_path **pp =
        &s->wp_buckets[wp->hash & (s->wp_nbuckets - 1)];
    while (*pp != wp)
        pp = &(*pp)->hnext;
    *pp = wp->hnext;
    s->wp_count--;
    cn_free(wp);
}

/* Removes w from both maps and frees it (its queued deliveries stay). */
static void watcher_remove(struct store *s, struct store_watcher *w)
{
    struct store_watch_path *wp = w->wp;
    if (w->prev)
        w->prev->next = w->next;
    else
        wp->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        wp->tail = w->prev;
    if (--wp->count == 0)
        wp_unlink(s, wp);
    struct store_watcher **pp =
        &s->id_buckets[id_hash(w->id) & (s->id_nbuckets - 1)];
    while (*pp != w)
        pp = &(*pp)->id_next;
    *pp = w->id_next;
    s->watcher_count--;
    cn_free(w);
}

void store_hub_close(struct store *s)
{
    for (uint32_t i = 0; i < s->wp_nbuckets; i++) {
        struct store_watch_path *wp = s->wp_buckets[i], *nx;
        for (; wp != NULL; wp = nx) {
            nx = wp->hnext;
            struct store_watcher *w = wp->head, *wn;
            for (; w != NULL; w = wn) {
                wn = w->next;
                cn_free(w);
            }
            cn_free(wp);
        }
    }
    cn_free(s->wp_buckets);
    cn_free(s->id_buckets);
    s->wp_buckets = NULL;
    s->id_buckets = NULL;
    s->wp_nbuckets = s->id_nbuckets = 0;
    s->wp_count = 0;
    s->watcher_count = 0;
}

/* ---- waking watchers --------------------------------------------------- */

/* Queues ev for w (ring reserved by the caller). Returns 1 when w was
 * removed (and freed). */
static int deliver(struct store *s, struct store_watcher *w,
                   struct store_event *ev)
{
    if (w->stream && w->pending >= CN_STORE_STREAM_QUEUE_EVENTS_MAX) {
        ring_at(&s->ring, w->last_seq)->last = 1;
        watcher_remove(s, w);
        return 1;
    }
    w->last_seq = ring_push(&s->ring, w->id, ev, !w->stream);
    w->pending++;
    if (!w->stream) {
        watcher_remove(s, w);
        return 1;
    }
    return 0;
}

/* etcd's isHidden(watchPath, keyPath) for a watch path that is the key or
 * one of its prefixes (or below it, for deleted subtrees). */
static int is_hidden(size_t wlen, const char *key, size_t klen)
{
    if (wlen > klen)
        return 0;
    size_t start = wlen == 1 ? 0 : wlen;
    for (size_t i = start; i + 1 < klen; i++)
        if (key[i] == '/' && key[i + 1] == '_')
            return 1;
    return 0;
}

size_t store_hub_notify_path(struct store *s, struct store_event *ev,
                             const char *path, size_t len, int deleted,
                             int count_only)
{
    struct store_watch_path *wp = wp_find(s, path, len, store_hash(path, len));
    if (wp == NULL)
        return 0;
    if (count_only)
        return wp->count;
    int original = len == ev->key_len && memcmp(path, ev->key, len) == 0;
    if (!original && is_hidden(len, ev->key, ev->key_len))
        return 0;
    size_t woken = 0;
    /* deliver() may free wp when its last watcher goes: stop then */
    struct store_watcher *w = wp->head;
    uint32_t left = wp->count;
    while (w != NULL && left--) {
        struct store_watcher *next = w->next;
        int last_one = next == NULL;
        if ((w->recursive || original || deleted) &&
            ev->index >= w->since_index) {
            deliver(s, w, ev);
            woken++;
        }
        if (last_one)
            break;
        w = next;
    }
    return woken;
}

size_t store_hub_notify(struct store *s, struct store_event *ev, int count_only)
{
    size_t n = store_hub_notify_path(s, ev, "/", 1, 0, count_only);
    for (size_t i = 1; i < ev->key_len; i++)
        if (ev->key[i] == '/')
            n += store_hub_notify_path(s, ev, ev->key, i, 0, count_only);
    if (ev->key_len > 1)
        n += store_hub_notify_path(s, ev, ev->key, ev->key_len, 0, count_only);
    return n;
}

size_t store_hub_notify_subtree(struct store *s, struct store_event *ev,
                                const struct store_node *top, size_t len,
                                int count_only)
{
    /* Iterative post-order over the subtree; s->scratch holds the key of
     * the current node (len bytes). */
    size_t n = 0;
    const struct store_node *c = top;
    char *buf = s->scratch;
    for (;;) {
        /* descend to the first leaf */
        while (c->is_dir && c->u.dir.first != NULL) {
            c = c->u.dir.first;
            size_t base = len == 1 ? 0 : len;
            buf[base] = '/';
            memcpy(buf + base + 1, c->name, c->name_len);
            len = base + 1 + c->name_len;
        }
        for (;;) {
            n += store_hub_notify_path(s, ev, buf, len, 1, count_only);
            if (c == top)
                return n;
            /* pop c's name */
            len -= c->name_len + 1;
            if (len == 0)
                len = 1;
            if (c->next != NULL) {
                c = c->next;
                size_t base = len == 1 ? 0 : len;
                buf[base] = '/';
                memcpy(buf + base + 1, c->name, c->name_len);
                len = base + 1 + c->name_len;
                break;
            }
            c = c->parent;
        }
    }
}

/* ---- watch API --------------------------------------------------------- */

static int history_cleared(struct store *s, uint64_t since,
                           struct store_result *res)
{
    char cause[96];
    uint64_t start = hist_at(s, 0)->index;
    int n = snprintf(cause, sizeof(cause),
                     "the requested history has been cleared [%llu/%llu]",
                     (unsigned long long)start, (unsigned long long)since);
    cn_buf_reset(&res->body);
    int rc = store_error_json_n(&res->body, STORE_E_EVENT_INDEX_CLEARED, cause,
                                (size_t)n, s->index);
    if (rc != CN_OK)
        return rc;
    res->ecode = STORE_E_EVENT_INDEX_CLEARED;
    res->action = 0;
    res->status = store_ecode_status(STORE_E_EVENT_INDEX_CLEARED);
    res->index = s->index;
    return CN_OK;
}

int store_watch(struct store *s, struct cn_slice path, int recursive,
                int stream, uint64_t since_index, uint64_t *watcher_id,
                struct store_result *res)
{
    *watcher_id = 0;
    if (!store_path_valid(path))
        return CN_EINVAL;
    if (s->watcher_count >= s->cfg.watchers_max)
        return CN_EBUSY;
    if (since_index == 0)
        since_index = s->index + 1;
    if (s->hist_len && since_index < hist_at(s, 0)->index)
        return history_cleared(s, since_index, res);

    /* matching history events from since_index on */
    uint32_t first = s->hist_len, matches = 0;
    if (s->hist_len && since_index <= hist_at(s, s->hist_len - 1)->index) {
        uint64_t off = since_index - hist_at(s, 0)->index;
        for (uint32_t i = (uint32_t)off; i < s->hist_len; i++) {
            const struct store_event *e = hist_at(s, i);
            if (e->index < since_index ||
                !hist_match(e, path.base, path.len, recursive))
                continue;
            if (matches++ == 0)
                first = i;
            if (!stream)
                break;
        }
    }
    if (store_ring_reserve(&s->ring, matches) != CN_OK)
        return CN_ENOMEM;
    uint64_t id = s->next_watcher_id;
    if (matches && !stream) {
        s->next_watcher_id++;
        ring_push(&s->ring, id, hist_at(s, first), 1);
        *watcher_id = id;
        return CN_OK;
    }

    uint32_t h = store_hash(path.base, path.len);
    struct store_watch_path *wp = wp_find(s, path.base, path.len, h);
    struct store_watch_path *new_wp = NULL;
    struct store_watcher *w = cn_calloc(1, sizeof(*w));
    if (w == NULL)
        return CN_ENOMEM;
    if (wp == NULL) {
        new_wp = cn_malloc(sizeof(*new_wp) + path.len + 1);
        if (new_wp == NULL)
            goto err;
        memset(new_wp, 0, sizeof(*new_wp));
        new_wp->hash = h;
        new_wp->len = path.len;
        memcpy(new_wp->path, path.base, path.len);
        new_wp->path[path.len] = '\0';
    }
    if (maps_reserve(s) != CN_OK)
        goto err;

    /* commit */
    if (new_wp != NULL) {
        uint32_t slot = h & (s->wp_nbuckets - 1);
        new_wp->hnext = s->wp_buckets[slot];
        s->wp_buckets[slot] = new_wp;
        s->wp_count++;
        wp = new_wp;
    }
    s->next_watcher_id++;
    w->id = id;
    w->since_index = since_index;
    w->recursive = (uint8_t)(recursive != 0);
    w->stream = (uint8_t)(stream != 0);
    w->wp = wp;
    w->prev = wp->tail;
    if (wp->tail)
        wp->tail->next = w;
    else
        wp->head = w;
    wp->tail = w;
    wp->count++;
    uint32_t slot = id_hash(id) & (s->id_nbuckets - 1);
    w->id_next = s->id_buckets[slot];
    s->id_buckets[slot] = w;
    s->watcher_count++;
    for (uint32_t i = first; matches && i < s->hist_len; i++) {
        struct store_event *e = hist_at(s, i);
        if (e->index >= since_index &&
            hist_match(e, path.base, path.len, recursive)) {
            matches--;
            if (deliver(s, w, e))
                break; /* more history than a stream may queue: ended */
        }
    }
    *watcher_id = id;
    return CN_OK;

err:
    cn_free(new_wp);
    cn_free(w);
    return CN_ENOMEM;
}

void store_unwatch(struct store *s, uint64_t watcher_id)
{
    struct store_watcher *w = id_find(s, watcher_id);
    if (w == NULL)
        return;
    if (w->pending) {
        for (size_t i = 0; i < s->ring.len; i++) {
            struct store_delivery *d =
                &s->ring.a[(s->ring.head + i) % s->ring.cap];
            if (d->watcher_id == watcher_id) {
                store_event_unref(d->event);
                d->event = NULL;
                d->watcher_id = 0;
            }
        }
    }
    watcher_remove(s, w);
}

int store_next_delivery(struct store *s, struct store_delivery *d)
{
    struct store_ring *r = &s->ring;
    while (r->len) {
        struct store_delivery *h = &r->a[r->head];
        struct store_delivery cur = *h;
        r->head = (r->head + 1) % r->cap;
        r->len--;
        r->head_seq++;
        if (cur.watcher_id == 0)
            continue; /* dropped by store_unwatch */
        struct store_watcher *w = id_find(s, cur.watcher_id);
        if (w != NULL)
            w->pending--;
        *d = cur;
        return 1;
    }
    return 0;
}
