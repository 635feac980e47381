/* tap: registry and main() for C unit tests; see tap.h. */
#include "tap.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TAP_TESTS_MAX 4096

struct tap_case {
    const char *name;
    tap_test_fn *fn;
};

static struct tap_case cases[TAP_TESTS_MAX];
static int case_count;
static int current_failed;
static const char *current_name;
static jmp_buf current_jmp;

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

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "not ok - test timed out\n";
    ssize_t w = write(1, msg, sizeof(msg) - 1);
    (void)w;
    _exit(3);
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
        printf("%sok %d - %s\n", current_failed ? "not " : "", n,
               cases[i].name);
        fflush(stdout);
        if (current_failed)
            failed++;
    }
    return failed ? 1 : 0;
}
