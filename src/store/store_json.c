/*
 * store_json: answers as etcd writes them with Go's encoding/json.
 *
 * Strings are escaped like Go's HTML-safe encoder: \" \\ \n \r \t, other
 * control bytes as \u00XX (lower-case hex), '<' '>' '&' as \u003c \u003e
 * \u0026, U+2028 and U+2029 escaped, and every byte that does not start a
 * valid UTF-8 sequence replaced by \ufffd (one per byte, as Go decodes).
 * Times are time.Time's JSON: RFC 3339 with nanoseconds, trailing zeros of
 * the fraction trimmed (RFC3339Nano), always UTC ("Z").
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

/* Bytes written as they are: printable ASCII but " \\ < > &, one bit per
 * byte value (0x20..0x7f; none below, none from 0x80 on). */
static const uint32_t json_plain[8] = {0, 0xAFFFFFBBu, 0xEFFFFFFFu,
                                       0xFFFFFFFFu};

static inline int json_is_plain(unsigned char c)
{
    return (int)(json_plain[c >> 5] >> (c & 31)) & 1;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid.
 * Same acceptance as Go's utf8.DecodeRune. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (n < need)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
    return need;
}

int store_json_str(struct cn_buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    /* worst case 6 output bytes per input byte, plus quotes */
    if (n > (SIZE_MAX - 2) / 6)
        return CN_ENOMEM;
    if (cn_buf_reserve(b, n + 2) != CN_OK)
        return CN_ENOMEM;
    size_t start = b->len;
    int rc = cn_buf_append_char(b, '"');
    size_t i = 0, run = 0;
    while (rc == CN_OK && i < n) {
        while (i < n && json_is_plain(p[i]))
            i++;
        if (i == n)
            break;
        unsigned char c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_len(p + i, n - i);
            if (l == 3 && c == 0xE2 && p[i + 1] == 0x80 &&
                (p[i + 2] == 0xA8 || p[i + 2] == 0xA9)) {
                rc = cn_buf_append(b, s + run, i - run);
                if (rc == CN_OK)
                    rc = cn_buf_append(
                        b, p[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
                i += 3;
                run = i;
                continue;
            }
            if (l != 0) {
                i += l;
                continue;
            }
            rc = cn_buf_append(b, s + run, i - run);
            if (rc == CN_OK)
                rc = cn_buf_append(b, "\\ufffd", 6);
            i++;
            run = i;
            continue;
        }
        rc = cn_buf_append(b, s + run, i - run);
        if (rc != CN_OK)
            break;
        switch (c) {
        case '"':
            rc = cn_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = cn_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = cn_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = cn_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = cn_buf_append(b, "\\t", 2);
            break;
        default: {
            char e[6] = {'\\', 'u', '0', '0', hexdig[c >> 4], hexdig[c & 15]};
            rc = cn_buf_append(b, e, 6);
        }
        }
        i++;
        run = i;
    }
    if (rc == CN_OK)
        rc = cn_buf_append(b, s + run, n - run);
    if (rc == CN_OK)
        rc = cn_buf_append_char(b, '"');
    if (rc != CN_OK) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return rc;
}

/* Days since 1970-01-01 to civil date (proleptic Gregorian). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

int store_json_time(struct cn_buf *b, int64_t t)
{
    int64_t sec = t / 1000000000, ns = t % 1000000000;
    if (ns < 0) {
        ns += 1000000000;
        sec--;
    }
    int64_t days = sec / 86400, rem = sec % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    char frac[16] = "";
    if (ns) {
        char digits[10];
        int64_t v = ns;
        for (int i = 8; i >= 0; i--) {
            digits[i] = (char)('0' + v % 10);
            v /= 10;
        }
        int len = 9;
        while (len > 0 && digits[len - 1] == '0')
            len--;
        frac[0] = '.';
        memcpy(frac + 1, digits, (size_t)len);
        frac[len + 1] = '\0';
    }
    return cn_buf_printf(b, "\"%04lld-%02u-%02uT%02d:%02d:%02d%sZ\"",
                         (long long)y, mo, d, (int)(rem / 3600),
                         (int)(rem / 60 % 60), (int)(rem % 60), frac);
}

int64_t store_ttl_left(int64_t expire_ns, int64_t now_ns)
{
    int64_t left;
    /* Go's Time.Sub saturates instead of overflowing. */
    if (__builtin_sub_overflow(expire_ns, now_ns, &left))
        left = expire_ns > now_ns ? INT64_MAX : INT64_MIN;
    int64_t ttl = left / 1000000000;
    if (left % 1000000000 > 0)
        ttl++;
    return ttl;
}

static int json_lit(struct cn_buf *b, const char *s)
{
    return cn_buf_append(b, s, strlen(s));
}

/* Appends the fields shared by views and tree nodes, from "expiration"
 * up to (not including) "nodes". */
static int json_field(struct cn_buf *b, int *first, const char *name);

static int json_ttl_fields(struct cn_buf *b, int *first, int64_t expire_ns,
                           int64_t now_ns, int show_ttl)
{
    if (expire_ns == 0)
        return CN_OK;
    int rc = json_field(b, first, "\"expiration\":");
    if (rc == CN_OK)
        rc = store_json_time(b, expire_ns);
    if (rc == CN_OK && show_ttl) {
        int64_t ttl = store_ttl_left(expire_ns, now_ns);
        if (ttl != 0)
            rc = cn_buf_printf(b, ",\"ttl\":%lld", (long long)ttl);
    }
    return rc;
}

static int json_indexes(struct cn_buf *b, int *first, uint64_t modified,
                        uint64_t created)
{
    int rc = CN_OK;
    if (modified) {
        rc = json_field(b, first, "\"modifiedIndex\":");
        if (rc == CN_OK)
            rc = cn_buf_append_u64(b, modified);
    }
    if (rc == CN_OK && created) {
        rc = json_field(b, first, "\"createdIndex\":");
        if (rc == CN_OK)
            rc = cn_buf_append_u64(b, created);
    }
    return rc;
}

/* Writes a field name, preceded by a comma unless it is the first. */
static int json_field(struct cn_buf *b, int *first, const char *name)
{
    int rc = CN_OK;
    if (!*first)
        rc = cn_buf_append_char(b, ',');
    *first = 0;
    if (rc == CN_OK)
        rc = json_lit(b, name);
    return rc;
}

int store_json_view(struct cn_buf *b, const struct store_view *v)
{
    size_t start = b->len;
    int first = 1;
    int rc = cn_buf_append_char(b, '{');
    if (rc == CN_OK && v->key != NULL) {
        rc = json_field(b, &first, "\"key\":");
        if (rc == CN_OK)
            rc = store_json_str(b, v->key, v->key_len);
    }
    if (rc == CN_OK && v->value != NULL) {
        rc = json_field(b, &first, "\"value\":");
        if (rc == CN_OK)
            rc = store_json_str(b, v->value, v->value_len);
    }
    if (rc == CN_OK && v->dir)
        rc = json_field(b, &first, "\"dir\":true");
    if (rc == CN_OK)
        rc = json_ttl_fields(b, &first, v->expire_ns, v->now_ns, v->show_ttl);
    if (rc == CN_OK)
        rc = json_indexes(b, &first, v->modified_index, v->created_index);
    if (rc == CN_OK)
        rc = cn_buf_append_char(b, '}');
    if (rc != CN_OK) {
        b->len = start;
        if (b->data)
            b->data[start] = '\0';
    }
    return rc;
}

static int child_cmp(const void *a, const void *b)
{
    const struct store_node *x = *(const struct store_node *const *)a;
    const struct store_node *y = *(const struct store_node *const *)b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c != 0)
        return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

static int json_child(struct cn_buf *b, const struct store_node *c, char *path,
                      size_t path_len, size_t path_cap, int recursive,
                      int sorted, int64_t now_ns)
{
    size_t base = path_len == 1 ? 0 : path_len; /* "/" + name at the root */
    size_t len = base + 1 + c->name_len;
    CN_ASSERT(len <= path_cap);
    path[base] = '/';
    memcpy(path + base + 1, c->name, c->name_len);
    return store_json_node(b, c, path, len, path_cap, recursive, recursive,
                           sorted, now_ns);
}

static int json_children(struct cn_buf *b, int *firstf,
                         const struct store_node *n, char *path,
                         size_t path_len, size_t path_cap, int recursive,
                         int sorted, int64_t now_ns)
{
    int rc = CN_OK, first = 1;
    const struct store_node **arr = NULL;
    size_t cnt = 0;
    if (sorted && n->u.dir.count > 1) {
        arr = cn_malloc(n->u.dir.count * sizeof(*arr));
        if (arr == NULL)
            return CN_ENOMEM;
        for (const struct store_node *c = n->u.dir.first; c; c = c->next)
            if (c->name[0] != '_')
                arr[cnt++] = c;
        qsort(arr, cnt, sizeof(*arr), child_cmp);
    }
    const struct store_node *c = n->u.dir.first;
    for (size_t i = 0;; i++) {
        const struct store_node *cur;
        if (arr) {
            if (i >= cnt)
                break;
            cur = arr[i];
        } else {
            if (c == NULL)
                break;
            cur = c;
            c = c->next;
            if (cur->name_len && cur->name[0] == '_')
                continue; /* hidden: never listed */
        }
        rc = first ? json_field(b, firstf, "\"nodes\":[")
                   : cn_buf_append_char(b, ',');
        first = 0;
        if (rc == CN_OK)
            rc = json_child(b, cur, path, path_len, path_cap, recursive, sorted,
                            now_ns);
        if (rc != CN_OK)
            break;
    }
    if (rc == CN_OK && !first)
        rc = cn_buf_append_char(b, ']');
    cn_free(arr);
    return rc;
}

int store_json_node(struct cn_buf *b, const struct store_node *n, char *path,
                    size_t path_len, size_t path_cap, int with_children,
                    int recursive, int sorted, int64_t now_ns)
{
    int first = 1;
    int rc = cn_buf_append_char(b, '{');
    if (rc == CN_OK && n->parent != NULL) {
        rc = json_field(b, &first, "\"key\":");
        if (rc == CN_OK)
            rc = store_json_str(b, path, path_len);
    }
    if (rc == CN_OK) {
        if (n->is_dir)
            rc = json_field(b, &first, "\"dir\":true");
        else {
            rc = json_field(b, &first, "\"value\":");
            if (rc == CN_OK)
                rc = store_json_str(b, n->u.value.data ? n->u.value.data : "",
                                    n->u.value.len);
        }
    }
    if (rc == CN_OK)
        rc = json_ttl_fields(b, &first, n->expire_ns, now_ns, 1);
    if (rc == CN_OK && n->is_dir && with_children)
        rc = json_children(b, &first, n, path, path_len, path_cap, recursive,
                           sorted, now_ns);
    if (rc == CN_OK)
        rc = json_indexes(b, &first, n->modified_index, n->created_index);
    if (rc == CN_OK)
        rc = cn_buf_append_char(b, '}');
    return rc;
}

/* ---- errors and names -------------------------------------------------- */

const char *store_ecode_message(int ecode)
{
    switch (ecode) {
    case 100:
        return "Key not found";
    case 101:
        return "Compare failed";
    case 102:
        return "Not a file";
    case 103:
        return "Reached the max number of peers in the cluster";
    case 104:
        return "Not a directory";
    case 105:
        return "Key already exists";
    case 106:
        return "The prefix of given key is a keyword in etcd";
    case 107:
        return "Root is read only";
    case 108:
        return "Directory not empty";
    case 109:
        return "Peer address has existed";
    case 110:
        return "The request requires user authentication";
    case 200:
        return "Value is Required in POST form";
    case 201:
        return "PrevValue is Required in POST form";
    case 202:
        return "The given TTL in POST form is not a number";
    case 203:
        return "The given index in POST form is not a number";
    case 204:
        return "Value or TTL is required in POST form";
    case 205:
        return "The given timeout in POST form is not a number";
    case 206:
        return "Name is required in POST form";
    case 207:
        return "Index or value is required";
    case 208:
        return "Index and value cannot both be specified";
    case 209:
        return "Invalid field";
    case 210:
        return "Invalid POST form";
    case 211:
        return "Value provided on refresh";
    case 212:
        return "A TTL must be provided on refresh";
    case 300:
        return "Raft Internal Error";
    case 301:
        return "During Leader Election";
    case 400:
        return "watcher is cleared due to etcd recovery";
    case 401:
        return "The event in requested index is outdated and cleared";
    case 402:
        return "Standby Internal Error";
    case 403:
        return "Invalid active size";
    case 404:
        return "Standby remove delay";
    case 500:
        return "Client Internal Error";
    default:
        return "";
    }
}

int store_ecode_status(int ecode)
{
    switch (ecode) {
    case 100:
        return 404;
    case 101:
    case 105:
        return 412;
    case 102:
    case 108:
        return 403;
    case 110:
        return 401;
    case 300:
    case 301:
        return 500;
    default:
        return 400;
    }
}

int store_error_json(struct cn_buf *out, int ecode, const char *cause,
                     uint64_t index)
{
    return store_error_json_n(out, ecode, cause, cause ? strlen(cause) : 0,
                              index);
}

int store_error_json_n(struct cn_buf *out, int ecode, const char *cause,
                       size_t cause_len, uint64_t index)
{
    size_t start = out->len;
    int rc = cn_buf_printf(out, "{\"errorCode\":%d,\"message\":", ecode);
    if (rc == CN_OK) {
        const char *m = store_ecode_message(ecode);
        rc = store_json_str(out, m, strlen(m));
    }
    if (rc == CN_OK && cause_len != 0) {
        rc = json_lit(out, ",\"cause\":");
        if (rc == CN_OK)
            rc = store_json_str(out, cause, cause_len);
    }
    if (rc == CN_OK)
        rc = json_lit(out, ",\"index\":");
    if (rc == CN_OK)
        rc = cn_buf_append_u64(out, index);
    if (rc == CN_OK)
        rc = cn_buf_append_char(out, '}');
    if (rc != CN_OK) {
        out->len = start;
        if (out->data)
            out->data[start] = '\0';
    }
    return rc;
}

const char *store_action_name(int action)
{
    switch (action) {
    case STORE_ACT_GET:
        return "get";
    case STORE_ACT_SET:
        return "set";
    case STORE_ACT_CREATE:
        return "create";
    case STORE_ACT_UPDATE:
        return "update";
    case STORE_ACT_CAS:
        return "compareAndSwap";
    case STORE_ACT_DELETE:
        return "delete";
    case STORE_ACT_CAD:
        return "compareAndDelete";
    case STORE_ACT_EXPIRE:
        return "expire";
    default:
        return "";
    }
}
