/*
 * wal: appending, batches (group commit), segment creation, open/close and
 * purge. Recovery is in wal_read.c, snapshots in wal_snap.c.
 *
 * States of a struct wal:
 *
 *   wal_open --> OPEN -- wal_batch_begin --> IN_FLIGHT
 *                 ^                              |
 *                 +---- wal_batch_end (ok) ------+
 *                                                |
 *                 STOPPED <-- wal_batch_end (error)
 *
 *   Appends are allowed in OPEN and IN_FLIGHT (they join the next batch).
 *   STOPPED is sticky: everything but wal_close and wal_errmsg fails with
 *   CN_ESTOPPED. wal_sync is begin + run + end.
 *
 * Invariants:
 * - the names in segs[] are durable, each segment's header is durable, and
 *   every segment but the last (the tail) is durable in full;
 * - pending parts continue the newest segment (the tail, or one the
 *   in-flight batch creates) or create the ones after it, in order;
 * - a record's synced field never exceeds what was durable in its segment
 *   before the batch holding it started (wal_read relies on it to tell a
 *   torn tail from damage).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wal_int.h"

/* --- lock ------------------------------------------------------------- */

/* Creates directory path if missing, durably (its parent is synced). */
static int ensure_dir(const struct cn_fs *fs, const char *path, char *errmsg)
{
    int is_dir = 0;
    int rc = CN_FS_CALL(fs, stat, path, &is_dir, errmsg);
    if (rc == CN_OK && !is_dir) {
        wal_errf(errmsg, "%s exists and is not a directory", path);
        return CN_EEXIST;
    }
    if (rc != CN_ENOTFOUND)
        return rc;
    rc = CN_FS_CALL(fs, mkdir, path, errmsg);
    if (rc != CN_OK)
        return rc;
    char parent[WAL_PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    return CN_FS_CALL(fs, sync_dir, parent, errmsg);
}

int wal_lock(const struct cn_fs *fs, const char *data_dir,
             struct cn_fs_file **lock, char *errmsg)
{
    char path[WAL_PATH_MAX];
    int rc = ensure_dir(fs, data_dir, errmsg);
    if (rc != CN_OK)
        return rc;
    snprintf(path, sizeof(path), "%s/LOCK", data_dir);
    rc = CN_FS_CALL(fs, lock, path, lock, errmsg);
    if (rc == CN_ELOCKED)
        wal_errf(errmsg,
                 "data dir %s is in use by another cairn process (lock %s)",
                 data_dir, path);
    return rc;
}

void wal_unlock(const struct cn_fs *fs, struct cn_fs_file *lock)
{
    if (lock != NULL)
        CN_FS_CALL(fs, close, lock, NULL);
}

/* --- segments --------------------------------------------------------- */

void wal_part_free(struct wal_part *p)
{
    cn_buf_close(&p->data);
}

int wal_seg_create(const struct cn_fs *fs, const char *dir,
                   uint64_t segment_bytes, struct wal_part *part,
                   struct cn_fs_file **out, char *errmsg)
{
    char name[64], path[WAL_PATH_MAX], tmp[WAL_PATH_MAX + 8];
    struct cn_fs_file *f;
    wal_segment_name(part->seg_seq, part->first_index, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int rc = CN_FS_CALL(fs, open, tmp, CN_FS_RDWR | CN_FS_CREATE | CN_FS_TRUNC,
                        &f, errmsg);
    if (rc != CN_OK)
        return rc;
    wal_rec_seal_all((uint8_t *)part->data.data, part->data.len, 0, part->salt,
                     0);
    uint64_t size = segment_bytes;
    if (part->data.len > size)
        size = part->data.len;
    /* The whole first write is durable before the name exists, so a
     * segment that has a name has a valid header. */
    rc = CN_FS_CALL(fs, allocate, f, 0, size, errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, pwrite, f, part->data.data, part->data.len, 0,
                        errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, sync, f, 0, errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, rename, tmp, path, errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, sync_dir, dir, errmsg);
    if (rc != CN_OK) {
        CN_FS_CALL(fs, close, f, NULL);
        return rc;
    }
    *out = f;
    return CN_OK;
}

static int ensure_pending_cap(struct wal *w)
{
    if (w->pending_count < w->pending_cap)
        return CN_OK;
    size_t cap = w->pending_cap ? w->pending_cap * 2 : 4;
    struct wal_part *p = cn_realloc(w->pending, cap * sizeof(*p));
    if (p == NULL)
        return CN_ENOMEM;
    w->pending = p;
    w->pending_cap = cap;
    return CN_OK;
}

static int encode_hard_state(struct cn_buf *buf,
                             const struct wal_hard_state *hs)
{
    uint8_t body[24];
    wal_put64(body, hs->term);
    wal_put64(body + 8, hs->vote);
    wal_put64(body + 16, hs->commit);
    return wal_rec_encode(buf, WAL_REC_HARD_STATE, body, sizeof(body), NULL, 0);
}

static int encode_marker(struct cn_buf *buf, uint64_t index, uint64_t term)
{
    uint8_t body[16];
    wal_put64(body, index);
    wal_put64(body + 8, term);
    return wal_rec_encode(buf, WAL_REC_SNAPSHOT, body, sizeof(body), NULL, 0);
}

/* Pushes a part creating segment seq, starting with the preamble: header,
 * then the current hard state and snapshot marker, so that a segment
 * carries them even after older segments are purged. */
int wal_start_segment(struct wal *w, uint64_t seq)
{
    int rc = ensure_pending_cap(w);
    if (rc != CN_OK)
        return rc;
    struct wal_part part;
    memset(&part, 0, sizeof(part));
    part.seg_seq = seq;
    part.first_index = w->last_index + 1;
    part.create = 1;
    part.start_off = 0;
    struct cn_prng saved = w->prng;
    part.salt = cn_prng_next(&w->prng);
    struct wal_seg_header h = {WAL_FORMAT_VERSION, seq,
                               part.first_index,   part.salt,
                               w->cluster_id,      w->member_id};
    uint8_t body[WAL_SEG_HEADER_BODY];
    wal_seg_header_encode(&h, body);
    rc = wal_rec_encode(&part.data, WAL_REC_SEGMENT, body, sizeof(body), NULL,
                        0);
    if (rc == CN_OK && w->hs_set)
        rc = encode_hard_state(&part.data, &w->hs);
    if (rc == CN_OK && w->mark_index > 0)
        rc = encode_marker(&part.data, w->mark_index, w->mark_term);
    if (rc != CN_OK) {
        wal_part_free(&part);
        w->prng = saved;
        return rc;
    }
    w->pending[w->pending_count++] = part;
    w->end_seq = seq;
    w->end_off = part.data.len;
    w->end_salt = part.salt;
    return CN_OK;
}

/* --- appending -------------------------------------------------------- */

/* Appends one record at the end of the log, cutting a new segment first
 * when the current one is full. On error w is as it was. */
static int append_record(struct wal *w, uint8_t type, const void *head,
                         size_t head_len, const void *tail, size_t tail_len)
{
    if (w->failed)
        return CN_ESTOPPED;
    if (head_len + tail_len > CN_WAL_RECORD_BYTES_MAX)
        return CN_ETOOBIG;
    size_t saved_count = w->pending_count;
    uint64_t saved_seq = w->end_seq, saved_off = w->end_off;
    uint64_t saved_salt = w->end_salt;
    struct cn_prng saved_prng = w->prng;
    int rc = CN_OK;
    if (w->end_off >= w->segment_bytes) {
        rc = wal_start_segment(w, w->end_seq + 1);
    } else if (w->pending_count == 0) {
        rc = ensure_pending_cap(w);
        if (rc == CN_OK) {
            struct wal_part *p = &w->pending[w->pending_count++];
            memset(p, 0, sizeof(*p));
            p->seg_seq = w->end_seq;
            p->salt = w->end_salt;
            p->start_off = w->end_off;
        }
    }
    if (rc == CN_OK) {
        struct wal_part *p = &w->pending[w->pending_count - 1];
        CN_ASSERT(p->seg_seq == w->end_seq);
        size_t before = p->data.len;
        rc = wal_rec_encode(&p->data, type, head, head_len, tail, tail_len);
        if (rc == CN_OK)
            w->end_off += p->data.len - before;
    }
    if (rc != CN_OK) {
        while (w->pending_count > saved_count)
            wal_part_free(&w->pending[--w->pending_count]);
        w->end_seq = saved_seq;
        w->end_off = saved_off;
        w->end_salt = saved_salt;
        w->prng = saved_prng;
        return rc;
    }
    w->rec_seq++;
    return CN_OK;
}

int wal_append_entry(struct wal *w, uint64_t index, uint64_t term,
                     struct cn_slice payload)
{
    if (w->failed)
        return CN_ESTOPPED;
    if (index == 0 || index <= w->mark_index || index > w->last_index + 1)
        return CN_EINVAL;
    uint8_t head[16];
    wal_put64(head, index);
    wal_put64(head + 8, term);
    int rc = append_record(w, WAL_REC_ENTRY, head, sizeof(head), payload.base,
                           payload.len);
    if (rc != CN_OK)
        return rc;
    w->last_index = index;
    w->last_term = term;
    return CN_OK;
}

int wal_append_hard_state(struct wal *w, const struct wal_hard_state *hs)
{
    uint8_t body[24];
    wal_put64(body, hs->term);
    wal_put64(body + 8, hs->vote);
    wal_put64(body + 16, hs->commit);
    int rc = append_record(w, WAL_REC_HARD_STATE, body, sizeof(body), NULL, 0);
    if (rc != CN_OK)
        return rc;
    w->hs = *hs;
    w->hs_set = 1;
    return CN_OK;
}

int wal_append_snapshot(struct wal *w, uint64_t index, uint64_t term)
{
    if (w->failed)
        return CN_ESTOPPED;
    if (index == 0 || index < w->mark_index)
        return CN_EINVAL;
    uint8_t body[16];
    wal_put64(body, index);
    wal_put64(body + 8, term);
    int rc = append_record(w, WAL_REC_SNAPSHOT, body, sizeof(body), NULL, 0);
    if (rc != CN_OK)
        return rc;
    w->mark_index = index;
    w->mark_term = term;
    if (index > w->last_index) {
        w->last_index = index;
        w->last_term = term;
    }
    return CN_OK;
}

void wal_appended(const struct wal *w, struct wal_pos *pos)
{
    pos->seq = w->rec_seq;
    pos->last_index = w->last_index;
    pos->last_term = w->last_term;
}

void wal_durable(const struct wal *w, struct wal_pos *pos)
{
    *pos = w->durable;
}

uint64_t wal_pending_bytes(const struct wal *w)
{
    uint64_t n = 0;
    for (size_t i = 0; i < w->pending_count; i++)
        n += w->pending[i].data.len;
    return n;
}

const char *wal_errmsg(const struct wal *w)
{
    return w->errmsg;
}

/* --- batches ---------------------------------------------------------- */

static int reserve_segs(struct wal *w, size_t extra)
{
    if (w->seg_count + extra <= w->seg_cap)
        return CN_OK;
    size_t cap = w->seg_cap ? w->seg_cap : 8;
    while (cap < w->seg_count + extra)
        cap *= 2;
    struct wal_seg *s = cn_realloc(w->segs, cap * sizeof(*s));
    if (s == NULL)
        return CN_ENOMEM;
    w->segs = s;
    w->seg_cap = cap;
    return CN_OK;
}

int wal_batch_begin(struct wal *w, struct wal_batch **out)
{
    *out = NULL;
    if (w->failed)
        return CN_ESTOPPED;
    if (w->inflight != NULL)
        return CN_EBUSY;
    if (w->pending_count == 0)
        return CN_OK;
    size_t creates = 0;
    for (size_t i = 0; i < w->pending_count; i++)
        creates += w->pending[i].create ? 1 : 0;
    /* wal_batch_end must not fail for want of memory: reserve now. */
    if (reserve_segs(w, creates) != CN_OK)
        return CN_ENOMEM;
    struct wal_batch *b = cn_calloc(1, sizeof(*b));
    if (b == NULL)
        return CN_ENOMEM;
    b->made = cn_calloc(w->pending_count, sizeof(*b->made));
    if (b->made == NULL) {
        cn_free(b);
        return CN_ENOMEM;
    }
    b->fs = w->fs;
    b->wal_dir = w->wal_dir;
    b->segment_bytes = w->segment_bytes;
    b->parts = w->pending;
    b->part_count = w->pending_count;
    b->tail = w->tail;
    b->tail_seq = w->segs[w->seg_count - 1].seq;
    b->tail_synced = w->tail_synced;
    wal_appended(w, &b->pos);
    w->pending = NULL;
    w->pending_count = 0;
    w->pending_cap = 0;
    w->inflight = b;
    *out = b;
    return CN_OK;
}

static int run_part(struct wal_batch *b, size_t i)
{
    struct wal_part *p = &b->parts[i];
    if (p->create)
        return wal_seg_create(b->fs, b->wal_dir, b->segment_bytes, p,
                              &b->made[i], b->errmsg);
    /* Only the first part can continue an existing segment: the tail. */
    CN_ASSERT(i == 0 && b->tail != NULL && p->seg_seq == b->tail_seq);
    CN_ASSERT(p->start_off >= b->tail_synced);
    wal_rec_seal_all((uint8_t *)p->data.data, p->data.len, p->start_off,
                     p->salt, b->tail_synced);
    int rc = CN_FS_CALL(b->fs, pwrite, b->tail, p->data.data, p->data.len,
                        p->start_off, b->errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(b->fs, sync, b->tail, 1, b->errmsg);
    return rc;
}

int wal_batch_run(struct wal_batch *b)
{
    CN_ASSERT(!b->ran);
    int rc = CN_OK;
    for (size_t i = 0; i < b->part_count && rc == CN_OK; i++) {
        rc = run_part(b, i);
        if (rc != CN_OK) {
            char inner[CN_ERRMSG_SIZE];
            char name[64];
            memcpy(inner, b->errmsg, sizeof(inner));
            wal_segment_name(b->parts[i].seg_seq, b->parts[i].first_index, name,
                             sizeof(name));
            wal_errf(b->errmsg, "segment %s: %s", name, inner);
        }
    }
    b->ran = 1;
    b->rc = rc;
    return rc;
}

static void batch_free(struct wal_batch *b)
{
    for (size_t i = 0; i < b->part_count; i++)
        wal_part_free(&b->parts[i]);
    cn_free(b->parts);
    cn_free(b->made);
    cn_free(b);
}

int wal_batch_end(struct wal *w, struct wal_batch *b, struct wal_pos *pos)
{
    CN_ASSERT(b == w->inflight && b->ran);
    w->inflight = NULL;
    int rc = b->rc;
    if (rc != CN_OK) {
        for (size_t i = 0; i < b->part_count; i++)
            if (b->made[i] != NULL)
                CN_FS_CALL(w->fs, close, b->made[i], NULL);
        w->failed = rc;
        wal_errf(w->errmsg, "wal stopped after a failed write (%s): %s",
                 cn_errname(rc), b->errmsg);
        batch_free(b);
        return rc;
    }
    for (size_t i = 0; i < b->part_count; i++) {
        struct wal_part *p = &b->parts[i];
        if (p->create) {
            CN_ASSERT(w->seg_count < w->seg_cap);
            w->segs[w->seg_count].seq = p->seg_seq;
            w->segs[w->seg_count].first_index = p->first_index;
            w->seg_count++;
            if (w->tail != NULL)
                CN_FS_CALL(w->fs, close, w->tail, NULL);
            w->tail = b->made[i];
        }
        w->tail_synced = p->start_off + p->data.len;
    }
    w->durable = b->pos;
    if (pos != NULL)
        *pos = w->durable;
    batch_free(b);
    return CN_OK;
}

int wal_sync(struct wal *w, struct wal_pos *pos)
{
    struct wal_batch *b;
    int rc = wal_batch_begin(w, &b);
    if (rc != CN_OK)
        return rc;
    if (b != NULL) {
        wal_batch_run(b);
        rc = wal_batch_end(w, b, pos);
    } else if (pos != NULL) {
        *pos = w->durable;
    }
    return rc;
}

/* --- open and close --------------------------------------------------- */

static int set_paths(struct wal *w, const struct wal_config *cfg, char *errmsg)
{
    size_t n = strlen(cfg->data_dir);
    if (n == 0 || n + 32 >= WAL_PATH_MAX) {
        wal_errf(errmsg, "data dir path \"%.100s\" is empty or too long",
                 cfg->data_dir);
        return CN_EINVAL;
    }
    snprintf(w->data_dir, sizeof(w->data_dir), "%s", cfg->data_dir);
    snprintf(w->member_dir, sizeof(w->member_dir), "%s/member", cfg->data_dir);
    snprintf(w->snap_dir, sizeof(w->snap_dir), "%s/member/snap", cfg->data_dir);
    if (cfg->wal_dir != NULL && cfg->wal_dir[0] != '\0') {
        if (strlen(cfg->wal_dir) + 64 >= WAL_PATH_MAX) {
            wal_errf(errmsg, "wal dir path is too long");
            return CN_EINVAL;
        }
        snprintf(w->wal_dir, sizeof(w->wal_dir), "%s", cfg->wal_dir);
    } else {
        snprintf(w->wal_dir, sizeof(w->wal_dir), "%s/member/wal",
                 cfg->data_dir);
    }
    return CN_OK;
}

/* A new data dir: directories, then segment 0 holding just its header. */
static int create_fresh(struct wal *w, struct wal_recovery *rec, char *errmsg)
{
    int rc = ensure_dir(w->fs, w->data_dir, errmsg);
    if (rc == CN_OK)
        rc = ensure_dir(w->fs, w->member_dir, errmsg);
    if (rc == CN_OK)
        rc = ensure_dir(w->fs, w->snap_dir, errmsg);
    if (rc == CN_OK)
        rc = ensure_dir(w->fs, w->wal_dir, errmsg);
    if (rc == CN_OK)
        rc = reserve_segs(w, 1);
    if (rc == CN_OK)
        rc = wal_start_segment(w, 0);
    if (rc != CN_OK)
        return rc;
    struct wal_part *p = &w->pending[0];
    rc = wal_seg_create(w->fs, w->wal_dir, w->segment_bytes, p, &w->tail,
                        errmsg);
    if (rc != CN_OK)
        return rc;
    w->segs[0].seq = 0;
    w->segs[0].first_index = 1;
    w->seg_count = 1;
    w->tail_synced = p->data.len;
    wal_part_free(p);
    w->pending_count = 0;
    rec->created = 1;
    return CN_OK;
}

static void wal_free(struct wal *w)
{
    if (w->tail != NULL)
        CN_FS_CALL(w->fs, close, w->tail, NULL);
    for (size_t i = 0; i < w->pending_count; i++)
        wal_part_free(&w->pending[i]);
    cn_free(w->pending);
    cn_free(w->segs);
    cn_free(w);
}

int wal_open(const struct wal_config *cfg, struct wal **out,
             struct wal_recovery *rec, char *errmsg)
{
    memset(rec, 0, sizeof(*rec));
    if (errmsg != NULL)
        errmsg[0] = '\0';
    struct wal *w = cn_calloc(1, sizeof(*w));
    if (w == NULL) {
        wal_errf(errmsg, "wal: out of memory");
        return CN_ENOMEM;
    }
    w->fs = cfg->fs;
    w->segment_bytes =
        cfg->segment_bytes ? cfg->segment_bytes : CN_WAL_SEGMENT_BYTES;
    w->max_snapshots = cfg->max_snapshots;
    w->max_wals = cfg->max_wals;
    w->cluster_id = cfg->cluster_id;
    w->member_id = cfg->member_id;
    cn_prng_seed(&w->prng, cfg->seed);
    int rc = set_paths(w, cfg, errmsg);
    if (rc != CN_OK)
        goto err_after_alloc;
    rc = wal_read(w, rec, errmsg);
    if (rc == CN_ENOTFOUND)
        rc = create_fresh(w, rec, errmsg);
    if (rc != CN_OK)
        goto err_after_read;
    w->durable.last_index = w->last_index;
    w->durable.last_term = w->last_term;
    *out = w;
    return CN_OK;

err_after_read:
    wal_recovery_close(rec);
err_after_alloc:
    if (rc == CN_ENOMEM && errmsg != NULL && errmsg[0] == '\0')
        wal_errf(errmsg, "wal: out of memory");
    wal_free(w);
    return rc;
}

void wal_close(struct wal *w)
{
    if (w == NULL)
        return;
    CN_ASSERT(w->inflight == NULL);
    wal_free(w);
}

void wal_bytes_close(struct wal_bytes *b)
{
    if (b->release != NULL)
        b->release(b->data, b->len);
    else
        cn_free(b->data);
    memset(b, 0, sizeof(*b));
}

void wal_recovery_close(struct wal_recovery *rec)
{
    for (size_t i = 0; i < rec->entry_count; i++)
        cn_free(rec->entries[i].data);
    cn_free(rec->entries);
    wal_bytes_close(&rec->snap_data);
    memset(rec, 0, sizeof(*rec));
}

const char *wal_dir_path(const struct wal *w)
{
    return w->wal_dir;
}

const char *wal_snap_dir_path(const struct wal *w)
{
    return w->snap_dir;
}

/* --- purge ------------------------------------------------------------ */

static int remove_file(struct wal *w, const char *dir, const char *name,
                       char *errmsg)
{
    char path[WAL_PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int rc = CN_FS_CALL(w->fs, unlink, path, errmsg);
    return rc == CN_ENOTFOUND ? CN_OK : rc;
}

int wal_purge(struct wal *w, struct wal_purge_result *res, char *errmsg)
{
    struct wal_purge_result r = {0, 0};
    uint64_t *snaps;
    size_t count;
    char name[64];
    int rc = wal_snap_list(w, &snaps, &count, errmsg);
    if (rc != CN_OK)
        return rc;
    size_t first_kept = 0;
    if (w->max_snapshots > 0 && count > w->max_snapshots)
        first_kept = count - w->max_snapshots;
    for (size_t i = 0; i < first_kept && rc == CN_OK; i++) {
        wal_snap_name(snaps[2 * i], snaps[2 * i + 1], name, sizeof(name));
        rc = remove_file(w, w->snap_dir, name, errmsg);
        if (rc == CN_OK)
            r.snaps_removed++;
    }
    uint64_t oldest = count > first_kept ? snaps[2 * first_kept + 1] : 0;
    cn_free(snaps);
    if (rc == CN_OK && r.snaps_removed > 0)
        rc = CN_FS_CALL(w->fs, sync_dir, w->snap_dir, errmsg);
    /* Segment k lies wholly before the oldest kept snapshot when the
     * segment after it starts at or before oldest + 1. */
    size_t drop = 0;
    while (rc == CN_OK && oldest > 0 && w->max_wals > 0 &&
           w->seg_count - drop > w->max_wals && drop + 1 < w->seg_count &&
           w->segs[drop + 1].first_index <= oldest + 1) {
        wal_segment_name(w->segs[drop].seq, w->segs[drop].first_index, name,
                         sizeof(name));
        /* One at a time, each made durable before the next: the segments
         * left are always a gap-free sequence, whatever a crash keeps. */
        rc = remove_file(w, w->wal_dir, name, errmsg);
        if (rc == CN_OK)
            rc = CN_FS_CALL(w->fs, sync_dir, w->wal_dir, errmsg);
        if (rc == CN_OK)
            drop++;
    }
    if (drop > 0) {
        memmove(w->segs, w->segs + drop,
                (w->seg_count - drop) * sizeof(*w->segs));
        w->seg_count -= drop;
        r.segments_removed = (unsigned)drop;
    }
    if (res != NULL)
        *res = r;
    return rc;
}
