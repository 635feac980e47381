/* Unit tests of src/raft/raft_codec.c: round trips and rejection of every
 * malformed input (bit flips, truncation, bad version, bad counts). */
#include "raft/raft.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static void sample_append(struct raft_msg *m, struct raft_entry *es)
{
    memset(m, 0, sizeof(*m));
    m->type = RAFT_MSG_APPEND;
    m->from = 1;
    m->to = 2;
    m->term = 7;
    m->index = 10;
    m->log_term = 6;
    m->commit = 9;
    static char a[] = "hello", b[] = "world!";
    es[0] = (struct raft_entry){7, 11, RAFT_ENTRY_COMMAND, a, 5};
    es[1] = (struct raft_entry){7, 12, RAFT_ENTRY_NOOP, NULL, 0};
    es[2] = (struct raft_entry){7, 13, RAFT_ENTRY_COMMAND, b, 6};
    m->entries = es;
    m->n_entries = 3;
}

TEST(raft_codec_append_roundtrip)
{
    struct raft_msg m, d;
    struct raft_entry es[3];
    sample_append(&m, es);
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(raft_msg_encode(&m, &b), 0);
    REQUIRE_EQ(raft_msg_decode(b.data, b.len, &d), 0);
    CHECK_EQ(d.type, RAFT_MSG_APPEND);
    CHECK_EQ(d.from, 1);
    CHECK_EQ(d.to, 2);
    CHECK_EQ(d.term, 7);
    CHECK_EQ(d.index, 10);
    CHECK_EQ(d.log_term, 6);
    CHECK_EQ(d.commit, 9);
    REQUIRE_EQ(d.n_entries, 3);
    CHECK_EQ(d.entries[0].index, 11);
    CHECK_EQ(d.entries[0].data_len, 5);
    CHECK_MEM(d.entries[0].data, "hello", 5);
    CHECK_EQ(d.entries[1].type, RAFT_ENTRY_NOOP);
    CHECK_EQ(d.entries[1].data_len, 0);
    CHECK_MEM(d.entries[2].data, "world!", 6);
    raft_msg_release(&d);
    cn_buf_close(&b);
}

TEST(raft_codec_every_type_roundtrips)
{
    for (int t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
        struct raft_msg m, d;
        memset(&m, 0, sizeof(m));
        m.type = (uint8_t)t;
        m.from = 3;
        m.to = 4;
        m.term = 99;
        m.index = 5;
        m.hint = 4;
        m.ctx = 12345;
        m.reject = t % 2;
        m.force = t == RAFT_MSG_VOTE;
        if (t == RAFT_MSG_SNAPSHOT) {
            m.snap.index = 50;
            m.snap.term = 9;
            m.snap.conf_index = 3;
            raft_conf_add(&m.snap.conf, 3, RAFT_VOTER);
            raft_conf_add(&m.snap.conf, 4, RAFT_LEARNER);
            m.offset = 64;
            m.chunk = "0123456789";
            m.chunk_len = 10;
            m.last = 1;
        }
        if (t == RAFT_MSG_SNAPSHOT_RESP)
            m.offset = 77;
        struct cn_buf b;
        cn_buf_init(&b);
        REQUIRE_EQ(raft_msg_encode(&m, &b), 0);
        REQUIRE_EQ(raft_msg_decode(b.data, b.len, &d), 0);
        CHECK_EQ(d.type, t);
        CHECK_EQ(d.term, 99);
        CHECK_EQ(d.ctx, 12345);
        CHECK_EQ(d.reject, m.reject);
        CHECK_EQ(d.force, m.force);
        if (t == RAFT_MSG_SNAPSHOT) {
            CHECK_EQ(d.snap.index, 50);
            CHECK_EQ(d.snap.conf.n, 2);
            CHECK_EQ(d.snap.conf.servers[1].role, RAFT_LEARNER);
            CHECK_EQ(d.offset, 64);
            CHECK_EQ(d.chunk_len, 10);
            CHECK_MEM(d.chunk, "0123456789", 10);
            CHECK_EQ(d.last, 1);
        }
        if (t == RAFT_MSG_SNAPSHOT_RESP)
            CHECK_EQ(d.offset, 77);
        raft_msg_release(&d);
        cn_buf_close(&b);
    }
}

TEST(raft_codec_rejects_every_bit_flip)
{
    struct raft_msg m, d;
    struct raft_entry es[3];
    sample_append(&m, es);
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(raft_msg_encode(&m, &b), 0);
    int accepted = 0;
    for (size_t bit = 0; bit < b.len * 8; bit++) {
        b.data[bit / 8] ^= (char)(1 << (bit % 8));
        if (raft_msg_decode(b.data, b.len, &d) != CN_ECORRUPT) {
            accepted++;
            raft_msg_release(&d);
        }
        b.data[bit / 8] ^= (char)(1 << (bit % 8));
    }
    CHECK_EQ(accepted, 0);
    cn_buf_close(&b);
}

TEST(raft_codec_rejects_every_truncation_and_extension)
{
    struct raft_msg m, d;
    struct raft_entry es[3];
    sample_append(&m, es);
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(raft_msg_encode(&m, &b), 0);
    for (size_t n = 0; n < b.len; n++)
        CHECK_EQ(raft_msg_decode(b.data, n, &d), CN_ECORRUPT);
    REQUIRE_EQ(cn_buf_append(&b, "x", 1), 0);
    CHECK_EQ(raft_msg_decode(b.data, b.len, &d), CN_ECORRUPT);
    cn_buf_close(&b);
}

/* Re-seal a record after editing it, so only the semantic check fails. */
static void reseal(struct cn_buf *b)
{
    uint32_t crc = cn_crc32c(0, b->data, b->len - 4);
    for (int i = 0; i < 4; i++)
        b->data[b->len - 4 + i] = (char)(crc >> (8 * i));
}

TEST(raft_codec_rejects_bad_version_kind_and_type)
{
    struct raft_msg m, d;
    memset(&m, 0, sizeof(m));
    m.type = RAFT_MSG_VOTE;
    m.from = 1;
    m.to = 2;
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(raft_msg_encode(&m, &b), 0);
    b.data[0] = RAFT_CODEC_VERSION + 1;
    reseal(&b);
    CHECK_EQ(raft_msg_decode(b.data, b.len, &d), CN_ECORRUPT);
    b.data[0] = RAFT_CODEC_VERSION;
    b.data[1] = 99; /* record kind */
    reseal(&b);
    CHECK_EQ(raft_msg_decode(b.data, b.len, &d), CN_ECORRUPT);
    b.data[1] = 1;
    b.data[2] = RAFT_MSG_TYPE_MAX + 1; /* message type */
    reseal(&b);
    CHECK_EQ(raft_msg_decode(b.data, b.len, &d), CN_ECORRUPT);
    b.data[2] = RAFT_MSG_VOTE;
    reseal(&b);
    CHECK_EQ(raft_msg_decode(b.data, b.len, &d), 0);
    raft_msg_release(&d);
    cn_buf_close(&b);
}

TEST(raft_codec_rejects_huge_entry_count_without_allocating)
{
    struct raft_msg m, d;
    struct raft_entry es[3];
    sample_append(&m, es);
    m.n_entries = 0;
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(raft_msg_encode(&m, &b), 0);
    /* The count is the last 4 bytes before the CRC. */
    size_t at = b.len - 8;
    b.data[at + 3] = 0x7f;
    reseal(&b);
    long before = cn_mem_alloc_count();
    CHECK_EQ(raft_msg_decode(b.data, b.len, &d), CN_ECORRUPT);
    CHECK_EQ(cn_mem_alloc_count(), before);
    cn_buf_close(&b);
}

TEST(raft_codec_persisted_structures_roundtrip)
{
    struct cn_buf b;
    cn_buf_init(&b);
    struct raft_hard_state hs = {5, 3, 42}, hs2;
    REQUIRE_EQ(raft_hard_state_encode(&hs, &b), 0);
    REQUIRE_EQ(raft_hard_state_decode(b.data, b.len, &hs2), 0);
    CHECK_EQ(hs2.term, 5);
    CHECK_EQ(hs2.vote, 3);
    CHECK_EQ(hs2.commit, 42);
    b.data[5] ^= 1;
    CHECK_EQ(raft_hard_state_decode(b.data, b.len, &hs2), CN_ECORRUPT);

    cn_buf_reset(&b);
    struct raft_entry e = {4, 17, RAFT_ENTRY_CONFIG, "abc", 3}, e2;
    REQUIRE_EQ(raft_entry_encode(&e, &b), 0);
    REQUIRE_EQ(raft_entry_decode(b.data, b.len, &e2), 0);
    CHECK_EQ(e2.term, 4);
    CHECK_EQ(e2.index, 17);
    CHECK_EQ(e2.type, RAFT_ENTRY_CONFIG);
    CHECK_MEM(e2.data, "abc", 3);
    CHECK_EQ(raft_entry_decode(b.data, b.len - 1, &e2), CN_ECORRUPT);

    cn_buf_reset(&b);
    struct raft_snapshot_meta sm, sm2;
    memset(&sm, 0, sizeof(sm));
    sm.index = 100;
    sm.term = 8;
    sm.conf_index = 90;
    raft_conf_add(&sm.conf, 1, RAFT_VOTER);
    raft_conf_add(&sm.conf, 9, RAFT_LEARNER);
    REQUIRE_EQ(raft_snapshot_meta_encode(&sm, &b), 0);
    REQUIRE_EQ(raft_snapshot_meta_decode(b.data, b.len, &sm2), 0);
    CHECK_EQ(sm2.index, 100);
    CHECK_EQ(sm2.conf_index, 90);
    CHECK_EQ(sm2.conf.n, 2);
    CHECK_EQ(sm2.conf.servers[1].id, 9);
    /* A hard state is not a snapshot meta: the kind byte differs. */
    cn_buf_reset(&b);
    REQUIRE_EQ(raft_hard_state_encode(&hs, &b), 0);
    CHECK_EQ(raft_snapshot_meta_decode(b.data, b.len, &sm2), CN_ECORRUPT);
    cn_buf_close(&b);
}

TEST(raft_codec_conf_rejects_duplicates_and_bad_roles)
{
    struct raft_conf c, c2;
    memset(&c, 0, sizeof(c));
    raft_conf_add(&c, 1, RAFT_VOTER);
    raft_conf_add(&c, 2, RAFT_VOTER);
    CHECK_EQ(raft_conf_add(&c, 2, RAFT_LEARNER), CN_EEXIST);
    CHECK_EQ(raft_conf_add(&c, 0, RAFT_VOTER), CN_EINVAL);
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(raft_conf_encode(&c, &b), 0);
    REQUIRE_EQ(raft_conf_decode(b.data, b.len, &c2), 0);
    CHECK_EQ(c2.n, 2);
    /* Make the second id equal to the first. */
    b.data[3 + 9] = 1;
    reseal(&b);
    CHECK_EQ(raft_conf_decode(b.data, b.len, &c2), CN_ECORRUPT);
    cn_buf_close(&b);
}

TEST(raft_codec_encode_failure_leaves_buffer_unchanged)
{
    struct raft_msg m;
    struct raft_entry es[3];
    sample_append(&m, es);
    struct cn_buf b;
    cn_buf_init(&b);
    REQUIRE_EQ(cn_buf_append(&b, "keep", 4), 0);
    cn_mem_fault_arm(1, 1);
    int rc = raft_msg_encode(&m, &b);
    cn_mem_fault_disarm();
    CHECK_EQ(rc, CN_ENOMEM);
    CHECK_EQ(b.len, 4);
    cn_buf_close(&b);
}
