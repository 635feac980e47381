/*
 * cn_mem: every allocation in cairn goes through these functions, the seam
 * where tests inject allocation failures (fail the Nth call, as SQLite's
 * test_malloc does).
 *
 * Invariant: with no fault armed they behave exactly like malloc and friends.
 * cn_malloc(0) returns a unique non-NULL pointer.
 */
#ifndef CN_MEM_H
#define CN_MEM_H

#include <stddef.h>

/* Returns NULL on failure (real or injected). Caller frees with cn_free. */
void *cn_malloc(size_t n);
void *cn_calloc(size_t count, size_t size);
/* On failure returns NULL and leaves p untouched and still owned by caller. */
void *cn_realloc(void *p, size_t n);
void cn_free(void *p);
/* Copy of s (NUL-terminated) / of n bytes plus a NUL. Caller frees. */
char *cn_strdup(const char *s);
char *cn_strndup(const char *s, size_t n);

/* Fault injection (tests only; no effect unless armed).
 * cn_mem_fault_arm(n): the nth allocation from now (1-based) fails, and,
 * if persist is non-zero, every allocation after it too.
 * cn_mem_fault_disarm(): stop failing. Returns how many calls failed.
 * cn_mem_alloc_count(): allocations attempted since process start. */
/* Bulk loads: cn_mem_prefault_begin(bytes) grows the allocator's heap by
 * about bytes at once and maps its pages in one call, and keeps it from
 * giving them back, so that the many small allocations that follow (a
 * million-key snapshot) do not each take page faults, the larger part of a
 * restart on virtual machines where a first touch costs tens of
 * microseconds per page. The range is advised for transparent huge pages
 * (2 MiB) first, where the kernel allows them. cn_mem_prefault_end()
 * restores the allocator's settings; what was not used is returned to the
 * kernel later, as usual. Best effort: returns how many bytes were mapped in, 0
 * when nothing was done (less than 64 MiB asked, or an allocator other than
 * glibc's: sanitizers, valgrind). */
size_t cn_mem_prefault_begin(size_t bytes);
void cn_mem_prefault_end(void);
void cn_mem_fault_arm(long n, int persist);
long cn_mem_fault_disarm(void);
long cn_mem_alloc_count(void);

#endif
