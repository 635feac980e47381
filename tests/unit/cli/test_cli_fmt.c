/* Unit tests for src/cli/cli_fmt.c and cli_json.c: etcdctl's output
 * formats, Go's JSON string and time encoding, URL escaping, service
 * values. Expected strings were taken from etcdctl 3.4.23 runs. */
#include "cli/cli_int.h"
#include "tap.h"

#include <string.h>

static void parse(const char *json, struct cli_resp *r)
{
    REQUIRE_EQ(cli_json_parse_resp(json, strlen(json), r), CN_OK);
}

TEST(cli_fmt_simple_extended_json_of_get)
{
    struct cli_resp r;
    parse("{\"action\":\"get\",\"node\":{\"key\":\"/a\",\"value\":\"1\","
          "\"modifiedIndex\":4,\"createdIndex\":4}}",
          &r);
    r.index = 4;
    struct cn_buf out = {0}, err = {0};
    REQUIRE_EQ(cli_fmt_resp(&out, &err, &r, "simple"), CN_OK);
    CHECK_STR(out.data, "1\n");
    cn_buf_reset(&out);
    cli_fmt_resp(&out, &err, &r, "extended");
    CHECK_STR(out.data, "Key: /a\nCreated-Index: 4\nModified-Index: 4\n"
                        "TTL: 0\nIndex: 4\n\n1\n");
    cn_buf_reset(&out);
    cli_fmt_resp(&out, &err, &r, "json");
    CHECK_STR(out.data, "{\"action\":\"get\",\"node\":{\"key\":\"/a\","
                        "\"value\":\"1\",\"nodes\":null,\"createdIndex\":4,"
                        "\"modifiedIndex\":4},\"prevNode\":null}\n");
    CHECK_EQ(err.len, 0);
    cn_buf_reset(&out);
    cli_fmt_resp(&out, &err, &r, "xml");
    CHECK_EQ(out.len, 0);
    CHECK_STR(err.data, "Unsupported output format: xml\n");
    cli_resp_close(&r);
    cn_buf_close(&out);
    cn_buf_close(&err);
}

TEST(cli_fmt_delete_prints_prev_value_and_ttl_fields)
{
    struct cli_resp r;
    parse("{\"action\":\"delete\",\"node\":{\"key\":\"/k\",\"modifiedIndex\":"
          "15,\"createdIndex\":14},\"prevNode\":{\"key\":\"/k\",\"value\":"
          "\"v\",\"expiration\":\"2026-11-26T05:13:37.147726420Z\",\"ttl\":5,"
          "\"modifiedIndex\":14,\"createdIndex\":14}}",
          &r);
    r.index = 15;
    struct cn_buf out = {0}, err = {0};
    cli_fmt_resp(&out, &err, &r, "simple");
    CHECK_STR(out.data, "PrevNode.Value: v\n");
    cn_buf_reset(&out);
    cli_fmt_resp(&out, &err, &r, "extended");
    CHECK_STR(out.data, "Key: /k\nCreated-Index: 14\nModified-Index: 15\n"
                        "PrevNode.Value: v\nTTL: 0\nIndex: 15\n");
    cn_buf_reset(&out);
    cli_fmt_resp(&out, &err, &r, "json");
    CHECK_STR(out.data,
              "{\"action\":\"delete\",\"node\":{\"key\":\"/k\",\"value\":\"\","
              "\"nodes\":null,\"createdIndex\":14,\"modifiedIndex\":15},"
              "\"prevNode\":{\"key\":\"/k\",\"value\":\"v\",\"nodes\":null,"
              "\"createdIndex\":14,\"modifiedIndex\":14,\"expiration\":"
              "\"2026-11-26T05:13:37.14772642Z\",\"ttl\":5}}\n");
    cli_resp_close(&r);
    cn_buf_close(&out);
    cn_buf_close(&err);
}

TEST(cli_fmt_ls_recursive_with_dir_slash)
{
    struct cli_resp r;
    parse("{\"action\":\"get\",\"node\":{\"dir\":true,\"nodes\":[{\"key\":"
          "\"/q\",\"dir\":true,\"nodes\":[{\"key\":\"/q/x\",\"value\":\"1\"}]},"
          "{\"key\":\"/e\",\"dir\":true,\"nodes\":[]},{\"key\":\"/f\","
          "\"value\":\"\"}]}}",
          &r);
    struct cn_buf out = {0};
    cli_fmt_ls(&out, &r, 1);
    CHECK_STR(out.data, "/q/\n/q/x\n/e/\n/f\n");
    cn_buf_reset(&out);
    cli_fmt_ls(&out, &r, 0);
    CHECK_STR(out.data, "/q\n/q/x\n/e\n/f\n");
    cn_buf_reset(&out);
    cli_fmt_json_resp(&out, &r);
    CHECK(strstr(out.data, "\"key\":\"\",\"dir\":true") != NULL);
    CHECK(strstr(out.data, "{\"key\":\"/e\",\"dir\":true,\"value\":\"\","
                           "\"nodes\":[],") != NULL);
    cli_resp_close(&r);
    /* ls of a file prints its key. */
    parse("{\"action\":\"get\",\"node\":{\"key\":\"/f\",\"value\":\"x\"}}", &r);
    cn_buf_reset(&out);
    cli_fmt_ls(&out, &r, 1);
    CHECK_STR(out.data, "/f\n");
    cli_resp_close(&r);
    cn_buf_close(&out);
}

TEST(cli_fmt_go_string_escapes_like_encoding_json)
{
    struct cn_buf out = {0};
    const char in[] = "<a>&\"\n\t\\\x01\x7f\xe2\x80\xa8\xff\xc3\xa9";
    cli_fmt_go_string(&out, in, sizeof(in) - 1);
    CHECK_STR(out.data, "\"\\u003ca\\u003e\\u0026\\\"\\n\\t\\\\\\u0001\x7f"
                        "\\u2028\\ufffd\xc3\xa9\"");
    cn_buf_close(&out);
}

TEST(cli_fmt_go_time_trims_fraction)
{
    struct cn_buf out = {0};
    cli_fmt_go_time(&out, "2026-11-26T05:15:00.608931160Z");
    CHECK_STR(out.data, "2026-11-26T05:15:00.60893116Z");
    cn_buf_reset(&out);
    cli_fmt_go_time(&out, "2026-11-26T05:15:00.000000000+00:00");
    CHECK_STR(out.data, "2026-11-26T05:15:00Z");
    cn_buf_reset(&out);
    cli_fmt_go_time(&out, "2026-11-26T05:15:00.5+02:00");
    CHECK_STR(out.data, "2026-11-26T05:15:00.5+02:00");
    cn_buf_close(&out);
}

TEST(cli_fmt_error_line)
{
    struct cli_etcd_error e;
    const char *j = "{\"errorCode\":100,\"message\":\"Key not found\","
                    "\"cause\":\"/foo\",\"index\":12}";
    REQUIRE_EQ(cli_json_parse_error(j, strlen(j), &e), CN_OK);
    struct cn_buf out = {0};
    cli_fmt_etcd_error(&out, &e);
    CHECK_STR(out.data, "Error:  100: Key not found (/foo) [12]\n");
    cli_etcd_error_close(&e);
    cn_buf_close(&out);
    CHECK_EQ(cli_json_parse_error("nope", 4, &e), CN_EPROTO);
    cli_etcd_error_close(&e);
}

TEST(cli_fmt_escaping_and_clean_path)
{
    struct cn_buf b = {0};
    cli_fmt_escape_path(&b, "/sp ace/a?b#c%/x:y@z");
    CHECK_STR(b.data, "/sp%20ace/a%3Fb%23c%25/x:y@z");
    cn_buf_reset(&b);
    cli_fmt_escape_query(&b, "a b&c=d/é");
    CHECK_STR(b.data, "a+b%26c%3Dd%2F%C3%A9");
    const char *cases[][2] = {
        {"/v2/keys//a/./b/../c", "/v2/keys/a/c"},
        {"/v2/keys/a/", "/v2/keys/a/"},
        {"/v2/keys/../../x", "/x"},
        {"", "/"},
        {"v2/keys", "/v2/keys"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cn_buf_reset(&b);
        cli_fmt_clean_path(&b, cases[i][0]);
        CHECK_STR(b.data, cases[i][1]);
    }
    cn_buf_close(&b);
}

TEST(cli_json_service_value_round_trip)
{
    struct cn_buf b = {0};
    REQUIRE_EQ(
        cli_json_service_encode(&b, "10.0.0.1:80", 0, "2026-01-02T03:04:05Z"),
        CN_OK);
    CHECK_STR(b.data, "{\"addr\":\"10.0.0.1:80\",\"healthy\":false,"
                      "\"updated\":\"2026-01-02T03:04:05Z\"}");
    struct cli_service_value v;
    REQUIRE_EQ(cli_json_service_decode(b.data, b.len, &v), CN_OK);
    CHECK_STR(v.addr, "10.0.0.1:80");
    CHECK_EQ(v.healthy, 0);
    CHECK_STR(v.updated, "2026-01-02T03:04:05Z");
    cli_service_value_close(&v);
    CHECK_EQ(cli_json_service_decode("10.0.0.1:80", 11, &v), CN_EPROTO);
    cli_service_value_close(&v);
    CHECK_EQ(cli_json_service_decode("{\"healthy\":1}", 13, &v), CN_EPROTO);
    cli_service_value_close(&v);
    cn_buf_close(&b);
}

TEST(cli_json_members_and_health)
{
    const char *j = "{\"members\":[{\"id\":\"c6e3\",\"name\":\"n1\","
                    "\"peerURLs\":[\"http://a:2\"],\"clientURLs\":[\"http://a:"
                    "1\",\"http://b:1\"]},{\"id\":\"77\",\"name\":\"\","
                    "\"peerURLs\":[\"http://c:2\"]}]}";
    struct cli_member *ms;
    size_t n;
    REQUIRE_EQ(cli_json_parse_members(j, strlen(j), &ms, &n), CN_OK);
    REQUIRE_EQ(n, 2);
    CHECK_STR(ms[0].id, "c6e3");
    CHECK_EQ(ms[0].client_count, 2);
    CHECK_STR(ms[0].client_urls[1], "http://b:1");
    CHECK_STR(ms[1].name, "");
    CHECK_EQ(ms[1].client_count, 0);
    cli_members_free(ms, n);
    int h = -1;
    CHECK_EQ(cli_json_parse_health("{\"health\":\"true\"}", 17, &h), CN_OK);
    CHECK_EQ(h, 1);
    CHECK_EQ(cli_json_parse_health("{\"health\":false}", 16, &h), CN_OK);
    CHECK_EQ(h, 0);
    CHECK_EQ(cli_json_parse_health("{}", 2, &h), CN_EPROTO);
    struct cn_buf b = {0};
    char *urls[] = {"http://a:1", "http://b:2"};
    cli_json_peer_urls(&b, urls, 2);
    CHECK_STR(b.data, "{\"peerURLs\":[\"http://a:1\",\"http://b:2\"]}");
    cn_buf_close(&b);
}

TEST(cli_json_rejects_non_key_answers)
{
    struct cli_resp r;
    CHECK_EQ(cli_json_parse_resp("{\"action\":\"get\"}", 16, &r), CN_EPROTO);
    cli_resp_close(&r);
    CHECK_EQ(cli_json_parse_resp("[1]", 3, &r), CN_EPROTO);
    cli_resp_close(&r);
    const char *badidx = "{\"action\":\"get\",\"node\":{\"key\":\"/a\","
                         "\"modifiedIndex\":\"x\"}}";
    CHECK_EQ(cli_json_parse_resp(badidx, strlen(badidx), &r), CN_EPROTO);
    cli_resp_close(&r);
}
