/*
 * fleet_ctl: cairn-fleetctl, fleetctl's commands over the store (fleetctl's
 * etcd driver): the same lifecycle (inactive -> loaded -> launched), the
 * same messages and the same tables (Go's tabwriter with tab padding:
 * minwidth 0, tabwidth 8, padding 1). `status` and `journal` read what the
 * agents publish instead of running systemctl/journalctl over ssh.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "fleet_store.h"

struct cached {
    char hash[48];
    char *raw; /* cn_malloc'd */
};

struct ctl {
    struct fleet_store st;
    struct cached *cache; /* unit texts by hash */
    size_t ncache;
    const char *endpoint, *prefix;
    int no_legend, full, no_block, replace, follow;
    long block_attempts, lines;
    const char *fields;
    /* machines cache */
    struct fleet_machine *ms;
    size_t nms;
    int ms_loaded;
    /* snapshots of job/ and states/ (snap_load), when loaded */
    struct cli_resp jobs, states;
    int have_jobs, have_states;
};

/* A command about more units than this reads job/ and states/ whole (one
 * request each per look) instead of one request per unit and look. */
#define BATCH_MIN 4
/* More unit texts missing than this: one read of unit/ for all of them. */
#define TEXTS_ONE_BY_ONE 8

/* One unit as fleetctl's schema.Unit sees it. */
struct cunit {
    char name[FLEET_NAME_MAX];
    char hash[48];
    char dstate[16]; /* target-state */
    char target[64]; /* machine */
    char heartbeat[64];
    char current[16]; /* determineJobState */
    int global;
    char *raw; /* owned */
};

static void err_line(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void err_line(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- tabwriter -------------------------------------------------------- */

struct table {
    char ***rows; /* rows[r][c], owned */
    size_t nrows, ncols;
};

static void table_add(struct table *t, char **cells)
{
    char ***rows = realloc(t->rows, (t->nrows + 1) * sizeof(*rows));
    if (rows == NULL)
        return;
    t->rows = rows;
    char **copy = calloc(t->ncols, sizeof(char *));
    for (size_t c = 0; copy && c < t->ncols; c++)
        copy[c] = strdup(cells[c]);
    t->rows[t->nrows++] = copy;
}

/* Go's text/tabwriter with padchar '\t': every cell but the last of a
 * line is padded with tabs to the column width (max + padding, rounded up
 * to the tab width). */
static void table_print(struct table *t)
{
    size_t *w = calloc(t->ncols + 1, sizeof(size_t));
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c + 1 < t->ncols; c++) {
            size_t n = strlen(t->rows[r][c]) + 1;
            if (n > w[c])
                w[c] = n;
        }
    for (size_t c = 0; c + 1 < t->ncols; c++)
        w[c] = (w[c] + 7) / 8 * 8;
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->rows[r][c];
            fputs(s, stdout);
            if (c + 1 < t->ncols) {
                size_t n = strlen(s);
                for (size_t k = n; k < w[c]; k = (k / 8 + 1) * 8)
                    fputc('\t', stdout);
            }
            free(t->rows[r][c]);
        }
        fputc('\n', stdout);
        free(t->rows[r]);
    }
    free(t->rows);
    free(w);
}

/* ---- registry reads -------------------------------------------------- */

static void load_machines(struct ctl *x)
{
    if (x->ms_loaded)
        return;
    x->ms_loaded = 1;
    struct cli_resp r;
    if (fleet_store_get(&x->st, "machines", 1, &r) == 0 && r.node) {
        x->ms = calloc(r.node->node_count + 1, sizeof(*x->ms));
        for (size_t i = 0; x->ms && i < r.node->node_count; i++) {
            const struct cli_node *o =
                fleet_node_child(&r.node->nodes[i], "object");
            if (o && fleet_json_machine_decode(o->value, &x->ms[x->nms]) == 0)
                x->nms++;
        }
    }
    cli_resp_close(&r);
}

static const struct fleet_machine *machine(struct ctl *x, const char *id)
{
    load_machines(x);
    for (size_t i = 0; i < x->nms; i++)
        if (strcmp(x->ms[i].id, id) == 0)
            return &x->ms[i];
    return NULL;
}

/* machineIDLegend / machineFullLegend */
static void legend(struct ctl *x, const char *id, int with_ip, char *out,
                   size_t size)
{
    const struct fleet_machine *m = with_ip ? machine(x, id) : NULL;
    char idl[80];
    if (x->full)
        snprintf(idl, sizeof(idl), "%s", id);
    else
        snprintf(idl, sizeof(idl), "%.8s...", id);
    if (m && m->ip[0])
        snprintf(out, size, "%s/%s", idl, m->ip);
    else
        snprintf(out, size, "%s", idl);
}

/* Drops the snapshots of job/ and states/. */
static void snap_drop(struct ctl *x)
{
    cli_resp_close(&x->jobs);
    cli_resp_close(&x->states);
    memset(&x->jobs, 0, sizeof(x->jobs));
    memset(&x->states, 0, sizeof(x->states));
    x->have_jobs = x->have_states = 0;
}

/* Reads job/ (and states/ when with_states) whole, one recursive GET each,
 * so that a command about many units costs two requests per look instead
 * of two per unit. Returns 0, or CN_EIO with x->st.errmsg (nothing kept).
 */
static int snap_load(struct ctl *x, int with_states)
{
    snap_drop(x);
    int rc = fleet_store_get(&x->st, "job", 1, &x->jobs);
    if (rc == CN_ENOTFOUND) {
        cli_resp_close(&x->jobs);
        memset(&x->jobs, 0, sizeof(x->jobs));
        rc = 0;
    }
    if (rc == 0 && with_states) {
        rc = fleet_store_get(&x->st, "states", 1, &x->states);
        if (rc == CN_ENOTFOUND) {
            cli_resp_close(&x->states);
            memset(&x->states, 0, sizeof(x->states));
            rc = 0;
        }
        x->have_states = rc == 0;
    }
    x->have_jobs = rc == 0;
    if (rc != 0)
        snap_drop(x);
    return rc == 0 ? 0 : CN_EIO;
}

static int state_exists(struct ctl *x, const char *name, const char *mid,
                        struct fleet_state *s)
{
    if (x->have_states) {
        const struct cli_node *d =
            x->states.node ? fleet_node_child(x->states.node, name) : NULL;
        const struct cli_node *m = d ? fleet_node_child(d, mid) : NULL;
        return m && (s == NULL || fleet_json_state_decode(m->value, s) == 0);
    }
    char key[FLEET_NAME_MAX + 128];
    snprintf(key, sizeof(key), "states/%s/%s", name, mid);
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, key, 0, &r);
    int ok = rc == 0 && r.node &&
             (s == NULL || fleet_json_state_decode(r.node->value, s) == 0);
    cli_resp_close(&r);
    return ok;
}

static const char *cache_find(const struct ctl *x, const char *hash)
{
    for (size_t i = 0; i < x->ncache; i++)
        if (strcmp(x->cache[i].hash, hash) == 0)
            return x->cache[i].raw;
    return NULL;
}

/* Keeps text (taken) as the unit text of hash; frees it on failure. */
static void cache_add(struct ctl *x, const char *hash, char *text)
{
    struct cached *c = realloc(x->cache, (x->ncache + 1) * sizeof(*c));
    if (c == NULL) {
        cn_free(text);
        return;
    }
    x->cache = c;
    snprintf(c[x->ncache].hash, sizeof(c[0].hash), "%s", hash);
    c[x->ncache++].raw = text;
}

/* Makes sure the texts of hashes[0..n) are cached: when more than
 * TEXTS_ONE_BY_ONE are missing, one recursive GET of unit/ instead of one
 * GET each (unit_raw's). */
static void prefetch_texts(struct ctl *x, const char *const *hashes, size_t n)
{
    size_t missing = 0;
    for (size_t i = 0; i < n; i++)
        missing += hashes[i][0] && cache_find(x, hashes[i]) == NULL;
    if (missing <= TEXTS_ONE_BY_ONE)
        return;
    struct cli_resp r;
    if (fleet_store_get(&x->st, "unit", 1, &r) == 0 && r.node) {
        for (size_t i = 0; i < n; i++) {
            if (hashes[i][0] == '\0' || cache_find(x, hashes[i]))
                continue;
            const struct cli_node *u = fleet_node_child(r.node, hashes[i]);
            char *text = NULL;
            if (u && fleet_json_unit_decode(u->value, &text) == 0 && text)
                cache_add(x, hashes[i], text);
        }
    }
    cli_resp_close(&r);
}

/* The text of unit/<hash>, cached for the run of the command (units are
 * immutable by hash). Returns a cn_malloc'd copy or NULL. */
static char *unit_raw(struct ctl *x, const char *hash)
{
    if (hash[0] == '\0')
        return NULL;
    const char *raw = cache_find(x, hash);
    if (raw == NULL) {
        char key[128];
        char *text = NULL;
        struct cli_resp r;
        snprintf(key, sizeof(key), "unit/%s", hash);
        if (fleet_store_get(&x->st, key, 0, &r) == 0 && r.node)
            fleet_json_unit_decode(r.node->value, &text);
        cli_resp_close(&r);
        if (text == NULL)
            return NULL;
        cache_add(x, hash, text);
        if ((raw = cache_find(x, hash)) == NULL)
            return NULL;
    }
    size_t n = strlen(raw);
    char *copy = cn_malloc(n + 1);
    if (copy)
        memcpy(copy, raw, n + 1);
    return copy;
}

/* 1 when the unit text says [X-Fleet] Global=true. */
static int text_global(const char *raw)
{
    struct fleet_unit_file uf;
    char err[CN_ERRMSG_SIZE];
    int global = 0;
    if (fleet_unit_file_parse(raw, strlen(raw), &uf, err) == 0) {
        const char *g = fleet_unit_file_get(&uf, "X-Fleet", "Global");
        fleet_parse_bool(g ? g : "false", &global);
    }
    fleet_unit_file_close(&uf);
    return global;
}

enum {
    FILL_STATE = 1, /* current: determineJobState (reads states/) */
    FILL_RAW = 2,   /* raw and global (reads unit/<hash>) */
};

static void fill_unit(struct ctl *x, const struct cli_node *d, struct cunit *u,
                      int flags)
{
    memset(u, 0, sizeof(*u));
    snprintf(u->name, sizeof(u->name), "%s", fleet_node_name(d));
    const struct cli_node *n;
    if ((n = fleet_node_child(d, "object")) != NULL)
        fleet_json_job_decode(n->value, u->hash, sizeof(u->hash));
    if ((n = fleet_node_child(d, "target-state")) != NULL)
        snprintf(u->dstate, sizeof(u->dstate), "%s", n->value);
    if ((n = fleet_node_child(d, "target")) != NULL)
        snprintf(u->target, sizeof(u->target), "%s", n->value);
    if ((n = fleet_node_child(d, "job-state")) != NULL)
        snprintf(u->heartbeat, sizeof(u->heartbeat), "%s", n->value);
    if (flags & FILL_RAW) {
        u->raw = unit_raw(x, u->hash);
        u->global = u->raw ? text_global(u->raw) : 0;
    }
    /* determineJobState */
    snprintf(u->current, sizeof(u->current), "inactive");
    if ((flags & FILL_STATE) && u->target[0] &&
        state_exists(x, u->name, u->target, NULL))
        snprintf(u->current, sizeof(u->current), "%s",
                 strcmp(u->heartbeat, u->target) == 0 ? "launched" : "loaded");
}

/* Reads one unit (from the job/ snapshot when one is loaded). u is always
 * filled (zeroed when not found) and closed by the caller. Returns 1
 * found, 0 not found, -1 error (printed). */
static int get_unit(struct ctl *x, const char *name, struct cunit *u, int flags)
{
    memset(u, 0, sizeof(*u));
    if (x->have_jobs) {
        const struct cli_node *d =
            x->jobs.node ? fleet_node_child(x->jobs.node, name) : NULL;
        if (d == NULL || fleet_node_child(d, "object") == NULL)
            return 0;
        fill_unit(x, d, u, flags);
        return 1;
    }
    char key[FLEET_NAME_MAX + 8];
    snprintf(key, sizeof(key), "job/%s", name);
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, key, 1, &r);
    int found = rc == 0 && r.node && fleet_node_child(r.node, "object");
    if (found)
        fill_unit(x, r.node, u, flags);
    cli_resp_close(&r);
    if (rc != 0 && rc != CN_ENOTFOUND) {
        err_line("Error retrieving Unit(%s) from Registry: %s", name,
                 x->st.errmsg);
        return -1;
    }
    return found;
}

static void cunit_close(struct cunit *u)
{
    cn_free(u->raw);
    u->raw = NULL;
}

/* ---- creating units -------------------------------------------------- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return NULL;
    struct cn_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 &&
           b.len <= FLEET_UNIT_BYTES_MAX)
        cn_buf_append(&b, chunk, n);
    fclose(f);
    if (b.data == NULL)
        cn_buf_append_cstr(&b, "");
    return cn_buf_take(&b, len);
}

/* Finds the text for arg: the file, else (for an instance) the template
 * file beside it, else the template in the registry. */
static char *unit_text(struct ctl *x, const char *arg, const char *name,
                       char *from, size_t from_size)
{
    size_t len;
    snprintf(from, from_size, "%s", arg);
    char *t = read_file(arg, &len);
    if (t)
        return t;
    char tmpl[FLEET_NAME_MAX];
    if (fleet_unit_template_of(name, tmpl, sizeof(tmpl)) != 0)
        return NULL;
    const char *slash = strrchr(arg, '/');
    snprintf(from, from_size, "%.*s%s", slash ? (int)(slash - arg + 1) : 0, arg,
             tmpl);
    if ((t = read_file(from, &len)) != NULL)
        return t;
    struct cunit u;
    if (get_unit(x, tmpl, &u, FILL_RAW) == 1 && u.raw) {
        snprintf(from, from_size, "%s", tmpl);
        return u.raw;
    }
    cunit_close(&u);
    return NULL;
}

/* What a load/start/stop/unload command knows of each unit it names. */
struct item {
    char name[FLEET_NAME_MAX];
    int found;   /* in the registry when the command began */
    int created; /* created by this command */
    int global;  /* [X-Fleet] Global=true */
    char dstate[16];
    char current[16];
};

/* Looks up every name (mangled) in one read of job/ (and states/, texts)
 * for a batch, one read per unit for a few. flags: FILL_*. Returns 0, or
 * 1 after printing an error. */
static int resolve(struct ctl *x, int argc, char **argv, struct item *it,
                   int flags)
{
    int rc = 0;
    if (argc > BATCH_MIN) {
        if (snap_load(x, flags & FILL_STATE) != 0) {
            err_line("Error retrieving list of units from repository: %s",
                     x->st.errmsg);
            return 1;
        }
        if (flags & FILL_RAW) {
            /* The texts of all named units at once. */
            const char **hashes = calloc((size_t)argc + 1, sizeof(char *));
            char(*hbuf)[48] = calloc((size_t)argc + 1, sizeof(*hbuf));
            for (int i = 0; hashes && hbuf && i < argc; i++) {
                char name[FLEET_NAME_MAX];
                fleet_unit_name_mangle(argv[i], name, sizeof(name));
                const struct cli_node *d =
                    x->jobs.node ? fleet_node_child(x->jobs.node, name) : NULL;
                const struct cli_node *o =
                    d ? fleet_node_child(d, "object") : NULL;
                if (o)
                    fleet_json_job_decode(o->value, hbuf[i], sizeof(hbuf[i]));
                hashes[i] = hbuf[i];
            }
            if (hashes && hbuf)
                prefetch_texts(x, hashes, (size_t)argc);
            free(hashes);
            free(hbuf);
        }
    }
    for (int i = 0; i < argc && rc == 0; i++) {
        struct item *t = &it[i];
        memset(t, 0, sizeof(*t));
        fleet_unit_name_mangle(argv[i], t->name, sizeof(t->name));
        struct cunit u;
        int f = get_unit(x, t->name, &u, flags);
        if (f < 0)
            rc = 1;
        t->found = f == 1;
        t->global = u.global;
        snprintf(t->dstate, sizeof(t->dstate), "%s", u.dstate);
        snprintf(t->current, sizeof(t->current), "%s", u.current);
        cunit_close(&u);
    }
    snap_drop(x);
    return rc;
}

/* Writes a new unit: its text (unless the registry has it already: texts
 * are kept by hash), its target state, then its object, which makes it
 * whole for the agents. */
static int create_unit(struct ctl *x, const char *name, const char *raw,
                       const char *state)
{
    char hash[41], key[FLEET_NAME_MAX + 32];
    fleet_sha1_hex(raw, strlen(raw), hash);
    struct cn_buf b = {0};
    int rc = 0;
    if (cache_find(x, hash) == NULL) {
        rc = fleet_json_unit_encode(&b, raw);
        snprintf(key, sizeof(key), "unit/%s", hash);
        if (rc == 0)
            rc = fleet_store_set(&x->st, key, b.data, 0, FLEET_PREV_ANY, NULL);
        size_t n = strlen(raw);
        char *copy = rc == 0 ? cn_malloc(n + 1) : NULL;
        if (copy) {
            memcpy(copy, raw, n + 1);
            cache_add(x, hash, copy);
        }
        cn_buf_reset(&b);
    }
    snprintf(key, sizeof(key), "job/%s/target-state", name);
    if (rc == 0)
        rc = fleet_store_set(&x->st, key, state, 0, FLEET_PREV_ANY, NULL);
    snprintf(key, sizeof(key), "job/%s/object", name);
    if (rc == 0)
        rc = fleet_json_job_encode(&b, name, hash);
    if (rc == 0)
        rc = fleet_store_set(&x->st, key, b.data, 0, FLEET_PREV_ANY, NULL);
    cn_buf_close(&b);
    if (rc != 0)
        err_line("Error creating units: failed creating unit %s: %s", name,
                 x->st.errmsg);
    return rc;
}

/* Reads and checks the file of a unit that is not in the registry; prints
 * the error and returns NULL when it cannot be used. *global is set. */
static char *new_unit_text(struct ctl *x, const char *arg, const char *name,
                           int *global)
{
    char from[1024];
    char *raw = unit_text(x, arg, name, from, sizeof(from));
    if (raw == NULL) {
        err_line("Error creating units: unable to find unit file %s: %s", arg,
                 strerror(ENOENT));
        return NULL;
    }
    if (fleet_unit_name_kind(name) == FLEET_NAME_TEMPLATE) {
        err_line("Error creating units: cannot submit template unit %s; "
                 "submit an instance such as %.*s1%s",
                 name, (int)(strchr(name, '@') - name + 1), name,
                 strrchr(name, '.'));
        cn_free(raw);
        return NULL;
    }
    struct fleet_service svc;
    char err[CN_ERRMSG_SIZE];
    if (fleet_service_parse(raw, strlen(raw), &svc, err) != 0) {
        err_line("Error creating units: %s: %s", from, err);
        fleet_service_close(&svc);
        cn_free(raw);
        return NULL;
    }
    for (char *l = svc.warnings.data; l && *l;) {
        char *nl = strchr(l, '\n');
        fprintf(stderr, "WARNING: Unit %s: %.*s\n", name,
                (int)(nl ? nl - l : (long)strlen(l)), l);
        l = nl ? nl + 1 : l + strlen(l);
    }
    *global = svc.global;
    fleet_service_close(&svc);
    return raw;
}

/* lazyCreateUnits: every file is read and checked before anything is
 * written, so a malformed one submits nothing. New units are written with
 * target state `state` at once (fleetctl creates them inactive and sets
 * the target state next: one write less per unit, same outcome), and
 * reported "inactive" without a read back: the writes succeeded and no
 * engine has placed them yet. it[0..argc) is filled. Returns 0 or 1. */
static int lazy_create(struct ctl *x, int argc, char **argv, struct item *it,
                       const char *state, int flags)
{
    for (int i = 0; i < argc; i++) {
        char name[FLEET_NAME_MAX];
        fleet_unit_name_mangle(argv[i], name, sizeof(name));
        if (fleet_unit_name_kind(name) < 0) {
            err_line("Error creating units: invalid unit name \"%s\"", name);
            return 1;
        }
    }
    if (resolve(x, argc, argv, it, flags) != 0)
        return 1;
    char **texts = calloc((size_t)argc + 1, sizeof(char *));
    int rc = texts ? 0 : 1;
    for (int i = 0; i < argc && rc == 0; i++) {
        if (it[i].found)
            continue;
        int dup = 0; /* named twice */
        for (int k = 0; k < i; k++)
            dup |= it[k].created && strcmp(it[k].name, it[i].name) == 0;
        if (dup) {
            it[i].found = 1;
            snprintf(it[i].dstate, sizeof(it[i].dstate), "%s", state);
            continue;
        }
        texts[i] = new_unit_text(x, argv[i], it[i].name, &it[i].global);
        if (texts[i] == NULL)
            rc = 1;
        it[i].created = 1;
    }
    for (int i = 0; i < argc && rc == 0; i++)
        if (texts[i] && create_unit(x, it[i].name, texts[i], state) != 0)
            rc = 1;
    for (int i = 0; i < argc && rc == 0; i++) {
        if (!it[i].created)
            continue;
        snprintf(it[i].dstate, sizeof(it[i].dstate), "%s", state);
        snprintf(it[i].current, sizeof(it[i].current), "inactive");
        printf("Unit %s inactive\n", it[i].name);
    }
    fflush(stdout);
    for (int i = 0; texts && i < argc; i++)
        cn_free(texts[i]);
    free(texts);
    return rc;
}

/* ---- waiting ---------------------------------------------------------- */

static void print_triggered(const char *name, const char *state)
{
    printf("Triggered unit %s %s\n", name,
           strcmp(state, "launched") == 0   ? "start"
           : strcmp(state, "loaded") == 0   ? "load"
           : strcmp(state, "inactive") == 0 ? "unload"
                                            : state);
}

/* assertUnitState for every name at once, as fleetctl's goroutines do:
 * each look (every 250 ms) reads job/ and states/ whole when more than
 * BATCH_MIN units are still awaited, else each awaited unit alone. A unit
 * has block_attempts x 8 looks to reach `state` (0: no limit); with
 * active, as many more for the agent's ActiveState "active" (the start
 * path). Each line is printed as its unit gets there. --no-block prints
 * "Triggered" lines and does not wait. Returns 0 or 1 (error printed). */
static int wait_states(struct ctl *x, char **names, size_t n, const char *state,
                       int active)
{
    if (x->no_block) {
        for (size_t i = 0; i < n; i++)
            print_triggered(names[i], state);
        return 0;
    }
    int *phase = calloc(n + 1, sizeof(int)); /* 0 state, 1 active, 2 done */
    long *looks = calloc(n + 1, sizeof(long));
    if (phase == NULL || looks == NULL) {
        free(phase);
        free(looks);
        return 1;
    }
    long limit = x->block_attempts > 0 ? x->block_attempts * 8 : -1;
    size_t left = n;
    int rc = 0;
    while (left > 0 && rc == 0) {
        if (left > BATCH_MIN && snap_load(x, 1) != 0)
            err_line("Error retrieving list of units from repository: %s",
                     x->st.errmsg);
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (phase[i] == 2)
                continue;
            struct cunit u;
            int f = get_unit(x, names[i], &u, FILL_STATE);
            /* "inactive" counts once the engine took the target away
             * (the agent may drop its state a moment earlier). */
            int settled = strcmp(state, "inactive") != 0 ||
                          u.target[0] == '\0' || u.dstate[0] == '\0' ||
                          strcmp(u.dstate, "inactive") != 0;
            if (phase[i] == 0 && f == 1 && strcmp(u.current, state) == 0 &&
                settled) {
                char leg[160] = "";
                if (u.target[0] && machine(x, u.target)) {
                    x->full = 0;
                    legend(x, u.target, 1, leg, sizeof(leg));
                }
                printf("Unit %s %s%s%s\n", names[i], u.current,
                       leg[0] ? " on " : "", leg);
                fflush(stdout);
                phase[i] = active ? 1 : 2;
                looks[i] = 0;
            }
            struct fleet_state s;
            if (phase[i] == 1 && f == 1 && u.target[0] &&
                state_exists(x, names[i], u.target, &s) &&
                strcmp(s.active, "active") == 0)
                phase[i] = 2;
            cunit_close(&u);
            if (phase[i] == 2) {
                left--;
            } else if (limit >= 0 && ++looks[i] >= limit) {
                if (phase[i] == 0)
                    err_line("Error waiting for units: timed out waiting for "
                             "unit %s to report state %s",
                             names[i], state);
                else
                    err_line("Error waiting for systemd unit states, err: "
                             "Failed to find an active unit %s",
                             names[i]);
                rc = 1;
            }
        }
        snap_drop(x);
        if (left > 0 && rc == 0)
            usleep(250000);
    }
    free(phase);
    free(looks);
    return rc;
}

/* ---- commands --------------------------------------------------------- */

static int set_target_state(struct ctl *x, const char *name, const char *state)
{
    char key[FLEET_NAME_MAX + 32];
    snprintf(key, sizeof(key), "job/%s/target-state", name);
    return fleet_store_set(&x->st, key, state, 0, FLEET_PREV_ANY, NULL);
}

static int cmd_submit(struct ctl *x, int argc, char **argv)
{
    if (argc == 0) {
        err_line("No units given");
        return 0;
    }
    struct item *it = calloc((size_t)argc, sizeof(*it));
    int rc = it ? lazy_create(x, argc, argv, it, "inactive", 0) : 1;
    free(it);
    return rc ? 1 : 0;
}

/* load and start */
static int cmd_load_start(struct ctl *x, int argc, char **argv,
                          const char *state)
{
    if (argc == 0) {
        err_line("No units given");
        return 0;
    }
    struct item *it = calloc((size_t)argc, sizeof(*it));
    char **wait = calloc((size_t)argc + 1, sizeof(char *));
    if (it == NULL || wait == NULL ||
        lazy_create(x, argc, argv, it, state, FILL_RAW) != 0) {
        free(it);
        free(wait);
        return 1;
    }
    size_t nw = 0;
    int rc = 0;
    const char *verb = strcmp(state, "loaded") == 0 ? "load" : "start";
    for (int i = 0; i < argc && rc == 0; i++) {
        struct item *t = &it[i];
        if (strcmp(t->dstate, state) == 0 && !t->created)
            continue; /* already asked for */
        if (!t->created && set_target_state(x, t->name, state) != 0) {
            err_line("Error %s units: %s",
                     strcmp(state, "loaded") == 0 ? "loading" : "starting",
                     x->st.errmsg);
            rc = 1;
        } else if (t->global) {
            printf("Triggered global unit %s %s\n", t->name, verb);
        } else {
            wait[nw++] = t->name;
        }
    }
    if (rc == 0 && nw > 0 &&
        wait_states(x, wait, nw, state, strcmp(state, "launched") == 0) != 0)
        rc = 1;
    free(wait);
    free(it);
    return rc;
}

static void print_list(FILE *f, char **names, size_t n)
{
    fputc('[', f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%s", i ? " " : "", names[i]);
    fputc(']', f);
}

/* stop (-> loaded) and unload (-> inactive) */
static int cmd_stop_unload(struct ctl *x, int argc, char **argv, int unload)
{
    if (argc == 0) {
        err_line("No units given");
        return 0;
    }
    const char *to = unload ? "inactive" : "loaded";
    struct item *it = calloc((size_t)argc, sizeof(*it));
    char **wait = calloc((size_t)argc + 1, sizeof(char *));
    if (it == NULL || wait == NULL ||
        resolve(x, argc, argv, it, FILL_RAW | FILL_STATE) != 0) {
        free(it);
        free(wait);
        return 1;
    }
    size_t nw = 0, found = 0;
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        struct item *t = &it[i];
        if (!t->found)
            continue;
        found++;
        if (!t->global && !unload && strcmp(t->current, "inactive") == 0) {
            err_line("Unable to stop unit %s in state inactive", t->name);
            rc = 1;
        } else if (!t->global && strcmp(t->current, to) == 0) {
            /* already there */
        } else {
            set_target_state(x, t->name, to);
            if (t->global)
                printf("Triggered global unit %s %s\n", t->name,
                       unload ? "unload" : "stop");
            else
                wait[nw++] = t->name;
        }
    }
    if (rc == 0 && found == 0) {
        err_line("Units not found in registry");
    } else if (rc == 0) {
        if (wait_states(x, wait, nw, to, 0) != 0) {
            fprintf(stderr, "Failed to %s units ", unload ? "unload" : "stop");
            print_list(stderr, wait, nw);
            fprintf(stderr, ". err: timed out\n");
            rc = 1;
        } else {
            fprintf(stderr, "Successfully %s units ",
                    unload ? "unloaded" : "stopped");
            print_list(stderr, wait, nw);
            fprintf(stderr, ".\n");
        }
    }
    free(wait);
    free(it);
    return rc;
}

static int cmd_destroy(struct ctl *x, int argc, char **argv)
{
    if (argc == 0) {
        err_line("No units given");
        return 0;
    }
    int rc = 0, found = 0;
    for (int i = 0; i < argc; i++) {
        char name[FLEET_NAME_MAX], key[FLEET_NAME_MAX + 8];
        fleet_unit_name_mangle(argv[i], name, sizeof(name));
        snprintf(key, sizeof(key), "job/%s", name);
        int r = fleet_store_delete(&x->st, key, 1, NULL);
        if (r == CN_ENOTFOUND)
            continue;
        found++;
        if (r != 0) {
            err_line("Error destroying units: %s", x->st.errmsg);
            rc = 1;
            continue;
        }
        printf("Destroyed %s\n", name);
    }
    if (!found && !rc)
        err_line("Units not found in registry");
    return rc;
}

static int cmd_cat(struct ctl *x, int argc, char **argv)
{
    if (argc != 1) {
        err_line("One unit file must be provided");
        return 1;
    }
    char name[FLEET_NAME_MAX];
    fleet_unit_name_mangle(argv[0], name, sizeof(name));
    struct cunit u;
    int f = get_unit(x, name, &u, FILL_RAW);
    if (f == 0)
        err_line("Unit %s not found", name);
    if (f == 1 && u.raw)
        fputs(u.raw, stdout);
    cunit_close(&u);
    return f == 1 ? 0 : 1;
}

static int parse_fields(const char *fields, const char *const *valid,
                        char cols[][16], size_t *ncols)
{
    if (fields[0] == '\0') {
        err_line("Must define output format");
        return 1;
    }
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", fields);
    *ncols = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t && *ncols < 8;
         t = strtok_r(NULL, ",", &save)) {
        size_t k;
        for (k = 0; valid[k] && strcmp(valid[k], t) != 0; k++)
            ;
        if (valid[k] == NULL) {
            err_line("Invalid key in output format: \"%s\"", t);
            return 1;
        }
        snprintf(cols[(*ncols)++], 16, "%s", t);
    }
    return 0;
}

static void legend_row(struct table *t, char cols[][16], size_t n)
{
    char *cells[8];
    char up[8][16];
    for (size_t c = 0; c < n; c++) {
        for (size_t k = 0; k < 16; k++)
            up[c][k] = (char)((cols[c][k] >= 'a' && cols[c][k] <= 'z')
                                  ? cols[c][k] - 32
                                  : cols[c][k]);
        cells[c] = up[c];
    }
    table_add(t, cells);
}

static int cmd_list_machines(struct ctl *x)
{
    static const char *const valid[] = {"machine", "ip", "metadata", NULL};
    char cols[8][16];
    size_t n;
    if (parse_fields(x->fields ? x->fields : "machine,ip,metadata", valid, cols,
                     &n))
        return 1;
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, "machines", 0, &r);
    cli_resp_close(&r);
    if (rc != 0 && rc != CN_ENOTFOUND) {
        err_line("Error retrieving list of active machines from fleet API "
                 "(%s)",
                 x->st.errmsg);
        err_line("Possible issues:");
        err_line("  etcd is unhealthy and/or lost quorum");
        err_line("  connection cannot be established to any etcd servers");
        return 1;
    }
    load_machines(x);
    struct table t = {0};
    t.ncols = n;
    if (!x->no_legend)
        legend_row(&t, cols, n);
    for (size_t i = 0; i < x->nms; i++) {
        const struct fleet_machine *m = &x->ms[i];
        char cell[8][512];
        char *cells[8];
        for (size_t c = 0; c < n; c++) {
            cells[c] = cell[c];
            if (strcmp(cols[c], "machine") == 0)
                legend(x, m->id, 0, cell[c], sizeof(cell[c]));
            else if (strcmp(cols[c], "ip") == 0)
                snprintf(cell[c], 512, "%s", m->ip[0] ? m->ip : "-");
            else {
                cell[c][0] = '\0';
                for (size_t k = 0; k < m->metadata.n; k++)
                    snprintf(cell[c] + strlen(cell[c]), 512 - strlen(cell[c]),
                             "%s%s", k ? "," : "", m->metadata.v[k]);
                if (m->metadata.n == 0)
                    snprintf(cell[c], 512, "-");
            }
        }
        table_add(&t, cells);
    }
    table_print(&t);
    return 0;
}

static int cmd_list_unit_files(struct ctl *x)
{
    static const char *const valid[] = {"desc",     "dstate", "global",
                                        "hash",     "state",  "target",
                                        "tmachine", "unit",   NULL};
    char cols[8][16];
    size_t n;
    if (parse_fields(x->fields ? x->fields : "unit,hash,dstate,state,target",
                     valid, cols, &n))
        return 1;
    /* job/, states/ and the unit texts: three reads for any number. */
    if (snap_load(x, 1) != 0) {
        err_line("Error retrieving list of units from repository: %s",
                 x->st.errmsg);
        return 1;
    }
    const struct cli_node *jobs = x->jobs.node;
    size_t nj = jobs ? jobs->node_count : 0;
    const char **hashes = calloc(nj + 1, sizeof(char *));
    char(*hbuf)[48] = calloc(nj + 1, sizeof(*hbuf));
    for (size_t i = 0; hashes && hbuf && i < nj; i++) {
        const struct cli_node *o = fleet_node_child(&jobs->nodes[i], "object");
        if (o)
            fleet_json_job_decode(o->value, hbuf[i], sizeof(hbuf[i]));
        hashes[i] = hbuf[i];
    }
    if (hashes && hbuf)
        prefetch_texts(x, hashes, nj);
    free(hashes);
    free(hbuf);
    struct table t = {0};
    t.ncols = n;
    if (!x->no_legend)
        legend_row(&t, cols, n);
    for (size_t i = 0; i < nj; i++) {
        struct cunit u;
        if (fleet_node_child(&jobs->nodes[i], "object") == NULL)
            continue;
        fill_unit(x, &jobs->nodes[i], &u, FILL_RAW | FILL_STATE);
        char cell[8][512];
        char *cells[8];
        for (size_t c = 0; c < n; c++) {
            cells[c] = cell[c];
            const char *col = cols[c];
            if (strcmp(col, "unit") == 0)
                snprintf(cell[c], 512, "%s", u.name);
            else if (strcmp(col, "global") == 0)
                snprintf(cell[c], 512, "%s", u.global ? "true" : "false");
            else if (strcmp(col, "dstate") == 0)
                snprintf(cell[c], 512, "%s", u.dstate[0] ? u.dstate : "-");
            else if (strcmp(col, "state") == 0)
                snprintf(cell[c], 512, "%s", u.global ? "-" : u.current);
            else if (strcmp(col, "hash") == 0)
                snprintf(cell[c], 512, "%.*s", x->full ? 40 : 7, u.hash);
            else if (strcmp(col, "desc") == 0) {
                struct fleet_unit_file uf;
                char err[CN_ERRMSG_SIZE];
                const char *d = NULL;
                if (u.raw &&
                    fleet_unit_file_parse(u.raw, strlen(u.raw), &uf, err) == 0)
                    d = fleet_unit_file_get(&uf, "Unit", "Description");
                snprintf(cell[c], 512, "%s", d && *d ? d : "-");
                fleet_unit_file_close(&uf);
            } else if (u.global)
                snprintf(cell[c], 512, "global");
            else if (u.target[0] == '\0')
                snprintf(cell[c], 512, "-");
            else
                legend(x, u.target, 1, cell[c], 512);
        }
        table_add(&t, cells);
        cunit_close(&u);
    }
    snap_drop(x);
    table_print(&t);
    return 0;
}

static int cmd_list_units(struct ctl *x)
{
    static const char *const valid[] = {"active", "hash", "load", "machine",
                                        "sub",    "unit", NULL};
    char cols[8][16];
    size_t n;
    if (parse_fields(x->fields ? x->fields : "unit,machine,active,sub", valid,
                     cols, &n))
        return 1;
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, "states", 1, &r);
    if (rc != 0 && rc != CN_ENOTFOUND) {
        err_line("Error retrieving list of units from repository: %s",
                 x->st.errmsg);
        cli_resp_close(&r);
        return 1;
    }
    struct table t = {0};
    t.ncols = n;
    if (!x->no_legend)
        legend_row(&t, cols, n);
    for (size_t i = 0; rc == 0 && r.node && i < r.node->node_count; i++) {
        const struct cli_node *d = &r.node->nodes[i];
        for (size_t k = 0; k < d->node_count; k++) {
            struct fleet_state s;
            if (fleet_json_state_decode(d->nodes[k].value, &s) != 0)
                continue;
            const char *mid = fleet_node_name(&d->nodes[k]);
            char cell[8][512];
            char *cells[8];
            for (size_t c = 0; c < n; c++) {
                cells[c] = cell[c];
                const char *col = cols[c];
                if (strcmp(col, "unit") == 0)
                    snprintf(cell[c], 512, "%s", fleet_node_name(d));
                else if (strcmp(col, "load") == 0)
                    snprintf(cell[c], 512, "%s", s.load);
                else if (strcmp(col, "active") == 0)
                    snprintf(cell[c], 512, "%s", s.active);
                else if (strcmp(col, "sub") == 0)
                    snprintf(cell[c], 512, "%s", s.sub);
                else if (strcmp(col, "hash") == 0)
                    snprintf(cell[c], 512, "%.*s", x->full ? 40 : 7,
                             s.hash[0] ? s.hash : "-");
                else
                    legend(x, mid, 1, cell[c], 512);
            }
            table_add(&t, cells);
        }
    }
    cli_resp_close(&r);
    table_print(&t);
    return 0;
}

/* The journal tail an agent published; *lines cn_malloc'd. */
static int journal_text(struct ctl *x, const char *name, char **lines)
{
    char key[FLEET_NAME_MAX + 16];
    snprintf(key, sizeof(key), "journal/%s", name);
    struct cli_resp r;
    *lines = NULL;
    int rc = fleet_store_get(&x->st, key, 0, &r);
    if (rc == 0 && r.node)
        rc = fleet_json_journal_decode(r.node->value, lines);
    cli_resp_close(&r);
    return rc;
}

/* Prints the last n lines of text (all when n < 0) after the line "after"
 * (NULL: from the start); returns the last line printed in last. */
static void print_tail(const char *text, long n, const char *after, char *last,
                       size_t last_size)
{
    const char *start = text;
    if (after && *after) {
        const char *p = strstr(text, after);
        const char *found = NULL;
        while (p) {
            found = p;
            p = strstr(p + 1, after);
        }
        if (found) {
            start = strchr(found, '\n');
            start = start ? start + 1 : found + strlen(found);
        }
    }
    long total = 0;
    for (const char *p = start; *p; p++)
        total += *p == '\n';
    long skip = n >= 0 && total > n ? total - n : 0;
    for (const char *p = start; *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        if (skip > 0) {
            skip--;
        } else {
            printf("%.*s\n", (int)len, p);
            snprintf(last, last_size, "%.*s", (int)len, p);
        }
        p = nl ? nl + 1 : p + len;
    }
    fflush(stdout);
}

static int cmd_journal(struct ctl *x, int argc, char **argv)
{
    if (argc != 1) {
        err_line("One unit file must be provided.");
        return 1;
    }
    char name[FLEET_NAME_MAX];
    fleet_unit_name_mangle(argv[0], name, sizeof(name));
    struct cunit u;
    int f = get_unit(x, name, &u, FILL_RAW | FILL_STATE);
    int global = u.global;
    int inactive = strcmp(u.current, "inactive") == 0;
    cunit_close(&u);
    if (f <= 0) {
        if (f == 0)
            err_line("Unit %s does not exist.", name);
        return 1;
    }
    if (global) {
        err_line("Unable to retrieve journal of global unit %s.", name);
        return 1;
    }
    if (inactive) {
        err_line("Unit %s does not appear to be running.", name);
        return 1;
    }
    char last[1024] = "";
    char *text;
    if (journal_text(x, name, &text) == 0 && text)
        print_tail(text, x->lines, NULL, last, sizeof(last));
    cn_free(text);
    while (x->follow && !cli_signal_pending()) {
        cli_sleep_ms(500);
        if (journal_text(x, name, &text) == 0 && text)
            print_tail(text, -1, last, last, sizeof(last));
        cn_free(text);
    }
    return 0;
}

static int cmd_status(struct ctl *x, int argc, char **argv)
{
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        char name[FLEET_NAME_MAX];
        fleet_unit_name_mangle(argv[i], name, sizeof(name));
        struct cunit u;
        int f = get_unit(x, name, &u, FILL_RAW | FILL_STATE);
        if (f == 0) {
            err_line("Unit %s does not exist.", name);
            rc = 1;
        } else if (f == 1 && !u.global && strcmp(u.current, "inactive") == 0) {
            err_line("Unit %s does not appear to be loaded.", name);
            rc = 1;
        } else if (f == 1) {
            struct fleet_state s = {0};
            const char *desc = NULL;
            struct fleet_unit_file uf;
            char err[CN_ERRMSG_SIZE], leg[160] = "-";
            if (u.raw &&
                fleet_unit_file_parse(u.raw, strlen(u.raw), &uf, err) == 0)
                desc = fleet_unit_file_get(&uf, "Unit", "Description");
            if (u.target[0])
                state_exists(x, name, u.target, &s);
            if (u.target[0])
                legend(x, u.target, 1, leg, sizeof(leg));
            if (i != 0)
                printf("\n");
            printf("%s %s%s%s\n", strcmp(s.active, "active") == 0 ? "●" : "○",
                   name, desc ? " - " : "", desc ? desc : "");
            printf("   Loaded: %s\n", s.load[0] ? s.load : "not-found");
            printf("   Active: %s (%s)\n", s.active[0] ? s.active : "inactive",
                   s.sub[0] ? s.sub : "dead");
            if (s.waiting[0])
                printf("  Waiting: %s\n", s.waiting);
            printf("  Machine: %s\n", leg);
            fleet_unit_file_close(&uf);
            char *text, last[1024];
            if (journal_text(x, name, &text) == 0 && text) {
                printf("\n");
                print_tail(text, 10, NULL, last, sizeof(last));
            }
            cn_free(text);
        } else {
            rc = 1;
        }
        cunit_close(&u);
    }
    return rc;
}

/* ---- main ------------------------------------------------------------- */

static void help(FILE *f)
{
    fprintf(f, "NAME:\n"
               "\tcairn-fleetctl - fleetctl for cairn: manage units on a fleet "
               "of machines\n\n"
               "USAGE:\n"
               "\tcairn-fleetctl [global options] <command> [command options] "
               "[arguments...]\n\n"
               "COMMANDS:\n"
               "\tcat\t\tOutput the contents of a submitted unit\n"
               "\tdestroy\t\tDestroy one or more units in the cluster\n"
               "\tjournal\t\tPrint the journal of a unit in the cluster to "
               "stdout\n"
               "\tlist-machines\tEnumerate the current hosts in the cluster\n"
               "\tlist-unit-files\tList the units that exist in the cluster.\n"
               "\tlist-units\tList the current state of units in the cluster\n"
               "\tload\t\tSchedule one or more units in the cluster, first "
               "submitting them if necessary.\n"
               "\tstart\t\tInstruct systemd to start one or more units in the "
               "cluster, first submitting and loading if necessary.\n"
               "\tstatus\t\tOutput the status of one or more units in the "
               "cluster\n"
               "\tstop\t\tInstruct systemd to stop one or more units in the "
               "cluster.\n"
               "\tsubmit\t\tUpload one or more units to the cluster without "
               "starting them\n"
               "\tunload\t\tUnschedule one or more units in the cluster.\n\n"
               "GLOBAL OPTIONS:\n"
               "\t--endpoint=\"" FLEET_ENDPOINT_DEFAULT
               "\"\tetcd endpoints (comma-separated)\n"
               "\t--etcd-key-prefix=\"" FLEET_PREFIX_DEFAULT
               "\"\tKeyspace for fleet data in etcd\n"
               "\t--request-timeout=3\tSeconds allowed for a single request\n"
               "\t-h, --help\t\tPrint usage information and exit\n\n"
               "COMMAND OPTIONS:\n"
               "\t--no-legend, --full/-l, --fields=a,b (list-*); "
               "--block-attempts=N, --no-block (load/start/stop/unload);\n"
               "\t--lines=N, -f/--follow (journal); --replace (submit/load/"
               "start)\n");
}

/* Recognises one flag at argv[*i]; 1 when consumed, -1 on a bad value. */
static int one_flag(struct ctl *x, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    const char *name = a + (a[1] == '-' ? 2 : 1);
    const char *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    const char *val = eq ? eq + 1 : NULL;
#define IS(s) (n == strlen(s) && strncmp(name, s, n) == 0)
    int *bools[] = {&x->no_legend, &x->full,   &x->full,  &x->no_block,
                    &x->replace,   &x->follow, &x->follow};
    const char *bnames[] = {"no-legend", "full",   "l", "no-block",
                            "replace",   "follow", "f"};
    for (size_t k = 0; k < 7; k++)
        if (IS(bnames[k])) {
            *bools[k] = val == NULL || strcmp(val, "true") == 0;
            return 1;
        }
    const char **strs[] = {&x->endpoint, &x->prefix, &x->fields};
    const char *snames[] = {"endpoint", "etcd-key-prefix", "fields"};
    long *longs[] = {&x->block_attempts, &x->lines};
    const char *lnames[] = {"block-attempts", "lines"};
    int is_str = -1, is_long = -1;
    for (int k = 0; k < 3; k++)
        if (IS(snames[k]))
            is_str = k;
    for (int k = 0; k < 2; k++)
        if (IS(lnames[k]))
            is_long = k;
    int ignored = IS("request-timeout") || IS("debug") || IS("driver");
#undef IS
    if (is_str < 0 && is_long < 0 && !ignored)
        return 0;
    if (val == NULL) {
        if (*i + 1 >= argc)
            return -1;
        val = argv[++*i];
    }
    if (is_str >= 0)
        *strs[is_str] = val;
    else if (is_long >= 0) {
        char *end;
        *longs[is_long] = strtol(val, &end, 10);
        if (*end != '\0')
            return -1;
    }
    return 1;
}

int fleet_ctl_main(int argc, char **argv)
{
    struct ctl x;
    memset(&x, 0, sizeof(x));
    x.lines = 10;
    x.endpoint = getenv("FLEETCTL_ENDPOINT");
    x.prefix = getenv("FLEETCTL_ETCD_KEY_PREFIX");
    const char *cmd = NULL;
    char **pos = calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] != '\0') {
            if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                help(stdout);
                free(pos);
                return 0;
            }
            int r = one_flag(&x, argc, argv, &i);
            if (r <= 0) {
                err_line("%s: %s",
                         r < 0 ? "invalid value for flag" : "unknown flag",
                         argv[i]);
                free(pos);
                return 1;
            }
        } else if (cmd == NULL) {
            cmd = argv[i];
        } else {
            pos[npos++] = argv[i];
        }
    }
    if (cmd == NULL || strcmp(cmd, "help") == 0) {
        help(stdout);
        free(pos);
        return 0;
    }
    if (fleet_store_init(&x.st,
                         x.endpoint ? x.endpoint : FLEET_ENDPOINT_DEFAULT,
                         x.prefix ? x.prefix : FLEET_PREFIX_DEFAULT) != 0) {
        err_line("%s", x.st.errmsg);
        free(pos);
        return 1;
    }
    cli_signal_install();
    int rc;
    if (strcmp(cmd, "list-machines") == 0)
        rc = cmd_list_machines(&x);
    else if (strcmp(cmd, "list-unit-files") == 0)
        rc = cmd_list_unit_files(&x);
    else if (strcmp(cmd, "list-units") == 0)
        rc = cmd_list_units(&x);
    else if (strcmp(cmd, "submit") == 0)
        rc = cmd_submit(&x, npos, pos);
    else if (strcmp(cmd, "load") == 0)
        rc = cmd_load_start(&x, npos, pos, "loaded");
    else if (strcmp(cmd, "start") == 0)
        rc = cmd_load_start(&x, npos, pos, "launched");
    else if (strcmp(cmd, "stop") == 0)
        rc = cmd_stop_unload(&x, npos, pos, 0);
    else if (strcmp(cmd, "unload") == 0)
        rc = cmd_stop_unload(&x, npos, pos, 1);
    else if (strcmp(cmd, "destroy") == 0)
        rc = cmd_destroy(&x, npos, pos);
    else if (strcmp(cmd, "cat") == 0)
        rc = cmd_cat(&x, npos, pos);
    else if (strcmp(cmd, "status") == 0)
        rc = cmd_status(&x, npos, pos);
    else if (strcmp(cmd, "journal") == 0)
        rc = cmd_journal(&x, npos, pos);
    else {
        err_line("Unknown command \"%s\"; see cairn-fleetctl --help", cmd);
        rc = 1;
    }
    snap_drop(&x);
    for (size_t i = 0; i < x.ncache; i++)
        cn_free(x.cache[i].raw);
    free(x.cache);
    for (size_t i = 0; i < x.nms; i++)
        fleet_machine_close(&x.ms[i]);
    free(x.ms);
    fleet_store_close(&x.st);
    free(pos);
    fflush(stdout);
    return rc;
}
