/*
 * store_codec: commands as bytes (for the log and peers) and snapshots.
 *
 * Integers are LEB128 varints (signed ones zigzag-encoded); a varint must
 * be canonical (no redundant trailing zero groups), so every command has
 * exactly one encoding and decode(encode(c)) == c. Layouts are in
 * docs/store.md. Decoding never trusts a length: every read is checked
 * against the bytes left, and anything malformed is CN_ECORRUPT.
 */
#include "store_int.h"

#include <string.h>

/* ---- primitive writer / reader ----------------------------------------- */

static int put_u8(struct cn_buf *b, unsigned v)
{
    return cn_buf_append_char(b, (char)(unsigned char)v);
}

static int put_uv(struct cn_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    do {
        unsigned char c = v & 0x7f;
        v >>= 7;
        tmp[n++] = (unsigned char)(c | (v ? 0x80 : 0));
    } while (v);
    return cn_buf_append(b, tmp, n);
}

static int put_sv(struct cn_buf *b, int64_t v)
{
    return put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static int put_bytes(struct cn_buf *b, const void *p, size_t n)
{
    int rc = put_uv(b, n);
    if (rc == CN_OK && n)
        rc = cn_buf_append(b, p, n);
    return rc;
}

struct rd {
    const unsigned char *p;
    size_t left;
    int bad;
};

static unsigned get_u8(struct rd *r)
{
    if (r->left < 1) {
        r->bad = 1;
        return 0;
    }
    r->left--;
    return *r->p++;
}

static uint64_t get_uv(struct rd *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        if (r->left < 1) {
            r->bad = 1;
            return 0;
        }
        unsigned c = *r->p++;
        r->left--;
        if (shift == 63 && c > 1) {
            r->bad = 1;
            return 0;
        }
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            if (c == 0 && shift != 0)
                r->bad = 1; /* not canonical */
            return v;
        }
    }
    r->bad = 1;
    return 0;
}

static int64_t get_sv(struct rd *r)
{
    uint64_t u = get_uv(r);
    return (int64_t)((u >> 1) ^ (~(u & 1) + 1));
}

static const char *get_bytes(struct rd *r, size_t *n)
{
    uint64_t len = get_uv(r);
    if (r->bad || len > r->left) {
        r->bad = 1;
        *n = 0;
        return NULL;
    }
    const char *p = (const char *)r->p;
    r->p += len;
    r->left -= (size_t)len;
    *n = (size_t)len;
    return p;
}

/* ---- commands ---------------------------------------------------------- */

#define CMD_F_DIR 0x01u
#define CMD_F_RECURSIVE 0x02u
#define CMD_F_REFRESH 0x04u
#define CMD_F_PREV_SHIFT 3 /* 2 bits: 0 unset, 1 false, 2 true */
#define CMD_F_ALL 0x1fu

int store_cmd_encode(const struct store_cmd *c, struct cn_buf *out)
{
    if (c->method < STORE_CMD_PUT || c->method > STORE_CMD_SYNC)
        return CN_EINVAL;
    unsigned flags = (c->dir ? CMD_F_DIR : 0) |
                     (c->recursive ? CMD_F_RECURSIVE : 0) |
                     (c->refresh ? CMD_F_REFRESH : 0);
    unsigned pe = c->prev_exist < 0 ? 0 : c->prev_exist ? 2 : 1;
    flags |= pe << CMD_F_PREV_SHIFT;
    size_t start = out->len;
    int rc = put_u8(out, STORE_CMD_VERSION);
    if (rc == CN_OK)
        rc = put_u8(out, (unsigned)c->method);
    if (rc == CN_OK)
        rc = put_u8(out, flags);
    if (rc == CN_OK)
        rc = put_bytes(out, c->path.base, c->path.len);
    if (rc == CN_OK)
        rc = put_bytes(out, c->value.base, c->value.len);
    if (rc == CN_OK)
        rc = put_bytes(out, c->prev_value.base, c->prev_value.len);
    if (rc == CN_OK)
        rc = put_uv(out, c->prev_index);
    if (rc == CN_OK)
        rc = put_sv(out, c->expire_ns);
    if (rc == CN_OK)
        rc = put_sv(out, c->now_ns);
    if (rc != CN_OK) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

int store_cmd_decode(const char *data, size_t len, struct store_cmd *cmd)
{
    struct rd r = {(const unsigned char *)data, len, 0};
    struct store_cmd c;
    memset(&c, 0, sizeof(c));
    if (data == NULL || get_u8(&r) != STORE_CMD_VERSION || r.bad)
        return CN_ECORRUPT;
    c.method = (int)get_u8(&r);
    unsigned flags = get_u8(&r);
    if (r.bad || c.method < STORE_CMD_PUT || c.method > STORE_CMD_SYNC ||
        (flags & ~CMD_F_ALL) != 0)
        return CN_ECORRUPT;
    unsigned pe = (flags >> CMD_F_PREV_SHIFT) & 3;
    if (pe == 3)
        return CN_ECORRUPT;
    c.dir = (flags & CMD_F_DIR) != 0;
    c.recursive = (flags & CMD_F_RECURSIVE) != 0;
    c.refresh = (flags & CMD_F_REFRESH) != 0;
    c.prev_exist = pe == 0 ? -1 : pe == 2 ? 1 : 0;
    c.path.base = get_bytes(&r, &c.path.len);
    c.value.base = get_bytes(&r, &c.value.len);
    c.prev_value.base = get_bytes(&r, &c.prev_value.len);
    c.prev_index = get_uv(&r);
    c.expire_ns = get_sv(&r);
    c.now_ns = get_sv(&r);
    if (r.bad || r.left != 0)
        return CN_ECORRUPT;
    if (c.path.len == 0)
        c.path.base = "";
    if (c.value.len == 0)
        c.value.base = "";
    if (c.prev_value.len == 0)
        c.prev_value.base = "";
    *cmd = c;
    return CN_OK;
}

/* ---- snapshots --------------------------------------------------------- */

static int save_node(struct cn_buf *b, const struct store_node *n)
{
    int rc = put_u8(b, n->is_dir);
    if (rc == CN_OK)
        rc = put_bytes(b, n->name, n->name_len);
    if (rc == CN_OK)
        rc = put_uv(b, n->created_index);
    if (rc == CN_OK)
        rc = put_uv(b, n->modified_index);
    if (rc == CN_OK)
        rc = put_sv(b, n->expire_ns);
    if (rc != CN_OK)
        return rc;
    if (!n->is_dir)
        return put_bytes(b, n->u.value.data, n->u.value.len);
    rc = put_uv(b, n->u.dir.count);
    for (const struct store_node *c = n->u.dir.first; rc == CN_OK && c;
         c = c->next)
        rc = save_node(b, c);
    return rc;
}

int store_snapshot_save(const struct store *s, struct cn_buf *out)
{
    size_t start = out->len;
    const struct store_stats *t = &s->stats;
    const uint64_t st[15] = {
        t->gets_success,   t->gets_fail,   t->sets_success,   t->sets_fail,
        t->delete_success, t->delete_fail, t->update_success, t->update_fail,
        t->create_success, t->create_fail, t->cas_success,    t->cas_fail,
        t->cad_success,    t->cad_fail,    t->expire_count};
    int rc = cn_buf_append(out, STORE_SNAPSHOT_MAGIC, 4);
    if (rc == CN_OK)
        rc = put_u8(out, STORE_SNAPSHOT_VERSION);
    if (rc == CN_OK)
        rc = put_uv(out, s->index);
    for (int i = 0; rc == CN_OK && i < 15; i++)
        rc = put_uv(out, st[i]);
    if (rc == CN_OK)
        rc = put_uv(out, s->hist_len);
    for (uint32_t i = 0; rc == CN_OK && i < s->hist_len; i++) {
        const struct store_event *e =
            s->hist[(s->hist_front + i) % s->cfg.history_events];
        rc = put_uv(out, e->index);
        if (rc == CN_OK)
            rc = put_u8(out, (unsigned)e->action);
        if (rc == CN_OK)
            rc = put_u8(out, (e->refresh ? 1u : 0u) | (e->prev_dir ? 2u : 0u));
        if (rc == CN_OK)
            rc = put_bytes(out, e->key, e->key_len);
        if (rc == CN_OK)
            rc = put_bytes(out, e->json, e->json_len);
    }
    if (rc == CN_OK)
        rc = put_uv(out, s->root->u.dir.count);
    for (const struct store_node *c = s->root->u.dir.first; rc == CN_OK && c;
         c = c->next)
        rc = save_node(out, c);
    if (rc == CN_OK) {
        uint32_t crc = cn_crc32c(0, out->data + start, out->len - start);
        unsigned char le[4] = {(unsigned char)crc, (unsigned char)(crc >> 8),
                               (unsigned char)(crc >> 16),
                               (unsigned char)(crc >> 24)};
        rc = cn_buf_append(out, le, 4);
    }
    if (rc != CN_OK) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

/* The state being loaded, installed only when all of it is good. */
struct load {
    struct store_node *root;
    struct store_heap heap;
    struct store_event **hist;
    uint32_t hist_len;
    uint64_t node_count;
    int nomem;
};

static int load_children(struct rd *r, struct load *L, struct store_node *d,
                         size_t path_len, unsigned depth);

static int load_node(struct rd *r, struct load *L, struct store_node *d,
                     size_t path_len, unsigned depth)
{
    unsigned kind = get_u8(r);
    size_t nlen;
    const char *name = get_bytes(r, &nlen);
    uint64_t created = get_uv(r), modified = get_uv(r);
    int64_t expire = get_sv(r);
    if (r->bad || kind > 1 || nlen == 0 || memchr(name, '/', nlen) != NULL ||
        depth > CN_STORE_DEPTH_MAX + 1 ||
        path_len + 1 + nlen > CN_STORE_KEY_BYTES_MAX + 32 || created == 0 ||
        modified == 0)
        return CN_ECORRUPT;
    uint32_t h = store_hash(name, nlen);
    if (store_dir_find(d, name, nlen, h) != NULL)
        return CN_ECORRUPT;
    const char *value = NULL;
    size_t vlen = 0;
    if (kind == 0) {
        value = get_bytes(r, &vlen);
        if (r->bad)
            return CN_ECORRUPT;
    }
    struct store_node *n = store_node_new(name, nlen, (int)kind);
    if (n == NULL)
        return CN_ENOMEM;
    n->created_index = created;
    n->modified_index = modified;
    if (vlen) {
        n->u.value.data = cn_malloc(vlen);
        if (n->u.value.data == NULL) {
            cn_free(n);
            return CN_ENOMEM;
        }
        memcpy(n->u.value.data, value, vlen);
        n->u.value.len = vlen;
    }
    if (store_dir_reserve(d) != CN_OK) {
        store_node_free_tree(n);
        return CN_ENOMEM;
    }
    store_dir_link(d, n);
    L->node_count++;
    if (expire != 0) {
        if (store_heap_reserve(&L->heap, 1) != CN_OK)
            return CN_ENOMEM;
        n->expire_ns = expire;
        store_heap_push(&L->heap, n);
    }
    if (kind == 1)
        return load_children(r, L, n, path_len + 1 + nlen, depth + 1);
    return CN_OK;
}

static int load_children(struct rd *r, struct load *L, struct store_node *d,
                         size_t path_len, unsigned depth)
{
    uint64_t count = get_uv(r);
    if (r->bad || count > r->left)
        return CN_ECORRUPT;
    /* A node takes 6 bytes at least: a count beyond that is damage. */
    if (count > r->left / 6 || count >= (1u << 30))
        return CN_ECORRUPT;
    if (count > 1 && store_dir_reserve_n(d, (uint32_t)count) != CN_OK)
        return CN_ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        int rc = load_node(r, L, d, path_len, depth);
        if (rc != CN_OK)
            return rc;
    }
    return CN_OK;
}

static void load_free(struct load *L, uint32_t hist_cap)
{
    if (L->root)
        store_node_free_tree(L->root);
    cn_free(L->heap.a);
    if (L->hist) {
        for (uint32_t i = 0; i < hist_cap; i++)
            store_event_unref(L->hist[i]);
        cn_free(L->hist);
    }
}

static int load_history(struct rd *r, struct load *L, uint32_t cap,
                        uint64_t index)
{
    uint64_t count = get_uv(r);
    if (r->bad || count > r->left)
        return CN_ECORRUPT;
    uint64_t skip = count > cap ? count - cap : 0, prev = 0;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t ei = get_uv(r);
        unsigned action = get_u8(r), flags = get_u8(r);
        size_t klen, jlen;
        const char *key = get_bytes(r, &klen);
        const char *json = get_bytes(r, &jlen);
        if (r->bad || action < STORE_ACT_SET || action > STORE_ACT_EXPIRE ||
            (flags & ~3u) != 0 || ei == 0 || ei > index ||
            (i > 0 && ei != prev + 1) || klen == 0 || key[0] != '/')
            return CN_ECORRUPT;
        prev = ei;
        if (i < skip)
            continue;
        struct store_event *e = store_event_alloc((int)action, key, klen);
        if (e == NULL)
            return CN_ENOMEM;
        e->json = cn_malloc(jlen + 1);
        if (e->json == NULL) {
            store_event_unref(e);
            return CN_ENOMEM;
        }
        memcpy(e->json, json, jlen);
        e->json[jlen] = '\0';
        e->json_len = jlen;
        e->index = ei;
        e->refresh = (flags & 1u) != 0;
        e->prev_dir = (flags & 2u) != 0;
        L->hist[L->hist_len++] = e;
    }
    return CN_OK;
}

int store_snapshot_load(struct store *s, const char *data, size_t len)
{
    if (data == NULL || len < 9 || memcmp(data, STORE_SNAPSHOT_MAGIC, 4) != 0)
        return CN_ECORRUPT;
    if ((unsigned char)data[4] != STORE_SNAPSHOT_VERSION)
        return CN_EVERSION;
    const unsigned char *t = (const unsigned char *)data + len - 4;
    uint32_t want = (uint32_t)t[0] | (uint32_t)t[1] << 8 |
                    (uint32_t)t[2] << 16 | (uint32_t)t[3] << 24;
    if (cn_crc32c(0, data, len - 4) != want)
        return CN_ECORRUPT;
    struct rd r = {(const unsigned char *)data + 5, len - 9, 0};
    struct load L;
    memset(&L, 0, sizeof(L));
    uint32_t cap = s->cfg.history_events;
    uint64_t index = get_uv(&r);
    uint64_t st[15];
    for (int i = 0; i < 15; i++)
        st[i] = get_uv(&r);
    if (r.bad)
        return CN_ECORRUPT;
    int rc = CN_ENOMEM;
    L.root = store_node_new("", 0, 1);
    L.hist = cn_calloc(cap, sizeof(*L.hist));
    if (L.root == NULL || L.hist == NULL)
        goto fail;
    rc = load_history(&r, &L, cap, index);
    if (rc == CN_OK)
        rc = load_children(&r, &L, L.root, 0, 1);
    if (rc == CN_OK && (r.bad || r.left != 0))
        rc = CN_ECORRUPT;
    if (rc != CN_OK)
        goto fail;

    /* install: watchers and queued deliveries belong to the old state */
    store_hub_close(s);
    store_ring_close(&s->ring);
    for (uint32_t i = 0; i < s->hist_len; i++)
        store_event_unref(s->hist[(s->hist_front + i) % cap]);
    cn_free(s->hist);
    store_node_free_tree(s->root);
    cn_free(s->heap.a);
    s->root = L.root;
    s->heap = L.heap;
    s->hist = L.hist;
    s->hist_front = 0;
    s->hist_len = L.hist_len;
    s->node_count = L.node_count;
    s->index = index;
    struct store_stats *x = &s->stats;
    uint64_t *dst[15] = {
        &x->gets_success,   &x->gets_fail,      &x->sets_success,
        &x->sets_fail,      &x->delete_success, &x->delete_fail,
        &x->update_success, &x->update_fail,    &x->create_success,
        &x->create_fail,    &x->cas_success,    &x->cas_fail,
        &x->cad_success,    &x->cad_fail,       &x->expire_count};
    for (int i = 0; i < 15; i++)
        *dst[i] = st[i];
    return CN_OK;

fail:
    load_free(&L, cap);
    return rc;
}
