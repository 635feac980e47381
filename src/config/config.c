/*
 * config: etcd 3.4's command line and ETCD_* variables -> struct cn_config.
 *
 * The order is etcd's (etcdmain/config.go):
 *   1. argv, with Go's flag rules: "-f v", "--f v", "-f=v", "--f=v"; a
 *      boolean never takes the next argument; "--" or the first non-flag
 *      argument ends the flags, and anything left over is an error; -h,
 *      -help, --help print the usage at once.
 *   2. --version prints and stops (so it wins over later errors).
 *   3. ETCD_* variables, for flags not given on the command line; an unknown
 *      ETCD_* variable is a warning. (etcd 3.4 exits when a flag and its
 *      variable are both set; cairn keeps the flag and warns, as the cairn
 *      contract says.)
 *   4. refusals (TLS, proxy, config file, https:// URLs), then etcd's
 *      cross-checks (embed.Config.Validate), then computed defaults: data
 *      dir "${name}.cairn" and initial cluster "${name}=${peer urls}".
 * Invariant: on CN_OK every field of cfg is filled; on an error cfg holds
 * no promise and errmsg names the flag or variable.
 */
#include "config_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* snprintf that may cut long messages (errmsg is one line of at most
 * CN_ERRMSG_SIZE - 1 bytes). */
static void config_msg(char *dst, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void config_msg(char *dst, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, cap, fmt, ap);
    va_end(ap);
}

enum { CONFIG_SRC_NONE = 0, CONFIG_SRC_ARGV = 1, CONFIG_SRC_ENV = 2 };

#define CONFIG_DEFAULT_INITIAL_CLUSTER "default=http://localhost:2380"
#define CONFIG_ELECTION_MS_MAX 50000u /* (etcd) maxElectionMs */

struct config_state {
    struct cn_config *cfg;
    unsigned char src[CONFIG_F_COUNT]; /* CONFIG_SRC_*: who set each flag */
    int print_version;
    int refused_id;  /* first flag refused at a non-default value, or -1 */
    int refused_src; /* where it came from */
    char initial_cluster[4096]; /* --initial-cluster as given */
    char logger[16];            /* checked like etcd, then ignored */
    char auto_compaction_mode[16];
    int lease_checkpoint, lease_checkpoint_persist;
    struct cn_buf *warnings; /* may be NULL */
    char *errmsg;
};

/* "--name" or "ETCD_NAME (--name)": who set a value, for messages. */
static void config_who(char *dst, size_t cap, int id, int src)
{
    const char *name = config_flag_get(id)->name;
    if (src != CONFIG_SRC_ENV) {
        snprintf(dst, cap, "--%s", name);
        return;
    }
    size_t n = (size_t)snprintf(dst, cap, "ETCD_");
    for (const char *p = name; *p != '\0' && n + 1 < cap; p++)
        dst[n++] = *p == '-'                  ? '_'
                   : (*p >= 'a' && *p <= 'z') ? (char)(*p - 'a' + 'A')
                                              : *p;
    dst[n] = '\0';
    config_msg(dst + n, cap - n, " (--%s)", name);
}

static int config_bad(struct config_state *st, int id, int src, const char *val,
                      const char *why)
{
    char who[160];
    config_who(who, sizeof(who), id, src);
    config_msg(st->errmsg, CN_ERRMSG_SIZE, "%s: invalid value \"%.60s\": %s",
               who, val, why);
    return CN_EINVAL;
}

static int config_warn(struct config_state *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int config_warn(struct config_state *st, const char *fmt, ...)
{
    if (st->warnings == NULL)
        return CN_OK;
    va_list ap;
    va_start(ap, fmt);
    int rc = cn_buf_vprintf(st->warnings, fmt, ap);
    va_end(ap);
    return rc == CN_OK ? cn_buf_append_char(st->warnings, '\n') : rc;
}

static int config_copy(struct config_state *st, int id, int src, char *dst,
                       size_t cap, const char *val)
{
    if (strlen(val) >= cap)
        return config_bad(st, id, src, val, "value is too long");
    strcpy(dst, val);
    return CN_OK;
}

static int config_urls(struct config_state *st, int id, int src,
                       struct cn_url_list *dst, const char *val)
{
    char why[CN_ERRMSG_SIZE];
    struct cn_url_list tmp;
    if (val[0] == '\0') /* etcd's UniqueURLs exception: keeps the list */
        return CN_OK;
    if (config_url_list_parse(val, dst ? dst : &tmp, why) != CN_OK)
        return config_bad(st, id, src, val, why);
    return CN_OK;
}

/* Parses val by the flag's kind. Fills *b / *u / *i for the kinds that have
 * a number; CN_EINVAL with errmsg set. */
static int config_check_kind(struct config_state *st, int id, int src,
                             const char *val, int *b, uint64_t *u, int64_t *i)
{
    const struct config_flag *f = config_flag_get(id);
    const char *why = "invalid value";
    int rc = CN_OK;
    switch (f->kind) {
    case CONFIG_K_BOOL:
        rc = config_parse_bool(val, b, &why);
        break;
    case CONFIG_K_UINT:
        rc = config_parse_uint(val, 64, u, &why);
        break;
    case CONFIG_K_UINT32:
        rc = config_parse_uint(val, 32, u, &why);
        break;
    case CONFIG_K_INT:
        rc = config_parse_int(val, i, &why);
        break;
    case CONFIG_K_DURATION:
        rc = config_parse_duration(val, i, &why);
        break;
    case CONFIG_K_CHOICE: {
        const char *const *c = config_flag_choices(id);
        rc = CN_EINVAL;
        for (; *c != NULL; c++)
            if (strcmp(*c, val) == 0)
                rc = CN_OK;
        break;
    }
    default:
        break;
    }
    return rc == CN_OK ? CN_OK : config_bad(st, id, src, val, why);
}

/* 1 if val differs from the flag's default (TLS / refused flags). */
static int config_not_default(int id, const char *val, int b)
{
    const struct config_flag *f = config_flag_get(id);
    if (f->kind == CONFIG_K_BOOL)
        return b != (strcmp(f->def, "true") == 0);
    return strcmp(val, f->def) != 0;
}

static int config_uint_to(struct config_state *st, int id, int src,
                          const char *val, uint64_t u, unsigned *dst)
{
    if (u > UINT32_MAX)
        return config_bad(st, id, src, val, "value out of range");
    *dst = (unsigned)u;
    return CN_OK;
}

static int config_log_level(const char *val)
{
    if (strcmp(val, "debug") == 0)
        return CN_LOG_DEBUG;
    if (strcmp(val, "info") == 0)
        return CN_LOG_INFO;
    if (strcmp(val, "warn") == 0)
        return CN_LOG_WARN;
    return CN_LOG_ERROR; /* error, panic, fatal */
}

static int config_store_more(struct config_state *st, int id, int src,
                             const char *val, int b)
{
    struct cn_config *c = st->cfg;
    char why[CN_ERRMSG_SIZE];
    switch (id) {
    case CONFIG_F_DISCOVERY:
        return config_copy(st, id, src, c->discovery, sizeof(c->discovery),
                           val);
    case CONFIG_F_DISCOVERY_FALLBACK:
        return config_copy(st, id, src, c->discovery_fallback,
                           sizeof(c->discovery_fallback), val);
    case CONFIG_F_DISCOVERY_PROXY:
        return config_copy(st, id, src, c->discovery_proxy,
                           sizeof(c->discovery_proxy), val);
    case CONFIG_F_DISCOVERY_SRV:
        return config_copy(st, id, src, c->discovery_srv,
                           sizeof(c->discovery_srv), val);
    case CONFIG_F_DISCOVERY_SRV_NAME:
        return config_copy(st, id, src, c->discovery_srv_name,
                           sizeof(c->discovery_srv_name), val);
    case CONFIG_F_STRICT_RECONFIG_CHECK:
        c->strict_reconfig_check = b;
        return CN_OK;
    case CONFIG_F_PRE_VOTE:
        c->pre_vote = b;
        return CN_OK;
    case CONFIG_F_ENABLE_V2:
        c->enable_v2 = b;
        return CN_OK;
    case CONFIG_F_CORS: /* etcd: "*" or a list of origin URLs */
        if (strcmp(val, "*") != 0) {
            struct cn_url_list tmp;
            if (config_url_list_parse(val, &tmp, why) != CN_OK)
                return config_bad(st, id, src, val, why);
        }
        return config_copy(st, id, src, c->cors, sizeof(c->cors), val);
    case CONFIG_F_HOST_WHITELIST:
        return config_copy(st, id, src, c->host_whitelist,
                           sizeof(c->host_whitelist), val);
    case CONFIG_F_FORCE_NEW_CLUSTER:
        c->force_new_cluster = b;
        return CN_OK;
    case CONFIG_F_UNSAFE_NO_FSYNC:
        c->unsafe_no_fsync = b;
        return CN_OK;
    case CONFIG_F_DEBUG:
        c->debug = b;
        return CN_OK;
    case CONFIG_F_LOG_LEVEL:
        c->log_level = config_log_level(val);
        return CN_OK;
    case CONFIG_F_LOGGER:
        return config_copy(st, id, src, st->logger, sizeof(st->logger), val);
    case CONFIG_F_AUTO_COMPACTION_MODE:
        return config_copy(st, id, src, st->auto_compaction_mode,
                           sizeof(st->auto_compaction_mode), val);
    case CONFIG_F_EXP_LEASE_CHECKPOINT:
        st->lease_checkpoint = b;
        return CN_OK;
    case CONFIG_F_EXP_LEASE_CHECKPOINT_PERSIST:
        st->lease_checkpoint_persist = b;
        return CN_OK;
    default:
        return CN_OK;
    }
}

/* Stores a checked value of a USE / STORE flag (and the few ignored ones
 * that etcd cross-checks). */
static int config_store(struct config_state *st, int id, int src,
                        const char *val, int b, uint64_t u, int64_t i)
{
    struct cn_config *c = st->cfg;
    char why[CN_ERRMSG_SIZE];
    switch (id) {
    case CONFIG_F_NAME:
        return config_copy(st, id, src, c->name, sizeof(c->name), val);
    case CONFIG_F_DATA_DIR:
        return config_copy(st, id, src, c->data_dir, sizeof(c->data_dir), val);
    case CONFIG_F_WAL_DIR:
        return config_copy(st, id, src, c->wal_dir, sizeof(c->wal_dir), val);
    case CONFIG_F_SNAPSHOT_COUNT:
        c->snapshot_count = u;
        return CN_OK;
    case CONFIG_F_HEARTBEAT_INTERVAL:
        return config_uint_to(st, id, src, val, u, &c->heartbeat_interval_ms);
    case CONFIG_F_ELECTION_TIMEOUT:
        return config_uint_to(st, id, src, val, u, &c->election_timeout_ms);
    case CONFIG_F_INITIAL_ELECTION_TICK_ADVANCE:
        c->initial_election_tick_advance = b;
        return CN_OK;
    case CONFIG_F_LISTEN_PEER_URLS:
        return config_urls(st, id, src, &c->listen_peer_urls, val);
    case CONFIG_F_LISTEN_CLIENT_URLS:
        return config_urls(st, id, src, &c->listen_client_urls, val);
    case CONFIG_F_LISTEN_METRICS_URLS:
        return config_urls(st, id, src, NULL, val);
    case CONFIG_F_MAX_SNAPSHOTS:
        return config_uint_to(st, id, src, val, u, &c->max_snapshots);
    case CONFIG_F_MAX_WALS:
        return config_uint_to(st, id, src, val, u, &c->max_wals);
    case CONFIG_F_QUOTA_BACKEND_BYTES:
        c->quota_backend_bytes = i > 0 ? (uint64_t)i : 0;
        return CN_OK;
    case CONFIG_F_MAX_REQUEST_BYTES:
        c->max_request_bytes = u;
        return CN_OK;
    case CONFIG_F_INITIAL_ADVERTISE_PEER_URLS:
        return config_urls(st, id, src, &c->initial_advertise_peer_urls, val);
    case CONFIG_F_ADVERTISE_CLIENT_URLS:
        return config_urls(st, id, src, &c->advertise_client_urls, val);
    case CONFIG_F_INITIAL_CLUSTER:
        if (config_initial_cluster_parse(val, c, why) != CN_OK)
            return config_bad(st, id, src, val, why);
        return config_copy(st, id, src, st->initial_cluster,
                           sizeof(st->initial_cluster), val);
    case CONFIG_F_INITIAL_CLUSTER_STATE:
        c->initial_cluster_state_existing = strcmp(val, "existing") == 0;
        return CN_OK;
    case CONFIG_F_INITIAL_CLUSTER_TOKEN:
        return config_copy(st, id, src, c->initial_cluster_token,
                           sizeof(c->initial_cluster_token), val);
    default:
        return config_store_more(st, id, src, val, b);
    }
}

/* Sets flag id to val (bare booleans come as "true"). */
static int config_apply(struct config_state *st, int id, int src,
                        const char *val)
{
    const struct config_flag *f = config_flag_get(id);
    int b = 0;
    uint64_t u = 0;
    int64_t i = 0;
    int rc = config_check_kind(st, id, src, val, &b, &u, &i);
    if (rc != CN_OK)
        return rc;
    st->src[id] = (unsigned char)src;
    switch (f->treat) {
    case CONFIG_T_VERSION:
        if (src == CONFIG_SRC_ARGV)
            st->print_version = b;
        return CN_OK;
    case CONFIG_T_OLD:
        return config_warn(st,
                           "flag \"-%s\" is no longer supported - "
                           "ignoring.",
                           f->name);
    case CONFIG_T_TLS:
    case CONFIG_T_REFUSE:
        if (st->refused_id < 0 && config_not_default(id, val, b)) {
            st->refused_id = id;
            st->refused_src = src;
        }
        return CN_OK;
    case CONFIG_T_IGNORE:
        rc = config_store(st, id, src, val, b, u, i);
        if (rc == CN_OK && config_not_default(id, val, b))
            rc = config_warn(st, "--%s is accepted and ignored by cairn",
                             f->name);
        return rc;
    default:
        return config_store(st, id, src, val, b, u, i);
    }
}

/* One argv element at *ip (Go's flag.FlagSet.parseOne). Returns CN_OK and
 * sets *stop at a non-flag argument or "--", *help on -h/-help. */
static int config_argv_one(struct config_state *st, int argc, char **argv,
                           int *ip, int *stop, int *help)
{
    const char *s = argv[*ip];
    if (s[0] != '-' || s[1] == '\0') {
        *stop = 1;
        return CN_OK;
    }
    const char *name = s + 1;
    if (*name == '-') {
        name++;
        if (*name == '\0') { /* "--" ends the flags */
            (*ip)++;
            *stop = 1;
            return CN_OK;
        }
    }
    if (*name == '-' || *name == '=') {
        config_msg(st->errmsg, CN_ERRMSG_SIZE, "bad flag syntax: %.200s", s);
        return CN_EINVAL;
    }
    size_t n = strcspn(name, "=");
    const char *val = name[n] == '=' ? name + n + 1 : NULL;
    int id = config_flag_find(name, n);
    if (id < 0) {
        if ((n == 4 && memcmp(name, "help", 4) == 0) ||
            (n == 1 && name[0] == 'h')) {
            *help = 1;
            return CN_OK;
        }
        config_msg(st->errmsg, CN_ERRMSG_SIZE,
                   "flag provided but not defined: -%.*s",
                   (int)(n > 200 ? 200 : n), name);
        return CN_EINVAL;
    }
    int kind = config_flag_get(id)->kind;
    if (val == NULL && (kind == CONFIG_K_BOOL || kind == CONFIG_K_OLD)) {
        val = "true";
    } else if (val == NULL) {
        if (*ip + 1 >= argc) {
            config_msg(st->errmsg, CN_ERRMSG_SIZE,
                       "flag needs an argument: -%s",
                       config_flag_get(id)->name);
            return CN_EINVAL;
        }
        val = argv[++*ip];
    }
    (*ip)++;
    return config_apply(st, id, CONFIG_SRC_ARGV, val);
}

static int config_argv(struct config_state *st, int argc, char **argv,
                       int *help)
{
    int i = 1, stop = 0;
    while (i < argc && !stop && !*help) {
        int rc = config_argv_one(st, argc, argv, &i, &stop, help);
        if (rc != CN_OK)
            return rc;
    }
    if (!*help && i < argc) {
        config_msg(st->errmsg, CN_ERRMSG_SIZE, "'%.200s' is not a valid flag",
                   argv[i]);
        return CN_EINVAL;
    }
    return CN_OK;
}

/* 1 if the variable entry "K=V" has key ETCD_<flag name>. */
static int config_env_matches(const char *entry, const char *name)
{
    if (strncmp(entry, "ETCD_", 5) != 0)
        return 0;
    const char *p = entry + 5;
    for (; *name != '\0'; name++, p++) {
        char want = *name == '-'                     ? '_'
                    : (*name >= 'a' && *name <= 'z') ? (char)(*name - 'a' + 'A')
                                                     : *name;
        if (*p != want)
            return 0;
    }
    return *p == '=';
}

static int config_env_flag(struct config_state *st, char **envp, int id)
{
    const char *name = config_flag_get(id)->name;
    for (char **e = envp; *e != NULL; e++) {
        if (!config_env_matches(*e, name))
            continue;
        const char *val = strchr(*e, '=') + 1;
        if (st->src[id] == CONFIG_SRC_ARGV)
            return config_warn(st,
                               "flag --%s shadows environment variable "
                               "%.*s (the flag wins)",
                               name, (int)(val - 1 - *e), *e);
        if (*val == '\0')
            return CN_OK; /* etcd treats an empty variable as unset */
        int rc = config_apply(st, id, CONFIG_SRC_ENV, val);
        if (rc == CN_OK)
            rc = config_warn(st,
                             "recognized and used environment variable "
                             "%s",
                             *e);
        return rc;
    }
    return CN_OK;
}

static int config_env(struct config_state *st, char **envp)
{
    if (envp == NULL)
        return CN_OK;
    for (int id = 0; id < CONFIG_F_COUNT; id++) {
        int rc = config_env_flag(st, envp, id);
        if (rc != CN_OK)
            return rc;
    }
    for (char **e = envp; *e != NULL; e++) {
        if (strncmp(*e, "ETCD_", 5) != 0 || strchr(*e, '=') == NULL)
            continue;
        int known = 0;
        for (int id = 0; id < CONFIG_F_COUNT && !known; id++)
            known = config_env_matches(*e, config_flag_get(id)->name);
        if (!known) {
            int rc =
                config_warn(st, "unrecognized environment variable %s", *e);
            if (rc != CN_OK)
                return rc;
        }
    }
    return CN_OK;
}

static int config_refuse(struct config_state *st)
{
    char who[160];
    const char *why;
    if (st->refused_id < 0)
        return CN_OK;
    config_who(who, sizeof(who), st->refused_id, st->refused_src);
    if (st->refused_id == CONFIG_F_PROXY)
        why = "proxy mode is not supported yet (only 'off')";
    else if (st->refused_id == CONFIG_F_CONFIG_FILE)
        why = "configuration files are not supported yet";
    else
        why = "TLS is not supported yet";
    config_msg(st->errmsg, CN_ERRMSG_SIZE, "%s: %s", who, why);
    return CN_EINVAL;
}

/* https:// needs TLS; listen URLs must be IP literals or localhost. */
static int config_check_urls(struct config_state *st, int id,
                             const struct cn_url_list *l, int bind)
{
    char who[160];
    config_who(who, sizeof(who), id, st->src[id]);
    for (int i = 0; i < l->count; i++) {
        if (strcmp(l->urls[i].scheme, "https") == 0) {
            config_msg(st->errmsg, CN_ERRMSG_SIZE,
                       "%s: %s needs TLS, which is not supported yet", who,
                       l->urls[i].raw);
            return CN_EINVAL;
        }
        if (bind && !config_host_bindable(l->urls[i].host)) {
            config_msg(st->errmsg, CN_ERRMSG_SIZE,
                       "%s: expected IP in URL for binding (%s)", who,
                       l->urls[i].raw);
            return CN_EINVAL;
        }
    }
    return CN_OK;
}

static int config_check_all_urls(struct config_state *st)
{
    struct cn_config *c = st->cfg;
    int rc = config_check_urls(st, CONFIG_F_LISTEN_PEER_URLS,
                               &c->listen_peer_urls, 1);
    if (rc == CN_OK)
        rc = config_check_urls(st, CONFIG_F_LISTEN_CLIENT_URLS,
                               &c->listen_client_urls, 1);
    if (rc == CN_OK)
        rc = config_check_urls(st, CONFIG_F_INITIAL_ADVERTISE_PEER_URLS,
                               &c->initial_advertise_peer_urls, 0);
    if (rc == CN_OK)
        rc = config_check_urls(st, CONFIG_F_ADVERTISE_CLIENT_URLS,
                               &c->advertise_client_urls, 0);
    for (int i = 0; rc == CN_OK && i < c->initial_cluster_count; i++) {
        if (strcmp(c->initial_cluster[i].url.scheme, "https") == 0) {
            config_msg(st->errmsg, CN_ERRMSG_SIZE,
                       "--initial-cluster: %s needs TLS, which is not "
                       "supported yet",
                       c->initial_cluster[i].url.raw);
            rc = CN_EINVAL;
        }
    }
    return rc;
}

static int config_fail(struct config_state *st, const char *msg)
{
    config_msg(st->errmsg, CN_ERRMSG_SIZE, "%s", msg);
    return CN_EINVAL;
}

/* etcd's embed.Config.Validate and etcdmain's checks, in etcd's order. */
static int config_validate(struct config_state *st)
{
    struct cn_config *c = st->cfg;
    if (strcmp(st->logger, "capnslog") != 0 && strcmp(st->logger, "zap") != 0)
        return config_fail(st, "--logger: unknown logger option (only "
                               "'capnslog' or 'zap')");
    int rc = config_check_all_urls(st);
    if (rc != CN_OK)
        return rc;
    int n_boot = (c->discovery[0] != '\0') + (c->initial_cluster_count > 0) +
                 (c->discovery_srv[0] != '\0');
    if (n_boot > 1)
        return config_fail(st, "multiple discovery or bootstrap flags are "
                               "set. Choose one of \"initial-cluster\", "
                               "\"discovery\" or \"discovery-srv\"");
    char m[CN_ERRMSG_SIZE];
    unsigned hb = c->heartbeat_interval_ms, el = c->election_timeout_ms;
    if (hb == 0)
        return config_fail(st, "--heartbeat-interval must be >0 (set to 0ms)");
    if (el == 0)
        return config_fail(st, "--election-timeout must be >0 (set to 0ms)");
    if ((uint64_t)hb * 5 > el) {
        config_msg(m, sizeof(m),
                   "--election-timeout[%ums] should be at least as 5 times as "
                   "--heartbeat-interval[%ums]",
                   el, hb);
        return config_fail(st, m);
    }
    if (el > CONFIG_ELECTION_MS_MAX) {
        config_msg(m, sizeof(m),
                   "--election-timeout[%ums] is too long, and should be set "
                   "less than %ums",
                   el, CONFIG_ELECTION_MS_MAX);
        return config_fail(st, m);
    }
    if (c->advertise_client_urls.count == 0)
        return config_fail(st, "--advertise-client-urls is required when "
                               "--listen-client-urls is set explicitly");
    if (st->auto_compaction_mode[0] != '\0' &&
        strcmp(st->auto_compaction_mode, "periodic") != 0 &&
        strcmp(st->auto_compaction_mode, "revision") != 0)
        return config_fail(st, "--auto-compaction-mode: unknown mode (only "
                               "'periodic' or 'revision')");
    if (st->lease_checkpoint_persist && !st->lease_checkpoint)
        return config_fail(st, "setting experimental-enable-lease-checkpoint-"
                               "persist requires experimental-enable-lease-"
                               "checkpoint");
    return CN_OK;
}

/* etcd's defaults that depend on other flags (etcdmain configFromCmdLine,
 * UpdateDefaultClusterFromName, startEtcdOrProxyV2). */
static int config_finish(struct config_state *st)
{
    struct cn_config *c = st->cfg;
    int discovery = c->discovery[0] != '\0' || c->discovery_srv[0] != '\0' ||
                    c->discovery_srv_name[0] != '\0';
    int may_be_proxy =
        c->discovery[0] != '\0' && strcmp(c->discovery_fallback, "proxy") == 0;

    /* An explicit --listen-client-urls drops the default advertise URL. */
    if (st->src[CONFIG_F_LISTEN_CLIENT_URLS] &&
        !st->src[CONFIG_F_ADVERTISE_CLIENT_URLS] && !may_be_proxy)
        c->advertise_client_urls.count = 0;

    c->initial_cluster_set = st->src[CONFIG_F_INITIAL_CLUSTER] != 0;
    if (discovery && !c->initial_cluster_set) {
        c->initial_cluster_count = 0;
        st->initial_cluster[0] = '\0';
    }
    int rc = config_validate(st);
    if (rc != CN_OK)
        return rc;

    /* Only the name given: initial cluster "${name}=${peer urls}". A
     * cluster equal to etcd's default string counts as not given, and the
     * name "default" keeps "default=http://localhost:2380" (etcd does). */
    if (strcmp(c->name, "default") != 0 &&
        strcmp(st->initial_cluster, CONFIG_DEFAULT_INITIAL_CLUSTER) == 0) {
        const struct cn_url_list *ap = &c->initial_advertise_peer_urls;
        const char *n = c->name[0] != '\0' ? c->name : "default";
        for (int i = 0; i < ap->count && i < CN_CONFIG_MEMBERS_MAX; i++) {
            strcpy(c->initial_cluster[i].name, n);
            c->initial_cluster[i].url = ap->urls[i];
        }
        c->initial_cluster_count = ap->count;
    }
    if (c->data_dir[0] == '\0')
        snprintf(c->data_dir, sizeof(c->data_dir), "%s.cairn", c->name);
    if (c->debug)
        c->log_level = CN_LOG_DEBUG;
    return CN_OK;
}

static void config_defaults(struct config_state *st, struct cn_config *c)
{
    char why[CN_ERRMSG_SIZE];
    memset(c, 0, sizeof(*c));
    memset(st, 0, sizeof(*st));
    st->cfg = c;
    st->refused_id = -1;
    strcpy(c->name, "default");
    c->snapshot_count = 100000;
    c->heartbeat_interval_ms = 100;
    c->election_timeout_ms = 1000;
    c->max_snapshots = 5;
    c->max_wals = 5;
    c->max_request_bytes = CN_MAX_REQUEST_BYTES_DEFAULT;
    CN_ASSERT(config_url_list_parse("http://localhost:2379",
                                    &c->listen_client_urls, why) == CN_OK);
    c->advertise_client_urls = c->listen_client_urls;
    CN_ASSERT(config_url_list_parse("http://localhost:2380",
                                    &c->listen_peer_urls, why) == CN_OK);
    c->initial_advertise_peer_urls = c->listen_peer_urls;
    CN_ASSERT(config_initial_cluster_parse(CONFIG_DEFAULT_INITIAL_CLUSTER, c,
                                           why) == CN_OK);
    strcpy(st->initial_cluster, CONFIG_DEFAULT_INITIAL_CLUSTER);
    strcpy(c->initial_cluster_token, "etcd-cluster");
    strcpy(c->discovery_fallback, "proxy");
    c->strict_reconfig_check = 1;
    c->log_level = CN_LOG_INFO;
    c->initial_election_tick_advance = 1;
    strcpy(c->host_whitelist, "*");
    strcpy(st->logger, "capnslog");
    strcpy(st->auto_compaction_mode, "periodic");
}

int config_parse(struct cn_config *cfg, int argc, char **argv, char **envp,
                 int *outcome, struct cn_buf *out, struct cn_buf *warnings,
                 char errmsg[CN_ERRMSG_SIZE])
{
    struct config_state st;
    int help = 0, rc;

    config_defaults(&st, cfg);
    st.warnings = warnings;
    st.errmsg = errmsg;
    errmsg[0] = '\0';
    *outcome = CONFIG_RUN;

    rc = config_argv(&st, argc, argv, &help);
    if (rc != CN_OK)
        return rc;
    if (help || st.print_version) {
        *outcome = CONFIG_EXIT_OK;
        if (out == NULL)
            return CN_OK;
        return help ? config_help_write(out) : config_version_write(out);
    }
    rc = config_env(&st, envp);
    if (rc == CN_OK)
        rc = config_refuse(&st);
    if (rc == CN_OK)
        rc = config_finish(&st);
    if (rc == CN_ENOMEM)
        config_msg(errmsg, CN_ERRMSG_SIZE, "out of memory");
    return rc;
}
