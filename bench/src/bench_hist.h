/*
 * bench_hist: a log-bucketed latency histogram in the manner of
 * HdrHistogram, for cairn-bench.
 *
 * Values are unsigned 64-bit integers (cairn-bench records nanoseconds).
 * Values below 2 * BENCH_HIST_SUB are kept exactly; above that, every power
 * of two [2^m, 2^(m+1)) is split into BENCH_HIST_SUB equal buckets, so a
 * bucket's width is at most 1/BENCH_HIST_SUB of its lower bound: with 128
 * sub-buckets any reported percentile is within 0.8% of a recorded value
 * (0.4% when reported at the bucket midpoint, as we do). min, max, count and
 * sum are kept exactly. The whole uint64 range fits in a fixed array, so
 * recording never allocates and never fails.
 */
#ifndef BENCH_HIST_H
#define BENCH_HIST_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 7
#define BENCH_HIST_SUB (1u << BENCH_HIST_SUB_BITS)
/* Exact buckets [0, 2*SUB), then SUB buckets per power of two up to 2^63. */
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_SUB)

struct bench_hist {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t count; /* values recorded */
    uint64_t min;   /* exact; UINT64_MAX when empty */
    uint64_t max;   /* exact; 0 when empty */
    double sum;     /* for the mean */
};

/* Caller allocates h (it is ~58 KiB: heap or static, not a small stack). */
void bench_hist_init(struct bench_hist *h);
void bench_hist_record(struct bench_hist *h, uint64_t v);
/* Adds every value of src to dst (both borrowed). */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/* The value at percentile p (0 < p <= 100): the smallest recorded bucket
 * that holds at least p% of the values, reported at its midpoint and
 * clamped to [min, max]. 0 when the histogram is empty. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
double bench_hist_mean(const struct bench_hist *h);

/* Bucket arithmetic, exposed for the unit test. */
unsigned bench_hist_index(uint64_t v);
/* Smallest value of bucket idx and its width (values lo .. lo+width-1). */
uint64_t bench_hist_bucket_low(unsigned idx);
uint64_t bench_hist_bucket_width(unsigned idx);

#endif
