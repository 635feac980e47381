/*
 * cairn-bench: load generator for cairn and etcd's v2 API (see bench.h and
 * docs/performance.md). Exit status: 0 when the run completed and got at
 * least one successful answer, 1 otherwise, 2 on a bad command line.
 */
#include "bench.h"

#include <stdlib.h>
#include <string.h>

static int tool_main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:2399", *dir = ".";
    double duration_s = 2;
    unsigned size = 256;
    int json_out = 0;
    for (int i = 2; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (strcmp(argv[i], "--json") == 0)
            json_out = 1;
        else if (strcmp(argv[i], "--listen") == 0 && ++i)
            listen = v;
        else if (strcmp(argv[i], "--dir") == 0 && ++i)
            dir = v;
        else if (strcmp(argv[i], "--duration") == 0 && ++i)
            duration_s = atof(v);
        else if (strcmp(argv[i], "--val-size") == 0 && ++i)
            size = (unsigned)atoi(v);
        else
            return 2;
    }
    if (strcmp(argv[1], "nullserver") == 0)
        return bench_nullserver(listen, json_out) == 0 ? 0 : 1;
    return bench_fsync(dir, size, duration_s, json_out) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct bench_opts o;
    struct bench_result res;
    if (argc >= 2 &&
        (strcmp(argv[1], "nullserver") == 0 || strcmp(argv[1], "fsync") == 0)) {
        int rc = tool_main(argc, argv);
        if (rc == 2)
            bench_usage(stderr);
        return rc;
    }
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        bench_usage(stdout);
        return 0;
    }
    if (bench_opts_parse(&o, argc, argv) != 0) {
        bench_usage(stderr);
        return 2;
    }
    int rc = bench_run(&o, &res);
    if (rc != 0 && res.lat == NULL) {
        fprintf(stderr, "cairn-bench: %s\n", cn_strerror(rc));
        return 1;
    }
    if (rc != 0)
        fprintf(stderr, "cairn-bench: %s\n", cn_strerror(rc));
    bench_report(stdout, &o, &res);
    int ok = rc == 0 && res.ok > 0;
    bench_result_close(&res);
    return ok ? 0 : 1;
}
