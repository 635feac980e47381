/*
 * Unit tests for src/store/store_json.c: Go encoding/json string escaping
 * (checked byte for byte against etcd 3.4.23's answers), time.Time's JSON
 * form and the ttl rounding.
 */
#include "store/store_int.h"
#include "store_test.h"

static const char *esc(const char *s, size_t n)
{
    static struct cn_buf b;
    cn_buf_reset(&b);
    if (store_json_str(&b, s, n) != CN_OK)
        return "(nomem)";
    return b.data;
}

#define ESC(lit) esc((lit), sizeof(lit) - 1)

TEST(store_json_escapes_like_go)
{
    CHECK_STR(ESC(""), "\"\"");
    CHECK_STR(ESC("plain /a b~"), "\"plain /a b~\"");
    CHECK_STR(ESC("\"\\"), "\"\\\"\\\\\"");
    CHECK_STR(ESC("\n\r\t"), "\"\\n\\r\\t\"");
    CHECK_STR(ESC("\b\f\x01\x1f"), "\"\\u0008\\u000c\\u0001\\u001f\"");
    CHECK_STR(ESC("\x7f"), "\"\x7f\"");
    CHECK_STR(ESC("<>&"), "\"\\u003c\\u003e\\u0026\"");
    CHECK_STR(ESC("a\0b"), "\"a\\u0000b\"");
    CHECK_STR(ESC("\xe2\x80\xa8\xe2\x80\xa9"), "\"\\u2028\\u2029\"");
    CHECK_STR(ESC("\xc3\xa9\xf0\x9f\x98\x80"), "\"\xc3\xa9\xf0\x9f\x98\x80\"");
    /* invalid UTF-8: one U+FFFD per bad byte, as Go decodes */
    CHECK_STR(ESC("\xff"), "\"\\ufffd\"");
    CHECK_STR(ESC("\xc3\n"), "\"\\ufffd\\n\"");
    CHECK_STR(ESC("\xc0\x80"), "\"\\ufffd\\ufffd\"");            /* overlong */
    CHECK_STR(ESC("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
    CHECK_STR(ESC("\xf4\x90\x80\x80"),
              "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");    /* > U+10FFFF */
    CHECK_STR(ESC("\xe2\x82"), "\"\\ufffd\\ufffd\""); /* truncated */
    CHECK_STR(ESC("\xe0\xa0\x80"), "\"\xe0\xa0\x80\"");
    /* the sequence etcd answered with for a value sent as
     * a %08 b %0C c %7F d " \ < > & U+2028 %FF %C3 \n \r \t %01 e U+1F600 */
    CHECK_STR(ESC("a\bb\fc\x7f"
                  "d\"\\<>&\xe2\x80\xa8\xff\xc3\n\r\t\x01"
                  "e\xf0\x9f\x98\x80"),
              "\"a\\u0008b\\u000cc\x7f"
              "d\\\"\\\\\\u003c\\u003e\\u0026\\u2028\\ufffd\\ufffd\\n\\r\\t"
              "\\u0001e\xf0\x9f\x98\x80\"");
}

/* Every ASCII byte alone and between plain bytes: only the control bytes
 * and " \\ < > & are escaped (the fast path's bit table). */
TEST(store_json_every_ascii_byte)
{
    for (int c = 0; c < 0x80; c++) {
        char in[3] = {'a', (char)c, 'b'};
        const char *out = esc(in, sizeof(in));
        int escaped = c < 0x20 || c == '"' || c == '\\' || c == '<' ||
                      c == '>' || c == '&';
        if (!escaped) {
            char want[6] = {'"', 'a', (char)c, 'b', '"', '\0'};
            CHECK_STR(out, want);
        } else {
            CHECK(out[0] == '"' && out[1] == 'a' && out[2] == '\\');
        }
    }
}

TEST(store_json_keys_and_values_are_escaped_in_answers)
{
    struct store *s = st_new();
    REQUIRE_EQ(st_run(s, st_put("/esc<x\"", "v&")), CN_OK);
    CHECK_BODY("{\"action\":\"set\",\"node\":{\"key\":\"/esc\\u003cx\\\"\","
               "\"value\":\"v\\u0026\",\"modifiedIndex\":1,\"createdIndex\":1}"
               "}");
    REQUIRE_EQ(st_get(s, "/nope<", 0, 0, T0), CN_OK);
    CHECK_BODY("{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":"
               "\"/nope\\u003c\",\"index\":1}");
    st_done(s);
}

static const char *tm(int64_t t)
{
    static struct cn_buf b;
    cn_buf_reset(&b);
    if (store_json_time(&b, t) != CN_OK)
        return "(nomem)";
    return b.data;
}

TEST(store_json_time_is_go_rfc3339nano_utc)
{
    CHECK_STR(tm(T0), "\"2026-01-01T00:00:00Z\"");
    CHECK_STR(tm(T0 + 724910807), "\"2026-01-01T00:00:00.724910807Z\"");
    CHECK_STR(tm(T0 + 754619900), "\"2026-01-01T00:00:00.7546199Z\"");
    CHECK_STR(tm(T0 + 500000000), "\"2026-01-01T00:00:00.5Z\"");
    CHECK_STR(tm(T0 + 1), "\"2026-01-01T00:00:00.000000001Z\"");
    CHECK_STR(tm(0), "\"1970-01-01T00:00:00Z\"");
    CHECK_STR(tm(-1), "\"1969-12-31T23:59:59.999999999Z\"");
    /* 2024-02-29T12:34:56Z: a leap day */
    CHECK_STR(tm(1709210096LL * SEC), "\"2024-02-29T12:34:56Z\"");
    CHECK_STR(tm(4102444799LL * SEC), "\"2099-12-31T23:59:59Z\"");
    CHECK_STR(tm(951782400LL * SEC), "\"2000-02-29T00:00:00Z\"");
}

TEST(store_json_ttl_rounds_up_like_etcd)
{
    CHECK_EQ(store_ttl_left(T0 + 2 * SEC, T0), 2);
    CHECK_EQ(store_ttl_left(T0 + 2 * SEC + 1, T0), 3);
    CHECK_EQ(store_ttl_left(T0 + 1, T0), 1);
    CHECK_EQ(store_ttl_left(T0, T0), 0);
    CHECK_EQ(store_ttl_left(T0 - SEC / 2, T0), 0);
    CHECK_EQ(store_ttl_left(T0 - 3 * SEC / 2, T0), -1);
    CHECK_EQ(store_ttl_left(INT64_MAX, INT64_MIN), INT64_MAX / SEC + 1);
}
