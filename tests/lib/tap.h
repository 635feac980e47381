/*
 * tap: the C unit-test runner. Each test file defines tests with TEST(name)
 * and links tests/lib/tap.c, which provides main(): it runs every test in
 * definition order (or those whose name contains argv[1]), prints TAP
 * ("1..N", "ok 3 - store_set_creates_key"), and exits non-zero on any
 * failure. Each test runs under a timeout (TAP_TIMEOUT_S, default 60 s).
 *
 * CHECK* record a failure and go on; REQUIRE* end the current test.
 */
#ifndef CN_TAP_H
#define CN_TAP_H

#include <inttypes.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef void tap_test_fn(void);

void tap_register(const char *name, tap_test_fn *fn);
void tap_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void tap_abort_test(void) __attribute__((noreturn));
/* Prints "# ..." diagnostics. */
void tap_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Makes a fresh directory /tmp/<prefix>-XXXXXX, its path copied into dir
 * (cap bytes); ends the test if it cannot. The directory and everything in
 * it are removed when the current test ends, passed or failed (a REQUIRE
 * included), by the process that made it. A failed test's directories are
 * kept, their paths printed, when CAIRN_KEEP_LOGS is set; a test that
 * times out names them in its "not ok" line. */
void tap_tmpdir(char *dir, size_t cap, const char *prefix);

#define TEST(name)                                                             \
    static void name(void);                                                    \
    __attribute__((constructor)) static void tap_reg_##name(void)              \
    {                                                                          \
        tap_register(#name, name);                                             \
    }                                                                          \
    static void name(void)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            tap_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);                  \
    } while (0)

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            tap_fail(__FILE__, __LINE__, "REQUIRE(%s)", #cond);                \
            tap_abort_test();                                                  \
        }                                                                      \
    } while (0)

#define CHECK_EQ(a, b)                                                         \
    do {                                                                       \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);            \
        if (tap_a_ != tap_b_)                                                  \
            tap_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,     \
                     tap_a_, tap_b_);                                          \
    } while (0)

#define REQUIRE_EQ(a, b)                                                       \
    do {                                                                       \
        long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);            \
        if (tap_a_ != tap_b_) {                                                \
            tap_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,     \
                     tap_a_, tap_b_);                                          \
            tap_abort_test();                                                  \
        }                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                        \
    do {                                                                       \
        const char *tap_a_ = (a), *tap_b_ = (b);                               \
        if (tap_a_ == NULL || tap_b_ == NULL || strcmp(tap_a_, tap_b_) != 0)   \
            tap_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                     tap_a_ ? tap_a_ : "(null)", tap_b_ ? tap_b_ : "(null)");  \
    } while (0)

#define CHECK_MEM(a, b, n)                                                     \
    do {                                                                       \
        if (memcmp((a), (b), (n)) != 0)                                        \
            tap_fail(__FILE__, __LINE__, "%s == %s (%zu bytes)", #a, #b,       \
                     (size_t)(n));                                             \
    } while (0)

#endif
