/*
 * cli_elect: leader election through the v2 key API, the recipe of
 * `cairnctl elect` (docs/recipes.md), shared with the fleet engine.
 *
 * One TTL key names the leader; its value is the leader's proposal.
 *
 *   FOLLOWER --campaign: PUT prevExist=false ttl value, ok--> LEADER
 *      |  \--campaign: 105 (someone leads)--> wait (cli_elect_wait) or
 *      |                                      retry later (cli_elect_step)
 *   LEADER --refresh: PUT refresh=true ttl prevExist=true prevValue=ours,
 *      |       ok--> LEADER (the TTL restarts; no watch event)
 *      \--refresh: 100 (expired) or 101 (someone else's)--> FOLLOWER
 *   LEADER --resign: DELETE prevValue=ours--> FOLLOWER
 *
 * Transitions: cli_elect_campaign (FOLLOWER -> LEADER), cli_elect_refresh
 * (LEADER -> LEADER | FOLLOWER), cli_elect_resign (LEADER -> FOLLOWER);
 * cli_elect_step is one non-blocking heartbeat of a loop that steps every
 * ttl/3 (refresh if leader, else campaign) and steps down on any failure.
 *
 * Every write is a compare on our own value, so a candidate never removes
 * or extends somebody else's leadership. What a TTL cannot promise: a
 * leader paused for longer than the TTL still believes it leads until its
 * next refresh fails; callers refresh every ttl/3 and step down when no
 * refresh succeeded for ttl - ttl/3 (cairnctl) or at the first failure
 * (fleet).
 *
 * Nothing here prints; failures leave a message in errmsg.
 */
#ifndef CLI_ELECT_H
#define CLI_ELECT_H

#include <stdint.h>

#include "cli_client.h"

struct cli_elect {
    struct cli_client *cl;       /* borrowed; kept until cli_elect_close */
    char *key;                   /* owned; full key, "/elections/db" */
    char *value;                 /* owned; our proposal, NULL: observer only */
    long long ttl_s;             /* seconds the key outlives our last refresh */
    int64_t interval_ms;         /* refresh period: ttl/3 */
    int64_t timeout_ms;          /* deadline of each request (not watches) */
    int leader;                  /* 1 from a won campaign until lost/resigned */
    char *holder;                /* owned; the leader's value as last seen by
                                  * cli_elect_step, NULL when unknown */
    int etcd_code;               /* etcd error code of the last failure, 0: none
                                  * or not an etcd error */
    char errmsg[CN_ERRMSG_SIZE]; /* what the last failure was */
};

/* Sets up e (caller-allocated) to campaign for key with value under a TTL
 * of ttl_s seconds, every request through cl with a deadline of timeout_ms
 * from its start. cl is kept until cli_elect_close; key and value are
 * copied (value may be NULL for an observer). Returns 0, CN_EINVAL (key
 * empty, ttl_s < 1) or CN_ENOMEM; call cli_elect_close in every case. */
int cli_elect_init(struct cli_elect *e, struct cli_client *cl, const char *key,
                   const char *value, long long ttl_s, int64_t timeout_ms);
/* Frees what e owns; does not resign and does not close cl. */
void cli_elect_close(struct cli_elect *e);

/* Creates the key with our value if it does not exist (prevExist=false).
 * Returns 0: we lead (e->leader = 1, *index is the key's modifiedIndex);
 * CN_EEXIST: somebody else leads (*index is the answer's X-Etcd-Index: watch
 * from *index + 1); CN_ETIMEDOUT (deadline), CN_ESHUTDOWN (a termination
 * signal cut the request short) or CN_EIO (any other failure). Sets
 * e->leader to 0 unless it returns 0. Precondition: e->value != NULL. */
int cli_elect_campaign(struct cli_elect *e, uint64_t *index);

/* Restarts the key's TTL if it still holds our value. Returns 0 (*index:
 * the key's new modifiedIndex); CN_ENOTFOUND (100: it expired) or CN_EBUSY
 * (101: it holds another value): leadership is lost and e->leader is 0;
 * CN_ETIMEDOUT, CN_ESHUTDOWN or CN_EIO: unknown, e->leader unchanged (the
 * caller decides when to step down). Precondition: e->value != NULL. */
int cli_elect_refresh(struct cli_elect *e, uint64_t *index);

/* While e->leader, deletes the key if it still holds our value; then
 * e->leader is 0. Returns 0 when the key was deleted or we were not
 * leading, else the failure (CN_EBUSY, CN_ENOTFOUND, CN_ETIMEDOUT,
 * CN_ESHUTDOWN, CN_EIO). */
int cli_elect_resign(struct cli_elect *e);

/* Blocks until the key is deleted or expires after index (a watch from
 * index + 1), a watch fails (after a 500 ms pause when the server could not
 * be reached), or a termination signal is pending; the caller campaigns
 * again in every case. */
void cli_elect_wait(struct cli_elect *e, uint64_t index);

/* One heartbeat of a leader loop that never blocks on a watch: refreshes
 * when leading, else campaigns; a follower learns the holder's value
 * (e->holder). Any refresh failure steps down at once (e->leader 0); a 100
 * or 101 is followed by a campaign in the same step. Returns 0 (e->leader
 * tells the outcome) or the failure (CN_ETIMEDOUT, CN_ESHUTDOWN, CN_EIO,
 * CN_ENOMEM); then e->leader is 0. */
int cli_elect_step(struct cli_elect *e);

/* Called with the leader's value (borrowed during the call). */
typedef void cli_elect_observe_fn(void *ctx, const char *value);

/* Reads the key (quorum=true) and follows it with watches, calling fn
 * (ctx passed through) with the leader's value at start and each time the
 * leader's value changes (a removal forgets the value, so the next leader
 * is reported even with the same proposal). Reads again when the watch
 * history runs out (401). Returns 0 when a termination signal is pending,
 * or CN_EIO, CN_ETIMEDOUT or CN_ESHUTDOWN when a read fails (e->cl->fail
 * says why). fn and ctx are borrowed during the call. */
int cli_elect_observe(struct cli_elect *e, cli_elect_observe_fn *fn, void *ctx);

#endif
