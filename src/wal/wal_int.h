/*
 * wal_int: private to src/wal. Record framing (wal_record.c), the wal and
 * batch structs shared by wal.c (append, batches, purge), wal_read.c
 * (recovery) and wal_snap.c (snapshots).
 *
 * Record frame (little-endian, 8-byte aligned; docs/wal-format.md):
 *   0  u32 crc     CRC-32C of salt(8) | offset(8) | bytes [4, 24 + len)
 *   4  u32 len     body bytes
 *   8  u8  type    enum wal_rec_type
 *   9  u8  0      reserved (must be zero)
 *   10 u16 0
 *   12 u32 0
 *   16 u64 synced  segment bytes known durable when it was written
 *   24 body, then zeros up to the next multiple of 8
 */
#ifndef CN_WAL_INT_H
#define CN_WAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "wal.h"

#define WAL_REC_HEADER_BYTES 24u
#define WAL_REC_ALIGN 8u
#define WAL_SEG_MAGIC 0x4c574e43u  /* "CNWL" */
#define WAL_SNAP_MAGIC 0x50534e43u /* "CNSP" */
#define WAL_SEG_HEADER_BODY 48u
#define WAL_SNAP_HEADER_BYTES 40u
#define WAL_PATH_MAX 1024

enum wal_rec_type {
    WAL_REC_SEGMENT = 1,    /* magic, version, seq, first_index, salt, ids */
    WAL_REC_ENTRY = 2,      /* index, term, payload */
    WAL_REC_HARD_STATE = 3, /* term, vote, commit */
    WAL_REC_SNAPSHOT = 4,   /* index, term */
};

/* Little-endian helpers. */
static inline void wal_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void wal_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t wal_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t wal_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Frame bytes of a record with body_len bytes of body. */
static inline uint64_t wal_frame_bytes(uint64_t body_len)
{
    uint64_t n = WAL_REC_HEADER_BYTES + body_len;
    return (n + WAL_REC_ALIGN - 1) & ~(uint64_t)(WAL_REC_ALIGN - 1);
}

/* A decoded segment header. */
struct wal_seg_header {
    uint32_t version;
    uint64_t seq;
    uint64_t first_index;
    uint64_t salt;
    uint64_t cluster_id;
    uint64_t member_id;
};

/* A record found valid in a buffer. */
struct wal_rec {
    uint8_t type;
    uint64_t synced;
    const uint8_t *body; /* points into the buffer */
    uint32_t len;
    uint64_t frame; /* bytes to the next record */
};

/* Appends a record with an unsealed header (crc and synced zero) and body
 * (head + tail, either may be empty) to buf. CN_ENOMEM leaves buf as it
 * was. */
int wal_rec_encode(struct cn_buf *buf, uint8_t type, const void *head,
                   size_t head_len, const void *tail, size_t tail_len);
/* Seals every record in data[0, len) (which starts at segment offset off):
 * writes synced and the CRC with salt. */
void wal_rec_seal_all(uint8_t *data, size_t len, uint64_t off, uint64_t salt,
                      uint64_t synced);
/* 1 if a valid record with salt starts at buf[off] (size bytes in all). */
int wal_rec_check(const uint8_t *buf, uint64_t size, uint64_t off,
                  uint64_t salt, struct wal_rec *out);
/* The same check for a record at segment offset off whose bytes start at
 * rec, with avail bytes of the segment readable from there (the rest of
 * the file, or at least 24 + its len bytes). */
int wal_rec_check_at(const uint8_t *rec, uint64_t avail, uint64_t off,
                     uint64_t salt, struct wal_rec *out);
/* Encodes / decodes a segment header body (WAL_SEG_HEADER_BODY bytes).
 * decode returns 0, CN_ECORRUPT (magic) or CN_EVERSION. */
void wal_seg_header_encode(const struct wal_seg_header *h, uint8_t *body);
int wal_seg_header_decode(const uint8_t *body, struct wal_seg_header *h);
/* snprintf into errmsg (CN_ERRMSG_SIZE bytes; NULL: nothing), truncating
 * long paths silently. */
void wal_errf(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Parses "%016x-%016x<suffix>"; 1 on success. */
int wal_parse_name(const char *name, const char *suffix, uint64_t *a,
                   uint64_t *b);

/* Bytes for one segment, appended and not yet durable. */
struct wal_part {
    uint64_t seg_seq;     /* segment sequence number */
    uint64_t first_index; /* in the segment's name */
    uint64_t salt;        /* of the segment */
    uint64_t start_off;   /* segment offset of data[0] */
    int create;           /* 1: data starts with the segment header */
    struct cn_buf data;   /* unsealed records */
};

struct wal_seg {
    uint64_t seq;
    uint64_t first_index;
};

struct wal_batch {
    const struct cn_fs *fs;
    const char *wal_dir;    /* w's, constant while w lives */
    uint64_t segment_bytes; /* preallocation */
    struct wal_part *parts; /* taken from the wal's pending list */
    size_t part_count;
    struct cn_fs_file *tail;  /* borrowed: open tail for a first part
                                 that continues it */
    uint64_t tail_seq;        /* its segment */
    uint64_t tail_synced;     /* durable bytes of the tail */
    struct cn_fs_file **made; /* created segments, by part (NULL if not) */
    struct wal_pos pos;       /* durable once the batch succeeds */
    int ran;
    int rc;
    char errmsg[CN_ERRMSG_SIZE];
};

struct wal {
    const struct cn_fs *fs;
    char data_dir[WAL_PATH_MAX];
    char member_dir[WAL_PATH_MAX];
    char wal_dir[WAL_PATH_MAX];
    char snap_dir[WAL_PATH_MAX];
    uint64_t segment_bytes;
    unsigned max_snapshots;
    unsigned max_wals;
    uint64_t cluster_id;
    uint64_t member_id;
    struct cn_prng prng; /* segment salts */

    /* Segments whose names are durable, oldest first; the last is the
     * tail, open in `tail`. */
    struct wal_seg *segs;
    size_t seg_count;
    size_t seg_cap;
    struct cn_fs_file *tail;
    uint64_t tail_synced; /* durable bytes of the tail */

    /* Appended, not yet in a batch. */
    struct wal_part *pending;
    size_t pending_count;
    size_t pending_cap;

    /* Where the next record goes and the logical log state after all
     * appends. */
    uint64_t end_seq;  /* segment of the next record */
    uint64_t end_off;  /* its offset */
    uint64_t end_salt; /* that segment's salt */
    uint64_t last_index;
    uint64_t last_term;
    uint64_t mark_index; /* newest snapshot marker (0: none) */
    uint64_t mark_term;
    int hs_set;
    struct wal_hard_state hs;
    uint64_t rec_seq;

    struct wal_pos durable;
    struct wal_batch *inflight;
    int failed; /* sticky error (0: healthy) */
    char errmsg[CN_ERRMSG_SIZE];
};

/* wal.c: creates segment part->seg_seq in dir: temp file, preallocate,
 * write the sealed part, fsync, rename, fsync dir. *out is the open file. */
int wal_seg_create(const struct cn_fs *fs, const char *dir,
                   uint64_t segment_bytes, struct wal_part *part,
                   struct cn_fs_file **out, char *errmsg);
/* wal.c: pushes a pending part creating segment seq (header, hard state,
 * marker) at the end of the log. CN_ENOMEM leaves w unchanged. */
int wal_start_segment(struct wal *w, uint64_t seq);
void wal_part_free(struct wal_part *p);

/* wal_read.c: reads the log of w's wal_dir into rec and w's state. */
int wal_read(struct wal *w, struct wal_recovery *rec, char *errmsg);
/* wal_read.c: recovery reads segments in windows of this many bytes (plus
 * the record being read); tests make it small to cross window edges. 0:
 * the default. Not thread safe: set it before opening. */
#define WAL_READ_CHUNK ((size_t)1 << 20)
void wal_read_set_chunk(size_t bytes);

/* wal_snap.c: picks and loads the newest usable snapshot. markers are the
 * (index, term) pairs seen in the log (count pairs, index then term).
 * newest_only: the markers come from the newest segments only, so only the
 * newest snapshot is tried, and nothing is removed; rec->snap_index stays
 * 0 when it cannot be used (the caller then reads the whole log). */
int wal_snap_load(struct wal *w, const uint64_t *markers, size_t count,
                  int newest_only, struct wal_recovery *rec, char *errmsg);
/* wal_snap.c: the snapshots in the snap dir, sorted oldest first, as
 * (term, index) pairs in *list (cn_free it). */
int wal_snap_list(const struct wal *w, uint64_t **list, size_t *count,
                  char *errmsg);

#endif
