/*
 * fuzz_http: libFuzzer target for the whole request path without sockets.
 * Each input is fed, in pieces whose sizes come from the input itself,
 * through a fresh http_conn over an in-memory transport into one real
 * server (store, apply pipeline, watches). Writes complete, proposals are
 * applied and expiry runs between pieces. Whatever the bytes, nothing may
 * crash, leak or trip a sanitizer; the connection must end closed or idle.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_cfg.h"
#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fz_tr {
    int closed;
    int pending;
    http_write_done_fn *done;
    void *arg;
    size_t bytes;
};

static int fz_write(void *t, const struct cn_slice *iov, unsigned n,
                    http_write_done_fn *done, void *arg)
{
    struct fz_tr *m = t;
    if (m->pending)
        abort(); /* one write at a time */
    for (unsigned i = 0; i < n; i++)
        m->bytes += iov[i].len;
    m->pending = 1;
    m->done = done;
    m->arg = arg;
    return CN_OK;
}

static void fz_close(void *t)
{
    ((struct fz_tr *)t)->closed = 1;
}

static void fz_read(void *t, int on)
{
    (void)t;
    (void)on;
}

static void fz_deadline(void *t, unsigned ms)
{
    (void)t;
    (void)ms;
}

static const struct http_transport fz_transport = {
    fz_write,
    fz_close,
    fz_read,
    fz_deadline,
};

static struct server *srv;
static struct http_api *api;
static int64_t now_ns = 1700000000ll * 1000000000;

static int64_t fz_clock(void *ctx)
{
    (void)ctx;
    return now_ns;
}

static char run_dir[64]; /* the servers' data dirs are in it */
static char dir[96];
static unsigned dirs_made;

/* The run's dir goes when this process ends, however it ends: libFuzzer
 * leaves by _Exit after a crash, a timeout or running out of memory, past
 * atexit. A child made now waits on a pipe whose write end only this
 * process holds (close-on-exec); at end of file it removes the dir. It
 * ignores the signals a Ctrl-C or a stopped make sends its group. */
static void make_run_dir(void)
{
    strcpy(run_dir, "/tmp/cairn-fuzz-XXXXXX");
    int p[2];
    if (mkdtemp(run_dir) == NULL || pipe(p) != 0)
        abort();
    pid_t pid = fork();
    if (pid < 0)
        abort();
    if (pid == 0) {
        signal(SIGINT, SIG_IGN);
        signal(SIGTERM, SIG_IGN);
        signal(SIGHUP, SIG_IGN);
        close(p[1]);
        char c;
        while (read(p[0], &c, 1) < 0 && errno == EINTR)
            ;
        execl("/bin/rm", "rm", "-rf", run_dir, (char *)NULL);
        _exit(127);
    }
    close(p[0]);
    if (fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0)
        abort();
}

/* A fresh data dir for every server: the log of the previous one would
 * otherwise be replayed (and grow without bound). No fsync: the fuzzer
 * exercises the request path, not the disk. */
static void setup(void)
{
    static struct cn_config cfg;
    snprintf(dir, sizeof(dir), "%s/data-%u", run_dir, dirs_made++);
    if (mkdir(dir, 0700) != 0)
        abort();
    strcpy(cfg.name, "fuzz");
    strcpy(cfg.data_dir, dir);
    strcpy(cfg.initial_cluster_token, "fuzz");
    test_cfg_single_member(&cfg);
    cfg.max_request_bytes = 8192;
    cfg.unsafe_no_fsync = 1;
    char errmsg[CN_ERRMSG_SIZE];
    if (server_new(&srv, &cfg, NULL, errmsg) != CN_OK ||
        http_api_new(&api, srv) != CN_OK)
        abort();
    server_set_clock(srv, fz_clock, NULL);
}

static void teardown(void)
{
    if (srv == NULL)
        return;
    server_free(srv);
    http_api_free(api);
    srv = NULL;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        abort();
}

static void settle(struct fz_tr *m)
{
    for (int i = 0; i < 64; i++) {
        server_flush(srv);
        if (!m->pending)
            return;
        m->pending = 0;
        m->done(m->arg, CN_OK);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    /* A fresh store now and then bounds the memory of long runs. */
    if (srv != NULL && ++runs % 5000 == 0)
        teardown();
    if (srv == NULL) {
        if (runs == 0) {
            make_run_dir();
            atexit(teardown);
        }
        setup();
    }
    struct fz_tr m = {0};
    struct http_conn *c;
    if (http_conn_new(&c, api, &fz_transport, &m) != CN_OK)
        return 0;
    size_t off = 0;
    unsigned piece = 0;
    while (off < size && !m.closed) {
        /* Piece sizes vary with the input: splits at every place. */
        size_t n = 1 + (data[piece++ % size] * 7u) % 97;
        if (n > size - off)
            n = size - off;
        http_conn_feed(c, (const char *)data + off, n);
        off += n;
        settle(&m);
        now_ns += 300000000; /* time passes: TTLs run out */
        server_expire_check(srv);
    }
    settle(&m);
    /* A watch may still be open: the client goes away. */
    http_conn_closed(c);
    server_flush(srv);
    return 0;
}
