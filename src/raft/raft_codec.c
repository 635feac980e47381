/*
 * raft_codec: byte encodings of messages and of the structures a driver
 * persists (hard state, entries, snapshot metadata, configurations).
 *
 * Record layout: [version u8][kind u8][body][crc32c u32], integers little
 * endian and fixed width. The CRC covers version, kind and body. Decoders
 * check the CRC first, then every length and enum against its limit, and
 * require the record to end exactly at len: any deviation is CN_ECORRUPT.
 */
#include "raft.h"

#include <string.h>

enum {
    REC_MSG = 1,
    REC_ENTRY = 2,
    REC_HARD_STATE = 3,
    REC_SNAP_META = 4,
    REC_CONF = 5,
};

/* --- writer ---------------------------------------------------------- */

struct wr {
    struct cn_buf *b;
    size_t start; /* b->len when the record began, restored on failure */
    int rc;
};

static void put(struct wr *w, const void *p, size_t n)
{
    if (w->rc == 0)
        w->rc = cn_buf_append(w->b, p, n);
}

static void put_u8(struct wr *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u32(struct wr *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 4);
}

static void put_u64(struct wr *w, uint64_t v)
{
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, 8);
}

static void wr_begin(struct wr *w, struct cn_buf *b, uint8_t kind)
{
    w->b = b;
    w->start = b->len;
    w->rc = 0;
    put_u8(w, RAFT_CODEC_VERSION);
    put_u8(w, kind);
}

static int wr_end(struct wr *w)
{
    if (w->rc == 0) {
        uint32_t crc =
            cn_crc32c(0, w->b->data + w->start, w->b->len - w->start);
        put_u32(w, crc);
    }
    if (w->rc != 0)
        w->b->len = w->start;
    return w->rc;
}

/* --- reader ---------------------------------------------------------- */

struct rd {
    const uint8_t *p;
    size_t len; /* body end (excludes the CRC) */
    size_t off;
    int bad;
};

static int rd_begin(struct rd *r, const void *p, size_t len, uint8_t kind)
{
    const uint8_t *b = p;
    r->p = b;
    r->off = 2;
    r->bad = 0;
    if (p == NULL || len < 6)
        return CN_ECORRUPT;
    uint32_t want = 0;
    for (int i = 0; i < 4; i++)
        want |= (uint32_t)b[len - 4 + i] << (8 * i);
    if (cn_crc32c(0, b, len - 4) != want)
        return CN_ECORRUPT;
    if (b[0] != RAFT_CODEC_VERSION || b[1] != kind)
        return CN_ECORRUPT;
    r->len = len - 4;
    return 0;
}

static const uint8_t *get(struct rd *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

static uint8_t get_u8(struct rd *r)
{
    const uint8_t *q = get(r, 1);
    return q ? q[0] : 0;
}

static uint32_t get_u32(struct rd *r)
{
    const uint8_t *q = get(r, 4);
    uint32_t v = 0;
    if (q)
        for (int i = 0; i < 4; i++)
            v |= (uint32_t)q[i] << (8 * i);
    return v;
}

static uint64_t get_u64(struct rd *r)
{
    const uint8_t *q = get(r, 8);
    uint64_t v = 0;
    if (q)
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)q[i] << (8 * i);
    return v;
}

static int rd_end(struct rd *r)
{
    return (r->bad || r->off != r->len) ? CN_ECORRUPT : 0;
}

/* --- shared bodies ----------------------------------------------------- */

static void put_conf(struct wr *w, const struct raft_conf *c)
{
    put_u8(w, (uint8_t)c->n);
    for (unsigned i = 0; i < c->n; i++) {
        put_u64(w, c->servers[i].id);
        put_u8(w, c->servers[i].role);
    }
}

static void get_conf(struct rd *r, struct raft_conf *c)
{
    memset(c, 0, sizeof(*c));
    unsigned n = get_u8(r);
    if (n > RAFT_SERVERS_MAX) {
        r->bad = 1;
        return;
    }
    for (unsigned i = 0; i < n && !r->bad; i++) {
        raft_id id = get_u64(r);
        uint8_t role = get_u8(r);
        if (id == 0 || (role != RAFT_VOTER && role != RAFT_LEARNER) ||
            raft_conf_get(c, id) != NULL) {
            r->bad = 1;
            return;
        }
        c->servers[c->n].id = id;
        c->servers[c->n].role = role;
        c->n++;
    }
}

static void put_meta(struct wr *w, const struct raft_snapshot_meta *m)
{
    put_u64(w, m->index);
    put_u64(w, m->term);
    put_u64(w, m->conf_index);
    put_conf(w, &m->conf);
}

static void get_meta(struct rd *r, struct raft_snapshot_meta *m)
{
    m->index = get_u64(r);
    m->term = get_u64(r);
    m->conf_index = get_u64(r);
    get_conf(r, &m->conf);
    if (m->conf_index > m->index)
        r->bad = 1;
}

static void put_entry(struct wr *w, const struct raft_entry *e)
{
    put_u64(w, e->term);
    put_u64(w, e->index);
    put_u8(w, e->type);
    put_u32(w, (uint32_t)e->data_len);
    put(w, e->data, e->data_len);
}

static void get_entry(struct rd *r, struct raft_entry *e)
{
    e->term = get_u64(r);
    e->index = get_u64(r);
    e->type = get_u8(r);
    e->data_len = get_u32(r);
    e->data = (void *)get(r, e->data_len);
    if (e->data_len == 0)
        e->data = NULL;
    if (e->type < RAFT_ENTRY_COMMAND || e->type > RAFT_ENTRY_CONFIG ||
        e->index == 0 || e->term == 0)
        r->bad = 1;
}

/* --- public ------------------------------------------------------------ */

int raft_conf_encode(const struct raft_conf *c, struct cn_buf *out)
{
    struct wr w;
    wr_begin(&w, out, REC_CONF);
    put_conf(&w, c);
    return wr_end(&w);
}

int raft_conf_decode(const void *p, size_t len, struct raft_conf *c)
{
    struct rd r;
    int rc = rd_begin(&r, p, len, REC_CONF);
    if (rc != 0)
        return rc;
    get_conf(&r, c);
    return rd_end(&r);
}

int raft_hard_state_encode(const struct raft_hard_state *hs, struct cn_buf *out)
{
    struct wr w;
    wr_begin(&w, out, REC_HARD_STATE);
    put_u64(&w, hs->term);
    put_u64(&w, hs->vote);
    put_u64(&w, hs->commit);
    return wr_end(&w);
}

int raft_hard_state_decode(const void *p, size_t len,
                           struct raft_hard_state *hs)
{
    struct rd r;
    int rc = rd_begin(&r, p, len, REC_HARD_STATE);
    if (rc != 0)
        return rc;
    hs->term = get_u64(&r);
    hs->vote = get_u64(&r);
    hs->commit = get_u64(&r);
    return rd_end(&r);
}

int raft_snapshot_meta_encode(const struct raft_snapshot_meta *m,
                              struct cn_buf *out)
{
    struct wr w;
    wr_begin(&w, out, REC_SNAP_META);
    put_meta(&w, m);
    return wr_end(&w);
}

int raft_snapshot_meta_decode(const void *p, size_t len,
                              struct raft_snapshot_meta *m)
{
    struct rd r;
    int rc = rd_begin(&r, p, len, REC_SNAP_META);
    if (rc != 0)
        return rc;
    get_meta(&r, m);
    return rd_end(&r);
}

int raft_entry_encode(const struct raft_entry *e, struct cn_buf *out)
{
    struct wr w;
    wr_begin(&w, out, REC_ENTRY);
    put_entry(&w, e);
    return wr_end(&w);
}

int raft_entry_decode(const void *p, size_t len, struct raft_entry *e)
{
    struct rd r;
    int rc = rd_begin(&r, p, len, REC_ENTRY);
    if (rc != 0)
        return rc;
    get_entry(&r, e);
    return rd_end(&r);
}

int raft_msg_encode(const struct raft_msg *m, struct cn_buf *out)
{
    struct wr w;
    wr_begin(&w, out, REC_MSG);
    put_u8(&w, m->type);
    put_u64(&w, m->from);
    put_u64(&w, m->to);
    put_u64(&w, m->term);
    put_u64(&w, m->index);
    put_u64(&w, m->log_term);
    put_u64(&w, m->commit);
    put_u64(&w, m->hint);
    put_u64(&w, m->ctx);
    put_u8(&w, m->reject);
    put_u8(&w, m->force);
    if (m->type == RAFT_MSG_APPEND) {
        put_u32(&w, m->n_entries);
        for (unsigned i = 0; i < m->n_entries; i++)
            put_entry(&w, &m->entries[i]);
    } else if (m->type == RAFT_MSG_SNAPSHOT) {
        put_meta(&w, &m->snap);
        put_u64(&w, m->offset);
        put_u8(&w, m->last);
        put_u32(&w, (uint32_t)m->chunk_len);
        put(&w, m->chunk, m->chunk_len);
    } else if (m->type == RAFT_MSG_SNAPSHOT_RESP) {
        put_u64(&w, m->offset);
    }
    return wr_end(&w);
}

static int decode_entries(struct rd *r, struct raft_msg *m)
{
    uint32_t n = get_u32(r);
    if (r->bad || n > CN_RAFT_ENTRIES_PER_MSG_MAX)
        return CN_ECORRUPT;
    if (n == 0)
        return 0;
    /* Each entry takes at least 21 bytes: reject absurd counts before
     * allocating. */
    if ((size_t)n * 21 > r->len - r->off)
        return CN_ECORRUPT;
    m->entries = cn_calloc(n, sizeof(*m->entries));
    if (m->entries == NULL)
        return CN_ENOMEM;
    m->n_entries = n;
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        get_entry(r, &m->entries[i]);
        if (m->entries[i].index != m->index + 1 + i)
            r->bad = 1;
    }
    return 0;
}

int raft_msg_decode(const void *p, size_t len, struct raft_msg *m)
{
    struct rd r;
    memset(m, 0, sizeof(*m));
    if (len > CN_RAFT_MSG_BYTES_MAX + 4096)
        return CN_ECORRUPT;
    int rc = rd_begin(&r, p, len, REC_MSG);
    if (rc != 0)
        return rc;
    m->type = get_u8(&r);
    m->from = get_u64(&r);
    m->to = get_u64(&r);
    m->term = get_u64(&r);
    m->index = get_u64(&r);
    m->log_term = get_u64(&r);
    m->commit = get_u64(&r);
    m->hint = get_u64(&r);
    m->ctx = get_u64(&r);
    m->reject = get_u8(&r);
    m->force = get_u8(&r);
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || m->reject > 1 ||
        m->force > 1 || m->from == 0 || m->to == 0)
        r.bad = 1;
    if (!r.bad && m->type == RAFT_MSG_APPEND) {
        rc = decode_entries(&r, m);
    } else if (!r.bad && m->type == RAFT_MSG_SNAPSHOT) {
        get_meta(&r, &m->snap);
        m->offset = get_u64(&r);
        m->last = get_u8(&r);
        m->chunk_len = get_u32(&r);
        m->chunk = get(&r, m->chunk_len);
        if (m->last > 1 || m->snap.index == 0)
            r.bad = 1;
    } else if (!r.bad && m->type == RAFT_MSG_SNAPSHOT_RESP) {
        m->offset = get_u64(&r);
    }
    if (rc == 0)
        rc = rd_end(&r);
    if (rc != 0)
        raft_msg_release(m);
    return rc;
}

void raft_msg_release(struct raft_msg *m)
{
    cn_free(m->entries);
    m->entries = NULL;
    m->n_entries = 0;
}
