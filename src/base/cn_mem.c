/* cn_mem: allocation wrappers with a fault-injection counter. */
#include "cn_mem.h"

#include <stdlib.h>
#include <string.h>

/* Process-wide test seam: only tests arm it. Not thread-safe by design;
 * cairn's cores are single-threaded. */
static long fault_countdown; /* 0: disarmed; k: fail when it reaches 1 */
static int fault_persist;
static int fault_tripped;
static long fault_failed;
static long alloc_count;

static int should_fail(void)
{
    alloc_count++;
    if (fault_tripped && fault_persist) {
        fault_failed++;
        return 1;
    }
    if (fault_countdown > 0) {
        if (--fault_countdown == 0) {
            fault_tripped = 1;
            fault_failed++;
            return 1;
        }
    }
    return 0;
}

void *cn_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *cn_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    if (count == 0 || size == 0)
        return calloc(1, 1);
    return calloc(count, size);
}

void *cn_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

void cn_free(void *p)
{
    free(p);
}

char *cn_strndup(const char *s, size_t n)
{
    char *d = cn_malloc(n + 1);
    if (d == NULL)
        return NULL;
    if (n)
        memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *cn_strdup(const char *s)
{
    return cn_strndup(s, strlen(s));
}

void cn_mem_fault_arm(long n, int persist)
{
    fault_countdown = n;
    fault_persist = persist;
    fault_tripped = 0;
    fault_failed = 0;
}

long cn_mem_fault_disarm(void)
{
    long failed = fault_failed;
    fault_countdown = 0;
    fault_persist = 0;
    fault_tripped = 0;
    fault_failed = 0;
    return failed;
}

long cn_mem_alloc_count(void)
{
    return alloc_count;
}

#if defined(__GLIBC__)
#include <limits.h>
#include <malloc.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels: EINVAL */
#endif

/* glibc's defaults (malloc/malloc.c), restored by cn_mem_prefault_end. */
#define GLIBC_TOP_PAD (128 * 1024)
#define GLIBC_TRIM_THRESHOLD (128 * 1024)

static int prefault_on;

size_t cn_mem_prefault_begin(size_t bytes)
{
    size_t done = 0;
    if (prefault_on || bytes < ((size_t)64 << 20))
        return 0;
    int pad = bytes > (size_t)INT_MAX / 2 ? INT_MAX / 2 : (int)bytes;
    if (mallopt(M_TRIM_THRESHOLD, INT_MAX) != 1 || mallopt(M_TOP_PAD, pad) != 1)
        goto out;
    prefault_on = 1;
    /* The heap grows (by the pad) only when its free top is too short:
     * take 64 KiB blocks, below the mmap threshold, until it does. */
    char *before = sbrk(0), *after = before;
    void *blocks[256];
    int n = 0;
    while (n < 256 && after == before) {
        if ((blocks[n] = malloc(64 * 1024)) == NULL)
            break;
        n++;
        after = sbrk(0);
    }
    while (n > 0)
        free(blocks[--n]);
    if (after > before) {
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = ((uintptr_t)before + page - 1) & ~(page - 1);
        uintptr_t hi = (uintptr_t)after & ~(page - 1);
        /* Huge pages where the kernel allows them (THP "madvise" or
         * "always"): 512 times fewer pages to map in, and to first-touch,
         * which costs a hypervisor exit per page on some VMs. 400 MiB took
         * 1.9 s with 4 KiB pages and 0.03 s with 2 MiB ones here. No THP:
         * EINVAL, ignored, 4 KiB pages as before. */
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
        if (hi > lo && madvise((void *)lo, hi - lo, MADV_POPULATE_WRITE) == 0)
            done = hi - lo;
    }
out:
    mallopt(M_TOP_PAD, GLIBC_TOP_PAD);
    if (!prefault_on)
        mallopt(M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD);
    return done;
}

void cn_mem_prefault_end(void)
{
    if (!prefault_on)
        return;
    prefault_on = 0;
    mallopt(M_TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD);
}
#else
size_t cn_mem_prefault_begin(size_t bytes)
{
    (void)bytes;
    return 0;
}

void cn_mem_prefault_end(void)
{
}
#endif
