/*
 * Unit tests for src/store/store_codec.c and for the store's guarantees as
 * a replicated state machine: command encode/decode round trips and
 * rejection of truncated or garbled bytes, snapshot round trips and
 * rejection, allocation-failure loops (every step of every operation fails
 * once and must leave the store unchanged), and determinism (two stores fed
 * the same seeded random commands end with identical snapshots).
 */
#include "store_test.h"

/* ---- random commands --------------------------------------------------- */

static const char *const rnd_keys[] = {
    "/a",     "/b",     "/a/x",   "/a/y",   "/d/e/f",  "/d/e",   "/_h",
    "/d/_h",  "/q",     "/big/1", "/big/2", "/big/3",  "/big/4", "/big/5",
    "/big/6", "/big/7", "/big/8", "/big/9", "/big/10", "/"};

static struct store_cmd rnd_cmd(struct cn_prng *p, int64_t now, char *valbuf,
                                char *pvbuf)
{
    struct store_cmd c = st_cmd(STORE_CMD_PUT, "/a");
    unsigned nk = sizeof(rnd_keys) / sizeof(rnd_keys[0]);
    c.path = cn_slice_from_cstr(rnd_keys[cn_prng_below(p, nk)]);
    c.now_ns = now;
    uint64_t m = cn_prng_below(p, 100);
    snprintf(valbuf, 16, "v%llu", (unsigned long long)cn_prng_below(p, 4));
    c.value = cn_slice_from_cstr(valbuf);
    if (m < 50) {
        c.method = STORE_CMD_PUT;
        c.dir = cn_prng_chance(p, 1, 10);
        if (c.dir)
            c.value = cn_slice_from_cstr("");
        c.prev_exist = (int)cn_prng_below(p, 3) - 1;
        if (cn_prng_chance(p, 1, 5)) {
            snprintf(pvbuf, 16, "v%llu",
                     (unsigned long long)cn_prng_below(p, 4));
            c.prev_value = cn_slice_from_cstr(pvbuf);
        }
        if (cn_prng_chance(p, 1, 6))
            c.prev_index = cn_prng_below(p, 40);
        if (cn_prng_chance(p, 1, 3))
            c.expire_ns = now + (int64_t)cn_prng_range(p, 1, 5) * SEC;
        if (cn_prng_chance(p, 1, 10)) {
            c.refresh = 1;
            c.value = cn_slice_from_cstr("");
            c.expire_ns = now + 3 * SEC;
        }
    } else if (m < 65) {
        c.method = STORE_CMD_POST;
        if (cn_prng_chance(p, 1, 4))
            c.expire_ns = now + 2 * SEC;
    } else if (m < 90) {
        c.method = STORE_CMD_DELETE;
        c.value = cn_slice_from_cstr("");
        c.dir = cn_prng_chance(p, 1, 3);
        c.recursive = cn_prng_chance(p, 1, 3);
        if (cn_prng_chance(p, 1, 5)) {
            snprintf(pvbuf, 16, "v%llu",
                     (unsigned long long)cn_prng_below(p, 4));
            c.prev_value = cn_slice_from_cstr(pvbuf);
        }
        if (cn_prng_chance(p, 1, 6))
            c.prev_index = cn_prng_below(p, 40);
    } else {
        c.method = STORE_CMD_SYNC;
        c.path = cn_slice_from_cstr("");
        c.value = cn_slice_from_cstr("");
    }
    return c;
}

static void snap(struct store *s, struct cn_buf *b)
{
    cn_buf_reset(b);
    REQUIRE_EQ(store_snapshot_save(s, b), CN_OK);
}

/* ---- command codec ----------------------------------------------------- */

static int cmd_eq(const struct store_cmd *a, const struct store_cmd *b)
{
    return a->method == b->method && cn_slice_eq(a->path, b->path) &&
           cn_slice_eq(a->value, b->value) && a->dir == b->dir &&
           a->prev_exist == b->prev_exist &&
           cn_slice_eq(a->prev_value, b->prev_value) &&
           a->prev_index == b->prev_index && a->recursive == b->recursive &&
           a->refresh == b->refresh && a->expire_ns == b->expire_ns &&
           a->now_ns == b->now_ns;
}

TEST(store_cmd_round_trips)
{
    struct cn_prng p;
    cn_prng_seed(&p, 7);
    char v[16], pv[16];
    struct cn_buf b = {0};
    for (int i = 0; i < 2000; i++) {
        struct store_cmd c = rnd_cmd(&p, T0 + i * SEC, v, pv);
        if (i % 7 == 0)
            c.expire_ns = -(int64_t)cn_prng_next(&p);
        if (i % 11 == 0)
            c.prev_index = cn_prng_next(&p);
        cn_buf_reset(&b);
        REQUIRE_EQ(store_cmd_encode(&c, &b), CN_OK);
        CHECK_EQ(b.data[0], 1); /* version */
        struct store_cmd d;
        REQUIRE_EQ(store_cmd_decode(b.data, b.len, &d), CN_OK);
        CHECK(cmd_eq(&c, &d));
    }
    struct store_cmd c = st_put("/k", "value");
    c.method = 0;
    CHECK_EQ(store_cmd_encode(&c, &b), CN_EINVAL);
    cn_buf_close(&b);
}

TEST(store_cmd_decode_rejects_truncated_and_trailing_bytes)
{
    struct store_cmd c = st_put("/some/key", "some value");
    c.prev_value = cn_slice_from_cstr("old");
    c.prev_index = 300;
    c.expire_ns = T0 + 5 * SEC;
    struct cn_buf b = {0};
    REQUIRE_EQ(store_cmd_encode(&c, &b), CN_OK);
    struct store_cmd d;
    for (size_t n = 0; n < b.len; n++)
        CHECK_EQ(store_cmd_decode(b.data, n, &d), CN_ECORRUPT);
    REQUIRE_EQ(cn_buf_append_char(&b, 0), CN_OK);
    CHECK_EQ(store_cmd_decode(b.data, b.len, &d), CN_ECORRUPT);
    CHECK_EQ(store_cmd_decode(NULL, 0, &d), CN_ECORRUPT);
    /* wrong version, method, flags; non-canonical varint */
    const char v2[] = {2, 1, 0, 0, 0, 0, 0, 0, 0};
    const char m9[] = {1, 9, 0, 0, 0, 0, 0, 0, 0};
    const char fl[] = {1, 1, 0x20, 0, 0, 0, 0, 0, 0};
    const char pe[] = {1, 1, 0x18, 0, 0, 0, 0, 0, 0};
    const char nc[] = {1, 1, 0, (char)0x80, 0, 0, 0, 0, 0, 0};
    const char ok[] = {1, 4, 0, 0, 0, 0, 0, 0, 0};
    CHECK_EQ(store_cmd_decode(v2, sizeof(v2), &d), CN_ECORRUPT);
    CHECK_EQ(store_cmd_decode(m9, sizeof(m9), &d), CN_ECORRUPT);
    CHECK_EQ(store_cmd_decode(fl, sizeof(fl), &d), CN_ECORRUPT);
    CHECK_EQ(store_cmd_decode(pe, sizeof(pe), &d), CN_ECORRUPT);
    CHECK_EQ(store_cmd_decode(nc, sizeof(nc), &d), CN_ECORRUPT);
    CHECK_EQ(store_cmd_decode(ok, sizeof(ok), &d), CN_OK);
    CHECK_EQ(d.method, STORE_CMD_SYNC);
    /* an overlong length */
    const char ln[] = {1,          1,          0,          (char)0xff,
                       (char)0xff, (char)0xff, (char)0xff, (char)0xff,
                       (char)0xff, (char)0xff, (char)0xff, (char)0xff,
                       0x01};
    CHECK_EQ(store_cmd_decode(ln, sizeof(ln), &d), CN_ECORRUPT);
    cn_buf_close(&b);
}

TEST(store_cmd_decode_garbled_bytes_is_safe_and_canonical)
{
    struct cn_prng p;
    cn_prng_seed(&p, 99);
    struct store_cmd c = st_put("/k/l", "vv");
    c.expire_ns = T0;
    struct cn_buf b = {0}, re = {0};
    REQUIRE_EQ(store_cmd_encode(&c, &b), CN_OK);
    char buf[64];
    for (int i = 0; i < 20000; i++) {
        size_t n = b.len;
        memcpy(buf, b.data, n);
        int flips = 1 + (int)cn_prng_below(&p, 3);
        for (int f = 0; f < flips; f++)
            buf[cn_prng_below(&p, n)] = (char)cn_prng_next(&p);
        if (cn_prng_chance(&p, 1, 4))
            n = cn_prng_below(&p, n + 1);
        struct store_cmd d;
        int rc = store_cmd_decode(buf, n, &d);
        CHECK(rc == CN_OK || rc == CN_ECORRUPT);
        if (rc == CN_OK) {
            cn_buf_reset(&re);
            REQUIRE_EQ(store_cmd_encode(&d, &re), CN_OK);
            CHECK_EQ(re.len, n);
            CHECK_MEM(re.data, buf, n);
        }
    }
    cn_buf_close(&b);
    cn_buf_close(&re);
}

/* ---- determinism and snapshots ----------------------------------------- */

/* Feeds count random commands (seed) to s; if via_codec, every command
 * goes through encode/decode first. */
static void feed(struct store *s, uint64_t seed, int count, int via_codec)
{
    struct cn_prng p;
    cn_prng_seed(&p, seed);
    char v[16], pv[16];
    struct cn_buf b = {0};
    int64_t now = T0;
    for (int i = 0; i < count; i++) {
        now += (int64_t)cn_prng_below(&p, SEC);
        struct store_cmd c = rnd_cmd(&p, now, v, pv);
        struct store_result r = {0};
        if (via_codec) {
            cn_buf_reset(&b);
            REQUIRE_EQ(store_cmd_encode(&c, &b), CN_OK);
            REQUIRE_EQ(store_cmd_decode(b.data, b.len, &c), CN_OK);
        }
        REQUIRE_EQ(store_apply(s, &c, &r), CN_OK);
        store_result_close(&r);
    }
    cn_buf_close(&b);
}

TEST(store_same_commands_give_identical_snapshots)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        struct store *a = st_new(), *b = st_new();
        feed(a, seed, 3000, 0);
        feed(b, seed, 3000, 1);
        struct cn_buf sa = {0}, sb = {0};
        snap(a, &sa);
        snap(b, &sb);
        CHECK_EQ(sa.len, sb.len);
        CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
        CHECK_EQ(store_index(a), store_index(b));
        CHECK(store_index(a) > 100);
        cn_buf_close(&sa);
        cn_buf_close(&sb);
        store_free(a);
        store_free(b);
    }
}

TEST(store_snapshot_round_trips_whole_state)
{
    struct store *a = st_new();
    feed(a, 42, 2500, 0);
    struct store_cmd c = st_put("/ttl/k", "v");
    c.expire_ns = T0 + 3600 * SEC;
    struct store_result r = {0};
    REQUIRE_EQ(store_apply(a, &c, &r), CN_OK);
    store_result_close(&r);
    struct cn_buf sa = {0}, sb = {0}, ga = {0};
    snap(a, &sa);
    struct store *b = st_new();
    REQUIRE_EQ(st_run(b, st_put("/junk", "x")), CN_OK);
    uint64_t w;
    struct store_result wr = {0};
    REQUIRE_EQ(store_watch(b, cn_slice_from_cstr("/"), 1, 1, 0, &w, &wr),
               CN_OK);
    REQUIRE_EQ(store_snapshot_load(b, sa.data, sa.len), CN_OK);
    CHECK_EQ(store_watcher_count(b), 0); /* watchers are dropped */
    snap(b, &sb);
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    CHECK_EQ(store_index(a), store_index(b));
    CHECK_EQ(store_key_count(a), store_key_count(b));
    CHECK_EQ(store_next_expiry_ns(a), store_next_expiry_ns(b));
    REQUIRE_EQ(st_get(a, "/", 1, 1, T0), CN_OK);
    REQUIRE_EQ(cn_buf_append(&ga, st_res.body.data, st_res.body.len), CN_OK);
    REQUIRE_EQ(st_get(b, "/", 1, 1, T0), CN_OK);
    CHECK_STR(st_body(), ga.data);
    cn_buf_reset(&ga);
    REQUIRE_EQ(store_stats_json(a, &ga), CN_OK);
    struct cn_buf gb = {0};
    REQUIRE_EQ(store_stats_json(b, &gb), CN_OK);
    CHECK_STR(ga.data, gb.data);
    /* history survives: a watch from the oldest kept index answers at once
     * from both */
    uint64_t since = store_index(a) - 10;
    struct store_delivery da, db;
    REQUIRE_EQ(store_watch(a, cn_slice_from_cstr("/"), 1, 0, since, &w, &wr),
               CN_OK);
    REQUIRE_EQ(store_watch(b, cn_slice_from_cstr("/"), 1, 0, since, &w, &wr),
               CN_OK);
    REQUIRE(store_next_delivery(a, &da));
    REQUIRE(store_next_delivery(b, &db));
    CHECK_STR(da.event->json, db.event->json);
    store_event_unref(da.event);
    store_event_unref(db.event);
    /* both go on identically */
    feed(a, 43, 500, 0);
    feed(b, 43, 500, 0);
    snap(a, &sa);
    snap(b, &sb);
    CHECK(sa.len == sb.len && memcmp(sa.data, sb.data, sa.len) == 0);
    cn_buf_close(&sa);
    cn_buf_close(&sb);
    cn_buf_close(&ga);
    cn_buf_close(&gb);
    store_result_close(&wr);
    store_free(a);
    st_done(b);
}

TEST(store_snapshot_load_rejects_bad_bytes_and_keeps_state)
{
    struct store *a = st_new();
    feed(a, 5, 400, 0);
    struct cn_buf sa = {0}, before = {0}, after = {0};
    snap(a, &sa);
    struct store *b = st_new();
    feed(b, 6, 100, 0);
    snap(b, &before);
    char *bad = cn_malloc(sa.len);
    REQUIRE(bad != NULL);
    for (size_t i = 0; i < sa.len; i++) {
        memcpy(bad, sa.data, sa.len);
        bad[i] ^= (char)(1 + (i % 255));
        int rc = store_snapshot_load(b, bad, sa.len);
        CHECK(rc == CN_ECORRUPT || rc == CN_EVERSION);
        if (i == 4)
            CHECK_EQ(rc, CN_EVERSION);
    }
    for (size_t n = 0; n < sa.len; n += 1 + n / 16)
        CHECK_EQ(store_snapshot_load(b, sa.data, n), CN_ECORRUPT);
    snap(b, &after);
    CHECK(before.len == after.len &&
          memcmp(before.data, after.data, before.len) == 0);
    cn_free(bad);
    cn_buf_close(&sa);
    cn_buf_close(&before);
    cn_buf_close(&after);
    store_free(a);
    st_done(b);
}

static void put_crc(char *p, size_t len)
{
    uint32_t crc = cn_crc32c(0, p, len - 4);
    p[len - 4] = (char)crc;
    p[len - 3] = (char)(crc >> 8);
    p[len - 2] = (char)(crc >> 16);
    p[len - 1] = (char)(crc >> 24);
}

TEST(store_snapshot_load_validates_content_under_good_crc)
{
    struct store *a = st_new();
    feed(a, 11, 120, 0);
    struct cn_buf sa = {0}, re = {0};
    snap(a, &sa);
    char *bad = cn_malloc(sa.len);
    REQUIRE(bad != NULL);
    struct cn_prng p;
    cn_prng_seed(&p, 3);
    int loaded = 0, tried = 0;
    struct store *b = st_new();
    size_t step = sa.len / 2000 + 1;
    for (size_t i = 5; i + 4 < sa.len; i += step) {
        memcpy(bad, sa.data, sa.len);
        bad[i] = (char)cn_prng_next(&p);
        put_crc(bad, sa.len);
        int rc = store_snapshot_load(b, bad, sa.len);
        tried++;
        CHECK(rc == CN_OK || rc == CN_ECORRUPT);
        if (rc == CN_OK) {
            /* whatever was accepted is a consistent store */
            loaded++;
            cn_buf_reset(&re);
            REQUIRE_EQ(store_snapshot_save(b, &re), CN_OK);
            struct store *c = st_new();
            CHECK_EQ(store_snapshot_load(c, re.data, re.len), CN_OK);
            feed(b, i, 20, 0);
            store_free(c);
            store_free(b);
            b = st_new();
        }
    }
    tap_diag("%d mutated snapshots, %d accepted", tried, loaded);
    CHECK(loaded > 0);
    store_free(b);
    cn_free(bad);
    cn_buf_close(&sa);
    cn_buf_close(&re);
    store_free(a);
}

/* ---- allocation-failure loops ------------------------------------------ */

/* Builds a store with content and watchers that the command under test
 * touches: a dir of 8 children (the 9th needs a hash table), TTL keys, a
 * subtree with watchers inside, stream and one-shot watchers. */
static struct store *fault_setup(void)
{
    struct store *s = st_new();
    char k[32];
    for (int i = 0; i < 8; i++) {
        snprintf(k, sizeof(k), "/big/%d", i);
        REQUIRE_EQ(st_run(s, st_put(k, "v")), CN_OK);
    }
    REQUIRE_EQ(st_run(s, st_put("/a", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/t/x/y", "1")), CN_OK);
    struct store_cmd c = st_put("/ttl1", "1");
    c.expire_ns = T0 + SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    c = st_put("/t/x/z", "2");
    c.expire_ns = T0 + 2 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    c = st_cmd(STORE_CMD_PUT, "/t");
    c.dir = 1;
    c.prev_exist = 1;
    c.expire_ns = T0 + 3 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    uint64_t id;
    struct store_result r = {0};
    const char *wpaths[] = {"/", "/t/x/y", "/t", "/big/9", "/a", "/new/k"};
    for (int i = 0; i < 6; i++) {
        REQUIRE_EQ(store_watch(s, cn_slice_from_cstr(wpaths[i]), i % 2 == 0,
                               i < 3, 0, &id, &r),
                   CN_OK);
    }
    store_result_close(&r);
    return s;
}

static void fault_loop(const char *what, struct store_cmd c)
{
    struct store *s = fault_setup();
    struct cn_buf before = {0}, after = {0};
    snap(s, &before);
    uint64_t watchers = store_watcher_count(s);
    int done = 0;
    long n;
    for (n = 1; n < 10000 && !done; n++) {
        struct store_result r = {0};
        cn_mem_fault_arm(n, 1);
        int rc = store_apply(s, &c, &r);
        long failed = cn_mem_fault_disarm();
        if (failed == 0) {
            CHECK_EQ(rc, CN_OK);
            done = 1;
        } else {
            if (rc != CN_ENOMEM)
                tap_diag("%s: step %ld gave %d", what, n, rc);
            CHECK_EQ(rc, CN_ENOMEM);
            snap(s, &after);
            CHECK(before.len == after.len &&
                  memcmp(before.data, after.data, before.len) == 0);
            CHECK_EQ(store_watcher_count(s), watchers);
            struct store_delivery d;
            CHECK(!store_next_delivery(s, &d));
        }
        store_result_close(&r);
    }
    CHECK(done);
    tap_diag("%s: %ld allocation steps", what, n - 2);
    CHECK(n > 2);
    struct store_delivery d;
    while (store_next_delivery(s, &d))
        store_event_unref(d.event);
    cn_buf_close(&before);
    cn_buf_close(&after);
    st_done(s);
}

TEST(store_fault_loop_every_write_leaves_store_unchanged)
{
    fault_loop("set new deep", st_put("/new/k/deep", "v"));
    fault_loop("set 9th child", st_put("/big/9", "v"));
    struct store_cmd c = st_put("/a", "2");
    c.expire_ns = T0 + 5 * SEC;
    fault_loop("set replace ttl", c);
    c = st_put("/a", "3");
    c.prev_exist = 1;
    c.expire_ns = T0 + 5 * SEC;
    fault_loop("update ttl", c);
    c = st_put("/a", "3");
    c.prev_value = cn_slice_from_cstr("1");
    fault_loop("cas", c);
    c = st_put("/a", "3");
    c.prev_value = cn_slice_from_cstr("nope");
    fault_loop("cas fail", c);
    c = st_put("/a", "3");
    c.prev_exist = 0;
    fault_loop("create exists", c);
    c = st_cmd(STORE_CMD_POST, "/queue");
    c.value = cn_slice_from_cstr("job");
    fault_loop("post", c);
    c = st_cmd(STORE_CMD_DELETE, "/t");
    c.recursive = 1;
    fault_loop("delete dir", c);
    c = st_cmd(STORE_CMD_DELETE, "/a");
    c.prev_value = cn_slice_from_cstr("1");
    fault_loop("cad", c);
    c = st_cmd(STORE_CMD_PUT, "/ttl1");
    c.refresh = 1;
    c.expire_ns = T0 + 9 * SEC;
    fault_loop("refresh", c);
    c = st_cmd(STORE_CMD_SYNC, "");
    c.now_ns = T0 + 5 * SEC;
    fault_loop("sync", c);
    fault_loop("get missing error", st_put("/a/b", "x"));
}

TEST(store_fault_loop_watch_get_and_load)
{
    struct store *s = fault_setup();
    struct cn_buf before = {0}, after = {0};
    snap(s, &before);
    uint64_t watchers = store_watcher_count(s);
    /* watch: stream from history, then a new path */
    for (int which = 0; which < 3; which++) {
        int done = 0;
        for (long n = 1; n < 1000 && !done; n++) {
            struct store_result r = {0};
            uint64_t id = 0;
            cn_mem_fault_arm(n, 1);
            int rc = which == 0 ? store_watch(s, cn_slice_from_cstr("/"), 1, 1,
                                              1, &id, &r)
                     : which == 1
                         ? store_watch(s, cn_slice_from_cstr("/brand/new"), 0,
                                       0, 0, &id, &r)
                         : store_get(s, cn_slice_from_cstr("/"), 1, 1, T0, &r);
            long failed = cn_mem_fault_disarm();
            if (failed == 0) {
                CHECK_EQ(rc, CN_OK);
                done = 1;
            } else {
                CHECK_EQ(rc, CN_ENOMEM);
                CHECK_EQ(store_watcher_count(s), watchers);
                struct store_delivery d;
                CHECK(!store_next_delivery(s, &d));
                snap(s, &after);
                CHECK(before.len == after.len &&
                      memcmp(before.data, after.data, before.len) == 0);
            }
            store_result_close(&r);
        }
        CHECK(done);
        if (which < 2) {
            CHECK_EQ(store_watcher_count(s), watchers + 1);
            watchers++;
        }
        struct store_delivery d;
        while (store_next_delivery(s, &d))
            store_event_unref(d.event);
        snap(s, &before); /* get stats moved on */
    }
    /* snapshot load */
    struct store *src = st_new();
    feed(src, 77, 300, 0);
    struct cn_buf img = {0};
    snap(src, &img);
    int done = 0;
    for (long n = 1; n < 100000 && !done; n++) {
        cn_mem_fault_arm(n, 1);
        int rc = store_snapshot_load(s, img.data, img.len);
        long failed = cn_mem_fault_disarm();
        if (failed == 0) {
            CHECK_EQ(rc, CN_OK);
            done = 1;
        } else {
            CHECK_EQ(rc, CN_ENOMEM);
            snap(s, &after);
            CHECK(before.len == after.len &&
                  memcmp(before.data, after.data, before.len) == 0);
        }
    }
    CHECK(done);
    snap(s, &after);
    CHECK(img.len == after.len && memcmp(img.data, after.data, img.len) == 0);
    cn_buf_close(&img);
    store_free(src);
    cn_buf_close(&before);
    cn_buf_close(&after);
    st_done(s);
}
