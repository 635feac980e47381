/*
 * config_int: private to src/config. The flag table (one X-macro row per
 * etcd 3.4.23 flag), value parsers that copy Go's flag package rules, and
 * URL-list helpers.
 *
 * Every row says how cairn treats the flag:
 *   USE     parsed into struct cn_config and used by cairn
 *   STORE   parsed into struct cn_config for later work (discovery...)
 *   IGNORE  validated like etcd does, then ignored (etcd v3 backend only)
 *   TLS     refused when set to anything but its default (no TLS yet)
 *   REFUSE  refused when set to anything but its default (other features)
 *   OLD     one of etcd's "no longer supported - ignoring" flags
 *   VERSION --version
 */
#ifndef CN_CONFIG_INT_H
#define CN_CONFIG_INT_H

#include <stdint.h>

#include "config.h"

enum config_kind {
    CONFIG_K_BOOL,     /* Go bool: bare flag = true; 1 t T TRUE true True... */
    CONFIG_K_STRING,   /* any text, empty allowed */
    CONFIG_K_UINT,     /* Go uint (64-bit), base prefixes 0x 0o 0b 0 */
    CONFIG_K_UINT32,   /* etcd's Uint32Value */
    CONFIG_K_INT,      /* Go int (64-bit), signed */
    CONFIG_K_DURATION, /* Go time.Duration: "0", "300ms", "1h5m" */
    CONFIG_K_URLS,     /* comma-separated URL list */
    CONFIG_K_CHOICE,   /* one of a fixed set of words */
    CONFIG_K_OLD,      /* etcd's IgnoredFlag: behaves like a bool, any value */
};

enum config_treat {
    CONFIG_T_USE,
    CONFIG_T_STORE,
    CONFIG_T_IGNORE,
    CONFIG_T_TLS,
    CONFIG_T_REFUSE,
    CONFIG_T_OLD,
    CONFIG_T_VERSION,
};

/* Groups of `etcd --help`, in its order. HIDDEN flags exist in etcd 3.4.23
 * but its help does not list them. */
enum config_group {
    CONFIG_G_MEMBER,
    CONFIG_G_CLUSTERING,
    CONFIG_G_SECURITY,
    CONFIG_G_AUTH,
    CONFIG_G_PROFILING,
    CONFIG_G_LOGGING,
    CONFIG_G_PROXY,
    CONFIG_G_EXPERIMENTAL,
    CONFIG_G_UNSAFE,
    CONFIG_G_DEPRECATED,
    CONFIG_G_HIDDEN,
    CONFIG_G_COUNT,
};

/* X(id, name, kind, group, treat, default as help shows it, help text) */
#define CONFIG_FLAG_MAP(X)                                                     \
    X(NAME, "name", STRING, MEMBER, USE, "default",                            \
      "Human-readable name for this member.")                                  \
    X(DATA_DIR, "data-dir", STRING, MEMBER, USE, "${name}.cairn",              \
      "Path to the data directory.")                                           \
    X(WAL_DIR, "wal-dir", STRING, MEMBER, USE, "",                             \
      "Path to the dedicated wal directory.")                                  \
    X(SNAPSHOT_COUNT, "snapshot-count", UINT, MEMBER, USE, "100000",           \
      "Number of committed transactions to trigger a snapshot to disk.")       \
    X(HEARTBEAT_INTERVAL, "heartbeat-interval", UINT, MEMBER, USE, "100",      \
      "Time (in milliseconds) of a heartbeat interval.")                       \
    X(ELECTION_TIMEOUT, "election-timeout", UINT, MEMBER, USE, "1000",         \
      "Time (in milliseconds) for an election to timeout.")                    \
    X(INITIAL_ELECTION_TICK_ADVANCE, "initial-election-tick-advance", BOOL,    \
      MEMBER, STORE, "true",                                                   \
      "Whether to fast-forward initial election ticks on boot.")               \
    X(LISTEN_PEER_URLS, "listen-peer-urls", URLS, MEMBER, USE,                 \
      "http://localhost:2380", "List of URLs to listen on for peer traffic.")  \
    X(LISTEN_CLIENT_URLS, "listen-client-urls", URLS, MEMBER, USE,             \
      "http://localhost:2379",                                                 \
      "List of URLs to listen on for client traffic.")                         \
    X(MAX_SNAPSHOTS, "max-snapshots", UINT, MEMBER, USE, "5",                  \
      "Maximum number of snapshot files to retain (0 is unlimited).")          \
    X(MAX_WALS, "max-wals", UINT, MEMBER, USE, "5",                            \
      "Maximum number of wal files to retain (0 is unlimited).")               \
    X(QUOTA_BACKEND_BYTES, "quota-backend-bytes", INT, MEMBER, IGNORE, "0",    \
      "Raise alarms when backend size exceeds the given quota.")               \
    X(BACKEND_BATCH_INTERVAL, "backend-batch-interval", DURATION, MEMBER,      \
      IGNORE, "", "Maximum time before committing the backend transaction.")   \
    X(BACKEND_BATCH_LIMIT, "backend-batch-limit", INT, MEMBER, IGNORE, "0",    \
      "Maximum operations before committing the backend transaction.")         \
    X(MAX_TXN_OPS, "max-txn-ops", UINT, MEMBER, IGNORE, "128",                 \
      "Maximum number of operations permitted in a transaction.")              \
    X(MAX_REQUEST_BYTES, "max-request-bytes", UINT, MEMBER, USE, "1572864",    \
      "Maximum client request size in bytes the server will accept.")          \
    X(MAX_CONCURRENT_STREAMS, "max-concurrent-streams", UINT32, MEMBER,        \
      IGNORE, "math.MaxUint32",                                                \
      "Maximum concurrent streams that each client can open at a time.")       \
    X(GRPC_KEEPALIVE_MIN_TIME, "grpc-keepalive-min-time", DURATION, MEMBER,    \
      IGNORE, "5s",                                                            \
      "Minimum duration interval that a client should wait before pinging "    \
      "server.")                                                               \
    X(GRPC_KEEPALIVE_INTERVAL, "grpc-keepalive-interval", DURATION, MEMBER,    \
      IGNORE, "2h", "Frequency duration of server-to-client ping.")            \
    X(GRPC_KEEPALIVE_TIMEOUT, "grpc-keepalive-timeout", DURATION, MEMBER,      \
      IGNORE, "20s",                                                           \
      "Additional duration of wait before closing a non-responsive "           \
      "connection.")                                                           \
    X(INITIAL_ADVERTISE_PEER_URLS, "initial-advertise-peer-urls", URLS,        \
      CLUSTERING, USE, "http://localhost:2380",                                \
      "List of this member's peer URLs to advertise to the rest of the "       \
      "cluster.")                                                              \
    X(INITIAL_CLUSTER, "initial-cluster", STRING, CLUSTERING, USE,             \
      "default=http://localhost:2380",                                         \
      "Initial cluster configuration for bootstrapping.")                      \
    X(INITIAL_CLUSTER_STATE, "initial-cluster-state", CHOICE, CLUSTERING, USE, \
      "new", "Initial cluster state ('new' or 'existing').")                   \
    X(INITIAL_CLUSTER_TOKEN, "initial-cluster-token", STRING, CLUSTERING, USE, \
      "etcd-cluster",                                                          \
      "Initial cluster token for the cluster during bootstrap.")               \
    X(ADVERTISE_CLIENT_URLS, "advertise-client-urls", URLS, CLUSTERING, USE,   \
      "http://localhost:2379",                                                 \
      "List of this member's client URLs to advertise to the public.")         \
    X(DISCOVERY, "discovery", STRING, CLUSTERING, STORE, "",                   \
      "Discovery URL used to bootstrap the cluster.")                          \
    X(DISCOVERY_FALLBACK, "discovery-fallback", CHOICE, CLUSTERING, USE,       \
      "proxy",                                                                 \
      "Expected behavior ('exit' or 'proxy') when discovery services fails.")  \
    X(DISCOVERY_PROXY, "discovery-proxy", STRING, CLUSTERING, STORE, "",       \
      "HTTP proxy to use for traffic to discovery service.")                   \
    X(DISCOVERY_SRV, "discovery-srv", STRING, CLUSTERING, STORE, "",           \
      "DNS srv domain used to bootstrap the cluster.")                         \
    X(DISCOVERY_SRV_NAME, "discovery-srv-name", STRING, CLUSTERING, STORE, "", \
      "Suffix to the dns srv name queried when bootstrapping.")                \
    X(STRICT_RECONFIG_CHECK, "strict-reconfig-check", BOOL, CLUSTERING, USE,   \
      "true", "Reject reconfiguration requests that would cause quorum loss.") \
    X(PRE_VOTE, "pre-vote", BOOL, CLUSTERING, STORE, "false",                  \
      "Enable to run an additional Raft election phase.")                      \
    X(AUTO_COMPACTION_RETENTION, "auto-compaction-retention", STRING,          \
      CLUSTERING, IGNORE, "0",                                                 \
      "Auto compaction retention length. 0 means disable auto compaction.")    \
    X(AUTO_COMPACTION_MODE, "auto-compaction-mode", STRING, CLUSTERING,        \
      IGNORE, "periodic",                                                      \
      "Interpret 'auto-compaction-retention' one of: periodic|revision.")      \
    X(ENABLE_V2, "enable-v2", BOOL, CLUSTERING, STORE, "false",                \
      "Accept etcd V2 client requests (cairn always serves v2).")              \
    X(CERT_FILE, "cert-file", STRING, SECURITY, TLS, "",                       \
      "Path to the client server TLS cert file.")                              \
    X(KEY_FILE, "key-file", STRING, SECURITY, TLS, "",                         \
      "Path to the client server TLS key file.")                               \
    X(CLIENT_CERT_AUTH, "client-cert-auth", BOOL, SECURITY, TLS, "false",      \
      "Enable client cert authentication.")                                    \
    X(CLIENT_CRL_FILE, "client-crl-file", STRING, SECURITY, TLS, "",           \
      "Path to the client certificate revocation list file.")                  \
    X(CLIENT_CERT_ALLOWED_HOSTNAME, "client-cert-allowed-hostname", STRING,    \
      SECURITY, TLS, "",                                                       \
      "Allowed TLS hostname for client cert authentication.")                  \
    X(TRUSTED_CA_FILE, "trusted-ca-file", STRING, SECURITY, TLS, "",           \
      "Path to the client server TLS trusted CA cert file.")                   \
    X(AUTO_TLS, "auto-tls", BOOL, SECURITY, TLS, "false",                      \
      "Client TLS using generated certificates.")                              \
    X(PEER_CERT_FILE, "peer-cert-file", STRING, SECURITY, TLS, "",             \
      "Path to the peer server TLS cert file.")                                \
    X(PEER_KEY_FILE, "peer-key-file", STRING, SECURITY, TLS, "",               \
      "Path to the peer server TLS key file.")                                 \
    X(PEER_CLIENT_CERT_AUTH, "peer-client-cert-auth", BOOL, SECURITY, TLS,     \
      "false", "Enable peer client cert authentication.")                      \
    X(PEER_TRUSTED_CA_FILE, "peer-trusted-ca-file", STRING, SECURITY, TLS, "", \
      "Path to the peer server TLS trusted CA file.")                          \
    X(PEER_CERT_ALLOWED_CN, "peer-cert-allowed-cn", STRING, SECURITY, TLS, "", \
      "Required CN for client certs connecting to the peer endpoint.")         \
    X(PEER_CERT_ALLOWED_HOSTNAME, "peer-cert-allowed-hostname", STRING,        \
      SECURITY, TLS, "",                                                       \
      "Allowed TLS hostname for inter peer authentication.")                   \
    X(PEER_AUTO_TLS, "peer-auto-tls", BOOL, SECURITY, TLS, "false",            \
      "Peer TLS using self-generated certificates.")                           \
    X(PEER_CRL_FILE, "peer-crl-file", STRING, SECURITY, TLS, "",               \
      "Path to the peer certificate revocation list file.")                    \
    X(CIPHER_SUITES, "cipher-suites", STRING, SECURITY, TLS, "",               \
      "Comma-separated list of supported TLS cipher suites.")                  \
    X(CORS, "cors", STRING, SECURITY, USE, "*",                                \
      "Comma-separated whitelist of origins for CORS (empty or * means allow " \
      "all).")                                                                 \
    X(HOST_WHITELIST, "host-whitelist", STRING, SECURITY, STORE, "*",          \
      "Acceptable hostnames from HTTP client requests (empty or * means "      \
      "allow all).")                                                           \
    X(AUTH_TOKEN, "auth-token", STRING, AUTH, IGNORE, "simple",                \
      "Specify a v3 authentication token type and its options.")               \
    X(BCRYPT_COST, "bcrypt-cost", UINT, AUTH, IGNORE, "10",                    \
      "Cost of the bcrypt algorithm for hashing auth passwords.")              \
    X(AUTH_TOKEN_TTL, "auth-token-ttl", UINT, AUTH, IGNORE, "300",             \
      "Time (in seconds) of the auth-token-ttl.")                              \
    X(ENABLE_PPROF, "enable-pprof", BOOL, PROFILING, IGNORE, "false",          \
      "Enable runtime profiling data via HTTP server.")                        \
    X(METRICS, "metrics", STRING, PROFILING, IGNORE, "basic",                  \
      "Set level of detail for exported metrics.")                             \
    X(LISTEN_METRICS_URLS, "listen-metrics-urls", URLS, PROFILING, IGNORE, "", \
      "List of URLs to listen on for the metrics and health endpoints.")       \
    X(LOGGER, "logger", STRING, LOGGING, IGNORE, "capnslog",                   \
      "Specify 'zap' for structured logging or 'capnslog'.")                   \
    X(LOG_OUTPUTS, "log-outputs", STRING, LOGGING, IGNORE, "default",          \
      "Specify 'stdout' or 'stderr', or a list of output targets.")            \
    X(LOG_LEVEL, "log-level", CHOICE, LOGGING, USE, "info",                    \
      "Configures log level. Only supports debug, info, warn, error, panic, "  \
      "or fatal.")                                                             \
    X(PROXY, "proxy", CHOICE, PROXY, REFUSE, "off",                            \
      "Proxy mode setting ('off', 'readonly' or 'on').")                       \
    X(PROXY_FAILURE_WAIT, "proxy-failure-wait", UINT, PROXY, IGNORE, "5000",   \
      "Time (in milliseconds) an endpoint will be held in a failed state.")    \
    X(PROXY_REFRESH_INTERVAL, "proxy-refresh-interval", UINT, PROXY, IGNORE,   \
      "30000", "Time (in milliseconds) of the endpoints refresh interval.")    \
    X(PROXY_DIAL_TIMEOUT, "proxy-dial-timeout", UINT, PROXY, IGNORE, "1000",   \
      "Time (in milliseconds) for a dial to timeout.")                         \
    X(PROXY_WRITE_TIMEOUT, "proxy-write-timeout", UINT, PROXY, IGNORE, "5000", \
      "Time (in milliseconds) for a write to timeout.")                        \
    X(PROXY_READ_TIMEOUT, "proxy-read-timeout", UINT, PROXY, IGNORE, "0",      \
      "Time (in milliseconds) for a read to timeout.")                         \
    X(EXP_INITIAL_CORRUPT_CHECK, "experimental-initial-corrupt-check", BOOL,   \
      EXPERIMENTAL, IGNORE, "false",                                           \
      "Enable to check data corruption before serving any traffic.")           \
    X(EXP_CORRUPT_CHECK_TIME, "experimental-corrupt-check-time", DURATION,     \
      EXPERIMENTAL, IGNORE, "0s",                                              \
      "Duration of time between cluster corruption check passes.")             \
    X(EXP_ENABLE_V2V3, "experimental-enable-v2v3", STRING, EXPERIMENTAL,       \
      IGNORE, "", "Serve v2 requests through the v3 backend under a prefix.")  \
    X(EXP_FREELIST_TYPE, "experimental-backend-bbolt-freelist-type", STRING,   \
      EXPERIMENTAL, IGNORE, "array",                                           \
      "Type of freelist that the boltdb backend uses (array or map).")         \
    X(EXP_LEASE_CHECKPOINT, "experimental-enable-lease-checkpoint", BOOL,      \
      EXPERIMENTAL, IGNORE, "false",                                           \
      "Enable the primary lessor to persist lease remaining TTL.")             \
    X(EXP_LEASE_CHECKPOINT_PERSIST,                                            \
      "experimental-enable-lease-checkpoint-persist", BOOL, HIDDEN, IGNORE,    \
      "false", "Persist lease remaining TTL (needs lease checkpoints).")       \
    X(EXP_COMPACTION_BATCH_LIMIT, "experimental-compaction-batch-limit", INT,  \
      EXPERIMENTAL, IGNORE, "1000",                                            \
      "Maximum revisions deleted in each compaction batch.")                   \
    X(EXP_PEER_SKIP_SAN, "experimental-peer-skip-client-san-verification",     \
      BOOL, EXPERIMENTAL, IGNORE, "false",                                     \
      "Skip verification of SAN field in client certificate for peer "         \
      "connections.")                                                          \
    X(EXP_WATCH_PROGRESS, "experimental-watch-progress-notify-interval",       \
      DURATION, EXPERIMENTAL, IGNORE, "10m",                                   \
      "Duration of periodical watch progress notification.")                   \
    X(EXP_WARNING_APPLY, "experimental-warning-apply-duration", DURATION,      \
      EXPERIMENTAL, IGNORE, "100ms",                                           \
      "Warning is generated if requests take more than this duration.")        \
    X(FORCE_NEW_CLUSTER, "force-new-cluster", BOOL, UNSAFE, STORE, "false",    \
      "Force to create a new one-member cluster.")                             \
    X(UNSAFE_NO_FSYNC, "unsafe-no-fsync", BOOL, HIDDEN, STORE, "false",        \
      "Disables fsync, unsafe, will cause data loss.")                         \
    X(DEBUG, "debug", BOOL, DEPRECATED, USE, "false",                          \
      "Enable debug-level logging. Use '--log-level=debug' instead.")          \
    X(LOG_PACKAGE_LEVELS, "log-package-levels", STRING, DEPRECATED, IGNORE,    \
      "", "Specify a particular log level for each etcd package.")             \
    X(CONFIG_FILE, "config-file", STRING, HIDDEN, REFUSE, "",                  \
      "Path to the server configuration file.")                                \
    X(LOG_OUTPUT, "log-output", STRING, HIDDEN, IGNORE, "default",             \
      "Deprecated: use '--log-outputs'.")                                      \
    X(ENABLE_GRPC_GATEWAY, "enable-grpc-gateway", BOOL, HIDDEN, IGNORE,        \
      "true", "Enable GRPC gateway.")                                          \
    X(VERSION, "version", BOOL, HIDDEN, VERSION, "false",                      \
      "Print the version and exit.")                                           \
    X(OLD_CLUSTER_ACTIVE_SIZE, "cluster-active-size", OLD, HIDDEN, OLD, "",    \
      "")                                                                      \
    X(OLD_CLUSTER_REMOVE_DELAY, "cluster-remove-delay", OLD, HIDDEN, OLD, "",  \
      "")                                                                      \
    X(OLD_CLUSTER_SYNC_INTERVAL, "cluster-sync-interval", OLD, HIDDEN, OLD,    \
      "", "")                                                                  \
    X(OLD_CONFIG, "config", OLD, HIDDEN, OLD, "", "")                          \
    X(OLD_FORCE, "force", OLD, HIDDEN, OLD, "", "")                            \
    X(OLD_MAX_RESULT_BUFFER, "max-result-buffer", OLD, HIDDEN, OLD, "", "")    \
    X(OLD_MAX_RETRY_ATTEMPTS, "max-retry-attempts", OLD, HIDDEN, OLD, "", "")  \
    X(OLD_PEER_HEARTBEAT_INTERVAL, "peer-heartbeat-interval", OLD, HIDDEN,     \
      OLD, "", "")                                                             \
    X(OLD_PEER_ELECTION_TIMEOUT, "peer-election-timeout", OLD, HIDDEN, OLD,    \
      "", "")                                                                  \
    X(OLD_RETRY_INTERVAL, "retry-interval", OLD, HIDDEN, OLD, "", "")          \
    X(OLD_SNAPSHOT, "snapshot", OLD, HIDDEN, OLD, "", "")                      \
    X(OLD_V, "v", OLD, HIDDEN, OLD, "", "")                                    \
    X(OLD_VV, "vv", OLD, HIDDEN, OLD, "", "")                                  \
    X(OLD_TEST_COVERPROFILE, "test.coverprofile", OLD, HIDDEN, OLD, "", "")    \
    X(OLD_TEST_OUTPUTDIR, "test.outputdir", OLD, HIDDEN, OLD, "", "")

enum config_flag_id {
#define CONFIG_FLAG_ENUM_(id, name, kind, group, treat, def, help)             \
    CONFIG_F_##id,
    CONFIG_FLAG_MAP(CONFIG_FLAG_ENUM_)
#undef CONFIG_FLAG_ENUM_
        CONFIG_F_COUNT
};

struct config_flag {
    const char *name;    /* without dashes */
    unsigned char kind;  /* enum config_kind */
    unsigned char group; /* enum config_group */
    unsigned char treat; /* enum config_treat */
    const char *def;     /* default as the help text shows it */
    const char *help;
};

/* Row id of the table (0 <= id < CONFIG_F_COUNT); a static const table. */
const struct config_flag *config_flag_get(int id);

/* Index of the flag called name (n bytes, no dashes), or -1. */
int config_flag_find(const char *name, size_t n);

/* The words a CHOICE flag accepts ("new", "existing", NULL). */
const char *const *config_flag_choices(int id);

/* Appends cairn's --help / --version text. CN_OK or CN_ENOMEM. */
int config_help_write(struct cn_buf *out);
int config_version_write(struct cn_buf *out);

/* Value parsers with Go's rules. Each returns CN_OK, or CN_EINVAL with a
 * short reason ("parse error", "value out of range") in why. */
int config_parse_bool(const char *s, int *v, const char **why);
int config_parse_uint(const char *s, int bits, uint64_t *v, const char **why);
int config_parse_int(const char *s, int64_t *v, const char **why);
int config_parse_duration(const char *s, int64_t *ns, const char **why);

/* Parses "u1,u2" (whitespace around each URL trimmed) into list, sorted by
 * raw text with duplicates dropped. CN_EINVAL with errmsg naming the URL. */
int config_url_list_parse(const char *s, struct cn_url_list *list,
                          char errmsg[CN_ERRMSG_SIZE]);

/* Parses "name=url,name=url" (empty entries skipped, a name may repeat)
 * into cfg->initial_cluster. CN_EINVAL with errmsg. */
int config_initial_cluster_parse(const char *s, struct cn_config *cfg,
                                 char errmsg[CN_ERRMSG_SIZE]);

/* 1 if host is an IP literal or "localhost" (etcd's checkBindURLs). */
int config_host_bindable(const char *host);

#endif
