/*
 * config: etcd 3.4's command line and ETCD_* variables -> struct cn_config.
 *
 * Every flag takes "-flag value", "--flag value" or "--flag=value"; boolean
 * flags also "--flag" alone and "--flag=true|false". Every flag --some-name
 * also reads ETCD_SOME_NAME; the command line wins. Defaults are etcd's
 * (data dir "${name}.cairn"). No other module reads flags or the
 * environment: they take what they need from struct cn_config.
 */
#ifndef CN_CONFIG_H
#define CN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define CN_CONFIG_URLS_MAX 16
#define CN_CONFIG_MEMBERS_MAX 64

/* A parsed http(s)://host:port URL. */
struct cn_url {
    char raw[256];  /* e.g. "http://127.0.0.1:2379" (scheme lower-cased) */
    char scheme[8]; /* "http" or "https" */
    char host[200]; /* name or address, no brackets for IPv6 */
    uint16_t port;  /* explicit: etcd refuses a URL without a port */
};

struct cn_url_list {
    struct cn_url urls[CN_CONFIG_URLS_MAX];
    int count;
};

/* One entry of --initial-cluster: name=url (a name may repeat with several
 * URLs; each pair is one entry). */
struct cn_member_spec {
    char name[128];
    struct cn_url url;
};

struct cn_config {
    /* member */
    char name[128];                        /* --name (default) */
    char data_dir[1024];                   /* --data-dir (${name}.cairn) */
    char wal_dir[1024];                    /* --wal-dir ("": inside data dir) */
    uint64_t snapshot_count;               /* --snapshot-count (100000) */
    unsigned heartbeat_interval_ms;        /* --heartbeat-interval (100) */
    unsigned election_timeout_ms;          /* --election-timeout (1000) */
    unsigned max_snapshots;                /* --max-snapshots (5) */
    unsigned max_wals;                     /* --max-wals (5) */
    uint64_t max_request_bytes;            /* --max-request-bytes (1572864) */
    uint64_t quota_backend_bytes;          /* --quota-backend-bytes (0) */
    struct cn_url_list listen_client_urls; /* http://localhost:2379 */
    struct cn_url_list listen_peer_urls;   /* http://localhost:2380 */
    /* clustering */
    struct cn_url_list advertise_client_urls;       /* http://localhost:2379 */
    struct cn_url_list initial_advertise_peer_urls; /* localhost:2380 */
    struct cn_member_spec initial_cluster[CN_CONFIG_MEMBERS_MAX];
    int initial_cluster_count;          /* default=http://localhost:2380 */
    int initial_cluster_set;            /* given explicitly */
    int initial_cluster_state_existing; /* --initial-cluster-state */
    char initial_cluster_token[256];    /* (etcd-cluster) */
    char discovery[1024];               /* --discovery URL ("") */
    char discovery_fallback[16];        /* "proxy" (etcd default) / "exit" */
    char discovery_proxy[1024];
    char discovery_srv[256];
    int strict_reconfig_check; /* (true) */
    int force_new_cluster;     /* (false) */
    int enable_v2;             /* accepted; cairn always serves v2 */
    char cors[1024];           /* --cors ("") */
    /* logging */
    int debug;     /* --debug */
    int log_level; /* enum cn_log_level (info) */
    /* added after the first contract (all parsed from etcd's flags) */
    char discovery_srv_name[256];      /* --discovery-srv-name ("") */
    char host_whitelist[1024];         /* --host-whitelist ("*") */
    int pre_vote;                      /* --pre-vote (false) */
    int initial_election_tick_advance; /* (true) */
    int unsafe_no_fsync;               /* --unsafe-no-fsync (false) */
};

enum config_outcome {
    CONFIG_RUN = 0,     /* start the server */
    CONFIG_EXIT_OK = 1, /* --help or --version printed to out: exit 0 */
};

/* Fills cfg from argv (argv[0] is the program) and envp (NULL-terminated
 * "K=V" strings; may be NULL). On success returns CN_OK and *outcome; help
 * and version text is appended to out. On a bad flag or value returns
 * CN_EINVAL with a one-line reason in errmsg (the caller exits with status
 * 2). Flags for features cairn does not have yet (TLS, proxy...) are
 * parsed and refused with CN_EINVAL and a message that says so. Warnings
 * (e.g. "flag shadows ETCD_X") are appended to warnings, one per line. */
/*
 * Details of config_parse (see docs/flags.md for every flag):
 * - errmsg does not start with the program name: main prints
 *   "cairn: <errmsg>". It names the flag ("--heartbeat-interval: invalid
 *   value \"x\": parse error") or the variable ("ETCD_NAME (--name): ...").
 * - Also returns CN_ENOMEM if appending to out or warnings fails.
 * - out and warnings may be NULL (nothing is written).
 * - A flag and its ETCD_ variable both set: the flag wins, with a warning
 *   (etcd 3.4 itself exits in that case).
 * - URL lists come back sorted by text without duplicates, as etcd keeps
 *   them. initial_cluster keeps the given order. With only --name given,
 *   initial_cluster is name=each initial-advertise-peer-url; with the name
 *   "default" it stays default=http://localhost:2380, as in etcd.
 * - log_level: debug/info/warn map to CN_LOG_*, error/panic/fatal to
 *   CN_LOG_ERROR; --debug forces CN_LOG_DEBUG.
 * - cors stays "" unless given ("" and "*" both mean allow all, as etcd).
 */
int config_parse(struct cn_config *cfg, int argc, char **argv, char **envp,
                 int *outcome, struct cn_buf *out, struct cn_buf *warnings,
                 char errmsg[CN_ERRMSG_SIZE]);

/* Parses one URL ("http://h:p"). CN_OK or CN_EINVAL with errmsg set. */
int config_url_parse(const char *s, struct cn_url *url,
                     char errmsg[CN_ERRMSG_SIZE]);

/* etcd's bootstrap checks on the flags alone (etcdserver VerifyBootstrap,
 * without DNS: URLs are compared as text): the initial cluster names this
 * member, its URLs there equal --initial-advertise-peer-urls, no URL is
 * used twice, and there is an initial cluster or a discovery URL. For a new
 * member with an empty data dir. CN_OK or CN_EINVAL with errmsg. */
int config_verify_bootstrap(const struct cn_config *cfg,
                            char errmsg[CN_ERRMSG_SIZE]);

/* cairn's own version, reported as "etcdserver" by /version. */
#define CN_VERSION "0.1.0"
#define CN_CLUSTER_VERSION "3.4.0"

#endif
