/* The supervisor (fleet_sup.c) with real child processes: states, restart
 * back-off, journal lines, stop escalation and the no-orphan records. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fleet/fleet_sup.h"
#include "tap.h"

struct rig {
    char dir[64];
    struct fleet_sup_env env;
    struct fleet_service svc;
    struct fleet_run run;
};

static int64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rig_init(struct rig *r, const char *name, const char *unit)
{
    memset(r, 0, sizeof(*r));
    tap_tmpdir(r->dir, sizeof(r->dir), "cairn-sup");
    char sub[128];
    snprintf(sub, sizeof(sub), "%s/run", r->dir);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/journal", r->dir);
    mkdir(sub, 0755);
    r->env.state_dir = r->dir;
    r->env.machine_id = "0123456789abcdef";
    r->env.hostname = "testhost";
    char err[CN_ERRMSG_SIZE];
    int rc = fleet_service_parse(unit, strlen(unit), &r->svc, err);
    if (rc != 0)
        tap_fail(__FILE__, __LINE__, "parse: %s", err);
    REQUIRE_EQ(rc, 0);
    fleet_run_init(&r->run, name);
}

static void rig_close(struct rig *r)
{
    fleet_sup_stop(&r->run);
    for (int i = 0; i < 500 && r->run.shim > 0; i++) {
        fleet_sup_poll(&r->run);
        fleet_sup_stop(&r->run);
        usleep(10000);
    }
    fleet_service_close(&r->svc);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir);
    if (system(cmd) != 0)
        tap_diag("could not remove %s", r->dir);
}

/* Polls until active/sub reach the wanted pair (or timeout); counts how
 * many times sub_count_of was entered. */
static int wait_state(struct rig *r, const char *active, const char *sub,
                      int timeout_ms, const char *count_sub, int *count)
{
    int64_t end = ms_now() + timeout_ms;
    while (ms_now() < end) {
        if (fleet_sup_poll(&r->run) && count_sub && count &&
            strcmp(r->run.sub, count_sub) == 0)
            (*count)++;
        if (strcmp(r->run.active, active) == 0 && strcmp(r->run.sub, sub) == 0)
            return 1;
        usleep(5000);
    }
    tap_diag("state %s/%s, wanted %s/%s", r->run.active, r->run.sub, active,
             sub);
    return 0;
}

static int read_pgid(struct rig *r)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/run/%s.pgid", r->dir, r->run.name);
    FILE *f = fopen(path, "r");
    int pgid = 0;
    if (f) {
        if (fscanf(f, "%d", &pgid) != 1)
            pgid = 0;
        fclose(f);
    }
    return pgid;
}

static char *journal(struct rig *r)
{
    static char buf[8192];
    char path[512];
    fleet_sup_journal_path(r->dir, r->run.name, path, sizeof(path));
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    return buf;
}

TEST(fleet_sup_runs_pre_main_and_journals)
{
    struct rig r;
    rig_init(&r, "t.service",
             "[Service]\nExecStartPre=/bin/echo pre %n\n"
             "ExecStartPre=-/bin/false\n"
             "ExecStart=/bin/sh -c 'echo hello $GREETING; exec sleep 30'\n"
             "Environment=GREETING=world\nTimeoutStopSec=5\n");
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(fleet_sup_start(&r.run, &r.svc, &r.env, err), 0);
    REQUIRE(wait_state(&r, "active", "running", 5000, NULL, NULL));
    int pgid = read_pgid(&r);
    REQUIRE(pgid > 0);
    CHECK_EQ(kill(-pgid, 0), 0);
    for (int i = 0; i < 200 && !strstr(journal(&r), "hello world"); i++)
        usleep(10000);
    CHECK(strstr(journal(&r), "testhost t.service[") != NULL);
    CHECK(strstr(journal(&r), ": pre t.service\n") != NULL);
    CHECK(strstr(journal(&r), ": hello world\n") != NULL);
    fleet_sup_stop(&r.run);
    REQUIRE(wait_state(&r, "inactive", "dead", 5000, NULL, NULL));
    for (int i = 0; i < 100 && r.run.shim > 0; i++) {
        fleet_sup_poll(&r.run);
        usleep(10000);
    }
    CHECK_EQ(r.run.shim, 0);
    CHECK(kill(-pgid, 0) != 0); /* the group is gone */
    CHECK_EQ(read_pgid(&r), 0); /* and its record */
    rig_close(&r);
}

TEST(fleet_sup_failed_pre_fails_the_unit)
{
    struct rig r;
    rig_init(&r, "p.service",
             "[Service]\nExecStartPre=/bin/false\nExecStart=/bin/sleep 30\n");
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(fleet_sup_start(&r.run, &r.svc, &r.env, err), 0);
    CHECK(wait_state(&r, "failed", "failed", 5000, NULL, NULL));
    rig_close(&r);
}

TEST(fleet_sup_restart_on_failure_backs_off)
{
    struct rig r;
    rig_init(&r, "f.service",
             "[Service]\nExecStart=/bin/sh -c 'echo try; exit 3'\n"
             "Restart=on-failure\nRestartSec=100ms\n");
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(fleet_sup_start(&r.run, &r.svc, &r.env, err), 0);
    /* Waits 100, 200, 400, 800 ms: about 5 tries in 1.7 s, not 17. */
    int restarts = 0;
    int64_t end = ms_now() + 1700;
    while (ms_now() < end) {
        if (fleet_sup_poll(&r.run) && strcmp(r.run.sub, "auto-restart") == 0)
            restarts++;
        usleep(2000);
    }
    CHECK(restarts >= 2);
    CHECK(restarts <= 6);
    tap_diag("restarts in 1.7 s: %d", restarts);
    rig_close(&r);
}

TEST(fleet_sup_clean_exit_is_not_restarted_on_failure)
{
    struct rig r;
    rig_init(&r, "c.service",
             "[Service]\nExecStart=/bin/true\nRestart=on-failure\n"
             "RestartSec=50ms\n");
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(fleet_sup_start(&r.run, &r.svc, &r.env, err), 0);
    CHECK(wait_state(&r, "inactive", "dead", 5000, NULL, NULL));
    rig_close(&r);
}

TEST(fleet_sup_sigkill_after_timeout_stop)
{
    struct rig r;
    rig_init(&r, "k.service",
             "[Service]\nExecStart=/bin/sh -c 'trap \"\" TERM; echo ready; "
             "while :; do sleep 0.05; done'\nTimeoutStopSec=300ms\n");
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(fleet_sup_start(&r.run, &r.svc, &r.env, err), 0);
    REQUIRE(wait_state(&r, "active", "running", 5000, NULL, NULL));
    for (int i = 0; i < 500 && !strstr(journal(&r), "ready"); i++)
        usleep(10000); /* the trap is in place */
    int pgid = read_pgid(&r);
    int64_t t0 = ms_now();
    fleet_sup_stop(&r.run);
    /* The shell ignores SIGTERM: only the SIGKILL after TimeoutStopSec
     * can end it (the intermediate stop-sigkill report may be read in the
     * same poll as the final one). */
    CHECK(wait_state(&r, "inactive", "dead", 5000, NULL, NULL));
    int64_t took = ms_now() - t0;
    CHECK(took >= 300);
    CHECK(took < 4000);
    CHECK(pgid > 0 && kill(-pgid, 0) != 0);
    rig_close(&r);
}

TEST(fleet_sup_cleanup_kills_recorded_groups)
{
    struct rig r;
    rig_init(&r, "o.service", "[Service]\nExecStart=/bin/sleep 30\n");
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        setpgid(0, 0);
        execl("/bin/sleep", "sleep", "30", (char *)NULL);
        _exit(127);
    }
    setpgid(pid, pid);
    char path[512];
    snprintf(path, sizeof(path), "%s/run/o.service.pgid", r.dir);
    FILE *f = fopen(path, "w");
    REQUIRE(f != NULL);
    fprintf(f, "%d\n", (int)pid);
    fclose(f);
    CHECK_EQ(fleet_sup_cleanup(r.dir), 1);
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ(fleet_sup_cleanup(r.dir), 0);
    rig_close(&r);
}
