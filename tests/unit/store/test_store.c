/*
 * Unit tests for src/store/store.c: every action, every tree error with
 * etcd's cause and status, TTLs and SYNC expiry, refresh, in-order keys,
 * hidden keys and statistics. Expected JSON was taken from etcd 3.4.23
 * answering the same requests (keys written without the /v2/keys prefix).
 */
#include "store_test.h"

TEST(store_get_root_of_empty_store_has_no_key_nor_indexes)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_get(s, "/", 0, 0, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"dir\":true}}");
    CHECK_EQ(st_res.status, 200);
    CHECK_EQ(st_res.index, 0);
    st_done(s);
}

TEST(store_set_creates_key_with_201)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/a", "1")), CN_OK);
    CHECK_EQ(st_res.ecode, 0);
    CHECK_EQ(st_res.status, 201);
    CHECK_EQ(st_res.action, STORE_ACT_SET);
    CHECK_EQ(st_res.index, 1);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"1\","
               "\"modifiedIndex\":1,\"createdIndex\":1}}");
    REQUIRE(st_res.event != NULL);
    CHECK_EQ(st_res.event->index, 1);
    CHECK_STR(st_res.event->json, st_body());
    CHECK_EQ(store_index(s), 1);
    CHECK_EQ(store_key_count(s), 1);
    st_done(s);
}

TEST(store_set_existing_key_gives_fresh_created_index_and_prev_node)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/a", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/a", "2")), CN_OK);
    CHECK_EQ(st_res.status, 200);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"2\","
               "\"modifiedIndex\":2,\"createdIndex\":2},\"prevNode\":{\"key\":"
               "\"/a\",\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}"
               "}");
    CHECK_EQ(store_key_count(s), 1);
    st_done(s);
}

TEST(store_set_creates_parent_dirs_with_the_same_index)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/td/a/b", "1")), CN_OK);
    CHECK_EQ(store_key_count(s), 3);
    REQUIRE_EQ(st_get(s, "/td", 1, 0, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/td\",\"dir\":true,"
               "\"nodes\":[{\"key\":\"/td/a\",\"dir\":true,\"nodes\":[{\"key\":"
               "\"/td/a/b\",\"value\":\"1\",\"modifiedIndex\":1,"
               "\"createdIndex\":1}],\"modifiedIndex\":1,\"createdIndex\":1}],"
               "\"modifiedIndex\":1,\"createdIndex\":1}}");
    REQUIRE_EQ(st_get(s, "/td", 0, 0, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/td\",\"dir\":true,"
               "\"nodes\":[{\"key\":\"/td/a\",\"dir\":true,\"modifiedIndex\":1,"
               "\"createdIndex\":1}],\"modifiedIndex\":1,\"createdIndex\":1}}");
    st_done(s);
}

TEST(store_set_dir_replaces_file)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/a", "2")), CN_OK);
    struct store_cmd c = st_cmd(STORE_CMD_PUT, "/a");
    c.dir = 1;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.status, 200);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"dir\":true,"
               "\"modifiedIndex\":2,\"createdIndex\":2},\"prevNode\":{\"key\":"
               "\"/a\",\"value\":\"2\",\"modifiedIndex\":1,\"createdIndex\":1}"
               "}");
    st_done(s);
}

TEST(store_set_fails_on_existing_dir_with_102)
{
    struct store *s = st_new();
    struct store_cmd c = st_cmd(STORE_CMD_PUT, "/d");
    c.dir = 1;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.status, 201);
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 102);
    CHECK_EQ(st_res.status, 403);
    CHECK_BODY("{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":"
               "\"/d\",\"index\":1}");
    REQUIRE_EQ(st_run(s, st_put("/d", "v")), CN_OK);
    CHECK_EQ(st_res.ecode, 102);
    CHECK(st_res.event == NULL);
    CHECK_EQ(store_index(s), 1);
    st_done(s);
}

TEST(store_set_under_file_fails_with_104_naming_the_file)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/f", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/f/g/h", "1")), CN_OK);
    CHECK_EQ(st_res.ecode, 104);
    CHECK_EQ(st_res.status, 400);
    CHECK_BODY("{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":"
               "\"/f\",\"index\":1}");
    REQUIRE_EQ(st_get(s, "/f/g/h", 0, 0, T0), CN_OK);
    CHECK_BODY("{\"errorCode\":104,\"message\":\"Not a directory\",\"cause\":"
               "\"/f\",\"index\":1}");
    struct store_cmd c = st_cmd(STORE_CMD_POST, "/f");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 104);
    st_done(s);
}

TEST(store_get_missing_key_names_first_missing_segment)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_get(s, "/nope/deeper/x", 0, 0, T0), CN_OK);
    CHECK_EQ(st_res.ecode, 100);
    CHECK_EQ(st_res.status, 404);
    CHECK_BODY("{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
               "\"/nope\",\"index\":0}");
    st_done(s);
}

TEST(store_create_fails_on_existing_key_with_105)
{
    struct store *s = st_new();
    struct store_cmd c = st_put("/a", "1");
    c.prev_exist = 0;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.status, 201);
    CHECK_EQ(st_res.action, STORE_ACT_CREATE);
    CHECK_BODY("{\"action\":\"create\",\"node\":{\"key\":\"/a\",\"value\":"
               "\"1\",\"modifiedIndex\":1,\"createdIndex\":1}}");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 105);
    CHECK_EQ(st_res.status, 412);
    CHECK_BODY("{\"errorCode\":105,\"message\":\"Key already exists\","
               "\"cause\":\"/a\",\"index\":1}");
    st_done(s);
}

TEST(store_update_keeps_created_index)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/a", "1")), CN_OK);
    struct store_cmd c = st_put("/a", "2");
    c.prev_exist = 1;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.status, 200);
    CHECK_EQ(st_res.action, STORE_ACT_UPDATE);
    CHECK_BODY("{\"action\":\"update\",\"node\":{\"key\":\"/a\",\"value\":"
               "\"2\",\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{"
               "\"key\":\"/a\",\"value\":\"1\",\"modifiedIndex\":1,"
               "\"createdIndex\":1}}");
    c.path = cn_slice_from_cstr("/missing");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 100);
    st_done(s);
}

TEST(store_update_dir_ttl_keeps_stored_modified_index)
{
    struct store *s = st_new();
    struct store_cmd c = st_cmd(STORE_CMD_PUT, "/d");
    c.dir = 1;
    c.expire_ns = T0 + 100 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/d\",\"dir\":true,"
               "\"expiration\":\"2026-01-01T00:01:40Z\",\"ttl\":100,"
               "\"modifiedIndex\":1,\"createdIndex\":1}}");
    c.prev_exist = 1;
    c.expire_ns = T0 + 200 * SEC + 400235793;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_BODY("{\"action\":\"update\",\"node\":{\"key\":\"/d\",\"dir\":true,"
               "\"expiration\":\"2026-01-01T00:03:20.400235793Z\",\"ttl\":201,"
               "\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":"
               "\"/d\",\"dir\":true,\"expiration\":\"2026-01-01T00:01:40Z\","
               "\"ttl\":100,\"modifiedIndex\":1,\"createdIndex\":1}}");
    /* etcd's node.Write refuses directories: the stored index stays 1 */
    REQUIRE_EQ(st_get(s, "/d", 0, 0, T0 + SEC), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,"
               "\"expiration\":\"2026-01-01T00:03:20.400235793Z\",\"ttl\":200,"
               "\"modifiedIndex\":1,\"createdIndex\":1}}");
    /* a value onto a dir via update: 102 */
    c.value = cn_slice_from_cstr("x");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 102);
    /* clearing the TTL */
    c.value = cn_slice_from_cstr("");
    c.expire_ns = 0;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(store_next_expiry_ns(s), 0);
    st_done(s);
}

TEST(store_cas_fails_on_value_mismatch)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/f", "1")), CN_OK);
    struct store_cmd c = st_put("/f", "2");
    c.prev_value = cn_slice_from_cstr("zz");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 101);
    CHECK_EQ(st_res.status, 412);
    CHECK_BODY("{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
               "\"[zz != 1]\",\"index\":1}");
    c.prev_index = 7;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_BODY("{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
               "\"[zz != 1] [7 != 1]\",\"index\":1}");
    c.prev_value = cn_slice_from_cstr("");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_BODY("{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
               "\"[7 != 1]\",\"index\":1}");
    CHECK_EQ(store_index(s), 1);
    st_done(s);
}

TEST(store_cas_succeeds_and_keeps_created_index)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/f", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/f", "2")), CN_OK);
    struct store_cmd c = st_put("/f", "3");
    c.prev_value = cn_slice_from_cstr("2");
    c.prev_index = 2;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.action, STORE_ACT_CAS);
    CHECK_EQ(st_res.status, 200);
    CHECK_BODY("{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/f\","
               "\"value\":\"3\",\"modifiedIndex\":3,\"createdIndex\":2},"
               "\"prevNode\":{\"key\":\"/f\",\"value\":\"2\",\"modifiedIndex\":"
               "2,\"createdIndex\":2}}");
    /* prevExist=true with a condition is a CAS too */
    c.prev_exist = 1;
    c.prev_value = cn_slice_from_cstr("3");
    c.prev_index = 0;
    c.value = cn_slice_from_cstr("4");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.action, STORE_ACT_CAS);
    /* CAS on a dir: 102 */
    struct store_cmd d = st_cmd(STORE_CMD_PUT, "/dir");
    d.dir = 1;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    c.path = cn_slice_from_cstr("/dir");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 102);
    CHECK_BODY("{\"errorCode\":102,\"message\":\"Not a file\",\"cause\":"
               "\"/dir\",\"index\":5}");
    st_done(s);
}

TEST(store_root_is_read_only_with_107)
{
    struct store *s = st_new();
    struct store_cmd c = st_put("/", "x");
    REQUIRE_EQ(st_run(s, c), CN_OK); /* set */
    CHECK_EQ(st_res.ecode, 107);
    CHECK_EQ(st_res.status, 400);
    CHECK_BODY("{\"errorCode\":107,\"message\":\"Root is read only\","
               "\"cause\":\"/\",\"index\":0}");
    c.prev_exist = 1; /* update */
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 107);
    c.prev_exist = 0; /* create */
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 107);
    c.prev_exist = -1;
    c.prev_value = cn_slice_from_cstr("x"); /* cas */
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 107);
    struct store_cmd d = st_cmd(STORE_CMD_DELETE, "/");
    d.recursive = 1;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 107);
    /* compareAndDelete has no read-only check in etcd: 102 without cause */
    d.prev_value = cn_slice_from_cstr("x");
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 102);
    CHECK_BODY("{\"errorCode\":102,\"message\":\"Not a file\",\"index\":0}");
    CHECK_EQ(store_index(s), 0);
    st_done(s);
}

TEST(store_delete_file_and_dir_rules)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/w", "1")), CN_OK);
    struct store_cmd d = st_cmd(STORE_CMD_DELETE, "/w");
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.action, STORE_ACT_DELETE);
    CHECK_BODY("{\"action\":\"delete\",\"node\":{\"key\":\"/w\","
               "\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":"
               "\"/w\",\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}"
               "}");
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 100);
    REQUIRE_EQ(st_run(s, st_put("/dd/x/y", "1")), CN_OK);
    d.path = cn_slice_from_cstr("/dd");
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 102);
    CHECK_EQ(st_res.status, 403);
    d.dir = 1;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 108);
    CHECK_EQ(st_res.status, 403);
    CHECK_BODY("{\"errorCode\":108,\"message\":\"Directory not empty\","
               "\"cause\":\"/dd\",\"index\":3}");
    d.recursive = 1;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_BODY("{\"action\":\"delete\",\"node\":{\"key\":\"/dd\",\"dir\":true,"
               "\"modifiedIndex\":4,\"createdIndex\":3},\"prevNode\":{\"key\":"
               "\"/dd\",\"dir\":true,\"modifiedIndex\":3,\"createdIndex\":3}}");
    CHECK_EQ(store_key_count(s), 0);
    /* dir=true on a file deletes it; empty dir with dir=true */
    REQUIRE_EQ(st_run(s, st_put("/f", "1")), CN_OK);
    d.path = cn_slice_from_cstr("/f");
    d.recursive = 0;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 0);
    st_done(s);
}

TEST(store_cad_checks_value_and_index)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/f", "1")), CN_OK);
    struct store_cmd d = st_cmd(STORE_CMD_DELETE, "/f");
    d.prev_value = cn_slice_from_cstr("zz");
    d.prev_index = 7;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.ecode, 101);
    CHECK_BODY("{\"errorCode\":101,\"message\":\"Compare failed\",\"cause\":"
               "\"[zz != 1] [7 != 1]\",\"index\":1}");
    d.prev_value = cn_slice_from_cstr("1");
    d.prev_index = 1;
    REQUIRE_EQ(st_run(s, d), CN_OK);
    CHECK_EQ(st_res.action, STORE_ACT_CAD);
    CHECK_BODY("{\"action\":\"compareAndDelete\",\"node\":{\"key\":\"/f\","
               "\"modifiedIndex\":2,\"createdIndex\":1},\"prevNode\":{\"key\":"
               "\"/f\",\"value\":\"1\",\"modifiedIndex\":1,\"createdIndex\":1}"
               "}");
    st_done(s);
}

TEST(store_post_creates_in_order_keys_and_parent_dir)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/x", "1")), CN_OK);
    struct store_cmd c = st_cmd(STORE_CMD_POST, "/q");
    c.value = cn_slice_from_cstr("job");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.status, 201);
    CHECK_BODY("{\"action\":\"create\",\"node\":{\"key\":"
               "\"/q/00000000000000000002\",\"value\":\"job\","
               "\"modifiedIndex\":2,\"createdIndex\":2}}");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(strcmp(st_res.event->key, "/q/00000000000000000003"), 0);
    c.path = cn_slice_from_cstr("/");
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(strcmp(st_res.event->key, "/00000000000000000004"), 0);
    REQUIRE_EQ(st_get(s, "/q", 0, 1, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/q\",\"dir\":true,"
               "\"nodes\":[{\"key\":\"/q/00000000000000000002\",\"value\":"
               "\"job\",\"modifiedIndex\":2,\"createdIndex\":2},{\"key\":"
               "\"/q/00000000000000000003\",\"value\":\"job\","
               "\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":2,"
               "\"createdIndex\":2}}");
    st_done(s);
}

TEST(store_hidden_keys_not_listed_but_readable)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/h/_x", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/h/y", "1")), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/h/_d/z", "1")), CN_OK);
    REQUIRE_EQ(st_get(s, "/h", 1, 0, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/h\",\"dir\":true,"
               "\"nodes\":[{\"key\":\"/h/y\",\"value\":\"1\",\"modifiedIndex\":"
               "2,\"createdIndex\":2}],\"modifiedIndex\":1,\"createdIndex\":1}"
               "}");
    REQUIRE_EQ(st_get(s, "/h/_d", 1, 0, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/h/_d\",\"dir\":true,"
               "\"nodes\":[{\"key\":\"/h/_d/z\",\"value\":\"1\","
               "\"modifiedIndex\":3,\"createdIndex\":3}],\"modifiedIndex\":3,"
               "\"createdIndex\":3}}");
    REQUIRE_EQ(st_get(s, "/h/_x", 0, 0, T0), CN_OK);
    CHECK_EQ(st_res.ecode, 0);
    /* a dir holding only hidden children shows no "nodes" */
    REQUIRE_EQ(st_get(s, "/h/_d/z", 0, 0, T0), CN_OK);
    REQUIRE_EQ(st_run(s, st_put("/o/_only", "1")), CN_OK);
    REQUIRE_EQ(st_get(s, "/o", 1, 1, T0), CN_OK);
    CHECK_BODY("{\"action\":\"get\",\"node\":{\"key\":\"/o\",\"dir\":true,"
               "\"modifiedIndex\":4,\"createdIndex\":4}}");
    st_done(s);
}

TEST(store_get_sorted_orders_children_by_key)
{
    struct store *s = st_new();
    const char *names[] = {"/s/b", "/s/a", "/s/c", "/s/ab", "/s/a0"};
    for (int i = 0; i < 5; i++)
        REQUIRE_EQ(st_run(s, st_put(names[i], "v")), CN_OK);
    REQUIRE_EQ(st_get(s, "/s", 0, 1, T0), CN_OK);
    const char *p = st_body();
    const char *order[] = {"\"/s/a\"", "\"/s/a0\"", "\"/s/ab\"", "\"/s/b\"",
                           "\"/s/c\""};
    for (int i = 0; i < 5; i++) {
        const char *q = strstr(p, order[i]);
        REQUIRE(q != NULL);
        p = q + 1;
    }
    /* unsorted: insertion order */
    REQUIRE_EQ(st_get(s, "/s", 0, 0, T0), CN_OK);
    p = st_body();
    for (int i = 0; i < 5; i++) {
        char k[16];
        snprintf(k, sizeof(k), "\"%s\"", names[i]);
        const char *q = strstr(p, k);
        REQUIRE(q != NULL);
        p = q + 1;
    }
    st_done(s);
}

TEST(store_large_dir_lookup_uses_hash_table)
{
    struct store *s = st_new();
    char k[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof(k), "/big/k%d", i);
        REQUIRE_EQ(st_run(s, st_put(k, "v")), CN_OK);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(k, sizeof(k), "/big/k%d", i);
        REQUIRE_EQ(st_get(s, k, 0, 0, T0), CN_OK);
        CHECK_EQ(st_res.ecode, 0);
    }
    for (int i = 0; i < 5000; i += 2) {
        snprintf(k, sizeof(k), "/big/k%d", i);
        REQUIRE_EQ(st_run(s, st_cmd(STORE_CMD_DELETE, k)), CN_OK);
        CHECK_EQ(st_res.ecode, 0);
    }
    CHECK_EQ(store_key_count(s), 2501);
    REQUIRE_EQ(st_get(s, "/big/k2", 0, 0, T0), CN_OK);
    CHECK_EQ(st_res.ecode, 100);
    REQUIRE_EQ(st_get(s, "/big/k3", 0, 0, T0), CN_OK);
    CHECK_EQ(st_res.ecode, 0);
    st_done(s);
}

TEST(store_ttl_shows_expiration_and_ceil_ttl)
{
    struct store *s = st_new();
    struct store_cmd c = st_put("/t", "1");
    c.expire_ns = T0 + 2 * SEC + 724910807;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/t\",\"value\":\"1\","
               "\"expiration\":\"2026-01-01T00:00:02.724910807Z\",\"ttl\":3,"
               "\"modifiedIndex\":1,\"createdIndex\":1}}");
    CHECK_EQ(store_next_expiry_ns(s), T0 + 2 * SEC + 724910807);
    /* ttl rounds up; at or past expiry it is 0 (omitted) or negative */
    REQUIRE_EQ(st_get(s, "/t", 0, 0, T0 + 2 * SEC), CN_OK);
    CHECK(strstr(st_body(), "\"ttl\":1,") != NULL);
    REQUIRE_EQ(st_get(s, "/t", 0, 0, T0 + 3 * SEC), CN_OK);
    CHECK(strstr(st_body(), "\"ttl\"") == NULL);
    REQUIRE_EQ(st_get(s, "/t", 0, 0, T0 + 5 * SEC), CN_OK);
    CHECK(strstr(st_body(), "\"ttl\":-2,") != NULL);
    /* an expiry before 2000 on create is permanent (etcd minExpireTime) */
    c = st_put("/p", "1");
    c.expire_ns = 5;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK(strstr(st_body(), "expiration") == NULL);
    st_done(s);
}

TEST(store_sync_expires_keys_with_their_own_index)
{
    struct store *s = st_new();
    struct store_cmd c = st_put("/t", "1");
    c.expire_ns = T0 + 2 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    c = st_put("/td/a/b", "1");
    c.expire_ns = T0 + 100 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    c = st_cmd(STORE_CMD_PUT, "/td");
    c.dir = 1;
    c.prev_exist = 1;
    c.expire_ns = T0 + 1 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(store_next_expiry_ns(s), T0 + SEC);
    uint64_t w1, w2;
    struct store_result wr = {0};
    REQUIRE_EQ(store_watch(s, cn_slice_from_cstr("/"), 1, 1, 0, &w1, &wr),
               CN_OK);
    REQUIRE_EQ(store_watch(s, cn_slice_from_cstr("/td/a/b"), 0, 0, 0, &w2, &wr),
               CN_OK);
    struct store_cmd sync = st_cmd(STORE_CMD_SYNC, "");
    sync.now_ns = T0 + SEC / 2;
    REQUIRE_EQ(st_run(s, sync), CN_OK);
    CHECK_EQ(store_index(s), 3);
    sync.now_ns = T0 + 2 * SEC;
    REQUIRE_EQ(st_run(s, sync), CN_OK);
    CHECK_EQ(st_res.ecode, 0);
    CHECK_EQ(st_res.body.len, 0);
    CHECK_EQ(store_index(s), 5);
    CHECK_EQ(store_key_count(s), 0);
    CHECK_EQ(store_next_expiry_ns(s), 0);
    struct store_delivery d;
    const char *want_td =
        "{\"action\":\"expire\",\"node\":{\"key\":\"/td\",\"dir\":true,"
        "\"modifiedIndex\":4,\"createdIndex\":2},\"prevNode\":{\"key\":\"/td\","
        "\"dir\":true,\"expiration\":\"2026-01-01T00:00:01Z\","
        "\"modifiedIndex\":2,\"createdIndex\":2}}";
    const char *want_t =
        "{\"action\":\"expire\",\"node\":{\"key\":\"/t\",\"modifiedIndex\":5,"
        "\"createdIndex\":1},\"prevNode\":{\"key\":\"/t\",\"value\":\"1\","
        "\"expiration\":\"2026-01-01T00:00:02Z\",\"modifiedIndex\":1,"
        "\"createdIndex\":1}}";
    /* the exact watcher inside the expired dir is woken first (deleted) */
    REQUIRE(store_next_delivery(s, &d));
    CHECK_EQ(d.watcher_id, w2);
    CHECK_EQ(d.last, 1);
    CHECK_STR(d.event->json, want_td);
    store_event_unref(d.event);
    REQUIRE(store_next_delivery(s, &d));
    CHECK_EQ(d.watcher_id, w1);
    CHECK_STR(d.event->json, want_td);
    store_event_unref(d.event);
    REQUIRE(store_next_delivery(s, &d));
    CHECK_EQ(d.watcher_id, w1);
    CHECK_EQ(d.last, 0);
    CHECK_STR(d.event->json, want_t);
    store_event_unref(d.event);
    CHECK(!store_next_delivery(s, &d));
    struct cn_buf b = {0};
    REQUIRE_EQ(store_stats_json(s, &b), CN_OK);
    CHECK(strstr(b.data, "\"expireCount\":2,") != NULL);
    cn_buf_close(&b);
    store_result_close(&wr);
    st_done(s);
}

TEST(store_refresh_keeps_value_and_resets_ttl)
{
    struct store *s = st_new();
    struct store_cmd c = st_put("/r", "v");
    c.expire_ns = T0 + 10 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    uint64_t w;
    struct store_result wr = {0};
    REQUIRE_EQ(store_watch(s, cn_slice_from_cstr("/r"), 0, 1, 0, &w, &wr),
               CN_OK);
    /* set + refresh: a fresh createdIndex (etcd re-creates the node) */
    c = st_cmd(STORE_CMD_PUT, "/r");
    c.refresh = 1;
    c.expire_ns = T0 + 20 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.status, 200);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/r\",\"value\":\"v\","
               "\"expiration\":\"2026-01-01T00:00:20Z\",\"ttl\":20,"
               "\"modifiedIndex\":2,\"createdIndex\":2},\"prevNode\":{\"key\":"
               "\"/r\",\"value\":\"v\",\"expiration\":\"2026-01-01T00:00:10Z\","
               "\"ttl\":10,\"modifiedIndex\":1,\"createdIndex\":1}}");
    CHECK(st_res.event->refresh);
    CHECK_EQ(store_next_expiry_ns(s), T0 + 20 * SEC);
    /* update + refresh keeps createdIndex */
    c.prev_exist = 1;
    c.expire_ns = T0 + 30 * SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.action, STORE_ACT_UPDATE);
    CHECK(strstr(st_body(), "\"value\":\"v\",\"expiration\":"
                            "\"2026-01-01T00:00:30Z\",\"ttl\":30,"
                            "\"modifiedIndex\":3,\"createdIndex\":2}") != NULL);
    /* refresh of a missing key: 100 */
    c = st_cmd(STORE_CMD_PUT, "/nope");
    c.refresh = 1;
    c.expire_ns = T0 + SEC;
    REQUIRE_EQ(st_run(s, c), CN_OK);
    CHECK_EQ(st_res.ecode, 100);
    /* no watcher woken by refreshes, and history scans skip them */
    struct store_delivery d;
    CHECK(!store_next_delivery(s, &d));
    uint64_t w2;
    REQUIRE_EQ(store_watch(s, cn_slice_from_cstr("/r"), 0, 0, 2, &w2, &wr),
               CN_OK);
    CHECK(!store_next_delivery(s, &d));
    CHECK_EQ(store_index(s), 3);
    store_result_close(&wr);
    st_done(s);
}

TEST(store_stats_count_like_etcd)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/f", "1")), CN_OK);   /* set ok */
    REQUIRE_EQ(st_run(s, st_put("/f/g", "1")), CN_OK); /* set fail */
    struct store_cmd c = st_put("/f/g", "1");
    c.prev_exist = 0;
    REQUIRE_EQ(st_run(s, c), CN_OK); /* create fail + set fail (walk) */
    c = st_put("/", "2");
    c.prev_value = cn_slice_from_cstr("x");
    REQUIRE_EQ(st_run(s, c), CN_OK); /* cas on root: counted as success */
    c = st_put("/f", "2");
    c.prev_value = cn_slice_from_cstr("zz");
    REQUIRE_EQ(st_run(s, c), CN_OK); /* cas fail */
    c = st_cmd(STORE_CMD_DELETE, "/f");
    c.prev_value = cn_slice_from_cstr("zz");
    REQUIRE_EQ(st_run(s, c), CN_OK); /* cad 101: counted as success */
    c = st_cmd(STORE_CMD_DELETE, "/nope");
    c.prev_value = cn_slice_from_cstr("zz");
    REQUIRE_EQ(st_run(s, c), CN_OK); /* cad 100: fail */
    REQUIRE_EQ(st_get(s, "/f", 0, 0, T0), CN_OK);
    REQUIRE_EQ(st_get(s, "/zz", 0, 0, T0), CN_OK);
    struct cn_buf b = {0};
    REQUIRE_EQ(store_stats_json(s, &b), CN_OK);
    CHECK_STR(b.data,
              "{\"getsSuccess\":1,\"getsFail\":1,\"setsSuccess\":1,"
              "\"setsFail\":2,\"deleteSuccess\":0,\"deleteFail\":0,"
              "\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":0,"
              "\"createFail\":1,\"compareAndSwapSuccess\":1,"
              "\"compareAndSwapFail\":1,\"compareAndDeleteSuccess\":1,"
              "\"compareAndDeleteFail\":1,\"expireCount\":0,\"watchers\":0}");
    cn_buf_close(&b);
    st_done(s);
}

TEST(store_apply_rejects_malformed_commands)
{
    struct store *s = st_new();
    const char *bad[] = {"", "a", "/a/", "//a", "/a//b", "/./a", "/a/.."};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        CHECK_EQ(st_run(s, st_put(bad[i], "1")), CN_EINVAL);
        CHECK_EQ(st_get(s, bad[i], 0, 0, T0), CN_EINVAL);
    }
    struct store_cmd c = st_put("/a", "1");
    c.method = 99;
    CHECK_EQ(st_run(s, c), CN_EINVAL);
    CHECK_EQ(store_index(s), 0);
    st_done(s);
}

TEST(store_error_json_matches_etcd_shape)
{
    struct cn_buf b = {0};
    REQUIRE_EQ(store_error_json(&b, 100, "/a\"b", 7), CN_OK);
    CHECK_STR(b.data, "{\"errorCode\":100,\"message\":\"Key not found\","
                      "\"cause\":\"/a\\\"b\",\"index\":7}");
    cn_buf_reset(&b);
    REQUIRE_EQ(store_error_json(&b, 300, NULL, 0), CN_OK);
    CHECK_STR(b.data, "{\"errorCode\":300,\"message\":\"Raft Internal Error\","
                      "\"index\":0}");
    cn_buf_close(&b);
    CHECK_EQ(store_ecode_status(100), 404);
    CHECK_EQ(store_ecode_status(101), 412);
    CHECK_EQ(store_ecode_status(105), 412);
    CHECK_EQ(store_ecode_status(102), 403);
    CHECK_EQ(store_ecode_status(108), 403);
    CHECK_EQ(store_ecode_status(110), 401);
    CHECK_EQ(store_ecode_status(300), 500);
    CHECK_EQ(store_ecode_status(301), 500);
    CHECK_EQ(store_ecode_status(401), 400);
    CHECK_EQ(store_ecode_status(209), 400);
    CHECK_STR(store_ecode_message(401),
              "The event in requested index is outdated and cleared");
    CHECK_STR(store_ecode_message(212), "A TTL must be provided on refresh");
    CHECK_STR(store_action_name(STORE_ACT_CAD), "compareAndDelete");
    CHECK_STR(store_action_name(STORE_ACT_EXPIRE), "expire");
}
