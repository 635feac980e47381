/*
 * wal_snap: snapshot files <snap-dir>/TERM-INDEX.snap.
 *
 * Layout (little-endian):
 *   0  u32 magic "CNSP"      4  u32 version
 *   8  u64 term              16 u64 index
 *   24 u64 data_len          32 u32 crc32c of bytes [0, 32) then the data
 *   36 u32 0                 40 data (data_len bytes)
 *
 * A snapshot is written to NAME.snap.tmp, fsynced, renamed, and the
 * directory fsynced, so a NAME.snap is complete or absent after a crash
 * (leftover temp files are removed at open). The driver then appends the
 * snapshot's marker to the log; at open a snapshot is used only if the log
 * holds its marker, or a newer marker (older markers go away with purged
 * segments), so a snapshot saved just before a crash, whose marker never
 * became durable, is skipped in favour of the previous one.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal_int.h"

static int cmp_pair(const void *a, const void *b)
{
    /* (term, index) pairs, by index then term. */
    const uint64_t *x = a, *y = b;
    if (x[1] != y[1])
        return x[1] < y[1] ? -1 : 1;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int wal_snap_list(const struct wal *w, uint64_t **list, size_t *count,
                  char *errmsg)
{
    char **names;
    size_t n;
    int rc = CN_FS_CALL(w->fs, list, w->snap_dir, &names, &n, errmsg);
    if (rc != CN_OK)
        return rc;
    uint64_t *pairs = cn_calloc(2 * n + 2, sizeof(*pairs));
    if (pairs == NULL) {
        cn_fs_names_free(names, n);
        return CN_ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (wal_parse_name(names[i], ".snap", &pairs[2 * k], &pairs[2 * k + 1]))
            k++;
    cn_fs_names_free(names, n);
    qsort(pairs, k, 2 * sizeof(*pairs), cmp_pair);
    *list = pairs;
    *count = k;
    return CN_OK;
}

static void encode_header(uint8_t *h, uint64_t term, uint64_t index,
                          struct cn_slice data)
{
    memset(h, 0, WAL_SNAP_HEADER_BYTES);
    wal_put32(h, WAL_SNAP_MAGIC);
    wal_put32(h + 4, WAL_FORMAT_VERSION);
    wal_put64(h + 8, term);
    wal_put64(h + 16, index);
    wal_put64(h + 24, data.len);
    uint32_t crc = cn_crc32c(0, h, 32);
    crc = cn_crc32c(crc, data.base, data.len);
    wal_put32(h + 32, crc);
}

int wal_snap_save(const struct wal *w, uint64_t index, uint64_t term,
                  struct cn_slice data, char *errmsg)
{
    if (index == 0)
        return CN_EINVAL;
    char name[64], path[WAL_PATH_MAX + 64], tmp[WAL_PATH_MAX + 72];
    wal_snap_name(term, index, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", w->snap_dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    uint8_t h[WAL_SNAP_HEADER_BYTES];
    encode_header(h, term, index, data);
    struct cn_fs_file *f;
    const struct cn_fs *fs = w->fs;
    int rc = CN_FS_CALL(fs, open, tmp, CN_FS_RDWR | CN_FS_CREATE | CN_FS_TRUNC,
                        &f, errmsg);
    if (rc != CN_OK)
        return rc;
    rc = CN_FS_CALL(fs, pwrite, f, h, sizeof(h), 0, errmsg);
    if (rc == CN_OK && data.len > 0)
        rc = CN_FS_CALL(fs, pwrite, f, data.base, data.len, sizeof(h), errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, sync, f, 0, errmsg);
    int crc = CN_FS_CALL(fs, close, f, rc == CN_OK ? errmsg : NULL);
    if (rc == CN_OK)
        rc = crc;
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, rename, tmp, path, errmsg);
    if (rc == CN_OK)
        rc = CN_FS_CALL(fs, sync_dir, w->snap_dir, errmsg);
    if (rc != CN_OK)
        CN_FS_CALL(fs, unlink, tmp, NULL);
    return rc;
}

/* Frees a snapshot's payload mapped by load_one: the mapping starts at
 * the file's header. */
static void unmap_payload(void *data, size_t len)
{
    cn_fs_unmap((char *)data - WAL_SNAP_HEADER_BYTES,
                len + WAL_SNAP_HEADER_BYTES);
}

/* The file's header into h and its payload into out: mapped with the
 * file when the fs can (the mapping starts at the header), else read into
 * memory. CN_ECORRUPT for a short read. */
static int read_snap(const struct wal *w, struct cn_fs_file *f, uint64_t size,
                     uint8_t h[WAL_SNAP_HEADER_BYTES], struct wal_bytes *out,
                     char *errmsg)
{
    size_t len = (size_t)(size - WAL_SNAP_HEADER_BYTES);
    void *map = NULL;
    if (w->fs->map != NULL && len > 0 &&
        w->fs->map(w->fs->ctx, f, (size_t)size, &map, NULL) == CN_OK) {
        memcpy(h, map, WAL_SNAP_HEADER_BYTES);
        out->data = (char *)map + WAL_SNAP_HEADER_BYTES;
        out->len = len;
        out->release = unmap_payload;
        return CN_OK;
    }
    size_t got = 0;
    int rc =
        CN_FS_CALL(w->fs, pread, f, h, WAL_SNAP_HEADER_BYTES, 0, &got, errmsg);
    if (rc != CN_OK)
        return rc;
    if (got != WAL_SNAP_HEADER_BYTES)
        return CN_ECORRUPT;
    char *buf = cn_malloc(len + 1);
    if (buf == NULL)
        return CN_ENOMEM;
    rc = CN_FS_CALL(w->fs, pread, f, buf, len, WAL_SNAP_HEADER_BYTES, &got,
                    errmsg);
    if (rc == CN_OK && got != len)
        rc = CN_ECORRUPT;
    if (rc != CN_OK) {
        cn_free(buf);
        return rc;
    }
    buf[len] = '\0';
    out->data = buf;
    out->len = len;
    out->release = NULL;
    return CN_OK;
}

/* Reads and checks one snapshot file. CN_ECORRUPT if it does not check,
 * CN_EVERSION for a newer format. */
static int load_one(const struct wal *w, uint64_t term, uint64_t index,
                    struct wal_bytes *out, char *errmsg)
{
    char name[64], path[WAL_PATH_MAX + 64];
    wal_snap_name(term, index, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", w->snap_dir, name);
    struct cn_fs_file *f;
    uint64_t size;
    wal_bytes_close(out);
    int rc = CN_FS_CALL(w->fs, open, path, CN_FS_RDONLY, &f, errmsg);
    if (rc != CN_OK)
        return rc;
    rc = CN_FS_CALL(w->fs, size, f, &size, errmsg);
    if (rc != CN_OK)
        goto out;
    if (size < WAL_SNAP_HEADER_BYTES ||
        size - WAL_SNAP_HEADER_BYTES > SIZE_MAX / 2) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "snapshot %.150s: bad header", path);
        rc = CN_ECORRUPT;
        goto out;
    }
    uint8_t h[WAL_SNAP_HEADER_BYTES];
    rc = read_snap(w, f, size, h, out, errmsg);
    if (rc == CN_ECORRUPT)
        snprintf(errmsg, CN_ERRMSG_SIZE, "snapshot %.150s: short read", path);
    if (rc != CN_OK)
        goto out;
    if (wal_get32(h) != WAL_SNAP_MAGIC || wal_get64(h + 8) != term ||
        wal_get64(h + 16) != index ||
        wal_get64(h + 24) != size - WAL_SNAP_HEADER_BYTES) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "snapshot %.150s: bad header", path);
        rc = CN_ECORRUPT;
        goto out;
    }
    if (wal_get32(h + 4) != WAL_FORMAT_VERSION) {
        snprintf(errmsg, CN_ERRMSG_SIZE,
                 "snapshot %.150s: format version %u is not supported", path,
                 wal_get32(h + 4));
        rc = CN_EVERSION;
        goto out;
    }
    uint32_t crc = cn_crc32c(cn_crc32c(0, h, 32), out->data, out->len);
    if (crc != wal_get32(h + 32)) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "snapshot %.150s: bad checksum", path);
        rc = CN_ECORRUPT;
        goto out;
    }
out:
    if (rc != CN_OK)
        wal_bytes_close(out);
    CN_FS_CALL(w->fs, close, f, NULL);
    return rc;
}

/* 1 if the log vouches for snapshot (term, index): it holds its marker,
 * or a newer one and no marker contradicting it. */
static int vouched(const uint64_t *markers, size_t count, uint64_t term,
                   uint64_t index)
{
    uint64_t newest = 0;
    for (size_t i = 0; i < count; i++) {
        if (markers[2 * i] == index)
            return markers[2 * i + 1] == term;
        if (markers[2 * i] > newest)
            newest = markers[2 * i];
    }
    return index < newest;
}

static void note(struct wal_recovery *rec, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void note(struct wal_recovery *rec, const char *fmt, ...)
{
    size_t used = strlen(rec->notes);
    if (used + 2 >= sizeof(rec->notes))
        return;
    if (used > 0) {
        rec->notes[used++] = ';';
        rec->notes[used++] = ' ';
        rec->notes[used] = '\0';
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rec->notes + used, sizeof(rec->notes) - used, fmt, ap);
    va_end(ap);
}

static int remove_temps(const struct wal *w, char *errmsg)
{
    char **names;
    size_t n;
    int rc = CN_FS_CALL(w->fs, list, w->snap_dir, &names, &n, errmsg);
    if (rc != CN_OK)
        return rc;
    for (size_t i = 0; i < n && rc == CN_OK; i++) {
        if (!ends_with(names[i], ".snap.tmp"))
            continue;
        char path[WAL_PATH_MAX + 300];
        snprintf(path, sizeof(path), "%s/%.255s", w->snap_dir, names[i]);
        rc = CN_FS_CALL(w->fs, unlink, path, errmsg);
    }
    cn_fs_names_free(names, n);
    return rc;
}

int wal_snap_load(struct wal *w, const uint64_t *markers, size_t count,
                  int newest_only, struct wal_recovery *rec, char *errmsg)
{
    int rc = remove_temps(w, errmsg);
    if (rc == CN_ENOTFOUND)
        return CN_OK; /* no snap dir: no snapshot */
    if (rc != CN_OK)
        return rc;
    uint64_t *snaps;
    size_t n;
    rc = wal_snap_list(w, &snaps, &n, errmsg);
    if (rc != CN_OK)
        return rc;
    for (size_t i = n; i-- > 0 && rc == CN_OK;) {
        uint64_t term = snaps[2 * i], index = snaps[2 * i + 1];
        char name[64];
        wal_snap_name(term, index, name, sizeof(name));
        if (newest_only && i + 1 < n)
            break;
        if (newest_only && !vouched(markers, count, term, index))
            break;
        if (!vouched(markers, count, term, index)) {
            /* Saved, but its marker never became durable (a crash between
             * the two): nothing can ever use it, so it goes. */
            rec->snaps_skipped++;
            char path[WAL_PATH_MAX + 300];
            snprintf(path, sizeof(path), "%s/%s", w->snap_dir, name);
            int urc = CN_FS_CALL(w->fs, unlink, path, NULL);
            note(rec, "snapshot %s skipped: the log has no marker for it%s",
                 name, urc == CN_OK ? " (removed)" : "");
            continue;
        }
        char why[CN_ERRMSG_SIZE] = "";
        rc = load_one(w, term, index, &rec->snap_data, why);
        if (rc == CN_ECORRUPT && newest_only) {
            rc = CN_OK; /* the whole log is read, then this is said */
            break;
        }
        if (rc == CN_ECORRUPT) {
            rec->snaps_skipped++;
            note(rec, "%.200s; using an older snapshot", why);
            rc = CN_OK;
            continue;
        }
        if (rc != CN_OK) {
            snprintf(errmsg, CN_ERRMSG_SIZE, "%s", why);
            break;
        }
        rec->snap_index = index;
        rec->snap_term = term;
        break;
    }
    cn_free(snaps);
    if (rc != CN_OK || rec->snap_index == 0)
        wal_bytes_close(&rec->snap_data);
    return rc;
}
