/* Dependencies among the units of one machine (fleet_deps.c): what may
 * start, what must stop, in which order. */
#include <stdio.h>
#include <string.h>

#include "fleet/fleet_int.h"
#include "tap.h"

#define MAXU 6

struct world {
    struct fleet_service svc[MAXU];
    struct fleet_deps deps[MAXU];
    struct fleet_dep_unit u[MAXU];
    size_t n;
    const char *cluster[8]; /* names of the cluster's units */
    const char *pending[4]; /* those of them the engine has not placed */
};

static int known(void *ctx, const char *name)
{
    struct world *w = ctx;
    for (size_t i = 0; i < 4 && w->pending[i]; i++)
        if (strcmp(w->pending[i], name) == 0)
            return FLEET_JOB_PENDING;
    for (size_t i = 0; i < 8 && w->cluster[i]; i++)
        if (strcmp(w->cluster[i], name) == 0)
            return FLEET_JOB;
    return FLEET_JOB_NONE;
}

/* A unit of this machine, launched, with [Unit] lines unit_lines. */
static struct fleet_dep_unit *unit(struct world *w, const char *name,
                                   const char *unit_lines)
{
    char text[512], err[CN_ERRMSG_SIZE];
    snprintf(text, sizeof(text), "[Unit]\n%s[Service]\nExecStart=/bin/true\n",
             unit_lines);
    size_t i = w->n++;
    if (fleet_service_parse(text, strlen(text), &w->svc[i], err) != 0)
        tap_fail(__FILE__, __LINE__, "parse: %s", err);
    struct fleet_spec sp = {name, "host", "m1"};
    if (fleet_deps_init(&w->deps[i], &w->svc[i], &sp) != 0)
        tap_fail(__FILE__, __LINE__, "deps_init");
    memset(&w->u[i], 0, sizeof(w->u[i]));
    w->u[i].name = name;
    w->u[i].deps = &w->deps[i];
    w->u[i].launched = 1;
    return &w->u[i];
}

static void running(struct fleet_dep_unit *u)
{
    u->started = u->up = u->active = u->been_active = 1;
}

static void decide(struct world *w)
{
    fleet_deps_decide(w->u, w->n, known, w);
}

static void world_close(struct world *w)
{
    for (size_t i = 0; i < w->n; i++) {
        fleet_deps_close(&w->deps[i]);
        fleet_service_close(&w->svc[i]);
    }
}

TEST(fleet_deps_requires_after_waits_until_active)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a =
        unit(&w, "a.service", "Requires=b.service\nAfter=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    decide(&w);
    CHECK(!a->hold);
    CHECK(a->wait);
    CHECK_EQ(a->reason, FLEET_DEP_NOT_ACTIVE);
    CHECK_EQ(a->blocker, 1);
    CHECK_STR(a->why, "b.service");
    CHECK(!b->wait && !b->hold);
    b->started = b->up = 1; /* activating */
    decide(&w);
    CHECK(a->wait);
    b->active = b->been_active = 1;
    decide(&w);
    CHECK(!a->wait && !a->hold);
    world_close(&w);
}

TEST(fleet_deps_requires_without_after_does_not_order)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "Requires=b.service\n");
    unit(&w, "b.service", "");
    decide(&w);
    CHECK(!a->wait && !a->hold);
    world_close(&w);
}

TEST(fleet_deps_requirement_elsewhere_holds_host_unit_does_not)
{
    /* b is a unit of the cluster but not on this machine; docker.service
     * is the host's. */
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a =
        unit(&w, "a.service",
             "Requires=docker.service b.service\nAfter=docker.service\n");
    decide(&w);
    CHECK(a->hold);
    CHECK_EQ(a->reason, FLEET_DEP_NOT_HERE);
    CHECK_STR(a->why, "b.service");
    CHECK_EQ(a->blocker, -1);
    w.cluster[1] = NULL; /* b destroyed: not a cluster unit any more */
    decide(&w);
    CHECK(!a->hold && !a->wait);
    world_close(&w);
}

TEST(fleet_deps_required_unit_loaded_only_holds)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "BindsTo=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    b->launched = 0; /* loaded here, not started: Requires= does not pull */
    decide(&w);
    CHECK(a->hold);
    CHECK_EQ(a->reason, FLEET_DEP_NOT_HERE);
    CHECK_EQ(a->blocker, 1);
    world_close(&w);
}

TEST(fleet_deps_required_failure_stops_dependent)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a =
        unit(&w, "a.service", "Requires=b.service\nAfter=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    running(a);
    running(b);
    decide(&w);
    CHECK(!a->hold && !a->stop_wait);
    b->up = b->active = 0;
    b->failed = 1;
    decide(&w);
    CHECK(a->hold);
    CHECK_EQ(a->reason, FLEET_DEP_FAILED);
    CHECK(!a->stop_wait); /* nothing is ordered after a */
    world_close(&w);
}

TEST(fleet_deps_binds_to_follows_restarts_requires_does_not)
{
    struct world w = {.cluster = {"r.service", "k.service", "b.service"}};
    struct fleet_dep_unit *r = unit(&w, "r.service", "Requires=b.service\n");
    struct fleet_dep_unit *k = unit(&w, "k.service", "BindsTo=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    running(r);
    running(k);
    running(b);
    b->active = 0; /* activating auto-restart */
    decide(&w);
    CHECK(!r->hold);
    CHECK(k->hold);
    CHECK_EQ(k->reason, FLEET_DEP_ENDED);
    b->up = 0; /* it exited cleanly and stays inactive */
    decide(&w);
    CHECK(!r->hold);
    CHECK(k->hold);
    world_close(&w);
}

TEST(fleet_deps_after_only_waits_for_start_to_finish)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "After=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    decide(&w);
    CHECK(a->wait);
    CHECK_EQ(a->reason, FLEET_DEP_STARTING);
    b->started = 1; /* it failed at once */
    b->failed = 1;
    decide(&w);
    CHECK(!a->wait && !a->hold);
    b->started = b->failed = 0;
    b->launched = 0; /* not starting here at all */
    decide(&w);
    CHECK(!a->wait);
    world_close(&w);
}

TEST(fleet_deps_after_an_unscheduled_unit_waits_for_its_placement)
{
    /* c After=d, started together; the engine placed c first. */
    struct world w = {.cluster = {"c.service", "d.service"},
                      .pending = {"d.service"}};
    struct fleet_dep_unit *c =
        unit(&w, "c.service", "Wants=d.service\nAfter=d.service\n");
    decide(&w);
    CHECK(c->wait && !c->hold);
    CHECK_EQ(c->reason, FLEET_DEP_UNSCHEDULED);
    CHECK_STR(c->why, "d.service");
    CHECK_EQ(c->blocker, -1);
    /* d placed elsewhere: nothing here to order against. */
    w.pending[0] = NULL;
    decide(&w);
    CHECK(!c->wait && !c->hold);
    /* d placed here, starting: c waits for its start as usual. */
    struct fleet_dep_unit *d = unit(&w, "d.service", "");
    d->started = d->up = 1;
    decide(&w);
    CHECK(c->wait);
    CHECK_EQ(c->reason, FLEET_DEP_STARTING);
    world_close(&w);
}

TEST(fleet_deps_after_a_held_unit_does_not_wait)
{
    struct world w = {.cluster = {"a.service", "b.service", "c.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "After=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "Requires=c.service\n");
    decide(&w);
    CHECK(b->hold);
    CHECK(!a->wait);
    world_close(&w);
}

TEST(fleet_deps_before_orders_like_after)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "");
    unit(&w, "b.service", "Before=a.service\n");
    decide(&w);
    CHECK(a->wait);
    CHECK_EQ(a->blocker, 1);
    world_close(&w);
}

TEST(fleet_deps_running_unit_is_not_held_by_ordering)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "After=b.service\n");
    unit(&w, "b.service", "");
    running(a);
    decide(&w);
    CHECK(!a->wait && !a->hold);
    world_close(&w);
}

TEST(fleet_deps_stops_in_reverse_order)
{
    struct world w = {.cluster = {"a.service", "b.service"}};
    struct fleet_dep_unit *a =
        unit(&w, "a.service", "Requires=b.service\nAfter=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    running(a);
    running(b);
    b->launched = 0; /* fleetctl stop b */
    decide(&w);
    CHECK(a->hold); /* a goes first */
    CHECK(!a->stop_wait);
    CHECK(b->stop_wait); /* b after a is down */
    CHECK_EQ(b->reason, FLEET_DEP_STOP_ORDER);
    CHECK_EQ(b->blocker, 0);
    a->stopping = 1;
    decide(&w);
    CHECK(b->stop_wait);
    a->up = a->active = 0;
    decide(&w);
    CHECK(!b->stop_wait);
    world_close(&w);
}

TEST(fleet_deps_stop_of_one_leaves_units_ordered_after_it_running)
{
    /* Ordering alone does not stop anything: c (After=b) keeps running
     * and b stops at once. */
    struct world w = {.cluster = {"b.service", "c.service"}};
    struct fleet_dep_unit *b = unit(&w, "b.service", "");
    struct fleet_dep_unit *c = unit(&w, "c.service", "After=b.service\n");
    running(b);
    running(c);
    b->launched = 0;
    decide(&w);
    CHECK(!b->stop_wait);
    CHECK(!c->hold && !c->wait);
    world_close(&w);
}

TEST(fleet_deps_cycles_are_broken)
{
    struct world w = {.cluster = {"a.service", "b.service", "c.service"}};
    struct fleet_dep_unit *a = unit(&w, "a.service", "After=b.service\n");
    struct fleet_dep_unit *b = unit(&w, "b.service", "After=a.service\n");
    struct fleet_dep_unit *c = unit(&w, "c.service", "After=a.service\n");
    decide(&w);
    CHECK(!a->wait && !b->wait); /* start unordered */
    CHECK(c->wait);              /* c is not on the cycle */
    running(a);
    running(b);
    a->launched = b->launched = 0;
    decide(&w);
    CHECK(!a->stop_wait && !b->stop_wait); /* stop unordered */
    world_close(&w);
}

TEST(fleet_deps_specifiers_expand_per_instance)
{
    struct fleet_service svc;
    char err[CN_ERRMSG_SIZE];
    const char *text = "[Unit]\nRequires=db@%i.service %p-log.service\n"
                       "Wants=x.service\nBindsTo=y@%i.service\n"
                       "After=db@%i.service %z.service\nBefore=z.service\n"
                       "[Service]\nExecStart=/bin/true\n";
    REQUIRE_EQ(fleet_service_parse(text, strlen(text), &svc, err), 0);
    CHECK_EQ(svc.warnings.len, 0); /* Wants, BindsTo, Before are known */
    struct fleet_deps d;
    struct fleet_spec sp = {"web@2.service", "host", "m1"};
    REQUIRE_EQ(fleet_deps_init(&d, &svc, &sp), 0);
    REQUIRE_EQ(d.requires.n, 2);
    CHECK_STR(d.requires.v[0], "db@2.service");
    CHECK_STR(d.requires.v[1], "web-log.service");
    CHECK_STR(d.binds_to.v[0], "y@2.service");
    CHECK_STR(d.wants.v[0], "x.service");
    REQUIRE_EQ(d.after.n, 2);
    CHECK_STR(d.after.v[0], "db@2.service");
    CHECK_STR(d.after.v[1], "%z.service"); /* unknown specifier: kept */
    CHECK_STR(d.before.v[0], "z.service");
    fleet_deps_close(&d);
    fleet_service_close(&svc);
}
