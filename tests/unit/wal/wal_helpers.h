/*
 * wal_helpers: shared by the wal unit tests. A model of the logical log
 * (what recovery must return) and helpers to open a wal on crashfs.
 */
#ifndef CN_TESTS_WAL_HELPERS_H
#define CN_TESTS_WAL_HELPERS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crashfs.h"
#include "tap.h"
#include "wal/wal.h"

#define MODEL_MAX 4096

/* The log as recovery should see it after some records. */
struct model {
    uint64_t index[MODEL_MAX];
    uint64_t term[MODEL_MAX];
    uint64_t base; /* index of slot 0 */
    size_t count;
    int hs_set;
    struct wal_hard_state hs;
    uint64_t snap_index;
};

static inline void model_init(struct model *m)
{
    memset(m, 0, sizeof(*m));
    m->base = 1;
}

static inline void model_entry(struct model *m, uint64_t index, uint64_t term)
{
    CN_ASSERT(index >= m->base && index - m->base <= m->count);
    m->count = (size_t)(index - m->base);
    CN_ASSERT(m->count < MODEL_MAX);
    m->index[m->count] = index;
    m->term[m->count] = term;
    m->count++;
}

/* Payload of entry (index, term): deterministic, variable length. */
static inline size_t payload_for(uint64_t index, uint64_t term, char *buf,
                                 size_t cap)
{
    size_t len = (size_t)((index * 7 + term * 13) % 90) + 1;
    if (len + 1 > cap)
        len = cap - 1;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (index + term + i) % 26);
    buf[len] = '\0';
    return len;
}

static inline int append_entry(struct wal *w, struct model *m, uint64_t index,
                               uint64_t term)
{
    char buf[128];
    size_t len = payload_for(index, term, buf, sizeof(buf));
    int rc = wal_append_entry(w, index, term, (struct cn_slice){buf, len});
    if (rc == CN_OK && m != NULL)
        model_entry(m, index, term);
    return rc;
}

/* 1 if rec holds exactly the entries of m after rec's snapshot, with the
 * right payloads. */
static inline int model_matches(const struct model *m,
                                const struct wal_recovery *rec)
{
    uint64_t s = rec->snap_index;
    size_t first = 0;
    if (s >= m->base)
        first = (size_t)(s + 1 - m->base);
    if (first > m->count)
        first = m->count;
    if (rec->entry_count != m->count - first)
        return 0;
    for (size_t i = 0; i < rec->entry_count; i++) {
        const struct wal_entry *e = &rec->entries[i];
        char buf[128];
        size_t len = payload_for(e->index, e->term, buf, sizeof(buf));
        if (e->index != m->index[first + i] || e->term != m->term[first + i] ||
            e->len != len || memcmp(e->data, buf, len) != 0)
            return 0;
    }
    if (m->hs_set != rec->hard_state_set)
        return 0;
    if (m->hs_set && (m->hs.term != rec->hard_state.term ||
                      m->hs.vote != rec->hard_state.vote ||
                      m->hs.commit != rec->hard_state.commit))
        return 0;
    return 1;
}

/* Every record appended, in order, to check a recovery against "the log
 * after the first k records" for k between what was synced and all. */
enum { H_ENTRY, H_HS, H_MARK };

struct history {
    int kind[MODEL_MAX];
    uint64_t a[MODEL_MAX], b[MODEL_MAX], c[MODEL_MAX];
    size_t count;
};

static inline void history_add(struct history *h, int kind, uint64_t a,
                               uint64_t b, uint64_t c)
{
    CN_ASSERT(h->count < MODEL_MAX);
    h->kind[h->count] = kind;
    h->a[h->count] = a;
    h->b[h->count] = b;
    h->c[h->count] = c;
    h->count++;
}

static inline void history_model(const struct history *h, size_t k,
                                 struct model *m)
{
    model_init(m);
    for (size_t i = 0; i < k; i++) {
        if (h->kind[i] == H_ENTRY) {
            model_entry(m, h->a[i], h->b[i]);
        } else if (h->kind[i] == H_HS) {
            m->hs = (struct wal_hard_state){h->a[i], h->b[i], h->c[i]};
            m->hs_set = 1;
        } else if (h->a[i] >
                   (m->count ? m->index[m->count - 1] : m->base - 1)) {
            m->count = 0;
            m->base = h->a[i] + 1;
        }
    }
}

/* The k in [k_min, count] whose log rec equals, or -1. */
static inline long history_match(const struct history *h, size_t k_min,
                                 const struct wal_recovery *rec)
{
    static struct model m;
    for (size_t k = h->count + 1; k-- > k_min;) {
        history_model(h, k, &m);
        if (model_matches(&m, rec))
            return (long)k;
    }
    return -1;
}

static inline struct wal_config test_config(const struct cn_fs *fs,
                                            uint64_t segment_bytes)
{
    struct wal_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.fs = fs;
    cfg.data_dir = "/d";
    cfg.segment_bytes = segment_bytes;
    cfg.seed = 42;
    cfg.cluster_id = 7;
    cfg.member_id = 9;
    return cfg;
}

/* Opens (recovering) and checks success; the recovery is freed unless
 * rec_out is given. */
static inline struct wal *open_ok(const struct wal_config *cfg,
                                  struct wal_recovery *rec_out)
{
    struct wal *w = NULL;
    struct wal_recovery rec;
    char err[CN_ERRMSG_SIZE] = "";
    int rc = wal_open(cfg, &w, &rec, err);
    if (rc != CN_OK) {
        tap_diag("wal_open: %s: %s", cn_errname(rc), err);
        return NULL;
    }
    if (rec_out != NULL)
        *rec_out = rec;
    else
        wal_recovery_close(&rec);
    return w;
}

static inline int file_exists(struct crashfs *c, const char *path)
{
    uint8_t *data;
    size_t size;
    if (crashfs_read_file(c, path, &data, &size) != CN_OK)
        return 0;
    free(data);
    return 1;
}

#endif
