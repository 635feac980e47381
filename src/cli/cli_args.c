/*
 * cli_args: command-line parsing with the rules etcdctl inherits from Go's
 * flag package and urfave/cli v1:
 *   - "-name", "--name", "-name=value", "--name=value", "-name value";
 *     booleans take no separate value ("-sort" or "-sort=false").
 *   - parsing stops at the first non-flag argument, at "-" and after "--".
 *   - for commands (reorder), flags that follow positional arguments are
 *     moved in front of them first, unless they come after "--".
 * Error messages are Go's, word for word.
 */
#include "cli_int.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const struct cli_flag *find_flag(const struct cli_flag *flags, size_t n,
                                        const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++) {
        const char *p = flags[i].names;
        while (*p) {
            size_t l = strcspn(p, ",");
            const char *q = p;
            while (*q == ' ')
                q++, l--;
            if (l == len && strncmp(q, name, len) == 0)
                return &flags[i];
            p += strcspn(p, ",");
            if (*p == ',')
                p++;
            while (*p == ' ')
                p++;
        }
    }
    return NULL;
}

/* urfave/cli argIsFlag: a "-x"/"--x[=v]" naming one of flags. */
static int arg_is_flag(const struct cli_flag *flags, size_t n, const char *a)
{
    if (a[0] != '-' || strcmp(a, "-") == 0 || strcmp(a, "--") == 0)
        return 0;
    const char *name = a + 1;
    if (*name == '-')
        name++;
    size_t len = strcspn(name, "=");
    if ((len == 4 && strncmp(name, "help", 4) == 0) ||
        (len == 1 && name[0] == 'h'))
        return 1; /* urfave/cli adds "help, h" to every command */
    return find_flag(flags, n, name, len) != NULL;
}

static int parse_bool(const char *s, int *out)
{
    static const char *t[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *f[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, t[i]) == 0)
            return *out = 1, CN_OK;
        if (strcmp(s, f[i]) == 0)
            return *out = 0, CN_OK;
    }
    return CN_EINVAL;
}

/* strconv.ParseInt(s, 0, 64): decimal, 0x hex, 0 octal, 0b binary, '_'
 * separators not supported (Go only allows them with base 0 prefixes). */
static int parse_int(const char *s, long long *out)
{
    if (*s == '\0')
        return CN_EINVAL;
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    int base = 10;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
        base = 16, p += 2;
    else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B'))
        base = 2, p += 2;
    else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O'))
        base = 8, p += 2;
    else if (p[0] == '0' && p[1] != '\0')
        base = 8, p += 1;
    if (*p == '\0' || *p == '+' || *p == '-')
        return CN_EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(p, &end, base);
    if (errno != 0 || *end != '\0' ||
        v > (unsigned long long)LLONG_MAX + (neg ? 1u : 0u))
        return CN_EINVAL;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return CN_OK;
}

int cli_parse_duration(const char *s, int64_t *ms)
{
    /* Go: [-+]?([0-9]*(\.[0-9]*)?[a-z]+)+ ; "0" alone is allowed. */
    const char *p = s;
    int neg = 0;
    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (strcmp(p, "0") == 0)
        return *ms = 0, CN_OK;
    if (*p == '\0')
        return CN_EINVAL;
    double total_ns = 0;
    while (*p) {
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return CN_EINVAL;
        char *end = NULL;
        double v = strtod(p, &end);
        if (end == p)
            return CN_EINVAL;
        p = end;
        double unit;
        if (strncmp(p, "ns", 2) == 0)
            unit = 1, p += 2;
        else if (strncmp(p, "us", 2) == 0 || strncmp(p, "\xc2\xb5s", 3) == 0)
            unit = 1e3, p += (*p == 'u' ? 2 : 3);
        else if (strncmp(p, "ms", 2) == 0)
            unit = 1e6, p += 2;
        else if (*p == 's')
            unit = 1e9, p += 1;
        else if (*p == 'm')
            unit = 60e9, p += 1;
        else if (*p == 'h')
            unit = 3600e9, p += 1;
        else
            return CN_EINVAL;
        total_ns += v * unit;
    }
    if (total_ns > 9.2e18)
        return CN_EINVAL;
    *ms = (int64_t)(total_ns / 1e6);
    if (neg)
        *ms = -*ms;
    return CN_OK;
}

static int set_value(const struct cli_flag *f, const char *name, const char *v,
                     char *errmsg)
{
    switch (f->type) {
    case CLI_FLAG_BOOL: {
        int b;
        if (parse_bool(v, &b) != CN_OK) {
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "invalid boolean value \"%s\" for -%s: parse error", v,
                     name);
            return CN_EINVAL;
        }
        *(int *)f->dst = b;
        return CN_OK;
    }
    case CLI_FLAG_STRING:
        *(const char **)f->dst = v;
        return CN_OK;
    case CLI_FLAG_INT:
        if (parse_int(v, (long long *)f->dst) != CN_OK)
            break;
        return CN_OK;
    case CLI_FLAG_DURATION:
        if (cli_parse_duration(v, (int64_t *)f->dst) != CN_OK)
            break;
        return CN_OK;
    }
    snprintf(errmsg, CN_ERRMSG_SIZE,
             "invalid value \"%s\" for flag -%s: parse error", v, name);
    return CN_EINVAL;
}

/* Go's FlagSet.Parse over args[0..n): positional arguments go to pos. */
static int go_parse(const struct cli_flag *flags, size_t nflags, int n,
                    char **args, char **pos, int *npos, char *errmsg)
{
    int i = 0;
    while (i < n) {
        const char *a = args[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        i++;
        const char *name = a + 1;
        if (*name == '-') {
            name++;
            if (*name == '\0')
                break; /* "--" terminates the flags */
        }
        if (*name == '-' || *name == '=') {
            snprintf(errmsg, CN_ERRMSG_SIZE, "bad flag syntax: %s", a);
            return CN_EINVAL;
        }
        size_t len = strcspn(name, "=");
        const char *value = name[len] == '=' ? name + len + 1 : NULL;
        char nm[128];
        snprintf(nm, sizeof(nm), "%.*s", (int)len, name);
        const struct cli_flag *f = find_flag(flags, nflags, name, len);
        if (f == NULL) {
            if (strcmp(nm, "help") == 0 || strcmp(nm, "h") == 0)
                return CLI_ARGS_HELP;
            snprintf(errmsg, CN_ERRMSG_SIZE,
                     "flag provided but not defined: -%s", nm);
            return CN_EINVAL;
        }
        if (f->type == CLI_FLAG_BOOL && value == NULL) {
            *(int *)f->dst = 1;
            continue;
        }
        if (value == NULL) {
            if (i >= n) {
                snprintf(errmsg, CN_ERRMSG_SIZE, "flag needs an argument: -%s",
                         nm);
                return CN_EINVAL;
            }
            value = args[i++];
        }
        int rc = set_value(f, nm, value, errmsg);
        if (rc != CN_OK)
            return rc;
    }
    for (; i < n; i++)
        pos[(*npos)++] = args[i];
    return CLI_ARGS_OK;
}

int cli_args_parse(const struct cli_flag *flags, size_t nflags, int argc,
                   char **argv, int reorder, char **pos, int *npos,
                   char *errmsg)
{
    *npos = 0;
    errmsg[0] = '\0';
    if (!reorder)
        return go_parse(flags, nflags, argc, argv, pos, npos, errmsg);
    char **args = cn_calloc((size_t)argc + 1, sizeof(char *));
    char **rest = cn_calloc((size_t)argc + 1, sizeof(char *));
    if (args == NULL || rest == NULL) {
        cn_free(args);
        cn_free(rest);
        snprintf(errmsg, CN_ERRMSG_SIZE, "out of memory");
        return CN_ENOMEM;
    }
    int na = 0, nr = 0, may_value = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            for (; i < argc; i++)
                rest[nr++] = argv[i];
            break;
        }
        if (may_value && a[0] != '-') {
            may_value = 0;
            args[na++] = argv[i];
        } else if (arg_is_flag(flags, nflags, a)) {
            args[na++] = argv[i];
            may_value = strchr(a, '=') == NULL;
        } else {
            rest[nr++] = argv[i];
        }
    }
    for (int i = 0; i < nr; i++)
        args[na++] = rest[i];
    int rc = go_parse(flags, nflags, na, args, pos, npos, errmsg);
    cn_free(args);
    cn_free(rest);
    return rc;
}
