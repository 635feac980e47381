/* cn_assert: the failure path of CN_ASSERT. */
#include "cn_assert.h"

#include <stdio.h>
#include <stdlib.h>

void cn_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "cairn: assertion failed: %s (%s:%d)\n", expr, file, line);
    fflush(stderr);
    abort();
}
