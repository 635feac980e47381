/*
 * server_discovery: the client side of etcd's discovery protocol
 * (--discovery URL), run once at start-up, before the member serves
 * anything, by a member with an empty data dir. See docs/cluster.md and
 * the v2 contract, section 7. It blocks: plain HTTP/1.1 over POSIX
 * sockets, one request per connection.
 *
 *   1. GET  URL/_config/size            (404: "size key not found")
 *   2. GET  URL                         (cluster already full: stop here)
 *   3. PUT  URL/<member id>?prevExist=false  value "name=peerURL[,...]"
 *           (412: registered before by this member: go on)
 *   4. GET  URL, then while fewer than size registrations:
 *      GET  URL?wait=true&recursive=true&waitIndex=<X-Etcd-Index + 1>
 *   5. the first size registrations in createdIndex order are the initial
 *      cluster; a member not among them gets "cluster is full".
 *
 * Connection errors are retried with exponential back-off, at most
 * retries_max times in all, each logged.
 */
#ifndef CN_SERVER_DISCOVERY_H
#define CN_SERVER_DISCOVERY_H

#include <stdint.h>

#include "base/base.h"
#include "config/config.h"

struct server_discovery_config {
    const char *url;   /* --discovery, http://host:port/path (borrowed) */
    const char *proxy; /* --discovery-proxy, NULL or "" for none */
    const char *name;  /* --name (borrowed) */
    const struct cn_url_list *peer_urls; /* --initial-advertise-peer-urls */
    uint64_t member_id;                  /* from the peer URLs and token */
    struct cn_logger logger;             /* copied */
    /* 0 picks the default in brackets */
    unsigned retries_max;     /* connection-error retries in all (8) */
    unsigned backoff_ms;      /* first back-off, doubled each time (500) */
    unsigned backoff_max_ms;  /* cap (8000) */
    unsigned timeout_ms;      /* connect and each plain request (5000) */
    unsigned wait_timeout_ms; /* all of step 4 (0: no limit, as etcd) */
};

struct server_discovery_result {
    /* --initial-cluster as etcd builds it: the registrations' values
     * joined with ','. */
    char initial_cluster[CN_CONFIG_MEMBERS_MAX * 300];
    /* the same, parsed (name=url pairs in that order) */
    struct cn_member_spec members[CN_CONFIG_MEMBERS_MAX];
    int count;
    unsigned size; /* the cluster size the token asked for */
};

/* Runs the protocol. Returns CN_OK with res filled, or, with errmsg set to
 * etcd's words where etcd has them:
 *   CN_ENOTFOUND  "discovery: size key not found" (or token missing)
 *   CN_EBUSY      "discovery: cluster is full"
 *   CN_ECORRUPT   "discovery: size key is bad", "bad discovery endpoint"
 *   CN_EINVAL     bad URL, https, "found duplicate name", bad registration
 *   CN_ETIMEDOUT  "discovery: too many retries" (server unreachable), or
 *                 wait_timeout_ms passed
 *   CN_EIO        an unexpected answer; CN_ENOMEM */
int server_discovery_join(const struct server_discovery_config *cfg,
                          struct server_discovery_result *res,
                          char errmsg[CN_ERRMSG_SIZE]);

#endif
