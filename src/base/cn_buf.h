/*
 * cn_slice and cn_buf: byte ranges.
 *
 * struct cn_slice {base, len} never owns its bytes. struct cn_buf owns a
 * growable heap block; its data is always NUL-terminated (one spare byte
 * beyond len) so it can be handed to C string functions.
 */
#ifndef CN_BUF_H
#define CN_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct cn_slice {
    const char *base; /* borrowed */
    size_t len;       /* bytes */
};

#define CN_SLICE_LIT(s) ((struct cn_slice){(s), sizeof(s) - 1})

struct cn_slice cn_slice_from_cstr(const char *s);
/* 1 if the slices hold the same bytes. */
int cn_slice_eq(struct cn_slice a, struct cn_slice b);
int cn_slice_eq_cstr(struct cn_slice a, const char *s);

struct cn_buf {
    char *data; /* owned; NUL-terminated when cap > 0 */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

/* Zero-initialised struct cn_buf is a valid empty buffer. */
void cn_buf_init(struct cn_buf *b);
/* Frees the block; b is empty afterwards and may be reused. */
void cn_buf_close(struct cn_buf *b);
/* Ensure room for extra more bytes (+ NUL). CN_ENOMEM leaves b unchanged. */
int cn_buf_reserve(struct cn_buf *b, size_t extra);
/* Append; each returns 0 or CN_ENOMEM (b unchanged on failure). */
int cn_buf_append(struct cn_buf *b, const void *p, size_t n);
int cn_buf_append_cstr(struct cn_buf *b, const char *s);
int cn_buf_append_char(struct cn_buf *b, char c);
int cn_buf_append_u64(struct cn_buf *b, uint64_t v);
int cn_buf_printf(struct cn_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int cn_buf_vprintf(struct cn_buf *b, const char *fmt, va_list ap);
/* len = 0, keeps the allocation. */
void cn_buf_reset(struct cn_buf *b);
/* Hands the block to the caller (who frees it with cn_free); b becomes
 * empty. May return NULL for an empty never-allocated buffer. */
char *cn_buf_take(struct cn_buf *b, size_t *len_out);

#endif
