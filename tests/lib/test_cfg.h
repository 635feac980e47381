/*
 * test_cfg: the cluster part of a hand-built struct cn_config for tests
 * that create a server without parsing flags: a one-member cluster named
 * after cfg->name, as etcd's defaults give (--initial-cluster
 * NAME=PEER_URL), and etcd's default timers.
 */
#ifndef CN_TEST_CFG_H
#define CN_TEST_CFG_H

#include <string.h>

#include "config/config.h"

static inline void test_cfg_single_member(struct cn_config *cfg)
{
    static const char url[] = "http://127.0.0.1:1";
    cfg->initial_advertise_peer_urls.count = 1;
    strcpy(cfg->initial_advertise_peer_urls.urls[0].raw, url);
    strcpy(cfg->initial_advertise_peer_urls.urls[0].scheme, "http");
    strcpy(cfg->initial_advertise_peer_urls.urls[0].host, "127.0.0.1");
    cfg->initial_advertise_peer_urls.urls[0].port = 1;
    cfg->initial_cluster_count = 1;
    strcpy(cfg->initial_cluster[0].name, cfg->name);
    cfg->initial_cluster[0].url = cfg->initial_advertise_peer_urls.urls[0];
    cfg->election_timeout_ms = 1000;
    cfg->heartbeat_interval_ms = 100;
}

#endif
