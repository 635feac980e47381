/*
 * cn_prng: a small seeded PRNG (xoshiro256**, seeded by splitmix64).
 * Deterministic for a seed on every platform; not for cryptography.
 */
#ifndef CN_PRNG_H
#define CN_PRNG_H

#include <stdint.h>

struct cn_prng {
    uint64_t s[4];
};

void cn_prng_seed(struct cn_prng *p, uint64_t seed);
uint64_t cn_prng_next(struct cn_prng *p);
/* Uniform in [0, n); n > 0. */
uint64_t cn_prng_below(struct cn_prng *p, uint64_t n);
/* Uniform in [lo, hi]; lo <= hi. */
uint64_t cn_prng_range(struct cn_prng *p, uint64_t lo, uint64_t hi);
/* 1 with probability num/den. */
int cn_prng_chance(struct cn_prng *p, uint64_t num, uint64_t den);
/* splitmix64 step: derive child seeds from a root seed. */
uint64_t cn_splitmix64(uint64_t *state);

#endif
