/* Unit tests for src/config: etcd 3.4 flags and ETCD_* variables. */
#include "config/config.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

struct run {
    struct cn_config cfg;
    int rc;
    int outcome;
    struct cn_buf out;
    struct cn_buf warn;
    char err[CN_ERRMSG_SIZE];
};

static void run_argv(struct run *r, char **env, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    cn_buf_close(&r->out);
    cn_buf_close(&r->warn);
    r->outcome = -1;
    r->rc = config_parse(&r->cfg, argc, argv, env, &r->outcome, &r->out,
                         &r->warn, r->err);
}

static void run_close(struct run *r)
{
    cn_buf_close(&r->out);
    cn_buf_close(&r->warn);
}

/* RUN(&r, env, "--flag", "value", ...): argv[0] is "cairn". */
#define RUN(r, env, ...)                                                       \
    do {                                                                       \
        char *argv_[] = {"cairn", __VA_ARGS__, NULL};                          \
        run_argv((r), (env), argv_);                                           \
    } while (0)
#define RUN0(r, env)                                                           \
    do {                                                                       \
        char *argv_[] = {"cairn", NULL};                                       \
        run_argv((r), (env), argv_);                                           \
    } while (0)

static int contains(const char *hay, const char *needle)
{
    return hay != NULL && strstr(hay, needle) != NULL;
}

#define CHECK_HAS(hay, needle)                                                 \
    do {                                                                       \
        const char *h_ = (hay);                                                \
        if (!contains(h_, (needle)))                                           \
            tap_fail(__FILE__, __LINE__, "\"%s\" lacks \"%s\"",                \
                     h_ ? h_ : "(null)", (needle));                            \
    } while (0)

/* An error result that names the flag and the reason. */
#define CHECK_ERR(r, a, b)                                                     \
    do {                                                                       \
        CHECK_EQ((r)->rc, CN_EINVAL);                                          \
        CHECK_HAS((r)->err, (a));                                              \
        CHECK_HAS((r)->err, (b));                                              \
        CHECK(strchr((r)->err, '\n') == NULL);                                 \
    } while (0)

/* ---- defaults ---- */

TEST(config_defaults_match_etcd)
{
    struct run r = {0};
    RUN0(&r, NULL);
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_EQ(r.outcome, CONFIG_RUN);
    CHECK_STR(r.cfg.name, "default");
    CHECK_STR(r.cfg.data_dir, "default.cairn");
    CHECK_STR(r.cfg.wal_dir, "");
    CHECK_EQ(r.cfg.snapshot_count, 100000);
    CHECK_EQ(r.cfg.heartbeat_interval_ms, 100);
    CHECK_EQ(r.cfg.election_timeout_ms, 1000);
    CHECK_EQ(r.cfg.max_snapshots, 5);
    CHECK_EQ(r.cfg.max_wals, 5);
    CHECK_EQ(r.cfg.max_request_bytes, 1572864);
    CHECK_EQ(r.cfg.quota_backend_bytes, 0);
    REQUIRE_EQ(r.cfg.listen_client_urls.count, 1);
    CHECK_STR(r.cfg.listen_client_urls.urls[0].raw, "http://localhost:2379");
    CHECK_STR(r.cfg.listen_client_urls.urls[0].host, "localhost");
    CHECK_EQ(r.cfg.listen_client_urls.urls[0].port, 2379);
    REQUIRE_EQ(r.cfg.advertise_client_urls.count, 1);
    CHECK_STR(r.cfg.advertise_client_urls.urls[0].raw, "http://localhost:2379");
    REQUIRE_EQ(r.cfg.listen_peer_urls.count, 1);
    CHECK_STR(r.cfg.listen_peer_urls.urls[0].raw, "http://localhost:2380");
    REQUIRE_EQ(r.cfg.initial_advertise_peer_urls.count, 1);
    CHECK_EQ(r.cfg.initial_advertise_peer_urls.urls[0].port, 2380);
    REQUIRE_EQ(r.cfg.initial_cluster_count, 1);
    CHECK_STR(r.cfg.initial_cluster[0].name, "default");
    CHECK_STR(r.cfg.initial_cluster[0].url.raw, "http://localhost:2380");
    CHECK_EQ(r.cfg.initial_cluster_set, 0);
    CHECK_EQ(r.cfg.initial_cluster_state_existing, 0);
    CHECK_STR(r.cfg.initial_cluster_token, "etcd-cluster");
    CHECK_STR(r.cfg.discovery, "");
    CHECK_STR(r.cfg.discovery_fallback, "proxy");
    CHECK_STR(r.cfg.discovery_proxy, "");
    CHECK_STR(r.cfg.discovery_srv, "");
    CHECK_EQ(r.cfg.strict_reconfig_check, 1);
    CHECK_EQ(r.cfg.force_new_cluster, 0);
    CHECK_EQ(r.cfg.enable_v2, 0);
    CHECK_STR(r.cfg.cors, "");
    CHECK_STR(r.cfg.host_whitelist, "*");
    CHECK_EQ(r.cfg.debug, 0);
    CHECK_EQ(r.cfg.log_level, CN_LOG_INFO);
    CHECK_EQ(r.cfg.pre_vote, 0);
    CHECK_EQ(r.cfg.initial_election_tick_advance, 1);
    CHECK_EQ(r.cfg.unsafe_no_fsync, 0);
    CHECK_EQ(r.warn.len, 0);
    CHECK_EQ(r.out.len, 0);
    CHECK_STR(r.err, "");
    run_close(&r);
}

TEST(config_data_dir_default_follows_name)
{
    struct run r = {0};
    RUN(&r, NULL, "--name", "node1");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.data_dir, "node1.cairn");
    char *env[] = {"ETCD_NAME=envnode", NULL};
    RUN0(&r, env);
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.data_dir, "envnode.cairn");
    /* An explicit empty data dir still gets the default, as in etcd. */
    RUN(&r, NULL, "--name=n2", "--data-dir=");
    CHECK_STR(r.cfg.data_dir, "n2.cairn");
    RUN(&r, NULL, "--name=n2", "--data-dir", "/tmp/x");
    CHECK_STR(r.cfg.data_dir, "/tmp/x");
    RUN(&r, NULL, "--name=");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.data_dir, ".cairn");
    run_close(&r);
}

/* ---- flag forms ---- */

TEST(config_flag_forms_all_accepted)
{
    struct run r = {0};
    RUN(&r, NULL, "-name", "a");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "a");
    RUN(&r, NULL, "--name", "b");
    CHECK_STR(r.cfg.name, "b");
    RUN(&r, NULL, "--name=c");
    CHECK_STR(r.cfg.name, "c");
    RUN(&r, NULL, "-name=d");
    CHECK_STR(r.cfg.name, "d");
    /* A value may start with a dash; the last occurrence wins. */
    RUN(&r, NULL, "--name", "-x", "--initial-cluster-token", "t1",
        "-initial-cluster-token=t2");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "-x");
    CHECK_STR(r.cfg.initial_cluster_token, "t2");
    /* "--name=" sets an empty value; "=" inside a value is kept. */
    RUN(&r, NULL, "--initial-cluster-token=a=b");
    CHECK_STR(r.cfg.initial_cluster_token, "a=b");
    run_close(&r);
}

TEST(config_python_etcd_style_single_dash)
{
    struct run r = {0};
    RUN(&r, NULL, "-name", "test-node", "-data-dir", "/tmp/d",
        "-listen-client-urls", "http://127.0.0.1:6001",
        "-advertise-client-urls", "http://127.0.0.1:6001", "-listen-peer-urls",
        "http://127.0.0.1:7001", "-initial-advertise-peer-urls",
        "http://127.0.0.1:7001", "-initial-cluster",
        "test-node=http://127.0.0.1:7001", "-initial-cluster-state", "new",
        "-enable-v2=true");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "test-node");
    CHECK_STR(r.cfg.data_dir, "/tmp/d");
    CHECK_EQ(r.cfg.listen_client_urls.urls[0].port, 6001);
    CHECK_STR(r.cfg.listen_client_urls.urls[0].host, "127.0.0.1");
    CHECK_EQ(r.cfg.initial_cluster_count, 1);
    CHECK_EQ(r.cfg.initial_cluster_set, 1);
    CHECK_EQ(r.cfg.initial_cluster[0].url.port, 7001);
    CHECK_EQ(r.cfg.enable_v2, 1);
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_OK);
    run_close(&r);
}

TEST(config_bool_bare_and_explicit)
{
    struct run r = {0};
    RUN(&r, NULL, "--debug");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.debug, 1);
    CHECK_EQ(r.cfg.log_level, CN_LOG_DEBUG);
    RUN(&r, NULL, "-force-new-cluster");
    CHECK_EQ(r.cfg.force_new_cluster, 1);
    RUN(&r, NULL, "--strict-reconfig-check=false");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.strict_reconfig_check, 0);
    const char *yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    const char *no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (int i = 0; i < 6; i++) {
        char a[64], b[64];
        snprintf(a, sizeof(a), "--pre-vote=%s", yes[i]);
        snprintf(b, sizeof(b), "--strict-reconfig-check=%s", no[i]);
        RUN(&r, NULL, a, b);
        CHECK_EQ(r.rc, CN_OK);
        CHECK_EQ(r.cfg.pre_vote, 1);
        CHECK_EQ(r.cfg.strict_reconfig_check, 0);
    }
    run_close(&r);
}

TEST(config_bare_bool_does_not_swallow_next_argument)
{
    struct run r = {0};
    RUN(&r, NULL, "--debug", "--name", "x");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.debug, 1);
    CHECK_STR(r.cfg.name, "x");
    /* Go's flag package: "--flag false" is the flag, then a stray word. */
    RUN(&r, NULL, "--strict-reconfig-check", "false");
    CHECK_ERR(&r, "'false'", "is not a valid flag");
    run_close(&r);
}

TEST(config_bool_bad_value_names_flag)
{
    struct run r = {0};
    RUN(&r, NULL, "--debug=yes");
    CHECK_ERR(&r, "--debug", "\"yes\"");
    RUN(&r, NULL, "--debug=tRUE");
    CHECK_ERR(&r, "--debug", "tRUE");
    run_close(&r);
}

/* ---- environment ---- */

TEST(config_env_sets_flags_and_says_so)
{
    struct run r = {0};
    char *env[] = {"PATH=/bin",
                   "ETCD_NAME=envname",
                   "ETCD_HEARTBEAT_INTERVAL=50",
                   "ETCD_INITIAL_CLUSTER_STATE=existing",
                   "ETCD_LISTEN_PEER_URLS=http://127.0.0.1:12380",
                   "ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:12380",
                   "ETCD_DEBUG=true",
                   NULL};
    RUN0(&r, env);
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "envname");
    CHECK_EQ(r.cfg.heartbeat_interval_ms, 50);
    CHECK_EQ(r.cfg.initial_cluster_state_existing, 1);
    CHECK_EQ(r.cfg.debug, 1);
    CHECK_EQ(r.cfg.listen_peer_urls.urls[0].port, 12380);
    CHECK_HAS(r.warn.data,
              "recognized and used environment variable ETCD_NAME=envname\n");
    CHECK_HAS(r.warn.data, "ETCD_HEARTBEAT_INTERVAL=50");
    /* name given, cluster not: name=peer URL, computed from the env too */
    REQUIRE_EQ(r.cfg.initial_cluster_count, 1);
    CHECK_STR(r.cfg.initial_cluster[0].name, "envname");
    CHECK_STR(r.cfg.initial_cluster[0].url.raw, "http://127.0.0.1:12380");
    run_close(&r);
}

TEST(config_flag_wins_over_env_with_warning)
{
    struct run r = {0};
    char *env[] = {"ETCD_NAME=fromenv", "ETCD_SNAPSHOT_COUNT=7", NULL};
    RUN(&r, env, "--name", "fromflag");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "fromflag");
    CHECK_EQ(r.cfg.snapshot_count, 7);
    CHECK_HAS(r.warn.data, "flag --name shadows environment variable "
                           "ETCD_NAME");
    CHECK(!contains(r.warn.data, "ETCD_NAME=fromenv"));
    run_close(&r);
}

TEST(config_env_unknown_is_warning_not_error)
{
    struct run r = {0};
    char *env[] = {"ETCD_FOO=bar", "ETCDX=1", "HOME=/root",
                   "ETCD_UNSUPPORTED_ARCH=arm", NULL};
    RUN0(&r, env);
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_HAS(r.warn.data, "unrecognized environment variable ETCD_FOO=bar\n");
    CHECK_HAS(r.warn.data, "ETCD_UNSUPPORTED_ARCH=arm");
    CHECK(!contains(r.warn.data, "ETCDX"));
    CHECK(!contains(r.warn.data, "HOME"));
    run_close(&r);
}

TEST(config_env_bad_value_names_variable_and_flag)
{
    struct run r = {0};
    char *env[] = {"ETCD_HEARTBEAT_INTERVAL=abc", NULL};
    RUN0(&r, env);
    CHECK_ERR(&r, "ETCD_HEARTBEAT_INTERVAL", "--heartbeat-interval");
    CHECK_HAS(r.err, "\"abc\"");
    char *env2[] = {"ETCD_CERT_FILE=/x.pem", NULL};
    RUN0(&r, env2);
    CHECK_ERR(&r, "ETCD_CERT_FILE", "TLS is not supported yet");
    /* An empty variable counts as unset. */
    char *env3[] = {"ETCD_NAME=", "ETCD_CERT_FILE=", NULL};
    RUN0(&r, env3);
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "default");
    /* ETCD_VERSION is etcd's flag too but has no effect from the env. */
    char *env4[] = {"ETCD_VERSION=true", NULL};
    RUN0(&r, env4);
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.outcome, CONFIG_RUN);
    CHECK(!contains(r.warn.data, "unrecognized"));
    run_close(&r);
}

/* ---- bad flags and values ---- */

TEST(config_unknown_flag_refused)
{
    struct run r = {0};
    RUN(&r, NULL, "--no-such-flag=1");
    CHECK_ERR(&r, "flag provided but not defined", "-no-such-flag");
    RUN(&r, NULL, "--ca-file", "x"); /* removed before etcd 3.4 */
    CHECK_ERR(&r, "not defined", "ca-file");
    RUN(&r, NULL, "---name=x");
    CHECK_ERR(&r, "bad flag syntax", "---name=x");
    RUN(&r, NULL, "-=x");
    CHECK_ERR(&r, "bad flag syntax", "-=x");
    RUN(&r, NULL, "--name");
    CHECK_ERR(&r, "flag needs an argument", "-name");
    RUN(&r, NULL, "stray");
    CHECK_ERR(&r, "'stray'", "not a valid flag");
    RUN(&r, NULL, "--", "--name=x");
    CHECK_ERR(&r, "'--name=x'", "not a valid flag");
    RUN(&r, NULL, "-");
    CHECK_ERR(&r, "'-'", "not a valid flag");
    run_close(&r);
}

TEST(config_numbers_follow_go_rules)
{
    struct run r = {0};
    RUN(&r, NULL, "--snapshot-count=0x10", "--max-wals=010",
        "--max-snapshots=1_0", "--max-request-bytes=0b101");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.snapshot_count, 16);
    CHECK_EQ(r.cfg.max_wals, 8);
    CHECK_EQ(r.cfg.max_snapshots, 10);
    CHECK_EQ(r.cfg.max_request_bytes, 5);
    const char *bad[] = {"abc",
                         "-5",
                         "+5",
                         "1e5",
                         " 5",
                         "",
                         "_1",
                         "1__0",
                         "09",
                         "0x",
                         "18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char a[64];
        snprintf(a, sizeof(a), "--snapshot-count=%s", bad[i]);
        RUN(&r, NULL, a);
        CHECK_ERR(&r, "--snapshot-count", "invalid value");
    }
    RUN(&r, NULL, "--snapshot-count=18446744073709551615");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.snapshot_count, 18446744073709551615ull);
    RUN(&r, NULL, "--snapshot-count=18446744073709551616");
    CHECK_HAS(r.err, "out of range");
    /* Go's uint is 64-bit, cairn keeps milliseconds in 32 bits. */
    RUN(&r, NULL, "--heartbeat-interval=4294967296");
    CHECK_ERR(&r, "--heartbeat-interval", "out of range");
    RUN(&r, NULL, "--max-concurrent-streams=5000000000");
    CHECK_ERR(&r, "--max-concurrent-streams", "out of range");
    RUN(&r, NULL, "--quota-backend-bytes=-1", "--backend-batch-limit=-3");
    CHECK_EQ(r.rc, CN_OK);
    RUN(&r, NULL, "--quota-backend-bytes=8589934592");
    CHECK_EQ(r.cfg.quota_backend_bytes, 8589934592ull);
    run_close(&r);
}

TEST(config_durations_follow_go_rules)
{
    struct run r = {0};
    const char *good[] = {"0",     "5s", "1h5m.5s", "-1s",        ".5s", "1.s",
                          "300ms", "2h", "1us",     "1\xc2\xb5s", "+3m"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char a[64];
        snprintf(a, sizeof(a), "--grpc-keepalive-min-time=%s", good[i]);
        RUN(&r, NULL, a);
        CHECK_EQ(r.rc, CN_OK);
    }
    const char *bad[] = {"5", "1d", "", ".s", "s", "1h-5m", "99999999999h"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char a[64];
        snprintf(a, sizeof(a), "--grpc-keepalive-min-time=%s", bad[i]);
        RUN(&r, NULL, a);
        CHECK_ERR(&r, "--grpc-keepalive-min-time", "invalid value");
    }
    run_close(&r);
}

TEST(config_choices_checked)
{
    struct run r = {0};
    RUN(&r, NULL, "--initial-cluster-state=existing");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.initial_cluster_state_existing, 1);
    RUN(&r, NULL, "--initial-cluster-state=NEW");
    CHECK_ERR(&r, "--initial-cluster-state", "\"NEW\"");
    RUN(&r, NULL, "--discovery-fallback", "exit");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.discovery_fallback, "exit");
    RUN(&r, NULL, "--discovery-fallback", "bogus");
    CHECK_ERR(&r, "--discovery-fallback", "bogus");
    RUN(&r, NULL, "--log-level", "verbose");
    CHECK_ERR(&r, "--log-level", "verbose");
    RUN(&r, NULL, "--proxy", "bogus");
    CHECK_ERR(&r, "--proxy", "bogus");
    const char *lv[] = {"debug", "info", "warn", "error", "panic", "fatal"};
    const int want[] = {CN_LOG_DEBUG, CN_LOG_INFO,  CN_LOG_WARN,
                        CN_LOG_ERROR, CN_LOG_ERROR, CN_LOG_ERROR};
    for (int i = 0; i < 6; i++) {
        char a[64];
        snprintf(a, sizeof(a), "--log-level=%s", lv[i]);
        RUN(&r, NULL, a);
        CHECK_EQ(r.rc, CN_OK);
        CHECK_EQ(r.cfg.log_level, want[i]);
    }
    RUN(&r, NULL, "--logger=zap", "--auto-compaction-mode=revision");
    CHECK_EQ(r.rc, CN_OK);
    RUN(&r, NULL, "--logger=syslog");
    CHECK_ERR(&r, "--logger", "unknown logger");
    RUN(&r, NULL, "--auto-compaction-mode=weekly");
    CHECK_ERR(&r, "--auto-compaction-mode", "unknown");
    run_close(&r);
}

TEST(config_timing_sanity_checks_like_etcd)
{
    struct run r = {0};
    RUN(&r, NULL, "--heartbeat-interval", "300", "--election-timeout", "1000");
    CHECK_ERR(&r, "--election-timeout[1000ms] should be at least as 5 times",
              "--heartbeat-interval[300ms]");
    RUN(&r, NULL, "--heartbeat-interval", "200", "--election-timeout", "1000");
    CHECK_EQ(r.rc, CN_OK);
    RUN(&r, NULL, "--heartbeat-interval=0");
    CHECK_ERR(&r, "--heartbeat-interval must be >0", "0ms");
    RUN(&r, NULL, "--election-timeout=0");
    CHECK_ERR(&r, "--election-timeout must be >0", "0ms");
    RUN(&r, NULL, "--election-timeout=60000");
    CHECK_ERR(&r, "--election-timeout[60000ms] is too long", "50000ms");
    RUN(&r, NULL, "--election-timeout=50000");
    CHECK_EQ(r.rc, CN_OK);
    run_close(&r);
}

/* ---- refused and ignored flags ---- */

TEST(config_tls_flags_refused_when_set)
{
    static const char *const strs[] = {"cert-file",
                                       "key-file",
                                       "client-crl-file",
                                       "client-cert-allowed-hostname",
                                       "trusted-ca-file",
                                       "peer-cert-file",
                                       "peer-key-file",
                                       "peer-trusted-ca-file",
                                       "peer-cert-allowed-cn",
                                       "peer-cert-allowed-hostname",
                                       "peer-crl-file",
                                       "cipher-suites"};
    static const char *const bools[] = {"client-cert-auth", "auto-tls",
                                        "peer-client-cert-auth",
                                        "peer-auto-tls"};
    struct run r = {0};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        char a[96], want[96];
        snprintf(a, sizeof(a), "--%s=/etc/x", strs[i]);
        snprintf(want, sizeof(want), "--%s: TLS is not supported yet", strs[i]);
        RUN(&r, NULL, a);
        CHECK_ERR(&r, want, "TLS");
        snprintf(a, sizeof(a), "--%s=", strs[i]); /* the default: fine */
        RUN(&r, NULL, a);
        CHECK_EQ(r.rc, CN_OK);
    }
    for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++) {
        char a[96], want[96];
        snprintf(a, sizeof(a), "--%s", bools[i]);
        snprintf(want, sizeof(want), "--%s: TLS is not supported yet",
                 bools[i]);
        RUN(&r, NULL, a);
        CHECK_ERR(&r, want, "TLS");
        snprintf(a, sizeof(a), "--%s=false", bools[i]);
        RUN(&r, NULL, a);
        CHECK_EQ(r.rc, CN_OK);
    }
    run_close(&r);
}

TEST(config_proxy_https_and_config_file_refused)
{
    struct run r = {0};
    RUN(&r, NULL, "--proxy=on");
    CHECK_ERR(&r, "--proxy", "not supported yet");
    RUN(&r, NULL, "--proxy", "readonly");
    CHECK_ERR(&r, "--proxy", "not supported yet");
    RUN(&r, NULL, "--proxy", "off");
    CHECK_EQ(r.rc, CN_OK);
    RUN(&r, NULL, "--config-file=/etc/etcd.yml");
    CHECK_ERR(&r, "--config-file", "not supported yet");
    RUN(&r, NULL, "--listen-client-urls=https://127.0.0.1:2379",
        "--advertise-client-urls=http://127.0.0.1:2379");
    CHECK_ERR(&r, "--listen-client-urls", "TLS");
    RUN(&r, NULL, "--advertise-client-urls=https://a:2379");
    CHECK_ERR(&r, "--advertise-client-urls", "TLS");
    RUN(&r, NULL, "--initial-cluster=default=https://localhost:2380");
    CHECK_ERR(&r, "--initial-cluster", "TLS");
    /* A refused flag still lets --version through, as in etcd. */
    RUN(&r, NULL, "--cert-file=x", "--version");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.outcome, CONFIG_EXIT_OK);
    run_close(&r);
}

TEST(config_v3_flags_accepted_and_ignored)
{
    struct run r = {0};
    RUN(&r, NULL, "--enable-pprof", "--metrics=extensive",
        "--auto-compaction-retention=1h", "--max-txn-ops=1000",
        "--grpc-keepalive-interval=1h", "--experimental-initial-corrupt-check",
        "--experimental-enable-v2v3=/v2", "--log-outputs=stderr",
        "--auth-token=jwt", "--bcrypt-cost=12", "--enable-grpc-gateway=false",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        "--experimental-peer-skip-client-san-verification");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_HAS(r.warn.data, "--enable-pprof is accepted and ignored");
    CHECK_HAS(r.warn.data, "--metrics is accepted and ignored");
    /* Given at its default: no warning. */
    RUN(&r, NULL, "--enable-pprof=false", "--metrics=basic");
    CHECK_EQ(r.warn.len, 0);
    RUN(&r, NULL, "--listen-metrics-urls=nonsense");
    CHECK_ERR(&r, "--listen-metrics-urls", "nonsense");
    RUN(&r, NULL, "--experimental-enable-lease-checkpoint-persist");
    CHECK_ERR(&r, "lease-checkpoint-persist", "requires");
    RUN(&r, NULL, "--experimental-enable-lease-checkpoint-persist",
        "--experimental-enable-lease-checkpoint");
    CHECK_EQ(r.rc, CN_OK);
    run_close(&r);
}

TEST(config_old_flags_warn_like_etcd)
{
    struct run r = {0};
    RUN(&r, NULL, "-v", "--peer-election-timeout", "--name", "n",
        "-snapshot=whatever");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.name, "n");
    CHECK_HAS(r.warn.data, "flag \"-v\" is no longer supported - ignoring.");
    CHECK_HAS(r.warn.data, "\"-peer-election-timeout\" is no longer");
    CHECK_HAS(r.warn.data, "\"-snapshot\" is no longer");
    run_close(&r);
}

/* Every flag `etcd --help` (3.4.23) lists, with a value etcd accepts. */
TEST(config_every_etcd_help_flag_accepted)
{
    static const char *const flags[] = {
        "--name=x", "--data-dir=d", "--wal-dir=w", "--snapshot-count=10",
        "--heartbeat-interval=100", "--election-timeout=1000",
        "--initial-election-tick-advance=false",
        "--listen-peer-urls=http://127.0.0.1:2380",
        "--listen-client-urls=http://127.0.0.1:2379", "--max-snapshots=1",
        "--max-wals=1", "--quota-backend-bytes=0",
        "--backend-batch-interval=10ms", "--backend-batch-limit=0",
        "--max-txn-ops=128", "--max-request-bytes=1572864",
        "--max-concurrent-streams=100", "--grpc-keepalive-min-time=5s",
        "--grpc-keepalive-interval=2h", "--grpc-keepalive-timeout=20s",
        "--initial-advertise-peer-urls=http://127.0.0.1:2380",
        "--initial-cluster=x=http://127.0.0.1:2380",
        "--initial-cluster-state=new", "--initial-cluster-token=t",
        "--advertise-client-urls=http://127.0.0.1:2379",
        "--discovery=", "--discovery-fallback=proxy",
        "--discovery-proxy=", "--discovery-srv=", "--discovery-srv-name=",
        "--strict-reconfig-check=true", "--pre-vote=false",
        "--auto-compaction-retention=0", "--auto-compaction-mode=periodic",
        "--enable-v2=true",
        "--cert-file=", "--key-file=", "--client-cert-auth=false",
        "--client-crl-file=", "--client-cert-allowed-hostname=",
        "--trusted-ca-file=", "--auto-tls=false", "--peer-cert-file=",
        "--peer-key-file=", "--peer-client-cert-auth=false",
        "--peer-trusted-ca-file=", "--peer-cert-allowed-cn=",
        "--peer-cert-allowed-hostname=", "--peer-auto-tls=false",
        "--peer-crl-file=", "--cipher-suites=", "--cors=*",
        "--host-whitelist=*", "--auth-token=simple", "--bcrypt-cost=10",
        "--auth-token-ttl=300", "--enable-pprof=false", "--metrics=basic",
        "--listen-metrics-urls=http://127.0.0.1:2381", "--logger=capnslog",
        "--log-outputs=default", "--log-level=info", "--proxy=off",
        "--proxy-failure-wait=5000", "--proxy-refresh-interval=30000",
        "--proxy-dial-timeout=1000", "--proxy-write-timeout=5000",
        "--proxy-read-timeout=0", "--experimental-initial-corrupt-check=false",
        "--experimental-corrupt-check-time=0s", "--experimental-enable-v2v3=",
        "--experimental-backend-bbolt-freelist-type=array",
        "--experimental-enable-lease-checkpoint=false",
        "--experimental-compaction-batch-limit=1000",
        "--experimental-peer-skip-client-san-verification=false",
        "--experimental-watch-progress-notify-interval=10m",
        "--experimental-warning-apply-duration=100ms",
        "--force-new-cluster=false", "--debug=false", "--log-package-levels=",
        /* in etcd 3.4.23 but not in its help */
        "--config-file=", "--log-output=default", "--enable-grpc-gateway",
        "--unsafe-no-fsync=false",
        "--experimental-enable-lease-checkpoint-persist=false"};
    struct run r = {0};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        char *argv[] = {"cairn", (char *)flags[i],
                        "--advertise-client-urls=http://127.0.0.1:2379", NULL};
        run_argv(&r, NULL, argv);
        if (r.rc != CN_OK)
            tap_fail(__FILE__, __LINE__, "%s: %s", flags[i], r.err);
    }
    /* All at once, too. */
    char *argv[sizeof(flags) / sizeof(flags[0]) + 2];
    argv[0] = "cairn";
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        argv[i + 1] = (char *)flags[i];
    argv[sizeof(flags) / sizeof(flags[0]) + 1] = NULL;
    run_argv(&r, NULL, argv);
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.err, "");
    run_close(&r);
}

/* ---- --help and --version ---- */

TEST(config_help_prints_groups_and_defaults)
{
    struct run r = {0};
    const char *forms[] = {"--help", "-h", "-help", "--help=1", "--h"};
    for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        char *argv[] = {"cairn", (char *)forms[i], "--no-such-flag", NULL};
        run_argv(&r, NULL, argv);
        CHECK_EQ(r.rc, CN_OK);
        CHECK_EQ(r.outcome, CONFIG_EXIT_OK);
        CHECK_HAS(r.out.data, "Usage:");
    }
    CHECK_HAS(r.out.data, "\nMember:\n  --name 'default'\n");
    CHECK_HAS(r.out.data, "\nClustering:\n");
    CHECK_HAS(r.out.data, "\nSecurity:\n");
    CHECK_HAS(r.out.data, "\nLogging:\n");
    CHECK_HAS(r.out.data, "\nv2 Proxy (to be deprecated in v4):\n");
    CHECK_HAS(r.out.data, "\nExperimental feature:\n");
    CHECK_HAS(r.out.data, "\nUnsafe feature:\n");
    CHECK_HAS(r.out.data, "--data-dir '${name}.cairn'");
    CHECK_HAS(r.out.data, "--initial-cluster 'default=http://localhost:2380'");
    CHECK_HAS(r.out.data, "--heartbeat-interval '100'");
    CHECK_HAS(r.out.data, "--max-request-bytes '1572864'");
    CHECK_HAS(r.out.data, "--cert-file ''\n    Path to the client server TLS "
                          "cert file.\n    [cairn: TLS is not supported");
    CHECK(!contains(r.out.data, "cluster-active-size"));
    /* An error before --help wins, as in Go's flag package. */
    RUN(&r, NULL, "--bogus", "--help");
    CHECK_ERR(&r, "not defined", "bogus");
    run_close(&r);
}

TEST(config_version_mimics_etcd_shape)
{
    struct run r = {0};
    RUN(&r, NULL, "--version");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_EQ(r.outcome, CONFIG_EXIT_OK);
    REQUIRE(r.out.data != NULL);
    CHECK(strncmp(r.out.data, "cairn Version: " CN_VERSION "\nGit SHA: ",
                  strlen("cairn Version: " CN_VERSION "\nGit SHA: ")) == 0);
    CHECK_HAS(r.out.data, "\nGo Version: n/a\nGo OS/Arch: linux/");
    int lines = 0;
    for (const char *p = r.out.data; *p; p++)
        lines += *p == '\n';
    CHECK_EQ(lines, 4);
    RUN(&r, NULL, "-version=true", "--heartbeat-interval=0");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.outcome, CONFIG_EXIT_OK);
    RUN(&r, NULL, "--version=false");
    CHECK_EQ(r.outcome, CONFIG_RUN);
    /* NULL out is allowed. */
    char *argv[] = {"cairn", "--version", NULL};
    int outcome = -1;
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(config_parse(&r.cfg, 2, argv, NULL, &outcome, NULL, NULL, err),
             CN_OK);
    CHECK_EQ(outcome, CONFIG_EXIT_OK);
    run_close(&r);
}

/* ---- URLs ---- */

TEST(config_url_parse_accepts_etcd_forms)
{
    struct cn_url u;
    char err[CN_ERRMSG_SIZE];
    REQUIRE_EQ(config_url_parse("http://127.0.0.1:2379", &u, err), CN_OK);
    CHECK_STR(u.scheme, "http");
    CHECK_STR(u.host, "127.0.0.1");
    CHECK_EQ(u.port, 2379);
    CHECK_STR(u.raw, "http://127.0.0.1:2379");
    REQUIRE_EQ(config_url_parse("http://[::1]:4001", &u, err), CN_OK);
    CHECK_STR(u.host, "::1");
    CHECK_EQ(u.port, 4001);
    CHECK_STR(u.raw, "http://[::1]:4001");
    REQUIRE_EQ(config_url_parse("HTTPS://Node-1.example.com:443", &u, err),
               CN_OK);
    CHECK_STR(u.scheme, "https");
    CHECK_STR(u.host, "Node-1.example.com");
    CHECK_EQ(u.port, 443);
    REQUIRE_EQ(config_url_parse("  http://a:0  ", &u, err), CN_OK);
    CHECK_EQ(u.port, 0);
    CHECK_STR(u.raw, "http://a:0");
    REQUIRE_EQ(config_url_parse("http://a:65535", &u, err), CN_OK);
    CHECK_EQ(u.port, 65535);
}

TEST(config_url_parse_refuses_bad_urls)
{
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"http://127.0.0.1", "host:port"}, /* etcd needs the port */
        {"http://a:", "no port"},
        {"http://a:x", "bad port"},
        {"http://a:65536", "out of range"},
        {"http://:2379", "empty host"},
        {"localhost:2379", "scheme"},
        {"ftp://a:1", "scheme"},
        {"unix://a:1", "unix"},
        {"http://a:1/", "path"},
        {"http://a:1/v2", "path"},
        {"http://a:1?x=1", "query"},
        {"http://a:1#f", "fragment"},
        {"http://u@a:1", "user info"},
        {"http://::1:2379", "host:port"},
        {"http://[::1]", "host:port"},
        {"http://[zz]:1", "IPv6"},
        {"http://[::1:1", "]"},
        {"http://a b:1", "bad host"},
        {"", "scheme"},
    };
    struct cn_url u;
    char err[CN_ERRMSG_SIZE];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        if (config_url_parse(bad[i].url, &u, err) != CN_EINVAL)
            tap_fail(__FILE__, __LINE__, "accepted %s", bad[i].url);
        else if (!contains(err, bad[i].why))
            tap_fail(__FILE__, __LINE__, "%s: \"%s\" lacks \"%s\"", bad[i].url,
                     err, bad[i].why);
    }
    char longurl[400] = "http://";
    memset(longurl + 7, 'a', 300);
    strcpy(longurl + 307, ":1");
    CHECK_EQ(config_url_parse(longurl, &u, err), CN_EINVAL);
}

TEST(config_url_lists_sorted_deduplicated_limited)
{
    struct run r = {0};
    RUN(&r, NULL,
        "--listen-client-urls=http://127.0.0.2:2, http://127.0.0.1:1 ,"
        "http://127.0.0.2:2",
        "--advertise-client-urls=http://b:1,http://a:1");
    REQUIRE_EQ(r.rc, CN_OK);
    REQUIRE_EQ(r.cfg.listen_client_urls.count, 2);
    CHECK_STR(r.cfg.listen_client_urls.urls[0].raw, "http://127.0.0.1:1");
    CHECK_STR(r.cfg.listen_client_urls.urls[1].raw, "http://127.0.0.2:2");
    CHECK_STR(r.cfg.advertise_client_urls.urls[0].host, "a");
    RUN(&r, NULL, "--listen-peer-urls=http://127.0.0.1:1,,http://127.0.0.1:2");
    CHECK_ERR(&r, "--listen-peer-urls", "scheme");
    char many[2048] = "--listen-peer-urls=";
    for (int i = 0; i <= CN_CONFIG_URLS_MAX; i++) {
        char one[40];
        snprintf(one, sizeof(one), "%shttp://127.0.0.1:%d", i ? "," : "",
                 1000 + i);
        strcat(many, one);
    }
    RUN(&r, NULL, many);
    CHECK_ERR(&r, "--listen-peer-urls", "more than 16");
    /* Exactly the maximum is fine. */
    *strrchr(many, ',') = '\0';
    RUN(&r, NULL, many);
    CHECK_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.listen_peer_urls.count, CN_CONFIG_URLS_MAX);
    run_close(&r);
}

TEST(config_listen_urls_need_ip_and_advertise)
{
    struct run r = {0};
    RUN(&r, NULL, "--listen-client-urls=http://foo:2379",
        "--advertise-client-urls=http://foo:2379");
    CHECK_ERR(&r, "--listen-client-urls",
              "expected IP in URL for binding (http://foo:2379)");
    RUN(&r, NULL, "--listen-peer-urls=http://[::]:2380,http://0.0.0.0:2381");
    CHECK_EQ(r.rc, CN_OK);
    RUN(&r, NULL, "--listen-client-urls=http://127.0.0.1:2379");
    CHECK_ERR(&r, "--advertise-client-urls is required",
              "--listen-client-urls is set explicitly");
    char *env[] = {"ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:2379", NULL};
    RUN0(&r, env);
    CHECK_ERR(&r, "--advertise-client-urls is required", "explicitly");
    /* Discovery with the proxy fallback keeps the default advertise URL. */
    RUN(&r, NULL, "--listen-client-urls=http://127.0.0.1:2379",
        "--discovery=https://discovery.etcd.io/abc");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.advertise_client_urls.urls[0].raw, "http://localhost:2379");
    run_close(&r);
}

TEST(config_cors_is_star_or_urls)
{
    struct run r = {0};
    RUN(&r, NULL, "--cors=*");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.cors, "*");
    RUN(&r, NULL, "--cors=http://example.com:80,https://b.org:443");
    CHECK_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.cors, "http://example.com:80,https://b.org:443");
    RUN(&r, NULL, "--cors=http://example.com"); /* etcd 3.4 wants a port */
    CHECK_ERR(&r, "--cors", "host:port");
    RUN(&r, NULL, "--cors=");
    CHECK_ERR(&r, "--cors", "invalid value");
    run_close(&r);
}

/* ---- initial cluster ---- */

TEST(config_initial_cluster_parsing)
{
    struct run r = {0};
    RUN(&r, NULL, "--name=a", "--initial-advertise-peer-urls",
        "http://10.0.0.1:2380,http://10.0.0.1:2390", "--initial-cluster",
        "a=http://10.0.0.1:2380,,b=http://10.0.0.2:2380,"
        "a=http://10.0.0.1:2390,c=http://[fd00::3]:2380");
    REQUIRE_EQ(r.rc, CN_OK);
    REQUIRE_EQ(r.cfg.initial_cluster_count, 4);
    CHECK_EQ(r.cfg.initial_cluster_set, 1);
    CHECK_STR(r.cfg.initial_cluster[0].name, "a");
    CHECK_STR(r.cfg.initial_cluster[1].name, "b");
    CHECK_STR(r.cfg.initial_cluster[1].url.host, "10.0.0.2");
    CHECK_STR(r.cfg.initial_cluster[2].name, "a");
    CHECK_EQ(r.cfg.initial_cluster[2].url.port, 2390);
    CHECK_STR(r.cfg.initial_cluster[3].url.host, "fd00::3");
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_OK);

    RUN(&r, NULL, "--initial-cluster=garbage");
    CHECK_ERR(&r, "--initial-cluster", "not name=url");
    RUN(&r, NULL, "--initial-cluster==http://a:1");
    CHECK_ERR(&r, "--initial-cluster", "no name");
    RUN(&r, NULL, "--initial-cluster=a=http://a");
    CHECK_ERR(&r, "--initial-cluster", "host:port");
    RUN(&r, NULL, "--initial-cluster=a=");
    CHECK_ERR(&r, "--initial-cluster", "scheme");
    char many[8192] = "--initial-cluster=";
    for (int i = 0; i <= CN_CONFIG_MEMBERS_MAX; i++) {
        char one[48];
        snprintf(one, sizeof(one), "%sn%d=http://10.0.0.1:%d", i ? "," : "", i,
                 2000 + i);
        strcat(many, one);
    }
    RUN(&r, NULL, many);
    CHECK_ERR(&r, "--initial-cluster", "more than 64");
    run_close(&r);
}

TEST(config_initial_cluster_default_computed_like_etcd)
{
    struct run r = {0};
    RUN(&r, NULL, "--name", "n1", "--initial-advertise-peer-urls",
        "http://127.0.0.1:7002,http://127.0.0.1:7001");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_EQ(r.cfg.initial_cluster_set, 0);
    REQUIRE_EQ(r.cfg.initial_cluster_count, 2);
    CHECK_STR(r.cfg.initial_cluster[0].name, "n1");
    CHECK_STR(r.cfg.initial_cluster[0].url.raw, "http://127.0.0.1:7001");
    CHECK_STR(r.cfg.initial_cluster[1].url.raw, "http://127.0.0.1:7002");
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_OK);

    /* etcd keeps default=http://localhost:2380 for the name "default",
     * so its bootstrap check then fails. */
    RUN(&r, NULL, "--initial-advertise-peer-urls=http://127.0.0.1:7001");
    REQUIRE_EQ(r.rc, CN_OK);
    REQUIRE_EQ(r.cfg.initial_cluster_count, 1);
    CHECK_STR(r.cfg.initial_cluster[0].url.raw, "http://localhost:2380");
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_EINVAL);
    CHECK_HAS(err, "--initial-cluster has default=http://localhost:2380 but "
                   "missing from --initial-advertise-peer-urls");

    /* Given explicitly as etcd's default string: still replaced. */
    RUN(&r, NULL, "--name=n1",
        "--initial-cluster=default=http://localhost:2380");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.initial_cluster[0].name, "n1");
    CHECK_EQ(r.cfg.initial_cluster_set, 1);
    run_close(&r);
}

TEST(config_discovery_stored_and_exclusive)
{
    struct run r = {0};
    RUN(&r, NULL, "--discovery", "https://discovery.etcd.io/3e86b59982e",
        "--discovery-proxy=http://proxy:3128", "--name=n1");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.discovery, "https://discovery.etcd.io/3e86b59982e");
    CHECK_STR(r.cfg.discovery_proxy, "http://proxy:3128");
    CHECK_EQ(r.cfg.initial_cluster_count, 0);
    char err[CN_ERRMSG_SIZE];
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_OK);
    RUN(&r, NULL, "--discovery-srv=example.com", "--discovery-srv-name=x");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_STR(r.cfg.discovery_srv, "example.com");
    CHECK_STR(r.cfg.discovery_srv_name, "x");
    CHECK_EQ(r.cfg.initial_cluster_count, 0);
    RUN(&r, NULL, "--discovery=http://d:1/x", "--initial-cluster",
        "a=http://127.0.0.1:1");
    CHECK_ERR(&r, "multiple discovery or bootstrap flags",
              "\"initial-cluster\"");
    RUN(&r, NULL, "--discovery=http://d:1/x", "--discovery-srv=e.com");
    CHECK_ERR(&r, "multiple discovery", "discovery-srv");
    run_close(&r);
}

TEST(config_verify_bootstrap_catches_mismatches)
{
    struct run r = {0};
    char err[CN_ERRMSG_SIZE];
    RUN(&r, NULL, "--name=a", "--initial-cluster=b=http://127.0.0.1:1");
    REQUIRE_EQ(r.rc, CN_OK);
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_EINVAL);
    CHECK_HAS(err, "couldn't find local name \"a\"");
    RUN(&r, NULL, "--name=a", "--initial-advertise-peer-urls",
        "http://127.0.0.1:1,http://127.0.0.1:2",
        "--initial-cluster=a=http://127.0.0.1:1");
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_EINVAL);
    CHECK_HAS(err, "--initial-advertise-peer-urls has http://127.0.0.1:2 "
                   "but missing from --initial-cluster");
    RUN(&r, NULL, "--name=a", "--initial-advertise-peer-urls",
        "http://127.0.0.1:1",
        "--initial-cluster=a=http://127.0.0.1:1,b=http://127.0.0.1:1");
    CHECK_EQ(config_verify_bootstrap(&r.cfg, err), CN_EINVAL);
    CHECK_HAS(err, "duplicate url");
    run_close(&r);
}

/* ---- resources ---- */

TEST(config_warning_buffer_enomem_reported)
{
    struct run r = {0};
    char *env[] = {"ETCD_FOO=1", NULL};
    cn_mem_fault_arm(1, 1);
    RUN0(&r, env);
    cn_mem_fault_disarm();
    CHECK_EQ(r.rc, CN_ENOMEM);
    CHECK_HAS(r.err, "out of memory");
    /* Without buffers nothing is allocated at all. */
    char *argv[] = {"cairn", "--help", NULL};
    int outcome;
    char err[CN_ERRMSG_SIZE];
    long before = cn_mem_alloc_count();
    CHECK_EQ(config_parse(&r.cfg, 2, argv, env, &outcome, NULL, NULL, err),
             CN_OK);
    CHECK_EQ(cn_mem_alloc_count(), before);
    run_close(&r);
}
