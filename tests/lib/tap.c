/* tap: registry and main() for C unit tests; see tap.h. */
#include "tap.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TAP_TESTS_MAX 4096
#define TAP_TMPDIRS_MAX 16
#define TAP_TMPDIR_CAP 256

struct tap_case {
    const char *name;
    tap_test_fn *fn;
};

static struct tap_case cases[TAP_TESTS_MAX];
static int case_count;
static int current_failed;
static const char *current_name;
static jmp_buf current_jmp;

/* The current test's directories from tap_tmpdir(), and who made them. */
static char tmpdirs[TAP_TMPDIRS_MAX][TAP_TMPDIR_CAP];
static int tmpdir_count;
static pid_t tmpdir_owner;

void tap_register(const char *name, tap_test_fn *fn)
{
    if (case_count >= TAP_TESTS_MAX) {
        fprintf(stderr, "tap: too many tests\n");
        exit(2);
    }
    cases[case_count].name = name;
    cases[case_count].fn = fn;
    case_count++;
}

void tap_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    current_failed = 1;
    printf("# %s: %s:%d: ", current_name ? current_name : "?", file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

void tap_diag(const char *fmt, ...)
{
    va_list ap;
    printf("# ");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

void tap_abort_test(void)
{
    longjmp(current_jmp, 1);
}

void tap_tmpdir(char *dir, size_t cap, const char *prefix)
{
    char path[TAP_TMPDIR_CAP];
    int n = snprintf(path, sizeof(path), "/tmp/%s-XXXXXX", prefix);
    if (n < 0 || (size_t)n >= sizeof(path) || (size_t)n >= cap ||
        tmpdir_count == TAP_TMPDIRS_MAX) {
        tap_fail(__FILE__, __LINE__, "tap_tmpdir: no room for /tmp/%s-*",
                 prefix);
        tap_abort_test();
    }
    if (mkdtemp(path) == NULL) {
        tap_fail(__FILE__, __LINE__, "mkdtemp %s: %s", path, strerror(errno));
        tap_abort_test();
    }
    memcpy(tmpdirs[tmpdir_count++], path, (size_t)n + 1);
    tmpdir_owner = getpid();
    memcpy(dir, path, (size_t)n + 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        printf("# could not remove %s: %s\n", path, strerror(errno));
    return 0;
}

/* At the end of a test: its directories go (a child forked by the test
 * leaves them to the test's own process). */
static void tmpdirs_end(int failed)
{
    int keep = failed && getenv("CAIRN_KEEP_LOGS") != NULL;
    for (int i = 0; i < tmpdir_count && getpid() == tmpdir_owner; i++) {
        if (keep)
            printf("# kept %s\n", tmpdirs[i]);
        else if (access(tmpdirs[i], F_OK) == 0)
            nftw(tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
    tmpdir_count = 0;
}

static void write_str(const char *s)
{
    ssize_t w = write(1, s, strlen(s));
    (void)w;
}

/* Names the directories a test that dies leaves behind. */
static void write_left(void)
{
    for (int i = 0; i < tmpdir_count && getpid() == tmpdir_owner; i++) {
        write_str("# left ");
        write_str(tmpdirs[i]);
        write_str("\n");
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    write_str("not ok - test timed out\n");
    write_left();
    _exit(3);
}

/* abort(): a failed assertion, or a sanitizer with abort_on_error. */
static void on_abort(int sig)
{
    write_left();
    signal(sig, SIG_DFL);
    raise(sig);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    const char *t = getenv("TAP_TIMEOUT_S");
    unsigned timeout_s = t ? (unsigned)atoi(t) : 60;
    int selected = 0;
    volatile int failed = 0;

    for (int i = 0; i < case_count; i++)
        if (!filter || strstr(cases[i].name, filter))
            selected++;
    printf("1..%d\n", selected);
    fflush(stdout);
    signal(SIGALRM, on_alarm);
    signal(SIGABRT, on_abort);
    signal(SIGPIPE, SIG_IGN);
    volatile int n = 0;
    for (int i = 0; i < case_count; i++) {
        if (filter && !strstr(cases[i].name, filter))
            continue;
        n++;
        current_failed = 0;
        current_name = cases[i].name;
        alarm(timeout_s);
        if (setjmp(current_jmp) == 0)
            cases[i].fn();
        alarm(0);
        tmpdirs_end(current_failed);
        printf("%sok %d - %s\n", current_failed ? "not " : "", n,
               cases[i].name);
        fflush(stdout);
        if (current_failed)
            failed++;
    }
    return failed ? 1 : 0;
}
