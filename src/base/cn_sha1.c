/*
 * cn_sha1.c: SHA-1, a straightforward FIPS 180-4 implementation (80-word
 * message schedule, big-endian words and length).
 */
#include "cn_sha1.h"

#include <string.h>

static uint32_t rotl(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static void compress(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (unsigned i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (unsigned i = 16; i < 80; i++)
        w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (unsigned i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999u;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1u;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdcu;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6u;
        }
        uint32_t t = rotl(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rotl(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void cn_sha1_init(struct cn_sha1 *s)
{
    static const uint32_t iv[5] = {0x67452301u, 0xefcdab89u, 0x98badcfeu,
                                   0x10325476u, 0xc3d2e1f0u};
    memcpy(s->h, iv, sizeof(iv));
    s->total = 0;
    s->block_len = 0;
}

void cn_sha1_update(struct cn_sha1 *s, const void *p, size_t n)
{
    const uint8_t *b = p;
    s->total += n;
    while (n > 0) {
        if (s->block_len == 0 && n >= 64) {
            compress(s->h, b);
            b += 64;
            n -= 64;
            continue;
        }
        size_t take = 64 - s->block_len;
        if (take > n)
            take = n;
        memcpy(s->block + s->block_len, b, take);
        s->block_len += take;
        b += take;
        n -= take;
        if (s->block_len == 64) {
            compress(s->h, s->block);
            s->block_len = 0;
        }
    }
}

void cn_sha1_final(struct cn_sha1 *s, uint8_t out[CN_SHA1_BYTES])
{
    uint64_t bits = s->total * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = s->block_len < 56 ? 56 - s->block_len : 120 - s->block_len;
    uint8_t len[8];
    for (unsigned i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    cn_sha1_update(s, pad, padlen);
    cn_sha1_update(s, len, 8);
    for (unsigned i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void cn_sha1(const void *p, size_t n, uint8_t out[CN_SHA1_BYTES])
{
    struct cn_sha1 s;
    cn_sha1_init(&s);
    cn_sha1_update(&s, p, n);
    cn_sha1_final(&s, out);
}
