/*
 * fleet_json: the JSON objects fleet keeps in the store, and the only file
 * of the module that includes jansson. Field names follow fleet's registry
 * models (docs/units.md): machines/<id>/object is a MachineState, states/
 * <unit>/<id> a unitStateModel, job/<unit>/object a jobModel, unit/<hash>
 * a unitModel, lease/engine-leader a lease. Decoders ignore unknown
 * fields and return CN_EPROTO for text that is not the expected object.
 */
#include <jansson.h>
#include <string.h>

#include "fleet_store.h"

static char *dup_str(const char *s)
{
    size_t n = strlen(s);
    char *p = cn_malloc(n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}

static int dump(json_t *o, struct cn_buf *out)
{
    if (o == NULL)
        return CN_ENOMEM;
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    if (s == NULL)
        return CN_ENOMEM;
    int rc = cn_buf_append_cstr(out, s);
    free(s);
    return rc;
}

static json_t *load(const char *text)
{
    json_error_t e;
    json_t *o = json_loads(text ? text : "", 0, &e);
    if (o != NULL && !json_is_object(o)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static void copy_field(json_t *o, const char *name, char *dst, size_t size)
{
    json_t *v = json_object_get(o, name);
    dst[0] = '\0';
    if (json_is_string(v))
        snprintf(dst, size, "%s", json_string_value(v));
}

static json_t *machine_obj(const struct fleet_machine *m)
{
    json_t *meta = json_object();
    for (size_t i = 0; meta && i < m->metadata.n; i++) {
        const char *kv = m->metadata.v[i];
        const char *eq = strchr(kv, '=');
        if (eq == NULL)
            continue;
        char key[128];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
        json_object_set_new(meta, key, json_string(eq + 1));
    }
    return json_pack("{s:s, s:s, s:o, s:s}", "ID", m->id, "PublicIP", m->ip,
                     "Metadata", meta ? meta : json_null(), "Version",
                     FLEET_VERSION);
}

int fleet_json_machine_encode(struct cn_buf *out, const struct fleet_machine *m)
{
    return dump(machine_obj(m), out);
}

static int machine_from(json_t *o, struct fleet_machine *m)
{
    memset(m, 0, sizeof(*m));
    if (!json_is_object(o))
        return CN_EPROTO;
    copy_field(o, "ID", m->id, sizeof(m->id));
    copy_field(o, "PublicIP", m->ip, sizeof(m->ip));
    if (m->id[0] == '\0')
        return CN_EPROTO;
    json_t *meta = json_object_get(o, "Metadata");
    if (!json_is_object(meta))
        return 0;
    /* Sorted by key, as fleetctl prints them. */
    const char *key;
    json_t *val;
    struct fleet_strv l = {0};
    json_object_foreach(meta, key, val)
    {
        if (!json_is_string(val))
            continue;
        size_t n = strlen(key) + strlen(json_string_value(val)) + 2;
        char *kv = cn_malloc(n);
        char **v = cn_realloc(l.v, (l.n + 1) * sizeof(*v));
        int *lines = cn_realloc(l.lines, (l.n + 1) * sizeof(*lines));
        if (v)
            l.v = v;
        if (lines)
            l.lines = lines;
        if (kv == NULL || v == NULL || lines == NULL) {
            cn_free(kv);
            fleet_strv_close(&l);
            return CN_ENOMEM;
        }
        snprintf(kv, n, "%s=%s", key, json_string_value(val));
        size_t i = l.n;
        while (i > 0 && strcmp(l.v[i - 1], kv) > 0) {
            l.v[i] = l.v[i - 1];
            i--;
        }
        l.v[i] = kv;
        l.lines[l.n] = 0;
        l.n++;
    }
    m->metadata = l;
    return 0;
}

int fleet_json_machine_decode(const char *text, struct fleet_machine *m)
{
    json_t *o = load(text);
    int rc = machine_from(o, m);
    json_decref(o);
    return rc;
}

void fleet_machine_close(struct fleet_machine *m)
{
    fleet_strv_close(&m->metadata);
}

int fleet_json_state_encode(struct cn_buf *out, const struct fleet_state *s,
                            const struct fleet_machine *m)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:s}", "loadState", s->load,
                          "activeState", s->active, "subState", s->sub,
                          "machineState", machine_obj(m), "unitHash", s->hash);
    /* Ours, beside fleet's unitStateModel fields (fleet ignores it). */
    if (o && s->waiting[0] &&
        json_object_set_new(o, "waitingFor", json_string(s->waiting)) != 0) {
        json_decref(o);
        return CN_ENOMEM;
    }
    return dump(o, out);
}

int fleet_json_state_decode(const char *text, struct fleet_state *s)
{
    memset(s, 0, sizeof(*s));
    json_t *o = load(text);
    if (o == NULL)
        return CN_EPROTO;
    copy_field(o, "loadState", s->load, sizeof(s->load));
    copy_field(o, "activeState", s->active, sizeof(s->active));
    copy_field(o, "subState", s->sub, sizeof(s->sub));
    copy_field(o, "unitHash", s->hash, sizeof(s->hash));
    copy_field(o, "waitingFor", s->waiting, sizeof(s->waiting));
    json_t *ms = json_object_get(o, "machineState");
    if (json_is_object(ms))
        copy_field(ms, "ID", s->machine_id, sizeof(s->machine_id));
    json_decref(o);
    return 0;
}

int fleet_json_job_encode(struct cn_buf *out, const char *name,
                          const char *hash)
{
    return dump(json_pack("{s:s, s:s}", "Name", name, "UnitHash", hash), out);
}

int fleet_json_job_decode(const char *text, char *hash, size_t size)
{
    json_t *o = load(text);
    if (o == NULL)
        return CN_EPROTO;
    copy_field(o, "UnitHash", hash, size);
    json_decref(o);
    return hash[0] ? 0 : CN_EPROTO;
}

int fleet_json_unit_encode(struct cn_buf *out, const char *raw)
{
    return dump(json_pack("{s:s}", "Raw", raw), out);
}

int fleet_json_unit_decode(const char *text, char **raw)
{
    *raw = NULL;
    json_t *o = load(text);
    json_t *v = json_object_get(o, "Raw");
    int rc = CN_EPROTO;
    if (json_is_string(v)) {
        *raw = dup_str(json_string_value(v));
        rc = *raw ? 0 : CN_ENOMEM;
    }
    json_decref(o);
    return rc;
}

int fleet_json_lease_encode(struct cn_buf *out, const char *machine_id)
{
    return dump(json_pack("{s:s, s:i}", "MachineID", machine_id, "Version", 1),
                out);
}

int fleet_json_lease_decode(const char *text, char *machine_id, size_t size)
{
    json_t *o = load(text);
    if (o == NULL)
        return CN_EPROTO;
    copy_field(o, "MachineID", machine_id, size);
    json_decref(o);
    return machine_id[0] ? 0 : CN_EPROTO;
}

int fleet_json_journal_encode(struct cn_buf *out, const char *machine_id,
                              const char *text)
{
    return dump(json_pack("{s:s, s:s}", "MachineID", machine_id, "Lines", text),
                out);
}

int fleet_json_journal_decode(const char *text, char **lines)
{
    *lines = NULL;
    json_t *o = load(text);
    json_t *v = json_object_get(o, "Lines");
    int rc = CN_EPROTO;
    if (json_is_string(v)) {
        *lines = dup_str(json_string_value(v));
        rc = *lines ? 0 : CN_ENOMEM;
    }
    json_decref(o);
    return rc;
}
