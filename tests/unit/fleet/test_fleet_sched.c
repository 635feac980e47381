/* The engine's placement decisions (fleet_sched.c) and the stored JSON. */
#include <stdio.h>
#include <string.h>

#include "fleet/fleet_store.h"
#include "tap.h"

struct world {
    struct fleet_strv meta[4];
    struct fleet_sched_machine ms[4];
    size_t nm;
    struct fleet_service svc[8];
    struct fleet_sched_job js[8];
    size_t nj;
};

static void machine(struct world *w, const char *id, const char *md)
{
    struct fleet_strv *l = &w->meta[w->nm];
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", md);
    for (char *save, *t = strtok_r(buf, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        l->v = cn_realloc(l->v, (l->n + 1) * sizeof(char *));
        l->lines = cn_realloc(l->lines, (l->n + 1) * sizeof(int));
        l->v[l->n] = cn_malloc(strlen(t) + 1);
        strcpy(l->v[l->n], t);
        l->lines[l->n++] = 0;
    }
    w->ms[w->nm].id = id;
    w->ms[w->nm].metadata = l;
    w->nm++;
}

static void job(struct world *w, const char *name, const char *xfleet, int ts,
                const char *target)
{
    char text[512], err[CN_ERRMSG_SIZE];
    snprintf(text, sizeof(text),
             "[Service]\nExecStart=/bin/true\n[X-Fleet]\n%s", xfleet);
    int rc = fleet_service_parse(text, strlen(text), &w->svc[w->nj], err);
    if (rc != 0)
        tap_fail(__FILE__, __LINE__, "parse: %s", err);
    w->js[w->nj].name = name;
    w->js[w->nj].svc = &w->svc[w->nj];
    w->js[w->nj].target_state = ts;
    snprintf(w->js[w->nj].target, sizeof(w->js[0].target), "%s", target);
    w->nj++;
}

static void decide(struct world *w)
{
    fleet_sched_decide(w->ms, w->nm, w->js, w->nj);
}

static void world_close(struct world *w)
{
    for (size_t i = 0; i < w->nm; i++)
        fleet_strv_close(&w->meta[i]);
    for (size_t i = 0; i < w->nj; i++)
        fleet_service_close(&w->svc[i]);
}

#define L FLEET_TS_LAUNCHED

TEST(fleet_sched_spreads_by_fewest_units)
{
    struct world w = {0};
    machine(&w, "a", "");
    machine(&w, "b", "");
    job(&w, "1.service", "", L, "");
    job(&w, "2.service", "", L, "");
    job(&w, "3.service", "", L, "");
    job(&w, "4.service", "", FLEET_TS_INACTIVE, "");
    decide(&w);
    CHECK_STR(w.js[0].target, "a");
    CHECK_STR(w.js[1].target, "b");
    CHECK_STR(w.js[2].target, "a");
    CHECK_STR(w.js[3].target, "");
    CHECK_EQ(w.ms[0].units, 2);
    CHECK_EQ(w.ms[1].units, 1);
    world_close(&w);
}

TEST(fleet_sched_metadata_values_or_keys_and)
{
    struct world w = {0};
    machine(&w, "a", "region=us-west,disk=ssd");
    machine(&w, "b", "region=us-east,disk=hdd");
    machine(&w, "c", "region=eu,disk=ssd");
    job(&w, "1.service", "MachineMetadata=region=us-east region=eu\n", L, "");
    job(&w, "2.service",
        "MachineMetadata=region=us-east region=eu\nMachineMetadata=disk=ssd\n",
        L, "");
    job(&w, "3.service", "MachineMetadata=region=mars\n", L, "");
    decide(&w);
    CHECK_STR(w.js[0].target, "b");
    CHECK_STR(w.js[1].target, "c");
    CHECK_STR(w.js[2].target, "");
    world_close(&w);
}

TEST(fleet_sched_machine_id_and_machine_of)
{
    struct world w = {0};
    machine(&w, "a", "");
    machine(&w, "b", "");
    /* buddy is listed first but must follow db, placed later. */
    job(&w, "buddy.service", "MachineOf=db.service\n", L, "");
    job(&w, "db.service", "MachineID=b\n", L, "");
    job(&w, "orphan.service", "MachineOf=missing.service\n", L, "");
    decide(&w);
    CHECK_STR(w.js[1].target, "b");
    CHECK_STR(w.js[0].target, "b");
    CHECK_STR(w.js[2].target, "");
    world_close(&w);
}

TEST(fleet_sched_conflicts_both_ways)
{
    struct world w = {0};
    machine(&w, "a", "");
    machine(&w, "b", "");
    job(&w, "web@1.service", "Conflicts=web@*.service\n", L, "");
    job(&w, "web@2.service", "Conflicts=web@*.service\n", L, "");
    job(&w, "web@3.service", "Conflicts=web@*.service\n", L, "");
    job(&w, "x.service", "", L, "");
    job(&w, "y.service", "Conflicts=x.service\n", L, "");
    decide(&w);
    CHECK(strcmp(w.js[0].target, w.js[1].target) != 0);
    CHECK(w.js[0].target[0] && w.js[1].target[0]);
    CHECK_STR(w.js[2].target, "");
    CHECK(strcmp(w.js[3].target, w.js[4].target) != 0);
    world_close(&w);
}

TEST(fleet_sched_dead_machine_and_stale_constraint_unschedule)
{
    struct world w = {0};
    machine(&w, "a", "region=eu");
    machine(&w, "b", "region=us");
    job(&w, "1.service", "", L, "gone");
    job(&w, "2.service", "MachineMetadata=region=us\n", L, "a");
    job(&w, "3.service", "", L, "a");
    job(&w, "4.service", "", FLEET_TS_INACTIVE, "b");
    job(&w, "5.service", "Global=true\n", L, "b");
    decide(&w);
    CHECK_STR(w.js[0].target, "b");
    CHECK_STR(w.js[1].target, "b");
    CHECK_STR(w.js[2].target, "a"); /* stays: no churn */
    CHECK_STR(w.js[3].target, "");
    CHECK_STR(w.js[4].target, "");
    world_close(&w);
}

TEST(fleet_sched_conflicting_pair_keeps_the_first)
{
    struct world w = {0};
    machine(&w, "a", "");
    machine(&w, "b", "");
    job(&w, "p.service", "Conflicts=q.service\n", L, "a");
    job(&w, "q.service", "", L, "a");
    decide(&w);
    CHECK_STR(w.js[0].target, "a");
    CHECK_STR(w.js[1].target, "b");
    world_close(&w);
}

TEST(fleet_sched_replaces_takes_the_machine)
{
    struct world w = {0};
    machine(&w, "a", "");
    machine(&w, "b", "");
    job(&w, "new.service", "Replaces=old.service\n", L, "");
    job(&w, "old.service", "", L, "b");
    job(&w, "z.service", "", L, "a");
    decide(&w);
    CHECK_STR(w.js[0].target, "b");
    CHECK_STR(w.js[1].target, "a");
    world_close(&w);
}

TEST(fleet_sched_specifiers_in_constraints)
{
    struct world w = {0};
    machine(&w, "a", "");
    machine(&w, "b", "");
    job(&w, "data@1.service", "MachineID=b\n", L, "");
    job(&w, "app@1.service", "MachineOf=data@%i.service\n", L, "");
    decide(&w);
    CHECK_STR(w.js[1].target, "b");
    world_close(&w);
}

TEST(fleet_json_round_trips)
{
    struct fleet_machine m = {0}, back;
    snprintf(m.id, sizeof(m.id), "abc");
    snprintf(m.ip, sizeof(m.ip), "10.0.0.1");
    struct cn_buf b = {0};
    REQUIRE_EQ(fleet_json_machine_encode(&b, &m), 0);
    CHECK_STR(b.data, "{\"ID\":\"abc\",\"Metadata\":{},\"PublicIP\":"
                      "\"10.0.0.1\",\"Version\":\"" FLEET_VERSION "\"}");
    REQUIRE_EQ(fleet_json_machine_decode(
                   "{\"ID\":\"x\",\"PublicIP\":\"\",\"Metadata\":"
                   "{\"z\":\"1\",\"a\":\"2\"}}",
                   &back),
               0);
    CHECK_STR(back.id, "x");
    REQUIRE_EQ(back.metadata.n, 2);
    CHECK_STR(back.metadata.v[0], "a=2");
    CHECK_STR(back.metadata.v[1], "z=1");
    fleet_machine_close(&back);
    CHECK_EQ(fleet_json_machine_decode("[1]", &back), CN_EPROTO);
    CHECK_EQ(fleet_json_machine_decode("{\"PublicIP\":\"1\"}", &back),
             CN_EPROTO);
    struct fleet_state s = {0}, s2;
    snprintf(s.load, sizeof(s.load), "loaded");
    snprintf(s.active, sizeof(s.active), "active");
    snprintf(s.sub, sizeof(s.sub), "running");
    snprintf(s.hash, sizeof(s.hash), "h");
    cn_buf_reset(&b);
    REQUIRE_EQ(fleet_json_state_encode(&b, &s, &m), 0);
    REQUIRE_EQ(fleet_json_state_decode(b.data, &s2), 0);
    CHECK_STR(s2.sub, "running");
    CHECK_STR(s2.machine_id, "abc");
    char *raw;
    cn_buf_reset(&b);
    REQUIRE_EQ(fleet_json_unit_encode(&b, "[Unit]\n\"q\"\n"), 0);
    REQUIRE_EQ(fleet_json_unit_decode(b.data, &raw), 0);
    CHECK_STR(raw, "[Unit]\n\"q\"\n");
    cn_free(raw);
    CHECK_EQ(fleet_json_unit_decode("nope", &raw), CN_EPROTO);
    cn_buf_close(&b);
}
