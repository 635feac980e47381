/*
 * CN_ASSERT: stays on in release builds. Guards only what cairn's own code
 * guarantees; input from clients, peers and files is validated, never
 * asserted.
 */
#ifndef CN_ASSERT_H
#define CN_ASSERT_H

void cn_assert_fail(const char *expr, const char *file, int line)
    __attribute__((noreturn));

#define CN_ASSERT(expr)                                                        \
    ((expr) ? (void)0 : cn_assert_fail(#expr, __FILE__, __LINE__))

#define CN_UNUSED(x) ((void)(x))

#endif
