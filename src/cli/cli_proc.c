/*
 * cli_proc: the process side of cairnctl: monotonic clock, termination
 * signals (the handler only records the signal number, the one piece of
 * global state), child processes run in their own process group so that
 * stopping one stops everything it started, and command health checks.
 */
#include "cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t cli_signal_seen;

int64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_utc_now(char *buf, size_t size)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void cli_sleep_ms(int64_t ms)
{
    int64_t end = cli_now_ms() + ms;
    while (!cli_signal_pending()) {
        int64_t left = end - cli_now_ms();
        if (left <= 0)
            return;
        if (left > 50)
            left = 50;
        struct timespec ts = {0, (long)left * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void on_signal(int sig)
{
    cli_signal_seen = sig;
}

void cli_signal_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int cli_signal_pending(void)
{
    return cli_signal_seen;
}

int cli_signal_take(void)
{
    int sig = cli_signal_seen;
    cli_signal_seen = 0;
    return sig;
}

int cli_proc_spawn(char *const *argv, char *const *env_extra, pid_t *pid)
{
    fflush(stdout);
    fflush(stderr);
    pid_t p = fork();
    if (p < 0)
        return CN_EIO;
    if (p == 0) {
        setpgid(0, 0);
        /* The command must not outlive a killed cairnctl (it would go on
         * acting as leader or lock holder). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() == 1)
            _exit(127);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = SIG_DFL;
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGPIPE, &sa, NULL);
        for (size_t i = 0; env_extra != NULL && env_extra[i] != NULL; i++)
            putenv(env_extra[i]);
        execvp(argv[0], argv);
        fprintf(stderr, "exec: \"%s\": %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    setpgid(p, p);
    *pid = p;
    return CN_OK;
}

static int decode_status(int st)
{
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return 1;
}

int cli_proc_poll(pid_t pid, int *status)
{
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) {
        *status = decode_status(st);
        return 1;
    }
    if (r < 0 && errno == ECHILD) {
        *status = 1;
        return 1;
    }
    return 0;
}

int cli_proc_stop(pid_t pid, int64_t grace_ms)
{
    int status = 0;
    if (cli_proc_poll(pid, &status))
        return status;
    kill(-pid, SIGTERM);
    kill(pid, SIGTERM);
    int64_t end = cli_now_ms() + grace_ms;
    while (cli_now_ms() < end) {
        if (cli_proc_poll(pid, &status))
            return status;
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    kill(-pid, SIGKILL);
    kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return decode_status(st);
}

int cli_proc_check(const char *cmd, int64_t deadline_ms)
{
    char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
    pid_t pid;
    if (cli_proc_spawn(argv, NULL, &pid) != CN_OK)
        return CN_EIO;
    int status = 0;
    for (;;) {
        if (cli_proc_poll(pid, &status))
            return status == 0 ? CN_OK : CN_EIO;
        if (cli_now_ms() >= deadline_ms || cli_signal_pending()) {
            cli_proc_stop(pid, 100);
            return CN_ETIMEDOUT;
        }
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}
