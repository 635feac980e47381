/* cn_log: formatting and the stderr sink. */
#include "cn_log.h"

#include <stdio.h>
#include <sys/time.h>
#include <time.h>

char cn_log_level_letter(int level)
{
    static const char letters[] = "DIWE";
    if (level < 0 || level > 3)
        return '?';
    return letters[level];
}

void cn_log(const struct cn_logger *l, int level, const char *module,
            const char *fmt, ...)
{
    if (l == NULL || l->fn == NULL || level < l->level)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    l->fn(l->ctx, level, module, msg);
}

void cn_log_stderr(void *ctx, int level, const char *module, const char *msg)
{
    (void)ctx;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    fprintf(stderr, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %c %s %s\n",
            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
            tm.tm_sec, (long)(tv.tv_usec / 1000), cn_log_level_letter(level),
            module, msg);
}
