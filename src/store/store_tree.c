/*
 * store_tree: nodes of the key tree, the child tables of directories and
 * the TTL min-heap.
 *
 * Invariants: a directory's children list holds exactly its children in
 * insertion order; when u.dir.nbuckets != 0 every child is also in one
 * slot of buckets, reached by probing from hash & (nbuckets - 1) forward
 * (wrapping) over occupied slots only; count <= nbuckets * 3 / 4. A node
 * is in the heap (heap_pos != STORE_HEAP_NONE) iff expire_ns != 0 and it
 * is attached to the tree.
 */
#include "store_int.h"

#include <string.h>

uint32_t store_hash(const char *p, size_t n)
{
    /* FNV-1a, 32 bit. Names are short; this is plenty. */
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 16777619u;
    }
    return h;
}

/* A clean key path: "/" or "/a/b"; no empty, "." or ".." segment, no
 * trailing '/', within the key and depth limits. */
int store_path_valid(struct cn_slice p)
{
    if (p.len == 0 || p.base == NULL || p.base[0] != '/' ||
        p.len > CN_STORE_KEY_BYTES_MAX)
        return 0;
    if (p.len == 1)
        return 1;
    size_t depth = 0, i = 1;
    while (i <= p.len) {
        size_t j = i;
        while (j < p.len && p.base[j] != '/')
            j++;
        size_t seg = j - i;
        if (seg == 0)
            return 0;
        if ((seg == 1 && p.base[i] == '.') ||
            (seg == 2 && p.base[i] == '.' && p.base[i + 1] == '.'))
            return 0;
        if (++depth > CN_STORE_DEPTH_MAX)
            return 0;
        i = j + 1;
    }
    return 1;
}

struct store_node *store_node_new(const char *name, size_t len, int is_dir)
{
    struct store_node *n = cn_malloc(sizeof(*n) + len + 1);
    if (n == NULL)
        return NULL;
    memset(n, 0, sizeof(*n));
    n->heap_pos = STORE_HEAP_NONE;
    n->name_len = (uint32_t)len;
    n->hash = store_hash(name, len);
    n->is_dir = (uint8_t)(is_dir != 0);
    if (len)
        memcpy(n->name, name, len);
    n->name[len] = '\0';
    return n;
}

void store_node_free_tree(struct store_node *top)
{
    /* Iterative post-order (children lists are consumed) so deep trees
     * cannot overflow the C stack. */
    struct store_node *n = top;
    while (n != NULL) {
        if (n->is_dir && n->u.dir.first != NULL) {
            struct store_node *c = n->u.dir.first;
            n->u.dir.first = c->next;
            n = c;
            continue;
        }
        struct store_node *up = n == top ? NULL : n->parent;
        if (n->is_dir)
            cn_free(n->u.dir.buckets);
        else
            cn_free(n->u.value.data);
        cn_free(n);
        n = up;
    }
}

/* Slots a table may fill: 3/4 of them. */
static uint64_t dir_slots_usable(uint64_t nb)
{
    return nb / 4 * 3;
}

static void dir_slot_put(struct store_slot *b, uint32_t nb,
                         struct store_node *n, uint32_t hash)
{
    uint32_t mask = nb - 1;
    uint32_t i = hash & mask;
    while (b[i].node != NULL)
        i = (i + 1) & mask;
    b[i].node = n;
    b[i].hash = hash;
}

struct store_node *store_dir_find(const struct store_node *d, const char *name,
                                  size_t len, uint32_t h)
{
    const struct store_node *c;
    if (d->u.dir.nbuckets) {
        uint32_t mask = d->u.dir.nbuckets - 1;
        for (uint32_t i = h & mask;; i = (i + 1) & mask) {
            const struct store_slot *sl = &d->u.dir.buckets[i];
            if (sl->node == NULL)
                return NULL;
            c = sl->node;
            if (sl->hash == h && c->name_len == len &&
                memcmp(c->name, name, len) == 0)
                return (struct store_node *)c;
        }
    }
    for (c = d->u.dir.first; c != NULL; c = c->next)
        if (c->hash == h && c->name_len == len &&
            memcmp(c->name, name, len) == 0)
            return (struct store_node *)c;
    return NULL;
}

int store_dir_reserve(struct store_node *d)
{
    return store_dir_reserve_n(d, 1);
}

int store_dir_reserve_n(struct store_node *d, uint32_t more)
{
    uint64_t want = (uint64_t)d->u.dir.count + more;
    if (want <= STORE_DIR_LINEAR_MAX ||
        want <= dir_slots_usable(d->u.dir.nbuckets))
        return CN_OK;
    if (want > (1u << 30))
        return CN_ENOMEM;
    uint64_t nb = d->u.dir.nbuckets ? (uint64_t)d->u.dir.nbuckets * 2 : 32;
    while (dir_slots_usable(nb) < want)
        nb *= 2;
    struct store_slot *b = cn_calloc((size_t)nb, sizeof(*b));
    if (b == NULL)
        return CN_ENOMEM;
    /* reads the old table (or the few children of a linear directory) and
     * writes only the new one */
    if (d->u.dir.nbuckets) {
        for (uint32_t i = 0; i < d->u.dir.nbuckets; i++)
            if (d->u.dir.buckets[i].node != NULL)
                dir_slot_put(b, (uint32_t)nb, d->u.dir.buckets[i].node,
                             d->u.dir.buckets[i].hash);
    } else {
        for (struct store_node *c = d->u.dir.first; c != NULL; c = c->next)
            dir_slot_put(b, (uint32_t)nb, c, c->hash);
    }
    cn_free(d->u.dir.buckets);
    d->u.dir.buckets = b;
    d->u.dir.nbuckets = (uint32_t)nb;
    return CN_OK;
}

void store_dir_link(struct store_node *d, struct store_node *n)
{
    CN_ASSERT(d->is_dir);
    CN_ASSERT(d->u.dir.count + 1 <= STORE_DIR_LINEAR_MAX ||
              d->u.dir.count + 1 <= dir_slots_usable(d->u.dir.nbuckets));
    n->parent = d;
    n->depth = (uint16_t)(d->depth + 1);
    n->next = NULL;
    n->prev = d->u.dir.last;
    if (d->u.dir.last)
        d->u.dir.last->next = n;
    else
        d->u.dir.first = n;
    d->u.dir.last = n;
    if (d->u.dir.nbuckets)
        dir_slot_put(d->u.dir.buckets, d->u.dir.nbuckets, n, n->hash);
    d->u.dir.count++;
}

/* Empties n's slot and shifts back the entries after it that probing would
 * no longer reach (no tombstones). */
static void dir_slot_remove(struct store_slot *b, uint32_t nb,
                            const struct store_node *n)
{
    uint32_t mask = nb - 1;
    uint32_t i = n->hash & mask;
    while (b[i].node != n) {
        CN_ASSERT(b[i].node != NULL);
        i = (i + 1) & mask;
    }
    b[i].node = NULL;
    for (uint32_t j = (i + 1) & mask; b[j].node != NULL; j = (j + 1) & mask) {
        uint32_t home = b[j].hash & mask;
        /* b[j] may fill the hole at i unless its home lies in (i, j] */
        if (((j - home) & mask) >= ((j - i) & mask)) {
            b[i] = b[j];
            b[j].node = NULL;
            i = j;
        }
    }
}

void store_dir_unlink(struct store_node *d, struct store_node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        d->u.dir.first = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        d->u.dir.last = n->prev;
    if (d->u.dir.nbuckets)
        dir_slot_remove(d->u.dir.buckets, d->u.dir.nbuckets, n);
    n->prev = n->next = NULL;
    n->parent = NULL;
    d->u.dir.count--;
}

size_t store_node_path(const struct store_node *n, char *buf, size_t cap)
{
    if (n->parent == NULL) {
        if (cap)
            buf[0] = '/';
        return 1;
    }
    size_t len = 0;
    for (const struct store_node *p = n; p->parent != NULL; p = p->parent)
        len += 1 + p->name_len;
    CN_ASSERT(len <= cap);
    size_t end = len;
    for (const struct store_node *p = n; p->parent != NULL; p = p->parent) {
        end -= p->name_len;
        memcpy(buf + end, p->name, p->name_len);
        buf[--end] = '/';
    }
    return len;
}

/* ---- TTL heap ---------------------------------------------------------- */

int store_heap_less(const struct store_node *a, const struct store_node *b)
{
    if (a->expire_ns != b->expire_ns)
        return a->expire_ns < b->expire_ns;
    if (a->created_index != b->created_index)
        return a->created_index < b->created_index;
    return a->depth < b->depth;
}

int store_heap_reserve(struct store_heap *h, uint32_t extra)
{
    if ((uint64_t)h->len + extra <= h->cap)
        return CN_OK;
    uint64_t cap = h->cap ? h->cap : 16;
    while (cap < (uint64_t)h->len + extra)
        cap *= 2;
    if (cap >= STORE_HEAP_NONE)
        return CN_ENOMEM;
    struct store_node **a = cn_realloc(h->a, (size_t)cap * sizeof(*a));
    if (a == NULL)
        return CN_ENOMEM;
    h->a = a;
    h->cap = (uint32_t)cap;
    return CN_OK;
}

static void heap_set(struct store_heap *h, uint32_t i, struct store_node *n)
{
    h->a[i] = n;
    n->heap_pos = i;
}

static void heap_up(struct store_heap *h, uint32_t i)
{
    struct store_node *n = h->a[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (!store_heap_less(n, h->a[p]))
            break;
        heap_set(h, i, h->a[p]);
        i = p;
    }
    heap_set(h, i, n);
}

static void heap_down(struct store_heap *h, uint32_t i)
{
    struct store_node *n = h->a[i];
    for (;;) {
        uint32_t l = 2 * i + 1, m = i;
        struct store_node *best = n;
        if (l < h->len && store_heap_less(h->a[l], best)) {
            m = l;
            best = h->a[l];
        }
        if (l + 1 < h->len && store_heap_less(h->a[l + 1], best)) {
            m = l + 1;
            best = h->a[l + 1];
        }
        if (m == i)
            break;
        heap_set(h, i, best);
        i = m;
    }
    heap_set(h, i, n);
}

void store_heap_push(struct store_heap *h, struct store_node *n)
{
    CN_ASSERT(h->len < h->cap);
    CN_ASSERT(n->heap_pos == STORE_HEAP_NONE);
    heap_set(h, h->len++, n);
    heap_up(h, h->len - 1);
}

void store_heap_remove(struct store_heap *h, struct store_node *n)
{
    uint32_t i = n->heap_pos;
    CN_ASSERT(i < h->len && h->a[i] == n);
    n->heap_pos = STORE_HEAP_NONE;
    h->len--;
    if (i == h->len)
        return;
    struct store_node *m = h->a[h->len];
    heap_set(h, i, m);
    heap_up(h, i);
    heap_down(h, m->heap_pos);
}

void store_heap_fix(struct store_heap *h, struct store_node *n)
{
    uint32_t i = n->heap_pos;
    CN_ASSERT(i < h->len && h->a[i] == n);
    heap_up(h, i);
    heap_down(h, n->heap_pos);
}
