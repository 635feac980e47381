/*
 * fleet_elect: one engine at a time, through the store.
 *
 * TODO(#7): this is the recipe of `cairnctl elect`; it moves into cli (as
 * cli_elect_step/cli_elect_resign over struct cli_client) once cli exposes
 * it, and this file goes away.
 *
 *   free --create(prevExist=false, ttl)--> leader
 *   leader --refresh(prevValue=ours, ttl) ok--> leader
 *   leader --refresh fails (101/100/io)--> follower (steps down at once)
 *   follower --key expires or is deleted--> free
 *
 * A leader refreshes well within the TTL (the caller steps every ttl/3),
 * so it loses the lease only when it cannot reach the store, and then it
 * stops acting as leader before the key can expire.
 */
#include <stdio.h>
#include <string.h>

#include "fleet_store.h"

void fleet_elect_init(struct fleet_elect *e, const char *key, const char *value,
                      int64_t ttl_s)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    snprintf(e->value, sizeof(e->value), "%s", value);
    e->ttl_s = ttl_s;
}

int fleet_elect_step(struct fleet_elect *e, struct fleet_store *st)
{
    int rc;
    if (e->leader) {
        rc = fleet_store_set(st, e->key, e->value, e->ttl_s, FLEET_PREV_EXISTS,
                             e->value);
        if (rc == 0)
            return 0;
        e->leader = 0;
        e->holder[0] = '\0';
        if (rc != CN_EBUSY && rc != CN_ENOTFOUND)
            return rc;
    }
    rc = fleet_store_set(st, e->key, e->value, e->ttl_s, FLEET_PREV_NONE, NULL);
    if (rc == 0) {
        e->leader = 1;
        snprintf(e->holder, sizeof(e->holder), "%s", e->value);
        return 0;
    }
    if (rc != CN_EEXIST)
        return rc;
    struct cli_resp r;
    rc = fleet_store_get(st, e->key, 0, &r);
    if (rc == 0 && r.node)
        snprintf(e->holder, sizeof(e->holder), "%s", r.node->value);
    cli_resp_close(&r);
    return rc == CN_ENOTFOUND ? 0 : rc;
}

void fleet_elect_resign(struct fleet_elect *e, struct fleet_store *st)
{
    if (e->leader)
        fleet_store_delete(st, e->key, 0, e->value);
    e->leader = 0;
}
