/*
 * Unit tests for etcd-compatible member and cluster IDs and for cn_sha1.
 *
 * The expected IDs were observed on the real etcd 3.4.23 (/usr/bin/etcd
 * --enable-v2) started on 127.0.0.1 with exactly the URLs and tokens
 * below, reading "id" from GET /v2/members and the X-Etcd-Cluster-Id
 * header of GET /v2/keys/:
 *   1 member:  --name solo --initial-advertise-peer-urls
 *              http://127.0.0.1:23801 --initial-cluster-token tok-one
 *   3 members: a, b, c on http://127.0.0.1:23811..23813, token
 *              cairn-test-3 (--initial-cluster a=...,b=...,c=...)
 *   2 URLs:    --name two, peer URLs http://127.0.0.1:23842 and
 *              http://127.0.0.1:23841 (given in that order), default
 *              token etcd-cluster
 */
#include <stdio.h>
#include <string.h>

#include "base/cn_sha1.h"
#include "server/server_member_id.h"
#include "tap.h"

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

TEST(sha1_known_vectors)
{
    uint8_t d[CN_SHA1_BYTES];
    char h[41];
    cn_sha1("", 0, d);
    hex(d, 20, h);
    CHECK_STR(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    cn_sha1("abc", 3, d);
    hex(d, 20, h);
    CHECK_STR(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    cn_sha1(m, strlen(m), d);
    hex(d, 20, h);
    CHECK_STR(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(sha1_incremental_equals_one_shot)
{
    char buf[1000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (char)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(buf); n += 37) {
        uint8_t a[20], b[20];
        cn_sha1(buf, n, a);
        struct cn_sha1 s;
        cn_sha1_init(&s);
        for (size_t off = 0; off < n;) {
            size_t k = (off % 13) + 1;
            if (k > n - off)
                k = n - off;
            cn_sha1_update(&s, buf + off, k);
            off += k;
        }
        cn_sha1_final(&s, b);
        CHECK_MEM(a, b, 20);
    }
    /* one million 'a' */
    struct cn_sha1 s;
    cn_sha1_init(&s);
    memset(buf, 'a', sizeof(buf));
    for (int i = 0; i < 1000; i++)
        cn_sha1_update(&s, buf, 1000);
    uint8_t d[20];
    char h[41];
    cn_sha1_final(&s, d);
    hex(d, 20, h);
    CHECK_STR(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
}

TEST(member_id_matches_etcd_single_member)
{
    const char *u[] = {"http://127.0.0.1:23801"};
    uint64_t id, cid;
    char h[SERVER_ID_HEX_SIZE];
    REQUIRE_EQ(server_member_id_compute(u, 1, "tok-one", &id), CN_OK);
    CHECK_STR(server_id_format(id, h), "cef092b1775c55d");
    REQUIRE_EQ(server_cluster_id_compute(&id, 1, &cid), CN_OK);
    CHECK_STR(server_id_format(cid, h), "161eddbbce01a3e4");
}

TEST(member_id_matches_etcd_three_members)
{
    struct cn_member_spec specs[3];
    memset(specs, 0, sizeof(specs));
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        strcpy(specs[i].name, names[i]);
        char e[CN_ERRMSG_SIZE];
        char url[64];
        snprintf(url, sizeof(url), "http://127.0.0.1:2381%d", i + 1);
        REQUIRE_EQ(config_url_parse(url, &specs[i].url, e), CN_OK);
    }
    uint64_t ids[3], cid;
    size_t n = 0;
    REQUIRE_EQ(
        server_initial_cluster_ids(specs, 3, "cairn-test-3", ids, 3, &n, &cid),
        CN_OK);
    REQUIRE_EQ(n, 3);
    char h[SERVER_ID_HEX_SIZE];
    CHECK_STR(server_id_format(ids[0], h), "f513319deee45c06");
    CHECK_STR(server_id_format(ids[1], h), "7de4bc217a5620f4");
    CHECK_STR(server_id_format(ids[2], h), "cb9de00dcebf8495");
    CHECK_STR(server_id_format(cid, h), "2b5b551310958be9");
    /* order of the list does not matter for the cluster ID */
    uint64_t rev[3] = {ids[2], ids[0], ids[1]}, cid2;
    REQUIRE_EQ(server_cluster_id_compute(rev, 3, &cid2), CN_OK);
    CHECK(cid2 == cid);
    /* a different token gives different IDs */
    uint64_t other[3], cid3;
    REQUIRE_EQ(server_initial_cluster_ids(specs, 3, "etcd-cluster", other, 3,
                                          &n, &cid3),
               CN_OK);
    CHECK(other[0] != ids[0]);
    CHECK(cid3 != cid);
}

TEST(member_id_matches_etcd_two_urls_sorted)
{
    const char *u[] = {"http://127.0.0.1:23842", "http://127.0.0.1:23841"};
    uint64_t id, cid;
    char h[SERVER_ID_HEX_SIZE];
    REQUIRE_EQ(server_member_id_compute(u, 2, "etcd-cluster", &id), CN_OK);
    CHECK_STR(server_id_format(id, h), "3f2cabb896f69f20");
    REQUIRE_EQ(server_cluster_id_compute(&id, 1, &cid), CN_OK);
    CHECK_STR(server_id_format(cid, h), "3e8727beb85db5c0");
    /* the same member through --initial-cluster (name repeated) */
    struct cn_member_spec specs[2];
    memset(specs, 0, sizeof(specs));
    char e[CN_ERRMSG_SIZE];
    strcpy(specs[0].name, "two");
    strcpy(specs[1].name, "two");
    REQUIRE_EQ(config_url_parse(u[0], &specs[0].url, e), CN_OK);
    REQUIRE_EQ(config_url_parse(u[1], &specs[1].url, e), CN_OK);
    uint64_t ids[2], cid2;
    size_t n = 0;
    REQUIRE_EQ(
        server_initial_cluster_ids(specs, 2, "etcd-cluster", ids, 2, &n, &cid2),
        CN_OK);
    CHECK_EQ(n, 1);
    CHECK(ids[0] == id);
    CHECK(cid2 == cid);
}

TEST(member_id_duplicate_member_refused)
{
    struct cn_member_spec specs[2];
    memset(specs, 0, sizeof(specs));
    char e[CN_ERRMSG_SIZE];
    strcpy(specs[0].name, "x");
    strcpy(specs[1].name, "y");
    REQUIRE_EQ(config_url_parse("http://127.0.0.1:1", &specs[0].url, e), CN_OK);
    specs[1].url = specs[0].url;
    uint64_t ids[2], cid;
    size_t n;
    CHECK_EQ(server_initial_cluster_ids(specs, 2, "t", ids, 2, &n, &cid),
             CN_EINVAL);
    CHECK_EQ(server_initial_cluster_ids(specs, 1, "t", ids, 0, &n, &cid),
             CN_EINVAL);
}

TEST(member_id_format_and_parse)
{
    char h[SERVER_ID_HEX_SIZE];
    uint64_t v = 0;
    CHECK_STR(server_id_format(0x0cef092b1775c55dull, h), "cef092b1775c55d");
    CHECK_STR(server_id_format(UINT64_MAX, h), "ffffffffffffffff");
    REQUIRE_EQ(server_id_parse("cef092b1775c55d", &v), CN_OK);
    CHECK(v == 0x0cef092b1775c55dull);
    REQUIRE_EQ(server_id_parse("0CEF092B1775C55D", &v), CN_OK);
    CHECK(v == 0x0cef092b1775c55dull);
    CHECK_EQ(server_id_parse("", &v), CN_EINVAL);
    CHECK_EQ(server_id_parse("12345678901234567", &v), CN_EINVAL);
    CHECK_EQ(server_id_parse("12g", &v), CN_EINVAL);
}
