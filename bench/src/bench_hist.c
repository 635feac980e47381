/*
 * bench_hist: see bench_hist.h. Bucket layout, with S = BENCH_HIST_SUB:
 *
 *   index 0 .. 2S-1        value == index (width 1)
 *   index (k+1)*S + j      values [(S+j) << k, (S+j+1) << k), k >= 1
 *
 * so the index of v >= 2S is (shift+1)*S + (v >> shift) - S where
 * shift = msb(v) - SUB_BITS.
 */
#include "bench_hist.h"

#include <string.h>

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

unsigned bench_hist_index(uint64_t v)
{
    if (v < 2 * (uint64_t)BENCH_HIST_SUB)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - BENCH_HIST_SUB_BITS;
    return (shift + 1) * BENCH_HIST_SUB +
           (unsigned)((v >> shift) - BENCH_HIST_SUB);
}

uint64_t bench_hist_bucket_low(unsigned idx)
{
    if (idx < 2 * BENCH_HIST_SUB)
        return idx;
    unsigned shift = idx / BENCH_HIST_SUB - 1;
    uint64_t sub = BENCH_HIST_SUB + idx % BENCH_HIST_SUB;
    return sub << shift;
}

uint64_t bench_hist_bucket_width(unsigned idx)
{
    if (idx < 2 * BENCH_HIST_SUB)
        return 1;
    return (uint64_t)1 << (idx / BENCH_HIST_SUB - 1);
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->counts[bench_hist_index(v)]++;
    h->count++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    /* rank of the value we want, 1-based: ceil(p% of count), at least 1 */
    double want = p / 100.0 * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v =
                bench_hist_bucket_low(i) + (bench_hist_bucket_width(i) - 1) / 2;
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
