/*
 * http_discovery: cairn as an etcd discovery service. GET /new?size=N on a
 * client URL creates a token directory in this cluster's own store and
 * answers with its URL (see http_discovery.c and docs/cluster.md).
 */
#ifndef CN_HTTP_DISCOVERY_H
#define CN_HTTP_DISCOVERY_H

#include "http_int.h"

/* Routing hook, called by http_req_start() for a request no other route
 * took (r->route == ROUTE_NONE). Returns 0 when r is not GET /new (the
 * caller answers it, 404), 1 when this module took r: it answers it now or
 * later with http_req_done(). */
int http_discovery_start(struct http_api *api, struct http_req *r);

#endif
