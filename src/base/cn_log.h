/*
 * cn_logger: how cores report events without doing I/O themselves.
 *
 * A core holds a struct cn_logger and calls CN_LOG(l, level, module, fmt...).
 * The default (zeroed) logger drops everything. The driver installs
 * cn_log_stderr. Lines read: time, level letter, module, message with
 * key=value fields.
 */
#ifndef CN_LOG_H
#define CN_LOG_H

#include <stdarg.h>

enum cn_log_level {
    CN_LOG_DEBUG = 0,
    CN_LOG_INFO = 1,
    CN_LOG_WARN = 2,
    CN_LOG_ERROR = 3,
    CN_LOG_OFF = 4,
};

typedef void cn_log_fn(void *ctx, int level, const char *module,
                       const char *msg);

struct cn_logger {
    cn_log_fn *fn; /* NULL: drop everything */
    void *ctx;     /* borrowed; passed to fn */
    int level;     /* lowest level that is formatted */
};

/* Formats and forwards a line if l->fn is set and level >= l->level. */
void cn_log(const struct cn_logger *l, int level, const char *module,
            const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define CN_LOG(l, lvl_, module, ...)                                           \
    do {                                                                       \
        if ((l) != NULL && (l)->fn != NULL && (lvl_) >= (l)->level)            \
            cn_log((l), (lvl_), (module), __VA_ARGS__);                        \
    } while (0)

/* A cn_log_fn writing "2026-01-02T03:04:05.678Z I module msg" to stderr. */
void cn_log_stderr(void *ctx, int level, const char *module, const char *msg);

/* 'D', 'I', 'W', 'E'. */
char cn_log_level_letter(int level);

#endif
