/*
 * bench_opts: cairn-bench's command line -> struct bench_opts, and the
 * report (text or one JSON object). Options take "--name value" or
 * "--name=value"; endpoints are resolved here, once, before the loop runs.
 */
#include "bench.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

static const char *const workload_names[] = {"put",   "get",   "qget",
                                             "mixed", "watch", "txn"};

const char *bench_workload_name(enum bench_workload w)
{
    return workload_names[w];
}

void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: cairn-bench put|get|qget|mixed|watch|txn [options]\n"
            "       cairn-bench nullserver --listen HOST:PORT\n"
            "       cairn-bench fsync --dir DIR [--duration S] [--val-size "
            "B]\n"
            "options:\n"
            "  --endpoints URL,URL   members, round-robin per connection\n"
            "                        (http://127.0.0.1:2379)\n"
            "  --conns N             connections; watch: watchers (16)\n"
            "  --writers N           watch: writer connections (1)\n"
            "  --total N | --duration S   requests, or seconds (5)\n"
            "  --rate R              open loop: R requests/s, latency from "
            "the\n"
            "                        intended send time (default closed "
            "loop)\n"
            "  --key-space N         keys PREFIX/k00000000.. (1000; txn 4)\n"
            "  --key-start N         first key number (0)\n"
            "  --val-size B          value bytes (256)\n"
            "  --key-order random|seq  (random)\n"
            "  --read-ratio F        mixed: share of reads (0.9)\n"
            "  --preload | --no-preload  PUT every key first (get, qget, "
            "mixed, txn)\n"
            "  --stream              watch with stream=true, not long polls\n"
            "  --timeout S           per request (10)\n"
            "  --prefix /DIR         key directory (/bench)\n"
            "  --seed N              PRNG seed (1)\n"
            "  --json                one JSON object instead of text\n");
}

/* "http://host:port", "host:port" -> resolved endpoint. */
static int parse_endpoint(struct bench_endpoint *ep, const char *s)
{
    char host[256], port[16];
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    size_t n = strcspn(s, "/");
    if (n == 0 || n >= sizeof(ep->host))
        return CN_EINVAL;
    memcpy(ep->host, s, n);
    ep->host[n] = '\0';
    const char *colon = strrchr(ep->host, ':');
    if (colon == NULL) {
        snprintf(host, sizeof(host), "%s", ep->host);
        snprintf(port, sizeof(port), "80");
    } else {
        size_t hl = (size_t)(colon - ep->host);
        memcpy(host, ep->host, hl);
        host[hl] = '\0';
        snprintf(port, sizeof(port), "%s", colon + 1);
    }
    if (host[0] == '[') { /* [::1] */
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = '\0';
    }
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || ai == NULL)
        return CN_EINVAL;
    memcpy(&ep->addr, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

static int parse_endpoints(struct bench_opts *o, const char *list)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", list);
    o->endpoint_count = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        if (o->endpoint_count == BENCH_ENDPOINTS_MAX ||
            parse_endpoint(&o->endpoints[o->endpoint_count], t) != 0) {
            fprintf(stderr, "cairn-bench: bad endpoint '%s'\n", t);
            return CN_EINVAL;
        }
        o->endpoint_count++;
    }
    return o->endpoint_count ? 0 : CN_EINVAL;
}

static int parse_num(const char *name, const char *v, double lo, double hi,
                     double *out)
{
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (errno != 0 || end == v || *end != '\0' || d < lo || d > hi) {
        fprintf(stderr, "cairn-bench: bad value '%s' for --%s\n", v, name);
        return CN_EINVAL;
    }
    *out = d;
    return 0;
}

/* Options that take a value; applies one. */
static int apply_opt(struct bench_opts *o, const char *name, const char *v)
{
    double d = 0;
    int rc = 0;
#define NUM(lo, hi) ((rc = parse_num(name, v, (lo), (hi), &d)) == 0)
    if (strcmp(name, "endpoints") == 0)
        rc = parse_endpoints(o, v);
    else if (strcmp(name, "conns") == 0 && NUM(1, BENCH_CONNS_MAX))
        o->conns = (unsigned)d;
    else if (strcmp(name, "writers") == 0 && NUM(1, 64))
        o->writers = (unsigned)d;
    else if (strcmp(name, "total") == 0 && NUM(1, 1e15))
        o->total = (uint64_t)d;
    else if (strcmp(name, "duration") == 0 && NUM(0.001, 1e6))
        o->duration_s = d;
    else if (strcmp(name, "rate") == 0 && NUM(0, 1e8))
        o->rate = d;
    else if (strcmp(name, "key-space") == 0 && NUM(1, 1e8))
        o->key_space = (unsigned)d;
    else if (strcmp(name, "key-start") == 0 && NUM(0, 1e8))
        o->key_start = (unsigned)d;
    else if (strcmp(name, "val-size") == 0 && NUM(0, 1 << 20))
        o->val_size = (unsigned)d;
    else if (strcmp(name, "read-ratio") == 0 && NUM(0, 1))
        o->read_ratio = d;
    else if (strcmp(name, "timeout") == 0 && NUM(0.001, 1e6))
        o->timeout_s = d;
    else if (strcmp(name, "seed") == 0 && NUM(0, 1.8e19))
        o->seed = (uint64_t)strtoull(v, NULL, 10);
    else if (strcmp(name, "key-order") == 0 &&
             (strcmp(v, "seq") == 0 || strcmp(v, "random") == 0))
        o->seq_keys = strcmp(v, "seq") == 0;
    else if (strcmp(name, "prefix") == 0 && v[0] == '/' &&
             strlen(v) < sizeof(o->prefix))
        snprintf(o->prefix, sizeof(o->prefix), "%s", v);
    else if (rc == 0) {
        fprintf(stderr, "cairn-bench: bad option --%s %s\n", name, v);
        rc = CN_EINVAL;
    }
#undef NUM
    return rc;
}

static int parse_workload(struct bench_opts *o, const char *w)
{
    for (unsigned i = 0; i < sizeof(workload_names) / sizeof(*workload_names);
         i++) {
        if (strcmp(w, workload_names[i]) == 0) {
            o->workload = (enum bench_workload)i;
            return 0;
        }
    }
    fprintf(stderr, "cairn-bench: unknown workload '%s'\n", w);
    return CN_EINVAL;
}

int bench_opts_parse(struct bench_opts *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->conns = 16;
    o->writers = 1;
    o->duration_s = 5;
    o->val_size = 256;
    o->read_ratio = 0.9;
    o->preload = -1;
    o->timeout_s = 10;
    o->seed = 1;
    snprintf(o->prefix, sizeof(o->prefix), "/bench");
    if (argc < 2 || parse_workload(o, argv[1]) != 0)
        return CN_EINVAL;
    if (parse_endpoints(o, "http://127.0.0.1:2379") != 0)
        return CN_EINVAL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "cairn-bench: unexpected '%s'\n", a);
            return CN_EINVAL;
        }
        a += 2;
        if (strcmp(a, "json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "stream") == 0) {
            o->watch_stream = 1;
        } else if (strcmp(a, "preload") == 0) {
            o->preload = 1;
        } else if (strcmp(a, "no-preload") == 0) {
            o->preload = 0;
        } else if (strcmp(a, "sequential") == 0) {
            o->seq_keys = 1;
        } else {
            char name[64];
            const char *eq = strchr(a, '=');
            const char *v;
            size_t nl = eq ? (size_t)(eq - a) : strlen(a);
            if (nl >= sizeof(name))
                return CN_EINVAL;
            memcpy(name, a, nl);
            name[nl] = '\0';
            if (eq != NULL) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                fprintf(stderr, "cairn-bench: --%s needs a value\n", name);
                return CN_EINVAL;
            }
            if (apply_opt(o, name, v) != 0)
                return CN_EINVAL;
        }
    }
    if (o->key_space == 0)
        o->key_space = o->workload == BENCH_TXN ? 4 : 1000;
    return 0;
}

/* ---- report ---- */

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static void json_hist(FILE *out, const char *name, const struct bench_hist *h)
{
    fprintf(out,
            "\"%s\":{\"count\":%" PRIu64 ",\"min\":%.1f,\"p50\":%.1f,"
            "\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f,"
            "\"mean\":%.1f}",
            name, h->count, h->count ? us(h->min) : 0.0,
            us(bench_hist_percentile(h, 50)), us(bench_hist_percentile(h, 90)),
            us(bench_hist_percentile(h, 99)),
            us(bench_hist_percentile(h, 99.9)), us(h->max),
            bench_hist_mean(h) / 1000.0);
}

static void text_hist(FILE *out, const char *name, const struct bench_hist *h)
{
    fprintf(out,
            "%-10s us: min %.0f p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f "
            "max %.0f mean %.0f (n=%" PRIu64 ")\n",
            name, h->count ? us(h->min) : 0.0, us(bench_hist_percentile(h, 50)),
            us(bench_hist_percentile(h, 90)), us(bench_hist_percentile(h, 99)),
            us(bench_hist_percentile(h, 99.9)), us(h->max),
            bench_hist_mean(h) / 1000.0, h->count);
}

static void report_json(FILE *out, const struct bench_opts *o,
                        const struct bench_result *res, double rps)
{
    fprintf(out,
            "{\"workload\":\"%s\",\"conns\":%u,\"endpoints\":%d,"
            "\"rate\":%.1f,\"elapsed_s\":%.3f,\"completed\":%" PRIu64
            ",\"ok\":%" PRIu64 ",\"rps\":%.1f,\"client_cpu_s\":%.3f,",
            bench_workload_name(o->workload), o->conns, o->endpoint_count,
            o->rate, res->elapsed_s, res->completed, res->ok, rps,
            res->client_cpu_s);
    json_hist(out, "latency_us", res->lat);
    fprintf(out,
            ",\"errors\":{\"total\":%" PRIu64 ",\"connect\":%" PRIu64
            ",\"closed\":%" PRIu64 ",\"timeout\":%" PRIu64 ",\"proto\":%" PRIu64
            ",\"status\":{",
            bench_result_errors(res), res->err_connect, res->err_closed,
            res->err_timeout, res->err_proto);
    const char *sep = "";
    for (int i = 0; i < BENCH_STATUS_MAX; i++) {
        if (res->status[i]) {
            fprintf(out, "%s\"%d\":%" PRIu64, sep, i, res->status[i]);
            sep = ",";
        }
    }
    fprintf(out, "}},\"preload_errors\":%" PRIu64, res->preload_errors);
    if (o->workload == BENCH_TXN)
        fprintf(out,
                ",\"txn\":{\"cas_ok\":%" PRIu64 ",\"conflicts\":%" PRIu64
                ",\"cas_ok_per_s\":%.1f}",
                res->cas_ok, res->cas_conflict,
                res->elapsed_s > 0 ? (double)res->cas_ok / res->elapsed_s
                                   : 0.0);
    if (o->workload == BENCH_WATCH) {
        fprintf(out,
                ",\"watch\":{\"watchers\":%u,\"writes\":%" PRIu64
                ",\"events_expected\":%" PRIu64 ",\"events_early\":%" PRIu64
                ",\"events_unmatched\":%" PRIu64 ",",
                o->conns, res->writes, res->events_expected, res->events_early,
                res->events_unmatched);
        json_hist(out, "put_to_event_us", res->lat2);
        fputc(',', out);
        json_hist(out, "put_latency_us", res->wlat);
        fputc('}', out);
    }
    fprintf(out, "}\n");
}

void bench_report(FILE *out, const struct bench_opts *o,
                  const struct bench_result *res)
{
    double rps =
        res->elapsed_s > 0 ? (double)res->completed / res->elapsed_s : 0.0;
    if (o->json) {
        report_json(out, o, res, rps);
        return;
    }
    fprintf(out, "workload %s conns %u endpoints %d %s",
            bench_workload_name(o->workload), o->conns, o->endpoint_count,
            o->rate > 0 ? "open loop" : "closed loop");
    if (o->rate > 0)
        fprintf(out, " at %.0f/s", o->rate);
    fprintf(out, "\n%s %" PRIu64 " (ok %" PRIu64 ") in %.3f s: %.1f/s\n",
            o->workload == BENCH_WATCH ? "events" : "requests", res->completed,
            res->ok, res->elapsed_s, rps);
    text_hist(out, o->workload == BENCH_WATCH ? "ack->event" : "latency",
              res->lat);
    if (o->workload == BENCH_WATCH) {
        text_hist(out, "put->event", res->lat2);
        text_hist(out, "put", res->wlat);
        fprintf(out,
                "watchers %u writes %" PRIu64 " events expected %" PRIu64
                " early %" PRIu64 " unmatched %" PRIu64 "\n",
                o->conns, res->writes, res->events_expected, res->events_early,
                res->events_unmatched);
    }
    if (o->workload == BENCH_TXN)
        fprintf(out, "cas ok %" PRIu64 " (%.1f/s) conflicts %" PRIu64 "\n",
                res->cas_ok,
                res->elapsed_s > 0 ? (double)res->cas_ok / res->elapsed_s : 0.0,
                res->cas_conflict);
    fprintf(out, "errors %" PRIu64, bench_result_errors(res));
    if (res->err_connect)
        fprintf(out, " connect:%" PRIu64, res->err_connect);
    if (res->err_closed)
        fprintf(out, " closed:%" PRIu64, res->err_closed);
    if (res->err_timeout)
        fprintf(out, " timeout:%" PRIu64, res->err_timeout);
    if (res->err_proto)
        fprintf(out, " proto:%" PRIu64, res->err_proto);
    for (int i = 0; i < BENCH_STATUS_MAX; i++)
        if (res->status[i])
            fprintf(out, " %d:%" PRIu64, i, res->status[i]);
    if (res->preload_errors)
        fprintf(out, " (preload errors %" PRIu64 ")", res->preload_errors);
    fputc('\n', out);
}
