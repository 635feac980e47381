/*
 * cn_fs: the file-system seam. Everything the WAL and snapshots do to disk
 * goes through a struct cn_fs, a table of operations plus a context, so that
 * the same code runs on the real file system (cn_fs_posix) and on the
 * crash-simulating one used by tests (tests/lib/crashfs.h).
 *
 * Contract of every operation:
 * - returns 0 or a negative CN_E* code; errno never escapes (it is converted
 *   once, inside the implementation, right after the failing call);
 * - errmsg, when not NULL, points at CN_ERRMSG_SIZE bytes that receive a
 *   one-line description on failure ("open /d/x.wal: No such file or
 *   directory"); it is left untouched on success;
 * - paths are borrowed during the call.
 *
 * Durability model (what callers may rely on, and all crashfs guarantees):
 * - pwrite, allocate and truncate change the file at once for readers, but
 *   may be lost or torn (any subset of 512-byte sectors) at a crash until a
 *   sync of that file returns;
 * - creating, renaming and unlinking a directory entry may be lost at a
 *   crash until sync_dir of the parent directory returns;
 * - rename within one directory is atomic: after a crash the name refers to
 *   the old file or the new one.
 *
 * Threading: cn_fs_posix keeps no state, so its operations may be called from
 * several threads at once (each struct cn_fs_file by one thread at a time).
 * crashfs is single-threaded. Handles are closed with close, which always
 * releases the handle, even when it reports an error.
 */
#ifndef CN_FS_H
#define CN_FS_H

#include <stddef.h>
#include <stdint.h>

/* An open file; owned by the implementation, released by close. */
struct cn_fs_file;

/* Flags of open. */
enum {
    CN_FS_RDONLY = 0,      /* read only */
    CN_FS_RDWR = 1 << 0,   /* read and write */
    CN_FS_CREATE = 1 << 1, /* create if missing (with RDWR) */
    CN_FS_EXCL = 1 << 2,   /* with CREATE: CN_EEXIST if it exists */
    CN_FS_TRUNC = 1 << 3,  /* with RDWR: truncate to 0 bytes */
};

/* Sector size of the crash model: the unit a crash may tear. */
#define CN_FS_SECTOR_BYTES 512u

struct cn_fs {
    void *ctx; /* kept by the implementation; passed to every operation */

    /* Opens path. *out is set on success and owned by the caller until
     * close. CN_ENOTFOUND if missing (without CREATE), CN_EEXIST (EXCL),
     * CN_EACCES, CN_EIO. */
    int (*open)(void *ctx, const char *path, int flags, struct cn_fs_file **out,
                char *errmsg);
    /* Releases f (always, even on error). */
    int (*close)(void *ctx, struct cn_fs_file *f, char *errmsg);
    /* Reads up to n bytes at off; *nread < n only at end of file. */
    int (*pread)(void *ctx, struct cn_fs_file *f, void *buf, size_t n,
                 uint64_t off, size_t *nread, char *errmsg);
    /* Writes all n bytes at off (extending the file as needed) or fails:
     * CN_EIO, CN_ENOSPC. After a failure the bytes at [off, off+n) are
     * unspecified. */
    int (*pwrite)(void *ctx, struct cn_fs_file *f, const void *buf, size_t n,
                  uint64_t off, char *errmsg);
    /* Makes f's data durable (data_only: fdatasync; else fsync). */
    int (*sync)(void *ctx, struct cn_fs_file *f, int data_only, char *errmsg);
    /* Reserves blocks for [off, off+len); extends the size to off+len if it
     * is smaller; new bytes read as zeros. CN_ENOSPC. */
    int (*allocate)(void *ctx, struct cn_fs_file *f, uint64_t off, uint64_t len,
                    char *errmsg);
    /* Sets the size; bytes past the old end read as zeros. */
    int (*truncate)(void *ctx, struct cn_fs_file *f, uint64_t size,
                    char *errmsg);
    /* Current size in bytes. */
    int (*size)(void *ctx, struct cn_fs_file *f, uint64_t *size, char *errmsg);
    /* Atomically renames within one directory (replacing to). */
    int (*rename)(void *ctx, const char *from, const char *to, char *errmsg);
    /* Removes a file. CN_ENOTFOUND if missing. */
    int (*unlink)(void *ctx, const char *path, char *errmsg);
    /* Creates a directory. CN_EEXIST if it exists. */
    int (*mkdir)(void *ctx, const char *path, char *errmsg);
    /* Makes the entries of directory path (creates, renames, unlinks)
     * durable. */
    int (*sync_dir)(void *ctx, const char *path, char *errmsg);
    /* Names in directory path, without "." and "..", in no particular
     * order. On success *names (count strings) belongs to the caller, freed
     * with cn_fs_names_free. CN_ENOTFOUND if path is missing, CN_ENOMEM. */
    int (*list)(void *ctx, const char *path, char ***names, size_t *count,
                char *errmsg);
    /* Kind of path: *is_dir is 1 for a directory. CN_ENOTFOUND if missing. */
    int (*stat)(void *ctx, const char *path, int *is_dir, char *errmsg);
    /* Creates path if needed and takes an exclusive advisory lock on it
     * without waiting. *out (released, with the lock, by close) is set on
     * success. CN_ELOCKED if another open handle holds it, even in the same
     * process. */
    int (*lock)(void *ctx, const char *path, struct cn_fs_file **out,
                char *errmsg);
    /* Optional (NULL: not offered, callers pread instead): maps the first
     * n bytes of f read-only and reads them in, so that reading them later
     * cannot fail; *out is released with cn_fs_unmap(*out, n). CN_EIO
     * (also when a page cannot be read), CN_ENOMEM. */
    int (*map)(void *ctx, struct cn_fs_file *f, size_t n, void **out,
               char *errmsg);
};

/* Releases a mapping made by a cn_fs's map (n as given to map). */
void cn_fs_unmap(void *p, size_t n);

/* The real file system (POSIX calls; Linux fallocate when present).
 * The returned table is static, constant and shared; ctx is unused. */
const struct cn_fs *cn_fs_posix(void);

/* Frees a list returned by cn_fs.list (names may be NULL if count is 0). */
void cn_fs_names_free(char **names, size_t count);

/* Convenience wrappers: fs->op(fs->ctx, ...). */
#define CN_FS_CALL(fs, op, ...) ((fs)->op((fs)->ctx, __VA_ARGS__))

#endif
