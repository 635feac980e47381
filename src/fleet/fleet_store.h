/*
 * fleet_store: the store as the fleet layer sees it: the v2 key calls it
 * needs, relative to the key prefix, over the cli module's HTTP client, and
 * the JSON objects of the key layout (docs/units.md):
 *
 *   <prefix>machines/<id>/object        MachineState, TTL agent-ttl
 *   <prefix>job/<unit>/object           {"Name","UnitHash"}
 *   <prefix>job/<unit>/target-state     inactive | loaded | launched
 *   <prefix>job/<unit>/target           machine ID (set by the engine)
 *   <prefix>job/<unit>/job-state        machine ID, TTL: unit launched there
 *   <prefix>unit/<sha1>                 {"Raw": unit file text}
 *   <prefix>states/<unit>/<id>          unit state, TTL agent-ttl
 *   <prefix>lease/engine-leader         {"MachineID","Version"}, TTL: the
 *                                       engine election (cli/cli_elect.h)
 *   <prefix>journal/<unit>              {"MachineID","Lines"}, TTL (cairn)
 */
#ifndef FLEET_STORE_H
#define FLEET_STORE_H

#include "cli/cli_client.h"
#include "fleet_int.h"

#define FLEET_VERSION "0.1.0"
#define FLEET_PREFIX_DEFAULT "/_coreos.com/fleet/"
#define FLEET_ENDPOINT_DEFAULT "http://127.0.0.1:2379"

struct fleet_machine {
    char id[64];                /* machine ID */
    char ip[64];                /* public IP, "" if none */
    struct fleet_strv metadata; /* "k=v", sorted; owned */
};
void fleet_machine_close(struct fleet_machine *m);

struct fleet_state {
    char load[16];   /* "loaded" */
    char active[16]; /* "active" */
    char sub[24];    /* "running" */
    char hash[48];   /* unit hash */
    char machine_id[64];
    char waiting[320]; /* cairn: why the unit does not run ("b.service
                        * failed"), "" when nothing holds it back */
};

int fleet_json_machine_encode(struct cn_buf *out,
                              const struct fleet_machine *m);
int fleet_json_machine_decode(const char *text, struct fleet_machine *m);
int fleet_json_state_encode(struct cn_buf *out, const struct fleet_state *s,
                            const struct fleet_machine *m);
int fleet_json_state_decode(const char *text, struct fleet_state *s);
int fleet_json_job_encode(struct cn_buf *out, const char *name,
                          const char *hash);
int fleet_json_job_decode(const char *text, char *hash, size_t size);
int fleet_json_unit_encode(struct cn_buf *out, const char *raw);
/* *raw is cn_malloc'd. */
int fleet_json_unit_decode(const char *text, char **raw);
int fleet_json_lease_encode(struct cn_buf *out, const char *machine_id);
int fleet_json_lease_decode(const char *text, char *machine_id, size_t size);
int fleet_json_journal_encode(struct cn_buf *out, const char *machine_id,
                              const char *text);
int fleet_json_journal_decode(const char *text, char **lines);

struct fleet_store {
    struct cli_client cl;
    char prefix[256];            /* "/_coreos.com/fleet/" with the slash */
    char errmsg[CN_ERRMSG_SIZE]; /* what the last failure was */
    uint64_t index;              /* X-Etcd-Index of the last answer */
    int64_t timeout_ms;          /* per call */
};

/* Condition of a set. */
enum {
    FLEET_PREV_ANY = -1,
    FLEET_PREV_NONE = 0,   /* prevExist=false: create */
    FLEET_PREV_EXISTS = 1, /* prevExist=true */
};

/* endpoints: "http://a:2379,http://b:2379"; prefix: the key prefix (a
 * trailing '/' is added). Both borrowed. 0 or CN_EINVAL (errmsg). */
int fleet_store_init(struct fleet_store *st, const char *endpoints,
                     const char *prefix);
void fleet_store_close(struct fleet_store *st);

/* Every call takes key relative to the prefix ("machines/x/object"),
 * borrowed, and returns 0; CN_ENOTFOUND (etcd 100), CN_EBUSY (101, compare
 * failed), CN_EEXIST (105), CN_EAGAIN (401, watch index cleared),
 * CN_ETIMEDOUT (deadline, watch only), CN_ESHUTDOWN (a signal), or CN_EIO
 * (anything else, errmsg says what). resp (when given) is filled on 0 and
 * closed by the caller with cli_resp_close in every case. */
int fleet_store_get(struct fleet_store *st, const char *key, int recursive,
                    struct cli_resp *resp);
/* ttl_s 0: no TTL. prev_value NULL: no compare. */
int fleet_store_set(struct fleet_store *st, const char *key, const char *value,
                    int64_t ttl_s, int prev_exist, const char *prev_value);
int fleet_store_delete(struct fleet_store *st, const char *key, int recursive,
                       const char *prev_value);
/* Long-polls for the first change under key at or after wait_index until
 * deadline_ms (cli_now_ms clock). */
int fleet_store_watch(struct fleet_store *st, const char *key, int recursive,
                      uint64_t wait_index, int64_t deadline_ms,
                      struct cli_resp *resp);

/* The child of n named name (last path segment), or NULL. Borrowed. */
const struct cli_node *fleet_node_child(const struct cli_node *n,
                                        const char *name);
/* Last path segment of n->key. */
const char *fleet_node_name(const struct cli_node *n);

#endif
