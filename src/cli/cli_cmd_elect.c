/*
 * cli_cmd_elect: leader election and a fair lock on the public v2 API.
 *
 * elect NAME PROPOSAL [-- COMMAND]:
 *
 *   CAMPAIGN --PUT prevExist=false ok--> LEADER --refresh 101/100--> CAMPAIGN
 *      |  \--105 (someone leads)--> WAIT --delete/expire event--> CAMPAIGN
 *      |                              (watch from the 105's index + 1)
 *   LEADER: refresh every ttl/3 with prevValue=PROPOSAL; when no refresh
 *   succeeded for ttl - ttl/3 the leader assumes the key may be gone and
 *   steps down by itself; COMMAND runs only while LEADER.
 *   COMMAND exits -> resign (DELETE prevValue) and exit with its status.
 *   SIGINT/SIGTERM -> stop COMMAND, resign, exit.
 *
 * elect --observe NAME prints the leader's proposal at start and at every
 * change of leader.
 *
 * The election itself (campaign, refresh, resign, wait, observe) is
 * cli_elect.c, shared with the fleet engine; this file adds the command's
 * policy: COMMAND, the step-down deadline and the exit status.
 *
 * lock NAME -- COMMAND: POST /locks/NAME (in-order key, TTL), then while
 * a smaller key exists watch the one just before ours (the predecessor)
 * until it is deleted or expires, list again; the smallest key holds the
 * lock. Our key is refreshed every ttl/3 while waiting and holding.
 */
#include "cli_elect.h"
#include "cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NFLAGS(a) (sizeof(a) / sizeof((a)[0]))

/* Prints the leader's proposal (elect --observe). */
static void print_leader(void *ctx, const char *value)
{
    (void)ctx;
    printf("%s\n", value);
    fflush(stdout);
}

/* Leads until leadership is lost (0), the command ends (1, *status) or a
 * signal arrives (2). */
static int lead(struct cli_elect *el, pid_t child, int *status)
{
    int64_t last_ok = cli_now_ms();
    int64_t next = last_ok + el->interval_ms;
    uint64_t index = 0;
    for (;;) {
        if (cli_signal_pending())
            return 2;
        if (child > 0 && cli_proc_poll(child, status))
            return 1;
        if (cli_now_ms() < next) {
            cli_sleep_ms(20);
            continue;
        }
        next = cli_now_ms() + el->interval_ms;
        int64_t sent = cli_now_ms();
        int rc = cli_elect_refresh(el, &index);
        if (rc == CN_OK) {
            last_ok = sent;
        } else if (rc == CN_ENOTFOUND || rc == CN_EBUSY) {
            cli_recipe_log("elect", "%s: leadership lost (%d)", el->key,
                           el->etcd_code);
            return 0;
        } else {
            cli_recipe_log("elect", "%s: refresh failed: %s", el->key,
                           el->etcd_code ? "error" : el->errmsg);
        }
        /* The key may expire ttl after the last refresh the server took;
         * step down early enough that the next leader (after expiry) never
         * overlaps us, assuming clocks run at similar rates. */
        if (cli_now_ms() - last_ok > el->ttl_s * 1000 - el->interval_ms) {
            cli_recipe_log("elect",
                           "%s: no refresh for too long; stepping "
                           "down",
                           el->key);
            return 0;
        }
    }
}

/* Campaigns, leads while COMMAND (may be NULL) runs, campaigns again when
 * leadership is lost; returns the exit code. */
static int elect_run(struct cli_elect *el, char **command)
{
    int rc = CLI_EXIT_OK;
    while (!cli_signal_pending()) {
        uint64_t index = 0;
        int r = cli_elect_campaign(el, &index);
        if (r == CN_EEXIST) {
            cli_elect_wait(el, index);
            continue;
        }
        if (r != CN_OK) {
            cli_recipe_log("elect", "%s: %s", el->key, el->errmsg);
            cli_sleep_ms(1000);
            continue;
        }
        cli_recipe_log("elect", "%s: elected %s (index %llu)", el->key,
                       el->value, (unsigned long long)index);
        pid_t child = 0;
        int status = 0;
        if (command != NULL && cli_proc_spawn(command, NULL, &child) != CN_OK) {
            if (cli_elect_resign(el) == CN_OK)
                cli_recipe_log("elect", "%s: resigned", el->key);
            rc = cli_fail(CLI_EXIT_BAD_ARGS, "cannot start %s", command[0]);
            break;
        }
        int how = lead(el, child, &status);
        if (how == 2)
            cli_signal_take();
        if (how != 1 && child > 0)
            status = cli_proc_stop(child, 5000);
        if (how == 0)
            continue; /* lost: campaign again */
        if (cli_elect_resign(el) == CN_OK)
            cli_recipe_log("elect", "%s: resigned", el->key);
        rc = child > 0 && how == 1 ? status : CLI_EXIT_OK;
        break;
    }
    return rc;
}

int cli_cmd_elect(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                  char **argv)
{
    long long ttl = 10;
    int observe_only = 0;
    struct cli_flag flags[] = {
        {"ttl", CLI_FLAG_INT, &ttl, "value",
         "seconds leadership outlives the leader's last heartbeat",
         "(default: 10)"},
        {"observe", CLI_FLAG_BOOL, &observe_only, NULL,
         "print the leader's proposal at start and at each change", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, nargs = 0, rc = CLI_EXIT_OK;
    char **command = NULL;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    cli_recipe_split(pos, npos, &nargs, &command);
    if (nargs != (observe_only ? 1 : 2) || !pos[0][0] || strchr(pos[0], '/') ||
        ttl < 2) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS,
                      "usage: elect <name> <proposal> [-- command...] | "
                      "elect --observe <name> (name without '/', ttl >= 2)");
        goto out;
    }
    char key[CLI_URL_MAX];
    snprintf(key, sizeof(key), "/elections/%s", pos[0]);
    struct cli_client cl;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    struct cli_elect el;
    if (cli_elect_init(&el, &cl, key, observe_only ? NULL : pos[1], ttl,
                       g->total_timeout_ms) != CN_OK) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "%s", el.errmsg);
    } else if (observe_only) {
        if (cli_elect_observe(&el, print_leader, NULL) != CN_OK)
            rc = cli_client_report(&cl, CLI_EXIT_SERVER);
    } else {
        rc = elect_run(&el, command);
    }
    cli_elect_close(&el);
    cli_client_close(&cl);
out:
    cn_free(pos);
    return rc;
}

/* ---- lock ------------------------------------------------------------ */

struct locker {
    struct cli_client cl;
    const struct cli_global *g;
    char key[CLI_URL_MAX];
    long long ttl;
    int64_t interval_ms;
};

/* Lists the queue: 1 when our key is first, 0 when *pred (owned) names
 * the key just before ours, -1 when our key is gone, -2 on failure.
 * *index is the listing's X-Etcd-Index. */
static int lock_position(struct locker *el, const char *mine, char **pred,
                         uint64_t *index)
{
    struct cli_resp resp;
    struct cli_etcd_error e;
    *pred = NULL;
    int r = cli_recipe_call(&el->cl, el->g, "GET", el->key,
                            "quorum=true&recursive=false&sorted=true", NULL, 0,
                            0, &resp, &e);
    int result = -2;
    if (r == CLI_KEYS_OK) {
        *index = resp.index;
        result = -1;
        const char *before = NULL;
        for (size_t i = 0; i < resp.node->node_count; i++) {
            const struct cli_node *n = &resp.node->nodes[i];
            if (strcmp(n->key, mine) == 0) {
                result = before == NULL ? 1 : 0;
                if (before != NULL)
                    *pred = cn_strdup(before);
                break;
            }
            before = n->key;
        }
    } else if (r == CLI_KEYS_ETCD && e.code == 100) {
        result = -1;
    }
    cli_resp_close(&resp);
    cli_etcd_error_close(&e);
    return result;
}

/* Waits for pred to go, refreshing our key every interval. 0 when pred is
 * gone (or the history ran out: list again), -1 when our key is lost. */
static int lock_wait(struct locker *el, const char *mine, const char *pred,
                     uint64_t index)
{
    uint64_t my_index = 0;
    while (!cli_signal_pending()) {
        struct cli_resp resp;
        struct cli_etcd_error e;
        int timed_out = 0;
        int r = cli_recipe_watch(&el->cl, pred, 0, index + 1,
                                 cli_now_ms() + el->interval_ms, &resp, &e,
                                 &timed_out);
        int gone = 0;
        if (r == CLI_KEYS_OK) {
            index = resp.node->modified_index;
            gone = cli_action_removes(resp.action);
        } else if (r == CLI_KEYS_ETCD) {
            gone = 1; /* 401: list again */
        } else if (!timed_out) {
            cli_sleep_ms(200);
        }
        cli_resp_close(&resp);
        cli_etcd_error_close(&e);
        if (gone)
            return 0;
        if (timed_out || r == CLI_KEYS_FAILED) {
            int rr = cli_recipe_refresh(&el->cl, el->g, mine, el->ttl, NULL,
                                        &my_index, &e);
            int code = e.code;
            cli_etcd_error_close(&e);
            if (rr == CLI_KEYS_ETCD && code == 100)
                return -1;
        }
    }
    return 0;
}

/* Holds the lock while the command runs: its status, or -1 when the key
 * was lost (the command is stopped). */
static int lock_hold(struct locker *el, const char *mine, pid_t child)
{
    int status = 0;
    int64_t next = cli_now_ms() + el->interval_ms;
    int64_t last_ok = cli_now_ms();
    uint64_t idx = 0;
    for (;;) {
        if (cli_proc_poll(child, &status))
            return status;
        if (cli_signal_pending())
            return cli_proc_stop(child, 5000);
        if (cli_now_ms() < next) {
            cli_sleep_ms(20);
            continue;
        }
        next = cli_now_ms() + el->interval_ms;
        struct cli_etcd_error e;
        int64_t sent = cli_now_ms();
        int r =
            cli_recipe_refresh(&el->cl, el->g, mine, el->ttl, NULL, &idx, &e);
        int code = e.code;
        cli_etcd_error_close(&e);
        if (r == CLI_KEYS_OK)
            last_ok = sent;
        if ((r == CLI_KEYS_ETCD && code == 100) ||
            cli_now_ms() - last_ok > el->ttl * 1000 - el->interval_ms) {
            cli_recipe_log("lock", "%s: lock lost; stopping the command", mine);
            cli_proc_stop(child, 5000);
            return -1;
        }
    }
}

int cli_cmd_lock(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                 char **argv)
{
    struct locker el;
    memset(&el, 0, sizeof(el));
    el.g = g;
    el.ttl = 10;
    struct cli_flag flags[] = {
        {"ttl", CLI_FLAG_INT, &el.ttl, "value",
         "seconds the lock outlives its holder's last heartbeat",
         "(default: 10)"},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, nargs = 0, rc = CLI_EXIT_OK;
    char **command = NULL;
    char *mine = NULL, *pred = NULL;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    cli_recipe_split(pos, npos, &nargs, &command);
    if (nargs != 1 || command == NULL || !pos[0][0] || strchr(pos[0], '/') ||
        el.ttl < 2) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS,
                      "usage: lock <name> -- command... (name without '/', "
                      "ttl >= 2)");
        goto out;
    }
    snprintf(el.key, sizeof(el.key), "/locks/%s", pos[0]);
    el.interval_ms = el.ttl * 1000 / 3;
    if ((rc = cli_connect(&el.cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    char host[128] = "";
    gethostname(host, sizeof(host) - 1);
    struct cn_buf form = {0}, num = {0}, who = {0};
    cn_buf_printf(&who, "%s:%ld", host, (long)getpid());
    cn_buf_printf(&num, "%lld", el.ttl);
    cli_form_add(&form, "ttl", num.data);
    cli_form_add(&form, "value", who.data);
    struct cli_resp resp;
    struct cli_etcd_error e;
    int r = cli_recipe_call(&el.cl, g, "POST", el.key, NULL, form.data,
                            CLI_REQ_ONESHOT, 0, &resp, &e);
    cn_buf_close(&form);
    cn_buf_close(&num);
    cn_buf_close(&who);
    if (r == CLI_KEYS_OK)
        mine = cn_strdup(resp.node->key);
    cli_resp_close(&resp);
    if (r != CLI_KEYS_OK) {
        if (r == CLI_KEYS_ETCD) {
            struct cn_buf b = {0};
            cli_fmt_etcd_error(&b, &e);
            cli_err(&b);
            cn_buf_close(&b);
            rc = CLI_EXIT_SERVER;
        } else {
            rc = cli_client_report(&el.cl, CLI_EXIT_SERVER);
        }
        cli_etcd_error_close(&e);
        goto out_client;
    }
    for (;;) {
        uint64_t index = 0;
        if (cli_signal_pending()) {
            rc = 128 + cli_signal_take();
            break;
        }
        cn_free(pred);
        int p = lock_position(&el, mine, &pred, &index);
        if (p == -2) {
            cli_sleep_ms(500);
            continue;
        }
        if (p == -1 || (p == 0 && lock_wait(&el, mine, pred, index) < 0)) {
            cli_signal_take();
            rc = cli_fail(CLI_EXIT_SERVER, "lock key %s expired while waiting",
                          mine);
            break;
        }
        if (p == 0)
            continue;
        cli_recipe_log("lock", "%s: acquired", mine);
        pid_t child;
        if (cli_proc_spawn(command, NULL, &child) != CN_OK) {
            rc = cli_fail(CLI_EXIT_BAD_ARGS, "cannot start %s", command[0]);
            break;
        }
        int st = lock_hold(&el, mine, child);
        cli_signal_take();
        rc = st < 0 ? CLI_EXIT_SERVER : st;
        break;
    }
    /* Release (or leave the queue). */
    struct cli_resp dresp;
    if (cli_recipe_call(&el.cl, g, "DELETE", mine, NULL, NULL, CLI_REQ_ONESHOT,
                        0, &dresp, &e) == CLI_KEYS_OK)
        cli_recipe_log("lock", "%s: released", mine);
    cli_resp_close(&dresp);
    cli_etcd_error_close(&e);
out_client:
    cli_client_close(&el.cl);
out:
    cn_free(mine);
    cn_free(pred);
    cn_free(pos);
    return rc;
}
