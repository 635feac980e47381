/* cn_crc32c: CRC-32C with a hardware path on x86-64 (SSE4.2). */
#include "cn_crc32c.h"

#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static int table_ready;

static void table_init(void)
{
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xff] ^ (c >> 8);
            table[k][n] = c;
        }
    }
    table_ready = 1;
}

uint32_t cn_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    if (!table_ready)
        table_init();
    const unsigned char *b = p;
    crc = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        crc = table[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        w ^= crc;
        crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
              table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
              table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
              table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = table[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>

__attribute__((target("sse4.2"))) static uint32_t
crc_hw(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, b, 8);
        c = __builtin_ia32_crc32di(c, w);
        b += 8;
        n -= 8;
    }
    while (n--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *b++);
    return ~(uint32_t)c;
}

static int hw_state = -1;

int cn_crc32c_hw(void)
{
    if (hw_state < 0) {
        unsigned a, bb, c, d;
        hw_state = __get_cpuid(1, &a, &bb, &c, &d) && (c & bit_SSE4_2);
    }
    return hw_state;
}

uint32_t cn_crc32c(uint32_t crc, const void *p, size_t n)
{
    if (cn_crc32c_hw())
        return crc_hw(crc, p, n);
    return cn_crc32c_sw(crc, p, n);
}
#else
int cn_crc32c_hw(void)
{
    return 0;
}

uint32_t cn_crc32c(uint32_t crc, const void *p, size_t n)
{
    return cn_crc32c_sw(crc, p, n);
}
#endif
