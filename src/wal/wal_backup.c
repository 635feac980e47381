/*
 * wal_backup.c: a consistent copy of a member's durable state (the newest
 * usable snapshot and every log entry after it) into a new data dir, as
 * etcdctl v2's `backup` does. A cairn started on the copy is a new
 * single-node cluster: the copy's segments carry no member or cluster id
 * (0), so the new node takes its ids from its own flags.
 *
 * The source is read with the normal recovery (wal_open) through a
 * read-only view of the file system: every check of recovery applies
 * (damage is CN_ECORRUPT, never copied), a torn unsynced tail is left out
 * of the copy, and the source is never changed (the view turns the tail
 * repair and the removal of temp files into no-ops). The copy is written
 * through the normal append path (wal_snap_save, marker, entries, sync), so
 * it is in the current format whatever the layout of the source's
 * segments. The source's lock is held throughout: a running cairn makes
 * the backup fail with CN_ELOCKED instead of copying a moving log.
 */
#include "wal_int.h"

#include <stdio.h>
#include <string.h>

/* Pending bytes after which the copy is synced, bounding its memory. */
#define BACKUP_SYNC_BYTES (8u * 1024 * 1024)

/* ---- a read-only view of a cn_fs ---- */

static int ro_open(void *ctx, const char *path, int flags,
                   struct cn_fs_file **out, char *errmsg)
{
    const struct cn_fs *fs = ctx;
    if (flags & (CN_FS_CREATE | CN_FS_EXCL | CN_FS_TRUNC)) {
        wal_errf(errmsg, "%s: the backup source is read only", path);
        return CN_EACCES;
    }
    return CN_FS_CALL(fs, open, path, CN_FS_RDONLY, out, errmsg);
}

static int ro_close(void *ctx, struct cn_fs_file *f, char *errmsg)
{
    const struct cn_fs *fs = ctx;
    return CN_FS_CALL(fs, close, f, errmsg);
}

static int ro_pread(void *ctx, struct cn_fs_file *f, void *buf, size_t n,
                    uint64_t off, size_t *nread, char *errmsg)
{
    const struct cn_fs *fs = ctx;
    return CN_FS_CALL(fs, pread, f, buf, n, off, nread, errmsg);
}

static int ro_size(void *ctx, struct cn_fs_file *f, uint64_t *size,
                   char *errmsg)
{
    const struct cn_fs *fs = ctx;
    return CN_FS_CALL(fs, size, f, size, errmsg);
}

static int ro_list(void *ctx, const char *path, char ***names, size_t *count,
                   char *errmsg)
{
    const struct cn_fs *fs = ctx;
    return CN_FS_CALL(fs, list, path, names, count, errmsg);
}

static int ro_stat(void *ctx, const char *path, int *is_dir, char *errmsg)
{
    const struct cn_fs *fs = ctx;
    return CN_FS_CALL(fs, stat, path, is_dir, errmsg);
}

/* Changes are dropped: recovery may repair a torn tail or remove temp
 * files, which must not happen to the source. */
static int ro_pwrite(void *ctx, struct cn_fs_file *f, const void *buf, size_t n,
                     uint64_t off, char *errmsg)
{
    return CN_OK;
}

static int ro_sync(void *ctx, struct cn_fs_file *f, int data_only, char *errmsg)
{
    return CN_OK;
}

static int ro_allocate(void *ctx, struct cn_fs_file *f, uint64_t off,
                       uint64_t len, char *errmsg)
{
    return CN_OK;
}

static int ro_truncate(void *ctx, struct cn_fs_file *f, uint64_t size,
                       char *errmsg)
{
    return CN_OK;
}

static int ro_path_op(void *ctx, const char *path, char *errmsg)
{
    return CN_OK;
}

static int ro_rename(void *ctx, const char *from, const char *to, char *errmsg)
{
    return CN_OK;
}

static int ro_lock(void *ctx, const char *path, struct cn_fs_file **out,
                   char *errmsg)
{
    wal_errf(errmsg, "%s: the backup source is read only", path);
    return CN_EACCES;
}

static void ro_view(const struct cn_fs *fs, struct cn_fs *view)
{
    memset(view, 0, sizeof(*view));
    view->ctx = (void *)fs;
    view->open = ro_open;
    view->close = ro_close;
    view->pread = ro_pread;
    view->pwrite = ro_pwrite;
    view->sync = ro_sync;
    view->allocate = ro_allocate;
    view->truncate = ro_truncate;
    view->size = ro_size;
    view->rename = ro_rename;
    view->unlink = ro_path_op;
    view->mkdir = ro_path_op;
    view->sync_dir = ro_path_op;
    view->list = ro_list;
    view->stat = ro_stat;
    view->lock = ro_lock;
}

/* ---- the copy ---- */

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* CN_OK if dir holds at least one segment, CN_ENOTFOUND if not. */
static int has_segments(const struct cn_fs *fs, const char *dir, char *errmsg)
{
    char **names = NULL;
    size_t count = 0;
    int rc = CN_FS_CALL(fs, list, dir, &names, &count, NULL);
    if (rc == CN_ENOTFOUND || (rc == CN_OK && count == 0)) {
        cn_fs_names_free(names, count);
        wal_errf(errmsg, "no cairn log in %s", dir);
        return CN_ENOTFOUND;
    }
    if (rc != CN_OK) {
        wal_errf(errmsg, "cannot list %s: %s", dir, cn_strerror(rc));
        return rc;
    }
    int found = 0;
    for (size_t i = 0; i < count; i++)
        found |= ends_with(names[i], ".wal");
    cn_fs_names_free(names, count);
    if (!found) {
        wal_errf(errmsg, "no cairn log in %s", dir);
        return CN_ENOTFOUND;
    }
    return CN_OK;
}

static void member_path(const char *data_dir, const char *wal_dir, char *out,
                        size_t cap)
{
    if (wal_dir != NULL && wal_dir[0] != '\0')
        snprintf(out, cap, "%s", wal_dir);
    else
        snprintf(out, cap, "%s/member/wal", data_dir);
}

/* Writes rec (snapshot, entries, hard state) into the new wal dst. */
static int copy_into(struct wal *dst, const struct wal_recovery *rec,
                     char *errmsg)
{
    int rc = CN_OK;
    if (rec->snap_index != 0) {
        struct cn_slice data = {rec->snap_data.data, rec->snap_data.len};
        rc = wal_snap_save(dst, rec->snap_index, rec->snap_term, data, errmsg);
        if (rc == CN_OK)
            rc = wal_append_snapshot(dst, rec->snap_index, rec->snap_term);
    }
    for (size_t i = 0; i < rec->entry_count && rc == CN_OK; i++) {
        const struct wal_entry *e = &rec->entries[i];
        rc = wal_append_entry(dst, e->index, e->term,
                              (struct cn_slice){e->data, e->len});
        if (rc == CN_OK && wal_pending_bytes(dst) >= BACKUP_SYNC_BYTES)
            rc = wal_sync(dst, NULL);
    }
    if (rc == CN_OK && rec->hard_state_set)
        rc = wal_append_hard_state(dst, &rec->hard_state);
    if (rc == CN_OK)
        rc = wal_sync(dst, NULL);
    if (rc != CN_OK && errmsg != NULL && errmsg[0] == '\0') {
        const char *why = wal_errmsg(dst);
        wal_errf(errmsg, "writing the backup: %s",
                 why[0] != '\0' ? why : cn_strerror(rc));
    }
    return rc;
}

/* Opens a new wal in backup_dir (which must not hold one) and copies. */
static int write_backup(const struct wal_backup_config *bc,
                        const struct wal_recovery *src, char *errmsg)
{
    const struct cn_fs *fs = bc->fs;
    const char *backup_dir = bc->backup_dir;
    char path[WAL_PATH_MAX];
    int is_dir = 0;
    snprintf(path, sizeof(path), "%s/member", backup_dir);
    int rc = CN_FS_CALL(fs, stat, path, &is_dir, NULL);
    if (rc == CN_OK) {
        wal_errf(errmsg, "%s already holds a data dir", backup_dir);
        return CN_EEXIST;
    }
    struct cn_fs_file *lock = NULL;
    rc = wal_lock(fs, backup_dir, &lock, errmsg);
    if (rc != CN_OK)
        return rc;
    struct wal_config cfg = {
        .fs = fs,
        .data_dir = backup_dir,
        .wal_dir = bc->backup_wal_dir,
        .segment_bytes = bc->segment_bytes,
        .seed = src->snap_index * 0x9e3779b97f4a7c15ull ^ src->entry_count,
    };
    struct wal *dst = NULL;
    struct wal_recovery rec;
    rc = wal_open(&cfg, &dst, &rec, errmsg);
    if (rc != CN_OK)
        goto out_unlock;
    int created = rec.created;
    wal_recovery_close(&rec);
    if (!created) {
        wal_errf(errmsg, "%s already holds a cairn log", backup_dir);
        rc = CN_EEXIST;
    } else {
        rc = copy_into(dst, src, errmsg);
    }
    wal_close(dst);
out_unlock:
    wal_unlock(fs, lock);
    return rc;
}

int wal_backup(const struct wal_backup_config *bc,
               struct wal_backup_result *res, char *errmsg)
{
    const struct cn_fs *fs = bc->fs;
    const char *data_dir = bc->data_dir;
    const char *wal_dir = bc->wal_dir;
    char own[CN_ERRMSG_SIZE];
    if (errmsg == NULL)
        errmsg = own;
    errmsg[0] = '\0';
    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (strcmp(data_dir, bc->backup_dir) == 0) {
        wal_errf(errmsg, "the backup dir must differ from the data dir");
        return CN_EINVAL;
    }
    char src_wal[WAL_PATH_MAX];
    member_path(data_dir, wal_dir, src_wal, sizeof(src_wal));
    int rc = has_segments(fs, src_wal, errmsg);
    if (rc != CN_OK)
        return rc;
    struct cn_fs_file *lock = NULL;
    rc = wal_lock(fs, data_dir, &lock, errmsg);
    if (rc == CN_ELOCKED) {
        wal_errf(errmsg,
                 "data dir %s is in use by a running cairn; stop it first",
                 data_dir);
        return rc;
    }
    if (rc != CN_OK)
        return rc;
    struct cn_fs view;
    ro_view(fs, &view);
    struct wal_config cfg = {
        .fs = &view,
        .data_dir = data_dir,
        .wal_dir = wal_dir,
    };
    struct wal *src = NULL;
    struct wal_recovery rec;
    rc = wal_open(&cfg, &src, &rec, errmsg);
    if (rc != CN_OK)
        goto out_unlock;
    wal_close(src);
    rc = write_backup(bc, &rec, errmsg);
    if (rc == CN_OK && res != NULL) {
        res->snap_index = rec.snap_index;
        res->entry_count = rec.entry_count;
        res->last_index = rec.entry_count > 0
                              ? rec.entries[rec.entry_count - 1].index
                              : rec.snap_index;
        res->torn_bytes = rec.torn_bytes;
    }
    wal_recovery_close(&rec);
out_unlock:
    wal_unlock(fs, lock);
    return rc;
}
