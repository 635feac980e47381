/* cn_prng: xoshiro256** with splitmix64 seeding. */
#include "cn_prng.h"

uint64_t cn_splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void cn_prng_seed(struct cn_prng *p, uint64_t seed)
{
    uint64_t st = seed;
    for (int i = 0; i < 4; i++)
        p->s[i] = cn_splitmix64(&st);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t cn_prng_next(struct cn_prng *p)
{
    uint64_t *s = p->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t cn_prng_below(struct cn_prng *p, uint64_t n)
{
    /* Lemire-style rejection to avoid modulo bias. */
    uint64_t threshold = (0 - n) % n;
    for (;;) {
        uint64_t r = cn_prng_next(p);
        if (r >= threshold)
            return r % n;
    }
}

uint64_t cn_prng_range(struct cn_prng *p, uint64_t lo, uint64_t hi)
{
    if (hi - lo == UINT64_MAX)
        return cn_prng_next(p);
    return lo + cn_prng_below(p, hi - lo + 1);
}

int cn_prng_chance(struct cn_prng *p, uint64_t num, uint64_t den)
{
    return cn_prng_below(p, den) < num;
}
