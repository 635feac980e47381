/*
 * cn_sha1: SHA-1 (FIPS 180-4). cairn uses it only where etcd does, to
 * derive member and cluster IDs that match etcd's; never for security.
 */
#ifndef CN_SHA1_H
#define CN_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define CN_SHA1_BYTES 20

/* Incremental hashing: init, any number of updates, final. */
struct cn_sha1 {
    uint32_t h[5];     /* chaining state */
    uint64_t total;    /* bytes hashed so far */
    uint8_t block[64]; /* pending partial block */
    size_t block_len;  /* bytes in block */
};

void cn_sha1_init(struct cn_sha1 *s);
/* Hashes n bytes at p (borrowed). */
void cn_sha1_update(struct cn_sha1 *s, const void *p, size_t n);
/* Writes the digest; s must be initialised again before reuse. */
void cn_sha1_final(struct cn_sha1 *s, uint8_t out[CN_SHA1_BYTES]);
/* One-shot digest of n bytes at p. */
void cn_sha1(const void *p, size_t n, uint8_t out[CN_SHA1_BYTES]);

#endif
