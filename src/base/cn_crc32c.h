/*
 * cn_crc32c: CRC-32C (Castagnoli), as used by the WAL, snapshots and peer
 * messages. Uses the SSE4.2 crc32 instruction when the CPU has it, a
 * slicing table otherwise; both give identical results.
 */
#ifndef CN_CRC32C_H
#define CN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extend crc (0 to start) over n bytes at p. */
uint32_t cn_crc32c(uint32_t crc, const void *p, size_t n);
/* The portable table implementation (exposed for tests). */
uint32_t cn_crc32c_sw(uint32_t crc, const void *p, size_t n);
/* 1 if the hardware path is in use. */
int cn_crc32c_hw(void);

#endif
