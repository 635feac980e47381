/*
 * raft_log: the in-memory log of the core and the configuration derived
 * from it.
 *
 * Invariants: ents[i].index == base_index + 1 + i; terms never decrease
 * along the log; base_term is the term of base_index (the snapshot's last
 * entry, or a compacted trailing entry). Every entry's payload is a private
 * cn_malloc block (a copy, or adopted at a restart) freed when the entry
 * leaves the log.
 *
 * The configuration in force is the last CONFIG entry in the log, or the
 * snapshot's when there is none (dissertation 4.1: a server uses the latest
 * configuration in its log, committed or not). raft_conf_refresh() recomputes
 * it after appends and truncations.
 */
#include "raft_int.h"

#include <string.h>

raft_index raft_log_last(const struct raft *r)
{
    return r->base_index + r->n_ents;
}

raft_term raft_log_last_term(const struct raft *r)
{
    return r->n_ents ? r->ents[r->n_ents - 1].term : r->base_term;
}

int raft_log_term(const struct raft *r, raft_index index, raft_term *t)
{
    if (index == r->base_index) {
        *t = r->base_term;
        return 1;
    }
    if (index < r->base_index || index > raft_log_last(r)) {
        *t = 0;
        return 0;
    }
    *t = r->ents[index - r->base_index - 1].term;
    return 1;
}

struct raft_entry *raft_log_get(const struct raft *r, raft_index index)
{
    if (index <= r->base_index || index > raft_log_last(r))
        return NULL;
    return &r->ents[index - r->base_index - 1];
}

static int reserve(struct raft *r, size_t extra)
{
    if (r->n_ents + extra <= r->cap_ents)
        return 0;
    size_t cap = r->cap_ents ? r->cap_ents : 64;
    while (cap < r->n_ents + extra)
        cap *= 2;
    struct raft_entry *p = cn_realloc(r->ents, cap * sizeof(*p));
    if (p == NULL)
        return CN_ENOMEM;
    r->ents = p;
    r->cap_ents = cap;
    return 0;
}

/* Appends e (payloads copied, or adopted when take); all or nothing. */
static int append(struct raft *r, const struct raft_entry *e, unsigned n,
                  int take)
{
    if (reserve(r, n) != 0)
        return CN_ENOMEM;
    for (unsigned i = 0; i < n; i++) {
        struct raft_entry *d = &r->ents[r->n_ents + i];
        *d = e[i];
        d->index = raft_log_last(r) + 1 + i;
        if (take)
            continue;
        d->data = cn_malloc(e[i].data_len);
        if (d->data == NULL) {
            for (unsigned j = 0; j < i; j++)
                cn_free(r->ents[r->n_ents + j].data);
            return CN_ENOMEM;
        }
        if (e[i].data_len)
            memcpy(d->data, e[i].data, e[i].data_len);
    }
    r->n_ents += n;
    for (unsigned i = 0; i < n; i++)
        if (e[i].type == RAFT_ENTRY_CONFIG) {
            raft_conf_refresh(r);
            break;
        }
    return 0;
}

int raft_log_append(struct raft *r, const struct raft_entry *e, unsigned n)
{
    return append(r, e, n, 0);
}

int raft_log_append_take(struct raft *r, const struct raft_entry *e, unsigned n)
{
    return append(r, e, n, 1);
}

int raft_log_append_new(struct raft *r, uint8_t type, const void *data,
                        size_t len, raft_term term)
{
    struct raft_entry e = {
        .term = term, .type = type, .data = (void *)data, .data_len = len};
    return raft_log_append(r, &e, 1);
}

/* Drops entries with index >= from (from > base_index). */
void raft_log_truncate(struct raft *r, raft_index from)
{
    CN_ASSERT(from > r->base_index);
    if (from > raft_log_last(r))
        return;
    size_t keep = from - r->base_index - 1;
    for (size_t i = keep; i < r->n_ents; i++)
        cn_free(r->ents[i].data);
    r->n_ents = keep;
    if (r->persisted >= from)
        r->persisted = from - 1;
    /* Entries the driver already has must go from its log too. */
    if (from < r->unstable_from) {
        if (r->truncate_from == 0 || r->truncate_from > from)
            r->truncate_from = from;
        r->unstable_from = from;
    }
    if (r->conf_index >= from)
        raft_conf_refresh(r);
}

/* Drops entries with index <= upto (upto <= last). */
void raft_log_compact(struct raft *r, raft_index upto)
{
    if (upto <= r->base_index)
        return;
    CN_ASSERT(upto <= raft_log_last(r));
    size_t drop = upto - r->base_index;
    raft_term t = r->ents[drop - 1].term;
    /* The payloads go to the driver (raft_update.garbage) to be freed off
     * its loop: a compaction drops --snapshot-count entries at once, and
     * freeing them here held the loop for up to half a second. */
    size_t need = r->n_garbage + drop;
    if (need > r->cap_garbage) {
        void **g = cn_realloc(r->garbage, need * sizeof(*g));
        if (g != NULL) {
            r->garbage = g;
            r->cap_garbage = need;
        }
    }
    for (size_t i = 0; i < drop; i++) {
        if (r->n_garbage < r->cap_garbage)
            r->garbage[r->n_garbage++] = r->ents[i].data;
        else
            cn_free(r->ents[i].data);
    }
    memmove(r->ents, r->ents + drop, (r->n_ents - drop) * sizeof(*r->ents));
    r->n_ents -= drop;
    r->base_index = upto;
    r->base_term = t;
}

/* Empties the log; index/term become the base (snapshot install). */
void raft_log_reset(struct raft *r, raft_index index, raft_term term)
{
    for (size_t i = 0; i < r->n_ents; i++)
        cn_free(r->ents[i].data);
    r->n_ents = 0;
    r->base_index = index;
    r->base_term = term;
}

void raft_log_free(struct raft *r)
{
    raft_log_reset(r, 0, 0);
    cn_free(r->ents);
    r->ents = NULL;
    r->cap_ents = 0;
}

/* Raft paper 5.4.1: a candidate's log is at least as up to date. */
int raft_log_up_to_date(const struct raft *r, raft_index last, raft_term term)
{
    raft_term my = raft_log_last_term(r);
    return term > my || (term == my && last >= raft_log_last(r));
}

/*
 * The largest index <= index whose term is <= term (etcd-io/raft's
 * findConflictByTerm): entries above it certainly conflict with a log whose
 * entry at index has that term. Unknown (compacted) terms count as a match.
 */
raft_index raft_log_find_conflict(const struct raft *r, raft_index index,
                                  raft_term term, raft_term *found_term)
{
    if (index > raft_log_last(r))
        index = raft_log_last(r);
    for (; index > 0; index--) {
        raft_term t;
        if (!raft_log_term(r, index, &t)) {
            *found_term = 0;
            return index;
        }
        if (t <= term) {
            *found_term = t;
            return index;
        }
    }
    *found_term = 0;
    return 0;
}

/* The configuration in force at index (last CONFIG entry <= index). */
int raft_conf_at(const struct raft *r, raft_index index, struct raft_conf *c,
                 raft_index *conf_index)
{
    if (index > raft_log_last(r))
        index = raft_log_last(r);
    for (raft_index i = index; i > r->base_index; i--) {
        const struct raft_entry *e = raft_log_get(r, i);
        if (e->type != RAFT_ENTRY_CONFIG)
            continue;
        if (raft_conf_decode(e->data, e->data_len, c) != 0)
            continue; /* validated when proposed; skip like every node */
        *conf_index = i;
        return 0;
    }
    /* Falls back to the snapshot's configuration. With trailing entries
     * kept, a config entry at or below base_index is the snapshot's. */
    *c = r->snap.conf;
    *conf_index = r->snap.conf_index;
    return 0;
}

void raft_conf_refresh(struct raft *r)
{
    struct raft_conf c;
    raft_index ci = 0;
    raft_conf_at(r, raft_log_last(r), &c, &ci);
    int changed = ci != r->conf_index || !raft_conf_eq(&c, &r->conf);
    r->conf = c;
    r->conf_index = ci;
    if (changed && r->role == RAFT_LEADER)
        raft_prs_rebuild(r);
}
