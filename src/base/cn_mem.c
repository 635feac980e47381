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
