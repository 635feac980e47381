/*
 * cairn-sim: command line of the simulator.
 *
 *   cairn-sim --seed S [--runs N]      N fresh seeds from S (S, S+1, ...)
 *   cairn-sim --seeds-file F           every seed listed in F
 *   cairn-sim --minutes M [--seed S]   fresh seeds until M minutes pass
 *   cairn-sim --determinism --seed S   run S twice, compare hashes
 *   cairn-sim --expect-fail ...        succeed only if some run fails
 *                                      (stops at the first failure); with
 *                                      --scenario: if the checker reports
 *                                      a violation
 *   cairn-sim --scenario FILE... [--rewrite]
 *   cairn-sim --bench                  fault-free 3-node cluster, 64
 *                                      clients: commits per CPU second
 *   --verbose                          trace every step to stderr
 *
 * Ends with "N passed, N failed".
 */
#include "sim.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_s(void)
{
    return (double)clock() / CLOCKS_PER_SEC;
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct totals {
    unsigned passed, failed;
    double sim_s;
    uint64_t commits;
};

static int one(uint64_t seed, int verbose, struct totals *t, int quiet)
{
    double sim_s = 0;
    uint64_t commits = 0, hash = 0;
    int rc = sim_random_run(seed, verbose, &hash, &sim_s, &commits);
    t->sim_s += sim_s;
    t->commits += commits;
    if (rc) {
        t->failed++;
        printf("FAIL seed=%llu\n  rerun: build/tests/sim/cairn-sim --seed "
               "%llu --verbose\n",
               (unsigned long long)seed, (unsigned long long)seed);
    } else {
        t->passed++;
        if (!quiet)
            printf("ok seed=%llu sim=%.1fs commits=%llu hash=%016llx\n",
                   (unsigned long long)seed, sim_s, (unsigned long long)commits,
                   (unsigned long long)hash);
    }
    fflush(stdout);
    return rc;
}

static int determinism(uint64_t seed)
{
    uint64_t h1 = 0, h2 = 0;
    int a = sim_random_run(seed, 0, &h1, NULL, NULL);
    int b = sim_random_run(seed, 0, &h2, NULL, NULL);
    printf("determinism seed=%llu: %016llx %016llx\n", (unsigned long long)seed,
           (unsigned long long)h1, (unsigned long long)h2);
    int ok = a == b && h1 == h2;
    printf("%d passed, %d failed\n", ok, !ok);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    uint64_t seed = 0;
    int have_seed = 0, verbose = 0, expect_fail = 0, rewrite = 0, det = 0;
    int quiet = 0, bench = 0;
    unsigned runs = 1;
    double minutes = 0;
    const char *seeds_file = NULL;
    const char *scenarios[256];
    int n_scen = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--seed") && v) {
            seed = strtoull(v, NULL, 0);
            have_seed = 1;
            i++;
        } else if (!strcmp(a, "--runs") && v) {
            runs = (unsigned)strtoul(v, NULL, 0);
            i++;
        } else if (!strcmp(a, "--minutes") && v) {
            minutes = atof(v);
            i++;
        } else if (!strcmp(a, "--seeds-file") && v) {
            seeds_file = v;
            i++;
        } else if (!strcmp(a, "--verbose")) {
            verbose = 1;
        } else if (!strcmp(a, "--quiet")) {
            quiet = 1;
        } else if (!strcmp(a, "--expect-fail")) {
            expect_fail = 1;
        } else if (!strcmp(a, "--bench")) {
            bench = 1;
        } else if (!strcmp(a, "--determinism")) {
            det = 1;
        } else if (!strcmp(a, "--rewrite")) {
            rewrite = 1;
        } else if (!strcmp(a, "--scenario")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 &&
                   n_scen < 256)
                scenarios[n_scen++] = argv[++i];
        } else {
            fprintf(stderr, "cairn-sim: unknown argument %s\n", a);
            return 2;
        }
    }
    if (n_scen > 0) {
        unsigned ok = 0, bad = 0, violations = 0;
        for (int k = 0; k < n_scen; k++) {
            if (sim_scenario_file(scenarios[k], rewrite, &violations) == 0)
                ok++;
            else
                bad++;
        }
        if (expect_fail) {
            /* A broken core must make the checker speak up. */
            printf("%u checker violations\n", violations);
            return violations > 0 ? 0 : 1;
        }
        printf("%u passed, %u failed\n", ok, bad);
        return bad ? 1 : 0;
    }
    if (!have_seed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        seed = (uint64_t)ts.tv_sec * 1000003u ^ (uint64_t)ts.tv_nsec;
    }
    if (det)
        return determinism(seed);
    if (bench) {
        uint64_t commits = 0;
        double sim_s = 0, c0 = cpu_s();
        int rc = sim_bench_run(seed, &commits, &sim_s);
        double cpu = cpu_s() - c0;
        printf("bench: 3 nodes, %.1f simulated s, %llu commits, %.2f s cpu, "
               "%.0f commits per cpu second, %.0f per simulated second\n",
               sim_s, (unsigned long long)commits, cpu,
               cpu > 0 ? commits / cpu : 0.0,
               sim_s > 0 ? commits / sim_s : 0.0);
        printf("%d passed, %d failed\n", !rc, rc);
        return rc;
    }

    struct totals t;
    memset(&t, 0, sizeof(t));
    double c0 = cpu_s(), w0 = wall_s();
    if (seeds_file != NULL) {
        FILE *f = fopen(seeds_file, "r");
        if (f == NULL) {
            perror(seeds_file);
            return 2;
        }
        char line[256];
        unsigned n = 0;
        while (fgets(line, sizeof(line), f))
            if (line[0] >= '0' && line[0] <= '9')
                n++;
        rewind(f);
        printf("cairn-sim: %u seeds from %s\n", n, seeds_file);
        while (fgets(line, sizeof(line), f)) {
            if (line[0] < '0' || line[0] > '9')
                continue;
            if (one(strtoull(line, NULL, 0), verbose, &t, quiet) && expect_fail)
                break;
        }
        fclose(f);
    } else {
        printf("cairn-sim: seed=%llu runs=%u%s (rerun one: "
               "build/tests/sim/cairn-sim --seed <seed> --verbose)\n",
               (unsigned long long)seed, minutes > 0 ? 0 : runs,
               minutes > 0 ? " (timed)" : "");
        for (uint64_t k = 0;; k++) {
            if (minutes > 0) {
                if (wall_s() - w0 > minutes * 60)
                    break;
            } else if (k >= runs) {
                break;
            }
            if (one(seed + k, verbose, &t, quiet) && expect_fail)
                break;
        }
    }
    double cpu = cpu_s() - c0;
    printf("ran %u seeds, %.2f simulated hours, %llu commits, %.1f s cpu, "
           "%.0f commits per cpu second\n",
           t.passed + t.failed, t.sim_s / 3600.0, (unsigned long long)t.commits,
           cpu, cpu > 0 ? t.commits / cpu : 0.0);
    printf("%u passed, %u failed\n", t.passed, t.failed);
    if (expect_fail)
        return t.failed > 0 ? 0 : 1;
    return t.failed ? 1 : 0;
}
