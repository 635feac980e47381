/*
 * store: the etcd v2 key space as a pure state machine.
 *
 * Every change is a struct store_cmd, applied in order by store_apply(); the
 * store never reads a clock and never does I/O, so every replica that applies
 * the same commands in the same order holds the same tree, index and history.
 * Time enters only through commands: cmd->now_ns is the proposer's wall clock
 * and cmd->expire_ns an absolute expiry the proposer computed; keys expire
 * only when a STORE_CMD_SYNC command is applied (etcd's SYNC), so expiry is
 * decided once and replicated.
 *
 * The command mirrors etcd's v2 request (etcdserverpb.Request) and
 * store_apply() performs what etcd's applierV2store does with it (Put picks
 * set/create/update/compareAndSwap from prevExist, prevValue, prevIndex;
 * Delete picks delete/compareAndDelete; Post creates an in-order key).
 * Parameter validation (errors 200-212) happens before a command exists, in
 * the HTTP layer; the store reports the tree errors (100-108, 401).
 *
 * Indexes: the store keeps its own index (X-Etcd-Index), raised by exactly
 * one for every successful write and every expired key. Failed commands do
 * not raise it.
 *
 * Watches: watchers are local to a node (not replicated) but live here too,
 * keyed by path, so an event costs O(depth of its key) plus the watchers it
 * actually wakes, never O(all watchers). Events are shared, reference-counted
 * JSON strings. Whatever a command or a new watch wakes is queued as
 * deliveries that the driver drains with store_next_delivery().
 *
 * Answers are produced as etcd's JSON, field order as etcd writes it.
 */
#ifndef CN_STORE_H
#define CN_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

/* etcd v2 error codes (v2error), with etcd's messages from
 * store_ecode_message() and HTTP statuses from store_ecode_status(). */
enum store_ecode {
    STORE_E_KEY_NOT_FOUND = 100,
    STORE_E_TEST_FAILED = 101,
    STORE_E_NOT_FILE = 102,
    STORE_E_NO_MORE_PEER = 103,
    STORE_E_NOT_DIR = 104,
    STORE_E_NODE_EXIST = 105,
    STORE_E_KEY_IS_PRESERVED = 106,
    STORE_E_ROOT_RONLY = 107,
    STORE_E_DIR_NOT_EMPTY = 108,
    STORE_E_UNAUTHORIZED = 110,
    STORE_E_VALUE_REQUIRED = 200,
    STORE_E_PREV_VALUE_REQUIRED = 201,
    STORE_E_TTL_NAN = 202,
    STORE_E_INDEX_NAN = 203,
    STORE_E_VALUE_OR_TTL_REQUIRED = 204,
    STORE_E_TIMEOUT_NAN = 205,
    STORE_E_NAME_REQUIRED = 206,
    STORE_E_INDEX_OR_VALUE_REQUIRED = 207,
    STORE_E_INDEX_VALUE_MUTEX = 208,
    STORE_E_INVALID_FIELD = 209,
    STORE_E_INVALID_FORM = 210,
    STORE_E_REFRESH_VALUE = 211,
    STORE_E_REFRESH_TTL_REQUIRED = 212,
    STORE_E_RAFT_INTERNAL = 300,
    STORE_E_LEADER_ELECT = 301,
    STORE_E_WATCHER_CLEARED = 400,
    STORE_E_EVENT_INDEX_CLEARED = 401,
};

/* etcd's message for code ("Key not found"); "" for unknown codes. */
const char *store_ecode_message(int ecode);
/* etcd's HTTP status for code: 404, 412, 403, 401, 500 or 400. */
int store_ecode_status(int ecode);
/* Appends {"errorCode":N,"message":"...","cause":"...","index":I} to out
 * (cause omitted when NULL or empty, as etcd does). CN_OK or CN_ENOMEM. */
int store_error_json(struct cn_buf *out, int ecode, const char *cause,
                     uint64_t index);

enum store_action {
    STORE_ACT_GET = 1,
    STORE_ACT_SET,
    STORE_ACT_CREATE,
    STORE_ACT_UPDATE,
    STORE_ACT_CAS, /* "compareAndSwap" */
    STORE_ACT_DELETE,
    STORE_ACT_CAD, /* "compareAndDelete" */
    STORE_ACT_EXPIRE,
};
/* "get", "set", ..., "compareAndSwap", "expire". Static string. */
const char *store_action_name(int action);

enum store_method {
    STORE_CMD_PUT = 1,
    STORE_CMD_POST = 2,
    STORE_CMD_DELETE = 3,
    STORE_CMD_SYNC = 4, /* expire every key with expire_ns <= now_ns */
};

/* One replicated command. Slices are borrowed for the call. */
struct store_cmd {
    int method;                 /* enum store_method */
    struct cn_slice path;       /* clean key path: "/" or "/a/b", no
                                 * trailing or doubled '/' */
    struct cn_slice value;      /* PUT/POST value ("" when absent) */
    int dir;                    /* dir=true */
    int prev_exist;             /* -1 unset, 0 false, 1 true */
    struct cn_slice prev_value; /* len 0: no value condition */
    uint64_t prev_index;        /* 0: no index condition */
    int recursive;              /* DELETE recursive=true */
    int refresh;                /* PUT refresh=true */
    int64_t expire_ns;          /* absolute expiry, unix ns; 0: permanent */
    int64_t now_ns;             /* proposer's clock, unix ns (ttl left in
                                 * answers; SYNC cut-off) */
};

/* A change, shared by the history and every watcher it wakes. */
struct store_event {
    int refs;        /* store_event_ref / store_event_unref */
    uint64_t index;  /* the store index the event took */
    int action;      /* enum store_action */
    int refresh;     /* a refresh: kept in history, never delivered */
    char *key;       /* owned; the node's key */
    char *json;      /* owned; {"action":..,"node":..,"prevNode":..} */
    size_t json_len; /* bytes, no trailing newline */
    size_t key_len;  /* bytes of key (keys may hold NUL bytes) */
    int prev_dir;    /* a delete or expire of a directory */
};
void store_event_ref(struct store_event *ev);
/* Frees the event when the last reference goes. NULL is a no-op. */
void store_event_unref(struct store_event *ev);

/* The answer to a command or a read. Zero-initialise, pass to a store call,
 * then store_result_close(). */
struct store_result {
    int ecode;                 /* 0 on success, else enum store_ecode */
    int action;                /* enum store_action (success) */
    int status;                /* HTTP status: 200, 201, or the error's */
    uint64_t index;            /* X-Etcd-Index: store index after the command;
                                * for an error, the index in its body */
    struct cn_buf body;        /* owned: the JSON answer (event or error) */
    struct store_event *event; /* the event a successful write produced
                                * (one reference owned by the result);
                                * NULL for reads, errors and SYNC */
};
void store_result_close(struct store_result *res);

/* A watcher woken by an event. The reference to event is the receiver's:
 * drop it with store_event_unref(). */
struct store_delivery {
    uint64_t watcher_id;
    struct store_event *event;
    int last; /* 1: the watcher is removed (non-stream watchers, and stream
               * watchers dropped for lagging); its id is dead */
};

struct store; /* opaque */

struct store_config {
    unsigned history_events; /* CN_STORE_HISTORY_EVENTS */
    unsigned watchers_max;   /* CN_STORE_WATCHERS_MAX */
    struct cn_logger logger; /* copied */
};

/* Allocates an empty store (index 0, root "/"). cfg is borrowed; NULL for
 * defaults. Returns CN_OK or CN_ENOMEM. Free with store_free(). */
int store_new(struct store **out, const struct store_config *cfg);
void store_free(struct store *s);

/* Applies one command. Tree errors (100-108) are answers, not failures:
 * they return CN_OK with res->ecode set and the store unchanged.
 * Returns CN_ENOMEM with the store unchanged, or CN_EINVAL for a malformed
 * command (bad method or path). res is filled (caller closes it). A SYNC
 * expires keys (each with its own index and "expire" event) and answers
 * with ecode 0 and an empty body. */
int store_apply(struct store *s, const struct store_cmd *cmd,
                struct store_result *res);

/* GET of path (clean, as in store_cmd). recursive: whole subtree; sorted:
 * children in key order. now_ns: for the ttl left. Returns CN_OK (answer in
 * res, possibly an etcd error) or CN_ENOMEM. */
int store_get(struct store *s, struct cn_slice path, int recursive, int sorted,
              int64_t now_ns, struct store_result *res);

/* Starts a watch (GET ?wait=true). since_index 0: the next event. An event
 * already in history at or after since_index is queued as a delivery at
 * once (for a non-stream watch that also ends the watch). On success
 * *watcher_id names the watch (also in its deliveries) and res is
 * untouched; with since_index older than the history, answers error 401 in
 * res (ecode set, *watcher_id 0). Returns CN_OK, CN_ENOMEM, or CN_EBUSY when
 * watchers_max watchers exist. */
int store_watch(struct store *s, struct cn_slice path, int recursive,
                int stream, uint64_t since_index, uint64_t *watcher_id,
                struct store_result *res);
/* Removes a watcher (client went away). Unknown ids are ignored. */
void store_unwatch(struct store *s, uint64_t watcher_id);

/* Pops the next queued delivery into *d: returns 1, or 0 when none. */
int store_next_delivery(struct store *s, struct store_delivery *d);

/* The store index (X-Etcd-Index). */
uint64_t store_index(const struct store *s);
/* Earliest expire_ns among keys with a TTL; 0 when none. */
int64_t store_next_expiry_ns(const struct store *s);
/* Counts for stats and metrics. */
uint64_t store_key_count(const struct store *s); /* files and dirs */
uint64_t store_watcher_count(const struct store *s);
/* Appends /v2/stats/store's JSON. CN_OK or CN_ENOMEM. */
int store_stats_json(const struct store *s, struct cn_buf *out);

/* Commands as bytes, for the log and for peers. encode appends to out;
 * decode fills *cmd with slices pointing into data (kept while cmd is
 * used). decode returns CN_ECORRUPT for anything malformed. */
int store_cmd_encode(const struct store_cmd *cmd, struct cn_buf *out);
int store_cmd_decode(const char *data, size_t len, struct store_cmd *cmd);

/* Snapshots: the whole state (tree, index, history, stats) as versioned
 * bytes with a checksum; load replaces s's state (watchers are dropped).
 * load returns CN_ECORRUPT or CN_EVERSION for bad input, s unchanged. */
int store_snapshot_save(const struct store *s, struct cn_buf *out);
int store_snapshot_load(struct store *s, const char *data, size_t len);

#endif
