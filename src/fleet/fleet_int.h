/*
 * fleet_int: what the files of src/fleet/ share (private to the directory).
 *
 * Layers, bottom up:
 *   fleet_unit.c     systemd unit files: syntax, the [Service]/[X-Fleet]/
 *                    [X-Cairn] subset, names, templates, specifiers. Pure.
 *   fleet_json.c     the only file that includes jansson: the objects fleet
 *                    stores (machine, unit, state, lease, journal).
 *   fleet_store.c    the v2 key calls the layer needs (get, set, CAS,
 *                    create, delete, watch) over the cli module's public
 *                    client (cli/cli_client.h); the key layout is in
 *                    fleet_store.h. The engine's leader election is
 *                    cairnctl elect's, shared: cli/cli_elect.h.
 *   fleet_sched.c    the engine's decisions: constraints and placement.
 *                    Pure.
 *   fleet_deps.c     Requires/BindsTo/Wants/After/Before among the units
 *                    of one machine: what may start, what must stop, in
 *                    which order. Pure.
 *   fleet_sup.c      the supervisor: one process group per unit, stop with
 *                    SIGTERM then SIGKILL, restart back-off, journal.
 *   fleet_agent.c    cairn-agent: registration, state publishing, the
 *                    engine loop.
 *   fleet_ctl.c      cairn-fleetctl.
 */
#ifndef FLEET_INT_H
#define FLEET_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/base.h"
#include "base/cn_sha1.h"

#define FLEET_UNIT_BYTES_MAX (64 * 1024) /* a unit file */
#define FLEET_LINE_BYTES_MAX (4096)      /* one logical line */
#define FLEET_NAME_MAX 256               /* unit name */
#define FLEET_MACHINE_ID_LEN 32          /* hex digits */

/* ---- Unit files (fleet_unit.c) --------------------------------------- */

/* One "Name=Value" of a unit file, in file order. */
struct fleet_opt {
    char *section; /* owned; "Service" */
    char *name;    /* owned; "ExecStart" */
    char *value;   /* owned; trimmed, continuation lines joined */
    int line;      /* 1-based line of the key */
};

struct fleet_unit_file {
    struct fleet_opt *opts; /* owned array */
    size_t count;
    size_t cap;
};

/* Parses systemd unit-file syntax: [Section] headers, Name=Value lines,
 * '#' and ';' comments, a trailing '\' continuing a line. text[0..len) is
 * borrowed. Returns 0, CN_EINVAL with "line N: ..." in errmsg
 * (CN_ERRMSG_SIZE bytes) naming the key when there is one, CN_ETOOBIG, or
 * CN_ENOMEM. uf is initialised by the call and closed by the caller even
 * after a failure. */
int fleet_unit_file_parse(const char *text, size_t len,
                          struct fleet_unit_file *uf, char *errmsg);
void fleet_unit_file_close(struct fleet_unit_file *uf);
/* The last value of section/name, or NULL. Borrowed from uf. */
const char *fleet_unit_file_get(const struct fleet_unit_file *uf,
                                const char *section, const char *name);

/* A list of strings with the line each came from. */
struct fleet_strv {
    char **v;   /* owned, each owned */
    int *lines; /* owned */
    size_t n;
};
void fleet_strv_close(struct fleet_strv *l);

enum fleet_restart {
    FLEET_RESTART_NO = 0,
    FLEET_RESTART_ON_FAILURE,
    FLEET_RESTART_ALWAYS,
};

/* The meaning of a unit file: what the agent runs and the engine
 * schedules. Every string is owned. */
struct fleet_service {
    char *description;
    /* [Unit] dependencies, raw words (specifiers kept); fleet_deps.c */
    struct fleet_strv after, requires, binds_to, wants, before;
    struct fleet_strv exec_start_pre, exec_start, exec_start_post, exec_stop,
        exec_stop_post; /* raw command lines (prefix and specifiers kept) */
    int restart;        /* enum fleet_restart */
    int64_t restart_ms;
    int64_t timeout_start_ms; /* 0: none */
    int64_t timeout_stop_ms;
    struct fleet_strv environment; /* "K=V" in order */
    char *environment_file;        /* NULL: none; "-/path" ignores absence */
    char *working_directory;
    char *user;
    /* [X-Fleet] */
    char *machine_id;
    struct fleet_strv machine_metadata; /* "k=v" each */
    struct fleet_strv machine_of;
    struct fleet_strv conflicts; /* globs */
    struct fleet_strv replaces;
    int global;
    /* [X-Cairn] */
    int isolate;
    uint64_t memory_max;   /* bytes; 0: none */
    int cpu_quota_percent; /* 0: none */
    /* Keys kept but not understood: "line 7: unknown key Foo in [Service]"
     * lines. */
    struct cn_buf warnings;
};

/* Interprets a parsed file. Returns 0, CN_EINVAL with "line N: key K: ..."
 * in errmsg, or CN_ENOMEM. s is initialised by the call and closed by the
 * caller even after a failure. uf is borrowed. */
int fleet_service_load(const struct fleet_unit_file *uf,
                       struct fleet_service *s, char *errmsg);
void fleet_service_close(struct fleet_service *s);

/* Parse + load of a whole text. */
int fleet_service_parse(const char *text, size_t len, struct fleet_service *s,
                        char *errmsg);

/* systemd time span ("5", "5s", "500ms", "1min 30s", "infinity") into ms
 * (infinity: INT64_MAX). 0 or CN_EINVAL. */
int fleet_parse_timespan(const char *s, int64_t *ms);
/* "yes/no/true/false/on/off/1/0": 0 with *v, or CN_EINVAL. */
int fleet_parse_bool(const char *s, int *v);

/* Unit names. */
enum {
    FLEET_NAME_PLAIN = 0,    /* "echo.service" */
    FLEET_NAME_TEMPLATE = 1, /* "echo@.service" */
    FLEET_NAME_INSTANCE = 2, /* "echo@1.service" */
};
/* Checks a unit name ("[A-Za-z0-9:_.@\-]+" with a known type suffix):
 * returns FLEET_NAME_* or CN_EINVAL. */
int fleet_unit_name_kind(const char *name);
/* "echo@1.service" -> "echo@.service" into out (size bytes). 0 or
 * CN_EINVAL. */
int fleet_unit_template_of(const char *name, char *out, size_t size);
/* Appends ".service" when name has no known unit type suffix, after taking
 * the basename of a path (fleetctl's unitNameMangle). */
void fleet_unit_name_mangle(const char *arg, char *out, size_t size);

/* What specifiers expand to. */
struct fleet_spec {
    const char *name;       /* %n: "echo@1.service" */
    const char *hostname;   /* %H */
    const char *machine_id; /* %m */
};
/* Appends in with %n %N %p %i %H %m %% expanded. CN_EINVAL (unknown
 * specifier, in errmsg) or CN_ENOMEM. */
int fleet_expand(const char *in, const struct fleet_spec *sp,
                 struct cn_buf *out, char *errmsg);

/* Splits a command line the way systemd does: the '-' prefix (sets
 * *ignore_failure), words separated by blanks, "..." and '...' quoting,
 * backslash escapes, $VAR/${VAR} from env ("K=V" list, later wins), "$$".
 * *argv_out is a NULL-terminated cn_malloc'd array of cn_malloc'd strings
 * (free with fleet_argv_free). CN_EINVAL with errmsg, or CN_ENOMEM. */
int fleet_exec_split(const char *cmd, char *const *env, size_t env_count,
                     char ***argv_out, int *ignore_failure, char *errmsg);
void fleet_argv_free(char **argv);

/* 1 when name matches the glob (shell '*', '?', '[...]'). */
int fleet_glob_match(const char *glob, const char *name);

/* ---- Scheduling decisions (fleet_sched.c) ---------------------------- */

enum fleet_target_state {
    FLEET_TS_INACTIVE = 0,
    FLEET_TS_LOADED = 1,
    FLEET_TS_LAUNCHED = 2,
};
/* "inactive"/"loaded"/"launched" -> FLEET_TS_*, or CN_EINVAL. */
int fleet_target_state_parse(const char *s);
const char *fleet_target_state_name(int ts);

struct fleet_sched_machine {
    const char *id;                    /* borrowed */
    const struct fleet_strv *metadata; /* "k=v", borrowed */
    int units;                         /* out: units placed on it */
};

struct fleet_sched_job {
    const char *name;                /* borrowed */
    const struct fleet_service *svc; /* borrowed; NULL: content unknown */
    int target_state;                /* enum fleet_target_state */
    char target[64];                 /* in: current machine, "" none;
                                      * out: the decided machine */
};

/* The engine's decision (fleet's reconciler): jobs that are inactive,
 * global, on a dead machine or on one that no longer satisfies their
 * [X-Fleet] constraints lose their target; then every loaded/launched job
 * without one gets the machine that satisfies MachineID, MachineMetadata,
 * MachineOf, Conflicts (both directions) and Replaces, preferring the
 * machine of a unit it replaces, else the fewest units, ties broken by
 * machine ID. Jobs that fit nowhere stay unscheduled. Machines must be
 * sorted by id, jobs by name. Pure; no allocation. */
void fleet_sched_decide(struct fleet_sched_machine *ms, size_t nm,
                        struct fleet_sched_job *js, size_t nj);

/* 1 when a machine with this id and metadata satisfies MachineID and
 * MachineMetadata of svc (what decides where a Global unit runs). */
int fleet_sched_machine_ok(const struct fleet_service *svc, const char *name,
                           const char *machine_id,
                           const struct fleet_strv *metadata);

/* ---- Dependencies among the units of one machine (fleet_deps.c) ----- */

/* A unit's [Unit] dependency lists with its specifiers expanded
 * ("Requires=db@%i.service" in web@2.service names db@2.service). */
struct fleet_deps {
    struct fleet_strv requires, binds_to, wants, after, before; /* owned */
};

/* Expands svc's lists for the unit sp->name (sp and svc borrowed). A word
 * with an unknown specifier is kept as written. Returns 0 or CN_ENOMEM; d
 * is initialised by the call and closed by the caller in both cases. */
int fleet_deps_init(struct fleet_deps *d, const struct fleet_service *svc,
                    const struct fleet_spec *sp);
void fleet_deps_close(struct fleet_deps *d);

/* Why a unit may not run or start yet (fleet_dep_unit.reason). */
enum fleet_dep_reason {
    FLEET_DEP_OK = 0,
    FLEET_DEP_NOT_HERE,    /* required unit not launched on this machine */
    FLEET_DEP_FAILED,      /* required unit failed */
    FLEET_DEP_ENDED,       /* BindsTo= unit is no longer active */
    FLEET_DEP_NOT_ACTIVE,  /* Requires=+After=: not active yet */
    FLEET_DEP_STARTING,    /* After= only: its start has not finished */
    FLEET_DEP_STOP_ORDER,  /* must stop after units ordered after it */
    FLEET_DEP_UNSCHEDULED, /* After= unit launched, not scheduled yet */
};
/* "is not launched on this machine", ... */
const char *fleet_dep_reason_text(int reason);

/* One unit an agent has (scheduled there or Global there, or still
 * running there), what the agent knows of it, and the decision. */
struct fleet_dep_unit {
    const char *name;              /* borrowed */
    const struct fleet_deps *deps; /* borrowed; NULL: none */
    int launched;    /* its desired state on this machine is launched */
    int started;     /* the agent started it for this desire (it may have
                      * ended since) */
    int up;          /* its supervisor lives: starting, running, stopping */
    int stopping;    /* a stop has been sent */
    int active;      /* ActiveState active */
    int failed;      /* ActiveState failed */
    int been_active; /* was active since it was last started */
    /* out */
    int hold;        /* a requirement is missing: must not run (stop it) */
    int wait;        /* ordering: may not start yet */
    int stop_wait;   /* must stop, but only after units ordered after it */
    int reason;      /* enum fleet_dep_reason of hold/wait/stop_wait */
    int blocker;     /* index of the unit behind reason, -1: none */
    const char *why; /* name of that unit (borrowed from deps or us) */
};

/* Answers whether name is a unit of the cluster (a job): FLEET_JOB_NONE
 * when it is not, FLEET_JOB_PENDING when its desired state is launched and
 * the engine has not scheduled it yet (as when `start c d` submits both at
 * once), FLEET_JOB otherwise. Dependencies on other names
 * (network.target, docker.service) are the host's, outside the cluster's
 * control, and count as met. */
enum { FLEET_JOB_NONE = 0, FLEET_JOB = 1, FLEET_JOB_PENDING = 2 };
typedef int fleet_deps_known_fn(void *ctx, const char *name);

/* Decides, for the n units of one machine, which must not run (hold),
 * which may not start yet (wait) and which must wait for others to stop
 * first (stop_wait); the rules are in docs/units.md ("Dependencies").
 * Requirements (Requires=, BindsTo=) are met only by units launched on the
 * same machine, as with fleet. Ordering cycles are broken: their units are
 * neither held back from starting nor from stopping. us[].name must be
 * distinct. Pure; no allocation; O(n^2 x list lengths). */
void fleet_deps_decide(struct fleet_dep_unit *us, size_t n,
                       fleet_deps_known_fn *known, void *ctx);

/* ---- Unit hash (fleet_unit.c, over base's cn_sha1) ----------------- */

/* 40 lowercase hex digits + NUL into hex. */
void fleet_sha1_hex(const void *data, size_t len, char hex[41]);

#endif
