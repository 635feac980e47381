/*
 * http_discovery.c: the discovery service (GET /new). Not implemented yet:
 * takes no request.
 */
#include "http_discovery.h"

int http_discovery_start(struct http_api *api, struct http_req *r)
{
    CN_UNUSED(api);
    CN_UNUSED(r);
    return 0;
}
