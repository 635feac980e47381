/*
 * cli_cmd_cluster: member list|add|remove|update, cluster-health and
 * backup, as etcdctl v2 prints them (member_commands.go,
 * cluster_health.go). Member API failures print the bare error and exit 1,
 * as etcdctl does.
 */
#include "cli_int.h"
#include "wal/wal.h"

#include <stdio.h>
#include <string.h>

#define NFLAGS(a) (sizeof(a) / sizeof((a)[0]))

static int members_list(struct cli_client *cl, struct cli_member **ms,
                        size_t *n, struct cn_buf *err)
{
    struct cli_http_resp hr;
    cli_http_resp_init(&hr);
    *ms = NULL;
    *n = 0;
    int rc = cli_client_do(cl, "GET", "/v2/members", NULL, 0, 0, &hr);
    if (rc != CN_OK) {
        cn_buf_append(err, cl->fail.data, cl->fail.len);
    } else if (hr.status != 200) {
        cn_buf_printf(err, "unexpected status code %d", hr.status);
        rc = CN_EPROTO;
    } else if (cli_json_parse_members(hr.body.data ? hr.body.data : "",
                                      hr.body.len, ms, n) != CN_OK) {
        cn_buf_append_cstr(err, "invalid character in members response");
        rc = CN_EPROTO;
    }
    cli_http_resp_close(&hr);
    return rc;
}

static int members_leader(struct cli_client *cl, struct cli_member *m,
                          struct cn_buf *err)
{
    struct cli_http_resp hr;
    cli_http_resp_init(&hr);
    memset(m, 0, sizeof(*m));
    int rc = cli_client_do(cl, "GET", "/v2/members/leader", NULL, 0, 0, &hr);
    if (rc != CN_OK) {
        cn_buf_append(err, cl->fail.data, cl->fail.len);
    } else if (hr.status != 200) {
        cn_buf_printf(err, "unexpected status code %d", hr.status);
        rc = CN_EPROTO;
    } else if (cli_json_parse_member(hr.body.data ? hr.body.data : "",
                                     hr.body.len, m) != CN_OK) {
        cn_buf_append_cstr(err, "invalid character in leader response");
        rc = CN_EPROTO;
    }
    cli_http_resp_close(&hr);
    return rc;
}

static void join(struct cn_buf *b, char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cn_buf_printf(b, "%s%s", i ? "," : "", v[i]);
}

static int member_list(struct cli_client *cl, int npos)
{
    if (npos != 0) {
        fprintf(stderr, "No arguments accepted\n");
        return CLI_EXIT_BAD_ARGS;
    }
    struct cn_buf err = {0}, out = {0}, a = {0}, b = {0};
    struct cli_member *ms = NULL, leader;
    size_t n = 0;
    int rc = CLI_EXIT_OK;
    memset(&leader, 0, sizeof(leader));
    if (members_list(cl, &ms, &n, &err) != CN_OK) {
        fprintf(stderr, "%s\n", err.data);
        rc = CLI_EXIT_BAD_ARGS;
        goto out;
    }
    if (members_leader(cl, &leader, &err) != CN_OK) {
        fprintf(stderr, "Failed to get leader:  %s\n", err.data);
        rc = CLI_EXIT_BAD_ARGS;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        cn_buf_reset(&a);
        cn_buf_reset(&b);
        join(&a, ms[i].peer_urls, ms[i].peer_count);
        join(&b, ms[i].client_urls, ms[i].client_count);
        if (ms[i].name[0] == '\0')
            cn_buf_printf(&out, "%s[unstarted]: peerURLs=%s\n", ms[i].id,
                          a.data ? a.data : "");
        else
            cn_buf_printf(&out,
                          "%s: name=%s peerURLs=%s clientURLs=%s "
                          "isLeader=%s\n",
                          ms[i].id, ms[i].name, a.data ? a.data : "",
                          b.data ? b.data : "",
                          leader.id && strcmp(ms[i].id, leader.id) == 0
                              ? "true"
                              : "false");
    }
    cli_out(&out);
out:
    cli_member_close(&leader);
    cli_members_free(ms, n);
    cn_buf_close(&err);
    cn_buf_close(&out);
    cn_buf_close(&a);
    cn_buf_close(&b);
    return rc;
}

/* POST or PUT of {"peerURLs": [...]}: the HTTP answer in hr. */
static int member_write(struct cli_client *cl, const char *method,
                        const char *target, char *const *urls, size_t n,
                        struct cli_http_resp *hr, struct cn_buf *err)
{
    struct cn_buf body = {0};
    char *clean[CLI_ENDPOINTS_MAX];
    int rc = cli_peer_urls_parse(urls, n, clean, err);
    if (rc != CN_OK)
        return rc;
    rc = cli_json_peer_urls(&body, clean, n);
    if (rc == CN_OK)
        rc = cli_client_do(cl, method, target, body.data, 0, 0, hr);
    if (rc != CN_OK)
        cn_buf_append(err, cl->fail.data, cl->fail.len);
    cli_peer_urls_free(clean, n);
    cn_buf_close(&body);
    return rc;
}

static void members_error(const struct cli_http_resp *hr, struct cn_buf *err)
{
    char *msg = NULL;
    if (cli_json_parse_message(hr->body.data ? hr->body.data : "", hr->body.len,
                               &msg) == CN_OK)
        cn_buf_append_cstr(err, msg);
    else
        cn_buf_append_cstr(err, "invalid members error response");
    cn_free(msg);
}

static int member_add(struct cli_client *cl, int npos, char **pos)
{
    if (npos != 2) {
        fprintf(stderr, "Provide a name and a single member peerURL\n");
        return CLI_EXIT_BAD_ARGS;
    }
    struct cli_http_resp hr;
    struct cn_buf err = {0}, conf = {0};
    struct cli_member m, *ms = NULL;
    size_t n = 0;
    int rc = CLI_EXIT_BAD_ARGS;
    memset(&m, 0, sizeof(m));
    cli_http_resp_init(&hr);
    if (member_write(cl, "POST", "/v2/members", &pos[1], 1, &hr, &err) != CN_OK)
        goto out;
    if (hr.status == 409) {
        members_error(&hr, &err);
        goto out;
    }
    if (hr.status != 201) {
        cn_buf_printf(&err, "unexpected status code %d", hr.status);
        goto out;
    }
    if (cli_json_parse_member(hr.body.data ? hr.body.data : "", hr.body.len,
                              &m) != CN_OK) {
        cn_buf_append_cstr(&err, "invalid member in response");
        goto out;
    }
    printf("Added member named %s with ID %s to cluster\n", pos[0], m.id);
    if (members_list(cl, &ms, &n, &err) != CN_OK)
        goto out;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < ms[i].peer_count; j++)
            cn_buf_printf(&conf, "%s%s=%s", conf.len ? "," : "",
                          strcmp(ms[i].id, m.id) == 0 ? pos[0] : ms[i].name,
                          ms[i].peer_urls[j]);
    printf("\nETCD_NAME=\"%s\"\nETCD_INITIAL_CLUSTER=\"%s\"\n"
           "ETCD_INITIAL_CLUSTER_STATE=\"existing\"\n",
           pos[0], conf.data ? conf.data : "");
    rc = CLI_EXIT_OK;
out:
    if (rc != CLI_EXIT_OK) {
        fflush(stdout);
        fprintf(stderr, "%s\n", err.data ? err.data : "");
    }
    cli_member_close(&m);
    cli_members_free(ms, n);
    cli_http_resp_close(&hr);
    cn_buf_close(&err);
    cn_buf_close(&conf);
    return rc;
}

static int member_remove(struct cli_client *cl, int npos, char **pos)
{
    if (npos != 1) {
        fprintf(stderr, "Provide a single member ID\n");
        return CLI_EXIT_BAD_ARGS;
    }
    const char *id = pos[0];
    struct cn_buf err = {0}, target = {0};
    struct cli_member *ms = NULL;
    size_t n = 0;
    int rc = CLI_EXIT_BAD_ARGS, found = 0;
    struct cli_http_resp hr;
    cli_http_resp_init(&hr);
    if (members_list(cl, &ms, &n, &err) != CN_OK) {
        fprintf(stderr, "Error while verifying ID against known members: %s\n",
                err.data);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ms[i].id, id) == 0)
            found = 1;
        if (strcmp(ms[i].name, id) == 0) {
            fprintf(stderr,
                    "Found a member named %s; if this is correct, please use "
                    "its ID, eg:\n\tetcdctl member remove %s\n",
                    ms[i].name, ms[i].id);
            fprintf(stderr, "For more details, read the documentation at "
                            "https://github.com/etcd-io/etcd/blob/master/"
                            "Documentation/runtime-configuration.md"
                            "#remove-a-member\n\n");
        }
    }
    if (!found) {
        fprintf(stderr,
                "Couldn't find a member in the cluster with an ID of %s.\n",
                id);
        goto out;
    }
    cn_buf_append_cstr(&target, "/v2/members/");
    cli_fmt_escape_path(&target, id);
    if (cli_client_do(cl, "DELETE", target.data, NULL, 0, 0, &hr) != CN_OK) {
        fprintf(stderr, "Received an error trying to remove member %s: %s", id,
                cl->fail.data);
        goto out;
    }
    if (hr.status != 204 && hr.status != 410) {
        fprintf(stderr,
                "Received an error trying to remove member %s: unexpected "
                "status code %d",
                id, hr.status);
        goto out;
    }
    printf("Removed member %s from cluster\n", id);
    rc = CLI_EXIT_OK;
out:
    cli_members_free(ms, n);
    cli_http_resp_close(&hr);
    cn_buf_close(&err);
    cn_buf_close(&target);
    return rc;
}

static int member_update(struct cli_client *cl, int npos, char **pos)
{
    if (npos != 2) {
        fprintf(stderr, "Provide an ID and a list of comma separated peerURL "
                        "(0xabcd http://example.com,http://example1.com)\n");
        return CLI_EXIT_BAD_ARGS;
    }
    char *urls[CLI_ENDPOINTS_MAX];
    size_t n = 0;
    struct cn_buf list = {0}, err = {0}, target = {0};
    struct cli_http_resp hr;
    int rc = CLI_EXIT_BAD_ARGS;
    cli_http_resp_init(&hr);
    cn_buf_append_cstr(&list, pos[1]);
    for (char *p = list.data; p != NULL && n < CLI_ENDPOINTS_MAX;) {
        urls[n++] = p;
        p = strchr(p, ',');
        if (p != NULL)
            *p++ = '\0';
    }
    cn_buf_append_cstr(&target, "/v2/members/");
    cli_fmt_escape_path(&target, pos[0]);
    if (member_write(cl, "PUT", target.data, urls, n, &hr, &err) != CN_OK)
        goto out;
    if (hr.status == 404 || hr.status == 409) {
        members_error(&hr, &err);
        goto out;
    }
    if (hr.status != 204) {
        cn_buf_printf(&err, "unexpected status code %d", hr.status);
        goto out;
    }
    printf("Updated member with ID %s in cluster\n", pos[0]);
    rc = CLI_EXIT_OK;
out:
    if (rc != CLI_EXIT_OK)
        fprintf(stderr, "%s\n", err.data ? err.data : "");
    cli_http_resp_close(&hr);
    cn_buf_close(&list);
    cn_buf_close(&err);
    cn_buf_close(&target);
    return rc;
}

int cli_cmd_member(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv)
{
    static const char *subs[] = {"list", "add", "remove", "update"};
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (argc == 0 || strcmp(argv[0], "help") == 0 ||
        strcmp(argv[0], "h") == 0) {
        cli_help_cmd(stdout, cmd, NULL, 0);
        goto out;
    }
    int sub = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(argv[0], subs[i]) == 0)
            sub = i;
    if (sub < 0) {
        if (cli_cmd_args(cmd, NULL, 0, argc, argv, pos, &npos, &rc))
            goto out;
        fprintf(stderr, "No help topic for '%s'\n", argv[0]);
        rc = 3;
        goto out;
    }
    if (cli_cmd_args(cmd, NULL, 0, argc - 1, argv + 1, pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    cl.deadline_ms = cli_now_ms() + g->total_timeout_ms;
    switch (sub) {
    case 0:
        rc = member_list(&cl, npos);
        break;
    case 1:
        rc = member_add(&cl, npos, pos);
        break;
    case 2:
        rc = member_remove(&cl, npos, pos);
        break;
    default:
        rc = member_update(&cl, npos, pos);
        break;
    }
    cli_client_close(&cl);
out:
    cn_free(pos);
    return rc;
}

/* One member: 1 healthy, 0 not (lines already printed). */
static int check_member(struct cli_client *cl, const struct cli_member *m,
                        struct cn_buf *out)
{
    if (m->client_count == 0) {
        cn_buf_printf(out,
                      "member %s is unreachable: no available published "
                      "client urls\n",
                      m->id);
        return 0;
    }
    for (size_t i = 0; i < m->client_count; i++) {
        const char *url = m->client_urls[i];
        struct cli_url u;
        char errmsg[2 * CN_ERRMSG_SIZE];
        struct cli_http_resp hr;
        cli_http_resp_init(&hr);
        int rc = cli_url_parse(url, &u, errmsg);
        if (rc == CN_OK) {
            struct cn_buf t = {0};
            cn_buf_printf(&t, "%s/health", u.path);
            struct cli_http_req req = {
                .method = "GET",
                .target = t.data,
                .deadline_ms = cli_now_ms() + cl->timeout_ms * 15,
            };
            rc = cli_http_do(&cl->conn, &u, &req, &hr);
            if (rc != CN_OK)
                snprintf(errmsg, sizeof(errmsg),
                         "Get \"%.200s/health\": %.250s", url, cl->conn.errmsg);
            cn_buf_close(&t);
        }
        int healthy = 0;
        if (rc == CN_OK &&
            cli_json_parse_health(hr.body.data ? hr.body.data : "", hr.body.len,
                                  &healthy) != CN_OK) {
            snprintf(errmsg, sizeof(errmsg),
                     "invalid character in health response");
            rc = CN_EPROTO;
        }
        cli_http_resp_close(&hr);
        if (rc != CN_OK) {
            cn_buf_printf(out,
                          "failed to check the health of member %s on %s: "
                          "%s\n",
                          m->id, url, errmsg);
            continue;
        }
        cn_buf_printf(out, "member %s is %s: got %s result from %s\n", m->id,
                      healthy ? "healthy" : "unhealthy",
                      healthy ? "healthy" : "unhealthy", url);
        return healthy;
    }
    struct cn_buf urls = {0};
    for (size_t i = 0; i < m->client_count; i++)
        cn_buf_printf(&urls, "%s%s", i ? " " : "", m->client_urls[i]);
    cn_buf_printf(out, "member %s is unreachable: [%s] are all unreachable\n",
                  m->id, urls.data);
    cn_buf_close(&urls);
    return 0;
}

int cli_cmd_cluster_health(const struct cli_cmd *cmd, struct cli_global *g,
                           int argc, char **argv)
{
    int forever = 0;
    struct cli_flag flags[] = {
        {"forever,f", CLI_FLAG_BOOL, &forever, NULL,
         "forever check the health every 10 second until CTRL+C", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    struct cli_member *ms = NULL;
    size_t n = 0;
    struct cn_buf err = {0};
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 0)) != CLI_EXIT_OK)
        goto out;
    cl.deadline_ms = 0;
    if (members_list(&cl, &ms, &n, &err) != CN_OK) {
        printf("cluster may be unhealthy: failed to list members\n");
        rc = cli_client_report(&cl, CLI_EXIT_SERVER);
        goto out_client;
    }
    for (;;) {
        struct cn_buf out = {0};
        size_t healthy = 0;
        for (size_t i = 0; i < n; i++)
            healthy += (size_t)check_member(&cl, &ms[i], &out);
        cn_buf_append_cstr(&out, healthy == n   ? "cluster is healthy\n"
                                 : healthy == 0 ? "cluster is unavailable\n"
                                                : "cluster is degraded\n");
        cli_out(&out);
        cn_buf_close(&out);
        if (!forever) {
            rc = healthy == n ? CLI_EXIT_OK : CLI_EXIT_UNHEALTHY;
            break;
        }
        printf("\nnext check after 10 second...\n\n");
        fflush(stdout);
        cli_sleep_ms(10000);
        if (cli_signal_pending())
            break;
    }
out_client:
    cli_client_close(&cl);
out:
    cli_members_free(ms, n);
    cn_buf_close(&err);
    cn_free(pos);
    return rc;
}

int cli_cmd_backup(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv)
{
    const char *data_dir = NULL, *wal_dir = NULL, *backup_dir = NULL,
               *backup_wal_dir = NULL;
    int with_v3 = 0;
    struct cli_flag flags[] = {
        {"data-dir", CLI_FLAG_STRING, &data_dir, "value",
         "Path to the etcd data dir", NULL},
        {"wal-dir", CLI_FLAG_STRING, &wal_dir, "value",
         "Path to the etcd wal dir", NULL},
        {"backup-dir", CLI_FLAG_STRING, &backup_dir, "value",
         "Path to the backup dir", NULL},
        {"backup-wal-dir", CLI_FLAG_STRING, &backup_wal_dir, "value",
         "Path to the backup wal dir", NULL},
        {"with-v3", CLI_FLAG_BOOL, &with_v3, NULL, "Backup v3 backend data",
         NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    if (data_dir == NULL || *data_dir == '\0' || backup_dir == NULL ||
        *backup_dir == '\0') {
        rc = cli_fail(CLI_EXIT_BAD_ARGS,
                      "backup needs --data-dir and --backup-dir");
        goto out;
    }
    if (with_v3) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS,
                      "--with-v3: cairn has no v3 backend to copy");
        goto out;
    }
    /* A consistent newest snapshot plus every durable log entry after it,
     * into a data dir with no member or cluster id (etcdctl v2 backup). */
    struct wal_backup_config bc = {.fs = cn_fs_posix(),
                                   .data_dir = data_dir,
                                   .wal_dir = wal_dir,
                                   .backup_dir = backup_dir,
                                   .backup_wal_dir = backup_wal_dir};
    struct wal_backup_result res;
    char err[CN_ERRMSG_SIZE] = "";
    if (wal_backup(&bc, &res, err) != CN_OK) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "backup: %s", err);
        goto out;
    }
    fprintf(stderr,
            "backup: %s -> %s: snapshot at index %llu, %llu log entries "
            "after it, last index %llu\n",
            data_dir, backup_dir, (unsigned long long)res.snap_index,
            (unsigned long long)res.entry_count,
            (unsigned long long)res.last_index);
out:
    cn_free(pos);
    return rc;
}
