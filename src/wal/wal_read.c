/*
 * wal_read: recovery. Reads every segment in order, replays its records
 * into the logical log (a later entry at index i replaces i and everything
 * after it), picks the snapshot, cuts off a torn tail and leaves the wal
 * ready to append after the last valid record.
 *
 * How damage is told apart from a crash (docs/wal-format.md, "Recovery"):
 * the first record that does not check at offset X of a segment is
 *   - the clean end, if every byte from X to the end of the file is zero;
 *   - damage (CN_ECORRUPT) if the segment is not the last one (a segment
 *     is durable in full before the next one gets its name), or if some
 *     valid record later in the segment says in its synced field that X
 *     was already durable when it was written;
 *   - otherwise a torn unsynced tail: the bytes from X on are dropped and
 *     zeroed, and rec->torn_bytes says how many held anything.
 * Every record's CRC covers its segment's salt and its offset, so bytes
 * from elsewhere cannot pass for a record here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_int.h"

#define HINT                                                                   \
    " (damage a crash cannot cause: restore this member from a backup, or "    \
    "remove its data dir and re-add it to the cluster)"

struct replay {
    struct wal_entry *ents; /* ents[k].index == base + k */
    size_t count;
    size_t cap;
    uint64_t base;
    uint64_t last_index;
    uint64_t last_term;
    uint64_t mark_index;
    uint64_t mark_term;
    uint64_t *markers; /* (index, term) pairs */
    size_t marker_count;
    size_t marker_cap;
    int hs_set;
    struct wal_hard_state hs;
    int started;
    uint64_t skip_below; /* payloads of entries at or below are not kept */
};

struct seg_file {
    char name[64];
    uint64_t seq;
    uint64_t first_index;
};

static void replay_free(struct replay *rp)
{
    for (size_t i = 0; i < rp->count; i++)
        cn_free(rp->ents[i].data);
    cn_free(rp->ents);
    cn_free(rp->markers);
}

static void replay_cut(struct replay *rp, size_t keep)
{
    while (rp->count > keep)
        cn_free(rp->ents[--rp->count].data);
}

static int corrupt(char *errmsg, const char *path, uint64_t off,
                   const char *what)
{
    wal_errf(errmsg, "wal %s byte %llu: %s%s", path, (unsigned long long)off,
             what, HINT);
    return CN_ECORRUPT;
}

static int apply_entry(struct replay *rp, const struct wal_rec *r)
{
    uint64_t index = wal_get64(r->body);
    uint64_t term = wal_get64(r->body + 8);
    if (index == 0 || index <= rp->mark_index || index > rp->last_index + 1 ||
        index < rp->base)
        return CN_ECORRUPT;
    replay_cut(rp, (size_t)(index - rp->base));
    if (rp->count == rp->cap) {
        size_t cap = rp->cap ? rp->cap * 2 : 64;
        struct wal_entry *e = cn_realloc(rp->ents, cap * sizeof(*e));
        if (e == NULL)
            return CN_ENOMEM;
        rp->ents = e;
        rp->cap = cap;
    }
    size_t len = r->len - 16;
    char *data = NULL;
    if (index <= rp->skip_below) {
        len = 0; /* the newest snapshot covers it (see read_log) */
    } else {
        data = cn_malloc(len + 1);
        if (data == NULL)
            return CN_ENOMEM;
        memcpy(data, r->body + 16, len);
        data[len] = '\0';
    }
    struct wal_entry *e = &rp->ents[rp->count++];
    e->index = index;
    e->term = term;
    e->data = data;
    e->len = len;
    rp->last_index = index;
    rp->last_term = term;
    return CN_OK;
}

static int apply_marker(struct replay *rp, const struct wal_rec *r)
{
    uint64_t index = wal_get64(r->body);
    uint64_t term = wal_get64(r->body + 8);
    if (index == 0 || index < rp->mark_index)
        return CN_ECORRUPT;
    if (rp->marker_count == rp->marker_cap) {
        size_t cap = rp->marker_cap ? rp->marker_cap * 2 : 8;
        uint64_t *m = cn_realloc(rp->markers, cap * 2 * sizeof(*m));
        if (m == NULL)
            return CN_ENOMEM;
        rp->markers = m;
        rp->marker_cap = cap;
    }
    rp->markers[2 * rp->marker_count] = index;
    rp->markers[2 * rp->marker_count + 1] = term;
    rp->marker_count++;
    rp->mark_index = index;
    rp->mark_term = term;
    if (index > rp->last_index) {
        /* A snapshot from the leader: the log restarts after it. */
        replay_cut(rp, 0);
        rp->base = index + 1;
        rp->last_index = index;
        rp->last_term = term;
    }
    return CN_OK;
}

static int apply_record(struct replay *rp, const struct wal_rec *r,
                        const char *path, uint64_t off, char *errmsg)
{
    int rc = CN_OK;
    switch (r->type) {
    case WAL_REC_ENTRY:
        rc = apply_entry(rp, r);
        if (rc == CN_ECORRUPT)
            return corrupt(errmsg, path, off,
                           "entry index out of sequence (gap or below the "
                           "snapshot)");
        break;
    case WAL_REC_HARD_STATE:
        rp->hs.term = wal_get64(r->body);
        rp->hs.vote = wal_get64(r->body + 8);
        rp->hs.commit = wal_get64(r->body + 16);
        rp->hs_set = 1;
        break;
    case WAL_REC_SNAPSHOT:
        rc = apply_marker(rp, r);
        if (rc == CN_ECORRUPT)
            return corrupt(errmsg, path, off, "snapshot marker goes back");
        break;
    default:
        return corrupt(errmsg, path, off, "segment header inside a segment");
    }
    return rc;
}

/* Recovery reads a segment through a window of wal_read_chunk bytes that
 * moves forward, so it never holds a whole 64 MiB segment in memory (the
 * page faults of that buffer were most of the start-up time). Every byte
 * of the segment is still read and checked. */
static size_t wal_read_chunk = WAL_READ_CHUNK;

void wal_read_set_chunk(size_t bytes)
{
    wal_read_chunk = bytes ? bytes : WAL_READ_CHUNK;
}

struct seg_reader {
    const struct cn_fs *fs;
    struct cn_fs_file *f;
    uint64_t size; /* file bytes */
    uint8_t *buf;  /* window: file bytes [start, start + len) */
    size_t cap;
    uint64_t start;
    size_t len;
};

/* Makes min(n, size - off) bytes from off readable at *p; *avail is how
 * many bytes from off the window holds (then either ≥ n, or all of the
 * rest of the file). */
static int rd_need(struct seg_reader *sr, uint64_t off, uint64_t n,
                   const uint8_t **p, uint64_t *avail, char *errmsg)
{
    if (off >= sr->size) {
        *p = NULL;
        *avail = 0;
        return CN_OK;
    }
    uint64_t want = n < sr->size - off ? n : sr->size - off;
    if (off < sr->start || off + want > sr->start + sr->len) {
        uint64_t get = want + wal_read_chunk;
        if (get > sr->size - off)
            get = sr->size - off;
        if (get > sr->cap) {
            uint8_t *b = cn_malloc((size_t)get);
            if (b == NULL)
                return CN_ENOMEM;
            cn_free(sr->buf);
            sr->buf = b;
            sr->cap = (size_t)get;
        }
        size_t got = 0;
        sr->start = off;
        sr->len = 0;
        int rc = CN_FS_CALL(sr->fs, pread, sr->f, sr->buf, (size_t)get, off,
                            &got, errmsg);
        if (rc != CN_OK)
            return rc;
        sr->len = got;
        if (got < get)
            sr->size = off + got; /* the file is shorter than it said */
    }
    *p = sr->buf + (off - sr->start);
    *avail = sr->start + sr->len - off;
    return CN_OK;
}

/* *ok = 1 and *r if a valid record with salt starts at off. */
static int rd_rec(struct seg_reader *sr, uint64_t off, uint64_t salt,
                  struct wal_rec *r, int *ok, char *errmsg)
{
    const uint8_t *p;
    uint64_t avail;
    *ok = 0;
    int rc = rd_need(sr, off, WAL_REC_HEADER_BYTES, &p, &avail, errmsg);
    if (rc != CN_OK || avail < WAL_REC_HEADER_BYTES)
        return rc;
    /* Read the body only for a header that could be valid, so a stray
     * length in garbage does not pull megabytes in. */
    uint32_t len = wal_get32(p + 4);
    if (p[8] < WAL_REC_SEGMENT || p[8] > WAL_REC_SNAPSHOT ||
        len > CN_WAL_RECORD_BYTES_MAX ||
        off + WAL_REC_HEADER_BYTES + len > sr->size)
        return CN_OK;
    rc = rd_need(sr, off, WAL_REC_HEADER_BYTES + (uint64_t)len, &p, &avail,
                 errmsg);
    if (rc == CN_OK)
        *ok = wal_rec_check_at(p, avail, off, salt, r);
    return rc;
}

/* *end = the offset after the last nonzero byte in [from, size), or from
 * if every byte there is zero. */
static int rd_data_end(struct seg_reader *sr, uint64_t from, uint64_t *end,
                       char *errmsg)
{
    *end = from;
    uint64_t off = from;
    while (off < sr->size) {
        const uint8_t *p;
        uint64_t avail;
        int rc = rd_need(sr, off, wal_read_chunk, &p, &avail, errmsg);
        if (rc != CN_OK)
            return rc;
        if (avail == 0)
            break;
        uint64_t i = 0;
        uint64_t last = 0; /* 1 + index of the last nonzero byte seen */
        for (; i + 8 <= avail; i += 8) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            if (v != 0)
                last = i + 8;
        }
        for (; i < avail; i++)
            if (p[i] != 0)
                last = i + 1;
        while (last > 0 && p[last - 1] == 0)
            last--;
        if (last > 0)
            *end = off + last;
        off += avail;
    }
    return CN_OK;
}

/* Decides what the bad record at x means (see the file comment), once
 * some byte after x is known to be nonzero. Returns 0 (a torn tail) or
 * CN_ECORRUPT. */
static int judge_damage(struct seg_reader *sr, uint64_t x, uint64_t salt,
                        int is_last, const char *path, char *errmsg)
{
    if (!is_last)
        return corrupt(errmsg, path, x,
                       "bad record in a segment that is not the last");
    for (uint64_t p = x + WAL_REC_ALIGN; p + WAL_REC_HEADER_BYTES <= sr->size;
         p += WAL_REC_ALIGN) {
        struct wal_rec r;
        int ok;
        int rc = rd_rec(sr, p, salt, &r, &ok, errmsg);
        if (rc != CN_OK)
            return rc;
        if (!ok)
            continue;
        if (r.synced > x) {
            char what[80];
            snprintf(what, sizeof(what),
                     "bad record; the valid record at byte %llu follows it",
                     (unsigned long long)p);
            return corrupt(errmsg, path, x, what);
        }
        p += r.frame - WAL_REC_ALIGN;
    }
    return CN_OK;
}

/* Replays one segment. *end is the offset after its last valid record. */
static int replay_segment(struct wal *w, const struct seg_file *sf, int is_last,
                          struct cn_fs_file *f, struct replay *rp,
                          struct wal_recovery *rec, uint64_t *end,
                          uint64_t *salt_out, char *errmsg)
{
    char path[WAL_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", w->wal_dir, sf->name);
    struct seg_reader sr;
    memset(&sr, 0, sizeof(sr));
    sr.fs = w->fs;
    sr.f = f;
    int rc = CN_FS_CALL(w->fs, size, f, &sr.size, errmsg);
    if (rc != CN_OK)
        return rc;
    struct wal_rec r;
    struct wal_seg_header h;
    int ok;
    rc = rd_rec(&sr, 0, 0, &r, &ok, errmsg);
    if (rc != CN_OK)
        goto out;
    if (!ok || r.type != WAL_REC_SEGMENT) {
        rc = corrupt(errmsg, path, 0, "bad segment header");
        goto out;
    }
    rc = wal_seg_header_decode(r.body, &h);
    if (rc == CN_EVERSION) {
        wal_errf(errmsg,
                 "wal %s: format version %u is not supported (this "
                 "cairn reads version %u)",
                 path, h.version, WAL_FORMAT_VERSION);
        goto out;
    }
    if (rc != CN_OK || h.seq != sf->seq || h.first_index != sf->first_index) {
        rc = corrupt(errmsg, path, 0, "segment header does not match name");
        goto out;
    }
    if (!rp->started) {
        rp->started = 1;
        rp->base = h.first_index;
        rp->last_index = h.first_index - 1;
        rec->cluster_id = h.cluster_id;
        rec->member_id = h.member_id;
    } else if (h.first_index != rp->last_index + 1) {
        rc = corrupt(errmsg, path, 0,
                     "first index does not follow the previous segment");
        goto out;
    }
    uint64_t off = r.frame;
    for (;;) {
        rc = rd_rec(&sr, off, h.salt, &r, &ok, errmsg);
        if (rc != CN_OK)
            goto out;
        if (!ok)
            break;
        rc = apply_record(rp, &r, path, off, errmsg);
        if (rc != CN_OK)
            goto out;
        off += r.frame;
    }
    uint64_t data_end;
    rc = rd_data_end(&sr, off, &data_end, errmsg);
    if (rc != CN_OK)
        goto out;
    if (data_end > off) {
        rc = judge_damage(&sr, off, h.salt, is_last, path, errmsg);
        if (rc != CN_OK)
            goto out;
        rec->torn_bytes = data_end - off;
        snprintf(rec->notes, sizeof(rec->notes) - 1,
                 "wal %.200s: dropped a torn unsynced tail of %llu bytes "
                 "at byte %llu",
                 path, (unsigned long long)rec->torn_bytes,
                 (unsigned long long)off);
    }
    *end = off;
    *salt_out = h.salt;
    rc = CN_OK;
out:
    cn_free(sr.buf);
    return rc;
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg_file *x = a, *y = b;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Lists the segments, sorted, removing leftover temp files. */
static int list_segments(struct wal *w, struct seg_file **out, size_t *count,
                         char *errmsg)
{
    char **names;
    size_t n;
    int rc = CN_FS_CALL(w->fs, list, w->wal_dir, &names, &n, errmsg);
    if (rc != CN_OK)
        return rc;
    struct seg_file *segs = cn_calloc(n + 1, sizeof(*segs));
    if (segs == NULL) {
        cn_fs_names_free(names, n);
        return CN_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n && rc == CN_OK; i++) {
        if (ends_with(names[i], ".wal.tmp")) {
            char path[WAL_PATH_MAX + 300];
            snprintf(path, sizeof(path), "%s/%.255s", w->wal_dir, names[i]);
            rc = CN_FS_CALL(w->fs, unlink, path, errmsg);
            continue;
        }
        if (wal_parse_name(names[i], ".wal", &segs[k].seq,
                           &segs[k].first_index)) {
            snprintf(segs[k].name, sizeof(segs[k].name), "%s", names[i]);
            k++;
        }
    }
    cn_fs_names_free(names, n);
    if (rc != CN_OK) {
        cn_free(segs);
        return rc;
    }
    qsort(segs, k, sizeof(*segs), cmp_seg);
    for (size_t i = 1; i < k; i++) {
        if (segs[i].seq != segs[i - 1].seq + 1) {
            char what[100];
            snprintf(what, sizeof(what), "segment %llu is missing",
                     (unsigned long long)(segs[i - 1].seq + 1));
            cn_free(segs);
            return corrupt(errmsg, w->wal_dir, 0, what);
        }
    }
    *out = segs;
    *count = k;
    return CN_OK;
}

/* Cuts the torn tail of the last segment: the bytes from end on become
 * zeros again (truncate, then preallocate), durably, before any append. */
static int repair_tail(struct wal *w, uint64_t end, char *errmsg)
{
    uint64_t size = end > w->segment_bytes ? end : w->segment_bytes;
    int rc = CN_FS_CALL(w->fs, truncate, w->tail, end, errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(w->fs, allocate, w->tail, 0, size, errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(w->fs, sync, w->tail, 0, errmsg);
    return rc;
}

/* Keeps the entries after the snapshot; checks nothing is missing. */
static int finish_log(struct wal *w, struct replay *rp,
                      struct wal_recovery *rec, char *errmsg)
{
    uint64_t s = rec->snap_index;
    if (rp->last_index > s && rp->base > s + 1) {
        char what[120];
        snprintf(what, sizeof(what),
                 "log starts at index %llu but the snapshot used ends at "
                 "%llu",
                 (unsigned long long)rp->base, (unsigned long long)s);
        return corrupt(errmsg, w->wal_dir, 0, what);
    }
    if (rp->hs_set && rp->hs.commit > rp->last_index && rp->hs.commit > s) {
        return corrupt(errmsg, w->wal_dir, 0,
                       "hard state commits past the end of the log");
    }
    size_t skip = 0;
    if (s >= rp->base)
        skip = (size_t)(s + 1 - rp->base);
    if (skip > rp->count)
        skip = rp->count;
    for (size_t i = 0; i < skip; i++)
        cn_free(rp->ents[i].data);
    if (skip > 0)
        memmove(rp->ents, rp->ents + skip,
                (rp->count - skip) * sizeof(*rp->ents));
    rp->count -= skip;
    rec->entries = rp->ents;
    rec->entry_count = rp->count;
    rec->hard_state_set = rp->hs_set;
    rec->hard_state = rp->hs;
    rp->ents = NULL;
    rp->count = rp->cap = 0;
    w->last_index = rp->last_index;
    w->last_term = rp->last_term;
    w->mark_index = rp->mark_index;
    w->mark_term = rp->mark_term;
    w->hs_set = rp->hs_set;
    w->hs = rp->hs;
    return CN_OK;
}

static int replay_all(struct wal *w, const struct seg_file *segs, size_t count,
                      size_t from, struct replay *rp, struct wal_recovery *rec,
                      uint64_t *end, char *errmsg)
{
    int rc = CN_OK;
    for (size_t i = 0; i < from; i++) { /* known, not read */
        w->segs[i].seq = segs[i].seq;
        w->segs[i].first_index = segs[i].first_index;
    }
    for (size_t i = from; i < count && rc == CN_OK; i++) {
        int is_last = i + 1 == count;
        char path[WAL_PATH_MAX + 64];
        struct cn_fs_file *f;
        snprintf(path, sizeof(path), "%s/%s", w->wal_dir, segs[i].name);
        rc = CN_FS_CALL(w->fs, open, path, is_last ? CN_FS_RDWR : CN_FS_RDONLY,
                        &f, errmsg);
        if (rc != CN_OK)
            break;
        rc = replay_segment(w, &segs[i], is_last, f, rp, rec, end, &w->end_salt,
                            errmsg);
        if (is_last && rc == CN_OK)
            w->tail = f;
        else
            CN_FS_CALL(w->fs, close, f, NULL);
        w->segs[i].seq = segs[i].seq;
        w->segs[i].first_index = segs[i].first_index;
    }
    return rc;
}

/* Index of the newest snapshot file (0: none, or it cannot be listed;
 * wal_snap_load reports such errors). */
static uint64_t newest_snap_index(const struct wal *w)
{
    char why[CN_ERRMSG_SIZE];
    uint64_t *snaps;
    size_t n;
    uint64_t max = 0;
    if (wal_snap_list(w, &snaps, &n, why) != CN_OK)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (snaps[2 * i + 1] > max)
            max = snaps[2 * i + 1];
    cn_free(snaps);
    return max;
}

/* Reads the segments from segs[from] on into rec and w. Payloads of
 * entries at or below skip are not copied (they are expected under the
 * snapshot). If the snapshot chosen ends below skip, some of them may be
 * needed: then *retry = 1 and nothing is kept, and the caller reads again
 * with skip 0. The same when from > 0 and the newest snapshot, at skip,
 * cannot be used: the older ones need the segments not read. */
static int read_log(struct wal *w, const struct seg_file *segs, size_t count,
                    size_t from, uint64_t skip, struct wal_recovery *rec,
                    int *retry, char *errmsg)
{
    *retry = 0;
    struct replay rp;
    memset(&rp, 0, sizeof(rp));
    rp.skip_below = skip;
    uint64_t end = 0;
    int rc = CN_OK;
    w->segs = cn_calloc(count, sizeof(*w->segs));
    if (w->segs == NULL) {
        rc = CN_ENOMEM;
        goto out;
    }
    w->seg_cap = count;
    rc = replay_all(w, segs, count, from, &rp, rec, &end, errmsg);
    if (rc != CN_OK)
        goto out;
    w->seg_count = count;
    rc = wal_snap_load(w, rp.markers, rp.marker_count, from > 0, rec, errmsg);
    if (rc == CN_OK &&
        ((rec->snap_index < skip && rp.last_index > rec->snap_index) ||
         (from > 0 && rec->snap_index != skip))) {
        *retry = 1;
        goto out;
    }
    if (rc == CN_OK)
        rc = finish_log(w, &rp, rec, errmsg);
    if (rc == CN_OK && rec->torn_bytes > 0)
        rc = repair_tail(w, end, errmsg);
    if (rc != CN_OK)
        goto out;
    w->end_seq = segs[count - 1].seq;
    w->end_off = end;
    w->tail_synced = end;
out:
    if (rc != CN_OK || *retry) {
        if (w->tail != NULL)
            CN_FS_CALL(w->fs, close, w->tail, NULL);
        w->tail = NULL;
        cn_free(w->segs);
        w->segs = NULL;
        w->seg_count = w->seg_cap = 0;
    }
    replay_free(&rp);
    return rc;
}

int wal_read(struct wal *w, struct wal_recovery *rec, char *errmsg)
{
    struct seg_file *segs;
    size_t count;
    int rc = list_segments(w, &segs, &count, errmsg);
    if (rc == CN_ENOTFOUND) {
        segs = NULL;
        count = 0;
    } else if (rc != CN_OK) {
        return rc;
    }
    if (count == 0) {
        /* Creation never finished (or never started): only valid if no
         * snapshot exists either. */
        uint64_t *snaps;
        size_t n = 0;
        cn_free(segs);
        rc = wal_snap_list(w, &snaps, &n, errmsg);
        if (rc == CN_ENOTFOUND)
            return CN_ENOTFOUND;
        if (rc != CN_OK)
            return rc;
        cn_free(snaps);
        if (n > 0)
            return corrupt(errmsg, w->wal_dir, 0,
                           "no segments but snapshots exist");
        return CN_ENOTFOUND;
    }
    /* Segments wholly below the newest snapshot hold nothing it does not:
     * they are not read (each segment starts with the hard state and the
     * last snapshot marker of its time, so these are not lost), as etcd
     * reads its log from the snapshot's segment on. segs[i] is skipped when
     * segs[i + 1] starts at or below that snapshot's index, so the segment
     * holding its marker is read. */
    uint64_t newest = newest_snap_index(w);
    size_t from = 0;
    for (size_t i = 1; i < count; i++)
        if (newest > 0 && segs[i].first_index <= newest)
            from = i;
    int retry;
    rc = read_log(w, segs, count, from, newest, rec, &retry, errmsg);
    if (rc == CN_OK && retry) {
        /* What the first pass found (and removed) is still news. */
        unsigned skipped = rec->snaps_skipped;
        char notes[sizeof(rec->notes)];
        memcpy(notes, rec->notes, sizeof(notes));
        wal_recovery_close(rec);
        rc = read_log(w, segs, count, 0, 0, rec, &retry, errmsg);
        if (rc == CN_OK && skipped > rec->snaps_skipped) {
            rec->snaps_skipped = skipped; /* removed in the first pass */
            memcpy(rec->notes, notes, sizeof(notes));
        }
    }
    cn_free(segs);
    return rc;
}
