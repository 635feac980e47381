/*
 * server_members.c: the member table, the snapshot wrapper and the command
 * codec (formats in server_members.h). Pure functions.
 */
#include "server_members.h"

#include <string.h>

#define SNAP_MAGIC 0x31534e43u /* "CNS1" read little-endian */
#define SNAP_VERSION 1u

/* ---- table ---- */

struct server_member *server_members_find(struct server_members *t, uint64_t id)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->m[i].id == id)
            return &t->m[i];
    return NULL;
}

const struct server_member *
server_members_find_const(const struct server_members *t, uint64_t id)
{
    for (unsigned i = 0; i < t->n; i++)
        if (t->m[i].id == id)
            return &t->m[i];
    return NULL;
}

int server_members_is_removed(const struct server_members *t, uint64_t id)
{
    for (unsigned i = 0; i < t->n_removed; i++)
        if (t->removed[i] == id)
            return 1;
    return 0;
}

const struct server_member *
server_members_by_peer_url(const struct server_members *t, const char *url)
{
    for (unsigned i = 0; i < t->n; i++)
        for (unsigned j = 0; j < t->m[i].n_peer; j++)
            if (strcmp(t->m[i].peer[j], url) == 0)
                return &t->m[i];
    return NULL;
}

int server_members_set_urls(struct server_member *m, int client,
                            const char *const *urls, unsigned n)
{
    if (n > SERVER_MEMBER_URLS_MAX)
        return CN_ETOOBIG;
    for (unsigned i = 0; i < n; i++)
        if (strlen(urls[i]) >= SERVER_MEMBER_URL_BYTES)
            return CN_ETOOBIG;
    char(*dst)[SERVER_MEMBER_URL_BYTES] = client ? m->client : m->peer;
    for (unsigned i = 0; i < n; i++)
        strcpy(dst[i], urls[i]);
    if (client)
        m->n_client = (uint8_t)n;
    else
        m->n_peer = (uint8_t)n;
    return CN_OK;
}

int server_members_add(struct server_members *t, uint64_t id, const char *name,
                       const char *const *urls, unsigned n)
{
    if (id == 0 || server_members_find(t, id) != NULL ||
        server_members_is_removed(t, id))
        return CN_EEXIST;
    if (t->n == SERVER_MEMBERS_MAX ||
        (name != NULL && strlen(name) >= SERVER_MEMBER_NAME_BYTES))
        return CN_ETOOBIG;
    struct server_member *m = &t->m[t->n];
    memset(m, 0, sizeof(*m));
    int rc = server_members_set_urls(m, 0, urls, n);
    if (rc != CN_OK)
        return rc;
    m->id = id;
    if (name != NULL)
        strcpy(m->name, name);
    t->n++;
    return CN_OK;
}

void server_members_remove(struct server_members *t, uint64_t id)
{
    for (unsigned i = 0; i < t->n; i++) {
        if (t->m[i].id != id)
            continue;
        memmove(&t->m[i], &t->m[i + 1], (t->n - i - 1) * sizeof(t->m[0]));
        t->n--;
        break;
    }
    if (server_members_is_removed(t, id))
        return;
    if (t->n_removed == SERVER_REMOVED_MAX) {
        memmove(&t->removed[0], &t->removed[1],
                (SERVER_REMOVED_MAX - 1) * sizeof(t->removed[0]));
        t->n_removed--;
    }
    t->removed[t->n_removed++] = id;
}

/* ---- byte helpers ---- */

static int put_u8(struct cn_buf *b, uint8_t v)
{
    return cn_buf_append(b, &v, 1);
}

static int put_u16(struct cn_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return cn_buf_append(b, x, 2);
}

static int put_u32(struct cn_buf *b, uint32_t v)
{
    uint8_t x[4];
    for (int i = 0; i < 4; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return cn_buf_append(b, x, 4);
}

static int put_u64(struct cn_buf *b, uint64_t v)
{
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(v >> (8 * i));
    return cn_buf_append(b, x, 8);
}

static int put_str(struct cn_buf *b, const char *s, size_t n)
{
    if (n > 0xffff)
        return CN_ETOOBIG;
    int rc = put_u16(b, (uint16_t)n);
    return rc != CN_OK ? rc : cn_buf_append(b, s, n);
}

struct rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    int bad;
};

static uint64_t get_n(struct rd *r, unsigned n)
{
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)r->p[r->off + i] << (8 * i);
    r->off += n;
    return v;
}

static struct cn_slice get_str(struct rd *r)
{
    struct cn_slice s = {NULL, 0};
    size_t n = (size_t)get_n(r, 2);
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        return s;
    }
    s.base = (const char *)r->p + r->off;
    s.len = n;
    r->off += n;
    return s;
}

static int copy_str(char *dst, size_t cap, struct cn_slice s)
{
    if (s.len >= cap)
        return CN_ECORRUPT;
    memcpy(dst, s.base, s.len);
    dst[s.len] = '\0';
    return CN_OK;
}

/* ---- snapshot wrapper ---- */

static int put_urls(struct cn_buf *b, char (*urls)[SERVER_MEMBER_URL_BYTES],
                    unsigned n)
{
    int rc = put_u8(b, (uint8_t)n);
    for (unsigned i = 0; i < n && rc == CN_OK; i++)
        rc = put_str(b, urls[i], strlen(urls[i]));
    return rc;
}

int server_snap_encode(const struct server_members *t,
                       const struct server_snap_parts *parts,
                       struct cn_buf *out)
{
    size_t start = out->len;
    int rc = put_u32(out, SNAP_MAGIC);
    rc |= put_u32(out, SNAP_VERSION);
    rc |= put_u32(out, (uint32_t)parts->meta.len);
    if (rc == CN_OK && parts->meta.len > 0)
        rc = cn_buf_append(out, parts->meta.base, parts->meta.len);
    rc |= put_u64(out, t->cluster_id);
    rc |= put_u32(out, t->n);
    for (unsigned i = 0; i < t->n && rc == CN_OK; i++) {
        struct server_member *m = (struct server_member *)&t->m[i];
        rc |= put_u64(out, m->id);
        rc |= put_u8(out, m->flags);
        rc |= put_str(out, m->name, strlen(m->name));
        rc |= put_urls(out, m->peer, m->n_peer);
        rc |= put_urls(out, m->client, m->n_client);
    }
    rc |= put_u32(out, t->n_removed);
    for (unsigned i = 0; i < t->n_removed && rc == CN_OK; i++)
        rc |= put_u64(out, t->removed[i]);
    rc |= put_u64(out, parts->store.len);
    if (rc == CN_OK && parts->store.len > 0)
        rc = cn_buf_append(out, parts->store.base, parts->store.len);
    if (rc == CN_OK)
        rc = put_u32(out, cn_crc32c(0, out->data + start, out->len - start));
    if (rc != CN_OK) {
        out->len = start;
        return CN_ENOMEM;
    }
    return CN_OK;
}

static int get_urls(struct rd *r, char (*urls)[SERVER_MEMBER_URL_BYTES],
                    uint8_t *n_out)
{
    unsigned n = (unsigned)get_n(r, 1);
    if (n > SERVER_MEMBER_URLS_MAX)
        return CN_ECORRUPT;
    for (unsigned i = 0; i < n; i++) {
        struct cn_slice s = get_str(r);
        if (r->bad || copy_str(urls[i], SERVER_MEMBER_URL_BYTES, s) != CN_OK)
            return CN_ECORRUPT;
    }
    *n_out = (uint8_t)n;
    return CN_OK;
}

int server_snap_decode(const void *p, size_t len, struct server_members *t,
                       struct server_snap_parts *parts)
{
    struct rd r = {p, len, 0, 0};
    if (len < 12)
        return CN_ECORRUPT;
    uint32_t crc = 0;
    for (int i = 0; i < 4; i++)
        crc |= (uint32_t)r.p[len - 4 + i] << (8 * i);
    if (cn_crc32c(0, p, len - 4) != crc)
        return CN_ECORRUPT;
    r.len = len - 4;
    if (get_n(&r, 4) != SNAP_MAGIC)
        return CN_ECORRUPT;
    if (get_n(&r, 4) != SNAP_VERSION)
        return r.bad ? CN_ECORRUPT : CN_EVERSION;
    size_t ml = (size_t)get_n(&r, 4);
    if (r.bad || r.len - r.off < ml)
        return CN_ECORRUPT;
    parts->meta.base = (const char *)r.p + r.off;
    parts->meta.len = ml;
    r.off += ml;
    memset(t, 0, sizeof(*t));
    t->cluster_id = get_n(&r, 8);
    unsigned n = (unsigned)get_n(&r, 4);
    if (r.bad || n > SERVER_MEMBERS_MAX)
        return CN_ECORRUPT;
    for (unsigned i = 0; i < n; i++) {
        struct server_member *m = &t->m[i];
        m->id = get_n(&r, 8);
        m->flags = (uint8_t)get_n(&r, 1);
        struct cn_slice name = get_str(&r);
        if (r.bad || copy_str(m->name, sizeof(m->name), name) != CN_OK ||
            get_urls(&r, m->peer, &m->n_peer) != CN_OK ||
            get_urls(&r, m->client, &m->n_client) != CN_OK)
            return CN_ECORRUPT;
    }
    t->n = n;
    unsigned nr = (unsigned)get_n(&r, 4);
    if (r.bad || nr > SERVER_REMOVED_MAX)
        return CN_ECORRUPT;
    for (unsigned i = 0; i < nr; i++)
        t->removed[i] = get_n(&r, 8);
    t->n_removed = nr;
    uint64_t sl = get_n(&r, 8);
    if (r.bad || sl != r.len - r.off)
        return CN_ECORRUPT;
    parts->store.base = (const char *)r.p + r.off;
    parts->store.len = (size_t)sl;
    return CN_OK;
}

/* ---- commands ---- */

int server_cmd_begin(struct cn_buf *out, uint8_t kind, uint64_t origin,
                     uint64_t req_id)
{
    size_t start = out->len;
    int rc = put_u8(out, kind);
    rc |= put_u64(out, origin);
    rc |= put_u64(out, req_id);
    if (rc != CN_OK) {
        out->len = start;
        return CN_ENOMEM;
    }
    return CN_OK;
}

int server_cmd_member_body(struct cn_buf *out, uint64_t id, const char *name,
                           const char *const *urls, unsigned n)
{
    size_t start = out->len;
    if (n > SERVER_MEMBER_URLS_MAX)
        return CN_ETOOBIG;
    int rc = put_u64(out, id);
    rc |= put_str(out, name ? name : "", name ? strlen(name) : 0);
    rc |= put_u8(out, (uint8_t)n);
    for (unsigned i = 0; i < n && rc == CN_OK; i++)
        rc |= put_str(out, urls[i], strlen(urls[i]));
    if (rc != CN_OK) {
        out->len = start;
        return rc == CN_ETOOBIG ? CN_ETOOBIG : CN_ENOMEM;
    }
    return CN_OK;
}

int server_cmd_decode(const void *p, size_t len, struct server_cmd *c)
{
    struct rd r = {p, len, 0, 0};
    memset(c, 0, sizeof(*c));
    c->kind = (uint8_t)get_n(&r, 1);
    c->origin = get_n(&r, 8);
    c->req_id = get_n(&r, 8);
    if (r.bad)
        return CN_ECORRUPT;
    if (c->kind == SERVER_CMD_STORE) {
        c->body.base = (const char *)r.p + r.off;
        c->body.len = len - r.off;
        return CN_OK;
    }
    if (c->kind < SERVER_CMD_ATTR || c->kind > SERVER_CMD_MEMBER_REMOVE)
        return CN_ECORRUPT;
    c->id = get_n(&r, 8);
    c->name = get_str(&r);
    unsigned n = (unsigned)get_n(&r, 1);
    if (r.bad || n > SERVER_MEMBER_URLS_MAX)
        return CN_ECORRUPT;
    for (unsigned i = 0; i < n; i++) {
        c->urls[i] = get_str(&r);
        if (c->urls[i].len >= SERVER_MEMBER_URL_BYTES)
            return CN_ECORRUPT;
    }
    c->n_urls = n;
    if (r.bad || r.off != len || c->id == 0)
        return CN_ECORRUPT;
    return CN_OK;
}
