/*
 * fleet_unit: systemd unit files, the subset users write for fleet.
 *
 * Two steps, both pure: fleet_unit_file_parse() turns text into an ordered
 * list of (section, name, value, line) with systemd's syntax rules, and
 * fleet_service_load() gives the options their meaning. A malformed file is
 * rejected whole with "line N: key K: why"; unknown keys and sections are
 * kept and listed in s->warnings, never fatal (systemd does the same).
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fleet_int.h"

/* Writes a message into errmsg (CN_ERRMSG_SIZE bytes), cut if too long. */
static void errf(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void errf(char *errmsg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, CN_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = cn_malloc(n + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

/* ---- syntax ---------------------------------------------------------- */

static int opt_add(struct fleet_unit_file *uf, const char *section,
                   const char *name, size_t name_len, const char *value,
                   size_t value_len, int line)
{
    if (uf->count == uf->cap) {
        size_t cap = uf->cap ? uf->cap * 2 : 16;
        struct fleet_opt *n = cn_realloc(uf->opts, cap * sizeof(*n));
        if (n == NULL)
            return CN_ENOMEM;
        uf->opts = n;
        uf->cap = cap;
    }
    struct fleet_opt *o = &uf->opts[uf->count];
    o->section = xstrdup(section);
    o->name = xstrndup(name, name_len);
    o->value = xstrndup(value, value_len);
    o->line = line;
    if (o->section == NULL || o->name == NULL || o->value == NULL) {
        cn_free(o->section);
        cn_free(o->name);
        cn_free(o->value);
        return CN_ENOMEM;
    }
    uf->count++;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

static void trim(const char **p, size_t *n)
{
    while (*n > 0 && is_blank(**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && is_blank((*p)[*n - 1]))
        (*n)--;
}

static int key_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.';
}

static int section_char_ok(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' ||
           c == ' ';
}

/* Handles "[Name]" at p[0..n) (trimmed, starts with '['). */
static int parse_header(const char *p, size_t n, int line, char *section,
                        char *errmsg)
{
    if (p[n - 1] != ']') {
        errf(errmsg, "line %d: section header not closed by ']'", line);
        return CN_EINVAL;
    }
    if (n == 2) {
        errf(errmsg, "line %d: empty section name", line);
        return CN_EINVAL;
    }
    if (n - 2 >= 64) {
        errf(errmsg, "line %d: section name too long", line);
        return CN_EINVAL;
    }
    for (size_t i = 1; i + 1 < n; i++) {
        if (!section_char_ok(p[i])) {
            errf(errmsg, "line %d: invalid character '%c' in section name",
                 line, isprint((unsigned char)p[i]) ? p[i] : '?');
            return CN_EINVAL;
        }
    }
    memcpy(section, p + 1, n - 2);
    section[n - 2] = '\0';
    return 0;
}

static int parse_assignment(struct fleet_unit_file *uf, const char *section,
                            const char *p, size_t n, int line, char *errmsg)
{
    const char *eq = memchr(p, '=', n);
    if (eq == NULL) {
        errf(errmsg, "line %d: expected Key=Value, got \"%.*s\"", line,
             (int)(n > 40 ? 40 : n), p);
        return CN_EINVAL;
    }
    const char *k = p;
    size_t kn = (size_t)(eq - p);
    trim(&k, &kn);
    if (kn == 0) {
        errf(errmsg, "line %d: empty key before '='", line);
        return CN_EINVAL;
    }
    for (size_t i = 0; i < kn; i++) {
        if (!key_char_ok(k[i])) {
            errf(errmsg, "line %d: key \"%.*s\": invalid character in key name",
                 line, (int)(kn > 40 ? 40 : kn), k);
            return CN_EINVAL;
        }
    }
    if (section[0] == '\0') {
        errf(errmsg, "line %d: key %.*s: assignment outside of any section",
             line, (int)(kn > 40 ? 40 : kn), k);
        return CN_EINVAL;
    }
    const char *v = eq + 1;
    size_t vn = (size_t)(p + n - v);
    trim(&v, &vn);
    return opt_add(uf, section, k, kn, v, vn, line);
}

int fleet_unit_file_parse(const char *text, size_t len,
                          struct fleet_unit_file *uf, char *errmsg)
{
    memset(uf, 0, sizeof(*uf));
    errmsg[0] = '\0';
    if (len > FLEET_UNIT_BYTES_MAX) {
        errf(errmsg, "unit file larger than %d bytes", FLEET_UNIT_BYTES_MAX);
        return CN_ETOOBIG;
    }
    if (memchr(text, '\0', len) != NULL) {
        int line = 1;
        for (const char *q = text; *q; q++)
            line += *q == '\n';
        errf(errmsg, "line %d: NUL byte in unit file", line);
        return CN_EINVAL;
    }
    char section[64] = "";
    struct cn_buf logical = {0};
    int rc = 0;
    int line = 0, key_line = 0;
    int continuing = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);
        line++;
        const char *p = start;
        trim(&p, &n);
        if (!continuing) {
            if (n == 0 || p[0] == '#' || p[0] == ';')
                continue;
            if (p[0] == '[') {
                rc = parse_header(p, n, line, section, errmsg);
                if (rc != 0)
                    goto out;
                continue;
            }
            key_line = line;
            cn_buf_reset(&logical);
        } else if (n > 0 && (p[0] == '#' || p[0] == ';')) {
            continue; /* systemd skips comments inside continuations */
        }
        int more = n > 0 && p[n - 1] == '\\';
        if (more) {
            n--;
            trim(&p, &n);
        }
        if (continuing && logical.len > 0 && n > 0)
            rc = cn_buf_append_char(&logical, ' ');
        if (rc == 0)
            rc = cn_buf_append(&logical, p, n);
        if (rc != 0)
            goto out;
        if (logical.len > FLEET_LINE_BYTES_MAX) {
            errf(errmsg, "line %d: line longer than %d bytes", key_line,
                 FLEET_LINE_BYTES_MAX);
            rc = CN_EINVAL;
            goto out;
        }
        continuing = more;
        if (!more) {
            rc = parse_assignment(uf, section, logical.data ? logical.data : "",
                                  logical.len, key_line, errmsg);
            if (rc != 0)
                goto out;
        }
    }
    if (continuing) {
        const char *eq = memchr(logical.data, '=', logical.len);
        int kn = eq ? (int)(eq - logical.data) : (int)logical.len;
        errf(errmsg, "line %d: key %.*s: line continuation at end of file",
             key_line, kn > 40 ? 40 : kn, logical.data);
        rc = CN_EINVAL;
    }
out:
    cn_buf_close(&logical);
    return rc;
}

void fleet_unit_file_close(struct fleet_unit_file *uf)
{
    for (size_t i = 0; i < uf->count; i++) {
        cn_free(uf->opts[i].section);
        cn_free(uf->opts[i].name);
        cn_free(uf->opts[i].value);
    }
    cn_free(uf->opts);
    memset(uf, 0, sizeof(*uf));
}

const char *fleet_unit_file_get(const struct fleet_unit_file *uf,
                                const char *section, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < uf->count; i++)
        if (strcmp(uf->opts[i].section, section) == 0 &&
            strcmp(uf->opts[i].name, name) == 0)
            v = uf->opts[i].value;
    return v;
}

/* ---- values ---------------------------------------------------------- */

int fleet_parse_bool(const char *s, int *v)
{
    static const char *const yes[] = {"1", "yes", "true", "on", "y", "t"};
    static const char *const no[] = {"0", "no", "false", "off", "n", "f"};
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *v = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *v = 0;
            return 0;
        }
    }
    return CN_EINVAL;
}

int fleet_parse_timespan(const char *s, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {
        {"usec", 0.001},  {"us", 0.001},   {"msec", 1},   {"ms", 1},
        {"seconds", 1e3}, {"second", 1e3}, {"sec", 1e3},  {"s", 1e3},
        {"minutes", 6e4}, {"minute", 6e4}, {"min", 6e4},  {"m", 6e4},
        {"hours", 3.6e6}, {"hour", 3.6e6}, {"hr", 3.6e6}, {"h", 3.6e6},
        {"days", 8.64e7}, {"day", 8.64e7}, {"d", 8.64e7},
    };
    while (is_blank(*s))
        s++;
    if (strcmp(s, "infinity") == 0) {
        *ms = INT64_MAX;
        return 0;
    }
    if (*s == '\0')
        return CN_EINVAL;
    double total = 0;
    int parts = 0;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0')
            break;
        if (!isdigit((unsigned char)*s) && *s != '.')
            return CN_EINVAL;
        char *end;
        errno = 0;
        double v = strtod(s, &end);
        if (end == s || errno != 0 || v < 0)
            return CN_EINVAL;
        s = end;
        while (*s == ' ')
            s++;
        size_t ul = 0;
        while (isalpha((unsigned char)s[ul]))
            ul++;
        double mult = 1e3; /* a bare number is seconds */
        if (ul > 0) {
            size_t i;
            for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
                if (strlen(units[i].unit) == ul &&
                    strncmp(units[i].unit, s, ul) == 0)
                    break;
            if (i == sizeof(units) / sizeof(units[0]))
                return CN_EINVAL;
            mult = units[i].ms;
        } else if (s[0] != '\0') {
            return CN_EINVAL; /* a bare number only as the last part */
        }
        total += v * mult;
        s += ul;
        parts++;
    }
    if (total > 9.0e15)
        return CN_EINVAL;
    *ms = (int64_t)(total + 0.5);
    return 0;
}

/* "512M", "1G", "1048576", "infinity" (0). */
static int parse_size(const char *s, uint64_t *bytes)
{
    if (strcmp(s, "infinity") == 0) {
        *bytes = 0;
        return 0;
    }
    if (!isdigit((unsigned char)s[0]))
        return CN_EINVAL;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0)
        return CN_EINVAL;
    uint64_t mult = 1;
    switch (*end) {
    case '\0':
        break;
    case 'K':
        mult = 1024;
        end++;
        break;
    case 'M':
        mult = 1024 * 1024;
        end++;
        break;
    case 'G':
        mult = 1024ull * 1024 * 1024;
        end++;
        break;
    case 'T':
        mult = 1024ull * 1024 * 1024 * 1024;
        end++;
        break;
    default:
        return CN_EINVAL;
    }
    if (*end != '\0' || v == 0 || v > UINT64_MAX / mult)
        return CN_EINVAL;
    *bytes = v * mult;
    return 0;
}

/* "50%": 50. */
static int parse_percent(const char *s, int *pct)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || errno != 0 || strcmp(end, "%") != 0 || v <= 0 || v > 100000)
        return CN_EINVAL;
    *pct = (int)v;
    return 0;
}

void fleet_strv_close(struct fleet_strv *l)
{
    for (size_t i = 0; i < l->n; i++)
        cn_free(l->v[i]);
    cn_free(l->v);
    cn_free(l->lines);
    memset(l, 0, sizeof(*l));
}

static int strv_add(struct fleet_strv *l, const char *s, size_t n, int line)
{
    char **v = cn_realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL)
        return CN_ENOMEM;
    l->v = v;
    int *lines = cn_realloc(l->lines, (l->n + 1) * sizeof(*lines));
    if (lines == NULL)
        return CN_ENOMEM;
    l->lines = lines;
    char *c = xstrndup(s, n);
    if (c == NULL)
        return CN_ENOMEM;
    l->v[l->n] = c;
    l->lines[l->n] = line;
    l->n++;
    return 0;
}

/* Adds each blank-separated word of value (systemd's list keys); an empty
 * value resets the list. */
static int strv_add_words(struct fleet_strv *l, const char *value, int line)
{
    if (value[0] == '\0') {
        fleet_strv_close(l);
        return 0;
    }
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        const char *w = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        if (p > w) {
            int rc = strv_add(l, w, (size_t)(p - w), line);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int set_str(char **dst, const char *v)
{
    char *c = xstrdup(v);
    if (c == NULL)
        return CN_ENOMEM;
    cn_free(*dst);
    *dst = c;
    return 0;
}

/* ---- exec lines ------------------------------------------------------ */

static const char *env_lookup(char *const *env, size_t n, const char *name,
                              size_t name_len)
{
    const char *v = NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(env[i], name, name_len) == 0 && env[i][name_len] == '=')
            v = env[i] + name_len + 1;
    return v;
}

static int argv_push(char ***argv, size_t *n, struct cn_buf *w)
{
    char **a = cn_realloc(*argv, (*n + 2) * sizeof(*a));
    if (a == NULL)
        return CN_ENOMEM;
    *argv = a;
    a[*n] = NULL;
    char *s = xstrndup(w->data ? w->data : "", w->len);
    if (s == NULL)
        return CN_ENOMEM;
    a[(*n)++] = s;
    a[*n] = NULL;
    cn_buf_reset(w);
    return 0;
}

void fleet_argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (size_t i = 0; argv[i]; i++)
        cn_free(argv[i]);
    cn_free(argv);
}

static int escape_char(char c, char *out)
{
    switch (c) {
    case 'n':
        *out = '\n';
        return 0;
    case 't':
        *out = '\t';
        return 0;
    case '\\':
    case '"':
    case '\'':
    case ' ':
    case '$':
    case ';':
        *out = c;
        return 0;
    default:
        return CN_EINVAL;
    }
}

int fleet_exec_split(const char *cmd, char *const *env, size_t env_count,
                     char ***argv_out, int *ignore_failure, char *errmsg)
{
    char **argv = NULL;
    size_t n = 0;
    struct cn_buf w = {0};
    int rc = 0;
    *argv_out = NULL;
    *ignore_failure = 0;
    const char *p = cmd;
    while (*p == ' ' || *p == '\t')
        p++;
    while (*p == '-' || *p == '@' || *p == '+' || *p == '!' || *p == ':') {
        if (*p != '-') {
            errf(errmsg, "command prefix '%c' is not supported", *p);
            return CN_EINVAL;
        }
        *ignore_failure = 1;
        p++;
    }
    int in_word = 0;
    char quote = 0;
    for (; *p || in_word; p++) {
        char c = *p;
        if (c == '\0' || (!quote && (c == ' ' || c == '\t'))) {
            if (in_word && (rc = argv_push(&argv, &n, &w)) != 0)
                goto fail;
            in_word = 0;
            if (c == '\0')
                break;
            continue;
        }
        if (!quote && (c == '"' || c == '\'')) {
            quote = c;
            in_word = 1;
            continue;
        }
        if (quote && c == quote) {
            quote = 0;
            continue;
        }
        in_word = 1;
        if (c == '\\' && quote != '\'') {
            char e;
            if (p[1] == '\0' || escape_char(p[1], &e) != 0) {
                errf(errmsg, "invalid escape \"\\%c\"", p[1] ? p[1] : ' ');
                rc = CN_EINVAL;
                goto fail;
            }
            rc = cn_buf_append_char(&w, e);
            p++;
        } else if (c == '$' && quote != '\'' && p[1] == '$') {
            rc = cn_buf_append_char(&w, '$');
            p++;
        } else if (c == '$' && quote != '\'' &&
                   (p[1] == '{' || isalpha((unsigned char)p[1]) ||
                    p[1] == '_')) {
            const char *name = p + 1;
            size_t len = 0;
            if (p[1] == '{') {
                name = p + 2;
                const char *close = strchr(name, '}');
                if (close == NULL) {
                    errf(errmsg, "unterminated ${");
                    rc = CN_EINVAL;
                    goto fail;
                }
                len = (size_t)(close - name);
                p = close;
            } else {
                while (isalnum((unsigned char)name[len]) || name[len] == '_')
                    len++;
                p = name + len - 1;
            }
            const char *v = env_lookup(env, env_count, name, len);
            if (v)
                rc = cn_buf_append_cstr(&w, v);
        } else {
            rc = cn_buf_append_char(&w, c);
        }
        if (rc != 0)
            goto fail;
    }
    if (quote) {
        errf(errmsg, "unbalanced quote %c", quote);
        rc = CN_EINVAL;
        goto fail;
    }
    if (n == 0) {
        errf(errmsg, "empty command");
        rc = CN_EINVAL;
        goto fail;
    }
    cn_buf_close(&w);
    *argv_out = argv;
    return 0;
fail:
    cn_buf_close(&w);
    fleet_argv_free(argv);
    return rc;
}

/* ---- names, specifiers ----------------------------------------------- */

static const char *const unit_types[] = {
    ".service", ".socket", ".device", ".mount",    ".automount", ".swap",
    ".target",  ".path",   ".timer",  ".snapshot", ".slice",     ".scope",
};

static const char *unit_suffix(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(unit_types) / sizeof(unit_types[0]); i++)
        if (strcmp(dot, unit_types[i]) == 0)
            return dot;
    return NULL;
}

int fleet_unit_name_kind(const char *name)
{
    size_t n = strlen(name);
    const char *suffix = unit_suffix(name);
    if (n == 0 || n >= FLEET_NAME_MAX || suffix == NULL || suffix == name)
        return CN_EINVAL;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && strchr(":_.@-\\", *p) == NULL)
            return CN_EINVAL;
    const char *at = strchr(name, '@');
    if (at == NULL)
        return FLEET_NAME_PLAIN;
    if (at == name || strchr(at + 1, '@') != NULL)
        return CN_EINVAL;
    return at + 1 == suffix ? FLEET_NAME_TEMPLATE : FLEET_NAME_INSTANCE;
}

int fleet_unit_template_of(const char *name, char *out, size_t size)
{
    if (fleet_unit_name_kind(name) != FLEET_NAME_INSTANCE)
        return CN_EINVAL;
    const char *at = strchr(name, '@');
    const char *suffix = unit_suffix(name);
    int w = snprintf(out, size, "%.*s@%s", (int)(at - name), name, suffix);
    return w < 0 || (size_t)w >= size ? CN_EINVAL : 0;
}

void fleet_unit_name_mangle(const char *arg, char *out, size_t size)
{
    const char *base = strrchr(arg, '/');
    base = base ? base + 1 : arg;
    if (unit_suffix(base) != NULL)
        snprintf(out, size, "%s", base);
    else
        snprintf(out, size, "%s.service", base);
}

int fleet_expand(const char *in, const struct fleet_spec *sp,
                 struct cn_buf *out, char *errmsg)
{
    const char *name = sp->name ? sp->name : "";
    const char *suffix = unit_suffix(name);
    size_t stem = suffix ? (size_t)(suffix - name) : strlen(name);
    const char *at = memchr(name, '@', stem);
    for (const char *p = in; *p; p++) {
        int rc;
        if (*p != '%') {
            rc = cn_buf_append_char(out, *p);
        } else {
            p++;
            switch (*p) {
            case '%':
                rc = cn_buf_append_char(out, '%');
                break;
            case 'n':
                rc = cn_buf_append_cstr(out, name);
                break;
            case 'N':
                rc = cn_buf_append(out, name, stem);
                break;
            case 'p':
                rc = cn_buf_append(out, name, at ? (size_t)(at - name) : stem);
                break;
            case 'i':
                rc = at ? cn_buf_append(out, at + 1,
                                        (size_t)(name + stem - at - 1))
                        : 0;
                break;
            case 'H':
                rc = cn_buf_append_cstr(out, sp->hostname ? sp->hostname : "");
                break;
            case 'm':
                rc = cn_buf_append_cstr(out,
                                        sp->machine_id ? sp->machine_id : "");
                break;
            default:
                errf(errmsg, "unknown specifier %%%c", *p ? *p : ' ');
                return CN_EINVAL;
            }
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

int fleet_glob_match(const char *glob, const char *name)
{
    return fnmatch(glob, name, 0) == 0;
}

/* ---- meaning --------------------------------------------------------- */

enum key_kind {
    K_STR,     /* char * */
    K_WORDS,   /* strv, blank-separated, empty resets */
    K_EXEC,    /* strv of command lines, empty resets */
    K_ENV,     /* strv of K=V (quoted words) */
    K_TIME,    /* int64_t ms */
    K_BOOL,    /* int */
    K_RESTART, /* int */
    K_SIZE,    /* uint64_t */
    K_PERCENT, /* int */
    K_META,    /* strv of k=v */
};

struct key_def {
    const char *section;
    const char *name;
    enum key_kind kind;
    size_t off;
};

#define F(m) offsetof(struct fleet_service, m)
static const struct key_def keys[] = {
    {"Unit", "Description", K_STR, F(description)},
    {"Unit", "After", K_WORDS, F(after)},
    {"Unit", "Requires", K_WORDS, F(requires)},
    {"Unit", "BindsTo", K_WORDS, F(binds_to)},
    {"Unit", "Wants", K_WORDS, F(wants)},
    {"Unit", "Before", K_WORDS, F(before)},
    {"Service", "ExecStartPre", K_EXEC, F(exec_start_pre)},
    {"Service", "ExecStart", K_EXEC, F(exec_start)},
    {"Service", "ExecStartPost", K_EXEC, F(exec_start_post)},
    {"Service", "ExecStop", K_EXEC, F(exec_stop)},
    {"Service", "ExecStopPost", K_EXEC, F(exec_stop_post)},
    {"Service", "Restart", K_RESTART, F(restart)},
    {"Service", "RestartSec", K_TIME, F(restart_ms)},
    {"Service", "TimeoutStartSec", K_TIME, F(timeout_start_ms)},
    {"Service", "TimeoutStopSec", K_TIME, F(timeout_stop_ms)},
    {"Service", "Environment", K_ENV, F(environment)},
    {"Service", "EnvironmentFile", K_STR, F(environment_file)},
    {"Service", "WorkingDirectory", K_STR, F(working_directory)},
    {"Service", "User", K_STR, F(user)},
    {"X-Fleet", "MachineID", K_STR, F(machine_id)},
    {"X-Fleet", "MachineMetadata", K_META, F(machine_metadata)},
    {"X-Fleet", "MachineOf", K_WORDS, F(machine_of)},
    {"X-Fleet", "Conflicts", K_WORDS, F(conflicts)},
    {"X-Fleet", "Replaces", K_WORDS, F(replaces)},
    {"X-Fleet", "Global", K_BOOL, F(global)},
    {"X-Cairn", "Isolate", K_BOOL, F(isolate)},
    {"X-Cairn", "MemoryMax", K_SIZE, F(memory_max)},
    {"X-Cairn", "CPUQuota", K_PERCENT, F(cpu_quota_percent)},
};
#undef F

/* Keys systemd knows that we accept and ignore without a warning. */
static const char *const quiet_keys[] = {
    "Unit/Documentation", "Service/Type",     "Service/RemainAfterExit",
    "Service/KillMode",   "Install/WantedBy", "Install/RequiredBy",
    "Install/Alias",
};

static int quiet(const char *section, const char *name)
{
    char both[160];
    snprintf(both, sizeof(both), "%s/%s", section, name);
    for (size_t i = 0; i < sizeof(quiet_keys) / sizeof(quiet_keys[0]); i++)
        if (strcmp(both, quiet_keys[i]) == 0)
            return 1;
    return 0;
}

/* Environment=: quoted words of "K=V". */
static int add_env(struct fleet_strv *l, const struct fleet_opt *o,
                   char *errmsg)
{
    if (o->value[0] == '\0') {
        fleet_strv_close(l);
        return 0;
    }
    char **words;
    int ignore;
    char sub[CN_ERRMSG_SIZE];
    /* No variables in Environment=: split with an empty environment, but
     * keep '$' literal by escaping it first. */
    struct cn_buf esc = {0};
    for (const char *p = o->value; *p; p++) {
        if (*p == '$' && cn_buf_append_char(&esc, '$') != 0) {
            cn_buf_close(&esc);
            return CN_ENOMEM;
        }
        if (cn_buf_append_char(&esc, *p) != 0) {
            cn_buf_close(&esc);
            return CN_ENOMEM;
        }
    }
    int rc = fleet_exec_split(esc.data, NULL, 0, &words, &ignore, sub);
    cn_buf_close(&esc);
    if (rc == CN_EINVAL || (rc == 0 && ignore)) {
        errf(errmsg, "line %d: key %s: %s", o->line, o->name,
             rc ? sub : "invalid assignment");
        if (rc == 0)
            fleet_argv_free(words);
        return CN_EINVAL;
    }
    if (rc != 0)
        return rc;
    for (size_t i = 0; words[i] && rc == 0; i++) {
        const char *eq = strchr(words[i], '=');
        if (eq == NULL || eq == words[i]) {
            errf(errmsg,
                 "line %d: key %s: \"%s\" is not a VAR=value assignment",
                 o->line, o->name, words[i]);
            rc = CN_EINVAL;
            break;
        }
        rc = strv_add(l, words[i], strlen(words[i]), o->line);
    }
    fleet_argv_free(words);
    return rc;
}

static int load_opt(struct fleet_service *s, const struct key_def *d,
                    const struct fleet_opt *o, char *errmsg)
{
    void *dst = (char *)s + d->off;
    const char *v = o->value;
    int rc = 0;
    char sub[CN_ERRMSG_SIZE];
    switch (d->kind) {
    case K_STR:
        if (v[0] == '\0') {
            cn_free(*(char **)dst);
            *(char **)dst = NULL;
            return 0;
        }
        return set_str((char **)dst, v);
    case K_WORDS:
        return strv_add_words(dst, v, o->line);
    case K_EXEC: {
        if (v[0] == '\0') {
            fleet_strv_close(dst);
            return 0;
        }
        char **argv;
        int ignore;
        rc = fleet_exec_split(v, NULL, 0, &argv, &ignore, sub);
        if (rc == CN_EINVAL) {
            errf(errmsg, "line %d: key %s: %s", o->line, o->name, sub);
            return rc;
        }
        if (rc != 0)
            return rc;
        fleet_argv_free(argv);
        struct cn_buf tmp = {0};
        rc = fleet_expand(v, &(struct fleet_spec){"x@y.service", "h", "m"},
                          &tmp, sub);
        cn_buf_close(&tmp);
        if (rc == CN_EINVAL) {
            errf(errmsg, "line %d: key %s: %s", o->line, o->name, sub);
            return rc;
        }
        if (rc != 0)
            return rc;
        return strv_add(dst, v, strlen(v), o->line);
    }
    case K_ENV:
        return add_env(dst, o, errmsg);
    case K_TIME:
        rc = fleet_parse_timespan(v, dst);
        if (rc != 0)
            errf(errmsg, "line %d: key %s: invalid time span \"%s\"", o->line,
                 o->name, v);
        return rc;
    case K_BOOL:
        rc = fleet_parse_bool(v, dst);
        if (rc != 0)
            errf(errmsg, "line %d: key %s: invalid boolean \"%s\"", o->line,
                 o->name, v);
        return rc;
    case K_RESTART:
        if (strcmp(v, "no") == 0)
            *(int *)dst = FLEET_RESTART_NO;
        else if (strcmp(v, "on-failure") == 0)
            *(int *)dst = FLEET_RESTART_ON_FAILURE;
        else if (strcmp(v, "always") == 0)
            *(int *)dst = FLEET_RESTART_ALWAYS;
        else {
            errf(errmsg,
                 "line %d: key %s: \"%s\" is not one of no, on-failure, "
                 "always",
                 o->line, o->name, v);
            return CN_EINVAL;
        }
        return 0;
    case K_SIZE:
        rc = parse_size(v, dst);
        if (rc != 0)
            errf(errmsg, "line %d: key %s: invalid size \"%s\"", o->line,
                 o->name, v);
        return rc;
    case K_PERCENT:
        rc = parse_percent(v, dst);
        if (rc != 0)
            errf(errmsg, "line %d: key %s: invalid percentage \"%s\"", o->line,
                 o->name, v);
        return rc;
    case K_META: {
        struct fleet_strv *l = dst;
        size_t before = l->n;
        if ((rc = strv_add_words(l, v, o->line)) != 0)
            return rc;
        for (size_t i = before; i < l->n; i++) {
            const char *eq = strchr(l->v[i], '=');
            if (eq == NULL || eq == l->v[i] || eq[1] == '\0') {
                errf(errmsg, "line %d: key %s: \"%s\" is not key=value",
                     o->line, o->name, l->v[i]);
                return CN_EINVAL;
            }
        }
        return 0;
    }
    }
    return CN_EINVAL;
}

static int warn(struct fleet_service *s, const struct fleet_opt *o,
                const char *what)
{
    return cn_buf_printf(&s->warnings, "line %d: %s %s in [%s]\n", o->line,
                         what, o->name, o->section);
}

static int check_whole(const struct fleet_unit_file *uf,
                       struct fleet_service *s, char *errmsg)
{
    int has_service = 0;
    for (size_t i = 0; i < uf->count; i++)
        has_service |= strcmp(uf->opts[i].section, "Service") == 0;
    if (has_service && s->exec_start.n == 0) {
        errf(errmsg, "line %d: key ExecStart: [Service] has no ExecStart=",
             uf->count ? uf->opts[uf->count - 1].line : 0);
        return CN_EINVAL;
    }
    if (s->exec_start.n > 1) {
        errf(errmsg,
             "line %d: key ExecStart: more than one ExecStart= "
             "(only Type=simple services are supported)",
             s->exec_start.lines[1]);
        return CN_EINVAL;
    }
    const char *type = fleet_unit_file_get(uf, "Service", "Type");
    if (type && strcmp(type, "simple") != 0 && strcmp(type, "exec") != 0) {
        for (size_t i = 0; i < uf->count; i++)
            if (strcmp(uf->opts[i].name, "Type") == 0)
                errf(errmsg,
                     "line %d: key Type: \"%s\" is not supported (only "
                     "simple)",
                     uf->opts[i].line, type);
        return CN_EINVAL;
    }
    if (s->global && (s->machine_of.n > 0 || s->machine_id != NULL)) {
        int line = s->machine_of.n ? s->machine_of.lines[0] : 0;
        for (size_t i = 0; line == 0 && i < uf->count; i++)
            if (strcmp(uf->opts[i].name, "MachineID") == 0)
                line = uf->opts[i].line;
        errf(errmsg, "line %d: key %s: cannot be combined with Global=true",
             line, s->machine_of.n ? "MachineOf" : "MachineID");
        return CN_EINVAL;
    }
    return 0;
}

int fleet_service_load(const struct fleet_unit_file *uf,
                       struct fleet_service *s, char *errmsg)
{
    memset(s, 0, sizeof(*s));
    s->restart_ms = 100; /* systemd's RestartSec default */
    s->timeout_start_ms = 90000;
    s->timeout_stop_ms = 90000;
    errmsg[0] = '\0';
    for (size_t i = 0; i < uf->count; i++) {
        const struct fleet_opt *o = &uf->opts[i];
        const struct key_def *d = NULL;
        int known_section = 0;
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            if (strcmp(keys[k].section, o->section) != 0)
                continue;
            known_section = 1;
            if (strcmp(keys[k].name, o->name) == 0)
                d = &keys[k];
        }
        int rc;
        if (d != NULL)
            rc = load_opt(s, d, o, errmsg);
        else if (quiet(o->section, o->name))
            rc = 0;
        else if (known_section || strcmp(o->section, "Install") == 0)
            rc = warn(s, o, "unknown key");
        else
            rc = warn(s, o, "key in unknown section,");
        if (rc != 0)
            return rc;
    }
    return check_whole(uf, s, errmsg);
}

void fleet_service_close(struct fleet_service *s)
{
    cn_free(s->description);
    fleet_strv_close(&s->after);
    fleet_strv_close(&s->requires);
    fleet_strv_close(&s->binds_to);
    fleet_strv_close(&s->wants);
    fleet_strv_close(&s->before);
    fleet_strv_close(&s->exec_start_pre);
    fleet_strv_close(&s->exec_start);
    fleet_strv_close(&s->exec_start_post);
    fleet_strv_close(&s->exec_stop);
    fleet_strv_close(&s->exec_stop_post);
    fleet_strv_close(&s->environment);
    cn_free(s->environment_file);
    cn_free(s->working_directory);
    cn_free(s->user);
    cn_free(s->machine_id);
    fleet_strv_close(&s->machine_metadata);
    fleet_strv_close(&s->machine_of);
    fleet_strv_close(&s->conflicts);
    fleet_strv_close(&s->replaces);
    cn_buf_close(&s->warnings);
    memset(s, 0, sizeof(*s));
}

int fleet_service_parse(const char *text, size_t len, struct fleet_service *s,
                        char *errmsg)
{
    struct fleet_unit_file uf;
    memset(s, 0, sizeof(*s));
    int rc = fleet_unit_file_parse(text, len, &uf, errmsg);
    if (rc == 0)
        rc = fleet_service_load(&uf, s, errmsg);
    fleet_unit_file_close(&uf);
    return rc;
}

void fleet_sha1_hex(const void *data, size_t len, char hex[41])
{
    uint8_t d[CN_SHA1_BYTES];
    cn_sha1(data, len, d);
    for (int i = 0; i < CN_SHA1_BYTES; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
}
