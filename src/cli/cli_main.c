/*
 * cli_main: global options and command dispatch, following etcdctl v2:
 * global flags come before the command (Go flag rules, no reordering);
 * endpoints come from --endpoints, ETCDCTL_ENDPOINTS, --endpoint,
 * ETCDCTL_ENDPOINT, --peers/-C, ETCDCTL_PEERS, in that order.
 */
#include "cli.h"
#include "cli_int.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define CLI_VERSION "3.4.23"

void cli_out(const struct cn_buf *b)
{
    if (b->len > 0)
        fwrite(b->data, 1, b->len, stdout);
    fflush(stdout);
}

void cli_err(const struct cn_buf *b)
{
    fflush(stdout);
    if (b->len > 0)
        fwrite(b->data, 1, b->len, stderr);
    fflush(stderr);
}

int cli_fail(int code, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("Error:  ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int cli_cmd_args(const struct cli_cmd *cmd, const struct cli_flag *flags,
                 size_t nflags, int argc, char **argv, char **pos, int *npos,
                 int *rc)
{
    char errmsg[CN_ERRMSG_SIZE];
    int r = cli_args_parse(flags, nflags, argc, argv, 1, pos, npos, errmsg);
    if (r == CLI_ARGS_OK)
        return 0;
    if (r == CLI_ARGS_HELP) {
        cli_help_cmd(stdout, cmd, flags, nflags);
        *rc = CLI_EXIT_OK;
        return 1;
    }
    printf("Incorrect Usage: %s\n\n", errmsg);
    cli_help_cmd(stdout, cmd, flags, nflags);
    fflush(stdout);
    fprintf(stderr, "%s\n", errmsg);
    *rc = CLI_EXIT_BAD_ARGS;
    return 1;
}

int cli_connect(struct cli_client *cl, struct cli_global *g, int sync)
{
    if (cli_client_init(cl, g) != CN_OK) {
        fprintf(stderr, "%s\n", cl->fail.data ? cl->fail.data : "");
        cli_client_close(cl);
        return CLI_EXIT_BAD_ARGS;
    }
    int code = sync ? cli_client_sync(cl, g) : CLI_EXIT_OK;
    if (!sync && g->debug) {
        fprintf(stderr, "Cluster-Endpoints: ");
        for (size_t i = 0; i < cl->ep_count; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", cl->eps[i].text);
        fprintf(stderr, "\n");
    }
    if (code != CLI_EXIT_OK)
        cli_client_close(cl);
    return code;
}

static const char *first_set(const char *a, const char *b)
{
    return a != NULL && *a ? a : b;
}

int cli_main(int argc, char **argv)
{
    struct cli_global g = {
        .output = "simple", .timeout_ms = 2000, .total_timeout_ms = 5000};
    const char *endpoints = NULL, *endpoint = NULL, *peers = NULL;
    const char *ignored = NULL;
    int version = 0, insecure = 0;
    const struct cli_flag flags[] = {
        {"debug", CLI_FLAG_BOOL, &g.debug, NULL, NULL, NULL},
        {"no-sync", CLI_FLAG_BOOL, &g.no_sync, NULL, NULL, NULL},
        {"output,o", CLI_FLAG_STRING, &g.output, NULL, NULL, NULL},
        {"discovery-srv,D", CLI_FLAG_STRING, &ignored, NULL, NULL, NULL},
        {"insecure-discovery", CLI_FLAG_BOOL, &insecure, NULL, NULL, NULL},
        {"peers,C", CLI_FLAG_STRING, &peers, NULL, NULL, NULL},
        {"endpoint", CLI_FLAG_STRING, &endpoint, NULL, NULL, NULL},
        {"endpoints", CLI_FLAG_STRING, &endpoints, NULL, NULL, NULL},
        {"cert-file", CLI_FLAG_STRING, &ignored, NULL, NULL, NULL},
        {"key-file", CLI_FLAG_STRING, &ignored, NULL, NULL, NULL},
        {"ca-file", CLI_FLAG_STRING, &ignored, NULL, NULL, NULL},
        {"username,u", CLI_FLAG_STRING, &ignored, NULL, NULL, NULL},
        {"timeout", CLI_FLAG_DURATION, &g.timeout_ms, NULL, NULL, NULL},
        {"total-timeout", CLI_FLAG_DURATION, &g.total_timeout_ms, NULL, NULL,
         NULL},
        {"version,v", CLI_FLAG_BOOL, &version, NULL, NULL, NULL},
    };
    char **pos = cn_calloc((size_t)argc + 1, sizeof(char *));
    if (pos == NULL)
        return cli_fail(CLI_EXIT_BAD_ARGS, "out of memory");
    int npos = 0, rc = CLI_EXIT_OK;
    char errmsg[CN_ERRMSG_SIZE];
    cli_signal_install();
    int r = cli_args_parse(flags, sizeof(flags) / sizeof(flags[0]), argc - 1,
                           argv + 1, 0, pos, &npos, errmsg);
    if (r == CLI_ARGS_HELP || (r == CLI_ARGS_OK && npos == 0 && !version)) {
        cli_help_main(stdout);
        goto out;
    }
    if (r != CLI_ARGS_OK) {
        printf("Incorrect Usage. %s\n\n", errmsg);
        cli_help_main(stdout);
        fflush(stdout);
        fprintf(stderr, "%s\n", errmsg);
        rc = CLI_EXIT_BAD_ARGS;
        goto out;
    }
    if (version) {
        printf("cairnctl version: %s\nAPI version: 2\n", CLI_VERSION);
        goto out;
    }
    g.endpoints = first_set(
        endpoints,
        first_set(
            getenv("ETCDCTL_ENDPOINTS"),
            first_set(endpoint,
                      first_set(getenv("ETCDCTL_ENDPOINT"),
                                first_set(peers, getenv("ETCDCTL_PEERS"))))));
    const char *name = pos[0];
    if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) {
        if (npos < 2) {
            cli_help_main(stdout);
            goto out;
        }
        const struct cli_cmd *c = cli_cmd_find(pos[1]);
        if (c == NULL) {
            fprintf(stderr, "No help topic for '%s'\n", pos[1]);
            rc = 3;
            goto out;
        }
        char *help_argv[] = {"--help", NULL};
        rc = c->fn(c, &g, 1, help_argv);
        goto out;
    }
    const struct cli_cmd *cmd = cli_cmd_find(name);
    if (cmd == NULL) {
        fprintf(stderr, "No help topic for '%s'\n", name);
        rc = 3;
        goto out;
    }
    rc = cmd->fn(cmd, &g, npos - 1, pos + 1);
out:
    fflush(stdout);
    cn_free(pos);
    return rc;
}
