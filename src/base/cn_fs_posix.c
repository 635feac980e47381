/*
 * cn_fs_posix: struct cn_fs over POSIX calls. Stateless; errno is turned
 * into a CN_E* code once, right after the call that failed, and described in
 * errmsg with the path and strerror text.
 */
#include "cn_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cn_err.h"
#include "cn_mem.h"

struct cn_fs_file {
    int fd;
};

static int fail_errno(int errnum, char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Converts errnum and fills errmsg with "<what>: <strerror>". */
static int fail_errno(int errnum, char *errmsg, const char *fmt, ...)
{
    if (errmsg != NULL) {
        char text[128];
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(errmsg, CN_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
        const char *s = strerror_r(errnum, text, sizeof(text));
        if (n >= 0 && (size_t)n < CN_ERRMSG_SIZE)
            snprintf(errmsg + n, CN_ERRMSG_SIZE - (size_t)n, ": %s", s);
    }
    return cn_err_from_errno(errnum);
}

static int posix_open(void *ctx, const char *path, int flags,
                      struct cn_fs_file **out, char *errmsg)
{
    int oflags = O_CLOEXEC;
    oflags |= (flags & CN_FS_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & CN_FS_CREATE)
        oflags |= O_CREAT;
    if (flags & CN_FS_EXCL)
        oflags |= O_EXCL;
    if (flags & CN_FS_TRUNC)
        oflags |= O_TRUNC;
    struct cn_fs_file *f = cn_malloc(sizeof(*f));
    if (f == NULL) {
        if (errmsg != NULL)
            snprintf(errmsg, CN_ERRMSG_SIZE, "open %s: out of memory", path);
        return CN_ENOMEM;
    }
    int fd;
    do
        fd = open(path, oflags, 0644);
    while (fd < 0 && errno == EINTR);
    if (fd < 0) {
        int rc = fail_errno(errno, errmsg, "open %s", path);
        cn_free(f);
        return rc;
    }
    f->fd = fd;
    *out = f;
    return CN_OK;
}

static int posix_close(void *ctx, struct cn_fs_file *f, char *errmsg)
{
    int rc = CN_OK;
    /* Linux always releases the descriptor, even when close fails: never
     * retry (it could close a descriptor another thread just opened). */
    if (close(f->fd) != 0 && errno != EINTR)
        rc = fail_errno(errno, errmsg, "close fd %d", f->fd);
    cn_free(f);
    return rc;
}

static int posix_pread(void *ctx, struct cn_fs_file *f, void *buf, size_t n,
                       uint64_t off, size_t *nread, char *errmsg)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r =
            pread(f->fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno(errno, errmsg, "pread %zu bytes at %llu", n,
                              (unsigned long long)off);
        }
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *nread = done;
    return CN_OK;
}

static int posix_pwrite(void *ctx, struct cn_fs_file *f, const void *buf,
                        size_t n, uint64_t off, char *errmsg)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(f->fd, (const char *)buf + done, n - done,
                           (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return fail_errno(errno, errmsg, "pwrite %zu bytes at %llu", n,
                              (unsigned long long)off);
        }
        done += (size_t)r;
    }
    return CN_OK;
}

static int posix_sync(void *ctx, struct cn_fs_file *f, int data_only,
                      char *errmsg)
{
    /* No EINTR retry: after a failed fsync the page cache may have dropped
     * the dirty pages, so a retry could falsely succeed. */
    int r = data_only ? fdatasync(f->fd) : fsync(f->fd);
    if (r != 0)
        return fail_errno(errno, errmsg, "%s",
                          data_only ? "fdatasync" : "fsync");
    return CN_OK;
}

static int posix_allocate(void *ctx, struct cn_fs_file *f, uint64_t off,
                          uint64_t len, char *errmsg)
{
    int r = posix_fallocate(f->fd, (off_t)off, (off_t)len);
    if (r == EOPNOTSUPP || r == EINVAL) {
        /* File systems without fallocate: extend the size at least. */
        struct stat st;
        if (fstat(f->fd, &st) != 0)
            return fail_errno(errno, errmsg, "fstat");
        if ((uint64_t)st.st_size < off + len &&
            ftruncate(f->fd, (off_t)(off + len)) != 0)
            return fail_errno(errno, errmsg, "ftruncate %llu",
                              (unsigned long long)(off + len));
        return CN_OK;
    }
    if (r != 0)
        return fail_errno(r, errmsg, "fallocate %llu bytes at %llu",
                          (unsigned long long)len, (unsigned long long)off);
    return CN_OK;
}

static int posix_truncate(void *ctx, struct cn_fs_file *f, uint64_t size,
                          char *errmsg)
{
    if (ftruncate(f->fd, (off_t)size) != 0)
        return fail_errno(errno, errmsg, "ftruncate %llu",
                          (unsigned long long)size);
    return CN_OK;
}

static int posix_size(void *ctx, struct cn_fs_file *f, uint64_t *size,
                      char *errmsg)
{
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return fail_errno(errno, errmsg, "fstat");
    *size = (uint64_t)st.st_size;
    return CN_OK;
}

static int posix_rename(void *ctx, const char *from, const char *to,
                        char *errmsg)
{
    if (rename(from, to) != 0)
        return fail_errno(errno, errmsg, "rename %s to %s", from, to);
    return CN_OK;
}

static int posix_unlink(void *ctx, const char *path, char *errmsg)
{
    if (unlink(path) != 0)
        return fail_errno(errno, errmsg, "unlink %s", path);
    return CN_OK;
}

static int posix_mkdir(void *ctx, const char *path, char *errmsg)
{
    if (mkdir(path, 0700) != 0)
        return fail_errno(errno, errmsg, "mkdir %s", path);
    return CN_OK;
}

static int posix_sync_dir(void *ctx, const char *path, char *errmsg)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return fail_errno(errno, errmsg, "open dir %s", path);
    int rc = CN_OK;
    if (fsync(fd) != 0)
        rc = fail_errno(errno, errmsg, "fsync dir %s", path);
    close(fd);
    return rc;
}

void cn_fs_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cn_free(names[i]);
    cn_free(names);
}

static int posix_list(void *ctx, const char *path, char ***names_out,
                      size_t *count_out, char *errmsg)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return fail_errno(errno, errmsg, "opendir %s", path);
    char **names = NULL;
    size_t count = 0, cap = 0;
    int rc = CN_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                rc = fail_errno(errno, errmsg, "readdir %s", path);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char **p = cn_realloc(names, ncap * sizeof(*p));
            if (p == NULL) {
                rc = CN_ENOMEM;
                break;
            }
            names = p;
            cap = ncap;
        }
        names[count] = cn_strdup(e->d_name);
        if (names[count] == NULL) {
            rc = CN_ENOMEM;
            break;
        }
        count++;
    }
    closedir(d);
    if (rc != CN_OK) {
        if (rc == CN_ENOMEM && errmsg != NULL)
            snprintf(errmsg, CN_ERRMSG_SIZE, "list %s: out of memory", path);
        cn_fs_names_free(names, count);
        return rc;
    }
    *names_out = names;
    *count_out = count;
    return CN_OK;
}

static int posix_stat(void *ctx, const char *path, int *is_dir, char *errmsg)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fail_errno(errno, errmsg, "stat %s", path);
    *is_dir = S_ISDIR(st.st_mode) ? 1 : 0;
    return CN_OK;
}

static int posix_lock(void *ctx, const char *path, struct cn_fs_file **out,
                      char *errmsg)
{
    struct cn_fs_file *f;
    int rc = posix_open(ctx, path, CN_FS_RDWR | CN_FS_CREATE, &f, errmsg);
    if (rc != CN_OK)
        return rc;
    if (flock(f->fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            rc = CN_ELOCKED;
            if (errmsg != NULL)
                snprintf(errmsg, CN_ERRMSG_SIZE,
                         "lock %s: held by another process", path);
        } else {
            rc = fail_errno(e, errmsg, "flock %s", path);
        }
        posix_close(ctx, f, NULL);
        return rc;
    }
    *out = f;
    return CN_OK;
}

/* A snapshot of hundreds of MB is mapped from the page cache rather than
 * copied into fresh memory, whose first touch is most of a restart's time
 * on some machines. MADV_POPULATE_READ reads every page in now and reports
 * a failure as an error, instead of a SIGBUS at first access. */
static int posix_map(void *ctx, struct cn_fs_file *f, size_t n, void **out,
                     char *errmsg)
{
    if (n == 0) {
        *out = NULL;
        return CN_OK;
    }
    void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, f->fd, 0);
    if (p == MAP_FAILED)
        return fail_errno(errno, errmsg, "mmap %zu bytes", n);
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels: EINVAL */
#endif
    if (madvise(p, n, MADV_POPULATE_READ) != 0) {
        int e = errno;
        munmap(p, n);
        return fail_errno(e, errmsg, "reading %zu mapped bytes in", n);
    }
    *out = p;
    return CN_OK;
}

void cn_fs_unmap(void *p, size_t n)
{
    if (p != NULL && n > 0)
        munmap(p, n);
}

static const struct cn_fs posix_fs = {
    .ctx = NULL,
    .open = posix_open,
    .close = posix_close,
    .pread = posix_pread,
    .pwrite = posix_pwrite,
    .sync = posix_sync,
    .allocate = posix_allocate,
    .truncate = posix_truncate,
    .size = posix_size,
    .rename = posix_rename,
    .unlink = posix_unlink,
    .mkdir = posix_mkdir,
    .sync_dir = posix_sync_dir,
    .list = posix_list,
    .stat = posix_stat,
    .lock = posix_lock,
    .map = posix_map,
};

const struct cn_fs *cn_fs_posix(void)
{
    return &posix_fs;
}
