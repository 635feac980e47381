/*
 * Unit tests for the child tables of src/store/store_tree.c: open
 * addressing with linear probing and back-shift deletion. A directory is
 * filled, thinned in a random order and refilled, and after every step
 * every name ever used is looked up and checked against what the children
 * list says is there; the table's slots are also checked to hold exactly
 * the children with their hashes, each reachable from its home slot.
 */
#include <stdio.h>
#include <string.h>

#include "base/cn_prng.h"
#include "store/store_int.h"
#include "tap.h"

#define NAMES 3000

static void name_of(unsigned i, char *buf, size_t cap, size_t *len)
{
    *len = (size_t)snprintf(buf, cap, "k%u", i);
}

/* Every slot holds a child, and probing from its home reaches it over
 * occupied slots only; the number of filled slots is the count. */
static int table_ok(const struct store_node *d)
{
    uint32_t nb = d->u.dir.nbuckets, mask = nb - 1, used = 0;
    if (nb == 0)
        return 1;
    if (d->u.dir.count > nb / 4 * 3)
        return 0;
    for (uint32_t i = 0; i < nb; i++) {
        const struct store_node *c = d->u.dir.buckets[i].node;
        if (c == NULL)
            continue;
        used++;
        if (c->parent != d || d->u.dir.buckets[i].hash != c->hash)
            return 0;
        for (uint32_t j = c->hash & mask; j != i; j = (j + 1) & mask)
            if (d->u.dir.buckets[j].node == NULL)
                return 0;
    }
    return used == d->u.dir.count;
}

TEST(store_dir_table_finds_exactly_its_children_through_churn)
{
    struct store_node *d = store_node_new("d", 1, 1);
    REQUIRE(d != NULL);
    static struct store_node *nodes[NAMES];
    static int in[NAMES];
    struct cn_prng prng;
    cn_prng_seed(&prng, 7);
    char name[32];
    size_t len;
    int bad = 0;
    for (int round = 0; round < 4 && !bad; round++) {
        /* fill every name not in */
        for (unsigned i = 0; i < NAMES; i++) {
            if (in[i])
                continue;
            name_of(i, name, sizeof(name), &len);
            nodes[i] = store_node_new(name, len, 0);
            REQUIRE(nodes[i] != NULL);
            REQUIRE_EQ(store_dir_reserve(d), CN_OK);
            store_dir_link(d, nodes[i]);
            in[i] = 1;
        }
        /* remove about 2/3 in a random order */
        for (unsigned k = 0; k < NAMES * 2; k++) {
            unsigned i = (unsigned)cn_prng_below(&prng, NAMES);
            if (!in[i])
                continue;
            store_dir_unlink(d, nodes[i]);
            store_node_free_tree(nodes[i]);
            nodes[i] = NULL;
            in[i] = 0;
        }
        CHECK(table_ok(d));
        unsigned count = 0;
        for (unsigned i = 0; i < NAMES; i++) {
            name_of(i, name, sizeof(name), &len);
            struct store_node *f =
                store_dir_find(d, name, len, store_hash(name, len));
            if (f != (in[i] ? nodes[i] : NULL))
                bad++;
            count += (unsigned)in[i];
        }
        CHECK_EQ(bad, 0);
        CHECK_EQ(d->u.dir.count, count);
        CHECK(d->u.dir.nbuckets >= 32);
    }
    /* empty it: the table stays valid down to no children */
    for (unsigned i = 0; i < NAMES; i++) {
        if (!in[i])
            continue;
        store_dir_unlink(d, nodes[i]);
        store_node_free_tree(nodes[i]);
        in[i] = 0;
        if (i % 97 == 0)
            CHECK(table_ok(d));
    }
    CHECK_EQ(d->u.dir.count, 0u);
    CHECK(table_ok(d));
    name_of(1, name, sizeof(name), &len);
    CHECK(store_dir_find(d, name, len, store_hash(name, len)) == NULL);
    store_node_free_tree(d);
}

TEST(store_dir_reserve_n_sizes_the_table_once)
{
    struct store_node *d = store_node_new("d", 1, 1);
    REQUIRE(d != NULL);
    REQUIRE_EQ(store_dir_reserve_n(d, 1000), CN_OK);
    uint32_t nb = d->u.dir.nbuckets;
    CHECK(nb >= 1000u * 4 / 3);
    CHECK((nb & (nb - 1)) == 0);
    char name[32];
    size_t len;
    for (unsigned i = 0; i < 1000; i++) {
        name_of(i, name, sizeof(name), &len);
        struct store_node *n = store_node_new(name, len, 0);
        REQUIRE(n != NULL);
        REQUIRE_EQ(store_dir_reserve(d), CN_OK);
        store_dir_link(d, n);
    }
    CHECK_EQ(d->u.dir.nbuckets, nb); /* no growth on the way */
    CHECK(table_ok(d));
    /* growing keeps every child: the table is rebuilt from the list */
    REQUIRE_EQ(store_dir_reserve_n(d, 5000), CN_OK);
    CHECK(d->u.dir.nbuckets > nb);
    CHECK(table_ok(d));
    name_of(999, name, sizeof(name), &len);
    CHECK(store_dir_find(d, name, len, store_hash(name, len)) != NULL);
    store_node_free_tree(d);
}
