/*
 * bench_tools: the physical ceilings `make bench` prints beside the
 * results.
 *
 * bench_nullserver: a keep-alive HTTP/1.1 server that answers every request
 * at once with the same small JSON 200, doing no other work. cairn-bench
 * against it measures the loopback round-trip rate of our client and the
 * kernel: no v2 server on this machine can beat it with the same number of
 * connections.
 *
 * bench_fsync: write + fdatasync of small records into a preallocated file
 * (as a WAL with preallocated segments does): the rate of durable writes a
 * single writer can get from this disk. A server that fsyncs every write
 * without batching is bound by it.
 */
#include "bench.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <uv.h>

#define NULL_HEAD_MAX 16384

#define NULL_BODY                                                              \
    "{\"action\":\"get\",\"node\":{\"key\":\"/k\",\"value\":\"v\","            \
    "\"modifiedIndex\":1,\"createdIndex\":1}}\n"
#define NULL_BODY_LEN "84"
_Static_assert(sizeof(NULL_BODY) - 1 == 84, "Content-Length of NULL_BODY");

static const char null_answer[] = "HTTP/1.1 200 OK\r\n"
                                  "Content-Type: application/json\r\n"
                                  "X-Etcd-Index: 1\r\n"
                                  "Content-Length: " NULL_BODY_LEN "\r\n"
                                  "\r\n" NULL_BODY;

struct null_conn {
    uv_tcp_t tcp;
    size_t head_len;    /* bytes of the current request head seen */
    uint64_t body_left; /* body bytes still to skip */
    char head[NULL_HEAD_MAX];
    char rbuf[65536];
};

static void null_on_closed(uv_handle_t *h)
{
    cn_free(h->data);
}

static void null_on_write(uv_write_t *req, int status)
{
    cn_free(req);
}

/* At once when the socket takes it, as cairn answers (server_net.c). */
static void null_answer_one(struct null_conn *nc)
{
    uv_buf_t b = uv_buf_init((char *)null_answer, sizeof(null_answer) - 1);
    int done = uv_try_write((uv_stream_t *)&nc->tcp, &b, 1);
    if (done == (int)b.len)
        return;
    if (done < 0 && done != UV_EAGAIN)
        return;
    if (done > 0) {
        b.base += done;
        b.len -= (unsigned)done;
    }
    uv_write_t *req = cn_malloc(sizeof(*req));
    if (req == NULL)
        return;
    if (uv_write(req, (uv_stream_t *)&nc->tcp, &b, 1, null_on_write) < 0)
        cn_free(req);
}

/* A request head is complete in nc->head: find its Content-Length. */
static uint64_t null_content_length(struct null_conn *nc)
{
    nc->head[nc->head_len] = '\0';
    for (char *p = nc->head; (p = strchr(p, '\n')) != NULL;) {
        p++;
        if (strncasecmp(p, "content-length:", 15) == 0)
            return strtoull(p + 15, NULL, 10);
    }
    return 0;
}

static void null_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct null_conn *nc = h->data;
    buf->base = nc->rbuf;
    buf->len = sizeof(nc->rbuf);
}

static void null_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct null_conn *nc = s->data;
    if (nread < 0) {
        uv_close((uv_handle_t *)s, null_on_closed);
        return;
    }
    for (ssize_t i = 0; i < nread;) {
        if (nc->body_left > 0) {
            uint64_t take = (uint64_t)(nread - i);
            if (take > nc->body_left)
                take = nc->body_left;
            nc->body_left -= take;
            i += (ssize_t)take;
            if (nc->body_left == 0)
                null_answer_one(nc);
            continue;
        }
        if (nc->head_len + 1 >= NULL_HEAD_MAX) {
            uv_close((uv_handle_t *)s, null_on_closed);
            return;
        }
        nc->head[nc->head_len++] = buf->base[i++];
        if (nc->head_len >= 4 &&
            memcmp(nc->head + nc->head_len - 4, "\r\n\r\n", 4) == 0) {
            nc->body_left = null_content_length(nc);
            nc->head_len = 0;
            if (nc->body_left == 0)
                null_answer_one(nc);
        }
    }
}

static void null_on_conn(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct null_conn *nc = cn_calloc(1, sizeof(*nc));
    if (nc == NULL)
        return;
    uv_tcp_init(server->loop, &nc->tcp);
    nc->tcp.data = nc;
    if (uv_accept(server, (uv_stream_t *)&nc->tcp) != 0) {
        uv_close((uv_handle_t *)&nc->tcp, null_on_closed);
        return;
    }
    uv_tcp_nodelay(&nc->tcp, 1);
    uv_read_start((uv_stream_t *)&nc->tcp, null_alloc, null_on_read);
}

static void null_on_signal(uv_signal_t *s, int signum)
{
    uv_stop(s->loop);
}

int bench_nullserver(const char *listen, int json_out)
{
    struct bench_opts o;
    char *argv[] = {"cairn-bench", "get", "--endpoints", (char *)listen};
    if (bench_opts_parse(&o, 4, argv) != 0)
        return CN_EINVAL;
    uv_loop_t *loop = uv_default_loop();
    uv_tcp_t server;
    uv_signal_t sig_term, sig_int;
    uv_tcp_init(loop, &server);
    int rc = uv_tcp_bind(&server, (struct sockaddr *)&o.endpoints[0].addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&server, 1024, null_on_conn);
    if (rc != 0) {
        fprintf(stderr, "cairn-bench nullserver: %s: %s\n", listen,
                uv_strerror(rc));
        return CN_EIO;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, null_on_signal, SIGTERM);
    uv_signal_start(&sig_int, null_on_signal, SIGINT);
    if (json_out)
        printf("{\"listening\":\"%s\"}\n", listen);
    else
        printf("nullserver listening on %s\n", listen);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}

int bench_fsync(const char *dir, unsigned size, double duration_s, int json_out)
{
    const uint64_t file_bytes = 64ull << 20;
    char path[4096];
    snprintf(path, sizeof(path), "%s/cairn-bench-fsync.%d", dir, (int)getpid());
    int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
    if (fd < 0) {
        perror(path);
        return CN_EIO;
    }
    unlink(path);
    if (size == 0)
        size = 1;
    char *blk = cn_calloc(1, size);
    int rc = blk ? 0 : CN_ENOMEM;
    /* preallocate and sync, so the loop measures data syncs, not growth */
    if (rc == 0 &&
        (posix_fallocate(fd, 0, (off_t)file_bytes) != 0 || fsync(fd) != 0))
        rc = CN_EIO;
    struct bench_hist *h = cn_malloc(sizeof(*h));
    if (h == NULL)
        rc = CN_ENOMEM;
    else
        bench_hist_init(h);
    uint64_t t0 = uv_hrtime(), t = t0, n = 0, off = 0;
    uint64_t end = t0 + (uint64_t)(duration_s * 1e9);
    while (rc == 0 && t < end) {
        if (off + size > file_bytes)
            off = 0;
        if (pwrite(fd, blk, size, (off_t)off) != (ssize_t)size ||
            fdatasync(fd) != 0) {
            rc = CN_EIO;
            break;
        }
        off += size;
        n++;
        uint64_t t2 = uv_hrtime();
        bench_hist_record(h, t2 - t);
        t = t2;
    }
    close(fd);
    if (rc == 0) {
        double el = (double)(t - t0) / 1e9;
        double rate = el > 0 ? (double)n / el : 0;
        if (json_out)
            printf("{\"fsyncs\":%" PRIu64 ",\"elapsed_s\":%.3f,"
                   "\"fsync_per_s\":%.1f,\"p50_us\":%.1f,\"p99_us\":%.1f}\n",
                   n, el, rate, (double)bench_hist_percentile(h, 50) / 1e3,
                   (double)bench_hist_percentile(h, 99) / 1e3);
        else
            printf("fsync: %" PRIu64 " write(%u)+fdatasync in %.3f s: "
                   "%.1f/s p50 %.0f us p99 %.0f us\n",
                   n, size, el, rate,
                   (double)bench_hist_percentile(h, 50) / 1e3,
                   (double)bench_hist_percentile(h, 99) / 1e3);
    } else {
        fprintf(stderr, "cairn-bench fsync: %s\n", cn_strerror(rc));
    }
    cn_free(h);
    cn_free(blk);
    return rc;
}
