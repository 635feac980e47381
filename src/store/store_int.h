/*
 * store_int: private structures of the store module (see docs/store.md).
 *
 * The tree: every node holds only its own name (the last path segment);
 * full keys are rebuilt from parent links when an answer needs them.
 * Children of a directory sit in an insertion-ordered doubly linked list;
 * once a directory has more than STORE_DIR_LINEAR_MAX children they are
 * also hashed (open addressing with linear probing, a power of two of
 * slots, at most 3/4 used) so lookup stays O(1). The table holds pointers
 * and hashes: growing it reads the old table only and writes nothing into
 * the children, so a rehash of a million children does not dirty their
 * pages (after the
 * snapshot fork each dirtied page is a copy-on-write fault, and on these
 * VMs a TLB shootdown: a rehash that wrote a link into every child held
 * the loop for seconds).
 *
 * TTL heap: every node with expire_ns != 0 is in a binary min-heap ordered
 * by (expire_ns, created_index, depth), a total order, so expiry order does
 * not depend on the heap's internal layout and replicas agree.
 *
 * Watchers: a hash map path -> list of watchers (insertion order), plus a
 * map id -> watcher. The delivery queue is a ring of struct store_delivery.
 *
 * Atomicity: every mutation first prepares (allocates all it needs and
 * reserves capacity), then commits without allocating. A capacity
 * reservation (bigger hash table, heap or ring) is not a visible change.
 */
#ifndef CN_STORE_INT_H
#define CN_STORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define STORE_DIR_LINEAR_MAX 8u /* children scanned without a hash table */
#define STORE_HEAP_NONE UINT32_MAX
/* etcd treats expiry times before 2000-01-01T00:00:00Z as permanent when
 * it creates a node (store.go minExpireTime). */
#define STORE_MIN_EXPIRE_NS (946684800LL * 1000000000LL)
#define STORE_SNAPSHOT_MAGIC "CNSS"
#define STORE_SNAPSHOT_VERSION 1u
#define STORE_CMD_VERSION 1u

struct store_node;

/* One slot of a directory's child table (node NULL: empty). The hash is
 * kept beside the pointer so that probing past other children and
 * rehashing read only the table. */
struct store_slot {
    struct store_node *node;
    uint32_t hash;
};

struct store_node {
    struct store_node *parent; /* NULL for the root */
    struct store_node *prev;   /* siblings, insertion order */
    struct store_node *next;
    uint64_t created_index;
    uint64_t modified_index;
    int64_t expire_ns; /* absolute unix ns; 0: permanent */
    uint32_t heap_pos; /* slot in the TTL heap, STORE_HEAP_NONE if none */
    uint32_t name_len; /* bytes */
    uint32_t hash;     /* of the name */
    uint16_t depth;    /* root 0 */
    uint8_t is_dir;
    uint8_t mark; /* scratch flag while planning a SYNC */
    union {
        struct {
            char *data; /* owned, may be NULL when len is 0 */
            size_t len; /* bytes */
        } value;
        struct {
            struct store_slot *buckets; /* owned; NULL while linear */
            struct store_node *first;
            struct store_node *last;
            uint32_t nbuckets; /* slots: 0 or a power of two */
            uint32_t count;    /* children */
        } dir;
    } u;
    char name[]; /* name_len bytes + NUL */
};

struct store_heap {
    struct store_node **a; /* owned array */
    uint32_t len;
    uint32_t cap;
};

struct store_watcher;

struct store_watch_path {
    struct store_watch_path *hnext;
    struct store_watcher *head; /* insertion order */
    struct store_watcher *tail;
    uint32_t hash;
    uint32_t count;
    size_t len;
    char path[]; /* len bytes + NUL */
};

struct store_watcher {
    uint64_t id;
    uint64_t since_index;
    uint64_t last_seq; /* ring sequence of its newest queued delivery */
    uint32_t pending;  /* deliveries queued, not yet popped */
    uint8_t recursive;
    uint8_t stream;
    struct store_watch_path *wp;
    struct store_watcher *prev; /* in wp's list */
    struct store_watcher *next;
    struct store_watcher *id_next; /* id hash chain */
};

struct store_ring {
    struct store_delivery *a; /* owned */
    size_t cap;               /* slots */
    size_t head;              /* slot of the oldest entry */
    size_t len;               /* entries */
    uint64_t head_seq;        /* sequence number of the oldest entry */
};

struct store_stats {
    uint64_t gets_success, gets_fail;
    uint64_t sets_success, sets_fail;
    uint64_t delete_success, delete_fail;
    uint64_t update_success, update_fail;
    uint64_t create_success, create_fail;
    uint64_t cas_success, cas_fail;
    uint64_t cad_success, cad_fail;
    uint64_t expire_count;
};

struct store {
    struct store_config cfg;
    struct store_node *root;
    uint64_t index;
    uint64_t node_count; /* files and dirs, root excluded */
    struct store_heap heap;
    struct store_stats stats;

    /* history: a ring of the last cfg.history_events events */
    struct store_event **hist;
    uint32_t hist_front; /* slot of the oldest */
    uint32_t hist_len;

    /* watchers */
    struct store_watch_path **wp_buckets;
    uint32_t wp_nbuckets;
    uint32_t wp_count; /* distinct paths */
    struct store_watcher **id_buckets;
    uint32_t id_nbuckets;
    uint64_t watcher_count;
    uint64_t next_watcher_id;
    struct store_ring ring;

    char *scratch; /* path buffer for subtree walks */
    size_t scratch_cap;
};

/* store_tree.c */
/* 1 for a clean key path: "/" or "/a/b" (see store.h). */
int store_path_valid(struct cn_slice p);
uint32_t store_hash(const char *p, size_t n);
struct store_node *store_node_new(const char *name, size_t len, int is_dir);
/* Frees n and its subtree; does not touch the heap or the parent. */
void store_node_free_tree(struct store_node *n);
struct store_node *store_dir_find(const struct store_node *d, const char *name,
                                  size_t len, uint32_t h);
/* Makes room so one more child can be linked without allocating. */
int store_dir_reserve(struct store_node *d);
/* The same for more children at once (a snapshot's directory, whose count
 * is known): one table, no rehash on the way. */
int store_dir_reserve_n(struct store_node *d, uint32_t more);
void store_dir_link(struct store_node *d, struct store_node *n);
void store_dir_unlink(struct store_node *d, struct store_node *n);
/* Writes the node's full key into buf (cap bytes); returns its length. */
size_t store_node_path(const struct store_node *n, char *buf, size_t cap);
int store_heap_reserve(struct store_heap *h, uint32_t extra);
int store_heap_less(const struct store_node *a, const struct store_node *b);
void store_heap_push(struct store_heap *h, struct store_node *n);
void store_heap_remove(struct store_heap *h, struct store_node *n);
void store_heap_fix(struct store_heap *h, struct store_node *n);

/* store_json.c */
int store_json_str(struct cn_buf *b, const char *p, size_t n);
/* Appends Go's RFC3339Nano UTC form of unix ns t, quoted. */
int store_json_time(struct cn_buf *b, int64_t t);
int store_error_json_n(struct cn_buf *out, int ecode, const char *cause,
                       size_t cause_len, uint64_t index);
/* ceil((expire - now) / 1 s) with Go's truncating division. */
int64_t store_ttl_left(int64_t expire_ns, int64_t now_ns);

/* A node as an answer shows it (etcd's NodeExtern). */
struct store_view {
    const char *key; /* NULL: no "key" */
    size_t key_len;
    int dir;
    const char *value; /* files: value (may be "" with value_len 0) */
    size_t value_len;
    int64_t expire_ns; /* 0: no expiration */
    int64_t now_ns;
    int show_ttl;
    uint64_t modified_index; /* 0: omitted */
    uint64_t created_index;  /* 0: omitted */
};
int store_json_view(struct cn_buf *b, const struct store_view *v);
/* Appends a node; recursive/sorted as in GET (children one level deep
 * unless recursive). path holds the node's key (path_len bytes) in a
 * buffer of path_cap bytes used for the children's keys. */
int store_json_node(struct cn_buf *b, const struct store_node *n, char *path,
                    size_t path_len, size_t path_cap, int with_children,
                    int recursive, int sorted, int64_t now_ns);

/* store_watch.c */
void store_hub_close(struct store *s);
void store_ring_close(struct store_ring *r);
int store_ring_reserve(struct store_ring *r, size_t extra);
void store_history_add(struct store *s, struct store_event *ev);
/* Counts (count_only) or wakes the watchers of ev as etcd's notify does:
 * walk "/", then every prefix of the key. Returns the count. */
size_t store_hub_notify(struct store *s, struct store_event *ev,
                        int count_only);
/* The same for one path of a deleted subtree (deleted=true). */
size_t store_hub_notify_path(struct store *s, struct store_event *ev,
                             const char *path, size_t len, int deleted,
                             int count_only);
/* Post-order walk of n's subtree calling notify_path(deleted) for each
 * node; n's key is in s->scratch (len bytes). */
size_t store_hub_notify_subtree(struct store *s, struct store_event *ev,
                                const struct store_node *n, size_t len,
                                int count_only);

/* store.c */
struct store_event *store_event_alloc(int action, const char *key,
                                      size_t key_len);

#endif
