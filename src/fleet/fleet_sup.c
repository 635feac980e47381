/*
 * fleet_sup: the shim and the agent's side of it (see fleet_sup.h for the
 * states and the no-orphan rules). The shim is single-threaded and polls:
 * its journal pipe, its children (waitpid WNOHANG) and a SIGTERM flag,
 * every 50 ms at most.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet_sup.h"

extern char **environ;

static volatile sig_atomic_t shim_stop_flag;
static int wake_fd[2] = {-1, -1}; /* self-pipe: signals wake poll() */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig != SIGCHLD)
        shim_stop_flag = 1;
    if (wake_fd[1] >= 0 && write(wake_fd[1], "", 1) < 0) {
        /* full pipe: a wake-up is pending anyway */
    }
    errno = saved;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void fleet_run_init(struct fleet_run *r, const char *name)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->status_fd = -1;
    snprintf(r->active, sizeof(r->active), "inactive");
    snprintf(r->sub, sizeof(r->sub), "dead");
}

void fleet_sup_journal_path(const char *state_dir, const char *name, char *path,
                            size_t size)
{
    snprintf(path, size, "%s/journal/%s.log", state_dir, name);
}

/* ---- the shim -------------------------------------------------------- */

struct shim {
    const struct fleet_service *svc;
    const struct fleet_sup_env *env;
    const char *name;
    int status_fd;
    int journal_fd;     /* file */
    int pipe_r, pipe_w; /* unit output */
    char partial[1024]; /* output line not yet ended */
    size_t partial_len;
    char **envp; /* environment of the commands */
    size_t env_count;
    pid_t main_pid;
    char cgroups[2][400]; /* the unit's cgroup directories */
    int ncgroups;
};

static void report(struct shim *s, const char *active, const char *sub)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "%s %s\n", active, sub);
    if (write(s->status_fd, line, (size_t)n) < 0) {
        /* The agent is gone; PR_SET_PDEATHSIG stops us. */
    }
}

static void journal_open(struct shim *s)
{
    char path[1024];
    fleet_sup_journal_path(s->env->state_dir, s->name, path, sizeof(path));
    s->journal_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
}

static void journal_write(struct shim *s, const char *p, size_t n, pid_t pid)
{
    if (s->journal_fd < 0)
        return;
    struct stat st;
    if (fstat(s->journal_fd, &st) == 0 && st.st_size > FLEET_JOURNAL_BYTES) {
        char path[1024], old[1100];
        fleet_sup_journal_path(s->env->state_dir, s->name, path, sizeof(path));
        snprintf(old, sizeof(old), "%s.1", path);
        rename(path, old);
        close(s->journal_fd);
        journal_open(s);
        if (s->journal_fd < 0)
            return;
    }
    char head[512];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    size_t h = strftime(head, sizeof(head), "%b %d %H:%M:%S ", &tm);
    snprintf(head + h, sizeof(head) - h, "%s %s[%d]: ", s->env->hostname,
             s->name, (int)pid);
    char line[2048];
    int len = snprintf(line, sizeof(line), "%s%.*s\n", head, (int)n, p);
    if (len > (int)sizeof(line) - 1)
        len = (int)sizeof(line) - 1;
    if (write(s->journal_fd, line, (size_t)len) < 0) {
        /* a full disk loses journal lines, never the unit */
    }
}

/* Waits up to timeout_ms for unit output, a child's exit or a stop
 * request (the self-pipe), and moves output into the journal, line by
 * line. The shim sleeps here; nothing polls on a timer. */
static void drain(struct shim *s, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = s->pipe_r, .events = POLLIN},
                            {.fd = wake_fd[0], .events = POLLIN}};
    if (poll(pfd, 2, timeout_ms) <= 0)
        return;
    if (pfd[1].revents & POLLIN) {
        char junk[64];
        while (read(wake_fd[0], junk, sizeof(junk)) > 0)
            ;
    }
    if (!(pfd[0].revents & POLLIN))
        return;
    char buf[4096];
    ssize_t n = read(s->pipe_r, buf, sizeof(buf));
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || s->partial_len == sizeof(s->partial)) {
            journal_write(s, s->partial, s->partial_len, s->main_pid);
            s->partial_len = 0;
            if (buf[i] == '\n')
                continue;
        }
        s->partial[s->partial_len++] = buf[i];
    }
}

static int write_file(const char *dir, const char *file, const char *val)
{
    char path[700];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, val, strlen(val));
    close(fd);
    return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* Makes the unit's cgroups: one cgroup v2 group with memory.max and
 * cpu.max where the unified hierarchy has those controllers, else cgroup
 * v1 memory and cpu groups (memory.limit_in_bytes, cpu.cfs_quota_us). A
 * limit that cannot be set is said in the journal; the unit still runs. */
static void cgroup_setup(struct shim *s)
{
    const struct fleet_service *svc = s->svc;
    s->ncgroups = 0;
    if (geteuid() != 0 || (svc->memory_max == 0 && !svc->cpu_quota_percent))
        return;
    char leaf[300], val[64], quota[64];
    snprintf(leaf, sizeof(leaf), "cairn-%.32s-%s", s->env->machine_id, s->name);
    snprintf(val, sizeof(val), "%llu", (unsigned long long)svc->memory_max);
    snprintf(quota, sizeof(quota), "%d", svc->cpu_quota_percent * 1000);
    int ok = 1;
    if (access("/sys/fs/cgroup/cgroup.controllers", F_OK) == 0) {
        write_file("/sys/fs/cgroup", "cgroup.subtree_control", "+memory +cpu");
        char *dir = s->cgroups[s->ncgroups++];
        snprintf(dir, sizeof(s->cgroups[0]), "/sys/fs/cgroup/%s", leaf);
        mkdir(dir, 0755);
        if (svc->memory_max)
            ok &= write_file(dir, "memory.max", val) == 0;
        if (svc->cpu_quota_percent) {
            char cpu[80];
            snprintf(cpu, sizeof(cpu), "%s 100000", quota);
            ok &= write_file(dir, "cpu.max", cpu) == 0;
        }
    } else {
        if (svc->memory_max) {
            char *dir = s->cgroups[s->ncgroups++];
            snprintf(dir, sizeof(s->cgroups[0]), "/sys/fs/cgroup/memory/%s",
                     leaf);
            mkdir(dir, 0755);
            ok &= write_file(dir, "memory.limit_in_bytes", val) == 0;
        }
        if (svc->cpu_quota_percent) {
            char *dir = s->cgroups[s->ncgroups++];
            snprintf(dir, sizeof(s->cgroups[0]), "/sys/fs/cgroup/cpu/%s", leaf);
            mkdir(dir, 0755);
            ok &= write_file(dir, "cpu.cfs_period_us", "100000") == 0;
            ok &= write_file(dir, "cpu.cfs_quota_us", quota) == 0;
        }
    }
    if (!ok)
        journal_write(s, "cairn: cannot set the cgroup limits", 35, 0);
}

static void cgroup_join(const struct shim *s)
{
    for (int i = 0; i < s->ncgroups; i++)
        if (write_file(s->cgroups[i], "cgroup.procs", "0") != 0)
            fprintf(stderr, "cairn: cannot join %s\n", s->cgroups[i]);
}

/* The last processes may still be exiting: retry for up to 2 s. */
static void cgroup_remove(const struct shim *s)
{
    for (int i = 0; i < s->ncgroups; i++)
        for (int k = 0; k < 100 && rmdir(s->cgroups[i]) != 0 && errno == EBUSY;
             k++)
            usleep(20000);
}

static volatile pid_t isolate_child;

static void forward_term(int sig)
{
    if (isolate_child > 0)
        kill(isolate_child, sig);
}

/* In the child, before exec: the new PID, mount and network namespaces of
 * Isolate=true. Forks once more so the command is PID 1 of its namespace;
 * the intermediate process waits and passes on the exit status. */
static void isolate(void)
{
    if (unshare(CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET) != 0) {
        fprintf(stderr, "cairn: isolate: unshare: %s\n", strerror(errno));
        _exit(126);
    }
    pid_t pid = fork();
    if (pid < 0)
        _exit(126);
    if (pid > 0) {
        /* Pass SIGTERM on to the namespace's PID 1 (which ignores it
         * unless it handles it, like any init) and wait for it. */
        isolate_child = pid;
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = forward_term;
        sigaction(SIGTERM, &sa, NULL);
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        _exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    }
    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL);
    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
    /* The new network namespace has only lo, and it is down. */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
    if (fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        ioctl(fd, SIOCSIFFLAGS, &ifr);
    }
    if (fd >= 0)
        close(fd);
}

/* Starts one command line in its own process group, output to the journal
 * pipe. Returns the pid, or -1 (the reason is in the journal). */
static pid_t spawn(struct shim *s, const char *cmdline, int *ignore_failure,
                   int main_cmd)
{
    struct cn_buf exp = {0};
    char err[CN_ERRMSG_SIZE];
    char **argv = NULL;
    struct fleet_spec sp = {s->name, s->env->hostname, s->env->machine_id};
    int rc = fleet_expand(cmdline, &sp, &exp, err);
    if (rc == 0)
        rc = fleet_exec_split(exp.data, s->envp, s->env_count, &argv,
                              ignore_failure, err);
    cn_buf_close(&exp);
    if (rc != 0) {
        char msg[400];
        int n = snprintf(msg, sizeof(msg), "cairn: bad command: %s", err);
        journal_write(s, msg, (size_t)n, 0);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(s->pipe_w, 1);
        dup2(s->pipe_w, 2);
        if (main_cmd)
            cgroup_join(s);
        const struct fleet_service *svc = s->svc;
        if (svc->working_directory && chdir(svc->working_directory) != 0) {
            fprintf(stderr, "cairn: chdir %s: %s\n", svc->working_directory,
                    strerror(errno));
            _exit(200);
        }
        if (svc->user && geteuid() == 0) {
            struct passwd *pw = getpwnam(svc->user);
            if (pw == NULL || initgroups(pw->pw_name, pw->pw_gid) != 0 ||
                setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
                fprintf(stderr, "cairn: cannot become user %s\n", svc->user);
                _exit(217);
            }
        }
        if (main_cmd && svc->isolate && geteuid() == 0)
            isolate();
        execvpe(argv[0], argv, s->envp);
        fprintf(stderr, "cairn: exec %s: %s\n", argv[0], strerror(errno));
        _exit(203);
    }
    if (pid > 0)
        setpgid(pid, pid); /* both sides, so no race with kill(-pid) */
    fleet_argv_free(argv);
    return pid;
}

/* Waits for pid while draining output, up to timeout_ms (<0: forever) or
 * until a stop is requested (when interruptible). Returns 1 with *status
 * when it ended, 0 on timeout/stop. */
static int wait_for(struct shim *s, pid_t pid, int64_t timeout_ms,
                    int interruptible, int *status)
{
    int64_t end = timeout_ms < 0 || timeout_ms > INT64_MAX / 2
                      ? INT64_MAX
                      : now_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            *status = st;
            drain(s, 0);
            return 1;
        }
        if (r < 0 && errno == ECHILD) {
            *status = 0;
            return 1;
        }
        /* Reap adopted descendants (we are their subreaper). */
        while (waitpid(-1, &st, WNOHANG) > 0)
            ;
        int64_t now = now_ms();
        if ((interruptible && shim_stop_flag) || now >= end)
            return 0;
        drain(s, end - now > 1000 ? 1000 : (int)(end - now));
    }
}

static int failed_status(int st)
{
    return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

/* Runs a list of commands in turn. Returns 0, 1 when one failed (and was
 * not '-'), 2 when a stop was requested meanwhile. */
static int run_list(struct shim *s, const struct fleet_strv *l,
                    int64_t timeout_ms, int interruptible)
{
    for (size_t i = 0; i < l->n; i++) {
        int ignore = 0, st = 0;
        pid_t pid = spawn(s, l->v[i], &ignore, 0);
        if (pid < 0) {
            if (!ignore)
                return 1;
            continue;
        }
        if (!wait_for(s, pid, timeout_ms, interruptible, &st)) {
            kill(-pid, SIGKILL);
            wait_for(s, pid, -1, 0, &st);
            if (interruptible && shim_stop_flag)
                return 2;
            st = 1 << 8;
        }
        if (failed_status(st) && !ignore)
            return 1;
    }
    return 0;
}

/* Ends a process group: SIGTERM, SIGKILL after timeout_ms. */
static void kill_group(struct shim *s, pid_t pgid, int64_t timeout_ms,
                       int *status)
{
    if (kill(-pgid, SIGTERM) != 0 && errno == ESRCH)
        return;
    int st = 0;
    if (!wait_for(s, pgid, timeout_ms, 0, &st)) {
        report(s, "deactivating", "stop-sigkill");
        kill(-pgid, SIGKILL);
        wait_for(s, pgid, -1, 0, &st);
    }
    /* Leftovers of the group after its leader exited: kill them and wait
     * (reaping what was reparented to us) until the group is empty. */
    kill(-pgid, SIGKILL);
    for (int i = 0; i < 200 && kill(-pgid, 0) == 0; i++) {
        int dummy;
        while (waitpid(-1, &dummy, WNOHANG) > 0)
            ;
        usleep(5000);
    }
    if (status)
        *status = st;
}

/* <state-dir>/run/<unit>.<ext> holds a pid; pid 0 removes the record,
 * but only if it still holds our own value (a newer shim may own it). */
static void record(struct shim *s, const char *ext, pid_t pid, pid_t mine)
{
    char path[1024], tmp[1100], val[32];
    snprintf(path, sizeof(path), "%s/run/%s.%s", s->env->state_dir, s->name,
             ext);
    if (pid <= 0) {
        FILE *f = fopen(path, "r");
        int cur = 0;
        if (f) {
            if (fscanf(f, "%d", &cur) != 1)
                cur = 0;
            fclose(f);
        }
        if (cur == (int)mine)
            unlink(path);
        return;
    }
    snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    int n = snprintf(val, sizeof(val), "%d\n", (int)pid);
    if (write(fd, val, (size_t)n) == n)
        rename(tmp, path);
    else
        unlink(tmp);
    close(fd);
}

static void pgid_record(struct shim *s, pid_t pgid)
{
    static pid_t last;
    if (pgid > 0)
        last = pgid;
    record(s, "pgid", pgid, last);
}

static int load_env(struct shim *s)
{
    size_t n = 0;
    while (environ[n])
        n++;
    const struct fleet_strv *e = &s->svc->environment;
    size_t cap = n + e->n + 256;
    s->envp = calloc(cap + 1, sizeof(char *));
    if (s->envp == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        s->envp[s->env_count++] = environ[i];
    for (size_t i = 0; i < e->n; i++)
        s->envp[s->env_count++] = e->v[i];
    const char *file = s->svc->environment_file;
    if (file) {
        int optional = file[0] == '-';
        FILE *f = fopen(file + optional, "r");
        if (f == NULL)
            return optional ? 0 : -1;
        char line[1024];
        while (fgets(line, sizeof(line), f) && s->env_count < cap) {
            line[strcspn(line, "\r\n")] = '\0';
            if (line[0] == '#' || line[0] == ';' || !strchr(line, '='))
                continue;
            s->envp[s->env_count++] = strdup(line);
        }
        fclose(f);
    }
    s->envp[s->env_count] = NULL;
    return 0;
}

/* The shim's whole life; never returns. */
static void shim_main(struct shim *s)
{
    const struct fleet_service *svc = s->svc;
    int64_t backoff = svc->restart_ms;
    int st = 0;
    if (load_env(s) != 0) {
        journal_write(s, "cairn: cannot read EnvironmentFile", 34, 0);
        report(s, "failed", "failed");
        _exit(1);
    }
    cgroup_setup(s);
    record(s, "shim", getpid(), 0);
    for (;;) {
        report(s, "activating", "start-pre");
        int r = run_list(s, &svc->exec_start_pre, svc->timeout_start_ms, 1);
        if (r == 2)
            break;
        int ignore = 0;
        int64_t started = now_ms();
        int failed = r != 0;
        if (!failed) {
            s->main_pid = spawn(s, svc->exec_start.v[0], &ignore, 1);
            failed = s->main_pid < 0;
        }
        if (!failed) {
            pgid_record(s, s->main_pid);
            r = run_list(s, &svc->exec_start_post, svc->timeout_start_ms, 1);
            if (r == 1)
                failed = 1;
            else if (r == 0)
                report(s, "active", "running");
        }
        if (!failed && !shim_stop_flag) {
            wait_for(s, s->main_pid, -1, 1, &st);
            if (shim_stop_flag)
                break;
            failed = failed_status(st) && !ignore;
        }
        if (failed && s->main_pid > 0 && !shim_stop_flag)
            kill_group(s, s->main_pid, svc->timeout_stop_ms, NULL);
        if (s->main_pid > 0)
            kill(-s->main_pid, SIGKILL); /* whatever the main left behind */
        if (shim_stop_flag)
            break;
        pgid_record(s, 0);
        run_list(s, &svc->exec_stop_post, svc->timeout_stop_ms, 0);
        int again = svc->restart == FLEET_RESTART_ALWAYS ||
                    (svc->restart == FLEET_RESTART_ON_FAILURE && failed);
        if (!again) {
            record(s, "shim", 0, getpid());
            report(s, failed ? "failed" : "inactive",
                   failed ? "failed" : "dead");
            _exit(failed);
        }
        /* Back-off: doubles while the unit keeps dying within 10 s. */
        if (now_ms() - started > 10000)
            backoff = svc->restart_ms;
        report(s, "activating", "auto-restart");
        int64_t until = now_ms() + backoff;
        for (int64_t now = now_ms(); !shim_stop_flag && now < until;
             now = now_ms())
            drain(s, until - now > 1000 ? 1000 : (int)(until - now));
        if (shim_stop_flag)
            break;
        backoff = backoff * 2 > FLEET_RESTART_BACKOFF_MAX_MS
                      ? FLEET_RESTART_BACKOFF_MAX_MS
                      : (backoff < 100 ? 100 : backoff * 2);
        s->main_pid = 0;
    }
    /* Stop requested. */
    report(s, "deactivating", "stop-sigterm");
    if (s->main_pid > 0) {
        char mainpid[32];
        snprintf(mainpid, sizeof(mainpid), "MAINPID=%d", (int)s->main_pid);
        s->envp[s->env_count] = mainpid;
        s->envp[s->env_count + 1] = NULL;
        run_list(s, &svc->exec_stop, svc->timeout_stop_ms, 0);
        kill_group(s, s->main_pid, svc->timeout_stop_ms, NULL);
    }
    run_list(s, &svc->exec_stop_post, svc->timeout_stop_ms, 0);
    while (waitpid(-1, &st, WNOHANG) > 0)
        ;
    pgid_record(s, 0);
    record(s, "shim", 0, getpid());
    cgroup_remove(s);
    report(s, "inactive", "dead");
    _exit(0);
}

static void close_other_fds(int keep1, int keep2, int keep3)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    int dfd = dirfd(d);
    struct dirent *e;
    int fds[1024];
    size_t n = 0;
    while ((e = readdir(d)) != NULL && n < 1024) {
        int fd = atoi(e->d_name);
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        if (fd > 2 && fd != dfd && fd != keep1 && fd != keep2 && fd != keep3)
            fds[n++] = fd;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

int fleet_sup_start(struct fleet_run *r, const struct fleet_service *svc,
                    const struct fleet_sup_env *env, char *errmsg)
{
    int sp[2], out[2];
    if (pipe2(sp, O_CLOEXEC) != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "pipe: %s", strerror(errno));
        return CN_EIO;
    }
    if (pipe2(out, O_CLOEXEC) != 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "pipe: %s", strerror(errno));
        close(sp[0]);
        close(sp[1]);
        return CN_EIO;
    }
    pid_t parent = getpid();
    fflush(NULL);
    sigset_t block, old_mask;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old_mask);
    pid_t pid = fork();
    if (pid != 0)
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
    if (pid < 0) {
        snprintf(errmsg, CN_ERRMSG_SIZE, "fork: %s", strerror(errno));
        close(sp[0]);
        close(sp[1]);
        close(out[0]);
        close(out[1]);
        return CN_EIO;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        prctl(PR_SET_CHILD_SUBREAPER, 1);
        char comm[16]; /* "cairn-shim" in ps -e and top */
        snprintf(comm, sizeof(comm), "cairn-shim");
        prctl(PR_SET_NAME, comm);
        setpgid(0, 0);
        close_other_fds(sp[1], out[0], out[1]);
        if (pipe2(wake_fd, O_CLOEXEC | O_NONBLOCK) != 0)
            _exit(1);
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGCHLD, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
        /* Blocked across fork by the parent: a stop asked for before
         * this point is pending now and lands in on_signal. */
        sigprocmask(SIG_SETMASK, &old_mask, NULL);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        struct shim s;
        memset(&s, 0, sizeof(s));
        s.svc = svc;
        s.env = env;
        s.name = r->name;
        s.status_fd = sp[1];
        s.pipe_r = out[0];
        s.pipe_w = out[1];
        /* pipe_w stays open in the shim: children get it as 1 and 2. */
        fcntl(out[1], F_SETFD, 0);
        journal_open(&s);
        shim_main(&s);
    }
    close(sp[1]);
    close(out[0]);
    close(out[1]);
    fcntl(sp[0], F_SETFL, O_NONBLOCK);
    r->shim = pid;
    r->status_fd = sp[0];
    r->stopping = 0;
    r->line_len = 0;
    snprintf(r->active, sizeof(r->active), "activating");
    snprintf(r->sub, sizeof(r->sub), "start-pre");
    return 0;
}

void fleet_sup_stop(struct fleet_run *r)
{
    /* Repeated once a second while the shim lives: cheap, and it makes a
     * lost signal harmless. */
    int64_t now = now_ms();
    if (r->shim > 0 && (!r->stopping || now - r->last_term_ms >= 1000)) {
        kill(r->shim, SIGTERM);
        r->stopping = 1;
        r->last_term_ms = now;
    }
}

static int apply_line(struct fleet_run *r)
{
    char active[16], sub[24];
    r->line[r->line_len] = '\0';
    r->line_len = 0;
    if (sscanf(r->line, "%15s %23s", active, sub) != 2)
        return 0;
    if (strcmp(active, r->active) == 0 && strcmp(sub, r->sub) == 0)
        return 0;
    snprintf(r->active, sizeof(r->active), "%s", active);
    snprintf(r->sub, sizeof(r->sub), "%s", sub);
    return 1;
}

int fleet_sup_poll(struct fleet_run *r)
{
    int changed = 0;
    if (r->status_fd >= 0) {
        char buf[256];
        ssize_t n;
        while ((n = read(r->status_fd, buf, sizeof(buf))) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (buf[i] == '\n')
                    changed |= apply_line(r);
                else if (r->line_len < sizeof(r->line) - 1)
                    r->line[r->line_len++] = buf[i];
            }
        }
        if (n == 0) {
            close(r->status_fd);
            r->status_fd = -1;
        }
    }
    if (r->shim > 0) {
        int st;
        if (waitpid(r->shim, &st, WNOHANG) == r->shim) {
            r->shim = 0;
            if (strcmp(r->active, "inactive") != 0 &&
                strcmp(r->active, "failed") != 0) {
                /* Died without its last word (SIGKILL). */
                snprintf(r->active, sizeof(r->active), "failed");
                snprintf(r->sub, sizeof(r->sub), "failed");
                changed = 1;
            }
            if (r->status_fd >= 0) {
                close(r->status_fd);
                r->status_fd = -1;
            }
        }
    }
    return changed;
}

static int read_pid(const char *path)
{
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    return pid;
}

/* Ends what the records of one kind name: shims get SIGTERM and up to
 * 10 s (they were told to stop when their agent died) before SIGKILL;
 * unit groups get SIGKILL at once. */
static int cleanup_kind(const char *dir, const char *ext, int graceful)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int killed = 0;
    struct dirent *e;
    size_t el = strlen(ext);
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n <= el + 1 || strcmp(e->d_name + n - el, ext) != 0 ||
            e->d_name[n - el - 1] != '.')
            continue;
        char path[1400];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        int pid = read_pid(path);
        if (pid > 1 && kill(-pid, 0) == 0) {
            killed++;
            if (graceful) {
                kill(-pid, SIGTERM);
                int64_t end = now_ms() + 10000;
                while (kill(-pid, 0) == 0 && now_ms() < end)
                    usleep(20000);
            }
            kill(-pid, SIGKILL);
        }
        unlink(path);
    }
    closedir(d);
    return killed;
}

int fleet_sup_cleanup(const char *state_dir)
{
    char dir[1024];
    snprintf(dir, sizeof(dir), "%s/run", state_dir);
    int killed = cleanup_kind(dir, "shim", 1);
    return killed + cleanup_kind(dir, "pgid", 0);
}
