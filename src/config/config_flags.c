/*
 * config_flags: the table of etcd 3.4.23's flags, the --help and --version
 * texts, and value parsers that accept exactly what Go's flag package
 * accepts (strconv.ParseBool, ParseUint/ParseInt with base 0,
 * time.ParseDuration), so a value etcd takes is taken here and a value etcd
 * refuses is refused.
 */
#include "config_int.h"

#include <string.h>

#define CONFIG_ROW_(id, name_, kind_, group_, treat_, def_, help_)             \
    [CONFIG_F_##id] = {.name = (name_),                                        \
                       .kind = CONFIG_K_##kind_,                               \
                       .group = CONFIG_G_##group_,                             \
                       .treat = CONFIG_T_##treat_,                             \
                       .def = (def_),                                          \
                       .help = (help_)},
static const struct config_flag config_table[CONFIG_F_COUNT] = {
    CONFIG_FLAG_MAP(CONFIG_ROW_)};
#undef CONFIG_ROW_

const struct config_flag *config_flag_get(int id)
{
    CN_ASSERT(id >= 0 && id < CONFIG_F_COUNT);
    return &config_table[id];
}

int config_flag_find(const char *name, size_t n)
{
    for (int i = 0; i < CONFIG_F_COUNT; i++) {
        const char *f = config_table[i].name;
        if (strlen(f) == n && memcmp(f, name, n) == 0)
            return i;
    }
    return -1;
}

const char *const *config_flag_choices(int id)
{
    static const char *const state[] = {"new", "existing", NULL};
    static const char *const fallback[] = {"proxy", "exit", NULL};
    static const char *const proxy[] = {"off", "readonly", "on", NULL};
    static const char *const level[] = {"debug", "info",  "warn", "error",
                                        "panic", "fatal", NULL};
    switch (id) {
    case CONFIG_F_INITIAL_CLUSTER_STATE:
        return state;
    case CONFIG_F_DISCOVERY_FALLBACK:
        return fallback;
    case CONFIG_F_PROXY:
        return proxy;
    case CONFIG_F_LOG_LEVEL:
        return level;
    default:
        return NULL;
    }
}

/* ---- help and version ---- */

static const char *const config_group_titles[CONFIG_G_COUNT] = {
    [CONFIG_G_MEMBER] = "Member",
    [CONFIG_G_CLUSTERING] = "Clustering",
    [CONFIG_G_SECURITY] = "Security",
    [CONFIG_G_AUTH] = "Auth",
    [CONFIG_G_PROFILING] = "Profiling and Monitoring",
    [CONFIG_G_LOGGING] = "Logging",
    [CONFIG_G_PROXY] = "v2 Proxy (to be deprecated in v4)",
    [CONFIG_G_EXPERIMENTAL] = "Experimental feature",
    [CONFIG_G_UNSAFE] = "Unsafe feature",
    [CONFIG_G_DEPRECATED] = "TO BE DEPRECATED",
    [CONFIG_G_HIDDEN] = NULL,
};

static const char config_help_head[] =
    "Usage:\n"
    "\n"
    "  cairn [flags]\n"
    "    Start a cairn server (etcd v2 API compatible).\n"
    "\n"
    "  cairn --version\n"
    "    Show the version of cairn.\n"
    "\n"
    "  cairn -h | --help\n"
    "    Show the help information about cairn.\n"
    "\n"
    "Flags take -flag value, --flag value or --flag=value; booleans also\n"
    "--flag alone. Every flag --some-name can also be set with the\n"
    "environment variable ETCD_SOME_NAME; the command line wins.\n";

static const char *config_treat_note(int treat)
{
    switch (treat) {
    case CONFIG_T_IGNORE:
        return "[cairn: accepted and ignored]";
    case CONFIG_T_TLS:
        return "[cairn: TLS is not supported yet; only the default is "
               "accepted]";
    case CONFIG_T_REFUSE:
        return "[cairn: not supported yet; only the default is accepted]";
    default:
        return NULL;
    }
}

int config_help_write(struct cn_buf *out)
{
    int rc = cn_buf_append_cstr(out, config_help_head);
    for (int g = 0; rc == CN_OK && g < CONFIG_G_COUNT; g++) {
        if (config_group_titles[g] == NULL)
            continue;
        rc = cn_buf_printf(out, "\n%s:\n", config_group_titles[g]);
        for (int i = 0; rc == CN_OK && i < CONFIG_F_COUNT; i++) {
            const struct config_flag *f = &config_table[i];
            if (f->group != g)
                continue;
            const char *note = config_treat_note(f->treat);
            rc = cn_buf_printf(out, "  --%s '%s'\n    %s\n%s%s%s", f->name,
                               f->def, f->help, note ? "    " : "",
                               note ? note : "", note ? "\n" : "");
        }
        if (rc == CN_OK && g == CONFIG_G_UNSAFE)
            rc = cn_buf_append_cstr(out, "\nCAUTIOUS with unsafe flag! It may "
                                         "break the guarantees given by the "
                                         "consensus protocol!\n");
    }
    return rc;
}

#ifndef CN_GIT_SHA
#define CN_GIT_SHA "Not provided (build with -DCN_GIT_SHA=...)"
#endif

#if defined(__linux__)
#define CONFIG_OS_ "linux"
#elif defined(__APPLE__)
#define CONFIG_OS_ "darwin"
#else
#define CONFIG_OS_ "unknown"
#endif

#if defined(__x86_64__)
#define CONFIG_ARCH_ "amd64"
#elif defined(__aarch64__)
#define CONFIG_ARCH_ "arm64"
#elif defined(__i386__)
#define CONFIG_ARCH_ "386"
#else
#define CONFIG_ARCH_ "unknown"
#endif

int config_version_write(struct cn_buf *out)
{
    return cn_buf_printf(out,
                         "cairn Version: %s\n"
                         "Git SHA: %s\n"
                         "Go Version: n/a\n"
                         "Go OS/Arch: %s/%s\n",
                         CN_VERSION, CN_GIT_SHA, CONFIG_OS_, CONFIG_ARCH_);
}

/* ---- value parsers (Go's strconv and time rules) ---- */

int config_parse_bool(const char *s, int *v, const char **why)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *v = 1;
            return CN_OK;
        }
        if (strcmp(s, no[i]) == 0) {
            *v = 0;
            return CN_OK;
        }
    }
    *why = "parse error";
    return CN_EINVAL;
}

static int config_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Go's underscoreOK: '_' only between digits or after a base prefix. */
static int config_underscore_ok(const char *s)
{
    char saw = '^';
    size_t i = 0, n = strlen(s);
    int hex = 0;
    if (n >= 1 && (s[0] == '-' || s[0] == '+'))
        s++, n--;
    if (n >= 2 && s[0] == '0' &&
        (config_lower(s[1]) == 'b' || config_lower(s[1]) == 'o' ||
         config_lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = config_lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        int c = config_lower((unsigned char)s[i]);
        if ((c >= '0' && c <= '9') || (hex && c >= 'a' && c <= 'f')) {
            saw = '0';
            continue;
        }
        if (c == '_') {
            if (saw != '0')
                return 0;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return 0;
        saw = '!';
    }
    return saw != '_';
}

int config_parse_uint(const char *s0, int bits, uint64_t *v, const char **why)
{
    const char *s = s0;
    unsigned base = 10;
    int underscores = 0;
    uint64_t max = bits >= 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
    uint64_t n = 0;

    *why = "parse error";
    if (*s == '\0')
        return CN_EINVAL;
    if (s[0] == '0') {
        size_t len = strlen(s);
        int c = len >= 3 ? config_lower(s[1]) : 0;
        if (c == 'b' || c == 'o' || c == 'x') {
            base = c == 'b' ? 2 : c == 'o' ? 8 : 16;
            s += 2;
        } else {
            base = 8;
            s += 1;
        }
    }
    for (; *s != '\0'; s++) {
        int c = config_lower((unsigned char)*s);
        unsigned d;
        if (c == '_') {
            underscores = 1;
            continue;
        } else if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'z') {
            d = (unsigned)(c - 'a' + 10);
        } else {
            return CN_EINVAL;
        }
        if (d >= base)
            return CN_EINVAL;
        if (n > (max - d) / base) {
            *why = "value out of range";
            return CN_EINVAL;
        }
        n = n * base + d;
    }
    if (underscores && !config_underscore_ok(s0))
        return CN_EINVAL;
    *v = n;
    return CN_OK;
}

int config_parse_int(const char *s, int64_t *v, const char **why)
{
    int neg = 0;
    uint64_t u;
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (config_parse_uint(s, 64, &u, why) != CN_OK)
        return CN_EINVAL;
    if ((!neg && u > (uint64_t)INT64_MAX) ||
        (neg && u > (uint64_t)INT64_MAX + 1)) {
        *why = "value out of range";
        return CN_EINVAL;
    }
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    return CN_OK;
}

static int64_t config_unit_ns(const char *u, size_t n)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
        {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", 60ll * 1000000000},
        {"h", 3600ll * 1000000000},
    };
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, u, n) == 0)
            return units[i].ns;
    return 0;
}

int config_parse_duration(const char *s, int64_t *ns, const char **why)
{
    int neg = 0;
    long double total = 0;

    *why = "parse error";
    if (*s == '+' || *s == '-') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return CN_OK;
    }
    if (*s == '\0')
        return CN_EINVAL;
    while (*s != '\0') {
        long double v = 0, scale = 1;
        int pre = 0, post = 0;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            return CN_EINVAL;
        for (; *s >= '0' && *s <= '9'; s++, pre = 1)
            v = v * 10 + (*s - '0');
        if (*s == '.') {
            for (s++; *s >= '0' && *s <= '9'; s++, post = 1) {
                scale /= 10;
                v += (*s - '0') * scale;
            }
        }
        if (!pre && !post)
            return CN_EINVAL;
        size_t i = 0;
        while (s[i] != '\0' && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
            i++;
        int64_t unit = config_unit_ns(s, i);
        if (i == 0 || unit == 0)
            return CN_EINVAL;
        s += i;
        total += v * unit;
        if (total > 9223372036854775807.0L) {
            *why = "value out of range";
            return CN_EINVAL;
        }
    }
    *ns = neg ? -(int64_t)total : (int64_t)total;
    return CN_OK;
}
