/*
 * Unit tests for src/http/http_params.c: form and query parsing, etcd's
 * parameter validation, percent-decoding and path cleaning.
 */
#include "http/http_int.h"
#include "tap.h"

static struct http_form form_of(const char *body, const char *query,
                                struct cn_buf *scratch, int *rc,
                                char cause[HTTP_CAUSE_SIZE])
{
    struct http_form f;
    struct cn_slice b = {body, body ? strlen(body) : 0};
    *rc = http_form_parse(b, cn_slice_from_cstr(query), &f, scratch, cause);
    return f;
}

static int params_of(const char *query, int method, struct http_key_params *kp,
                     const char **cause)
{
    struct cn_buf scratch = {0};
    char c[HTTP_CAUSE_SIZE];
    int rc;
    struct http_form f = form_of(NULL, query, &scratch, &rc, c);
    REQUIRE_EQ(rc, CN_OK);
    int ecode = http_key_params_parse(&f, method, kp, cause);
    cn_buf_close(&scratch);
    return ecode;
}

TEST(http_form_body_wins_over_query)
{
    struct cn_buf scratch = {0};
    char cause[HTTP_CAUSE_SIZE];
    int rc;
    struct http_form f = form_of("value=frombody", "value=fromquery&ttl=5",
                                 &scratch, &rc, cause);
    CHECK_EQ(rc, CN_OK);
    CHECK(f.present[HP_VALUE]);
    CHECK(cn_slice_eq_cstr(f.v[HP_VALUE], "frombody"));
    CHECK(cn_slice_eq_cstr(f.v[HP_TTL], "5"));
    cn_buf_close(&scratch);
}

TEST(http_form_decodes_plus_and_percent)
{
    struct cn_buf scratch = {0};
    char cause[HTTP_CAUSE_SIZE];
    int rc;
    struct http_form f =
        form_of(NULL, "val%75e=a+b%20c%2Fd&prevValue=x", &scratch, &rc, cause);
    CHECK_EQ(rc, CN_OK);
    CHECK(cn_slice_eq_cstr(f.v[HP_VALUE], "a b c/d"));
    CHECK(cn_slice_eq_cstr(f.v[HP_PREV_VALUE], "x"));
    cn_buf_close(&scratch);
}

TEST(http_form_first_value_counts)
{
    struct cn_buf scratch = {0};
    char cause[HTTP_CAUSE_SIZE];
    int rc;
    struct http_form f = form_of(NULL, "value=1&value=2", &scratch, &rc, cause);
    CHECK(cn_slice_eq_cstr(f.v[HP_VALUE], "1"));
    cn_buf_close(&scratch);
}

TEST(http_form_bad_escape_is_error_with_go_message)
{
    struct cn_buf scratch = {0};
    char cause[HTTP_CAUSE_SIZE];
    int rc;
    form_of(NULL, "x=%zz", &scratch, &rc, cause);
    CHECK_EQ(rc, CN_EINVAL);
    CHECK_STR(cause, "invalid URL escape \"%zz\"");
    form_of(NULL, "x=1;y=2", &scratch, &rc, cause);
    CHECK_EQ(rc, CN_EINVAL);
    CHECK_STR(cause, "invalid semicolon separator in query");
    form_of(NULL, "x=%4", &scratch, &rc, cause);
    CHECK_EQ(rc, CN_EINVAL);
    CHECK_STR(cause, "invalid URL escape \"%4\"");
    /* The body's error is reported before the query's. */
    form_of("a=%g1", "x=1;y", &scratch, &rc, cause);
    CHECK_EQ(rc, CN_EINVAL);
    CHECK_STR(cause, "invalid URL escape \"%g1\"");
    cn_buf_close(&scratch);
}

TEST(http_parse_bool_accepts_go_spellings_only)
{
    const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
    const char *bad[] = {"", "yes", "tRUE", "2", "true "};
    for (int i = 0; i < 6; i++) {
        int b = -1;
        CHECK(http_parse_bool(cn_slice_from_cstr(yes[i]), &b) && b == 1);
        CHECK(http_parse_bool(cn_slice_from_cstr(no[i]), &b) && b == 0);
    }
    for (int i = 0; i < 5; i++) {
        int b;
        CHECK(!http_parse_bool(cn_slice_from_cstr(bad[i]), &b));
    }
}

TEST(http_parse_u64_rejects_sign_empty_and_overflow)
{
    uint64_t v = 0;
    CHECK(http_parse_u64(cn_slice_from_cstr("18446744073709551615"), &v));
    CHECK(v == UINT64_MAX);
    CHECK(!http_parse_u64(cn_slice_from_cstr("18446744073709551616"), &v));
    CHECK(!http_parse_u64(cn_slice_from_cstr(""), &v));
    CHECK(!http_parse_u64(cn_slice_from_cstr("-1"), &v));
    CHECK(!http_parse_u64(cn_slice_from_cstr("+1"), &v));
    CHECK(!http_parse_u64(cn_slice_from_cstr("1x"), &v));
}

TEST(http_key_params_etcd_error_codes)
{
    struct http_key_params kp;
    const char *cause = NULL;
    CHECK_EQ(params_of("ttl=x", HM_PUT, &kp, &cause), 202);
    CHECK_STR(cause, "invalid value for \"ttl\"");
    CHECK_EQ(params_of("ttl=-1", HM_PUT, &kp, &cause), 202);
    CHECK_EQ(params_of("prevIndex=a", HM_PUT, &kp, &cause), 203);
    CHECK_STR(cause, "invalid value for \"prevIndex\"");
    CHECK_EQ(params_of("prevIndex=", HM_PUT, &kp, &cause), 203);
    CHECK_EQ(params_of("waitIndex=z", HM_GET, &kp, &cause), 203);
    CHECK_STR(cause, "invalid value for \"waitIndex\"");
    CHECK_EQ(params_of("prevValue=", HM_PUT, &kp, &cause), 201);
    CHECK_EQ(params_of("prevExist=maybe", HM_PUT, &kp, &cause), 209);
    CHECK_STR(cause, "invalid value for prevExist");
    CHECK_EQ(params_of("recursive=yes", HM_GET, &kp, &cause), 209);
    CHECK_STR(cause, "invalid value for \"recursive\"");
    CHECK_EQ(params_of("wait=true", HM_PUT, &kp, &cause), 209);
    CHECK_STR(cause, "\"wait\" can only be used with GET requests");
    CHECK_EQ(params_of("refresh=true&value=x&ttl=5", HM_PUT, &kp, &cause), 211);
    CHECK_EQ(params_of("refresh=true", HM_PUT, &kp, &cause), 212);
    CHECK_EQ(params_of("refresh=nope", HM_PUT, &kp, &cause), 209);
    CHECK_EQ(params_of("noValueOnSuccess=2", HM_PUT, &kp, &cause), 209);
}

TEST(http_key_params_values)
{
    struct http_key_params kp;
    const char *cause = NULL;
    CHECK_EQ(
        params_of("value=v&ttl=30&prevExist=false&dir=1", HM_PUT, &kp, &cause),
        0);
    CHECK(cn_slice_eq_cstr(kp.value, "v"));
    CHECK_EQ(kp.ttl_s, 30);
    CHECK_EQ(kp.prev_exist, 0);
    CHECK_EQ(kp.dir, 1);
    CHECK_EQ(params_of("ttl=", HM_PUT, &kp, &cause), 0);
    CHECK_EQ(kp.ttl_s, -1); /* empty ttl: no TTL */
    CHECK_EQ(params_of("", HM_PUT, &kp, &cause), 0);
    CHECK_EQ(kp.prev_exist, -1);
    CHECK_EQ(kp.ttl_s, -1);
    CHECK_EQ(params_of("wait=true&waitIndex=7&stream=t", HM_GET, &kp, &cause),
             0);
    CHECK_EQ(kp.wait, 1);
    CHECK_EQ(kp.stream, 1);
    CHECK_EQ(kp.wait_index, 7);
    CHECK_EQ(params_of("refresh=true&ttl=5&value=", HM_PUT, &kp, &cause), 0);
    CHECK_EQ(kp.refresh, 1);
}

static void check_clean(const char *in, const char *want)
{
    struct cn_buf out = {0};
    REQUIRE_EQ(http_path_clean(cn_slice_from_cstr(in), &out), CN_OK);
    CHECK_STR(out.data, want);
    cn_buf_close(&out);
}

TEST(http_path_clean_like_servemux)
{
    check_clean("/v2/keys/a", "/v2/keys/a");
    check_clean("/v2/keys//a", "/v2/keys/a");
    check_clean("/v2/keys/./a/", "/v2/keys/a/");
    check_clean("/v2/keys/a/../b", "/v2/keys/b");
    check_clean("/../..", "/");
    check_clean("/", "/");
    check_clean("/a/b/..", "/a");
    check_clean("/a/.../b", "/a/.../b");
    check_clean("/a/..b/", "/a/..b/");
    check_clean("//", "/");
}

TEST(http_path_decode_and_escape)
{
    struct cn_buf out = {0};
    CHECK_EQ(http_path_decode(cn_slice_from_cstr("/sp%20ace/x%2Fy+z"), &out),
             CN_OK);
    CHECK_STR(out.data, "/sp ace/x/y+z");
    cn_buf_reset(&out);
    CHECK_EQ(http_path_decode(cn_slice_from_cstr("/a%zz"), &out), CN_EINVAL);
    cn_buf_reset(&out);
    CHECK_EQ(http_path_escape(cn_slice_from_cstr("/a b/c?d&e"), &out), CN_OK);
    CHECK_STR(out.data, "/a%20b/c%3Fd&e");
    cn_buf_close(&out);
}
