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
};

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

static int state_exists(struct ctl *x, const char *name, const char *mid,
                        struct fleet_state *s)
{
    char key[FLEET_NAME_MAX + 128];
    snprintf(key, sizeof(key), "states/%s/%s", name, mid);
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, key, 0, &r);
    int ok = rc == 0 && r.node &&
             (s == NULL || fleet_json_state_decode(r.node->value, s) == 0);
    cli_resp_close(&r);
    return ok;
}

/* The text of unit/<hash>, cached for the run of the command (units are
 * immutable by hash). Returns a cn_malloc'd copy or NULL. */
static char *unit_raw(struct ctl *x, const char *hash)
{
    if (hash[0] == '\0')
        return NULL;
    const char *raw = NULL;
    for (size_t i = 0; i < x->ncache && raw == NULL; i++)
        if (strcmp(x->cache[i].hash, hash) == 0)
            raw = x->cache[i].raw;
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
        struct cached *c = realloc(x->cache, (x->ncache + 1) * sizeof(*c));
        if (c == NULL) {
            cn_free(text);
            return NULL;
        }
        x->cache = c;
        snprintf(c[x->ncache].hash, sizeof(c[0].hash), "%s", hash);
        c[x->ncache].raw = text;
        raw = c[x->ncache++].raw;
    }
    size_t n = strlen(raw);
    char *copy = cn_malloc(n + 1);
    if (copy)
        memcpy(copy, raw, n + 1);
    return copy;
}

static void fill_unit(struct ctl *x, const struct cli_node *d, struct cunit *u,
                      int with_state)
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
    u->raw = unit_raw(x, u->hash);
    if (u->raw) {
        struct fleet_unit_file uf;
        char err[CN_ERRMSG_SIZE];
        if (fleet_unit_file_parse(u->raw, strlen(u->raw), &uf, err) == 0) {
            const char *g = fleet_unit_file_get(&uf, "X-Fleet", "Global");
            fleet_parse_bool(g ? g : "false", &u->global);
        }
        fleet_unit_file_close(&uf);
    }
    /* determineJobState */
    snprintf(u->current, sizeof(u->current), "inactive");
    if (with_state && u->target[0] && state_exists(x, u->name, u->target, NULL))
        snprintf(u->current, sizeof(u->current), "%s",
                 strcmp(u->heartbeat, u->target) == 0 ? "launched" : "loaded");
}

/* 1 found, 0 not found, -1 error (printed). */
static int get_unit(struct ctl *x, const char *name, struct cunit *u)
{
    char key[FLEET_NAME_MAX + 8];
    snprintf(key, sizeof(key), "job/%s", name);
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, key, 1, &r);
    int found = rc == 0 && r.node && fleet_node_child(r.node, "object");
    if (found)
        fill_unit(x, r.node, u, 1);
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
    if (get_unit(x, tmpl, &u) == 1 && u.raw) {
        snprintf(from, from_size, "%s", tmpl);
        return u.raw;
    }
    cunit_close(&u);
    return NULL;
}

static int create_unit(struct ctl *x, const char *name, const char *raw)
{
    char hash[41], key[FLEET_NAME_MAX + 32];
    fleet_sha1_hex(raw, strlen(raw), hash);
    struct cn_buf b = {0};
    int rc = fleet_json_unit_encode(&b, raw);
    snprintf(key, sizeof(key), "unit/%s", hash);
    if (rc == 0)
        rc = fleet_store_set(&x->st, key, b.data, 0, FLEET_PREV_ANY, NULL);
    cn_buf_reset(&b);
    snprintf(key, sizeof(key), "job/%s/target-state", name);
    if (rc == 0)
        rc = fleet_store_set(&x->st, key, "inactive", 0, FLEET_PREV_ANY, NULL);
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

static int wait_states(struct ctl *x, char **names, size_t n, const char *state,
                       int active);

/* lazyCreateUnits: every file is read and checked before anything is
 * written, so a malformed one submits nothing. */
static int lazy_create(struct ctl *x, int argc, char **argv)
{
    char **texts = calloc((size_t)argc + 1, sizeof(char *));
    char **names = calloc((size_t)argc + 1, sizeof(char *));
    size_t ncreate = 0;
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        char name[FLEET_NAME_MAX], from[1024];
        fleet_unit_name_mangle(argv[i], name, sizeof(name));
        if (fleet_unit_name_kind(name) < 0) {
            err_line("Error creating units: invalid unit name \"%s\"", name);
            rc = 1;
            break;
        }
        struct cunit u;
        int found = get_unit(x, name, &u);
        cunit_close(&u);
        if (found < 0) {
            rc = 1;
            break;
        }
        if (found)
            continue;
        char *raw = unit_text(x, argv[i], name, from, sizeof(from));
        if (raw == NULL) {
            err_line("Error creating units: unable to find unit file %s: %s",
                     argv[i], strerror(ENOENT));
            rc = 1;
            break;
        }
        if (fleet_unit_name_kind(name) == FLEET_NAME_TEMPLATE) {
            err_line("Error creating units: cannot submit template unit %s; "
                     "submit an instance such as %.*s1%s",
                     name, (int)(strchr(name, '@') - name + 1), name,
                     strrchr(name, '.'));
            cn_free(raw);
            rc = 1;
            break;
        }
        struct fleet_service svc;
        char err[CN_ERRMSG_SIZE];
        if (fleet_service_parse(raw, strlen(raw), &svc, err) != 0) {
            err_line("Error creating units: %s: %s", from, err);
            fleet_service_close(&svc);
            cn_free(raw);
            rc = 1;
            break;
        }
        if (svc.warnings.len > 0) {
            for (char *l = svc.warnings.data; *l;) {
                char *nl = strchr(l, '\n');
                fprintf(stderr, "WARNING: Unit %s: %.*s\n", name,
                        (int)(nl ? nl - l : (long)strlen(l)), l);
                l = nl ? nl + 1 : l + strlen(l);
            }
        }
        fleet_service_close(&svc);
        texts[ncreate] = raw;
        names[ncreate] = strdup(name);
        ncreate++;
    }
    for (size_t i = 0; rc == 0 && i < ncreate; i++)
        if (create_unit(x, names[i], texts[i]) != 0)
            rc = 1;
    if (rc == 0 && ncreate > 0) {
        /* fleetctl waits for creation even with --no-block. */
        int no_block = x->no_block;
        x->no_block = 0;
        rc = wait_states(x, names, ncreate, "inactive", 0);
        x->no_block = no_block;
    }
    for (size_t i = 0; i < ncreate; i++) {
        cn_free(texts[i]);
        free(names[i]);
    }
    free(texts);
    free(names);
    return rc;
}

/* ---- waiting ---------------------------------------------------------- */

/* assertUnitState for each name, each attempt polling every 250 ms for 2 s;
 * block_attempts 0 waits forever, --no-block does not wait. With active,
 * waits for the agent's ActiveState "active" afterwards (the start path). */
static int wait_states(struct ctl *x, char **names, size_t n, const char *state,
                       int active)
{
    if (x->no_block) {
        for (size_t i = 0; i < n; i++)
            printf("Triggered unit %s %s\n", names[i],
                   strcmp(state, "launched") == 0   ? "start"
                   : strcmp(state, "loaded") == 0   ? "load"
                   : strcmp(state, "inactive") == 0 ? "unload"
                                                    : state);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        int done = 0;
        for (long attempt = 0;
             !done && (x->block_attempts <= 0 || attempt < x->block_attempts);
             attempt++) {
            for (int k = 0; k < 8 && !done; k++) {
                struct cunit u;
                int f = get_unit(x, names[i], &u);
                const char *cur = u.global ? u.dstate : u.current;
                /* "inactive" counts once the engine took the target away
                 * (the agent may drop its state a moment earlier). */
                int settled = u.global || strcmp(state, "inactive") != 0 ||
                              u.target[0] == '\0' || u.dstate[0] == '\0' ||
                              strcmp(u.dstate, "inactive") != 0;
                if (f == 1 && strcmp(cur, state) == 0 && settled) {
                    char leg[160] = "";
                    if (u.target[0] && machine(x, u.target)) {
                        x->full = 0;
                        legend(x, u.target, 1, leg, sizeof(leg));
                    }
                    printf("Unit %s %s%s%s\n", names[i], u.current,
                           leg[0] ? " on " : "", leg);
                    fflush(stdout);
                    done = 1;
                }
                cunit_close(&u);
                if (!done)
                    usleep(250000);
            }
        }
        if (!done) {
            err_line("Error waiting for units: timed out waiting for unit %s "
                     "to report state %s",
                     names[i], state);
            return 1;
        }
        if (!active)
            continue;
        done = 0;
        for (long k = 0;
             !done && (x->block_attempts <= 0 || k < x->block_attempts * 8);
             k++) {
            struct cunit u;
            struct fleet_state s;
            if (get_unit(x, names[i], &u) == 1 && u.target[0] &&
                state_exists(x, names[i], u.target, &s) &&
                strcmp(s.active, "active") == 0)
                done = 1;
            cunit_close(&u);
            if (!done)
                usleep(250000);
        }
        if (!done) {
            err_line("Error waiting for systemd unit states, err: Failed to "
                     "find an active unit %s",
                     names[i]);
            return 1;
        }
    }
    return 0;
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
    return lazy_create(x, argc, argv) ? 1 : 0;
}

/* load and start */
static int cmd_load_start(struct ctl *x, int argc, char **argv,
                          const char *state)
{
    if (argc == 0) {
        err_line("No units given");
        return 0;
    }
    if (lazy_create(x, argc, argv) != 0)
        return 1;
    char **wait = calloc((size_t)argc + 1, sizeof(char *));
    size_t nw = 0;
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        char name[FLEET_NAME_MAX];
        fleet_unit_name_mangle(argv[i], name, sizeof(name));
        struct cunit u;
        int f = get_unit(x, name, &u);
        if (f == 0) {
            err_line("Error %s units: unable to find unit %s",
                     strcmp(state, "loaded") == 0 ? "loading" : "starting",
                     name);
            rc = 1;
        } else if (f == 1 && strcmp(u.dstate, state) != 0) {
            if (set_target_state(x, name, state) != 0) {
                err_line("Error %s units: %s",
                         strcmp(state, "loaded") == 0 ? "loading" : "starting",
                         x->st.errmsg);
                rc = 1;
            } else if (u.global) {
                printf("Triggered global unit %s %s\n", name,
                       strcmp(state, "loaded") == 0 ? "load" : "start");
            } else {
                wait[nw++] = strdup(name);
            }
        } else if (f < 0) {
            rc = 1;
        }
        cunit_close(&u);
    }
    if (rc == 0 && nw > 0 &&
        wait_states(x, wait, nw, state, strcmp(state, "launched") == 0) != 0)
        rc = 1;
    for (size_t i = 0; i < nw; i++)
        free(wait[i]);
    free(wait);
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
    char **wait = calloc((size_t)argc + 1, sizeof(char *));
    size_t nw = 0, found = 0;
    int rc = 0;
    for (int i = 0; i < argc && rc == 0; i++) {
        char name[FLEET_NAME_MAX];
        fleet_unit_name_mangle(argv[i], name, sizeof(name));
        struct cunit u;
        int f = get_unit(x, name, &u);
        if (f < 0)
            rc = 1;
        if (f != 1) {
            cunit_close(&u);
            continue;
        }
        found++;
        if (!u.global && !unload && strcmp(u.current, "inactive") == 0) {
            err_line("Unable to stop unit %s in state inactive", name);
            rc = 1;
        } else if (!u.global && strcmp(u.current, to) == 0) {
            /* already there */
        } else {
            set_target_state(x, name, to);
            if (u.global)
                printf("Triggered global unit %s %s\n", name,
                       unload ? "unload" : "stop");
            else
                wait[nw++] = strdup(name);
        }
        cunit_close(&u);
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
    for (size_t i = 0; i < nw; i++)
        free(wait[i]);
    free(wait);
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
    int f = get_unit(x, name, &u);
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
    struct cli_resp r;
    int rc = fleet_store_get(&x->st, "job", 1, &r);
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
        struct cunit u;
        if (fleet_node_child(&r.node->nodes[i], "object") == NULL)
            continue;
        fill_unit(x, &r.node->nodes[i], &u, 1);
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
    cli_resp_close(&r);
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
    int f = get_unit(x, name, &u);
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
        int f = get_unit(x, name, &u);
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
