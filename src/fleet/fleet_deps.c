/*
 * fleet_deps: systemd's unit dependencies among the units of one machine.
 *
 * fleet hands units to systemd, which enforces Requires=/After= among the
 * units loaded on that machine; cairn's agent supervises units itself and
 * enforces them here. The agent passes what it knows of each of its units
 * (fleet_dep_unit) and learns which must not run, which may not start
 * yet, and which must wait for others before stopping. Pure.
 *
 * Rules, for a unit a and a unit b it names (docs/units.md, Dependencies):
 *   hold      (a must not run: stopped if running, started again when the
 *             requirement is back, as its desired state is still launched)
 *             Requires=b or BindsTo=b where b is a unit of the cluster and
 *             b is not launched on this machine, or b failed; BindsTo=b
 *             and b is no longer active after it has been (it exited, or
 *             is restarting).
 *   wait      (a may not start yet; a running a is left alone)
 *             a ordered after b (a After=b, or b Before=a), b launched
 *             here, and: b also required (Requires=/BindsTo=) and not
 *             active; or b only ordered and its start not finished (not
 *             active, failed or ended since it was started, and not held);
 *             or a After=b and b a unit of the cluster that is to be
 *             launched but not scheduled yet (it may come here: the two
 *             were started together, and systemd would order them).
 *   stop_wait (a must stop, not yet) a unit ordered after a is up and
 *             stopping or about to stop: stops go in reverse order.
 * A cycle of waits (a waits for b, which waits for a) or of stop_waits is
 * broken by releasing every unit on it, so it never deadlocks; systemd
 * also breaks ordering cycles (it drops one job), we start them unordered.
 */
#include <string.h>

#include "fleet_int.h"

static int strv_has(const struct fleet_strv *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], name) == 0)
            return 1;
    return 0;
}

static int strv_copy_expanded(struct fleet_strv *dst,
                              const struct fleet_strv *src,
                              const struct fleet_spec *sp)
{
    for (size_t i = 0; i < src->n; i++) {
        struct cn_buf b = {0};
        char err[CN_ERRMSG_SIZE];
        int rc = fleet_expand(src->v[i], sp, &b, err);
        if (rc == CN_EINVAL) { /* unknown specifier: keep the word */
            cn_buf_reset(&b);
            rc = cn_buf_append_cstr(&b, src->v[i]);
        }
        if (rc == 0 && b.data == NULL)
            rc = cn_buf_append_cstr(&b, "");
        char **v =
            rc == 0 ? cn_realloc(dst->v, (dst->n + 1) * sizeof(*v)) : NULL;
        if (v)
            dst->v = v;
        int *lines =
            v ? cn_realloc(dst->lines, (dst->n + 1) * sizeof(*lines)) : NULL;
        if (lines)
            dst->lines = lines;
        if (rc != 0 || v == NULL || lines == NULL) {
            cn_buf_close(&b);
            return rc != 0 ? rc : CN_ENOMEM;
        }
        size_t len;
        dst->v[dst->n] = cn_buf_take(&b, &len);
        dst->lines[dst->n] = src->lines ? src->lines[i] : 0;
        dst->n++;
    }
    return 0;
}

int fleet_deps_init(struct fleet_deps *d, const struct fleet_service *svc,
                    const struct fleet_spec *sp)
{
    memset(d, 0, sizeof(*d));
    int rc = strv_copy_expanded(&d->requires, &svc->requires, sp);
    if (rc == 0)
        rc = strv_copy_expanded(&d->binds_to, &svc->binds_to, sp);
    if (rc == 0)
        rc = strv_copy_expanded(&d->wants, &svc->wants, sp);
    if (rc == 0)
        rc = strv_copy_expanded(&d->after, &svc->after, sp);
    if (rc == 0)
        rc = strv_copy_expanded(&d->before, &svc->before, sp);
    return rc;
}

void fleet_deps_close(struct fleet_deps *d)
{
    fleet_strv_close(&d->requires);
    fleet_strv_close(&d->binds_to);
    fleet_strv_close(&d->wants);
    fleet_strv_close(&d->after);
    fleet_strv_close(&d->before);
}

const char *fleet_dep_reason_text(int reason)
{
    switch (reason) {
    case FLEET_DEP_NOT_HERE:
        return "is not launched on this machine";
    case FLEET_DEP_FAILED:
        return "failed";
    case FLEET_DEP_ENDED:
        return "is no longer active";
    case FLEET_DEP_NOT_ACTIVE:
        return "is not active yet";
    case FLEET_DEP_STARTING:
        return "is still starting";
    case FLEET_DEP_STOP_ORDER:
        return "must stop first";
    case FLEET_DEP_UNSCHEDULED:
        return "is not scheduled yet";
    }
    return "";
}

static int find(const struct fleet_dep_unit *us, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(us[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int has_lists(const struct fleet_deps *d)
{
    return d && (d->requires.n || d->binds_to.n || d->wants.n || d->after.n ||
                 d->before.n);
}

/* 1 when x is ordered after y: x has After=y, or y has Before=x. */
static int ordered_after(const struct fleet_dep_unit *x,
                         const struct fleet_dep_unit *y)
{
    return (x->deps && strv_has(&x->deps->after, y->name)) ||
           (y->deps && strv_has(&y->deps->before, x->name));
}

static int required(const struct fleet_dep_unit *x, const char *name)
{
    return x->deps && (strv_has(&x->deps->requires, name) ||
                       strv_has(&x->deps->binds_to, name));
}

static int must_stop(const struct fleet_dep_unit *u)
{
    return u->up && (!u->launched || u->hold);
}

static void set(struct fleet_dep_unit *u, int *flag, int reason, int blocker,
                const char *why)
{
    *flag = 1;
    u->reason = reason;
    u->blocker = blocker;
    u->why = why;
}

static void decide_hold(struct fleet_dep_unit *us, size_t n, size_t i,
                        fleet_deps_known_fn *known, void *ctx)
{
    struct fleet_dep_unit *u = &us[i];
    if (!u->launched || u->deps == NULL)
        return;
    const struct fleet_strv *lists[2] = {&u->deps->requires,
                                         &u->deps->binds_to};
    for (int k = 0; k < 2; k++) {
        for (size_t w = 0; w < lists[k]->n; w++) {
            const char *name = lists[k]->v[w];
            int j = find(us, n, name);
            if (j == (int)i)
                continue;
            if (j < 0) {
                if (known(ctx, name)) {
                    set(u, &u->hold, FLEET_DEP_NOT_HERE, -1, name);
                    return;
                }
                continue; /* the host's unit */
            }
            const struct fleet_dep_unit *b = &us[j];
            int ended = (b->been_active && !b->active) ||
                        (b->started && !b->up && !b->active);
            if (!b->launched)
                set(u, &u->hold, FLEET_DEP_NOT_HERE, j, b->name);
            else if (b->failed)
                set(u, &u->hold, FLEET_DEP_FAILED, j, b->name);
            else if (k == 1 && ended)
                set(u, &u->hold, FLEET_DEP_ENDED, j, b->name);
            if (u->hold)
                return;
        }
    }
}

static void decide_wait(struct fleet_dep_unit *us, size_t n, size_t i,
                        fleet_deps_known_fn *known, void *ctx)
{
    struct fleet_dep_unit *u = &us[i];
    if (!u->launched || u->hold || u->up || u->started)
        return; /* not about to start */
    for (size_t w = 0; u->deps && w < u->deps->after.n; w++) {
        const char *name = u->deps->after.v[w];
        if (find(us, n, name) < 0 && known(ctx, name) == FLEET_JOB_PENDING) {
            set(u, &u->wait, FLEET_DEP_UNSCHEDULED, -1, name);
            return;
        }
    }
    for (size_t j = 0; j < n; j++) {
        const struct fleet_dep_unit *b = &us[j];
        if (j == i || !b->launched || !ordered_after(u, b))
            continue;
        if (required(u, b->name)) {
            if (!b->active) {
                set(u, &u->wait, FLEET_DEP_NOT_ACTIVE, (int)j, b->name);
                return;
            }
        } else {
            int done = b->been_active || b->failed || (b->started && !b->up) ||
                       b->hold;
            if (!done) {
                set(u, &u->wait, FLEET_DEP_STARTING, (int)j, b->name);
                return;
            }
        }
    }
}

static void decide_stop(struct fleet_dep_unit *us, size_t n, size_t i)
{
    struct fleet_dep_unit *u = &us[i];
    if (!must_stop(u))
        return;
    for (size_t j = 0; j < n; j++) {
        const struct fleet_dep_unit *x = &us[j];
        if (j == i || !x->up || !(x->stopping || must_stop(x)))
            continue;
        if (ordered_after(x, u)) {
            set(u, &u->stop_wait, FLEET_DEP_STOP_ORDER, (int)j, x->name);
            return;
        }
    }
}

/* Releases the cycle through i of units whose flag (wait or stop_wait) is
 * set and that are blocked by each other; stopping units make progress
 * and end a chain. */
static void break_cycle(struct fleet_dep_unit *us, size_t n, size_t i, int stop)
{
#define FLAG(k) (stop ? us[k].stop_wait && !us[k].stopping : us[k].wait)
    if (!FLAG(i))
        return;
    int k = us[i].blocker;
    for (size_t steps = 0; k >= 0 && FLAG(k) && steps <= n; steps++) {
        if (k == (int)i) {
            /* On a cycle: release every unit of it. */
            int c = (int)i;
            do {
                int next = us[c].blocker;
                if (stop)
                    us[c].stop_wait = 0;
                else
                    us[c].wait = 0;
                us[c].reason = FLEET_DEP_OK;
                us[c].blocker = -1;
                us[c].why = NULL;
                c = next;
            } while (c >= 0 && c != (int)i);
            return;
        }
        k = us[k].blocker;
    }
#undef FLAG
}

void fleet_deps_decide(struct fleet_dep_unit *us, size_t n,
                       fleet_deps_known_fn *known, void *ctx)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        us[i].hold = us[i].wait = us[i].stop_wait = 0;
        us[i].reason = FLEET_DEP_OK;
        us[i].blocker = -1;
        us[i].why = NULL;
        any |= has_lists(us[i].deps);
    }
    if (!any)
        return;
    for (size_t i = 0; i < n; i++)
        decide_hold(us, n, i, known, ctx);
    for (size_t i = 0; i < n; i++)
        decide_wait(us, n, i, known, ctx);
    for (size_t i = 0; i < n; i++)
        break_cycle(us, n, i, 0);
    for (size_t i = 0; i < n; i++)
        decide_stop(us, n, i);
    for (size_t i = 0; i < n; i++)
        break_cycle(us, n, i, 1);
}
