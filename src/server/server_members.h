/*
 * server_members: the member table of a cluster (IDs, names, peer and
 * client URLs, removed IDs), the snapshot that carries it beside the store,
 * and the replicated commands of the log. Pure: no I/O, no clock.
 *
 * Log entry payloads (what the write-ahead log stores for one Raft entry):
 *
 *   u8 raft entry type (RAFT_ENTRY_*), then the entry's data
 *
 * Command data (RAFT_ENTRY_COMMAND):
 *
 *   u8 kind (SERVER_CMD_*), u64 origin member, u64 request id, body
 *
 * The origin and request id let the member that took the client's request
 * answer it when the entry is applied, wherever it was proposed. Bodies:
 *   STORE          store_cmd_encode() bytes
 *   member kinds   u64 id, str name, u8 n, n x str URL: ATTR names the
 *                  member and its client URLs; MEMBER_ADD and
 *                  MEMBER_UPDATE give peer URLs (name empty);
 *                  MEMBER_REMOVE has no name and no URL
 * (str: u16 length, bytes; integers little-endian.)
 *
 * Snapshot data (what Raft ships and the snap dir keeps):
 *
 *   u32 magic "CNS1", u32 version, u32 length, Raft snapshot metadata
 *   (raft_snapshot_meta_encode), u64 cluster id, u32 n, n members
 *   (u64 id, u8 flags, str name, u8 n, peer URLs, u8 n, client URLs),
 *   u32 n, n x u64 removed id, u64 length, store snapshot bytes,
 *   u32 CRC-32C of everything before it
 */
#ifndef CN_SERVER_MEMBERS_H
#define CN_SERVER_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"

#define SERVER_MEMBERS_MAX 16 /* RAFT_SERVERS_MAX */
#define SERVER_MEMBER_URLS_MAX 8
#define SERVER_MEMBER_URL_BYTES 256
#define SERVER_MEMBER_NAME_BYTES 128
#define SERVER_REMOVED_MAX 64 /* newest removed IDs kept */

enum server_cmd_kind {
    SERVER_CMD_STORE = 1,
    SERVER_CMD_ATTR = 2,
    SERVER_CMD_MEMBER_ADD = 3,
    SERVER_CMD_MEMBER_UPDATE = 4,
    SERVER_CMD_MEMBER_REMOVE = 5,
};

/* Member flags. */
#define SERVER_MEMBER_IN_CONF 1u /* a configuration holding it was applied */
#define SERVER_MEMBER_LEAVING 2u /* removal asked, Raft removal pending */

struct server_member {
    uint64_t id;
    uint8_t flags;
    uint8_t n_peer;
    uint8_t n_client;
    char name[SERVER_MEMBER_NAME_BYTES];
    char peer[SERVER_MEMBER_URLS_MAX][SERVER_MEMBER_URL_BYTES];
    char client[SERVER_MEMBER_URLS_MAX][SERVER_MEMBER_URL_BYTES];
};

struct server_members {
    uint64_t cluster_id;
    unsigned n;
    struct server_member m[SERVER_MEMBERS_MAX];
    unsigned n_removed;
    uint64_t removed[SERVER_REMOVED_MAX];
};

/* Lookups: NULL / 0 when absent. */
struct server_member *server_members_find(struct server_members *t,
                                          uint64_t id);
const struct server_member *
server_members_find_const(const struct server_members *t, uint64_t id);
int server_members_is_removed(const struct server_members *t, uint64_t id);
/* The member one of whose peer URLs equals url, or NULL. */
const struct server_member *
server_members_by_peer_url(const struct server_members *t, const char *url);

/* Adds a member with peer URLs urls[0..n) (copied). CN_EEXIST (ID known or
 * removed), CN_ETOOBIG (table full, too many or too long URLs). */
int server_members_add(struct server_members *t, uint64_t id, const char *name,
                       const char *const *urls, unsigned n);
/* Removes id from the table and remembers it as removed. */
void server_members_remove(struct server_members *t, uint64_t id);
/* Replaces a member's peer or client URLs. CN_ENOTFOUND, CN_ETOOBIG. */
int server_members_set_urls(struct server_member *m, int client,
                            const char *const *urls, unsigned n);

/* Snapshot data: the Raft metadata bytes, the table and the store's
 * snapshot bytes (meta and store may be empty: the member list a joining
 * member fetches). */
struct server_snap_parts {
    struct cn_slice meta;  /* raft_snapshot_meta_encode() bytes */
    struct cn_slice store; /* store_snapshot_save() bytes */
};
int server_snap_encode(const struct server_members *t,
                       const struct server_snap_parts *parts,
                       struct cn_buf *out);
/* Fills t and points parts into p. CN_ECORRUPT, CN_EVERSION. */
int server_snap_decode(const void *p, size_t len, struct server_members *t,
                       struct server_snap_parts *parts);

/* A decoded command: slices point into the bytes decoded. */
struct server_cmd {
    uint8_t kind;
    uint64_t origin;
    uint64_t req_id;
    struct cn_slice body; /* STORE: store_cmd bytes */
    uint64_t id;          /* member commands */
    struct cn_slice name; /* ATTR */
    unsigned n_urls;      /* ATTR, ADD, UPDATE */
    struct cn_slice urls[SERVER_MEMBER_URLS_MAX];
};

/* Appends the command header (kind, origin, request id) to out. */
int server_cmd_begin(struct cn_buf *out, uint8_t kind, uint64_t origin,
                     uint64_t req_id);
/* Appends a member body (name NULL: empty; urls may be NULL with n 0). */
int server_cmd_member_body(struct cn_buf *out, uint64_t id, const char *name,
                           const char *const *urls, unsigned n);
/* Decodes command data. CN_ECORRUPT for anything malformed. */
int server_cmd_decode(const void *p, size_t len, struct server_cmd *c);

#endif
