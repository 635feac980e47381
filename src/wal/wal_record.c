/*
 * wal_record: the record frame (wal_int.h has the layout). Encoding leaves
 * the CRC and the synced field zero ("unsealed"): both are only known when
 * the batch is written, so wal_rec_seal_all fills them in wal_batch_run,
 * off the main thread.
 *
 * The CRC covers the segment's salt and the record's own offset besides its
 * bytes, so a record is valid only at the place it was written, in the
 * segment it was written to: stale bytes from an earlier write, or a record
 * image embedded in a payload, never pass as a record.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "wal_int.h"

int wal_rec_encode(struct cn_buf *buf, uint8_t type, const void *head,
                   size_t head_len, const void *tail, size_t tail_len)
{
    size_t body = head_len + tail_len;
    size_t frame = (size_t)wal_frame_bytes(body);
    int rc = cn_buf_reserve(buf, frame);
    if (rc != CN_OK)
        return rc;
    uint8_t *p = (uint8_t *)buf->data + buf->len;
    memset(p, 0, WAL_REC_HEADER_BYTES);
    wal_put32(p + 4, (uint32_t)body);
    p[8] = type;
    if (head_len)
        memcpy(p + WAL_REC_HEADER_BYTES, head, head_len);
    if (tail_len)
        memcpy(p + WAL_REC_HEADER_BYTES + head_len, tail, tail_len);
    memset(p + WAL_REC_HEADER_BYTES + body, 0,
           frame - WAL_REC_HEADER_BYTES - body);
    buf->len += frame;
    buf->data[buf->len] = '\0';
    return CN_OK;
}

static uint32_t rec_crc(const uint8_t *rec, uint64_t off, uint64_t salt)
{
    uint8_t pre[16];
    wal_put64(pre, salt);
    wal_put64(pre + 8, off);
    uint32_t crc = cn_crc32c(0, pre, sizeof(pre));
    uint32_t len = wal_get32(rec + 4);
    return cn_crc32c(crc, rec + 4, WAL_REC_HEADER_BYTES - 4 + (size_t)len);
}

void wal_rec_seal_all(uint8_t *data, size_t len, uint64_t off, uint64_t salt,
                      uint64_t synced)
{
    size_t pos = 0;
    while (pos < len) {
        uint8_t *rec = data + pos;
        uint32_t body = wal_get32(rec + 4);
        CN_ASSERT(pos + wal_frame_bytes(body) <= len);
        uint64_t rec_salt = salt;
        if (rec[8] == WAL_REC_SEGMENT)
            rec_salt = wal_get64(rec + WAL_REC_HEADER_BYTES + 24);
        /* A segment header is always durable before anything else in its
         * segment exists: it claims nothing. */
        uint64_t s = rec[8] == WAL_REC_SEGMENT ? 0 : synced;
        CN_ASSERT(s <= off + pos);
        wal_put64(rec + 16, s);
        wal_put32(rec, rec_crc(rec, off + pos, rec_salt));
        pos += (size_t)wal_frame_bytes(body);
    }
}

int wal_rec_check(const uint8_t *buf, uint64_t size, uint64_t off,
                  uint64_t salt, struct wal_rec *out)
{
    if (off > size)
        return 0;
    return wal_rec_check_at(buf + off, size - off, off, salt, out);
}

int wal_rec_check_at(const uint8_t *rec, uint64_t avail, uint64_t off,
                     uint64_t salt, struct wal_rec *out)
{
    uint64_t size = off + avail; /* the record must end within size */
    if (off + WAL_REC_HEADER_BYTES > size)
        return 0;
    uint8_t type = rec[8];
    uint32_t len = wal_get32(rec + 4);
    if (type < WAL_REC_SEGMENT || type > WAL_REC_SNAPSHOT)
        return 0;
    if (rec[9] != 0 || rec[10] != 0 || rec[11] != 0 || wal_get32(rec + 12) != 0)
        return 0;
    if (len > CN_WAL_RECORD_BYTES_MAX ||
        off + WAL_REC_HEADER_BYTES + len > size)
        return 0;
    uint64_t synced = wal_get64(rec + 16);
    if (synced > off)
        return 0;
    if (type == WAL_REC_SEGMENT) {
        if (len != WAL_SEG_HEADER_BODY || off != 0)
            return 0;
        salt = wal_get64(rec + WAL_REC_HEADER_BYTES + 24);
    }
    if (rec_crc(rec, off, salt) != wal_get32(rec))
        return 0;
    /* Sizes of the fixed bodies. */
    if ((type == WAL_REC_ENTRY && len < 16) ||
        (type == WAL_REC_HARD_STATE && len != 24) ||
        (type == WAL_REC_SNAPSHOT && len != 16))
        return 0;
    out->type = type;
    out->synced = synced;
    out->body = rec + WAL_REC_HEADER_BYTES;
    out->len = len;
    out->frame = wal_frame_bytes(len);
    return 1;
}

void wal_seg_header_encode(const struct wal_seg_header *h, uint8_t *body)
{
    wal_put32(body, WAL_SEG_MAGIC);
    wal_put32(body + 4, h->version);
    wal_put64(body + 8, h->seq);
    wal_put64(body + 16, h->first_index);
    wal_put64(body + 24, h->salt);
    wal_put64(body + 32, h->cluster_id);
    wal_put64(body + 40, h->member_id);
}

int wal_seg_header_decode(const uint8_t *body, struct wal_seg_header *h)
{
    if (wal_get32(body) != WAL_SEG_MAGIC)
        return CN_ECORRUPT;
    h->version = wal_get32(body + 4);
    h->seq = wal_get64(body + 8);
    h->first_index = wal_get64(body + 16);
    h->salt = wal_get64(body + 24);
    h->cluster_id = wal_get64(body + 32);
    h->member_id = wal_get64(body + 40);
    if (h->version != WAL_FORMAT_VERSION)
        return CN_EVERSION;
    return CN_OK;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int wal_parse_name(const char *name, const char *suffix, uint64_t *a,
                   uint64_t *b)
{
    if (strlen(name) != 33 + strlen(suffix) || name[16] != '-' ||
        strcmp(name + 33, suffix) != 0)
        return 0;
    uint64_t v[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 16; i++) {
            int d = hexval(name[k * 17 + i]);
            if (d < 0)
                return 0;
            v[k] = (v[k] << 4) | (uint64_t)d;
        }
    }
    *a = v[0];
    *b = v[1];
    return 1;
}

void wal_segment_name(uint64_t seq, uint64_t first_index, char *out, size_t cap)
{
    snprintf(out, cap, "%016llx-%016llx.wal", (unsigned long long)seq,
             (unsigned long long)first_index);
}

void wal_snap_name(uint64_t term, uint64_t index, char *out, size_t cap)
{
    snprintf(out, cap, "%016llx-%016llx.snap", (unsigned long long)term,
             (unsigned long long)index);
}

void wal_errf(char *errmsg, const char *fmt, ...)
{
    if (errmsg == NULL)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, CN_ERRMSG_SIZE, fmt, ap);
    va_end(ap);
}
