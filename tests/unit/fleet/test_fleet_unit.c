/* Unit-file parser, service options, names, specifiers, exec splitting. */
#include <stdlib.h>
#include <string.h>

#include "fleet/fleet_int.h"
#include "tap.h"

static int parse(const char *text, struct fleet_service *s, char *err)
{
    return fleet_service_parse(text, strlen(text), s, err);
}

/* Expects text to be rejected with an error containing each of want[]. */
static void expect_error(const char *text, const char *w1, const char *w2)
{
    struct fleet_service s;
    char err[CN_ERRMSG_SIZE];
    int rc = parse(text, &s, err);
    CHECK_EQ(rc, CN_EINVAL);
    if (w1 && strstr(err, w1) == NULL)
        tap_fail(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", err, w1);
    if (w2 && strstr(err, w2) == NULL)
        tap_fail(__FILE__, __LINE__, "error \"%s\" lacks \"%s\"", err, w2);
    fleet_service_close(&s);
}

TEST(fleet_unit_parses_echo_service)
{
    const char *text = "# the demo\n"
                       "[Unit]\n"
                       "Description=Echo server\n"
                       "After=network.target\n"
                       "\n"
                       "[Service]\n"
                       "ExecStartPre=-/bin/rm -f /tmp/x\n"
                       "ExecStart=/usr/bin/env python3 echo.py \\\n"
                       "   --port 50000\n"
                       "Restart=always\n"
                       "RestartSec=2\n"
                       "TimeoutStopSec=1min 30s\n"
                       "Environment=A=1 \"B=two words\"\n"
                       "\n"
                       "[X-Fleet]\n"
                       "MachineMetadata=region=us-west\n"
                       "MachineMetadata=disk=ssd disk=hdd\n"
                       "Conflicts=echo@*.service\n";
    struct fleet_service s;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(parse(text, &s, err), 0);
    CHECK_STR(s.description, "Echo server");
    REQUIRE_EQ(s.exec_start.n, 1);
    CHECK_STR(s.exec_start.v[0], "/usr/bin/env python3 echo.py --port 50000");
    CHECK_EQ(s.exec_start.lines[0], 8);
    REQUIRE_EQ(s.exec_start_pre.n, 1);
    CHECK_EQ(s.restart, FLEET_RESTART_ALWAYS);
    CHECK_EQ(s.restart_ms, 2000);
    CHECK_EQ(s.timeout_stop_ms, 90000);
    REQUIRE_EQ(s.environment.n, 2);
    CHECK_STR(s.environment.v[1], "B=two words");
    REQUIRE_EQ(s.machine_metadata.n, 3);
    CHECK_STR(s.machine_metadata.v[2], "disk=hdd");
    REQUIRE_EQ(s.conflicts.n, 1);
    CHECK_EQ(s.global, 0);
    CHECK_EQ(s.warnings.len, 0);
    fleet_service_close(&s);
}

TEST(fleet_unit_unknown_keys_are_kept_and_reported)
{
    const char *text = "[Unit]\nDescription=x\nFrobnicate=yes\n"
                       "[Service]\nExecStart=/bin/true\nNice=5\n"
                       "[X-Other]\nA=b\n";
    struct fleet_service s;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(parse(text, &s, err), 0);
    REQUIRE(s.warnings.data != NULL);
    CHECK(strstr(s.warnings.data, "line 3: unknown key Frobnicate in [Unit]"));
    CHECK(strstr(s.warnings.data, "line 6: unknown key Nice in [Service]"));
    CHECK(strstr(s.warnings.data, "line 8:") != NULL);
    fleet_service_close(&s);

    struct fleet_unit_file uf;
    REQUIRE_EQ(fleet_unit_file_parse(text, strlen(text), &uf, err), 0);
    CHECK_STR(fleet_unit_file_get(&uf, "Service", "Nice"), "5");
    CHECK_STR(fleet_unit_file_get(&uf, "X-Other", "A"), "b");
    CHECK(fleet_unit_file_get(&uf, "Service", "Missing") == NULL);
    fleet_unit_file_close(&uf);
}

TEST(fleet_unit_syntax_errors_name_line)
{
    expect_error("Description=x\n", "line 1:", "Description");
    expect_error("[Unit]\nDescription x\n", "line 2:", "Key=Value");
    expect_error("[Unit]\n=x\n", "line 2:", "empty key");
    expect_error("[Unit\nA=b\n", "line 1:", "']'");
    expect_error("[]\n", "line 1:", "empty section");
    expect_error("[Un/it]\n", "line 1:", "section name");
    expect_error("[Service]\nExec Start=/bin/true\n", "line 2:", "Exec Start");
    expect_error("[Service]\nExecStart=/bin/true \\\n",
                 "line 2:", "key ExecStart: line continuation at end of file");
}

TEST(fleet_unit_value_errors_name_line_and_key)
{
    expect_error("[Service]\nExecStart=/bin/true\nRestart=sometimes\n",
                 "line 3:", "key Restart");
    expect_error("[Service]\nExecStart=/bin/true\nRestartSec=soon\n",
                 "line 3:", "key RestartSec");
    expect_error("[Service]\nExecStart=/bin/true\nTimeoutStopSec=5 parsecs\n",
                 "line 3:", "key TimeoutStopSec");
    expect_error("[Service]\nExecStart=/bin/true\nTimeoutStartSec=\n",
                 "line 3:", "key TimeoutStartSec");
    expect_error("[Service]\nExecStart=/bin/echo \"open\n",
                 "line 2:", "key ExecStart: unbalanced quote");
    expect_error("[Service]\nExecStart=/bin/echo \\q\n",
                 "line 2:", "key ExecStart: invalid escape");
    expect_error("[Service]\nExecStart=@/bin/true\n",
                 "line 2:", "key ExecStart: command prefix");
    expect_error("[Service]\nExecStart=-\n",
                 "line 2:", "key ExecStart: empty command");
    expect_error("[Service]\nExecStart=/bin/echo %z\n",
                 "line 2:", "key ExecStart: unknown specifier %z");
    expect_error("[Service]\nExecStart=/bin/true\nEnvironment=NOEQUALS\n",
                 "line 3:", "key Environment");
    expect_error("[Service]\nExecStart=/bin/true\nEnvironment=\"A=1\n",
                 "line 3:", "key Environment");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=maybe\n",
                 "line 4:", "key Global");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Fleet]\n"
                 "MachineMetadata=region\n",
                 "line 4:", "key MachineMetadata");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Fleet]\n"
                 "MachineMetadata=region=\n",
                 "line 4:", "key MachineMetadata");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Cairn]\nIsolate=2\n",
                 "line 4:", "key Isolate");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Cairn]\nMemoryMax=lots\n",
                 "line 4:", "key MemoryMax");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Cairn]\nCPUQuota=50\n",
                 "line 4:", "key CPUQuota");
}

TEST(fleet_unit_whole_file_errors)
{
    expect_error("[Unit]\nDescription=x\n[Service]\nRestart=no\n",
                 "key ExecStart", "no ExecStart");
    expect_error("[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n",
                 "line 3:", "more than one ExecStart");
    expect_error("[Service]\nType=forking\nExecStart=/bin/true\n",
                 "line 2:", "key Type");
    expect_error("[Service]\nExecStart=/bin/true\n[X-Fleet]\nGlobal=true\n"
                 "MachineOf=a.service\n",
                 "line 5:", "key MachineOf");
    /* An empty ExecStart= resets the list: then none is left. */
    expect_error("[Service]\nExecStart=/bin/true\nExecStart=\n",
                 "key ExecStart", NULL);
}

TEST(fleet_unit_rejects_nul_and_huge_files)
{
    struct fleet_unit_file uf;
    char err[CN_ERRMSG_SIZE];
    const char text[] = "[Unit]\nA=b\0c\n";
    CHECK_EQ(fleet_unit_file_parse(text, sizeof(text) - 1, &uf, err),
             CN_EINVAL);
    CHECK(strstr(err, "line 2:") != NULL);
    fleet_unit_file_close(&uf);
    size_t n = FLEET_UNIT_BYTES_MAX + 1;
    char *big = malloc(n);
    REQUIRE(big != NULL);
    memset(big, '#', n);
    CHECK_EQ(fleet_unit_file_parse(big, n, &uf, err), CN_ETOOBIG);
    fleet_unit_file_close(&uf);
    free(big);
}

TEST(fleet_unit_comments_inside_continuation_and_crlf)
{
    const char *text = "[Service]\r\nExecStart=/bin/echo a \\\r\n"
                       "# a comment\r\n  b\r\n";
    struct fleet_service s;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(parse(text, &s, err), 0);
    CHECK_STR(s.exec_start.v[0], "/bin/echo a b");
    fleet_service_close(&s);
}

TEST(fleet_unit_timespans)
{
    int64_t ms;
    CHECK_EQ(fleet_parse_timespan("5", &ms), 0);
    CHECK_EQ(ms, 5000);
    CHECK_EQ(fleet_parse_timespan("500ms", &ms), 0);
    CHECK_EQ(ms, 500);
    CHECK_EQ(fleet_parse_timespan("2min 30s", &ms), 0);
    CHECK_EQ(ms, 150000);
    CHECK_EQ(fleet_parse_timespan("1h", &ms), 0);
    CHECK_EQ(ms, 3600000);
    CHECK_EQ(fleet_parse_timespan("0.5s", &ms), 0);
    CHECK_EQ(ms, 500);
    CHECK_EQ(fleet_parse_timespan("infinity", &ms), 0);
    CHECK_EQ(ms, INT64_MAX);
    CHECK_EQ(fleet_parse_timespan("", &ms), CN_EINVAL);
    CHECK_EQ(fleet_parse_timespan("-1", &ms), CN_EINVAL);
    CHECK_EQ(fleet_parse_timespan("5 6", &ms), CN_EINVAL);
    CHECK_EQ(fleet_parse_timespan("5 fortnights", &ms), CN_EINVAL);
}

TEST(fleet_unit_names_and_templates)
{
    CHECK_EQ(fleet_unit_name_kind("echo.service"), FLEET_NAME_PLAIN);
    CHECK_EQ(fleet_unit_name_kind("echo@.service"), FLEET_NAME_TEMPLATE);
    CHECK_EQ(fleet_unit_name_kind("echo@1.service"), FLEET_NAME_INSTANCE);
    CHECK_EQ(fleet_unit_name_kind("echo"), CN_EINVAL);
    CHECK_EQ(fleet_unit_name_kind("echo.exe"), CN_EINVAL);
    CHECK_EQ(fleet_unit_name_kind("ec ho.service"), CN_EINVAL);
    CHECK_EQ(fleet_unit_name_kind("a@b@c.service"), CN_EINVAL);
    CHECK_EQ(fleet_unit_name_kind("@x.service"), CN_EINVAL);
    char t[FLEET_NAME_MAX];
    CHECK_EQ(fleet_unit_template_of("echo@42.service", t, sizeof(t)), 0);
    CHECK_STR(t, "echo@.service");
    CHECK_EQ(fleet_unit_template_of("echo.service", t, sizeof(t)), CN_EINVAL);
    fleet_unit_name_mangle("units/echo", t, sizeof(t));
    CHECK_STR(t, "echo.service");
    fleet_unit_name_mangle("/x/echo.timer", t, sizeof(t));
    CHECK_STR(t, "echo.timer");
}

TEST(fleet_unit_specifiers)
{
    struct fleet_spec sp = {"echo@42.service", "host1", "abcd"};
    struct cn_buf b = {0};
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(fleet_expand("%n %N %p %i %H %m 100%%", &sp, &b, err), 0);
    CHECK_STR(b.data, "echo@42.service echo@42 echo 42 host1 abcd 100%");
    cn_buf_reset(&b);
    sp.name = "plain.service";
    CHECK_EQ(fleet_expand("[%i][%p]", &sp, &b, err), 0);
    CHECK_STR(b.data, "[][plain]");
    CHECK_EQ(fleet_expand("%q", &sp, &b, err), CN_EINVAL);
    CHECK(strstr(err, "%q") != NULL);
    cn_buf_close(&b);
}

TEST(fleet_unit_exec_split)
{
    char *env[] = {"A=1", "B=x y", "A=2"};
    char **argv;
    int ign;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(fleet_exec_split("-/bin/sh -c 'echo $A' \"${B}\" $A$$ a\\ b",
                                env, 3, &argv, &ign, err),
               0);
    CHECK_EQ(ign, 1);
    CHECK_STR(argv[0], "/bin/sh");
    CHECK_STR(argv[1], "-c");
    CHECK_STR(argv[2], "echo $A");
    CHECK_STR(argv[3], "x y");
    CHECK_STR(argv[4], "2$");
    CHECK_STR(argv[5], "a b");
    CHECK(argv[6] == NULL);
    fleet_argv_free(argv);
    CHECK_EQ(fleet_exec_split("  ", NULL, 0, &argv, &ign, err), CN_EINVAL);
    CHECK_EQ(fleet_exec_split("a ${B", NULL, 0, &argv, &ign, err), CN_EINVAL);
}

TEST(fleet_unit_globs)
{
    CHECK(fleet_glob_match("echo@*.service", "echo@1.service"));
    CHECK(!fleet_glob_match("echo@*.service", "web.service"));
    CHECK(fleet_glob_match("web?.service", "web1.service"));
}

TEST(fleet_sha1_known_vectors)
{
    char hex[41];
    fleet_sha1_hex("", 0, hex);
    CHECK_STR(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    fleet_sha1_hex("abc", 3, hex);
    CHECK_STR(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *l = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    fleet_sha1_hex(l, strlen(l), hex);
    CHECK_STR(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(fleet_unit_survives_allocation_failures)
{
    const char *text = "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/a b\n"
                       "Environment=A=1 B=2\n[X-Fleet]\nConflicts=a b c\n"
                       "Frob=1\n";
    for (long n = 1; n < 200; n++) {
        struct fleet_service s;
        char err[CN_ERRMSG_SIZE];
        cn_mem_fault_arm(n, 0);
        int rc = parse(text, &s, err);
        cn_mem_fault_arm(0, 0);
        CHECK(rc == 0 || rc == CN_ENOMEM);
        fleet_service_close(&s);
        if (rc == 0)
            break;
    }
}
