/*
 * cli_fmt: how etcdctl v2 prints things, byte for byte, and the URL escaping
 * Go's net/url applies to requests. Pure functions over struct cn_buf.
 *
 * The json format is Go's json.Marshal of etcd's client.Response: node
 * fields in the order key, dir (omitted when false), value, nodes (null
 * when absent), createdIndex, modifiedIndex, expiration and ttl (omitted
 * when zero); prevNode null when absent.
 */
#include "cli_int.h"

#include <string.h>

static const char hexdig_lower[] = "0123456789abcdef";
static const char hexdig_upper[] = "0123456789ABCDEF";

/* Length of a valid UTF-8 sequence at s (n bytes left) and its code point,
 * or 0 when invalid. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t min;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80, *cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800, *cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000, *cp = c & 0x07;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3f);
    }
    if (*cp < min || *cp > 0x10ffff || (*cp >= 0xd800 && *cp <= 0xdfff))
        return 0;
    return len;
}

int cli_fmt_go_string(struct cn_buf *out, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = cn_buf_append_char(out, '"');
    size_t i = 0;
    while (rc == CN_OK && i < n) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            if (c == '"' || c == '\\') {
                char e[2] = {'\\', (char)c};
                rc = cn_buf_append(out, e, 2);
            } else if (c == '\n') {
                rc = cn_buf_append_cstr(out, "\\n");
            } else if (c == '\r') {
                rc = cn_buf_append_cstr(out, "\\r");
            } else if (c == '\t') {
                rc = cn_buf_append_cstr(out, "\\t");
            } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
                char e[6] = {'\\',
                             'u',
                             '0',
                             '0',
                             hexdig_lower[c >> 4],
                             hexdig_lower[c & 0xf]};
                rc = cn_buf_append(out, e, 6);
            } else {
                rc = cn_buf_append_char(out, (char)c);
            }
            continue;
        }
        uint32_t cp = 0;
        size_t len = utf8_decode(p + i, n - i, &cp);
        if (len == 0) {
            rc = cn_buf_append_cstr(out, "\\ufffd");
            i++;
        } else if (cp == 0x2028 || cp == 0x2029) {
            rc = cn_buf_printf(out, "\\u%04x", (unsigned)cp);
            i += len;
        } else {
            rc = cn_buf_append(out, p + i, len);
            i += len;
        }
    }
    if (rc == CN_OK)
        rc = cn_buf_append_char(out, '"');
    return rc;
}

int cli_fmt_go_time(struct cn_buf *out, const char *t)
{
    /* 2006-01-02T15:04:05[.fraction](Z|+hh:mm|-hh:mm) */
    size_t n = strlen(t);
    const char *dot = strchr(t, '.');
    const char *zone = t + n;
    for (size_t i = 19; i < n; i++) {
        if (t[i] == 'Z' || t[i] == 'z' || t[i] == '+' || t[i] == '-') {
            zone = t + i;
            break;
        }
    }
    if (n < 20 || zone == t + n)
        return cn_buf_append_cstr(out, t); /* not RFC 3339: keep */
    size_t head =
        dot != NULL && dot < zone ? (size_t)(dot - t) : (size_t)(zone - t);
    int rc = cn_buf_append(out, t, head);
    if (rc == CN_OK && dot != NULL && dot < zone) {
        size_t flen = (size_t)(zone - dot - 1);
        if (flen > 9)
            flen = 9;
        while (flen > 0 && dot[flen] == '0')
            flen--;
        if (flen > 0)
            rc = cn_buf_append(out, dot, flen + 1);
    }
    if (rc != CN_OK)
        return rc;
    if (*zone == 'z' || *zone == 'Z' || strcmp(zone, "+00:00") == 0 ||
        strcmp(zone, "-00:00") == 0)
        return cn_buf_append_char(out, 'Z');
    return cn_buf_append_cstr(out, zone);
}

static int json_node(struct cn_buf *o, const struct cli_node *n)
{
    int rc = cn_buf_append_cstr(o, "{\"key\":");
    if (rc == CN_OK)
        rc = cli_fmt_go_string(o, n->key, strlen(n->key));
    if (rc == CN_OK && n->dir)
        rc = cn_buf_append_cstr(o, ",\"dir\":true");
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(o, ",\"value\":");
    if (rc == CN_OK)
        rc = cli_fmt_go_string(o, n->value, strlen(n->value));
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(o, ",\"nodes\":");
    if (rc == CN_OK && !n->has_nodes)
        rc = cn_buf_append_cstr(o, "null");
    if (rc == CN_OK && n->has_nodes) {
        rc = cn_buf_append_char(o, '[');
        for (size_t i = 0; rc == CN_OK && i < n->node_count; i++) {
            if (i > 0)
                rc = cn_buf_append_char(o, ',');
            if (rc == CN_OK)
                rc = json_node(o, &n->nodes[i]);
        }
        if (rc == CN_OK)
            rc = cn_buf_append_char(o, ']');
    }
    if (rc == CN_OK)
        rc = cn_buf_printf(o, ",\"createdIndex\":%llu,\"modifiedIndex\":%llu",
                           (unsigned long long)n->created_index,
                           (unsigned long long)n->modified_index);
    if (rc == CN_OK && n->expiration != NULL) {
        rc = cn_buf_append_cstr(o, ",\"expiration\":\"");
        if (rc == CN_OK)
            rc = cli_fmt_go_time(o, n->expiration);
        if (rc == CN_OK)
            rc = cn_buf_append_char(o, '"');
    }
    if (rc == CN_OK && n->ttl != 0)
        rc = cn_buf_printf(o, ",\"ttl\":%lld", (long long)n->ttl);
    if (rc == CN_OK)
        rc = cn_buf_append_char(o, '}');
    return rc;
}

int cli_fmt_json_resp(struct cn_buf *out, const struct cli_resp *r)
{
    int rc = cn_buf_append_cstr(out, "{\"action\":");
    if (rc == CN_OK)
        rc = cli_fmt_go_string(out, r->action, strlen(r->action));
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(out, ",\"node\":");
    if (rc == CN_OK)
        rc =
            r->node ? json_node(out, r->node) : cn_buf_append_cstr(out, "null");
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(out, ",\"prevNode\":");
    if (rc == CN_OK)
        rc = r->prev_node ? json_node(out, r->prev_node)
                          : cn_buf_append_cstr(out, "null");
    if (rc == CN_OK)
        rc = cn_buf_append_cstr(out, "}\n");
    return rc;
}

int cli_fmt_resp(struct cn_buf *out, struct cn_buf *err,
                 const struct cli_resp *r, const char *format)
{
    static const struct cli_node empty = {.key = "", .value = ""};
    const struct cli_node *n = r->node ? r->node : &empty;
    int is_delete = strcmp(r->action, "delete") == 0;
    if (strcmp(format, "simple") == 0) {
        if (!is_delete)
            return cn_buf_printf(out, "%s\n", n->value);
        return cn_buf_printf(out, "PrevNode.Value: %s\n",
                             r->prev_node ? r->prev_node->value : "");
    }
    if (strcmp(format, "extended") == 0) {
        int rc = cn_buf_printf(out,
                               "Key: %s\nCreated-Index: %llu\n"
                               "Modified-Index: %llu\n",
                               n->key, (unsigned long long)n->created_index,
                               (unsigned long long)n->modified_index);
        if (rc == CN_OK && r->prev_node != NULL)
            rc =
                cn_buf_printf(out, "PrevNode.Value: %s\n", r->prev_node->value);
        if (rc == CN_OK)
            rc = cn_buf_printf(out, "TTL: %lld\nIndex: %llu\n",
                               (long long)n->ttl, (unsigned long long)r->index);
        if (rc == CN_OK && !is_delete)
            rc = cn_buf_printf(out, "\n%s\n", n->value);
        return rc;
    }
    if (strcmp(format, "json") == 0)
        return cli_fmt_json_resp(out, r);
    return cn_buf_printf(err, "Unsupported output format: %s\n", format);
}

static int ls_node(struct cn_buf *out, const struct cli_node *n, int slash)
{
    int rc = cn_buf_printf(out, "%s%s\n", n->key, n->dir && slash ? "/" : "");
    for (size_t i = 0; rc == CN_OK && i < n->node_count; i++)
        rc = ls_node(out, &n->nodes[i], slash);
    return rc;
}

int cli_fmt_ls(struct cn_buf *out, const struct cli_resp *r, int dir_slash)
{
    int rc = CN_OK;
    if (!r->node->dir)
        rc = cn_buf_printf(out, "%s\n", r->node->key);
    for (size_t i = 0; rc == CN_OK && i < r->node->node_count; i++)
        rc = ls_node(out, &r->node->nodes[i], dir_slash);
    return rc;
}

int cli_fmt_etcd_error(struct cn_buf *out, const struct cli_etcd_error *e)
{
    return cn_buf_printf(out, "Error:  %d: %s (%s) [%llu]\n", e->code,
                         e->message ? e->message : "", e->cause ? e->cause : "",
                         (unsigned long long)e->index);
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
           c == '~';
}

static int pct(struct cn_buf *out, unsigned char c)
{
    char e[3] = {'%', hexdig_upper[c >> 4], hexdig_upper[c & 0xf]};
    return cn_buf_append(out, e, 3);
}

int cli_fmt_escape_path(struct cn_buf *out, const char *s)
{
    int rc = CN_OK;
    for (const unsigned char *p = (const unsigned char *)s; rc == CN_OK && *p;
         p++) {
        if (is_unreserved(*p) || strchr("$&+,/:;=@", *p) != NULL)
            rc = cn_buf_append_char(out, (char)*p);
        else
            rc = pct(out, *p);
    }
    return rc;
}

int cli_fmt_escape_query(struct cn_buf *out, const char *s)
{
    int rc = CN_OK;
    for (const unsigned char *p = (const unsigned char *)s; rc == CN_OK && *p;
         p++) {
        if (is_unreserved(*p))
            rc = cn_buf_append_char(out, (char)*p);
        else if (*p == ' ')
            rc = cn_buf_append_char(out, '+');
        else
            rc = pct(out, *p);
    }
    return rc;
}

int cli_fmt_clean_path(struct cn_buf *out, const char *p)
{
    size_t start = out->len;
    size_t n = strlen(p);
    int trailing = n > 0 && p[n - 1] == '/';
    int rc = cn_buf_append_char(out, '/');
    size_t i = 0;
    while (rc == CN_OK && i < n) {
        while (i < n && p[i] == '/')
            i++;
        size_t j = i;
        while (j < n && p[j] != '/')
            j++;
        size_t seg = j - i;
        if (seg == 0 || (seg == 1 && p[i] == '.')) {
            /* skip */
        } else if (seg == 2 && p[i] == '.' && p[i + 1] == '.') {
            /* back up to the previous '/' (never above the root) */
            while (out->len > start + 1 && out->data[out->len - 1] != '/')
                out->len--;
            if (out->len > start + 1)
                out->len--;
            out->data[out->len] = '\0';
        } else {
            if (out->len > start + 1)
                rc = cn_buf_append_char(out, '/');
            if (rc == CN_OK)
                rc = cn_buf_append(out, p + i, seg);
        }
        i = j;
    }
    if (rc == CN_OK && trailing && out->len > start + 1)
        rc = cn_buf_append_char(out, '/');
    return rc;
}
