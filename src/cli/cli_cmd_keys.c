/*
 * cli_cmd_keys: the etcdctl v2 key commands (set, get, mk, mkdir, setdir,
 * update, updatedir, rm, rmdir, ls, watch, exec-watch). Each does what
 * etcdctl/ctlv2/command/<name>_command.go does: same requests (parameters
 * in Go's sorted order), same output, same exit codes. As in etcdctl, the
 * client connects (and syncs the member list) before the arguments are
 * checked.
 */
#include "cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NFLAGS(a) (sizeof(a) / sizeof((a)[0]))

/* argOrStdin: the argument, or all of standard input (must be non-empty). */
static int arg_or_stdin(int npos, char **pos, int i, struct cn_buf *out)
{
    if (i < npos)
        return cn_buf_append_cstr(out, pos[i]);
    char chunk[4096];
    for (;;) {
        ssize_t r = read(STDIN_FILENO, chunk, sizeof(chunk));
        if (r < 0)
            return CN_EIO;
        if (r == 0)
            break;
        if (cn_buf_append(out, chunk, (size_t)r) != CN_OK)
            return CN_ENOMEM;
    }
    return out->len > 0 ? CN_OK : CN_ENOTFOUND;
}

static int print_resp(const struct cli_global *g, const struct cli_resp *r)
{
    struct cn_buf out = {0}, err = {0};
    cli_fmt_resp(&out, &err, r, g->output);
    cli_out(&out);
    cli_err(&err);
    cn_buf_close(&out);
    cn_buf_close(&err);
    return CLI_EXIT_OK;
}

/* Runs a key request and reports failures like handleError(ExitServerError).
 * Returns -1 on success (resp set), else the exit code. */
static int call(struct cli_client *cl, const struct cli_keys_req *req,
                struct cli_resp *resp)
{
    struct cli_etcd_error e;
    int r = cli_keys_call(cl, req, resp, &e);
    if (r == CLI_KEYS_OK)
        return -1;
    if (r == CLI_KEYS_ETCD) {
        struct cn_buf b = {0};
        cli_fmt_etcd_error(&b, &e);
        cli_err(&b);
        cn_buf_close(&b);
        cli_etcd_error_close(&e);
        return CLI_EXIT_SERVER;
    }
    return cli_client_report(cl, CLI_EXIT_SERVER);
}

static void begin(struct cli_client *cl, const struct cli_global *g)
{
    cl->deadline_ms = cli_now_ms() + g->total_timeout_ms;
}

/* PUT with the options of client.SetOptions. */
struct set_opts {
    const char *value; /* NULL for a directory */
    long long ttl;
    const char *prev_value;
    long long prev_index;
    const char *prev_exist; /* NULL, "true", "false" */
};

static int do_set(struct cli_client *cl, struct cli_global *g, const char *key,
                  const struct set_opts *o, int print_simple)
{
    struct cn_buf q = {0}, form = {0}, num = {0};
    if (o->value == NULL)
        cli_form_add(&q, "dir", "true");
    if (o->prev_exist != NULL)
        cli_form_add(&q, "prevExist", o->prev_exist);
    if (o->prev_index != 0) {
        cn_buf_printf(&num, "%llu", (unsigned long long)o->prev_index);
        cli_form_add(&q, "prevIndex", num.data);
    }
    if (o->value != NULL && o->prev_value != NULL && o->prev_value[0])
        cli_form_add(&q, "prevValue", o->prev_value);
    if (o->ttl > 0) {
        cn_buf_reset(&num);
        cn_buf_printf(&num, "%lld", o->ttl);
        cli_form_add(&form, "ttl", num.data);
    }
    if (o->value != NULL)
        cli_form_add(&form, "value", o->value);
    struct cli_keys_req req = {
        .method = "PUT",
        .key = key,
        .query = q.data,
        .form = form.data ? form.data : "",
        .flags = o->prev_exist && strcmp(o->prev_exist, "false") == 0
                     ? CLI_REQ_ONESHOT
                     : 0,
    };
    struct cli_resp resp;
    begin(cl, g);
    int rc = call(cl, &req, &resp);
    if (rc < 0) {
        rc = CLI_EXIT_OK;
        if (print_simple || strcmp(g->output, "simple") != 0)
            print_resp(g, &resp);
    }
    cli_resp_close(&resp);
    cn_buf_close(&q);
    cn_buf_close(&form);
    cn_buf_close(&num);
    return rc;
}

/* set / mk / update: "<key> <value>" with the value possibly on stdin. */
static int value_cmd(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                     char **argv, const char *prev_exist)
{
    long long ttl = 0, swap_index = 0;
    const char *swap_value = NULL;
    int in_order = 0;
    struct cli_flag set_flags[] = {
        {"ttl", CLI_FLAG_INT, &ttl, "value", "key time-to-live in seconds",
         "(default: 0)"},
        {"swap-with-value", CLI_FLAG_STRING, &swap_value, "value",
         "previous value", NULL},
        {"swap-with-index", CLI_FLAG_INT, &swap_index, "value",
         "previous index", "(default: 0)"},
    };
    struct cli_flag mk_flags[] = {
        {"in-order", CLI_FLAG_BOOL, &in_order, NULL,
         "create in-order key under directory <key>", NULL},
        {"ttl", CLI_FLAG_INT, &ttl, "value", "key time-to-live in seconds",
         "(default: 0)"},
    };
    int is_set = prev_exist == NULL;
    int is_mk = prev_exist != NULL && strcmp(prev_exist, "false") == 0;
    const struct cli_flag *flags = is_set ? set_flags : mk_flags;
    size_t nflags = is_set ? NFLAGS(set_flags) : is_mk ? 2 : 1;
    if (!is_set && !is_mk)
        flags = &mk_flags[1]; /* update: --ttl only */
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    struct cn_buf value = {0};
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, nflags, argc, argv, pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (npos == 0) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key required");
    } else if (arg_or_stdin(npos, pos, 1, &value) != CN_OK) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "value required");
    } else if (is_mk && in_order) {
        struct cn_buf form = {0}, num = {0};
        if (ttl > 0) {
            cn_buf_printf(&num, "%lld", ttl);
            cli_form_add(&form, "ttl", num.data);
        }
        cli_form_add(&form, "value", value.data);
        struct cli_keys_req req = {
            .method = "POST", .key = pos[0], .form = form.data};
        struct cli_resp resp;
        begin(&cl, g);
        rc = call(&cl, &req, &resp);
        if (rc < 0)
            rc = print_resp(g, &resp);
        cli_resp_close(&resp);
        cn_buf_close(&form);
        cn_buf_close(&num);
    } else {
        struct set_opts o = {.value = value.data,
                             .ttl = ttl,
                             .prev_value = swap_value,
                             .prev_index = swap_index,
                             .prev_exist = prev_exist};
        rc = do_set(&cl, g, pos[0], &o, 1);
    }
    cli_client_close(&cl);
out:
    cn_buf_close(&value);
    cn_free(pos);
    return rc;
}

int cli_cmd_set(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                char **argv)
{
    return value_cmd(cmd, g, argc, argv, NULL);
}

int cli_cmd_mk(const struct cli_cmd *cmd, struct cli_global *g, int argc,
               char **argv)
{
    return value_cmd(cmd, g, argc, argv, "false");
}

int cli_cmd_update(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv)
{
    return value_cmd(cmd, g, argc, argv, "true");
}

/* mkdir / setdir / updatedir */
static int dir_cmd(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv, const char *prev_exist)
{
    long long ttl = 0;
    struct cli_flag flags[] = {
        {"ttl", CLI_FLAG_INT, &ttl, "value", "key time-to-live in seconds",
         "(default: 0)"},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, 1, argc, argv, pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (npos == 0) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key required");
    } else {
        struct set_opts o = {.ttl = ttl, .prev_exist = prev_exist};
        rc = do_set(&cl, g, pos[0], &o, 0);
    }
    cli_client_close(&cl);
out:
    cn_free(pos);
    return rc;
}

int cli_cmd_mkdir(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                  char **argv)
{
    return dir_cmd(cmd, g, argc, argv, "false");
}

int cli_cmd_setdir(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                   char **argv)
{
    return dir_cmd(cmd, g, argc, argv, NULL);
}

int cli_cmd_updatedir(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                      char **argv)
{
    return dir_cmd(cmd, g, argc, argv, "true");
}

/* rm / rmdir */
static int remove_cmd(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                      char **argv, int is_rmdir)
{
    int dir = 0, recursive = 0;
    const char *with_value = NULL;
    long long with_index = 0;
    struct cli_flag flags[] = {
        {"dir", CLI_FLAG_BOOL, &dir, NULL,
         "removes the key if it is an empty directory or a key-value pair",
         NULL},
        {"recursive,r", CLI_FLAG_BOOL, &recursive, NULL,
         "removes the key and all child keys(if it is a directory)", NULL},
        {"with-value", CLI_FLAG_STRING, &with_value, "value", "previous value",
         NULL},
        {"with-index", CLI_FLAG_INT, &with_index, "value", "previous index",
         "(default: 0)"},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    struct cn_buf q = {0}, num = {0};
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, is_rmdir ? 0 : NFLAGS(flags), argc, argv, pos,
                     &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (npos == 0) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key required");
        goto out_client;
    }
    if (dir || is_rmdir)
        cli_form_add(&q, "dir", "true");
    if (with_index != 0) {
        cn_buf_printf(&num, "%llu", (unsigned long long)with_index);
        cli_form_add(&q, "prevIndex", num.data);
    }
    if (with_value != NULL && with_value[0])
        cli_form_add(&q, "prevValue", with_value);
    if (recursive)
        cli_form_add(&q, "recursive", "true");
    struct cli_keys_req req = {.method = "DELETE",
                               .key = pos[0],
                               .query = q.data,
                               .flags = CLI_REQ_ONESHOT};
    struct cli_resp resp;
    begin(&cl, g);
    rc = call(&cl, &req, &resp);
    if (rc < 0) {
        rc = CLI_EXIT_OK;
        if (!resp.node->dir || strcmp(g->output, "simple") != 0)
            print_resp(g, &resp);
    }
    cli_resp_close(&resp);
out_client:
    cli_client_close(&cl);
out:
    cn_buf_close(&q);
    cn_buf_close(&num);
    cn_free(pos);
    return rc;
}

int cli_cmd_rm(const struct cli_cmd *cmd, struct cli_global *g, int argc,
               char **argv)
{
    return remove_cmd(cmd, g, argc, argv, 0);
}

int cli_cmd_rmdir(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                  char **argv)
{
    return remove_cmd(cmd, g, argc, argv, 1);
}

/* get / ls */
static int read_cmd(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                    char **argv, int is_ls)
{
    int sort = 0, quorum = 0, recursive = 0, slash = 0;
    struct cli_flag get_flags[] = {
        {"sort", CLI_FLAG_BOOL, &sort, NULL, "returns result in sorted order",
         NULL},
        {"quorum,q", CLI_FLAG_BOOL, &quorum, NULL,
         "require quorum for get request", NULL},
    };
    struct cli_flag ls_flags[] = {
        {"sort", CLI_FLAG_BOOL, &sort, NULL, "returns result in sorted order",
         NULL},
        {"recursive,r", CLI_FLAG_BOOL, &recursive, NULL,
         "returns all key names recursively for the given path", NULL},
        {"p", CLI_FLAG_BOOL, &slash, NULL, "append slash (/) to directories",
         NULL},
        {"quorum,q", CLI_FLAG_BOOL, &quorum, NULL,
         "require quorum for get request", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    struct cn_buf q = {0}, out = {0};
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, is_ls ? ls_flags : get_flags,
                     is_ls ? NFLAGS(ls_flags) : NFLAGS(get_flags), argc, argv,
                     pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (npos == 0 && !is_ls) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key required");
        goto out_client;
    }
    cli_form_add(&q, "quorum", quorum ? "true" : "false");
    cli_form_add(&q, "recursive", recursive ? "true" : "false");
    cli_form_add(&q, "sorted", sort ? "true" : "false");
    struct cli_keys_req req = {
        .method = "GET", .key = npos > 0 ? pos[0] : "/", .query = q.data};
    struct cli_resp resp;
    begin(&cl, g);
    rc = call(&cl, &req, &resp);
    if (rc < 0) {
        rc = CLI_EXIT_OK;
        if (is_ls && strcmp(g->output, "simple") == 0) {
            cli_fmt_ls(&out, &resp, slash);
            cli_out(&out);
        } else if (!is_ls && resp.node->dir) {
            fprintf(stderr, "%s: is a directory\n", resp.node->key);
            rc = CLI_EXIT_BAD_ARGS;
        } else {
            print_resp(g, &resp);
        }
    }
    cli_resp_close(&resp);
out_client:
    cli_client_close(&cl);
out:
    cn_buf_close(&q);
    cn_buf_close(&out);
    cn_free(pos);
    return rc;
}

int cli_cmd_get(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                char **argv)
{
    return read_cmd(cmd, g, argc, argv, 0);
}

int cli_cmd_ls(const struct cli_cmd *cmd, struct cli_global *g, int argc,
               char **argv)
{
    return read_cmd(cmd, g, argc, argv, 1);
}

/* One watch step: waits for the next event at or after *wait_index.
 * Returns -1 with resp set (and *wait_index advanced), or an exit code. */
static int watch_next(struct cli_client *cl, const char *key, int recursive,
                      uint64_t *wait_index, struct cli_resp *resp)
{
    for (;;) {
        struct cn_buf q = {0}, num = {0};
        cn_buf_printf(&num, "%llu", (unsigned long long)*wait_index);
        cli_form_add(&q, "recursive", recursive ? "true" : "false");
        cli_form_add(&q, "wait", "true");
        cli_form_add(&q, "waitIndex", num.data);
        struct cli_keys_req req = {.method = "GET",
                                   .key = key,
                                   .query = q.data,
                                   .flags = CLI_REQ_WAIT,
                                   .deadline_ms = -1};
        struct cli_etcd_error e;
        int r = cli_keys_call(cl, &req, resp, &e);
        cn_buf_close(&q);
        cn_buf_close(&num);
        if (r == CLI_KEYS_OK) {
            *wait_index = resp->node->modified_index + 1;
            return -1;
        }
        if (r == CLI_KEYS_ETCD) {
            struct cn_buf b = {0};
            cli_fmt_etcd_error(&b, &e);
            cli_err(&b);
            cn_buf_close(&b);
            cli_etcd_error_close(&e);
            return CLI_EXIT_SERVER;
        }
        if (cli_signal_pending())
            return CLI_EXIT_OK; /* interrupted: etcdctl exits 0 */
        if (cl->fail.data &&
            strcmp(cl->fail.data, "client: response body is empty") == 0)
            continue;
        return cli_client_report(cl, CLI_EXIT_SERVER);
    }
}

int cli_cmd_watch(const struct cli_cmd *cmd, struct cli_global *g, int argc,
                  char **argv)
{
    int forever = 0, recursive = 0;
    long long after = 0;
    struct cli_flag flags[] = {
        {"forever,f", CLI_FLAG_BOOL, &forever, NULL,
         "forever watch a key until CTRL+C", NULL},
        {"after-index", CLI_FLAG_INT, &after, "value",
         "watch after the given index", "(default: 0)"},
        {"recursive,r", CLI_FLAG_BOOL, &recursive, NULL,
         "returns all values for key and child keys", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (npos == 0) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key required");
        goto out_client;
    }
    uint64_t wait_index = after > 0 ? (uint64_t)after + 1 : 0;
    for (;;) {
        struct cli_resp resp;
        rc = watch_next(&cl, pos[0], recursive, &wait_index, &resp);
        if (rc >= 0)
            break;
        rc = CLI_EXIT_OK;
        if (resp.node->dir) {
            cli_resp_close(&resp);
            continue;
        }
        if (recursive)
            printf("[%s] %s\n", resp.action, resp.node->key);
        print_resp(g, &resp);
        cli_resp_close(&resp);
        if (!forever)
            break;
    }
out_client:
    cli_client_close(&cl);
out:
    cn_free(pos);
    return rc;
}

int cli_cmd_exec_watch(const struct cli_cmd *cmd, struct cli_global *g,
                       int argc, char **argv)
{
    int recursive = 0;
    long long after = 0;
    struct cli_flag flags[] = {
        {"after-index", CLI_FLAG_INT, &after, "value",
         "watch after the given index", "(default: 0)"},
        {"recursive,r", CLI_FLAG_BOOL, &recursive, NULL,
         "watch all values for key and child keys", NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    int npos = 0, rc = CLI_EXIT_OK;
    struct cli_client cl;
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    if (cli_cmd_args(cmd, flags, NFLAGS(flags), argc, argv, pos, &npos, &rc))
        goto out;
    if ((rc = cli_connect(&cl, g, 1)) != CLI_EXIT_OK)
        goto out;
    if (npos < 2) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key and command to exec required");
        goto out_client;
    }
    /* etcdctl: with "--" after the key, "key -- cmd..."; without it the
     * key is the last argument and the command comes first. */
    const char *key;
    char **cmd_argv;
    int found_sep = 0;
    for (int i = 1; i < npos; i++)
        if (strcmp(pos[i], "--") == 0)
            found_sep = 1;
    if (found_sep) {
        key = pos[0];
        cmd_argv = pos + 2;
    } else {
        key = pos[npos - 1];
        pos[npos - 1] = NULL;
        cmd_argv = pos;
    }
    if (cmd_argv[0] == NULL) {
        rc = cli_fail(CLI_EXIT_BAD_ARGS, "key and command to exec required");
        goto out_client;
    }
    uint64_t wait_index = after > 0 ? (uint64_t)after + 1 : 0;
    for (;;) {
        struct cli_resp resp;
        rc = watch_next(&cl, key, recursive, &wait_index, &resp);
        if (rc >= 0)
            break;
        rc = CLI_EXIT_OK;
        if (resp.node->dir) {
            fprintf(stderr, "Ignored dir %s change\n", resp.node->key);
            cli_resp_close(&resp);
            continue;
        }
        struct cn_buf e[4] = {{0}};
        cn_buf_printf(&e[0], "ETCD_WATCH_ACTION=%s", resp.action);
        cn_buf_printf(&e[1], "ETCD_WATCH_MODIFIED_INDEX=%llu",
                      (unsigned long long)resp.node->modified_index);
        cn_buf_printf(&e[2], "ETCD_WATCH_KEY=%s", resp.node->key);
        cn_buf_printf(&e[3], "ETCD_WATCH_VALUE=%s", resp.node->value);
        char *env[] = {e[0].data, e[1].data, e[2].data, e[3].data, NULL};
        pid_t pid;
        if (cli_proc_spawn(cmd_argv, env, &pid) != CN_OK)
            fprintf(stderr, "exec: \"%s\": cannot start\n", cmd_argv[0]);
        for (int i = 0; i < 4; i++)
            cn_buf_close(&e[i]);
        cli_resp_close(&resp);
        while (waitpid(-1, NULL, WNOHANG) > 0)
            ; /* reap the commands that finished */
    }
out_client:
    cli_client_close(&cl);
out:
    cn_free(pos);
    return rc;
}
