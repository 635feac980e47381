/*
 * server_member_id: member and cluster IDs computed exactly as etcd 3.4
 * computes them at bootstrap, so a cairn member started with the same
 * flags as an etcd member gets the same ID (and clients, tools and the
 * discovery registry see the same hex strings).
 *
 *   member ID  = first 8 bytes, big-endian, of
 *                SHA-1(peer URLs sorted as strings, concatenated without a
 *                separator, followed by the cluster token)
 *   cluster ID = first 8 bytes, big-endian, of
 *                SHA-1(member IDs sorted ascending, each as 8 big-endian
 *                bytes)
 *
 * (etcd: etcdserver/api/membership member.go newMember with now == nil,
 * cluster.go genID.) A member added at run time gets a time-salted ID from
 * whoever adds it; that is not computed here. Pure functions.
 */
#ifndef CN_SERVER_MEMBER_ID_H
#define CN_SERVER_MEMBER_ID_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* Hex of an ID as etcd prints it (types.ID.String: %x, no leading zeros):
 * up to 16 digits and a NUL. */
#define SERVER_ID_HEX_SIZE 17

/* The member ID of peer URLs urls[0..n) (borrowed; any order, n >= 1) and
 * token (borrowed, may be ""). Returns CN_OK with *out set, or CN_ENOMEM. */
int server_member_id_compute(const char *const *urls, size_t n,
                             const char *token, uint64_t *out);
/* The same for a parsed URL list (its raw strings). */
int server_member_id_of_urls(const struct cn_url_list *urls, const char *token,
                             uint64_t *out);
/* The cluster ID of member IDs ids[0..n) (borrowed; any order). Returns
 * CN_OK or CN_ENOMEM. */
int server_cluster_id_compute(const uint64_t *ids, size_t n, uint64_t *out);

/* The member IDs and cluster ID of an --initial-cluster list (entries with
 * the same name are one member with several URLs). ids_out gets one ID
 * per distinct name, in first-appearance order (cap entries at most);
 * *n_out their count. Returns CN_OK, CN_ENOMEM, or CN_EINVAL when two
 * names give the same ID (etcd: "member exists with identical ID") or more
 * than cap members. */
int server_initial_cluster_ids(const struct cn_member_spec *specs, int count,
                               const char *token, uint64_t *ids_out, size_t cap,
                               size_t *n_out, uint64_t *cluster_id_out);

/* Formats id as etcd does ("cef092b1775c55d"). Returns out. */
char *server_id_format(uint64_t id, char out[SERVER_ID_HEX_SIZE]);
/* Parses 1-16 hex digits. Returns CN_OK or CN_EINVAL. */
int server_id_parse(const char *s, uint64_t *out);

#endif
