/* Unit tests for src/base: buffers, errors, PRNG, CRC-32C, fault seam. */
#include "base/base.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

TEST(cn_buf_append_grows_and_terminates)
{
    struct cn_buf b;
    cn_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        REQUIRE_EQ(cn_buf_append_cstr(&b, "ab"), CN_OK);
    CHECK_EQ(b.len, 2000);
    CHECK_EQ(b.data[2000], '\0');
    CHECK_EQ(cn_buf_printf(&b, "%d-%s", 42, "x"), CN_OK);
    CHECK_STR(b.data + 2000, "42-x");
    cn_buf_close(&b);
    CHECK(b.data == NULL && b.len == 0);
}

TEST(cn_buf_printf_long_output)
{
    struct cn_buf b = {0};
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    REQUIRE_EQ(cn_buf_printf(&b, "<%s>", big), CN_OK);
    CHECK_EQ(b.len, 1001);
    CHECK_EQ(b.data[0], '<');
    CHECK_EQ(b.data[1000], '>');
    cn_buf_close(&b);
}

TEST(cn_buf_append_u64_formats_decimal)
{
    struct cn_buf b = {0};
    cn_buf_append_u64(&b, 0);
    cn_buf_append_char(&b, ' ');
    cn_buf_append_u64(&b, 18446744073709551615ull);
    CHECK_STR(b.data, "0 18446744073709551615");
    cn_buf_close(&b);
}

TEST(cn_buf_append_fails_cleanly_without_memory)
{
    struct cn_buf b = {0};
    REQUIRE_EQ(cn_buf_append_cstr(&b, "keep"), CN_OK);
    char big[4096] = {0};
    cn_mem_fault_arm(1, 0);
    int rc = cn_buf_append(&b, big, sizeof(big));
    CHECK_EQ(cn_mem_fault_disarm(), 1);
    CHECK_EQ(rc, CN_ENOMEM);
    CHECK_STR(b.data, "keep");
    CHECK_EQ(b.len, 4);
    cn_buf_close(&b);
}

/* Resident pages of this process, from /proc/self/statm. */
static long resident_pages(void)
{
    long size = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &res) != 2)
        res = -1;
    fclose(f);
    return res;
}

/* kB of anonymous huge pages mapped by this process (smaps_rollup). */
static long anon_huge_kb(void)
{
    char line[256];
    long kb = -1;
    FILE *f = fopen("/proc/self/smaps_rollup", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* 1 if the kernel gives huge pages to a range advised MADV_HUGEPAGE. */
static int thp_on_advice(void)
{
    char mode[128] = "";
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (f == NULL)
        return 0;
    if (fgets(mode, sizeof(mode), f) == NULL)
        mode[0] = '\0';
    fclose(f);
    return strstr(mode, "[madvise]") != NULL ||
           strstr(mode, "[always]") != NULL;
}

TEST(cn_mem_prefault_maps_the_heap_in_before_a_bulk_load)
{
    CHECK_EQ(cn_mem_prefault_begin(1 << 20), 0); /* too small: nothing */
    cn_mem_prefault_end();
    long page = sysconf(_SC_PAGESIZE);
    long res0 = resident_pages();
    long huge0 = anon_huge_kb();
    size_t want = (size_t)96 << 20;
    size_t got = cn_mem_prefault_begin(want);
    long res1 = resident_pages();
    long huge1 = anon_huge_kb();
    const char *pre = getenv("LD_PRELOAD");
    int other_allocator = pre != NULL && strstr(pre, "vgpreload") != NULL;
#if defined(__SANITIZE_ADDRESS__)
    other_allocator = 1;
#endif
    if (other_allocator) {
        CHECK_EQ(got, 0);
    } else {
        /* glibc's heap grew by about what was asked, and it is resident. */
        CHECK(got >= want - (size_t)(1 << 20));
        CHECK(res1 - res0 >= (long)(got / (size_t)page) * 9 / 10);
        /* where THP is on advice, the range came in as huge pages (at
         * least some: the kernel may lack free 2 MiB blocks for all) */
        if (thp_on_advice() && huge0 >= 0)
            CHECK(huge1 - huge0 >= 2048);
    }
    /* Allocations go on as usual, and use those pages. */
    char *blocks[1000];
    for (int i = 0; i < 1000; i++) {
        blocks[i] = cn_malloc(4000);
        REQUIRE(blocks[i] != NULL);
        memset(blocks[i], i & 0xff, 4000);
    }
    long res2 = resident_pages();
    if (!other_allocator)
        CHECK(res2 - res1 < 1000 * 4000 / page / 4); /* no new faults */
    cn_mem_prefault_end();
    for (int i = 0; i < 1000; i++) {
        CHECK_EQ(blocks[i][3999], (char)(i & 0xff));
        cn_free(blocks[i]);
    }
}

TEST(cn_err_names_and_messages)
{
    CHECK_STR(cn_strerror(CN_ENOMEM), "out of memory");
    CHECK_STR(cn_errname(CN_ECORRUPT), "CN_ECORRUPT");
    CHECK_STR(cn_strerror(12345), "unknown error");
    CHECK_EQ(cn_err_from_errno(28 /* ENOSPC */), CN_ENOSPC);
}

TEST(cn_prng_same_seed_same_sequence)
{
    struct cn_prng a, b;
    cn_prng_seed(&a, 7);
    cn_prng_seed(&b, 7);
    for (int i = 0; i < 100; i++)
        CHECK(cn_prng_next(&a) == cn_prng_next(&b));
    cn_prng_seed(&b, 8);
    CHECK(cn_prng_next(&a) != cn_prng_next(&b));
    for (int i = 0; i < 1000; i++) {
        uint64_t v = cn_prng_range(&a, 5, 9);
        CHECK(v >= 5 && v <= 9);
    }
}

TEST(cn_crc32c_known_vectors)
{
    /* RFC 3720 B.4 check value for "123456789". */
    CHECK_EQ(cn_crc32c(0, "123456789", 9), 0xe3069283u);
    CHECK_EQ(cn_crc32c_sw(0, "123456789", 9), 0xe3069283u);
    unsigned char zeros[32] = {0};
    CHECK_EQ(cn_crc32c(0, zeros, 32), 0x8a9136aau);
}

TEST(cn_crc32c_hw_matches_sw_on_every_alignment)
{
    unsigned char data[300];
    for (int i = 0; i < 300; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    for (int off = 0; off < 9; off++)
        for (int n = 0; n < 280; n += 13)
            CHECK_EQ(cn_crc32c(0, data + off, (size_t)n),
                     cn_crc32c_sw(0, data + off, (size_t)n));
    /* Incremental equals one-shot. */
    uint32_t c = cn_crc32c(0, data, 100);
    c = cn_crc32c(c, data + 100, 200);
    CHECK_EQ(c, cn_crc32c_sw(0, data, 300));
}

static char logged[256];
static void capture_log(void *ctx, int level, const char *module,
                        const char *msg)
{
    (void)ctx;
    snprintf(logged, sizeof(logged), "%c %s %s", cn_log_level_letter(level),
             module, msg);
}

TEST(cn_log_respects_level_and_formats)
{
    struct cn_logger l = {capture_log, NULL, CN_LOG_INFO};
    logged[0] = '\0';
    CN_LOG(&l, CN_LOG_DEBUG, "t", "hidden %d", 1);
    CHECK_STR(logged, "");
    CN_LOG(&l, CN_LOG_WARN, "t", "shown %d", 2);
    CHECK_STR(logged, "W t shown 2");
    struct cn_logger none = {0};
    CN_LOG(&none, CN_LOG_ERROR, "t", "dropped");
}
