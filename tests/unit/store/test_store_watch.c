/*
 * Unit tests for src/store/store_watch.c: exact and recursive watches,
 * hidden keys, deleted-directory notification, history hits, error 401,
 * stream watchers (history replay, lag limit), unwatch and counts.
 */
#include "store_test.h"

static struct store_result wres;

static uint64_t watch(struct store *s, const char *path, int recursive,
                      int stream, uint64_t since)
{
    uint64_t id = 0;
    store_result_close(&wres);
    memset(&wres, 0, sizeof(wres));
    int rc = store_watch(s, cn_slice_from_cstr(path), recursive, stream, since,
                         &id, &wres);
    REQUIRE_EQ(rc, CN_OK);
    return id;
}

/* Pops one delivery; returns its watcher id (0 if none) and the event's
 * key and action through the out-parameters. */
static uint64_t pop(struct store *s, char *key, int *action, int *last)
{
    struct store_delivery d;
    if (!store_next_delivery(s, &d))
        return 0;
    if (key)
        snprintf(key, 64, "%s", d.event->key);
    if (action)
        *action = d.event->action;
    if (last)
        *last = d.last;
    store_event_unref(d.event);
    return d.watcher_id;
}

static void drain(struct store *s)
{
    while (pop(s, NULL, NULL, NULL))
        ;
}

TEST(store_watch_exact_key_woken_once)
{
    struct store *s = st_new();
    uint64_t w = watch(s, "/a", 0, 0, 0);
    CHECK(w != 0);
    CHECK_EQ(store_watcher_count(s), 1);
    REQUIRE_EQ(st_run(s, st_put("/b", "1")), CN_OK);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    REQUIRE_EQ(st_run(s, st_put("/a", "1")), CN_OK);
    char key[64];
    int action = 0, last = -1;
    CHECK_EQ(pop(s, key, &action, &last), w);
    CHECK_STR(key, "/a");
    CHECK_EQ(action, STORE_ACT_SET);
    CHECK_EQ(last, 1);
    CHECK_EQ(store_watcher_count(s), 0);
    REQUIRE_EQ(st_run(s, st_put("/a", "2")), CN_OK);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_non_recursive_ignores_children)
{
    struct store *s = st_new();
    uint64_t w = watch(s, "/d", 0, 0, 0);
    REQUIRE_EQ(st_run(s, st_put("/d/x", "1")), CN_OK);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    uint64_t r = watch(s, "/d", 1, 0, 0);
    REQUIRE_EQ(st_run(s, st_put("/d/x/y", "1")), CN_OK);
    CHECK_EQ(st_res.ecode, 104);
    REQUIRE_EQ(st_run(s, st_put("/d/y", "1")), CN_OK);
    char key[64];
    CHECK_EQ(pop(s, key, NULL, NULL), r);
    CHECK_STR(key, "/d/y");
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    CHECK_EQ(store_watcher_count(s), 1);
    store_unwatch(s, w);
    CHECK_EQ(store_watcher_count(s), 0);
    store_unwatch(s, w); /* unknown ids are ignored */
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_root_recursive_sees_everything_but_hidden)
{
    struct store *s = st_new();
    uint64_t w = watch(s, "/", 1, 1, 0);
    uint64_t h = watch(s, "/h/_x", 0, 1, 0);
    uint64_t hd = watch(s, "/h", 1, 1, 0);
    REQUIRE_EQ(st_run(s, st_put("/h/_x", "1")), CN_OK);
    /* only the watcher naming the hidden key itself */
    char key[64];
    CHECK_EQ(pop(s, key, NULL, NULL), h);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    REQUIRE_EQ(st_run(s, st_put("/h/_d/z", "1")), CN_OK);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    REQUIRE_EQ(st_run(s, st_put("/h/y", "1")), CN_OK);
    CHECK_EQ(pop(s, key, NULL, NULL), w);
    CHECK_EQ(pop(s, key, NULL, NULL), hd);
    CHECK_STR(key, "/h/y");
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    /* history scans do not apply the hidden rule (as etcd) */
    uint64_t w2 = watch(s, "/", 1, 0, 1);
    CHECK_EQ(pop(s, key, NULL, NULL), w2);
    CHECK_STR(key, "/h/_x");
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_deleted_dir_notifies_watchers_inside)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/dd/x/y", "1")), CN_OK);
    uint64_t wy = watch(s, "/dd/x/y", 0, 1, 0);
    uint64_t wx = watch(s, "/dd/x", 0, 1, 0);
    uint64_t wn = watch(s, "/dd/x/none", 0, 1, 0);
    uint64_t wr = watch(s, "/", 1, 1, 0);
    struct store_cmd d = st_cmd(STORE_CMD_DELETE, "/dd");
    d.recursive = 1;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    /* children first, then the dir, then the walk from the root */
    char key[64];
    CHECK_EQ(pop(s, key, NULL, NULL), wy);
    CHECK_STR(key, "/dd");
    CHECK_EQ(pop(s, NULL, NULL, NULL), wx);
    CHECK_EQ(pop(s, NULL, NULL, NULL), wr);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    CHECK_EQ(store_watcher_count(s), 4);
    store_unwatch(s, wn);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_stream_on_deleted_file_gets_event_twice_like_etcd)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/w", "1")), CN_OK);
    uint64_t ws = watch(s, "/w", 0, 1, 0);
    uint64_t wo = watch(s, "/w", 0, 0, 0);
    REQUIRE_EQ(st_run(s, st_cmd(STORE_CMD_DELETE, "/w")), CN_OK);
    int last = -1;
    CHECK_EQ(pop(s, NULL, NULL, &last), ws);
    CHECK_EQ(last, 0);
    CHECK_EQ(pop(s, NULL, NULL, &last), wo);
    CHECK_EQ(last, 1);
    CHECK_EQ(pop(s, NULL, NULL, NULL), ws);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_history_hit_answers_at_once)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/a", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/b", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/a", "2")), CN_OK);
    uint64_t w = watch(s, "/a", 0, 0, 2);
    struct store_delivery d;
    REQUIRE(store_next_delivery(s, &d));
    CHECK_EQ(d.watcher_id, w);
    CHECK_EQ(d.event->index, 3);
    CHECK_EQ(d.last, 1);
    store_event_unref(d.event);
    CHECK_EQ(store_watcher_count(s), 0);
    /* future index: waits, and skips events below it */
    uint64_t f = watch(s, "/a", 0, 0, 5);
    REQUIRE_EQ(st_run(s, st_put("/a", "3")), CN_OK); /* index 4 */
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    REQUIRE_EQ(st_run(s, st_put("/a", "4")), CN_OK); /* index 5 */
    CHECK_EQ(pop(s, NULL, NULL, NULL), f);
    /* a deleted dir in history matches watches below it (plain prefix) */
    REQUIRE_EQ(st_run(s, st_put("/foo/x", "1")), CN_OK); /* 6 */
    struct store_cmd del = st_cmd(STORE_CMD_DELETE, "/foo");
    del.recursive = 1;
    REQUIRE_EQ(st_run(s, del), CN_OK); /* 7 */
    uint64_t g = watch(s, "/foo/x/deep", 0, 0, 7);
    struct store_delivery d2;
    REQUIRE(store_next_delivery(s, &d2));
    CHECK_EQ(d2.watcher_id, g);
    CHECK_EQ(d2.event->index, 7);
    store_event_unref(d2.event);
    uint64_t g2 = watch(s, "/foobar", 0, 0, 7);
    CHECK_EQ(pop(s, NULL, NULL, NULL), g2);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_cleared_history_answers_401)
{
    struct store *s = NULL;
    struct store_config cfg = {0};
    cfg.history_events = 5;
    REQUIRE_EQ(store_new(&s, &cfg), CN_OK);
    for (int i = 0; i < 8; i++)
        REQUIRE_EQ(st_run(s, st_put("/k", "v")), CN_OK);
    uint64_t id = 99;
    struct store_result r = {0};
    REQUIRE_EQ(store_watch(s, cn_slice_from_cstr("/k"), 0, 0, 2, &id, &r),
               CN_OK);
    CHECK_EQ(id, 0);
    CHECK_EQ(r.ecode, 401);
    CHECK_EQ(r.status, 400);
    CHECK_EQ(r.index, 8);
    CHECK_STR(r.body.data,
              "{\"errorCode\":401,\"message\":\"The event in requested index "
              "is outdated and cleared\",\"cause\":\"the requested history "
              "has been cleared [4/2]\",\"index\":8}");
    store_result_close(&r);
    memset(&r, 0, sizeof(r));
    REQUIRE_EQ(store_watch(s, cn_slice_from_cstr("/k"), 0, 0, 4, &id, &r),
               CN_OK);
    CHECK(id != 0);
    CHECK_EQ(r.ecode, 0);
    drain(s);
    store_result_close(&r);
    st_done(s);
}

TEST(store_watch_stream_replays_history_then_live)
{
    struct store *s = st_new();
    for (int i = 0; i < 3; i++)
        REQUIRE_EQ(st_run(s, st_put("/s/k", "v")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/other", "v")), CN_OK);
    uint64_t w = watch(s, "/s", 1, 1, 2);
    struct store_delivery d;
    uint64_t want[] = {2, 3, 5};
    REQUIRE_EQ(st_run(s, st_put("/s/k", "v")), CN_OK); /* 5 */
    for (int i = 0; i < 3; i++) {
        REQUIRE(store_next_delivery(s, &d));
        CHECK_EQ(d.watcher_id, w);
        CHECK_EQ(d.event->index, want[i]);
        CHECK_EQ(d.last, 0);
        store_event_unref(d.event);
    }
    CHECK(!store_next_delivery(s, &d));
    CHECK_EQ(store_watcher_count(s), 1);
    store_unwatch(s, w);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_stream_dropped_when_queue_exceeds_limit)
{
    struct store *s = st_new();
    uint64_t w = watch(s, "/q", 1, 1, 0);
    uint32_t n = CN_STORE_STREAM_QUEUE_EVENTS_MAX + 5;
    for (uint32_t i = 0; i < n; i++)
        REQUIRE_EQ(st_run(s, st_put("/q/k", "v")), CN_OK);
    CHECK_EQ(store_watcher_count(s), 0);
    struct store_delivery d;
    uint32_t got = 0, lasts = 0;
    while (store_next_delivery(s, &d)) {
        CHECK_EQ(d.watcher_id, w);
        got++;
        if (d.last) {
            lasts++;
            CHECK_EQ(got, CN_STORE_STREAM_QUEUE_EVENTS_MAX);
        }
        store_event_unref(d.event);
    }
    CHECK_EQ(got, CN_STORE_STREAM_QUEUE_EVENTS_MAX);
    CHECK_EQ(lasts, 1);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_drained_stream_is_not_dropped)
{
    struct store *s = st_new();
    uint64_t w = watch(s, "/q", 1, 1, 0);
    for (uint32_t i = 0; i < CN_STORE_STREAM_QUEUE_EVENTS_MAX + 50; i++) {
        REQUIRE_EQ(st_run(s, st_put("/q/k", "v")), CN_OK);
        int last = 1;
        CHECK_EQ(pop(s, NULL, NULL, &last), w);
        CHECK_EQ(last, 0);
    }
    CHECK_EQ(store_watcher_count(s), 1);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_unwatch_drops_queued_deliveries)
{
    struct store *s = st_new();
    uint64_t w = watch(s, "/u", 0, 1, 0);
    uint64_t v = watch(s, "/u", 0, 1, 0);
    REQUIRE_EQ(st_run(s, st_put("/u", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/u", "2")), CN_OK);
    store_unwatch(s, w);
    CHECK_EQ(pop(s, NULL, NULL, NULL), v);
    CHECK_EQ(pop(s, NULL, NULL, NULL), v);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    struct cn_buf b = {0};
    REQUIRE_EQ(store_stats_json(s, &b), CN_OK);
    CHECK(strstr(b.data, "\"watchers\":1}") != NULL);
    cn_buf_close(&b);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_limit_answers_busy)
{
    struct store *s = NULL;
    struct store_config cfg = {0};
    cfg.watchers_max = 3;
    REQUIRE_EQ(store_new(&s, &cfg), CN_OK);
    for (int i = 0; i < 3; i++)
        watch(s, "/x", 0, 0, 0);
    uint64_t id;
    struct store_result r = {0};
    CHECK_EQ(store_watch(s, cn_slice_from_cstr("/x"), 0, 0, 0, &id, &r),
             CN_EBUSY);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_cost_independent_of_unrelated_watchers)
{
    struct store *s = st_new();
    char k[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(k, sizeof(k), "/w/%d", i);
        watch(s, k, 0, 0, 0);
    }
    CHECK_EQ(store_watcher_count(s), 20000);
    REQUIRE_EQ(st_run(s, st_put("/w/777", "v")), CN_OK);
    CHECK(pop(s, NULL, NULL, NULL) != 0);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    CHECK_EQ(store_watcher_count(s), 19999);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_stream_replay_longer_than_queue_limit_ends_watch)
{
    struct store *s = NULL;
    struct store_config cfg = {0};
    cfg.history_events = CN_STORE_STREAM_QUEUE_EVENTS_MAX + 100;
    REQUIRE_EQ(store_new(&s, &cfg), CN_OK);
    for (uint32_t i = 0; i < cfg.history_events; i++)
        REQUIRE_EQ(st_run(s, st_put("/k", "v")), CN_OK);
    uint64_t w = watch(s, "/k", 0, 1, 1);
    CHECK_EQ(store_watcher_count(s), 0);
    uint32_t got = 0;
    int last = 0;
    while (!last && pop(s, NULL, NULL, &last) == w)
        got++;
    CHECK_EQ(got, CN_STORE_STREAM_QUEUE_EVENTS_MAX);
    CHECK_EQ(last, 1);
    CHECK_EQ(pop(s, NULL, NULL, NULL), 0);
    store_result_close(&wres);
    st_done(s);
}

TEST(store_watch_sync_expiring_many_keys_wakes_stream_in_order)
{
    struct store *s = st_new();
    char k[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof(k), "/e/%d", i);
        struct store_cmd c = st_put(k, "v");
        c.expire_ns = T0 + (i % 7 + 1) * SEC;
        REQUIRE_EQ(st_run(s, c), CN_OK);
    }
    uint64_t w = watch(s, "/e", 1, 1, 0);
    struct store_cmd sync = st_cmd(STORE_CMD_SYNC, "");
    sync.now_ns = T0 + 10 * SEC;
    REQUIRE_EQ(st_run(s, sync), CN_OK);
    CHECK_EQ(store_index(s), 6000);
    CHECK_EQ(store_key_count(s), 1);
    struct store_delivery d;
    uint64_t want = 3001;
    int64_t prev_exp = 0;
    while (store_next_delivery(s, &d)) {
        CHECK_EQ(d.watcher_id, w);
        CHECK_EQ(d.event->index, want);
        want++;
        CHECK_EQ(d.event->action, STORE_ACT_EXPIRE);
        /* expiry order: earlier deadlines first */
        const char *e = strstr(d.event->json, "00:00:0");
        REQUIRE(e != NULL);
        int64_t exp = e[7] - '0';
        CHECK(exp >= prev_exp);
        prev_exp = exp;
        store_event_unref(d.event);
    }
    CHECK_EQ(want, 6001);
    store_result_close(&wres);
    st_done(s);
}
