/* Unit tests for src/cli/cli_args.c: Go flag rules, urfave/cli's flag
 * reordering, Go durations. */
#include "cli/cli_int.h"
#include "tap.h"

#include <string.h>

struct opts {
    long long ttl;
    const char *with;
    int rec;
    int64_t dur;
};

static int run(struct opts *o, int reorder, char **argv, int argc, char **pos,
               int *npos, char *err)
{
    memset(o, 0, sizeof(*o));
    struct cli_flag flags[] = {
        {"ttl", CLI_FLAG_INT, &o->ttl, "value", "ttl", NULL},
        {"with-value", CLI_FLAG_STRING, &o->with, "value", "w", NULL},
        {"recursive,r", CLI_FLAG_BOOL, &o->rec, NULL, "r", NULL},
        {"timeout", CLI_FLAG_DURATION, &o->dur, "value", "t", NULL},
    };
    return cli_args_parse(flags, 4, argc, argv, reorder, pos, npos, err);
}

TEST(cli_args_go_flag_forms)
{
    char *argv[] = {"-ttl", "5", "--with-value=a=b", "-r", "--timeout", "1.5s",
                    "/k",   "v"};
    struct opts o;
    char *pos[8];
    int npos;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(run(&o, 0, argv, 8, pos, &npos, err), CLI_ARGS_OK);
    CHECK_EQ(o.ttl, 5);
    CHECK_STR(o.with, "a=b");
    CHECK_EQ(o.rec, 1);
    CHECK_EQ(o.dur, 1500);
    REQUIRE_EQ(npos, 2);
    CHECK_STR(pos[0], "/k");
    CHECK_STR(pos[1], "v");
}

TEST(cli_args_reorders_trailing_flags_until_double_dash)
{
    char *argv[] = {"/k", "v", "--ttl", "7", "-r", "--", "x", "--ttl", "9"};
    struct opts o;
    char *pos[9];
    int npos;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(run(&o, 1, argv, 9, pos, &npos, err), CLI_ARGS_OK);
    CHECK_EQ(o.ttl, 7);
    CHECK_EQ(o.rec, 1);
    REQUIRE_EQ(npos, 6);
    CHECK_STR(pos[0], "/k");
    CHECK_STR(pos[1], "v");
    CHECK_STR(pos[2], "--");
    CHECK_STR(pos[5], "9");
    /* Without reordering, parsing stops at the first positional. */
    REQUIRE_EQ(run(&o, 0, argv, 9, pos, &npos, err), CLI_ARGS_OK);
    CHECK_EQ(o.ttl, 0);
    CHECK_EQ(npos, 9);
    /* A leading "--" is consumed: "set -- /k -v". */
    char *argv2[] = {"--", "/k", "-v"};
    REQUIRE_EQ(run(&o, 1, argv2, 3, pos, &npos, err), CLI_ARGS_OK);
    REQUIRE_EQ(npos, 2);
    CHECK_STR(pos[1], "-v");
}

TEST(cli_args_errors_use_go_wording)
{
    struct opts o;
    char *pos[4];
    int npos;
    char err[CN_ERRMSG_SIZE];
    char *a1[] = {"--bogus", "/k"};
    CHECK_EQ(run(&o, 1, a1, 2, pos, &npos, err), CN_EINVAL);
    CHECK_STR(err, "flag provided but not defined: -bogus");
    char *a2[] = {"--ttl=abc", "/k"};
    CHECK_EQ(run(&o, 1, a2, 2, pos, &npos, err), CN_EINVAL);
    CHECK_STR(err, "invalid value \"abc\" for flag -ttl: parse error");
    char *a3[] = {"--ttl"};
    CHECK_EQ(run(&o, 0, a3, 1, pos, &npos, err), CN_EINVAL);
    CHECK_STR(err, "flag needs an argument: -ttl");
    char *a4[] = {"-r=maybe"};
    CHECK_EQ(run(&o, 0, a4, 1, pos, &npos, err), CN_EINVAL);
    CHECK_STR(err, "invalid boolean value \"maybe\" for -r: parse error");
    char *a5[] = {"---x"};
    CHECK_EQ(run(&o, 0, a5, 1, pos, &npos, err), CN_EINVAL);
    CHECK_STR(err, "bad flag syntax: ---x");
    char *a6[] = {"/k", "-h"};
    CHECK_EQ(run(&o, 1, a6, 2, pos, &npos, err), CLI_ARGS_HELP);
    char *a7[] = {"--help"};
    CHECK_EQ(run(&o, 1, a7, 1, pos, &npos, err), CLI_ARGS_HELP);
    char *a8[] = {"-ttl", "0x10", "-r=false"};
    CHECK_EQ(run(&o, 0, a8, 3, pos, &npos, err), CLI_ARGS_OK);
    CHECK_EQ(o.ttl, 16);
    CHECK_EQ(o.rec, 0);
}

TEST(cli_parse_duration_units)
{
    int64_t ms = -1;
    CHECK_EQ(cli_parse_duration("2s", &ms), CN_OK);
    CHECK_EQ(ms, 2000);
    CHECK_EQ(cli_parse_duration("1m30s", &ms), CN_OK);
    CHECK_EQ(ms, 90000);
    CHECK_EQ(cli_parse_duration("250ms", &ms), CN_OK);
    CHECK_EQ(ms, 250);
    CHECK_EQ(cli_parse_duration("0", &ms), CN_OK);
    CHECK_EQ(ms, 0);
    CHECK_EQ(cli_parse_duration("1h", &ms), CN_OK);
    CHECK_EQ(ms, 3600000);
    CHECK_EQ(cli_parse_duration("5", &ms), CN_EINVAL);
    CHECK_EQ(cli_parse_duration("s", &ms), CN_EINVAL);
    CHECK_EQ(cli_parse_duration("3x", &ms), CN_EINVAL);
    CHECK_EQ(cli_parse_duration("", &ms), CN_EINVAL);
}
