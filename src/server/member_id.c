/*
 * member_id.c: etcd-compatible member and cluster IDs (see
 * server_member_id.h for the formulas and where etcd defines them).
 */
#include "server_member_id.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cn_sha1.h"

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int server_member_id_compute(const char *const *urls, size_t n,
                             const char *token, uint64_t *out)
{
    const char **sorted = cn_malloc((n ? n : 1) * sizeof(*sorted));
    if (sorted == NULL)
        return CN_ENOMEM;
    memcpy(sorted, urls, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_str);
    struct cn_sha1 s;
    cn_sha1_init(&s);
    for (size_t i = 0; i < n; i++)
        cn_sha1_update(&s, sorted[i], strlen(sorted[i]));
    cn_sha1_update(&s, token, strlen(token));
    uint8_t d[CN_SHA1_BYTES];
    cn_sha1_final(&s, d);
    cn_free(sorted);
    *out = be64(d);
    return CN_OK;
}

int server_member_id_of_urls(const struct cn_url_list *urls, const char *token,
                             uint64_t *out)
{
    const char *v[CN_CONFIG_URLS_MAX];
    size_t n = 0;
    for (int i = 0; i < urls->count && i < CN_CONFIG_URLS_MAX; i++)
        v[n++] = urls->urls[i].raw;
    return server_member_id_compute(v, n, token, out);
}

int server_cluster_id_compute(const uint64_t *ids, size_t n, uint64_t *out)
{
    uint64_t *sorted = cn_malloc((n ? n : 1) * sizeof(*sorted));
    if (sorted == NULL)
        return CN_ENOMEM;
    memcpy(sorted, ids, n * sizeof(*sorted));
    qsort(sorted, n, sizeof(*sorted), cmp_u64);
    struct cn_sha1 s;
    cn_sha1_init(&s);
    for (size_t i = 0; i < n; i++) {
        uint8_t b[8];
        for (unsigned j = 0; j < 8; j++)
            b[j] = (uint8_t)(sorted[i] >> (56 - 8 * j));
        cn_sha1_update(&s, b, sizeof(b));
    }
    uint8_t d[CN_SHA1_BYTES];
    cn_sha1_final(&s, d);
    cn_free(sorted);
    *out = be64(d);
    return CN_OK;
}

int server_initial_cluster_ids(const struct cn_member_spec *specs, int count,
                               const char *token, uint64_t *ids_out, size_t cap,
                               size_t *n_out, uint64_t *cluster_id_out)
{
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        int seen = 0;
        for (int j = 0; j < i && !seen; j++)
            seen = strcmp(specs[j].name, specs[i].name) == 0;
        if (seen)
            continue;
        const char *urls[CN_CONFIG_MEMBERS_MAX];
        size_t nu = 0;
        for (int j = i; j < count && nu < CN_CONFIG_MEMBERS_MAX; j++)
            if (strcmp(specs[j].name, specs[i].name) == 0)
                urls[nu++] = specs[j].url.raw;
        if (n == cap)
            return CN_EINVAL;
        int rc = server_member_id_compute(urls, nu, token, &ids_out[n]);
        if (rc != CN_OK)
            return rc;
        for (size_t k = 0; k < n; k++)
            if (ids_out[k] == ids_out[n])
                return CN_EINVAL;
        n++;
    }
    *n_out = n;
    return server_cluster_id_compute(ids_out, n, cluster_id_out);
}

char *server_id_format(uint64_t id, char out[SERVER_ID_HEX_SIZE])
{
    snprintf(out, SERVER_ID_HEX_SIZE, "%" PRIx64, id);
    return out;
}

int server_id_parse(const char *s, uint64_t *out)
{
    size_t n = strlen(s);
    if (n == 0 || n > 16)
        return CN_EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9')
            d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (unsigned)(c - 'A' + 10);
        else
            return CN_EINVAL;
        v = v << 4 | d;
    }
    *out = v;
    return CN_OK;
}
