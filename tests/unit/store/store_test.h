/*
 * Helpers shared by the store unit tests: command builders and a runner
 * that applies a command and keeps the answer.
 */
#ifndef CN_STORE_TEST_H
#define CN_STORE_TEST_H

#include <stdio.h>
#include <string.h>

#include "base/base.h"
#include "store/store.h"
#include "tap.h"

/* 2026-01-01T00:00:00Z in unix ns: a fixed "now" for tests. */
#define T0 (1767225600LL * 1000000000LL)
#define SEC (1000000000LL)

static inline struct store *st_new(void)
{
    struct store *s = NULL;
    REQUIRE_EQ(store_new(&s, NULL), CN_OK);
    return s;
}

static inline struct store_cmd st_cmd(int method, const char *path)
{
    struct store_cmd c;
    memset(&c, 0, sizeof(c));
    c.method = method;
    c.path = cn_slice_from_cstr(path);
    c.value = cn_slice_from_cstr("");
    c.prev_value = cn_slice_from_cstr("");
    c.prev_exist = -1;
    c.now_ns = T0;
    return c;
}

static inline struct store_cmd st_put(const char *path, const char *value)
{
    struct store_cmd c = st_cmd(STORE_CMD_PUT, path);
    c.value = cn_slice_from_cstr(value);
    return c;
}

/* The last answer of st_run, kept for CHECKs. */
static struct store_result st_res;

/* Applies c; returns the store call's code. The answer is in st_res. */
static inline int st_run(struct store *s, struct store_cmd c)
{
    store_result_close(&st_res);
    memset(&st_res, 0, sizeof(st_res));
    return store_apply(s, &c, &st_res);
}

static inline const char *st_body(void)
{
    return st_res.body.data ? st_res.body.data : "";
}

static inline int st_get(struct store *s, const char *path, int recursive,
                         int sorted, int64_t now)
{
    store_result_close(&st_res);
    memset(&st_res, 0, sizeof(st_res));
    return store_get(s, cn_slice_from_cstr(path), recursive, sorted, now,
                     &st_res);
}

static inline void st_done(struct store *s)
{
    store_result_close(&st_res);
    memset(&st_res, 0, sizeof(st_res));
    store_free(s);
}

#define CHECK_BODY(s) CHECK_STR(st_body(), (s))

#endif
