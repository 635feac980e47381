/* cn_buf: growable owned byte buffers; cn_slice helpers. */
#include "cn_buf.h"

#include <stdio.h>
#include <string.h>

#include "cn_err.h"
#include "cn_mem.h"

struct cn_slice cn_slice_from_cstr(const char *s)
{
    struct cn_slice sl = {s, s ? strlen(s) : 0};
    return sl;
}

int cn_slice_eq(struct cn_slice a, struct cn_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

int cn_slice_eq_cstr(struct cn_slice a, const char *s)
{
    return cn_slice_eq(a, cn_slice_from_cstr(s));
}

void cn_buf_init(struct cn_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void cn_buf_close(struct cn_buf *b)
{
    cn_free(b->data);
    cn_buf_init(b);
}

int cn_buf_reserve(struct cn_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return CN_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = cn_realloc(b->data, cap);
    if (p == NULL)
        return CN_ENOMEM;
    b->data = p;
    b->cap = cap;
    return CN_OK;
}

int cn_buf_append(struct cn_buf *b, const void *p, size_t n)
{
    int rc = cn_buf_reserve(b, n);
    if (rc != CN_OK)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return CN_OK;
}

int cn_buf_append_cstr(struct cn_buf *b, const char *s)
{
    return cn_buf_append(b, s, strlen(s));
}

int cn_buf_append_char(struct cn_buf *b, char c)
{
    return cn_buf_append(b, &c, 1);
}

int cn_buf_append_u64(struct cn_buf *b, uint64_t v)
{
    char tmp[24];
    int i = (int)sizeof(tmp);
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return cn_buf_append(b, tmp + i, sizeof(tmp) - (size_t)i);
}

int cn_buf_vprintf(struct cn_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return CN_EINVAL;
    if ((size_t)n < sizeof(small))
        return cn_buf_append(b, small, (size_t)n);
    int rc = cn_buf_reserve(b, (size_t)n);
    if (rc != CN_OK)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return CN_OK;
}

int cn_buf_printf(struct cn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = cn_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void cn_buf_reset(struct cn_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *cn_buf_take(struct cn_buf *b, size_t *len_out)
{
    char *p = b->data;
    if (len_out)
        *len_out = b->len;
    cn_buf_init(b);
    return p;
}
