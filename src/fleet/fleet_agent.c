/*
 * fleet_agent: cairn-agent, one per machine.
 *
 * One thread, one loop; each turn:
 *   1. heartbeat: machines/<id>/object with TTL agent-ttl, every ttl/3;
 *   2. supervisor: read the shims' state lines, reap them; start and stop
 *      units as their desired states and dependencies say (fleet_deps.c:
 *      Requires=/BindsTo= met by units launched here, After=/Before=
 *      ordering starts, and stops in reverse);
 *   3. sync: when the job tree changed (or every reconcile interval) read
 *      job/ and the unit texts it lacks, decide which units are ours
 *      (target == us, or Global and our metadata fits) and start/stop;
 *   4. publish: states/<unit>/<id> and job/<unit>/job-state with TTL on
 *      change and every ttl/3; journal/<unit> tails once a second;
 *   5. engine: election step every ttl/3 on lease/engine-leader; the
 *      leader reconciles (fleet_sched_decide) on job or machine changes and
 *      every reconcile interval, writing targets with compare-and-swap;
 *   6. watch: one long poll (<= 200 ms) on job/ (the leader: the whole
 *      prefix, to see machines expire at once).
 * Because every write carries a TTL, a dead agent's machine, states and
 * lease disappear by themselves, and the engine moves its units.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_elect.h"
#include "fleet.h"
#include "fleet_store.h"
#include "fleet_sup.h"

#define MOD "agent"
#define WATCH_SKIP_EVENTS 200 /* behind by more: re-read instead */
#define FULL_RESYNC_MS 30000  /* re-read job/ whole, in case of a lost event */

struct content {
    char hash[48];
    struct fleet_service svc;
    int ok; /* parsed */
};

struct unit {
    char name[FLEET_NAME_MAX];
    char hash[48];
    int desired; /* FLEET_TS_* on this machine; INACTIVE: not ours */
    int started; /* we launched it for the current desire */
    struct fleet_run run;
    int dirty; /* state to publish */
    int64_t next_publish_ms;
    int64_t journal_next_ms;
    long long journal_size;
    int present; /* seen in the last sync */
    /* dependencies (fleet_deps.c) */
    struct fleet_deps deps;    /* lists of the text deps_hash, expanded */
    char deps_hash[48];        /* "": none known yet */
    int been_active;           /* active since it was last started */
    int hold, wait, stop_wait; /* this turn's decision */
    char waiting[FLEET_NAME_MAX + 64]; /* why it does not run, published */
};

struct job {
    char name[FLEET_NAME_MAX];
    char hash[48];
    int target_state;
    char target[64];
    const struct content *c; /* NULL: text unknown */
    int64_t unsched_since;   /* ms; to be launched, not scheduled since */
};

struct agent {
    /* flags */
    const char *endpoints, *prefix, *public_ip, *metadata, *state_dir;
    int64_t ttl_s, reconcile_ms;
    /* identity */
    struct fleet_machine me;
    char hostname[256];
    struct fleet_sup_env env;
    struct fleet_store st;
    struct cn_logger log;
    /* what we know */
    struct content **contents; /* each owned */
    size_t ncontents;
    struct job *jobs; /* sorted by name */
    size_t njobs, jobs_cap;
    struct unit *units;
    size_t nunits;
    struct cli_elect elect;          /* the engine lease, over st.cl */
    struct fleet_strv required_seen; /* names required by our units that
                                      * were units of the cluster */
    uint64_t watch_index;
    int jobs_dirty, machines_dirty, resync;
    int64_t next_heartbeat, next_sync, next_elect, next_reconcile,
        last_reconcile, reconcile_cost_ms;
};

/* ---- flags ----------------------------------------------------------- */

static int flag_value(int argc, char **argv, int *i, const char *name,
                      const char **out)
{
    const char *a = argv[*i];
    while (*a == '-')
        a++;
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        return 1;
    }
    if (a[n] == '\0' && *i + 1 < argc) {
        *out = argv[++*i];
        return 1;
    }
    return 0;
}

static int parse_seconds(const char *s, int64_t *ms)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v <= 0)
        return CN_EINVAL;
    if (*end == '\0') {
        *ms = (int64_t)(v * 1000);
        return 0;
    }
    return fleet_parse_timespan(s, ms);
}

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: cairn-agent [flags]\n"
            "  --etcd-servers URL,...        store endpoints "
            "(default " FLEET_ENDPOINT_DEFAULT ")\n"
            "  --etcd-key-prefix PREFIX      key space "
            "(default " FLEET_PREFIX_DEFAULT ")\n"
            "  --public-ip IP                address shown for this machine\n"
            "  --metadata k=v,...            machine metadata\n"
            "  --agent-ttl DURATION          machine TTL (default 30s)\n"
            "  --engine-reconcile-interval S engine period (default 2)\n"
            "  --state-dir DIR               machine ID, journals, records "
            "(default /var/lib/cairn-agent)\n"
            "Each flag may also come from FLEET_<FLAG> (dashes as "
            "underscores).\n");
}

/* 0, 1 on a bad flag (said on stderr), -1 after --help. */
static int parse_flags(struct agent *a, int argc, char **argv)
{
    static const char *const names[] = {
        "etcd-servers", "etcd-key-prefix",           "public-ip", "metadata",
        "agent-ttl",    "engine-reconcile-interval", "state-dir",
    };
    const char *vals[7] = {0};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return -1;
        }
        size_t k;
        for (k = 0; k < 7; k++)
            if (flag_value(argc, argv, &i, names[k], &vals[k]))
                break;
        if (k == 7) {
            fprintf(stderr, "cairn-agent: unknown flag %s\n", argv[i]);
            usage(stderr);
            return 1;
        }
    }
    for (size_t k = 0; k < 7; k++) {
        if (vals[k])
            continue;
        char env[64];
        size_t j = 0;
        j += (size_t)snprintf(env, sizeof(env), "FLEET_");
        for (const char *p = names[k]; *p && j < sizeof(env) - 1; p++)
            env[j++] = *p == '-' ? '_' : (char)(*p - 32 * (*p >= 'a'));
        env[j] = '\0';
        vals[k] = getenv(env);
    }
    a->endpoints = vals[0] ? vals[0] : FLEET_ENDPOINT_DEFAULT;
    a->prefix = vals[1] ? vals[1] : FLEET_PREFIX_DEFAULT;
    a->public_ip = vals[2] ? vals[2] : "";
    a->metadata = vals[3] ? vals[3] : "";
    a->state_dir = vals[6] ? vals[6] : "/var/lib/cairn-agent";
    int64_t ttl_ms = 30000;
    a->reconcile_ms = 2000;
    if ((vals[4] && (fleet_parse_timespan(vals[4], &ttl_ms) != 0 &&
                     parse_seconds(vals[4], &ttl_ms) != 0)) ||
        ttl_ms < 1000) {
        fprintf(stderr, "cairn-agent: bad --agent-ttl \"%s\"\n", vals[4]);
        return 1;
    }
    if (vals[5] && parse_seconds(vals[5], &a->reconcile_ms) != 0) {
        fprintf(stderr, "cairn-agent: bad --engine-reconcile-interval \"%s\"\n",
                vals[5]);
        return 1;
    }
    a->ttl_s = (ttl_ms + 999) / 1000;
    return 0;
}

/* ---- identity -------------------------------------------------------- */

static int mkdirs(const char *dir)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = '\0';
            mkdir(p, 0755);
            *s = '/';
        }
    }
    return mkdir(p, 0755) == 0 || errno == EEXIST ? 0 : CN_EIO;
}

/* <state-dir>/machine-id: 32 hex digits, made once (like /etc/machine-id). */
static int machine_id(const char *dir, char *id, size_t size)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/machine-id", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        int ok = fscanf(f, "%63s", id) == 1 && strlen(id) >= 8;
        fclose(f);
        if (ok)
            return 0;
    }
    unsigned char raw[16];
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, raw, sizeof(raw)) != (ssize_t)sizeof(raw)) {
        if (fd >= 0)
            close(fd);
        return CN_EIO;
    }
    close(fd);
    for (int i = 0; i < 16 && (size_t)(2 * i + 2) < size; i++)
        snprintf(id + 2 * i, 3, "%02x", raw[i]);
    char tmp[1200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return CN_EIO;
    fprintf(f, "%s\n", id);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return CN_EIO;
    return 0;
}

static int parse_metadata(const char *s, struct fleet_strv *out)
{
    /* "k=v,k2=v2" -> sorted "k=v" list. */
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *save, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        char *eq = strchr(tok, '=');
        if (eq == NULL || eq == tok)
            return CN_EINVAL;
        char **v = cn_realloc(out->v, (out->n + 1) * sizeof(*v));
        if (v == NULL)
            return CN_ENOMEM;
        out->v = v;
        int *l = cn_realloc(out->lines, (out->n + 1) * sizeof(*l));
        if (l == NULL)
            return CN_ENOMEM;
        out->lines = l;
        char *c = cn_malloc(strlen(tok) + 1);
        if (c == NULL)
            return CN_ENOMEM;
        strcpy(c, tok);
        size_t i = out->n;
        while (i > 0 && strcmp(out->v[i - 1], c) > 0) {
            out->v[i] = out->v[i - 1];
            i--;
        }
        out->v[i] = c;
        out->lines[out->n++] = 0;
    }
    return 0;
}

/* ---- store I/O helpers ------------------------------------------------ */

static void heartbeat(struct agent *a)
{
    struct cn_buf b = {0};
    char key[128];
    snprintf(key, sizeof(key), "machines/%s/object", a->me.id);
    if (fleet_json_machine_encode(&b, &a->me) == 0) {
        int rc = fleet_store_set(&a->st, key, b.data, a->ttl_s, FLEET_PREV_ANY,
                                 NULL);
        if (rc != 0)
            CN_LOG(&a->log, CN_LOG_WARN, MOD, "heartbeat failed: %s",
                   a->st.errmsg);
    }
    cn_buf_close(&b);
}

static const struct content *content_get(struct agent *a, const char *hash)
{
    for (size_t i = 0; i < a->ncontents; i++)
        if (strcmp(a->contents[i]->hash, hash) == 0)
            return a->contents[i];
    return NULL;
}

static void content_add(struct agent *a, const char *hash, const char *raw)
{
    struct content **cs =
        cn_realloc(a->contents, (a->ncontents + 1) * sizeof(*cs));
    if (cs == NULL)
        return;
    a->contents = cs;
    struct content *c = cn_calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    a->contents[a->ncontents++] = c;
    snprintf(c->hash, sizeof(c->hash), "%s", hash);
    char err[CN_ERRMSG_SIZE];
    c->ok = fleet_service_parse(raw, strlen(raw), &c->svc, err) == 0;
    if (!c->ok)
        CN_LOG(&a->log, CN_LOG_WARN, MOD, "unit %s does not parse: %s", hash,
               err);
}

/* Fetches the unit texts the jobs name that we do not have: one by one for
 * a few, the whole unit/ tree for many. */
static void fetch_contents(struct agent *a)
{
    size_t missing = 0;
    for (size_t i = 0; i < a->njobs; i++)
        if (content_get(a, a->jobs[i].hash) == NULL)
            missing++;
    if (missing == 0)
        return;
    struct cli_resp r;
    if (missing > 8) {
        if (fleet_store_get(&a->st, "unit", 1, &r) == 0 && r.node) {
            for (size_t i = 0; i < r.node->node_count; i++) {
                const struct cli_node *n = &r.node->nodes[i];
                char *raw;
                if (content_get(a, fleet_node_name(n)) == NULL &&
                    fleet_json_unit_decode(n->value, &raw) == 0) {
                    content_add(a, fleet_node_name(n), raw);
                    cn_free(raw);
                }
            }
        }
        cli_resp_close(&r);
        return;
    }
    for (size_t i = 0; i < a->njobs; i++) {
        const char *h = a->jobs[i].hash;
        if (content_get(a, h) != NULL)
            continue;
        char key[128];
        char *raw;
        snprintf(key, sizeof(key), "unit/%s", h);
        if (fleet_store_get(&a->st, key, 0, &r) == 0 && r.node &&
            fleet_json_unit_decode(r.node->value, &raw) == 0) {
            content_add(a, h, raw);
            cn_free(raw);
        }
        cli_resp_close(&r);
    }
}

/* Notes since when a job to be launched has waited for the engine. */
static void job_note_schedule(struct job *j)
{
    if (j->target[0] != '\0' || j->target_state != FLEET_TS_LAUNCHED)
        j->unsched_since = 0;
    else if (j->unsched_since == 0)
        j->unsched_since = cli_now_ms();
}

/* Finds job name, or inserts it (sorted) when create. */
static struct job *job_find(struct agent *a, const char *name, int create)
{
    size_t lo = 0, hi = a->njobs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(a->jobs[mid].name, name);
        if (c == 0)
            return &a->jobs[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create || strlen(name) >= FLEET_NAME_MAX)
        return NULL;
    if (a->njobs == a->jobs_cap) {
        size_t cap = a->jobs_cap ? a->jobs_cap * 2 : 16;
        struct job *js = cn_realloc(a->jobs, cap * sizeof(*js));
        if (js == NULL)
            return NULL;
        a->jobs = js;
        a->jobs_cap = cap;
    }
    memmove(&a->jobs[lo + 1], &a->jobs[lo],
            (a->njobs - lo) * sizeof(a->jobs[0]));
    a->njobs++;
    struct job *j = &a->jobs[lo];
    memset(j, 0, sizeof(*j));
    snprintf(j->name, sizeof(j->name), "%s", name);
    return j;
}

/* Reads job/ into a->jobs. Returns 0 or a store error. */
static int read_jobs(struct agent *a, uint64_t *index)
{
    struct cli_resp r;
    int rc = fleet_store_get(&a->st, "job", 1, &r);
    if (rc == CN_ENOTFOUND) {
        a->njobs = 0;
        *index = a->st.index;
        cli_resp_close(&r);
        return 0;
    }
    if (rc != 0) {
        cli_resp_close(&r);
        return rc;
    }
    *index = r.index;
    size_t cap = r.node->node_count + 1;
    struct job *js = cn_calloc(cap, sizeof(*js));
    if (js == NULL) {
        cli_resp_close(&r);
        return CN_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < r.node->node_count; i++) {
        const struct cli_node *d = &r.node->nodes[i];
        const struct cli_node *obj = fleet_node_child(d, "object");
        const struct cli_node *ts = fleet_node_child(d, "target-state");
        const struct cli_node *tg = fleet_node_child(d, "target");
        struct job *j = &js[n];
        if (obj == NULL ||
            fleet_json_job_decode(obj->value, j->hash, sizeof(j->hash)) != 0)
            continue;
        snprintf(j->name, sizeof(j->name), "%s", fleet_node_name(d));
        int t = ts ? fleet_target_state_parse(ts->value) : FLEET_TS_INACTIVE;
        j->target_state = t < 0 ? FLEET_TS_INACTIVE : t;
        snprintf(j->target, sizeof(j->target), "%s", tg ? tg->value : "");
        const struct job *old = job_find(a, j->name, 0);
        j->unsched_since = old ? old->unsched_since : 0;
        job_note_schedule(j);
        n++;
    }
    cli_resp_close(&r);
    cn_free(a->jobs);
    a->jobs = js;
    a->njobs = n;
    a->jobs_cap = cap;
    fetch_contents(a);
    for (size_t i = 0; i < n; i++)
        a->jobs[i].c = content_get(a, a->jobs[i].hash);
    return 0;
}

static void job_content(struct agent *a, struct job *j)
{
    j->c = content_get(a, j->hash);
    if (j->c != NULL || j->hash[0] == '\0')
        return;
    char key[128];
    char *raw;
    struct cli_resp r;
    snprintf(key, sizeof(key), "unit/%s", j->hash);
    if (fleet_store_get(&a->st, key, 0, &r) == 0 && r.node &&
        fleet_json_unit_decode(r.node->value, &raw) == 0) {
        content_add(a, j->hash, raw);
        cn_free(raw);
    }
    cli_resp_close(&r);
    j->c = content_get(a, j->hash);
}

/* Applies one watch event to what we know, so a change costs one event,
 * not a re-read of the whole job tree. */
static void apply_event(struct agent *a, const char *action,
                        const struct cli_node *n)
{
    size_t plen = strlen(a->st.prefix);
    const char *k = n->key;
    if (strncmp(k, a->st.prefix, plen) == 0)
        k += plen;
    else if (k[0] == '/' && strncmp(k + 1, a->st.prefix, plen) == 0)
        k += plen + 1;
    if (strncmp(k, "machines/", 9) == 0) {
        a->machines_dirty = 1;
        return;
    }
    if (strncmp(k, "job/", 4) != 0)
        return;
    k += 4;
    char name[FLEET_NAME_MAX];
    const char *slash = strchr(k, '/');
    size_t nl = slash ? (size_t)(slash - k) : strlen(k);
    if (nl == 0 || nl >= sizeof(name))
        return;
    memcpy(name, k, nl);
    name[nl] = '\0';
    const char *field = slash ? slash + 1 : "";
    int removal = strcmp(action, "delete") == 0 ||
                  strcmp(action, "expire") == 0 ||
                  strcmp(action, "compareAndDelete") == 0;
    a->jobs_dirty = a->machines_dirty = 1;
    if (field[0] == '\0') {
        struct job *j = removal ? job_find(a, name, 0) : NULL;
        if (j != NULL) {
            size_t i = (size_t)(j - a->jobs);
            memmove(&a->jobs[i], &a->jobs[i + 1],
                    (a->njobs - i - 1) * sizeof(a->jobs[0]));
            a->njobs--;
        }
        return;
    }
    struct job *j = job_find(a, name, !removal);
    if (j == NULL)
        return;
    if (strcmp(field, "object") == 0) {
        j->hash[0] = '\0';
        j->c = NULL;
        if (!removal &&
            fleet_json_job_decode(n->value, j->hash, sizeof(j->hash)) == 0)
            job_content(a, j);
    } else if (strcmp(field, "target-state") == 0) {
        int t =
            removal ? FLEET_TS_INACTIVE : fleet_target_state_parse(n->value);
        j->target_state = t < 0 ? FLEET_TS_INACTIVE : t;
    } else if (strcmp(field, "target") == 0) {
        snprintf(j->target, sizeof(j->target), "%s", removal ? "" : n->value);
    }
    job_note_schedule(j);
}

/* ---- local units ----------------------------------------------------- */

static struct unit *unit_get(struct agent *a, const char *name, int create)
{
    for (size_t i = 0; i < a->nunits; i++)
        if (strcmp(a->units[i].name, name) == 0)
            return &a->units[i];
    if (!create)
        return NULL;
    struct unit *u = cn_realloc(a->units, (a->nunits + 1) * sizeof(*u));
    if (u == NULL)
        return NULL;
    a->units = u;
    u = &a->units[a->nunits++];
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", name);
    fleet_run_init(&u->run, name);
    return u;
}

static void unit_forget(struct agent *a, struct unit *u)
{
    fleet_deps_close(&u->deps);
    char key[FLEET_NAME_MAX + 128];
    snprintf(key, sizeof(key), "states/%s/%s", u->name, a->me.id);
    fleet_store_delete(&a->st, key, 0, NULL);
    snprintf(key, sizeof(key), "job/%s/job-state", u->name);
    fleet_store_delete(&a->st, key, 0, a->me.id);
    size_t i = (size_t)(u - a->units);
    a->units[i] = a->units[--a->nunits];
}

static const struct content *content_of(struct agent *a, const char *name)
{
    const struct job *j = job_find(a, name, 0);
    return j ? j->c : NULL;
}

/* Decides which jobs are ours and what they should be. */
static void sync_units(struct agent *a)
{
    for (size_t i = 0; i < a->nunits; i++)
        a->units[i].present = 0;
    for (size_t i = 0; i < a->njobs; i++) {
        const struct job *j = &a->jobs[i];
        int ours;
        if (j->c == NULL || !j->c->ok)
            ours = 0;
        else if (j->c->svc.global)
            ours = fleet_sched_machine_ok(&j->c->svc, j->name, a->me.id,
                                          &a->me.metadata);
        else
            ours = strcmp(j->target, a->me.id) == 0;
        int desired = ours ? j->target_state : FLEET_TS_INACTIVE;
        /* As in fleet, a scheduled unit stays loaded until the engine
         * takes its target away, so "inactive" means unscheduled. */
        if (ours && !j->c->svc.global && desired == FLEET_TS_INACTIVE)
            desired = FLEET_TS_LOADED;
        struct unit *u = unit_get(a, j->name, desired != FLEET_TS_INACTIVE);
        if (u == NULL)
            continue;
        u->present = 1;
        if (strcmp(u->hash, j->hash) != 0 && u->run.shim > 0)
            fleet_sup_stop(&u->run); /* replaced: restart with the new one */
        if (u->desired != desired || strcmp(u->hash, j->hash) != 0) {
            u->dirty = 1;
            if (desired != FLEET_TS_LAUNCHED)
                u->started = 0;
            if (strcmp(u->hash, j->hash) != 0)
                u->started = 0;
        }
        u->desired = desired;
        snprintf(u->hash, sizeof(u->hash), "%s", j->hash);
    }
    for (size_t i = 0; i < a->nunits; i++)
        if (!a->units[i].present) {
            a->units[i].desired = FLEET_TS_INACTIVE;
            a->units[i].started = 0;
        }
}

/* A required name is a unit of the cluster if it is a job now or was
 * one while this agent ran: a destroyed requirement stays missing (its
 * dependents stay stopped) instead of turning into a host unit. */
static int job_known(void *ctx, const char *name)
{
    struct agent *a = ctx;
    const struct job *j = job_find(a, name, 0);
    if (j != NULL) {
        /* A job the engine has not placed yet is waited for a few
         * reconcile rounds; one that fits no machine stops being. */
        int64_t bound =
            3 * a->reconcile_ms < 10000 ? 10000 : 3 * a->reconcile_ms;
        if (j->unsched_since != 0 && cli_now_ms() - j->unsched_since < bound)
            return FLEET_JOB_PENDING;
        return FLEET_JOB;
    }
    for (size_t i = 0; i < a->required_seen.n; i++)
        if (strcmp(a->required_seen.v[i], name) == 0)
            return FLEET_JOB;
    return FLEET_JOB_NONE;
}

static void remember_required(struct agent *a, const struct fleet_strv *l)
{
    for (size_t i = 0; i < l->n; i++) {
        const char *name = l->v[i];
        if (job_find(a, name, 0) == NULL)
            continue;
        size_t k;
        for (k = 0; k < a->required_seen.n; k++)
            if (strcmp(a->required_seen.v[k], name) == 0)
                break;
        if (k < a->required_seen.n)
            continue;
        struct fleet_strv *r = &a->required_seen;
        char **v = cn_realloc(r->v, (r->n + 1) * sizeof(*v));
        if (v == NULL)
            return;
        r->v = v;
        size_t len = strlen(name) + 1;
        if ((r->v[r->n] = cn_malloc(len)) == NULL)
            return;
        memcpy(r->v[r->n++], name, len);
    }
}

/* Keeps u->deps the expanded lists of the unit's current text. */
static void deps_refresh(struct agent *a, struct unit *u)
{
    if (strcmp(u->deps_hash, u->hash) == 0)
        return;
    fleet_deps_close(&u->deps);
    u->deps_hash[0] = '\0';
    const struct content *c = content_of(a, u->name);
    if (c == NULL || !c->ok)
        return;
    struct fleet_spec sp = {u->name, a->hostname, a->me.id};
    if (fleet_deps_init(&u->deps, &c->svc, &sp) != 0) {
        fleet_deps_close(&u->deps);
        return;
    }
    snprintf(u->deps_hash, sizeof(u->deps_hash), "%s", u->hash);
}

/* This turn's dependency decisions (all units stopping when shutting). */
static void plan_deps(struct agent *a, int shutting)
{
    struct fleet_dep_unit *du = cn_calloc(a->nunits + 1, sizeof(*du));
    for (size_t i = 0; du && i < a->nunits; i++) {
        struct unit *u = &a->units[i];
        deps_refresh(a, u);
        du[i].name = u->name;
        du[i].deps = u->deps_hash[0] ? &u->deps : NULL;
        if (du[i].deps) {
            remember_required(a, &u->deps.requires);
            remember_required(a, &u->deps.binds_to);
        }
        du[i].launched = !shutting && u->desired == FLEET_TS_LAUNCHED;
        du[i].started = u->started;
        du[i].up = u->run.shim > 0;
        du[i].stopping = u->run.stopping;
        du[i].active = strcmp(u->run.active, "active") == 0;
        du[i].failed = strcmp(u->run.active, "failed") == 0;
        du[i].been_active = u->been_active;
    }
    if (du)
        fleet_deps_decide(du, a->nunits, job_known, a);
    for (size_t i = 0; i < a->nunits; i++) {
        struct unit *u = &a->units[i];
        /* Without memory for the decision: no dependency holds back. */
        u->hold = du ? du[i].hold : 0;
        u->wait = du ? du[i].wait : 0;
        u->stop_wait = du ? du[i].stop_wait : 0;
        char w[sizeof(u->waiting)] = "";
        if (du && (u->hold || u->wait) && du[i].why)
            snprintf(w, sizeof(w), "%s %s", du[i].why,
                     fleet_dep_reason_text(du[i].reason));
        if (strcmp(w, u->waiting) != 0) {
            if (w[0])
                CN_LOG(&a->log, CN_LOG_INFO, MOD, "unit=%s %s: %s", u->name,
                       u->hold ? "held" : "waiting", w);
            snprintf(u->waiting, sizeof(u->waiting), "%s", w);
            u->dirty = 1;
        }
    }
    cn_free(du);
}

static void poll_units(struct agent *a)
{
    for (size_t i = 0; i < a->nunits; i++) {
        struct unit *u = &a->units[i];
        if (fleet_sup_poll(&u->run))
            u->dirty = 1;
        if (strcmp(u->run.active, "active") == 0)
            u->been_active = 1;
    }
}

static void start_unit(struct agent *a, struct unit *u)
{
    const struct content *c = content_of(a, u->name);
    char err[CN_ERRMSG_SIZE];
    if (c == NULL || !c->ok)
        return;
    if (fleet_sup_start(&u->run, &c->svc, &a->env, err) == 0) {
        u->started = 1;
        u->been_active = 0;
        u->dirty = 1;
        CN_LOG(&a->log, CN_LOG_INFO, MOD, "started unit=%s shim=%d", u->name,
               (int)u->run.shim);
    } else {
        CN_LOG(&a->log, CN_LOG_ERROR, MOD, "start %s: %s", u->name, err);
    }
}

static void apply_units(struct agent *a)
{
    poll_units(a);
    plan_deps(a, 0);
    for (size_t i = 0; i < a->nunits; i++) {
        struct unit *u = &a->units[i];
        int launched = u->desired == FLEET_TS_LAUNCHED;
        if (launched && !u->started && u->run.shim == 0 && !u->hold &&
            !u->wait) {
            start_unit(a, u);
        } else if ((!launched || u->hold) && u->run.shim > 0 && !u->stop_wait) {
            if (!u->run.stopping)
                CN_LOG(&a->log, CN_LOG_INFO, MOD, "stopping unit=%s%s%s",
                       u->name, u->hold ? " because " : "",
                       u->hold ? u->waiting : "");
            fleet_sup_stop(&u->run);
            if (launched)
                u->started = 0; /* held: starts again once met */
        }
        if (u->desired == FLEET_TS_INACTIVE && u->run.shim == 0) {
            unit_forget(a, u);
            i--;
        } else if (u->desired == FLEET_TS_LOADED && u->run.shim == 0 &&
                   strcmp(u->run.active, "inactive") != 0 &&
                   strcmp(u->run.active, "failed") != 0) {
            snprintf(u->run.active, sizeof(u->run.active), "inactive");
            snprintf(u->run.sub, sizeof(u->run.sub), "dead");
            u->dirty = 1;
        }
    }
}

static void publish_journal(struct agent *a, struct unit *u, int64_t now)
{
    if (now < u->journal_next_ms)
        return;
    u->journal_next_ms = now + 1000;
    char path[1400];
    fleet_sup_journal_path(a->state_dir, u->name, path, sizeof(path));
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size == u->journal_size)
        return;
    u->journal_size = st.st_size;
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    /* The last ~8 KiB, from a line start. */
    char buf[8193];
    long off = st.st_size > 8192 ? (long)st.st_size - 8192 : 0;
    fseek(f, off, SEEK_SET);
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *start = buf;
    if (off > 0 && (start = strchr(buf, '\n')) != NULL)
        start++;
    else if (start == NULL)
        start = buf;
    struct cn_buf b = {0};
    char key[FLEET_NAME_MAX + 16];
    snprintf(key, sizeof(key), "journal/%s", u->name);
    if (fleet_json_journal_encode(&b, a->me.id, start) == 0)
        fleet_store_set(&a->st, key, b.data, a->ttl_s * 4, FLEET_PREV_ANY,
                        NULL);
    cn_buf_close(&b);
}

static void publish(struct agent *a, int64_t now)
{
    for (size_t i = 0; i < a->nunits; i++) {
        struct unit *u = &a->units[i];
        if (u->desired == FLEET_TS_INACTIVE)
            continue;
        publish_journal(a, u, now);
        if (!u->dirty && now < u->next_publish_ms)
            continue;
        struct fleet_state s;
        memset(&s, 0, sizeof(s));
        snprintf(s.load, sizeof(s.load), "loaded");
        snprintf(s.active, sizeof(s.active), "%s", u->run.active);
        snprintf(s.sub, sizeof(s.sub), "%s", u->run.sub);
        snprintf(s.hash, sizeof(s.hash), "%s", u->hash);
        snprintf(s.waiting, sizeof(s.waiting), "%s", u->waiting);
        struct cn_buf b = {0};
        char key[FLEET_NAME_MAX + 128];
        snprintf(key, sizeof(key), "states/%s/%s", u->name, a->me.id);
        int rc = fleet_json_state_encode(&b, &s, &a->me);
        if (rc == 0)
            rc = fleet_store_set(&a->st, key, b.data, a->ttl_s, FLEET_PREV_ANY,
                                 NULL);
        cn_buf_close(&b);
        snprintf(key, sizeof(key), "job/%s/job-state", u->name);
        if (rc == 0 && u->desired == FLEET_TS_LAUNCHED)
            rc = fleet_store_set(&a->st, key, a->me.id, a->ttl_s,
                                 FLEET_PREV_ANY, NULL);
        else if (rc == 0 && u->dirty && u->run.shim == 0)
            fleet_store_delete(&a->st, key, 0, a->me.id); /* stopped */
        if (rc == 0) {
            u->dirty = 0;
            u->next_publish_ms = now + a->ttl_s * 1000 / 3;
        }
    }
}

/* ---- engine ---------------------------------------------------------- */

static void reconcile(struct agent *a)
{
    struct cli_resp r;
    int rc = fleet_store_get(&a->st, "machines", 1, &r);
    if (rc != 0 && rc != CN_ENOTFOUND) {
        cli_resp_close(&r);
        return;
    }
    size_t nm = rc == 0 && r.node ? r.node->node_count : 0;
    struct fleet_machine *ms = cn_calloc(nm + 1, sizeof(*ms));
    struct fleet_sched_machine *sm = cn_calloc(nm + 1, sizeof(*sm));
    struct fleet_sched_job *sj = cn_calloc(a->njobs + 1, sizeof(*sj));
    size_t k = 0;
    if (ms == NULL || sm == NULL || sj == NULL)
        goto out;
    for (size_t i = 0; i < nm; i++) {
        const struct cli_node *obj =
            fleet_node_child(&r.node->nodes[i], "object");
        if (obj && fleet_json_machine_decode(obj->value, &ms[k]) == 0) {
            sm[k].id = ms[k].id;
            sm[k].metadata = &ms[k].metadata;
            k++;
        }
    }
    for (size_t i = 0; i < a->njobs; i++) {
        const struct job *j = &a->jobs[i];
        sj[i].name = j->name;
        sj[i].svc = j->c && j->c->ok ? &j->c->svc : NULL;
        sj[i].target_state = j->target_state;
        snprintf(sj[i].target, sizeof(sj[i].target), "%s", j->target);
    }
    fleet_sched_decide(sm, k, sj, a->njobs);
    for (size_t i = 0; i < a->njobs; i++) {
        const struct job *j = &a->jobs[i];
        if (sj[i].svc == NULL || strcmp(sj[i].target, j->target) == 0)
            continue;
        char key[FLEET_NAME_MAX + 32];
        snprintf(key, sizeof(key), "job/%s/target", j->name);
        if (j->target[0])
            rc = fleet_store_delete(&a->st, key, 0, j->target);
        if (sj[i].target[0]) {
            rc = fleet_store_set(&a->st, key, sj[i].target, 0, FLEET_PREV_NONE,
                                 NULL);
            CN_LOG(&a->log, CN_LOG_INFO, MOD,
                   "engine: scheduled unit=%s machine=%s rc=%d", j->name,
                   sj[i].target, rc);
        } else {
            CN_LOG(&a->log, CN_LOG_INFO, MOD, "engine: unscheduled unit=%s",
                   j->name);
        }
    }
out:
    for (size_t i = 0; i < k; i++)
        fleet_machine_close(&ms[i]);
    cn_free(ms);
    cn_free(sm);
    cn_free(sj);
    cli_resp_close(&r);
}

/* ---- the loop -------------------------------------------------------- */

/* Waits for changes until deadline and applies them; once one arrives,
 * drains the events already queued behind it (20 ms each at most) so a
 * burst costs one sync and one engine turn. */
static void watch(struct agent *a, int64_t deadline)
{
    const char *key = a->elect.leader ? "" : "job";
    for (int batch = 0; batch < 1000; batch++) {
        struct cli_resp r;
        int rc =
            fleet_store_watch(&a->st, key, 1, a->watch_index, deadline, &r);
        if (rc == 0 && r.node) {
            a->watch_index = r.node->modified_index + 1;
            apply_event(a, r.action ? r.action : "", r.node);
            int more = r.index >= a->watch_index;
            int far = r.index > a->watch_index + WATCH_SKIP_EVENTS;
            cli_resp_close(&r);
            if (far) {
                /* Far behind (a burst of state refreshes, say): one read of
                 * job/ is cheaper than hundreds of one-event round trips. */
                a->resync = 1;
                return;
            }
            if (!more)
                return;
            deadline = cli_now_ms() + 20;
            continue;
        }
        if (rc == CN_EAGAIN)
            a->resync = 1; /* fell out of the history window */
        else if (rc != CN_ETIMEDOUT && rc != CN_ESHUTDOWN)
            cli_sleep_ms(100);
        cli_resp_close(&r);
        return;
    }
}

static void turn(struct agent *a)
{
    int64_t now = cli_now_ms();
    if (now >= a->next_heartbeat) {
        heartbeat(a);
        a->next_heartbeat = now + a->ttl_s * 1000 / 3;
    }
    if (now >= a->next_elect) {
        int was = a->elect.leader;
        cli_elect_step(&a->elect);
        if (a->elect.leader != was) {
            CN_LOG(&a->log, CN_LOG_INFO, MOD, "engine: %s",
                   a->elect.leader ? "elected leader" : "lost leadership");
            a->machines_dirty = 1;
            a->resync = 1; /* the leader watches more than job/ */
        }
        a->next_elect = now + a->ttl_s * 1000 / 3;
    }
    if (a->resync || now >= a->next_sync) {
        uint64_t idx = 0;
        if (read_jobs(a, &idx) == 0) {
            a->resync = 0;
            a->next_sync = now + FULL_RESYNC_MS;
            a->watch_index = idx + 1;
            a->jobs_dirty = a->machines_dirty = 1;
        }
    }
    if (a->jobs_dirty) {
        sync_units(a);
        a->jobs_dirty = 0;
    }
    /* The engine reconciles on changes, at most once per twice its own
     * last duration (20 ms at least), and every reconcile interval. */
    int64_t gap = 2 * a->reconcile_cost_ms > 20 ? 2 * a->reconcile_cost_ms : 20;
    if (a->elect.leader && (a->machines_dirty || now >= a->next_reconcile) &&
        now - a->last_reconcile >= gap) {
        reconcile(a);
        int64_t done = cli_now_ms();
        a->reconcile_cost_ms = done - now;
        a->machines_dirty = 0;
        a->last_reconcile = done;
        a->next_reconcile = done + a->reconcile_ms;
    }
    apply_units(a);
    publish(a, now);
    int64_t wait_ms = 200;
    if (a->elect.leader && a->machines_dirty) /* a reconcile is due soon */
        wait_ms = a->last_reconcile + gap - cli_now_ms();
    wait_ms = wait_ms > 200 ? 200 : wait_ms < 1 ? 1 : wait_ms;
    watch(a, cli_now_ms() + wait_ms);
}

/* Stops every unit, in reverse dependency order (a unit ordered after
 * another stops first), resending SIGTERM once a second. */
static void shutdown_units(struct agent *a)
{
    int64_t end = cli_now_ms() + 120000;
    for (;;) {
        poll_units(a);
        plan_deps(a, 1);
        size_t alive = 0;
        for (size_t i = 0; i < a->nunits; i++) {
            struct unit *u = &a->units[i];
            if (u->run.shim > 0 && !u->stop_wait)
                fleet_sup_stop(&u->run);
            alive += u->run.shim > 0;
        }
        if (alive == 0)
            break;
        if (cli_now_ms() > end) {
            /* Stuck shims: end them and whatever their units left. */
            for (size_t i = 0; i < a->nunits; i++)
                if (a->units[i].run.shim > 0)
                    kill(a->units[i].run.shim, SIGKILL);
            fleet_sup_cleanup(a->state_dir);
            break;
        }
        usleep(20000);
    }
    while (a->nunits > 0)
        unit_forget(a, &a->units[0]);
    char key[128];
    snprintf(key, sizeof(key), "machines/%s", a->me.id);
    fleet_store_delete(&a->st, key, 1, NULL);
    cli_elect_resign(&a->elect);
}

static void agent_close(struct agent *a)
{
    for (size_t i = 0; i < a->ncontents; i++) {
        fleet_service_close(&a->contents[i]->svc);
        cn_free(a->contents[i]);
    }
    cn_free(a->contents);
    cn_free(a->jobs);
    for (size_t i = 0; i < a->nunits; i++) {
        if (a->units[i].run.status_fd >= 0)
            close(a->units[i].run.status_fd);
        fleet_deps_close(&a->units[i].deps);
    }
    cn_free(a->units);
    fleet_machine_close(&a->me);
    fleet_strv_close(&a->required_seen);
    cli_elect_close(&a->elect);
    fleet_store_close(&a->st);
}

int fleet_agent_main(int argc, char **argv)
{
    struct agent a;
    memset(&a, 0, sizeof(a));
    a.log.fn = cn_log_stderr;
    a.log.level = CN_LOG_INFO;
    int pf = parse_flags(&a, argc, argv);
    if (pf != 0)
        return pf < 0 ? 0 : 1; /* --help, or a bad flag */
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s/run", a.state_dir);
    if (mkdirs(dir) != 0) {
        fprintf(stderr, "cairn-agent: cannot create %s: %s\n", dir,
                strerror(errno));
        return 2;
    }
    snprintf(dir, sizeof(dir), "%s/journal", a.state_dir);
    mkdirs(dir);
    if (machine_id(a.state_dir, a.me.id, sizeof(a.me.id)) != 0) {
        fprintf(stderr, "cairn-agent: cannot keep a machine ID in %s\n",
                a.state_dir);
        return 2;
    }
    snprintf(a.me.ip, sizeof(a.me.ip), "%s", a.public_ip);
    if (parse_metadata(a.metadata, &a.me.metadata) != 0) {
        fprintf(stderr, "cairn-agent: bad --metadata \"%s\"\n", a.metadata);
        fleet_machine_close(&a.me);
        return 1;
    }
    gethostname(a.hostname, sizeof(a.hostname) - 1);
    a.env.state_dir = a.state_dir;
    a.env.machine_id = a.me.id;
    a.env.hostname = a.hostname;
    if (fleet_store_init(&a.st, a.endpoints, a.prefix) != 0) {
        fprintf(stderr, "cairn-agent: %s\n", a.st.errmsg);
        fleet_machine_close(&a.me);
        return 1;
    }
    cli_signal_install();
    int killed = fleet_sup_cleanup(a.state_dir);
    CN_LOG(&a.log, CN_LOG_INFO, MOD,
           "starting machine=%s ip=%s state_dir=%s leftovers_killed=%d",
           a.me.id, a.me.ip, a.state_dir, killed);
    struct cn_buf lease = {0};
    char lease_key[512];
    fleet_json_lease_encode(&lease, a.me.id);
    snprintf(lease_key, sizeof(lease_key), "%slease/engine-leader",
             a.st.prefix);
    int rc = cli_elect_init(&a.elect, &a.st.cl, lease_key,
                            lease.data ? lease.data : a.me.id, a.ttl_s,
                            a.st.timeout_ms);
    cn_buf_close(&lease);
    if (rc != CN_OK) {
        fprintf(stderr, "cairn-agent: %s\n", a.elect.errmsg);
        agent_close(&a);
        return 1;
    }
    a.resync = 1;
    while (!cli_signal_pending())
        turn(&a);
    int sig = cli_signal_take();
    CN_LOG(&a.log, CN_LOG_INFO, MOD, "signal %d: stopping units", sig);
    shutdown_units(&a);
    agent_close(&a);
    return 0;
}
