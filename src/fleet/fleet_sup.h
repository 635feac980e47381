/*
 * fleet_sup: the supervisor that runs units without systemd.
 *
 * Each running unit has a shim: a process forked from the agent that owns
 * the unit's life cycle and nothing else. The shim runs ExecStartPre,
 * ExecStart (in a process group of its own), ExecStartPost; copies the
 * unit's stdout/stderr into its journal file (bounded, rotated); restarts
 * the unit by Restart= with back-off; and on SIGTERM runs ExecStop, sends
 * SIGTERM to the unit's group, SIGKILL after TimeoutStopSec, then
 * ExecStopPost. It tells the agent each state change as a line
 * "<active> <sub>\n" on a pipe.
 *
 * No orphans: the shim gets SIGTERM when the agent dies (PR_SET_PDEATHSIG),
 * and stops its unit; the unit's process group is recorded in
 * <state-dir>/run/<unit>.pgid so a restarted agent kills whatever a
 * SIGKILLed shim left behind before it starts units again.
 *
 *   (start) activating/start-pre -> active/running
 *   active/running --main exits, Restart= says so--> activating/auto-restart
 *   active/running --main exits--> failed/failed | inactive/dead
 *   any --SIGTERM--> deactivating/stop-sigterm [-> deactivating/stop-sigkill]
 *       -> inactive/dead
 */
#ifndef FLEET_SUP_H
#define FLEET_SUP_H

#include "fleet_int.h"

#define FLEET_JOURNAL_BYTES (256 * 1024) /* per file; one rotated copy */
#define FLEET_RESTART_BACKOFF_MAX_MS 30000

struct fleet_run {
    char name[FLEET_NAME_MAX];
    pid_t shim;      /* 0: not running */
    int status_fd;   /* read end of the shim's state pipe; -1 */
    char active[16]; /* systemd ActiveState */
    char sub[24];    /* systemd SubState */
    char line[64];   /* partial status line */
    size_t line_len;
    int stopping;         /* a stop was asked for */
    int64_t last_term_ms; /* when SIGTERM was last sent */
};

/* Where the agent keeps its files and who it is (for specifiers, cgroups,
 * journal lines). All borrowed for the life of the agent. */
struct fleet_sup_env {
    const char *state_dir;
    const char *machine_id;
    const char *hostname;
};

void fleet_run_init(struct fleet_run *r, const char *name);

/* Forks the shim for unit name with svc (both borrowed; the shim has its
 * own copy after fork). Returns 0, or CN_EIO with errmsg. */
int fleet_sup_start(struct fleet_run *r, const struct fleet_service *svc,
                    const struct fleet_sup_env *env, char *errmsg);
/* Asks the shim to stop (SIGTERM); fleet_sup_poll sees it end. */
void fleet_sup_stop(struct fleet_run *r);
/* Reads state lines and reaps the shim. Returns 1 when active/sub changed,
 * 0 otherwise. After the shim ended r->shim is 0 and active/sub hold its
 * last report (failed/failed if it died without one). */
int fleet_sup_poll(struct fleet_run *r);
/* Kills (SIGKILL) every process group recorded in <state-dir>/run and
 * removes the records: what a restarted agent does first. Returns the
 * number of groups that still had processes. */
int fleet_sup_cleanup(const char *state_dir);
/* <state-dir>/journal/<name>.log into path. */
void fleet_sup_journal_path(const char *state_dir, const char *name, char *path,
                            size_t size);

#endif
