/*
 * Tests of bench_hist: bucket arithmetic covers every value exactly once,
 * percentiles stay within the promised relative error of the true value,
 * and min/max/count/merge are exact.
 */
#include "../src/bench_hist.h"

#include <math.h>
#include <stdlib.h>

#include "base/base.h"
#include "tap.h"

static struct bench_hist *hist_new(void)
{
    struct bench_hist *h = malloc(sizeof(*h));
    REQUIRE(h != NULL);
    bench_hist_init(h);
    return h;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact value at percentile p of sorted v[0..n): the ceil(p% n)-th. */
static uint64_t exact_percentile(const uint64_t *v, size_t n, double p)
{
    double want = p / 100.0 * (double)n;
    size_t rank = (size_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    return v[rank - 1];
}

TEST(bench_hist_buckets_tile_the_range_without_gaps)
{
    uint64_t expect_low = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        uint64_t low = bench_hist_bucket_low(i);
        uint64_t width = bench_hist_bucket_width(i);
        REQUIRE_EQ(low, expect_low);
        REQUIRE_EQ(bench_hist_index(low), i);
        REQUIRE_EQ(bench_hist_index(low + width - 1), i);
        if (low >= 2 * BENCH_HIST_SUB)
            CHECK(width * BENCH_HIST_SUB <= low); /* relative width bound */
        expect_low = low + width;
    }
    /* the last bucket ends exactly at 2^64 (wrapped to 0) */
    CHECK_EQ(expect_low, 0);
    CHECK_EQ(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

TEST(bench_hist_small_values_are_exact)
{
    struct bench_hist *h = hist_new();
    for (uint64_t v = 1; v <= 200; v++)
        bench_hist_record(h, v);
    CHECK_EQ(h->count, 200);
    CHECK_EQ(h->min, 1);
    CHECK_EQ(h->max, 200);
    CHECK_EQ(bench_hist_percentile(h, 50), 100);
    CHECK_EQ(bench_hist_percentile(h, 99), 198);
    CHECK_EQ(bench_hist_percentile(h, 100), 200);
    CHECK(fabs(bench_hist_mean(h) - 100.5) < 1e-9);
    free(h);
}

TEST(bench_hist_percentiles_within_one_percent_of_exact)
{
    static const double ps[] = {1, 10, 50, 90, 99, 99.9, 99.99};
    const size_t n = 200000;
    uint64_t *v = malloc(n * sizeof(*v));
    REQUIRE(v != NULL);
    struct bench_hist *h = hist_new();
    struct cn_prng prng;
    cn_prng_seed(&prng, 42);
    /* log-uniform over 1 us .. 10 s in ns: every order of magnitude */
    for (size_t i = 0; i < n; i++) {
        double e = 3.0 + 7.0 * (double)cn_prng_below(&prng, 1000000) / 1e6;
        v[i] = (uint64_t)pow(10.0, e);
        bench_hist_record(h, v[i]);
    }
    qsort(v, n, sizeof(*v), cmp_u64);
    CHECK_EQ(h->min, v[0]);
    CHECK_EQ(h->max, v[n - 1]);
    for (size_t i = 0; i < sizeof(ps) / sizeof(*ps); i++) {
        double exact = (double)exact_percentile(v, n, ps[i]);
        double got = (double)bench_hist_percentile(h, ps[i]);
        if (fabs(got - exact) > exact * 0.01)
            tap_fail(__FILE__, __LINE__, "p%g: got %.0f, exact %.0f", ps[i],
                     got, exact);
    }
    free(h);
    free(v);
}

TEST(bench_hist_bimodal_tail_is_not_smoothed_away)
{
    /* 99% fast (100 us), 1% slow (50 ms): p99 is fast, p99.5 is slow */
    struct bench_hist *h = hist_new();
    for (int i = 0; i < 9900; i++)
        bench_hist_record(h, 100000);
    for (int i = 0; i < 100; i++)
        bench_hist_record(h, 50000000);
    uint64_t p99 = bench_hist_percentile(h, 99);
    uint64_t p995 = bench_hist_percentile(h, 99.5);
    CHECK(p99 >= 99000 && p99 <= 101000);
    CHECK(p995 >= 49500000 && p995 <= 50500000);
    free(h);
}

TEST(bench_hist_merge_equals_recording_both)
{
    struct bench_hist *a = hist_new(), *b = hist_new(), *both = hist_new();
    struct cn_prng prng;
    cn_prng_seed(&prng, 7);
    for (int i = 0; i < 5000; i++) {
        uint64_t x = cn_prng_below(&prng, 1000000);
        uint64_t y = 1000000 + cn_prng_below(&prng, 5000000);
        bench_hist_record(a, x);
        bench_hist_record(b, y);
        bench_hist_record(both, x);
        bench_hist_record(both, y);
    }
    bench_hist_merge(a, b);
    CHECK_EQ(a->count, both->count);
    CHECK_EQ(a->min, both->min);
    CHECK_EQ(a->max, both->max);
    CHECK_MEM(a->counts, both->counts, sizeof(a->counts));
    CHECK_EQ(bench_hist_percentile(a, 90), bench_hist_percentile(both, 90));
    free(a);
    free(b);
    free(both);
}

TEST(bench_hist_empty_reports_zero)
{
    struct bench_hist *h = hist_new();
    CHECK_EQ(bench_hist_percentile(h, 50), 0);
    CHECK_EQ(bench_hist_percentile(h, 100), 0);
    CHECK(bench_hist_mean(h) == 0.0);
    free(h);
}
