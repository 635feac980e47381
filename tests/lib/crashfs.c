/*
 * crashfs: the crash-simulating in-memory file system; see crashfs.h for
 * the fault model.
 *
 * State: inodes (files and directories) with current and durable contents
 * and a log of unsynced data calls; two name spaces (current and durable),
 * each a flat list of absolute paths; a log of unsynced directory calls,
 * each tagged with its parent directory. sync moves a file's log into its
 * durable contents; sync_dir replays the directory's log onto the durable
 * name space; reboot replays the part of every log the mode chooses and
 * makes the result both durable and current.
 */
#include "crashfs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

struct blob {
    uint8_t *data;
    size_t size; /* bytes */
};

enum { FOP_WRITE, FOP_TRUNC, FOP_ALLOC };

struct fop {
    int kind;
    uint64_t off;   /* write/alloc offset; trunc: new size */
    uint64_t len;   /* write/alloc bytes */
    uint8_t *bytes; /* write: owned copy */
};

struct inode {
    int is_dir;
    int locked;      /* held by a handle's lock */
    struct blob cur; /* what readers see */
    struct blob dur; /* as of the last sync */
    struct fop *ops; /* unsynced calls, in order */
    size_t op_count;
    size_t op_cap;
};

struct dentry {
    char *path; /* owned, absolute */
    struct inode *ino;
};

struct nsmap {
    struct dentry *v;
    size_t n, cap;
};

enum { DOP_LINK, DOP_UNLINK, DOP_RENAME };

struct dop {
    char *dir; /* parent directory, owned */
    int kind;
    char *path;  /* owned */
    char *path2; /* rename target, owned */
    struct inode *ino;
};

struct cn_fs_file {
    struct inode *ino;
    unsigned gen; /* reboot generation it belongs to */
    int holds_lock;
    struct cn_fs_file *next;
    struct cn_fs_file *prev;
};

struct crashfs {
    struct cn_fs fs;
    struct nsmap cur, dur;
    struct dop *dops;
    size_t dop_count, dop_cap;
    struct inode **inodes;
    size_t ino_count, ino_cap;
    struct cn_fs_file *files; /* every handle not yet closed */
    long open_handles;
    unsigned gen;
    long op_count;
    long crash_at; /* 0: not armed; else op number that crashes */
    long crash_bytes;
    int crashed;
    int crashed_in_write;
    int fault_kinds;
    long fault_left;
    int fault_err;
    int fault_fired;
    struct cn_prng prng;
};

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "crashfs: out of memory\n");
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "crashfs: out of memory\n");
        abort();
    }
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = xmalloc(n);
    memcpy(d, s, n);
    return d;
}

#define GROW(arr, count, cap)                                                  \
    do {                                                                       \
        if ((count) == (cap)) {                                                \
            (cap) = (cap) ? (cap)*2 : 8;                                       \
            (arr) = xrealloc((arr), (cap) * sizeof(*(arr)));                   \
        }                                                                      \
    } while (0)

static void say(char *errmsg, const char *what, const char *path, int rc)
{
    if (errmsg != NULL)
        snprintf(errmsg, CN_ERRMSG_SIZE, "crashfs %s %s: %s", what,
                 path ? path : "", cn_strerror(rc));
}

/* --- blobs ------------------------------------------------------------ */

static void blob_resize(struct blob *b, size_t size)
{
    if (size > b->size) {
        b->data = xrealloc(b->data, size);
        memset(b->data + b->size, 0, size - b->size);
    }
    b->size = size;
}

static void blob_write(struct blob *b, uint64_t off, const uint8_t *p, size_t n)
{
    if (n == 0)
        return;
    if (off + n > b->size)
        blob_resize(b, (size_t)(off + n));
    memcpy(b->data + off, p, n);
}

static void blob_copy(struct blob *dst, const struct blob *src)
{
    dst->data = xrealloc(dst->data, src->size);
    if (src->size)
        memcpy(dst->data, src->data, src->size);
    dst->size = src->size;
}

static void fop_apply(struct blob *b, const struct fop *op)
{
    switch (op->kind) {
    case FOP_WRITE:
        blob_write(b, op->off, op->bytes, (size_t)op->len);
        break;
    case FOP_TRUNC:
        blob_resize(b, (size_t)op->off);
        break;
    case FOP_ALLOC:
        if (op->off + op->len > b->size)
            blob_resize(b, (size_t)(op->off + op->len));
        break;
    }
}

static void inode_log(struct inode *ino, int kind, uint64_t off, uint64_t len,
                      const void *bytes)
{
    GROW(ino->ops, ino->op_count, ino->op_cap);
    struct fop *op = &ino->ops[ino->op_count++];
    op->kind = kind;
    op->off = off;
    op->len = len;
    op->bytes = NULL;
    if (kind == FOP_WRITE) {
        op->bytes = xmalloc((size_t)len);
        memcpy(op->bytes, bytes, (size_t)len);
    }
    fop_apply(&ino->cur, op);
}

static void inode_clear_ops(struct inode *ino)
{
    for (size_t i = 0; i < ino->op_count; i++)
        free(ino->ops[i].bytes);
    ino->op_count = 0;
}

static struct inode *inode_new(struct crashfs *c, int is_dir)
{
    struct inode *ino = xmalloc(sizeof(*ino));
    memset(ino, 0, sizeof(*ino));
    ino->is_dir = is_dir;
    GROW(c->inodes, c->ino_count, c->ino_cap);
    c->inodes[c->ino_count++] = ino;
    return ino;
}

/* --- name spaces ------------------------------------------------------ */

static struct dentry *ns_find(struct nsmap *m, const char *path)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->v[i].path, path) == 0)
            return &m->v[i];
    return NULL;
}

static void ns_set(struct nsmap *m, const char *path, struct inode *ino)
{
    struct dentry *d = ns_find(m, path);
    if (d != NULL) {
        d->ino = ino;
        return;
    }
    GROW(m->v, m->n, m->cap);
    m->v[m->n].path = xstrdup(path);
    m->v[m->n].ino = ino;
    m->n++;
}

static void ns_del(struct nsmap *m, const char *path)
{
    struct dentry *d = ns_find(m, path);
    if (d == NULL)
        return;
    free(d->path);
    *d = m->v[--m->n];
}

static void ns_clear(struct nsmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->v[i].path);
    m->n = 0;
}

/* Parent directory of an absolute path ("/" for "/x"). */
static void parent_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0) {
        snprintf(out, cap, "/");
        return;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(out, path, n);
    out[n] = '\0';
}

static int parent_exists(struct nsmap *m, const char *path)
{
    char parent[1024];
    parent_of(path, parent, sizeof(parent));
    if (strcmp(parent, "/") == 0)
        return 1;
    struct dentry *d = ns_find(m, parent);
    return d != NULL && d->ino->is_dir;
}

static void dop_apply(struct nsmap *m, const struct dop *op)
{
    switch (op->kind) {
    case DOP_LINK:
        ns_set(m, op->path, op->ino);
        break;
    case DOP_UNLINK:
        ns_del(m, op->path);
        break;
    case DOP_RENAME: {
        struct dentry *d = ns_find(m, op->path);
        if (d != NULL) {
            struct inode *ino = d->ino;
            ns_del(m, op->path);
            ns_set(m, op->path2, ino);
        }
        break;
    }
    }
}

static void dop_log(struct crashfs *c, int kind, const char *path,
                    const char *path2, struct inode *ino)
{
    char parent[1024];
    parent_of(path, parent, sizeof(parent));
    GROW(c->dops, c->dop_count, c->dop_cap);
    struct dop *op = &c->dops[c->dop_count++];
    op->dir = xstrdup(parent);
    op->kind = kind;
    op->path = xstrdup(path);
    op->path2 = path2 ? xstrdup(path2) : NULL;
    op->ino = ino;
    dop_apply(&c->cur, op);
}

static void dop_free(struct dop *op)
{
    free(op->dir);
    free(op->path);
    free(op->path2);
}

/* --- call accounting: faults and crashes ------------------------------ */

enum { CALL_OK = 0, CALL_CRASH_NOW = 1 };

/* Every call passes here. Returns an error to report, CALL_CRASH_NOW if
 * this mutating call is the crash point, or CALL_OK. */
static int call_begin(struct crashfs *c, int kind, int mutating)
{
    if (c->crashed)
        return CN_EIO;
    if (c->fault_left > 0 && (c->fault_kinds & kind)) {
        if (--c->fault_left == 0) {
            c->fault_fired = 1;
            return c->fault_err;
        }
    }
    if (!mutating)
        return CALL_OK;
    c->op_count++;
    if (c->crash_at > 0 && c->op_count >= c->crash_at) {
        c->crashed = 1;
        c->crashed_in_write = kind == CRASHFS_F_WRITE;
        return CALL_CRASH_NOW;
    }
    return CALL_OK;
}

static int check_file(struct crashfs *c, struct cn_fs_file *f)
{
    return f->gen == c->gen ? CN_OK : CN_EIO;
}

/* --- operations ------------------------------------------------------- */

static struct cn_fs_file *handle_new(struct crashfs *c, struct inode *ino)
{
    struct cn_fs_file *f = xmalloc(sizeof(*f));
    f->ino = ino;
    f->gen = c->gen;
    f->holds_lock = 0;
    f->prev = NULL;
    f->next = c->files;
    if (c->files)
        c->files->prev = f;
    c->files = f;
    c->open_handles++;
    return f;
}

static void handle_free(struct crashfs *c, struct cn_fs_file *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        c->files = f->next;
    if (f->next)
        f->next->prev = f->prev;
    if (f->holds_lock && f->gen == c->gen)
        f->ino->locked = 0;
    c->open_handles--;
    free(f);
}

/* Finds or creates (with CREATE) the file at path. */
static int lookup_file(struct crashfs *c, const char *path, int flags,
                       struct inode **out, char *errmsg)
{
    struct dentry *d = ns_find(&c->cur, path);
    if (d != NULL) {
        if ((flags & CN_FS_CREATE) && (flags & CN_FS_EXCL)) {
            say(errmsg, "open", path, CN_EEXIST);
            return CN_EEXIST;
        }
        if (d->ino->is_dir) {
            say(errmsg, "open", path, CN_EINVAL);
            return CN_EINVAL;
        }
        *out = d->ino;
        return CN_OK;
    }
    if (!(flags & CN_FS_CREATE) || !parent_exists(&c->cur, path)) {
        say(errmsg, "open", path, CN_ENOTFOUND);
        return CN_ENOTFOUND;
    }
    int rc = call_begin(c, 0, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc != CN_OK) {
        say(errmsg, "create", path, rc);
        return rc;
    }
    struct inode *ino = inode_new(c, 0);
    dop_log(c, DOP_LINK, path, NULL, ino);
    *out = ino;
    return CN_OK;
}

static int fs_open(void *ctx, const char *path, int flags,
                   struct cn_fs_file **out, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_OPEN, 0);
    if (rc != CN_OK) {
        say(errmsg, "open", path, rc);
        return rc;
    }
    struct inode *ino;
    rc = lookup_file(c, path, flags, &ino, errmsg);
    if (rc != CN_OK)
        return rc;
    if ((flags & CN_FS_TRUNC) && ino->cur.size > 0) {
        rc = call_begin(c, 0, 1);
        if (rc == CALL_CRASH_NOW)
            rc = CN_EIO;
        if (rc != CN_OK) {
            say(errmsg, "truncate", path, rc);
            return rc;
        }
        inode_log(ino, FOP_TRUNC, 0, 0, NULL);
    }
    *out = handle_new(c, ino);
    return CN_OK;
}

static int fs_close(void *ctx, struct cn_fs_file *f, char *errmsg)
{
    handle_free(ctx, f);
    return CN_OK;
}

static int fs_pread(void *ctx, struct cn_fs_file *f, void *buf, size_t n,
                    uint64_t off, size_t *nread, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_READ, 0);
    if (rc == CN_OK)
        rc = check_file(c, f);
    if (rc != CN_OK) {
        say(errmsg, "pread", NULL, rc);
        return rc;
    }
    const struct blob *b = &f->ino->cur;
    size_t got = 0;
    if (off < b->size) {
        got = b->size - (size_t)off;
        if (got > n)
            got = n;
        memcpy(buf, b->data + off, got);
    }
    *nread = got;
    return CN_OK;
}

static int fs_pwrite(void *ctx, struct cn_fs_file *f, const void *buf, size_t n,
                     uint64_t off, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = check_file(c, f);
    if (rc == CN_OK)
        rc = call_begin(c, CRASHFS_F_WRITE, 1);
    if (rc == CALL_CRASH_NOW) {
        if (c->crash_bytes > 0) {
            size_t part =
                (size_t)c->crash_bytes < n ? (size_t)c->crash_bytes : n;
            inode_log(f->ino, FOP_WRITE, off, part, buf);
        }
        rc = CN_EIO;
    }
    if (rc != CN_OK) {
        say(errmsg, "pwrite", NULL, rc);
        return rc;
    }
    if (n > 0)
        inode_log(f->ino, FOP_WRITE, off, n, buf);
    return CN_OK;
}

static int fs_sync(void *ctx, struct cn_fs_file *f, int data_only, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = check_file(c, f);
    if (rc == CN_OK)
        rc = call_begin(c, CRASHFS_F_SYNC, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc != CN_OK) {
        say(errmsg, "sync", NULL, rc);
        return rc;
    }
    blob_copy(&f->ino->dur, &f->ino->cur);
    inode_clear_ops(f->ino);
    return CN_OK;
}

static int fs_allocate(void *ctx, struct cn_fs_file *f, uint64_t off,
                       uint64_t len, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = check_file(c, f);
    if (rc == CN_OK)
        rc = call_begin(c, CRASHFS_F_ALLOC, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc != CN_OK) {
        say(errmsg, "allocate", NULL, rc);
        return rc;
    }
    inode_log(f->ino, FOP_ALLOC, off, len, NULL);
    return CN_OK;
}

static int fs_truncate(void *ctx, struct cn_fs_file *f, uint64_t size,
                       char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = check_file(c, f);
    if (rc == CN_OK)
        rc = call_begin(c, CRASHFS_F_ALLOC, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc != CN_OK) {
        say(errmsg, "truncate", NULL, rc);
        return rc;
    }
    inode_log(f->ino, FOP_TRUNC, size, 0, NULL);
    return CN_OK;
}

static int fs_size(void *ctx, struct cn_fs_file *f, uint64_t *size,
                   char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_READ, 0);
    if (rc == CN_OK)
        rc = check_file(c, f);
    if (rc != CN_OK) {
        say(errmsg, "size", NULL, rc);
        return rc;
    }
    *size = f->ino->cur.size;
    return CN_OK;
}

static int fs_rename(void *ctx, const char *from, const char *to, char *errmsg)
{
    struct crashfs *c = ctx;
    char pa[1024], pb[1024];
    parent_of(from, pa, sizeof(pa));
    parent_of(to, pb, sizeof(pb));
    if (strcmp(pa, pb) != 0) {
        say(errmsg, "rename (across directories)", from, CN_EINVAL);
        return CN_EINVAL;
    }
    int rc = call_begin(c, CRASHFS_F_META, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc == CN_OK && ns_find(&c->cur, from) == NULL)
        rc = CN_ENOTFOUND;
    if (rc != CN_OK) {
        say(errmsg, "rename", from, rc);
        return rc;
    }
    dop_log(c, DOP_RENAME, from, to, NULL);
    return CN_OK;
}

static int fs_unlink(void *ctx, const char *path, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_META, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    struct dentry *d = rc == CN_OK ? ns_find(&c->cur, path) : NULL;
    if (rc == CN_OK && d == NULL)
        rc = CN_ENOTFOUND;
    if (rc == CN_OK && d->ino->is_dir)
        rc = CN_EINVAL;
    if (rc != CN_OK) {
        say(errmsg, "unlink", path, rc);
        return rc;
    }
    dop_log(c, DOP_UNLINK, path, NULL, NULL);
    return CN_OK;
}

static int fs_mkdir(void *ctx, const char *path, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_META, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc == CN_OK && (ns_find(&c->cur, path) || strcmp(path, "/") == 0))
        rc = CN_EEXIST;
    if (rc == CN_OK && !parent_exists(&c->cur, path))
        rc = CN_ENOTFOUND;
    if (rc != CN_OK) {
        say(errmsg, "mkdir", path, rc);
        return rc;
    }
    dop_log(c, DOP_LINK, path, NULL, inode_new(c, 1));
    return CN_OK;
}

static int is_dir_path(struct crashfs *c, const char *path)
{
    if (strcmp(path, "/") == 0)
        return 1;
    struct dentry *d = ns_find(&c->cur, path);
    return d != NULL && d->ino->is_dir;
}

static int fs_sync_dir(void *ctx, const char *path, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_SYNC, 1);
    if (rc == CALL_CRASH_NOW)
        rc = CN_EIO;
    if (rc == CN_OK && !is_dir_path(c, path))
        rc = CN_ENOTFOUND;
    if (rc != CN_OK) {
        say(errmsg, "sync_dir", path, rc);
        return rc;
    }
    size_t keep = 0;
    for (size_t i = 0; i < c->dop_count; i++) {
        if (strcmp(c->dops[i].dir, path) == 0) {
            dop_apply(&c->dur, &c->dops[i]);
            dop_free(&c->dops[i]);
        } else {
            c->dops[keep++] = c->dops[i];
        }
    }
    c->dop_count = keep;
    return CN_OK;
}

static int fs_list(void *ctx, const char *path, char ***names_out,
                   size_t *count_out, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_READ, 0);
    if (rc == CN_OK && !is_dir_path(c, path))
        rc = CN_ENOTFOUND;
    if (rc != CN_OK) {
        say(errmsg, "list", path, rc);
        return rc;
    }
    /* The result is freed with cn_free, so it comes from cn_malloc. */
    char **names = cn_malloc((c->cur.n + 1) * sizeof(*names));
    if (names == NULL) {
        say(errmsg, "list", path, CN_ENOMEM);
        return CN_ENOMEM;
    }
    size_t count = 0;
    for (size_t i = 0; i < c->cur.n; i++) {
        char parent[1024];
        parent_of(c->cur.v[i].path, parent, sizeof(parent));
        if (strcmp(parent, path) != 0)
            continue;
        names[count] = cn_strdup(strrchr(c->cur.v[i].path, '/') + 1);
        if (names[count] == NULL) {
            cn_fs_names_free(names, count);
            say(errmsg, "list", path, CN_ENOMEM);
            return CN_ENOMEM;
        }
        count++;
    }
    *names_out = names;
    *count_out = count;
    return CN_OK;
}

static int fs_stat(void *ctx, const char *path, int *is_dir, char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_READ, 0);
    if (rc != CN_OK) {
        say(errmsg, "stat", path, rc);
        return rc;
    }
    if (strcmp(path, "/") == 0) {
        *is_dir = 1;
        return CN_OK;
    }
    struct dentry *d = ns_find(&c->cur, path);
    if (d == NULL) {
        say(errmsg, "stat", path, CN_ENOTFOUND);
        return CN_ENOTFOUND;
    }
    *is_dir = d->ino->is_dir;
    return CN_OK;
}

static int fs_lock(void *ctx, const char *path, struct cn_fs_file **out,
                   char *errmsg)
{
    struct crashfs *c = ctx;
    int rc = call_begin(c, CRASHFS_F_OPEN, 0);
    if (rc != CN_OK) {
        say(errmsg, "lock", path, rc);
        return rc;
    }
    struct inode *ino;
    rc = lookup_file(c, path, CN_FS_RDWR | CN_FS_CREATE, &ino, errmsg);
    if (rc != CN_OK)
        return rc;
    if (ino->locked) {
        say(errmsg, "lock", path, CN_ELOCKED);
        return CN_ELOCKED;
    }
    struct cn_fs_file *f = handle_new(c, ino);
    f->holds_lock = 1;
    ino->locked = 1;
    *out = f;
    return CN_OK;
}

/* --- crash and reboot ------------------------------------------------- */

static enum crashfs_mode pick_mode(struct crashfs *c, enum crashfs_mode mode)
{
    if (mode != CRASHFS_RANDOM)
        return mode;
    return (enum crashfs_mode)cn_prng_below(&c->prng, 4);
}

/* Replays the part of ino's unsynced log that mode keeps onto its durable
 * contents. */
static void inode_crash(struct crashfs *c, struct inode *ino,
                        enum crashfs_mode mode)
{
    struct blob out = {NULL, 0};
    blob_copy(&out, &ino->dur);
    mode = pick_mode(c, mode);
    size_t n = ino->op_count;
    if (mode == CRASHFS_KEEP || mode == CRASHFS_PREFIX) {
        size_t keep = n;
        if (mode == CRASHFS_PREFIX)
            keep = (size_t)cn_prng_below(&c->prng, n + 1);
        for (size_t i = 0; i < keep; i++)
            fop_apply(&out, &ino->ops[i]);
        if (keep < n && ino->ops[keep].kind == FOP_WRITE) {
            struct fop part = ino->ops[keep];
            part.len = cn_prng_below(&c->prng, part.len + 1);
            fop_apply(&out, &part);
        }
    } else if (mode == CRASHFS_TORN) {
        for (size_t i = 0; i < n; i++) {
            const struct fop *op = &ino->ops[i];
            if (op->kind != FOP_WRITE) {
                if (cn_prng_chance(&c->prng, 1, 2))
                    fop_apply(&out, op);
                continue;
            }
            uint64_t pos = op->off;
            while (pos < op->off + op->len) {
                uint64_t end =
                    (pos / CN_FS_SECTOR_BYTES + 1) * CN_FS_SECTOR_BYTES;
                if (end > op->off + op->len)
                    end = op->off + op->len;
                uint64_t r = cn_prng_below(&c->prng, 16);
                if (r < 8) {
                    blob_write(&out, pos, op->bytes + (pos - op->off),
                               (size_t)(end - pos));
                } else if (r == 15) {
                    uint8_t junk[CN_FS_SECTOR_BYTES];
                    for (size_t k = 0; k < sizeof(junk); k++)
                        junk[k] = (uint8_t)cn_prng_next(&c->prng);
                    blob_write(&out, pos, junk, (size_t)(end - pos));
                }
                pos = end;
            }
        }
    }
    free(ino->dur.data);
    ino->dur = out;
    blob_copy(&ino->cur, &ino->dur);
    inode_clear_ops(ino);
    ino->locked = 0;
}

static void dirs_crash(struct crashfs *c, enum crashfs_mode mode)
{
    while (c->dop_count > 0) {
        /* Take the first directory with pending calls and all of its. */
        char *dir = xstrdup(c->dops[0].dir);
        size_t total = 0;
        for (size_t i = 0; i < c->dop_count; i++)
            if (strcmp(c->dops[i].dir, dir) == 0)
                total++;
        enum crashfs_mode m = pick_mode(c, mode);
        size_t keep = 0;
        if (m == CRASHFS_KEEP)
            keep = total;
        else if (m == CRASHFS_PREFIX || m == CRASHFS_TORN)
            keep = (size_t)cn_prng_below(&c->prng, total + 1);
        size_t seen = 0, rest = 0;
        for (size_t i = 0; i < c->dop_count; i++) {
            if (strcmp(c->dops[i].dir, dir) != 0) {
                c->dops[rest++] = c->dops[i];
                continue;
            }
            if (seen++ < keep)
                dop_apply(&c->dur, &c->dops[i]);
            dop_free(&c->dops[i]);
        }
        c->dop_count = rest;
        free(dir);
    }
    /* Entries whose directory did not survive are unreachable. */
    int removed;
    do {
        removed = 0;
        for (size_t i = 0; i < c->dur.n; i++) {
            if (!parent_exists(&c->dur, c->dur.v[i].path)) {
                ns_del(&c->dur, c->dur.v[i].path);
                removed = 1;
                break;
            }
        }
    } while (removed);
    ns_clear(&c->cur);
    for (size_t i = 0; i < c->dur.n; i++)
        ns_set(&c->cur, c->dur.v[i].path, c->dur.v[i].ino);
}

void crashfs_reboot(struct crashfs *c, enum crashfs_mode mode, uint64_t seed)
{
    cn_prng_seed(&c->prng, seed);
    dirs_crash(c, mode);
    for (size_t i = 0; i < c->ino_count; i++)
        inode_crash(c, c->inodes[i], mode);
    c->gen++;
    c->crashed = 0;
    c->crashed_in_write = 0;
    c->crash_at = 0;
    c->fault_left = 0;
    c->fault_fired = 0;
}

/* --- public ----------------------------------------------------------- */

struct crashfs *crashfs_new(uint64_t seed)
{
    struct crashfs *c = xmalloc(sizeof(*c));
    memset(c, 0, sizeof(*c));
    cn_prng_seed(&c->prng, seed);
    c->fs.ctx = c;
    c->fs.open = fs_open;
    c->fs.close = fs_close;
    c->fs.pread = fs_pread;
    c->fs.pwrite = fs_pwrite;
    c->fs.sync = fs_sync;
    c->fs.allocate = fs_allocate;
    c->fs.truncate = fs_truncate;
    c->fs.size = fs_size;
    c->fs.rename = fs_rename;
    c->fs.unlink = fs_unlink;
    c->fs.mkdir = fs_mkdir;
    c->fs.sync_dir = fs_sync_dir;
    c->fs.list = fs_list;
    c->fs.stat = fs_stat;
    c->fs.lock = fs_lock;
    return c;
}

void crashfs_free(struct crashfs *c)
{
    while (c->files)
        handle_free(c, c->files);
    for (size_t i = 0; i < c->ino_count; i++) {
        struct inode *ino = c->inodes[i];
        inode_clear_ops(ino);
        free(ino->ops);
        free(ino->cur.data);
        free(ino->dur.data);
        free(ino);
    }
    free(c->inodes);
    for (size_t i = 0; i < c->dop_count; i++)
        dop_free(&c->dops[i]);
    free(c->dops);
    ns_clear(&c->cur);
    ns_clear(&c->dur);
    free(c->cur.v);
    free(c->dur.v);
    free(c);
}

const struct cn_fs *crashfs_fs(struct crashfs *c)
{
    return &c->fs;
}

long crashfs_op_count(const struct crashfs *c)
{
    return c->op_count;
}

void crashfs_crash_arm(struct crashfs *c, long nth, long bytes)
{
    c->crash_at = c->op_count + nth;
    c->crash_bytes = bytes;
}

int crashfs_crashed(const struct crashfs *c)
{
    return c->crashed;
}

int crashfs_crashed_in_write(const struct crashfs *c)
{
    return c->crashed_in_write;
}

void crashfs_fault_arm(struct crashfs *c, int kinds, long nth, int err)
{
    c->fault_kinds = kinds;
    c->fault_left = nth;
    c->fault_err = err;
    c->fault_fired = 0;
}

int crashfs_fault_disarm(struct crashfs *c)
{
    int fired = c->fault_fired;
    c->fault_left = 0;
    c->fault_fired = 0;
    return fired;
}

static struct inode *find_file(struct crashfs *c, const char *path)
{
    struct dentry *d = ns_find(&c->cur, path);
    return d != NULL && !d->ino->is_dir ? d->ino : NULL;
}

int crashfs_poke(struct crashfs *c, const char *path, uint64_t off,
                 const void *bytes, size_t n)
{
    struct inode *ino = find_file(c, path);
    if (ino == NULL)
        return CN_ENOTFOUND;
    blob_write(&ino->cur, off, bytes, n);
    blob_write(&ino->dur, off, bytes, n);
    return CN_OK;
}

int crashfs_cut(struct crashfs *c, const char *path, uint64_t size)
{
    struct inode *ino = find_file(c, path);
    if (ino == NULL)
        return CN_ENOTFOUND;
    blob_resize(&ino->cur, (size_t)size);
    blob_resize(&ino->dur, (size_t)size);
    return CN_OK;
}

int crashfs_remove(struct crashfs *c, const char *path)
{
    if (find_file(c, path) == NULL)
        return CN_ENOTFOUND;
    ns_del(&c->cur, path);
    ns_del(&c->dur, path);
    return CN_OK;
}

int crashfs_read_file(struct crashfs *c, const char *path, uint8_t **data,
                      size_t *size)
{
    struct inode *ino = find_file(c, path);
    if (ino == NULL)
        return CN_ENOTFOUND;
    *data = xmalloc(ino->cur.size);
    if (ino->cur.size)
        memcpy(*data, ino->cur.data, ino->cur.size);
    *size = ino->cur.size;
    return CN_OK;
}

long crashfs_open_handles(const struct crashfs *c)
{
    return c->open_handles;
}
