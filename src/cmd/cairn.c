/*
 * cairn: one node of the etcd-v2-compatible store. Parses the flags, builds
 * the server and its HTTP API, runs until SIGINT or SIGTERM.
 */
#include <stdio.h>

#include "config/config.h"
#include "http/http.h"
#include "server/server.h"

extern char **environ;

static int cfg_load(struct cn_config *cfg, int argc, char **argv, int *outcome)
{
    struct cn_buf out = {0}, warnings = {0};
    char errmsg[CN_ERRMSG_SIZE] = "";
    int rc = config_parse(cfg, argc, argv, environ, outcome, &out, &warnings,
                          errmsg);
    if (out.len > 0)
        fputs(out.data, stdout);
    if (warnings.len > 0)
        fputs(warnings.data, stderr);
    cn_buf_close(&out);
    cn_buf_close(&warnings);
    if (rc != CN_OK)
        fprintf(stderr, "cairn: %s\n", errmsg);
    return rc;
}

int main(int argc, char **argv)
{
    static struct cn_config cfg;
    struct server *srv = NULL;
    struct http_api *api = NULL;
    char errmsg[CN_ERRMSG_SIZE] = "";
    int outcome = CONFIG_RUN;
    if (cfg_load(&cfg, argc, argv, &outcome) != CN_OK)
        return 2;
    if (outcome == CONFIG_EXIT_OK)
        return 0;
    struct cn_logger logger = {cn_log_stderr, NULL, cfg.log_level};
    if (server_new(&srv, &cfg, &logger, errmsg) != CN_OK)
        goto err;
    if (http_api_new(&api, srv) != CN_OK) {
        snprintf(errmsg, sizeof(errmsg), "out of memory");
        goto err_after_server;
    }
    if (server_run(srv, errmsg) != CN_OK)
        goto err_after_api;
    server_free(srv); /* first: it may still complete requests of api */
    http_api_free(api);
    return 0;

err_after_api:
    server_free(srv);
    http_api_free(api);
    fprintf(stderr, "cairn: %s\n", errmsg);
    return 1;
err_after_server:
    server_free(srv);
err:
    fprintf(stderr, "cairn: %s\n", errmsg);
    return 1;
}
