/*
 * The harness of the HTTP unit tests: a real server (store and propose
 * pipeline, no listener) and connections over an in-memory transport whose
 * writes complete when the test says so. Included by each test file of
 * tests/unit/http/; every helper is static inline so a file may use any
 * subset of them.
 */
#ifndef CN_TEST_HTTP_HARNESS_H
#define CN_TEST_HTTP_HARNESS_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_cfg.h"
#include "http/http_int.h"
#include "tap.h"

struct mem_tr {
    struct cn_buf out; /* every byte written */
    int closed;
    int reading;
    unsigned deadline_ms;
    int pending; /* a write in flight */
    http_write_done_fn *done;
    void *arg;
    unsigned writes;
};

static inline int mt_write(void *t, const struct cn_slice *iov, unsigned n,
                           http_write_done_fn *done, void *arg)
{
    struct mem_tr *m = t;
    CHECK(!m->pending); /* one write at a time */
    for (unsigned i = 0; i < n; i++)
        REQUIRE_EQ(cn_buf_append(&m->out, iov[i].base, iov[i].len), CN_OK);
    m->pending = 1;
    m->done = done;
    m->arg = arg;
    m->writes++;
    return CN_OK;
}

static inline void mt_close(void *t)
{
    ((struct mem_tr *)t)->closed = 1;
}

static inline void mt_read(void *t, int on)
{
    ((struct mem_tr *)t)->reading = on;
}

static inline void mt_deadline(void *t, unsigned ms)
{
    ((struct mem_tr *)t)->deadline_ms = ms;
}

static const struct http_transport mem_transport = {
    mt_write,
    mt_close,
    mt_read,
    mt_deadline,
};

struct env {
    char dir[64];
    struct server *srv;
    struct http_api *api;
    int64_t now_ns;
};

static inline int64_t fake_clock(void *ctx)
{
    return ((struct env *)ctx)->now_ns;
}

static inline void env_init(struct env *e)
{
    static struct cn_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    tap_tmpdir(e->dir, sizeof(e->dir), "cairn-http");
    strcpy(cfg.name, "t1");
    strcpy(cfg.data_dir, e->dir);
    strcpy(cfg.initial_cluster_token, "tok");
    test_cfg_single_member(&cfg);
    cfg.max_request_bytes = 4096;
    cfg.advertise_client_urls.count = 1;
    strcpy(cfg.advertise_client_urls.urls[0].raw, "http://127.0.0.1:1");
    char errmsg[CN_ERRMSG_SIZE];
    REQUIRE_EQ(server_new(&e->srv, &cfg, NULL, errmsg), CN_OK);
    REQUIRE_EQ(http_api_new(&e->api, e->srv), CN_OK);
    e->now_ns = 1700000000ll * 1000000000;
    server_set_clock(e->srv, fake_clock, e);
}

static inline void env_close(struct env *e)
{
    server_free(e->srv);
    http_api_free(e->api);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", e->dir);
    CHECK_EQ(system(cmd), 0);
}

struct client {
    struct mem_tr tr;
    struct http_conn *c;
};

static inline void client_open(struct env *e, struct client *cl)
{
    memset(cl, 0, sizeof(*cl));
    cl->tr.reading = 1;
    REQUIRE_EQ(http_conn_new(&cl->c, e->api, &mem_transport, &cl->tr), CN_OK);
}

static inline void client_free(struct client *cl)
{
    if (cl->c != NULL)
        http_conn_closed(cl->c);
    cl->c = NULL;
    cn_buf_close(&cl->tr.out);
}

/* Completes writes and applies proposals until nothing moves. */
static inline void settle(struct env *e, struct client **cls, int n)
{
    for (int round = 0; round < 1000; round++) {
        int moved = 0;
        server_flush(e->srv);
        for (int i = 0; i < n; i++) {
            struct mem_tr *m = &cls[i]->tr;
            if (m->pending) {
                m->pending = 0;
                m->done(m->arg, CN_OK);
                moved = 1;
            }
        }
        if (!moved)
            return;
    }
}

static inline void send_str(struct client *cl, const char *s)
{
    http_conn_feed(cl->c, s, strlen(s));
}

static inline int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static const char *out(struct client *cl)
{
    return cl->tr.out.data ? cl->tr.out.data : "";
}

#endif
