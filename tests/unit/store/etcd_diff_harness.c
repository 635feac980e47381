/*
 * etcd_diff_harness: reads requests "METHOD PATH QUERY" (PATH and QUERY
 * percent-encoded, QUERY as in a URL) on stdin, maps them onto the store as
 * the HTTP layer does, and prints "STATUS BODY" per request. METHOD is GET,
 * PUT, POST, DELETE, WATCH (a non-stream watch answered from history:
 * prints the event, or "WAIT" when none is there yet) or SYNC (expire what
 * is due by the wall clock; prints "200 "). argv[1] is how many
 * writes to a hidden key to make first, so indexes line up with an etcd
 * whose store already holds its membership entries. Used by etcd_diff.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/store.h"

static int64_t wall_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return 0;
}

/* Percent-decodes s in place; returns the new length. */
static size_t unescape(char *s)
{
    char *o = s, *p = s;
    while (*p) {
        if (p[0] == '%' && p[1] && p[2]) {
            *o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
            p += 3;
        } else if (*p == '+') {
            *o++ = ' ';
            p++;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return (size_t)(o - s);
}

struct req {
    struct store_cmd cmd;
    int recursive, sorted;
    char path[8192];
    char vals[8][8192];
};

static void parse_query(struct req *r, char *q)
{
    char *save = NULL;
    int nv = 0;
    for (char *kv = strtok_r(q, "&", &save); kv && nv < 8;
         kv = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL)
            continue;
        *eq = '\0';
        char *v = r->vals[nv++];
        snprintf(v, sizeof(r->vals[0]), "%s", eq + 1);
        struct cn_slice sv = {v, unescape(v)};
        if (!strcmp(kv, "value"))
            r->cmd.value = sv;
        else if (!strcmp(kv, "prevValue"))
            r->cmd.prev_value = sv;
        else if (!strcmp(kv, "prevIndex") || !strcmp(kv, "waitIndex"))
            r->cmd.prev_index = strtoull(v, NULL, 10);
        else if (!strcmp(kv, "prevExist"))
            r->cmd.prev_exist = !strcmp(v, "true");
        else if (!strcmp(kv, "dir"))
            r->cmd.dir = !strcmp(v, "true");
        else if (!strcmp(kv, "recursive"))
            r->cmd.recursive = r->recursive = !strcmp(v, "true");
        else if (!strcmp(kv, "sorted"))
            r->sorted = !strcmp(v, "true");
        else if (!strcmp(kv, "refresh"))
            r->cmd.refresh = !strcmp(v, "true");
        else if (!strcmp(kv, "ttl"))
            r->cmd.expire_ns =
                r->cmd.now_ns + strtoll(v, NULL, 10) * 1000000000LL;
    }
}

static void watch(struct store *s, struct req *r)
{
    struct store_result res = {0};
    uint64_t id = 0;
    int rc = store_watch(s, r->cmd.path, r->recursive, 0, r->cmd.prev_index,
                         &id, &res);
    struct store_delivery d;
    if (rc != CN_OK)
        printf("RC %d\n", rc);
    else if (res.ecode)
        printf("%d %s\n", res.status, res.body.data);
    else if (store_next_delivery(s, &d)) {
        printf("200 %s\n", d.event->json);
        store_event_unref(d.event);
    } else {
        printf("WAIT\n");
        store_unwatch(s, id);
    }
    store_result_close(&res);
}

int main(int argc, char **argv)
{
    static struct req r;
    static char line[65536];
    struct store *s = NULL;
    if (store_new(&s, NULL) != CN_OK)
        return 1;
    int pad = argc > 1 ? atoi(argv[1]) : 0;
    for (int i = 0; i < pad; i++) {
        struct store_cmd c = {0};
        c.method = STORE_CMD_PUT;
        c.path = cn_slice_from_cstr("/_pad");
        c.prev_exist = -1;
        struct store_result res = {0};
        store_apply(s, &c, &res);
        store_result_close(&res);
    }
    while (fgets(line, sizeof(line), stdin)) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL;
        char *m = strtok_r(line, " ", &save);
        char *path = strtok_r(NULL, " ", &save);
        char *q = strtok_r(NULL, " ", &save);
        if (m == NULL || path == NULL)
            continue;
        memset(&r, 0, sizeof(r));
        r.cmd.prev_exist = -1;
        r.cmd.now_ns = wall_ns();
        snprintf(r.path, sizeof(r.path), "%s", path);
        r.cmd.path.base = r.path;
        r.cmd.path.len = unescape(r.path);
        if (q != NULL)
            parse_query(&r, q);
        if (!strcmp(m, "WATCH")) {
            watch(s, &r);
            fflush(stdout);
            continue;
        }
        struct store_result res = {0};
        int rc;
        if (!strcmp(m, "SYNC")) {
            r.cmd.method = STORE_CMD_SYNC;
            r.cmd.now_ns = wall_ns();
            rc = store_apply(s, &r.cmd, &res);
        } else if (!strcmp(m, "GET")) {
            rc = store_get(s, r.cmd.path, r.recursive, r.sorted, wall_ns(),
                           &res);
        } else {
            r.cmd.method = !strcmp(m, "PUT")    ? STORE_CMD_PUT
                           : !strcmp(m, "POST") ? STORE_CMD_POST
                                                : STORE_CMD_DELETE;
            rc = store_apply(s, &r.cmd, &res);
        }
        if (rc != CN_OK)
            printf("RC %d\n", rc);
        else
            printf("%d %s\n", res.status, res.body.data ? res.body.data : "");
        store_result_close(&res);
        fflush(stdout);
    }
    store_free(s);
    return 0;
}
