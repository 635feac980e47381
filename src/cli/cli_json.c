/*
 * cli_json: the one file of cli that includes jansson. It turns v2 answers
 * (key responses, errors, members, health) into plain structs and builds
 * the few JSON bodies cairnctl sends (member peer URLs, service values).
 *
 * Parsing is lenient the way Go's encoding/json is: unknown fields are
 * ignored, missing fields take zero values, a wrong type is CN_EPROTO.
 */
#include "cli_int.h"

#include <jansson.h>
#include <string.h>

static json_t *load(const char *body, size_t len)
{
    return json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
}

static int dup_str(json_t *obj, const char *name, char **out, int required)
{
    json_t *v = json_object_get(obj, name);
    const char *s = "";
    size_t n = 0;
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v))
            return CN_EPROTO;
        s = json_string_value(v);
        n = json_string_length(v);
    } else if (required) {
        return CN_EPROTO;
    }
    *out = cn_strndup(s, n);
    return *out ? CN_OK : CN_ENOMEM;
}

static int get_u64(json_t *obj, const char *name, uint64_t *out)
{
    json_t *v = json_object_get(obj, name);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return CN_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return CN_EPROTO;
    *out = (uint64_t)json_integer_value(v);
    return CN_OK;
}

void cli_node_close(struct cli_node *n)
{
    if (n == NULL)
        return;
    cn_free(n->key);
    cn_free(n->value);
    cn_free(n->expiration);
    for (size_t i = 0; i < n->node_count; i++)
        cli_node_close(&n->nodes[i]);
    cn_free(n->nodes);
    memset(n, 0, sizeof(*n));
}

static int parse_node(json_t *o, struct cli_node *n, int depth)
{
    memset(n, 0, sizeof(*n));
    if (!json_is_object(o) || depth > (int)CN_STORE_DEPTH_MAX + 2)
        return CN_EPROTO;
    int rc = dup_str(o, "key", &n->key, 0);
    if (rc == CN_OK)
        rc = dup_str(o, "value", &n->value, 0);
    if (rc != CN_OK)
        return rc;
    json_t *d = json_object_get(o, "dir");
    n->dir = d != NULL && json_is_true(d);
    json_t *e = json_object_get(o, "expiration");
    if (e != NULL && json_is_string(e)) {
        n->expiration = cn_strdup(json_string_value(e));
        if (n->expiration == NULL)
            return CN_ENOMEM;
    }
    json_t *t = json_object_get(o, "ttl");
    if (t != NULL && json_is_integer(t))
        n->ttl = (int64_t)json_integer_value(t);
    if ((rc = get_u64(o, "createdIndex", &n->created_index)) != CN_OK ||
        (rc = get_u64(o, "modifiedIndex", &n->modified_index)) != CN_OK)
        return rc;
    json_t *kids = json_object_get(o, "nodes");
    if (kids != NULL && !json_is_null(kids)) {
        if (!json_is_array(kids))
            return CN_EPROTO;
        n->has_nodes = 1;
        size_t count = json_array_size(kids);
        n->nodes = cn_calloc(count ? count : 1, sizeof(*n->nodes));
        if (n->nodes == NULL)
            return CN_ENOMEM;
        for (size_t i = 0; i < count; i++) {
            n->node_count = i + 1;
            rc = parse_node(json_array_get(kids, i), &n->nodes[i], depth + 1);
            if (rc != CN_OK)
                return rc;
        }
    }
    return CN_OK;
}

static int parse_node_field(json_t *root, const char *name,
                            struct cli_node **out)
{
    json_t *o = json_object_get(root, name);
    *out = NULL;
    if (o == NULL || json_is_null(o))
        return CN_OK;
    *out = cn_calloc(1, sizeof(**out));
    if (*out == NULL)
        return CN_ENOMEM;
    return parse_node(o, *out, 0);
}

int cli_json_parse_resp(const char *body, size_t len, struct cli_resp *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load(body, len);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return CN_EPROTO;
    }
    int rc = dup_str(root, "action", &out->action, 0);
    if (rc == CN_OK)
        rc = parse_node_field(root, "node", &out->node);
    if (rc == CN_OK)
        rc = parse_node_field(root, "prevNode", &out->prev_node);
    if (rc == CN_OK && out->node == NULL) {
        /* Go would leave Node nil and etcdctl would crash on it; a
         * response without a node is not a key API answer. */
        rc = CN_EPROTO;
    }
    json_decref(root);
    return rc;
}

void cli_resp_close(struct cli_resp *r)
{
    cn_free(r->action);
    if (r->node != NULL) {
        cli_node_close(r->node);
        cn_free(r->node);
    }
    if (r->prev_node != NULL) {
        cli_node_close(r->prev_node);
        cn_free(r->prev_node);
    }
    memset(r, 0, sizeof(*r));
}

int cli_json_parse_error(const char *body, size_t len,
                         struct cli_etcd_error *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load(body, len);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        return CN_EPROTO;
    }
    json_t *code = json_object_get(root, "errorCode");
    int rc = CN_OK;
    if (code != NULL && json_is_integer(code))
        out->code = (int)json_integer_value(code);
    else if (code != NULL && !json_is_null(code))
        rc = CN_EPROTO;
    if (rc == CN_OK)
        rc = dup_str(root, "message", &out->message, 0);
    if (rc == CN_OK)
        rc = dup_str(root, "cause", &out->cause, 0);
    if (rc == CN_OK)
        rc = get_u64(root, "index", &out->index);
    json_decref(root);
    return rc;
}

void cli_etcd_error_close(struct cli_etcd_error *e)
{
    cn_free(e->message);
    cn_free(e->cause);
    memset(e, 0, sizeof(*e));
}

static int str_array(json_t *o, const char *name, char ***out, size_t *count)
{
    json_t *a = json_object_get(o, name);
    *out = NULL;
    *count = 0;
    if (a == NULL || json_is_null(a))
        return CN_OK;
    if (!json_is_array(a))
        return CN_EPROTO;
    size_t n = json_array_size(a);
    *out = cn_calloc(n ? n : 1, sizeof(char *));
    if (*out == NULL)
        return CN_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v))
            return CN_EPROTO;
        (*out)[i] = cn_strdup(json_string_value(v));
        if ((*out)[i] == NULL)
            return CN_ENOMEM;
        *count = i + 1;
    }
    return CN_OK;
}

static int parse_member(json_t *o, struct cli_member *m)
{
    memset(m, 0, sizeof(*m));
    if (!json_is_object(o))
        return CN_EPROTO;
    int rc = dup_str(o, "id", &m->id, 0);
    if (rc == CN_OK)
        rc = dup_str(o, "name", &m->name, 0);
    if (rc == CN_OK)
        rc = str_array(o, "peerURLs", &m->peer_urls, &m->peer_count);
    if (rc == CN_OK)
        rc = str_array(o, "clientURLs", &m->client_urls, &m->client_count);
    return rc;
}

void cli_member_close(struct cli_member *m)
{
    cn_free(m->id);
    cn_free(m->name);
    for (size_t i = 0; i < m->peer_count; i++)
        cn_free(m->peer_urls[i]);
    cn_free(m->peer_urls);
    for (size_t i = 0; i < m->client_count; i++)
        cn_free(m->client_urls[i]);
    cn_free(m->client_urls);
    memset(m, 0, sizeof(*m));
}

void cli_members_free(struct cli_member *ms, size_t count)
{
    for (size_t i = 0; i < count; i++)
        cli_member_close(&ms[i]);
    cn_free(ms);
}

int cli_json_parse_member(const char *body, size_t len, struct cli_member *m)
{
    json_t *root = load(body, len);
    int rc = root ? parse_member(root, m) : CN_EPROTO;
    if (root == NULL)
        memset(m, 0, sizeof(*m));
    json_decref(root);
    return rc;
}

int cli_json_parse_members(const char *body, size_t len,
                           struct cli_member **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    json_t *root = load(body, len);
    json_t *a = root ? json_object_get(root, "members") : NULL;
    int rc = CN_OK;
    if (root == NULL || !json_is_object(root) ||
        (a != NULL && !json_is_array(a) && !json_is_null(a))) {
        rc = CN_EPROTO;
        goto out;
    }
    size_t n = json_is_array(a) ? json_array_size(a) : 0;
    *out = cn_calloc(n ? n : 1, sizeof(**out));
    if (*out == NULL) {
        rc = CN_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < n && rc == CN_OK; i++) {
        *count = i + 1;
        rc = parse_member(json_array_get(a, i), &(*out)[i]);
    }
out:
    json_decref(root);
    return rc;
}

int cli_json_parse_health(const char *body, size_t len, int *healthy)
{
    json_t *root = load(body, len);
    json_t *h =
        root && json_is_object(root) ? json_object_get(root, "health") : NULL;
    int rc = CN_OK;
    if (h != NULL && json_is_string(h))
        *healthy = strcmp(json_string_value(h), "true") == 0;
    else if (h != NULL && json_is_boolean(h))
        *healthy = json_is_true(h);
    else
        rc = CN_EPROTO;
    json_decref(root);
    return rc;
}

int cli_json_parse_message(const char *body, size_t len, char **msg)
{
    json_t *root = load(body, len);
    *msg = NULL;
    int rc = root && json_is_object(root) ? dup_str(root, "message", msg, 0)
                                          : CN_EPROTO;
    json_decref(root);
    return rc;
}

static int dump_into(struct cn_buf *out, json_t *v)
{
    if (v == NULL)
        return CN_ENOMEM;
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(v);
    if (s == NULL)
        return CN_ENOMEM;
    int rc = cn_buf_append_cstr(out, s);
    free(s);
    return rc;
}

int cli_json_peer_urls(struct cn_buf *out, char *const *urls, size_t n)
{
    json_t *a = json_array();
    json_t *o = json_object();
    if (a == NULL || o == NULL) {
        json_decref(a);
        json_decref(o);
        return CN_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(urls[i]));
    json_object_set_new(o, "peerURLs", a);
    return dump_into(out, o);
}

int cli_json_service_encode(struct cn_buf *out, const char *addr, int healthy,
                            const char *updated)
{
    json_t *o = json_object();
    if (o == NULL)
        return CN_ENOMEM;
    json_object_set_new(o, "addr", json_string(addr));
    json_object_set_new(o, "healthy", json_boolean(healthy));
    json_object_set_new(o, "updated", json_string(updated));
    return dump_into(out, o);
}

int cli_json_service_decode(const char *s, size_t len,
                            struct cli_service_value *out)
{
    memset(out, 0, sizeof(*out));
    json_t *root = load(s, len);
    int rc = CN_OK;
    if (root == NULL || !json_is_object(root)) {
        rc = CN_EPROTO;
        goto out;
    }
    json_t *h = json_object_get(root, "healthy");
    if (h != NULL && !json_is_boolean(h)) {
        rc = CN_EPROTO;
        goto out;
    }
    out->healthy = h == NULL || json_is_true(h);
    rc = dup_str(root, "addr", &out->addr, 1);
    if (rc == CN_OK)
        rc = dup_str(root, "updated", &out->updated, 0);
out:
    json_decref(root);
    return rc;
}

void cli_service_value_close(struct cli_service_value *v)
{
    cn_free(v->addr);
    cn_free(v->updated);
    memset(v, 0, sizeof(*v));
}
