/*
 * fleet_sched: where units go. Pure functions over the machines and jobs
 * the engine read from the store; the engine writes the differences back
 * with compare-and-swap, so a decision made on a stale view fails instead
 * of overwriting a newer one.
 */
#include <stdio.h>
#include <string.h>

#include "fleet_int.h"

int fleet_target_state_parse(const char *s)
{
    if (strcmp(s, "inactive") == 0)
        return FLEET_TS_INACTIVE;
    if (strcmp(s, "loaded") == 0)
        return FLEET_TS_LOADED;
    if (strcmp(s, "launched") == 0)
        return FLEET_TS_LAUNCHED;
    return CN_EINVAL;
}

const char *fleet_target_state_name(int ts)
{
    switch (ts) {
    case FLEET_TS_LOADED:
        return "loaded";
    case FLEET_TS_LAUNCHED:
        return "launched";
    default:
        return "inactive";
    }
}

/* Expands specifiers of an [X-Fleet] value for unit name into buf. */
static const char *expand(const char *v, const char *name, char *buf,
                          size_t size)
{
    struct cn_buf b = {0};
    char err[CN_ERRMSG_SIZE];
    struct fleet_spec sp = {name, "", ""};
    if (strchr(v, '%') == NULL || fleet_expand(v, &sp, &b, err) != 0 ||
        b.len >= size) {
        cn_buf_close(&b);
        return v;
    }
    memcpy(buf, b.data, b.len + 1);
    cn_buf_close(&b);
    return buf;
}

static int has_meta(const struct fleet_strv *md, const char *kv, size_t klen)
{
    for (size_t i = 0; md && i < md->n; i++)
        if (strcmp(md->v[i], kv) == 0)
            return 1;
    (void)klen;
    return 0;
}

int fleet_sched_machine_ok(const struct fleet_service *svc, const char *name,
                           const char *machine_id,
                           const struct fleet_strv *metadata)
{
    char buf[FLEET_NAME_MAX];
    if (svc->machine_id &&
        strcmp(expand(svc->machine_id, name, buf, sizeof(buf)), machine_id) !=
            0)
        return 0;
    /* Values of one key are alternatives; different keys must all hold. */
    const struct fleet_strv *want = &svc->machine_metadata;
    for (size_t i = 0; i < want->n; i++) {
        const char *eq = strchr(want->v[i], '=');
        size_t klen = (size_t)(eq - want->v[i]);
        int ok = 0;
        for (size_t j = 0; j < want->n && !ok; j++)
            if (strncmp(want->v[j], want->v[i], klen + 1) == 0)
                ok = has_meta(metadata, want->v[j], klen);
        if (!ok)
            return 0;
    }
    return 1;
}

static int matches_any(const struct fleet_strv *globs, const char *owner,
                       const char *name)
{
    char buf[FLEET_NAME_MAX];
    for (size_t i = 0; i < globs->n; i++)
        if (fleet_glob_match(expand(globs->v[i], owner, buf, sizeof(buf)),
                             name))
            return 1;
    return 0;
}

static int conflict(const struct fleet_sched_job *a,
                    const struct fleet_sched_job *b)
{
    if (a->svc && matches_any(&a->svc->conflicts, a->name, b->name))
        return 1;
    if (b->svc && matches_any(&b->svc->conflicts, b->name, a->name))
        return 1;
    return 0;
}

/* a replaces b */
static int replaces(const struct fleet_sched_job *a,
                    const struct fleet_sched_job *b)
{
    return a->svc && matches_any(&a->svc->replaces, a->name, b->name);
}

static const struct fleet_sched_machine *
find_machine(const struct fleet_sched_machine *ms, size_t nm, const char *id)
{
    for (size_t i = 0; i < nm; i++)
        if (strcmp(ms[i].id, id) == 0)
            return &ms[i];
    return NULL;
}

static int wants_machine(const struct fleet_sched_job *j)
{
    return j->svc != NULL && !j->svc->global &&
           j->target_state != FLEET_TS_INACTIVE;
}

/* Can job i stay on / go to machine m, given the other placed jobs?
 * Conflicts are checked against jobs [0, upto) only, and not at all when
 * no job has Conflicts= or Replaces= (rules == 0). */
static int fits(const struct fleet_sched_job *js, size_t nj, size_t i,
                const struct fleet_sched_machine *m, size_t upto, int rules)
{
    const struct fleet_sched_job *j = &js[i];
    if (!fleet_sched_machine_ok(j->svc, j->name, m->id, m->metadata))
        return 0;
    char buf[FLEET_NAME_MAX];
    for (size_t k = 0; k < j->svc->machine_of.n; k++) {
        const char *dep =
            expand(j->svc->machine_of.v[k], j->name, buf, sizeof(buf));
        size_t d;
        for (d = 0; d < nj; d++)
            if (strcmp(js[d].name, dep) == 0)
                break;
        if (d == nj || strcmp(js[d].target, m->id) != 0)
            return 0;
    }
    for (size_t k = 0; rules && k < upto; k++) {
        if (k == i || strcmp(js[k].target, m->id) != 0)
            continue;
        if (replaces(&js[k], j))
            return 0; /* a unit that replaces us is there */
        if (!replaces(j, &js[k]) && conflict(j, &js[k]))
            return 0;
    }
    return 1;
}

static void unschedule_pass(struct fleet_sched_machine *ms, size_t nm,
                            struct fleet_sched_job *js, size_t nj, int rules)
{
    for (size_t i = 0; i < nj; i++) {
        struct fleet_sched_job *j = &js[i];
        if (j->target[0] == '\0')
            continue;
        const struct fleet_sched_machine *m = find_machine(ms, nm, j->target);
        /* Later jobs yield to earlier ones: a job is checked against the
         * jobs before it (kept) and the jobs after it that replace it. */
        int keep = wants_machine(j) && m != NULL;
        if (keep) {
            int ok = 1;
            for (size_t k = i + 1; rules && ok && k < nj; k++)
                if (strcmp(js[k].target, j->target) == 0 &&
                    wants_machine(&js[k]) && replaces(&js[k], j))
                    ok = 0;
            keep = ok && fits(js, nj, i, m, i, rules);
        }
        if (!keep)
            j->target[0] = '\0';
    }
}

void fleet_sched_decide(struct fleet_sched_machine *ms, size_t nm,
                        struct fleet_sched_job *js, size_t nj)
{
    int rules = 0;
    for (size_t i = 0; i < nj; i++)
        if (js[i].svc &&
            (js[i].svc->conflicts.n > 0 || js[i].svc->replaces.n > 0))
            rules = 1;
    unschedule_pass(ms, nm, js, nj, rules);
    for (size_t i = 0; i < nm; i++)
        ms[i].units = 0;
    for (size_t i = 0; i < nj; i++) {
        if (js[i].target[0] == '\0')
            continue;
        for (size_t k = 0; k < nm; k++)
            if (strcmp(ms[k].id, js[i].target) == 0)
                ms[k].units++;
    }
    /* MachineOf chains need their head placed first: repeat while placing
     * something. */
    for (int progress = 1, round = 0; progress && round < 8; round++) {
        progress = 0;
        for (size_t i = 0; i < nj; i++) {
            struct fleet_sched_job *j = &js[i];
            if (!wants_machine(j) || j->target[0] != '\0')
                continue;
            struct fleet_sched_machine *best = NULL;
            int best_replace = 0;
            for (size_t k = 0; k < nm; k++) {
                if (!fits(js, nj, i, &ms[k], nj, rules))
                    continue;
                int rep = 0;
                for (size_t d = 0; j->svc->replaces.n > 0 && d < nj; d++)
                    if (strcmp(js[d].target, ms[k].id) == 0 &&
                        replaces(j, &js[d]))
                        rep = 1;
                if (best == NULL || rep > best_replace ||
                    (rep == best_replace && ms[k].units < best->units)) {
                    best = &ms[k];
                    best_replace = rep;
                }
            }
            if (best == NULL)
                continue;
            snprintf(j->target, sizeof(j->target), "%s", best->id);
            best->units++;
            progress = 1;
            /* Units it replaces must leave that machine. */
            for (size_t d = 0; d < nj; d++)
                if (d != i && strcmp(js[d].target, best->id) == 0 &&
                    replaces(j, &js[d])) {
                    js[d].target[0] = '\0';
                    best->units--;
                }
        }
    }
}
