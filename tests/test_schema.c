/*
** tests/test_schema.c: the pieces of schema/ below the public API: the
** B+tree against a sorted-array model, and the record codec on every type
** and on damaged bytes.
*/
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "schema/schema.h"
#include "tests/testutil.h"

static rl__blk_db *new_db(const char *name, uint32_t bs)
{
    rl__blk_options o;
    rl__blk_db *db = NULL;
    rl__err err;
    memset(&o, 0, sizeof o);
    o.flags = RL__BLK_CREATE;
    o.block_size = bs;
    o.durability = RL__DURABLE_OFF;
    unlink(tu_path(name));
    if (rl__blk_open(tu_path(name), &o, &db, &err) != RL_OK)
        fail_msg("open: %s", err.msg);
    return db;
}

/* ---- B+tree ---------------------------------------------------------------- */

/* Keys: 8-byte big-endian numbers, optionally followed by a suffix that
 * makes them of varying length; values: bytes derived from the key. */
typedef struct kv {
    uint64_t k;
    uint32_t vlen;
    int live;
} kv;

static int bt_layout = RL__BT_BYTES; /* the cell layout btree_run tests */

/* For RL__BT_IDS trees, key k is the id key of id_of(k): of every length,
 * negative ones too, in the same order as k. */
static int64_t id_of(uint64_t k)
{
    return (int64_t)(k * 7919) - 300000;
}

static size_t make_key(uint64_t k, uint8_t *out)
{
    size_t n = 8 + (size_t)(k % 5) * 3; /* 8 to 20 bytes */
    if (bt_layout == RL__BT_IDS)
        return rl__id_key(id_of(k), out);
    if (bt_layout == RL__BT_INDEX(1)) { /* a BLOB value (k, zeros escaped), then the id k */
        uint8_t v[12] = {0};
        rl__buf b = {out, 0, 64};
        rl_value val;
        for (int i = 0; i < 8; i++)
            v[i] = (uint8_t)(k >> (56 - 8 * i));
        val = rl_blob(v, 8 + k % 5);
        assert_int_equal(rl__ix_encode_value(&b, &val), RL_OK);
        return b.n + rl__id_key((int64_t)k, out + b.n);
    }
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(k >> (56 - 8 * i));
    for (size_t i = 8; i < n; i++)
        out[i] = (uint8_t)(k * i);
    return n;
}

/* The k whose key make_key made. */
static uint64_t key_num(const uint8_t *key, size_t kn)
{
    uint64_t num = 0;
    int64_t id;
    if (bt_layout == RL__BT_IDS) {
        assert_int_equal(rl__key_id(key, kn, &id), RL_OK);
        return (uint64_t)(id + 300000) / 7919;
    }
    if (bt_layout == RL__BT_INDEX(1)) {
        size_t vn = rl__ix_component_len(key, kn);
        assert_int_equal(rl__key_id(key + vn, kn - vn, &id), RL_OK);
        return (uint64_t)id;
    }
    for (int i = 0; i < 8; i++)
        num = (num << 8) | key[i];
    return num;
}

static void make_val(uint64_t k, uint32_t n, uint8_t *out)
{
    for (uint32_t i = 0; i < n; i++)
        out[i] = (uint8_t)(k + i * 7);
}

static void expect_val(rl__blk_txn *t, uint64_t root, uint64_t k, uint32_t vlen)
{
    uint8_t key[64], want[200];
    rl__buf got = {0};
    size_t kn = make_key(k, key);
    assert_int_equal(rl__bt_get(t, root, key, kn, &got, NULL), RL_OK);
    make_val(k, vlen, want);
    assert_int_equal(got.n, vlen);
    assert_memory_equal(got.p, want, vlen);
    rl__buf_free(&got);
}

static void btree_run(uint32_t bs, long steps, uint64_t seed)
{
    rl__blk_db *db = new_db("bt.rdb", bs);
    rl__blk_txn *t;
    uint64_t universe = (uint64_t)steps, live = 0;
    rl__bt_space sp;
    kv *model = calloc(universe, sizeof *model);
    uint64_t root, rs = seed;
    uint32_t vmax = bs >= 4096 ? 200 : 60;
    int keys_only = bt_layout >= RL__BT_KEYS; /* no values, no flag */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__bt_create(t, bt_layout, &root), RL_OK);
    rl__bt_finger f = {0, 0, 0}; /* one transaction's: zeroed at each begin */
    uint64_t prev_k = 0;
    for (long s = 0; s < steps; s++) {
        /* Every other key follows the last one, so that deletes and reads
         * through the finger find its leaf, between puts that split it. */
        uint64_t op = tu_rand(&rs) % 10,
                 k = tu_rand(&rs) % 2 ? (prev_k + 1) % universe : tu_rand(&rs) % universe;
        uint8_t key[64], val[200];
        size_t kn = make_key(k, key);
        uint32_t vlen = keys_only ? 0 : (uint32_t)(tu_rand(&rs) % vmax);
        unsigned flag = !keys_only && (k & 1) ? RL__BT_FLAG : 0;
        make_val(k, vlen, val);
        if (op < 5) { /* insert, every other one through the finger */
            int rc = s % 2 ? rl__bt_put_near(t, &f, root, key, kn, val, vlen, flag)
                           : rl__bt_put(t, root, key, kn, val, vlen, flag);
            assert_int_equal(rc, model[k].live ? RL_DUPLICATE : RL_OK);
            if (!model[k].live) {
                model[k] = (kv){k, vlen, 1};
                live++;
            }
        } else if (op < 7) { /* replace, with a value of another length */
            assert_int_equal(rl__bt_put_near(t, s % 2 ? &f : NULL, root, key, kn, val, vlen,
                                             RL__BT_REPLACE | flag),
                             RL_OK);
            live += !model[k].live;
            model[k] = (kv){k, vlen, 1};
        } else if (op < 8) { /* delete */
            assert_int_equal(rl__bt_delete(t, root, key, kn),
                             model[k].live ? RL_OK : RL_NOTFOUND);
            live -= model[k].live != 0;
            model[k].live = 0;
        } else { /* through the finger: a take giving the value back, or a get */
            rl__buf got = {0};
            int rc = op < 9 ? rl__bt_take_near(t, &f, root, key, kn, &got, NULL)
                            : rl__bt_get_near(t, &f, root, key, kn, &got, NULL);
            assert_int_equal(rc, model[k].live ? RL_OK : RL_NOTFOUND);
            if (model[k].live) {
                assert_int_equal(got.n, model[k].vlen);
                make_val(k, model[k].vlen, val);
                assert_memory_equal(got.p, val, got.n);
            }
            rl__buf_free(&got);
            if (op < 9) {
                live -= model[k].live != 0;
                model[k].live = 0;
            }
        }
        prev_k = k;
        if (s % 997 == 0) { /* commit now and then: nodes get copied on write */
            assert_int_equal(rl__bt_check(t, root, &sp), RL_OK); /* every node's cells */
            assert_int_equal(sp.entries, live);
            assert_int_equal(rl__blk_commit(t), RL_OK);
            assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
            memset(&f, 0, sizeof f);
        }
    }
    /* Every live key reads back, and an in-order walk sees exactly them. */
    {
        rl__bt_iter it;
        const uint8_t *k, *v;
        size_t kn, vn;
        uint64_t prev = 0, seen = 0;
        int first = 1;
        for (uint64_t k2 = 0; k2 < universe; k2++)
            if (model[k2].live)
                expect_val(t, root, k2, model[k2].vlen);
        assert_int_equal(rl__bt_seek(t, root, NULL, 0, &it), RL_OK);
        int flag = -1;
        while (rl__bt_next(&it, &k, &kn, &v, &vn, &flag) == RL_OK) {
            uint64_t num = key_num(k, kn);
            assert_true(first || num > prev);
            assert_true(num < universe && model[num].live);
            assert_int_equal(vn, model[num].vlen);
            /* the cell flag round-trips */
            assert_int_equal(flag, keys_only ? 0 : (int)(num & 1));
            prev = num;
            first = 0;
            seen++;
        }
        rl__bt_iter_close(&it);
        assert_int_equal(seen, live);
    }
    assert_int_equal(rl__bt_check(t, root, &sp), RL_OK);
    assert_int_equal(sp.entries, live);
    assert_true(sp.leaves < sp.nodes && sp.used < sp.capacity && sp.leaf_used < sp.used);
    print_message("B+tree, layout %d, %u-byte blocks: %llu keys in %llu nodes\n", bt_layout, bs,
                  (unsigned long long)live, (unsigned long long)sp.nodes);
    assert_int_equal(rl__bt_free(t, root), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    free(model);
}

static void test_btree_random(void **state)
{
    (void)state;
    for (bt_layout = RL__BT_BYTES; bt_layout <= RL__BT_INDEX(1); bt_layout++) {
        btree_run(512, tu_scale(20000), 7);
        btree_run(4096, tu_scale(20000), 8);
    }
    bt_layout = RL__BT_BYTES;
}

/* A tree of ids 1..n, each with the value val (vn bytes), put one by one. */
static uint64_t id_tree(rl__blk_txn *t, uint64_t n, const uint8_t *val, size_t vn)
{
    uint8_t key[RL__ID_KEY_MAX];
    uint64_t root;
    assert_int_equal(rl__bt_create(t, RL__BT_IDS, &root), RL_OK);
    for (uint64_t k = 1; k <= n; k++) {
        size_t kn = rl__id_key((int64_t)k, key);
        assert_int_equal(rl__bt_put(t, root, key, kn, val, vn, 0), RL_OK);
    }
    return root;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Searches in a tree of id keys of every length (1 to 9 bytes, both
 * signs): every other id of a sorted list is in the tree, put in shuffled
 * order; get finds exactly those, and seek from any id of the list stops
 * at the first stored id at or after it. */
static void test_btree_id_keys_every_length(void **state)
{
    rl__blk_db *db = new_db("btids.rdb", 512);
    rl__blk_txn *t;
    int64_t ids[64 * 6 + 2];
    size_t n = 0, m = 0;
    uint8_t key[RL__ID_KEY_MAX], val[4] = "val";
    uint64_t root;
    (void)state;
    for (int s = 0; s < 63; s++) {
        int64_t p = (int64_t)1 << s;
        int64_t around[6] = {p - 1, p, p + 1, -p + 1, -p, -p - 1};
        memcpy(ids + n, around, sizeof around);
        n += 6;
    }
    ids[n++] = INT64_MIN;
    ids[n++] = INT64_MAX;
    qsort(ids, n, sizeof *ids, cmp_i64);
    for (size_t i = 0; i < n; i++) /* drop duplicates */
        if (m == 0 || ids[m - 1] != ids[i])
            ids[m++] = ids[i];
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__bt_create(t, RL__BT_IDS, &root), RL_OK);
    assert_true((m / 2) % 37 != 0); /* so that j visits every stored id once */
    for (size_t i = 0, j = 0; i < m / 2; i++, j = (j + 37) % (m / 2)) {
        size_t kn = rl__id_key(ids[2 * j], key);
        assert_int_equal(rl__bt_put(t, root, key, kn, val, 4, 0), RL_OK);
    }
    for (size_t i = 0; i < m; i++) {
        size_t kn = rl__id_key(ids[i], key), fkn, vn;
        size_t next = i + i % 2; /* the first stored id >= ids[i] */
        const uint8_t *fk, *v;
        int64_t found = 0;
        rl__bt_iter it;
        assert_int_equal(rl__bt_get(t, root, key, kn, NULL, NULL),
                         i == next && i / 2 < m / 2 ? RL_OK : RL_NOTFOUND);
        assert_int_equal(rl__bt_seek(t, root, key, kn, &it), RL_OK);
        if (next / 2 < m / 2) {
            assert_int_equal(rl__bt_next(&it, &fk, &fkn, &v, &vn, NULL), RL_OK);
            assert_int_equal(rl__key_id(fk, fkn, &found), RL_OK);
            assert_true(found == ids[next]);
        } else {
            assert_int_equal(rl__bt_next(&it, &fk, &fkn, &v, &vn, NULL), RL_DONE);
        }
        rl__bt_iter_close(&it);
    }
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* A finger must not lead into a leaf freed since: here the leaf's logical
 * number goes to another tree, which then holds keys around the one taken
 * (the tree's epoch is what tells the finger it moved). */
static void test_btree_finger_after_free(void **state)
{
    rl__blk_db *db = new_db("btfinger.rdb", 512);
    rl__blk_txn *t;
    rl__bt_finger f = {0, 0, 0};
    rl__bt_iter it;
    uint8_t key[RL__ID_KEY_MAX], val[8] = "payload";
    const uint8_t *k, *v;
    size_t kn = rl__id_key(500, key), fkn, vn;
    uint64_t a, b;
    int64_t probe = 0;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    a = id_tree(t, 2000, val, 8);
    assert_int_equal(rl__bt_take_near(t, &f, a, key, kn, NULL, NULL), RL_OK);
    assert_true(f.leaf != 0 && f.leaf != a);
    assert_int_equal(rl__bt_clear(t, a), RL_OK); /* frees the finger's leaf */
    b = id_tree(t, 2000, val, 8);                /* whose number b takes again */
    /* A key of b's leaf that took the number, not its first or last. */
    assert_int_equal(rl__bt_seek(t, b, NULL, 0, &it), RL_OK);
    while (rl__bt_next(&it, &k, &fkn, &v, &vn, NULL) == RL_OK && probe == 0)
        if (it.leaf == f.leaf && rl__bt_next(&it, &k, &fkn, &v, &vn, NULL) == RL_OK)
            assert_int_equal(rl__key_id(k, fkn, &probe), RL_OK);
    rl__bt_iter_close(&it);
    assert_true(probe > 0);
    kn = rl__id_key(probe, key);
    assert_int_equal(rl__bt_put(t, a, key, kn, val, 8, 0), RL_OK);
    assert_int_equal(rl__bt_take_near(t, &f, a, key, kn, NULL, NULL), RL_OK);
    assert_int_equal(rl__bt_get(t, a, key, kn, NULL, NULL), RL_NOTFOUND);
    assert_int_equal(rl__bt_get(t, b, key, kn, NULL, NULL), RL_OK); /* b untouched */
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
}

static void test_btree_sequential(void **state)
{
    rl__blk_db *db = new_db("btseq.rdb", 512);
    rl__blk_txn *t;
    uint64_t root, nodes, n = (uint64_t)tu_scale(20000), leaves;
    rl__bt_space sp;
    uint8_t key[RL__ID_KEY_MAX], val[8] = "payload";
    size_t kn;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    root = id_tree(t, n, val, 8);
    assert_int_equal(rl__bt_stats(t, root, &sp), RL_OK);
    assert_int_equal(sp.entries, n);
    nodes = sp.nodes;
    /* A cell of an id tree is the key (3 bytes for these ids), the value
     * length (1) and the value (8), plus a 2-byte slot: 14 per cell, and
     * (472 - 8) / 14 = 33 per 512-byte leaf; ascending keys fill them. */
    leaves = (n + 32) / 33;
    print_message("%llu ascending keys: %llu nodes over %llu full leaves\n",
                  (unsigned long long)n, (unsigned long long)nodes, (unsigned long long)leaves);
    assert_true(nodes <= leaves + leaves / 8 + 4);
    for (uint64_t k = 1; k <= n; k += 37) {
        kn = rl__id_key((int64_t)k, key);
        assert_int_equal(rl__bt_get(t, root, key, kn, NULL, NULL), RL_OK);
    }
    kn = rl__id_key((int64_t)n + 1, key);
    assert_int_equal(rl__bt_get(t, root, key, kn, NULL, NULL), RL_NOTFOUND);
    kn = rl__id_key(0, key);
    assert_int_equal(rl__bt_get(t, root, key, kn, NULL, NULL), RL_NOTFOUND);
    { /* rebuilt, it would take about as many leaves (keys of ids < 2^14 are shorter) */
        uint64_t full = rl__bt_full_leaves(512 - 40, 0, &sp);
        assert_true(full <= leaves && full + 1 + leaves / 33 >= leaves);
    }
    /* Seek lands on the first key >= the one asked for. */
    {
        rl__bt_iter it;
        const uint8_t *k, *v;
        size_t kfound, vn;
        int64_t id = 0;
        kn = rl__id_key(100, key);
        assert_int_equal(rl__bt_seek(t, root, key, kn, &it), RL_OK);
        assert_int_equal(rl__bt_next(&it, &k, &kfound, &v, &vn, NULL), RL_OK);
        assert_int_equal(rl__key_id(k, kfound, &id), RL_OK);
        assert_int_equal(id, 100);
        rl__bt_iter_close(&it);
    }
    /* Damage: the root names its first child as every child. A walk that
     * followed it would visit that subtree once per cell (and fanout^depth
     * times if every level did so); the leaf chain stops it at once. */
    {
        rl__blk_ref ref;
        uint64_t first;
        assert_int_equal(rl__blk_block_get(t, root, 1, &ref), RL_OK);
        assert_int_equal(ref.data[0], 2); /* interior */
        first = ref.next;
        for (uint32_t i = 0; i < rl__get16(ref.data + 2); i++) {
            size_t off = rl__get16(ref.data + 8 + 2 * i);
            /* an id tree's interior cell: the id key (its length in its
             * first byte), then the u48 child */
            rl__put48(ref.wdata + off + 1 + (ref.data[off] - 0x80), first);
        }
        rl__blk_block_put(&ref);
        assert_int_equal(rl__bt_stats(t, root, &sp), RL_CORRUPT);
        assert_non_null(strstr(rl__blk_txn_err(t)->msg, "leaf chain"));
    }
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* Damage: the last leaf links back to the first, so the leaf chain loops.
 * A scan that copies what it reads into a new tree (vacuum does) makes the
 * file grow as fast as it walks, so a bound on steps by the file's block
 * count never ends it: the keys going back must. The builder, fed keys
 * out of order, refuses them too (it fails without either check: the CI
 * hang of fuzz_db in rl_commit's autovacuum). */
/* Each cell layout takes only the bytes it needs, refuses entries not of
 * its form, and a node of another layout in a tree is damage. */
static void test_btree_layouts(void **state)
{
    rl__blk_db *db = new_db("btlayout.rdb", 512);
    rl__blk_txn *t;
    uint64_t ids, keys, n = 2000, second = 0;
    rl__bt_space sp;
    rl__bt_iter it;
    const uint8_t *k, *v;
    size_t kn, vn;
    uint8_t key[RL__ID_KEY_MAX], val[10] = "ten bytes", text[8] = "abcdefgh";
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__bt_create(t, RL__BT_INDEX(RL__BT_INDEX_MAX) + 1, &ids), RL_MISUSE);
    ids = id_tree(t, n, val, sizeof val);
    assert_int_equal(rl__bt_create(t, RL__BT_KEYS, &keys), RL_OK);
    for (uint64_t i = 0; i < n; i++) {
        for (int b = 0; b < 8; b++)
            key[b] = (uint8_t)(i >> (56 - 8 * b));
        assert_int_equal(rl__bt_put(t, keys, key, 8, NULL, 0, 0), RL_OK);
    }
    /* Leaf bytes: header and slots, then an id cell is key, value length
     * and value (ids 256..2000: 3 + 1 + 10), a key-only cell the key's
     * length and the key (1 + 8). */
    assert_int_equal(rl__bt_stats(t, ids, &sp), RL_OK);
    assert_int_equal(sp.leaf_used, 8 * sp.leaves + 2 * n + 255 * (2 + 1 + 10) + (n - 255) * (3 + 1 + 10));
    assert_int_equal(rl__bt_stats(t, keys, &sp), RL_OK);
    assert_int_equal(sp.leaf_used, 8 * sp.leaves + 2 * n + n * (1 + 8));
    /* an index tree of one INTEGER column: a cell is the key alone */
    {
        uint64_t ix;
        rl__buf kb = {0};
        assert_int_equal(rl__bt_create(t, RL__BT_INDEX(1), &ix), RL_OK);
        for (uint64_t i = 0; i < n; i++) {
            rl_value iv = rl_int((int64_t)(i % 7) - 3);
            kb.n = 0;
            assert_int_equal(rl__ix_encode_value(&kb, &iv), RL_OK);
            assert_int_equal(rl__buf_reserve(&kb, RL__ID_KEY_MAX), RL_OK);
            kb.n += rl__id_key((int64_t)i + 1, kb.p + kb.n);
            assert_int_equal(rl__bt_put(t, ix, kb.p, kb.n, NULL, 0, 0), RL_OK);
        }
        assert_int_equal(rl__bt_stats(t, ix, &sp), RL_OK);
        { /* each cell: the value's encoding and the id's, and its slot */
            uint64_t want = 8 * sp.leaves;
            for (uint64_t i = 0; i < n; i++)
                want += 2 + rl__id_key((int64_t)(i % 7) - 3, key) + rl__id_key((int64_t)i + 1, key);
            assert_int_equal(sp.leaf_used, want);
        }
        /* a key whose encodings do not add up to its length */
        assert_int_equal(rl__bt_put(t, ix, kb.p, kb.n - 1, NULL, 0, 0), RL_MISUSE);
        assert_int_equal(rl__bt_put(t, ix, text, 8, NULL, 0, 0), RL_MISUSE);
        rl__buf_free(&kb);
    }
    /* entries of the wrong form */
    assert_int_equal(rl__bt_put(t, ids, text, 3, val, 1, 0), RL_MISUSE);
    kn = rl__id_key(100000, key);
    assert_int_equal(rl__bt_put(t, ids, key, kn - 1, val, 1, 0), RL_MISUSE);
    assert_int_equal(rl__bt_put(t, keys, text, 8, val, 1, 0), RL_MISUSE);
    assert_int_equal(rl__bt_put(t, keys, text, 8, NULL, 0, RL__BT_FLAG), RL_MISUSE);
    assert_int_equal(rl__bt_put(t, keys, text, 8, NULL, 0, 0), RL_OK);
    /* a leaf that says it has another layout */
    assert_int_equal(rl__bt_seek(t, ids, NULL, 0, &it), RL_OK);
    while (!second && rl__bt_next(&it, &k, &kn, &v, &vn, NULL) == RL_OK)
        if (kn == 3) /* a leaf past the first holds a 3-byte key */
            second = it.leaf;
    rl__bt_iter_close(&it);
    {
        rl__blk_ref ref;
        assert_int_equal(rl__blk_block_get(t, second, 1, &ref), RL_OK);
        ref.wdata[1] = RL__BT_KEYS;
        rl__blk_block_put(&ref);
    }
    assert_int_equal(rl__bt_stats(t, ids, &sp), RL_CORRUPT);
    assert_non_null(strstr(rl__blk_txn_err(t)->msg, "layout"));
    assert_int_equal(rl__bt_seek(t, ids, NULL, 0, &it), RL_OK);
    while (rl__bt_next(&it, &k, &kn, &v, &vn, NULL) == RL_OK)
        ;
    rl__bt_iter_close(&it);
    assert_non_null(strstr(rl__blk_txn_err(t)->msg, "another tree's leaf"));
    rl__blk_rollback(t);
    rl__blk_close(db);
}

static void test_btree_chain_going_back(void **state)
{
    rl__blk_db *db = new_db("btloop.rdb", 512);
    rl__blk_txn *t;
    rl__bt_iter it;
    rl__bt_builder *b;
    rl__blk_ref ref;
    uint64_t root, copy, first, last = 0, n = 600, seen = 0;
    uint8_t key[RL__ID_KEY_MAX], val[40] = "a value that fills leaves";
    const uint8_t *k, *v;
    size_t kn, vn;
    int rc;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    root = id_tree(t, n, val, sizeof val);
    assert_int_equal(rl__bt_seek(t, root, NULL, 0, &it), RL_OK);
    first = it.leaf;
    while (rl__bt_next(&it, &k, &kn, &v, &vn, NULL) == RL_OK)
        if (it.ref.page_)
            last = it.leaf;
    rl__bt_iter_close(&it);
    assert_true(last != first);
    assert_int_equal(rl__blk_block_get(t, last, 1, &ref), RL_OK);
    rl__blk_block_set_next(&ref, first);
    rl__blk_block_put(&ref);

    /* copy the looped tree into a new one, as vacuum does */
    assert_int_equal(rl__bt_create(t, RL__BT_IDS, &copy), RL_OK);
    assert_int_equal(rl__bt_build_begin(t, copy, &b), RL_OK);
    assert_int_equal(rl__bt_seek(t, root, NULL, 0, &it), RL_OK);
    while ((rc = rl__bt_next(&it, &k, &kn, &v, &vn, NULL)) == RL_OK && seen++ < 10 * n) {
        uint8_t kc[RL__ID_KEY_MAX];
        memcpy(kc, k, kn); /* the iterator's pointers die when it moves on */
        if (rl__bt_build_add(b, kc, kn, v, vn, 0) != RL_OK)
            fail_msg("the builder refused key %llu", (unsigned long long)seen);
    }
    rl__bt_iter_close(&it);
    assert_int_equal(rc, RL_CORRUPT);
    assert_int_equal(seen, n);
    assert_non_null(strstr(rl__blk_txn_err(t)->msg, "goes back"));
    rl__bt_build_abort(b);

    /* the builder on its own: a repeated key, then a smaller one */
    assert_int_equal(rl__bt_create(t, RL__BT_IDS, &copy), RL_OK);
    assert_int_equal(rl__bt_build_begin(t, copy, &b), RL_OK);
    kn = rl__id_key(5, key);
    assert_int_equal(rl__bt_build_add(b, key, kn, val, 4, 0), RL_OK);
    assert_int_equal(rl__bt_build_add(b, key, kn, val, 4, 0), RL_CORRUPT);
    kn = rl__id_key(4, key);
    assert_int_equal(rl__bt_build_add(b, key, kn, val, 4, 0), RL_CORRUPT);
    assert_non_null(strstr(rl__blk_txn_err(t)->msg, "out of key order"));
    kn = rl__id_key(6, key);
    assert_int_equal(rl__bt_build_add(b, key, kn, val, 4, 0), RL_OK);
    assert_int_equal(rl__bt_build_end(b), RL_OK);
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* The bulk builder: trees of every shape (empty, one leaf, many levels
 * with long keys in 512-byte blocks) hold exactly what was added, in
 * order, with full nodes, and pass the whole-tree walk. */
static void test_btree_builder(void **state)
{
    static const long counts[] = {0, 1, 2, 30, 31, 500, 20000};
    rl__blk_db *db = new_db("build.rdb", 512);
    (void)state;
    for (unsigned c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        long n = counts[c] > 1000 ? tu_scale(counts[c]) : counts[c];
        unsigned reserve = c % 2 ? 20 : 0; /* percent of each leaf left free */
        rl__blk_txn *t;
        rl__bt_builder *b;
        rl__bt_space sp;
        rl__bt_iter it;
        uint64_t root;
        long seen = 0;
        assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        assert_int_equal(rl__bt_create(t, RL__BT_BYTES, &root), RL_OK);
        assert_int_equal(rl__bt_build_begin(t, root, &b), RL_OK);
        rl__bt_build_leave_free(b, reserve);
        for (long i = 0; i < n; i++) {
            uint8_t key[120];
            size_t kn = (size_t)snprintf((char *)key, sizeof key, "%08ld", i);
            memset(key + kn, 'k', (size_t)(i % 90)); /* long keys: deep interiors */
            kn += (size_t)(i % 90);
            assert_int_equal(rl__bt_build_add(b, key, kn, key, (size_t)(i % 7), i & 1 ? RL__BT_FLAG : 0),
                             RL_OK);
        }
        assert_int_equal(rl__bt_build_end(b), RL_OK);
        assert_int_equal(rl__bt_stats(t, root, &sp), RL_OK); /* checks the leaf chain */
        assert_int_equal(sp.entries, n);
        if (n > 100) /* full, but for the room asked for */
            assert_true(sp.leaves <= rl__bt_full_leaves(512 - 40, reserve, &sp) * 13 / 10 + 1);
        if (n > 100 && reserve)
            assert_true(sp.leaves >= rl__bt_full_leaves(512 - 40, 0, &sp) * 11 / 10);
        assert_int_equal(rl__bt_seek(t, root, NULL, 0, &it), RL_OK);
        for (;;) {
            const uint8_t *k, *v;
            size_t kn, vn;
            int flag;
            char want[24];
            int rc = rl__bt_next(&it, &k, &kn, &v, &vn, &flag);
            if (rc == RL_DONE)
                break;
            assert_int_equal(rc, RL_OK);
            snprintf(want, sizeof want, "%08ld", seen);
            assert_memory_equal(k, want, 8);
            assert_int_equal(kn, 8 + (size_t)(seen % 90));
            assert_int_equal(vn, (size_t)(seen % 7));
            assert_int_equal(flag, (int)(seen & 1));
            seen++;
        }
        rl__bt_iter_close(&it);
        assert_int_equal(seen, n);
        if (n > 0) { /* and it is a normal tree: lookups and changes work */
            uint8_t key[120];
            size_t kn = (size_t)snprintf((char *)key, sizeof key, "%08ld", n / 2);
            memset(key + kn, 'k', (size_t)(n / 2 % 90));
            kn += (size_t)(n / 2 % 90);
            assert_int_equal(rl__bt_get(t, root, key, kn, NULL, NULL), RL_OK);
            assert_int_equal(rl__bt_delete(t, root, key, kn), RL_OK);
            assert_int_equal(rl__bt_put(t, root, key, kn, NULL, 0, 0), RL_OK);
        }
        print_message("built %ld entries: %llu nodes, depth %u\n", n,
                      (unsigned long long)sp.nodes, sp.depth);
        assert_int_equal(rl__bt_free(t, root), RL_OK);
        assert_int_equal(rl__blk_commit(t), RL_OK);
    }
    rl__blk_close(db);
}

/* Id keys sort like the ids, and decode back. */
static void test_id_keys(void **state)
{
    static const int64_t ids[] = {INT64_MIN, INT64_MIN + 1, -4294967296LL, -65537, -65536,
                                  -257, -256, -255, -2, -1, 0, 1, 2, 255, 256, 65535, 65536,
                                  16777215, 16777216, 4294967296LL, INT64_MAX - 1, INT64_MAX};
    uint8_t a[RL__ID_KEY_MAX], b[RL__ID_KEY_MAX];
    (void)state;
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
        size_t an = rl__id_key(ids[i], a);
        int64_t back = 0;
        assert_int_equal(rl__key_id(a, an, &back), RL_OK);
        assert_int_equal(back, ids[i]);
        for (size_t j = i + 1; j < sizeof ids / sizeof *ids; j++) {
            size_t bn = rl__id_key(ids[j], b);
            int c = memcmp(a, b, an < bn ? an : bn);
            assert_true(c < 0 || (c == 0 && an < bn));
        }
    }
    assert_int_equal(rl__id_key(1000000, a), 4);
    assert_int_equal(rl__key_id((const uint8_t *)"\x85", 1, &(int64_t){0}), RL_CORRUPT);
}

/* ---- records ---------------------------------------------------------------- */

static void test_record_codec(void **state)
{
    rl_column cols[] = {{"i", RL_TINTEGER, 0, 0, NULL, 0}, {"r", RL_TREAL, 0, 0, NULL, 0},
                        {"c", RL_TCHAR, 8, 0, NULL, 0},    {"t", RL_TTEXT, 0, 0, NULL, 0},
                        {"b", RL_TBLOB, 0, 0, NULL, 0},    {"n", RL_TTEXT, 0, 0, NULL, 0}};
    rl__catalog *cat = calloc(1, sizeof *cat);
    rl__err err;
    rl__buf out = {0};
    rl__field f[7];
    uint64_t chains[7] = {0, 0, 0, 0, 0, 77, 0};
    rl_value v[7] = {rl_int(INT64_MIN), rl_int(INT64_MAX), rl_real(-0.0), rl_textn("a\0b ", 4),
                     rl_text("héllo"), rl_blob("\x00\xff", 2), rl_null()};
    (void)state;
    assert_int_equal(rl__cat_add(cat, "t1", cols, 6, 5, &err), RL_OK);
    v[5].v.b.n = 1000000; /* a large value: only its chain is stored */
    assert_int_equal(rl__rec_encode(&cat->tables[0], v, chains, &out), RL_OK);
    assert_int_equal(rl__rec_decode(&cat->tables[0], out.p, out.n, f, &err), RL_OK);
    assert_int_equal(f[1].i, INT64_MAX);
    assert_true(f[2].r == 0.0 && signbit(f[2].r));
    assert_int_equal(f[3].n, 4);
    assert_memory_equal(f[3].p, "a\0b ", 4);
    assert_int_equal(f[4].n, strlen("héllo"));
    assert_int_equal(f[5].chain, 77);
    assert_int_equal(f[5].n, 1000000);
    assert_int_equal(f[6].type, RL_TNULL);
    /* Every truncation of a valid body is detected. */
    for (size_t cut = 0; cut < out.n; cut++)
        assert_int_equal(rl__rec_decode(&cat->tables[0], out.p, cut, f, &err), RL_CORRUPT);
    rl__buf_free(&out);
    rl__cat_free(cat);
}

/* A write transaction of the schema layer on a closed file, below the
 * public API (to look at or damage what it wrote). */
static void begin_schema_txn(const char *path, rl__blk_db **bdb, rl__stx *s)
{
    rl__err err;
    assert_int_equal(rl__blk_open(path, NULL, bdb, &err), RL_OK);
    memset(s, 0, sizeof *s);
    assert_int_equal(rl__blk_begin(*bdb, 1, &s->bt), RL_OK);
    s->err = rl__blk_txn_err(s->bt);
    assert_int_equal(rl__cat_load(s->bt, &s->cat), RL_OK);
}

/* The index check notices an index that lost a key. */
static void test_index_verify_detects_damage(void **state)
{
    static const rl_column cols[] = {{"owner", RL_TINTEGER, 0, 0, "t", 0}};
    const char *path = tu_path("ixcheck.rdb");
    rl_db *db;
    rl_txn *t;
    rl__blk_db *bdb;
    rl__blk_txn *bt;
    rl__stx s;
    rl__buf report = {0};
    rl__bt_iter it;
    const uint8_t *k, *v;
    uint8_t first[64];
    size_t kn, vn;
    int problems = 0;
    (void)state;
    unlink(path);
    assert_int_equal(rl_open(path, NULL, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_create_table(t, "t", cols, 1), RL_OK);
    for (int i = 0; i < 50; i++)
        assert_int_equal(rl_insert(t, "t", (rl_value[]){rl_null(), rl_null()}, 2, NULL), RL_OK);
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);

    begin_schema_txn(path, &bdb, &s);
    bt = s.bt;
    assert_int_equal(s.cat->tables[0].nindexes, 1); /* the foreign key's index */
    assert_int_equal(rl__ix_verify(&s, 0, &report, &problems), RL_OK);
    assert_int_equal(problems, 0);
    assert_int_equal(rl__bt_seek(bt, s.cat->tables[0].indexes[0].root, NULL, 0, &it), RL_OK);
    assert_int_equal(rl__bt_next(&it, &k, &kn, &v, &vn, NULL), RL_OK);
    memcpy(first, k, kn);
    rl__bt_iter_close(&it);
    assert_int_equal(rl__bt_delete(bt, s.cat->tables[0].indexes[0].root, first, kn), RL_OK);
    assert_int_equal(rl__ix_verify(&s, 0, &report, &problems), RL_OK);
    assert_int_equal(problems, 2); /* the missing key, and the key count */
    assert_non_null(strstr((char *)report.p, "lacks row 1"));
    { /* a leaf whose frag no longer adds up with its cells: RL_CORRUPT */
        rl__tstate st;
        rl__blk_ref ref;
        assert_int_equal(rl__tbl_state(&s, 0, &st), RL_OK);
        assert_int_equal(rl__blk_block_get(bt, st.tree, 1, &ref), RL_OK);
        rl__put16(ref.wdata + 6, (uint16_t)(rl__get16(ref.data + 6) + 1));
        rl__blk_block_put(&ref);
        assert_int_equal(rl__ix_verify(&s, 0, &report, &problems), RL_CORRUPT);
        assert_non_null(strstr(rl__blk_txn_err(bt)->msg, "not adding up"));
    }
    rl__buf_free(&report);
    rl__cat_free(s.cat);
    rl__blk_rollback(bt);
    rl__blk_close(bdb);
}

/* The same damage through the public API: a table whose deleted rows are
 * due for automatic vacuum, and whose leaf chain loops. rl_commit must
 * fail with RL_CORRUPT (it hung in CI's fuzz_db) and leave the file as it
 * was; rl_check finds the damage. */
static void test_vacuum_of_looped_table_fails(void **state)
{
    static const rl_column cols[] = {{"note", RL_TTEXT, 0, 0, NULL, 0}};
    const char *path = tu_path("vacloop.rdb");
    rl_options o = {0, 512, RL_SYNC_OFF, 0, -1.0, 0};
    rl_db *db;
    rl_txn *t;
    rl__blk_db *bdb;
    rl__blk_txn *bt;
    rl__blk_ref ref;
    rl__tstate st;
    rl__stx s;
    rl__bt_iter it;
    const uint8_t *k, *v;
    size_t kn, vn;
    uint64_t first, last = 0, rows;
    char *report = NULL;
    (void)state;
    unlink(path);
    assert_int_equal(rl_open(path, &o, &db), RL_OK); /* autovacuum off */
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_create_table(t, "t", cols, 1), RL_OK);
    for (int i = 0; i < 3000; i++)
        assert_int_equal(rl_insert(t, "t", (rl_value[]){rl_null(), rl_text("a note of some length")},
                                   2, NULL),
                         RL_OK);
    for (int64_t id = 1; id <= 2000; id++)
        assert_int_equal(rl_delete(t, "t", id), RL_OK);
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);

    begin_schema_txn(path, &bdb, &s);
    bt = s.bt;
    assert_int_equal(rl__tbl_state(&s, 0, &st), RL_OK);
    assert_int_equal(st.dead, 2000);
    assert_int_equal(rl__bt_seek(bt, st.tree, NULL, 0, &it), RL_OK);
    first = it.leaf;
    while (rl__bt_next(&it, &k, &kn, &v, &vn, NULL) == RL_OK)
        last = it.leaf;
    rl__bt_iter_close(&it);
    assert_true(last != 0 && last != first);
    assert_int_equal(rl__blk_block_get(bt, last, 1, &ref), RL_OK);
    rl__blk_block_set_next(&ref, first);
    rl__blk_block_put(&ref);
    rl__cat_free(s.cat);
    assert_int_equal(rl__blk_commit(bt), RL_OK);
    rl__blk_close(bdb);

    o.autovacuum_ratio = 0; /* the default: due */
    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_commit(t), RL_CORRUPT);
    assert_non_null(strstr(rl_errmsg(db), "leaf chain")); /* loops, or goes back */
    assert_int_equal(rl_begin(db, RL_READ, &t), RL_OK);
    assert_int_equal(rl_count(t, "t", &rows), RL_OK);
    assert_int_equal(rows, 1000); /* unchanged */
    assert_int_equal(rl_check(t, &report), RL_CORRUPT);
    assert_non_null(report);
    free(report);
    rl_rollback(t);
    assert_int_equal(rl_close(db), RL_OK);
}

/* The table's tree root and its index's first leaf, as the file holds them. */
static void tree_places(const char *path, uint64_t *tree, uint64_t *index_leaf, uint64_t *dead)
{
    rl__blk_db *bdb;
    rl__stx s;
    rl__tstate st;
    rl__bt_iter it;
    begin_schema_txn(path, &bdb, &s);
    assert_int_equal(rl__tbl_state(&s, 0, &st), RL_OK);
    *tree = st.tree;
    *dead = st.dead;
    assert_int_equal(rl__bt_seek(s.bt, s.cat->tables[0].indexes[0].root, NULL, 0, &it), RL_OK);
    *index_leaf = it.leaf;
    rl__bt_iter_close(&it);
    rl__cat_free(s.cat);
    rl__blk_rollback(s.bt);
    rl__blk_close(bdb);
}

static void vacuum_table(const char *path, rl_options *o)
{
    rl_db *db;
    rl_txn *t;
    assert_int_equal(rl_open(path, o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_vacuum(t, "t"), RL_OK);
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);
}

/* rl_vacuum rebuilds a tree only when that gives back enough of it: a
 * packed table and its index stay where they are (the deleted-rows count
 * is reset all the same), a table that lost most of its rows is rebuilt. */
static void test_vacuum_rebuilds_what_pays(void **state)
{
    static const rl_column cols[] = {{"n", RL_TINTEGER, 0, 0, NULL, 0}};
    static const char *const n_col[] = {"n"};
    const char *path = tu_path("vacpays.rdb");
    rl_options o = {0, 512, RL_SYNC_OFF, 0, -1.0, 0};
    rl_db *db;
    rl_txn *t;
    uint64_t tree, leaf, dead, tree2, leaf2;
    (void)state;
    unlink(path);
    assert_int_equal(rl_open(path, &o, &db), RL_OK); /* autovacuum off */
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_create_table(t, "t", cols, 1), RL_OK);
    for (int i = 0; i < 6000; i++)
        assert_int_equal(rl_insert(t, "t", (rl_value[]){rl_null(), rl_int(i % 50)}, 2, NULL), RL_OK);
    assert_int_equal(rl_create_index(t, "t_n", "t", n_col, 1, 0), RL_OK);
    for (int64_t id = 1; id <= 20; id++) /* a few: not worth a rebuild */
        assert_int_equal(rl_delete(t, "t", id * 300), RL_OK);
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);
    tree_places(path, &tree, &leaf, &dead);
    assert_int_equal(dead, 20);
    vacuum_table(path, &o);
    tree_places(path, &tree2, &leaf2, &dead);
    assert_int_equal(tree2, tree);
    assert_int_equal(leaf2, leaf);
    assert_int_equal(dead, 0);

    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    for (int64_t id = 1; id <= 6000; id++)
        if (id % 300 != 0 && id % 4 != 0)
            assert_int_equal(rl_delete(t, "t", id), RL_OK);
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);
    vacuum_table(path, &o);
    tree_places(path, &tree2, &leaf2, &dead);
    assert_true(tree2 != tree);
    assert_true(leaf2 != leaf);
    assert_int_equal(dead, 0);
    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_READ, &t), RL_OK);
    {
        char *report = NULL;
        uint64_t rows;
        assert_int_equal(rl_count(t, "t", &rows), RL_OK);
        assert_int_equal(rows, 1500 - 20); /* the multiples of 300 went first */
        assert_int_equal(rl_check(t, &report), RL_OK);
        assert_string_equal(report, "");
        free(report);
    }
    rl_rollback(t);
    assert_int_equal(rl_close(db), RL_OK);
}

/* The index key of row id for test_vacuum_rebuilds_indexes_from_their_keys:
 * n (NULL for every 13th row) and a unique name of 6 to 40 bytes. */
static void vac_row(int id, rl_value *v, char *name)
{
    int len = snprintf(name, 48, "row %d of the indexed table", id);
    name[6 + id % 35 < len ? 6 + id % 35 : len] = 0;
    snprintf(name + strlen(name), 48 - strlen(name), "#%d", id);
    v[0] = rl_null();
    v[1] = id % 13 == 0 ? rl_null() : rl_int((id * 7) % 100 - 50);
    v[2] = rl_text(name);
}

/* A vacuum rebuilds an index from its own keys, read in order (not from
 * the table, not sorted): every entry survives, NULLs and long keys too,
 * a unique index still refuses a clash, and the index is packed anew. An
 * index whose keys are out of order is damage: the vacuum fails with
 * RL_CORRUPT and the file keeps what it held. */
static void test_vacuum_rebuilds_indexes_from_their_keys(void **state)
{
    static const rl_column cols[] = {{"n", RL_TINTEGER, 0, 0, NULL, 0},
                                     {"name", RL_TTEXT, 0, 0, NULL, 0}};
    static const char *const n_col[] = {"n"}, *const name_n[] = {"name", "n"};
    const char *path = tu_path("vacix.rdb");
    rl_options o = {0, 512, RL_SYNC_OFF, 0, -1.0, 0};
    rl_db *db;
    rl_txn *t;
    rl_value v[3];
    char name[48];
    uint64_t tree, leaf, dead, tree2, leaf2, n;
    int per_n[100] = {0}, rows = 0;
    (void)state;
    unlink(path);
    assert_int_equal(rl_open(path, &o, &db), RL_OK); /* autovacuum off */
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_create_table(t, "t", cols, 2), RL_OK);
    assert_int_equal(rl_create_index(t, "t_n", "t", n_col, 1, 0), RL_OK);
    assert_int_equal(rl_create_index(t, "t_name_n", "t", name_n, 2, 1), RL_OK);
    for (int id = 1; id <= 4000; id++) {
        vac_row(id, v, name);
        assert_int_equal(rl_insert(t, "t", v, 3, NULL), RL_OK);
    }
    for (int id = 1; id <= 4000; id++)
        if (id % 4 != 0)
            assert_int_equal(rl_delete(t, "t", id), RL_OK);
        else if (id % 13 != 0) {
            per_n[(id * 7) % 100]++;
            rows++;
        }
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);
    tree_places(path, &tree, &leaf, &dead);
    vacuum_table(path, &o);
    tree_places(path, &tree2, &leaf2, &dead);
    assert_true(leaf2 != leaf); /* t_n was rebuilt */
    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    {
        char *report = NULL;
        assert_int_equal(rl_check(t, &report), RL_OK); /* every index holds its rows' keys */
        assert_string_equal(report, "");
        free(report);
    }
    for (int k = 0; k < 100; k++) { /* counted through t_n */
        rl_query q = {0};
        rl_cond *c = rl_cmp("n", RL_EQ, rl_int(k - 50));
        q.table = "t";
        q.where = c;
        assert_int_equal(rl_query_count(t, &q, &n), RL_OK);
        assert_int_equal(n, per_n[k]);
        rows -= (int)n;
        rl_cond_free(c);
    }
    assert_int_equal(rows, 0);
    vac_row(400, v, name); /* a live row's (name, n) */
    assert_int_equal(rl_insert(t, "t", v, 3, NULL), RL_DUPLICATE);
    rl_rollback(t);
    assert_int_equal(rl_close(db), RL_OK);

    /* Damage: most rows go, then two keys of a leaf of t_n swap places. */
    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    for (int id = 4; id <= 3000; id += 4)
        assert_int_equal(rl_delete(t, "t", id), RL_OK);
    assert_int_equal(rl_commit(t), RL_OK);
    assert_int_equal(rl_close(db), RL_OK);
    tree_places(path, &tree, &leaf, &dead);
    {
        rl__blk_db *bdb;
        rl__stx s;
        rl__blk_ref ref;
        uint8_t two[4];
        begin_schema_txn(path, &bdb, &s);
        for (;;) { /* the first leaf of three keys or more */
            assert_int_equal(rl__blk_block_get(s.bt, leaf, 1, &ref), RL_OK);
            if (rl__get16(ref.data + 2) > 2)
                break;
            leaf = ref.next;
            rl__blk_block_put(&ref);
            assert_true(leaf != 0);
        }
        memcpy(two, ref.wdata + 8, 4); /* the first two slots (NODE_HDR 8) */
        memcpy(ref.wdata + 8, two + 2, 2);
        memcpy(ref.wdata + 10, two, 2);
        rl__blk_block_put(&ref);
        rl__cat_free(s.cat);
        assert_int_equal(rl__blk_commit(s.bt), RL_OK);
        rl__blk_close(bdb);
    }
    assert_int_equal(rl_open(path, &o, &db), RL_OK);
    assert_int_equal(rl_begin(db, RL_WRITE, &t), RL_OK);
    assert_int_equal(rl_vacuum(t, "t"), RL_CORRUPT);
    assert_non_null(strstr(rl_errmsg(db), "t_n: keys out of order"));
    rl_rollback(t);
    assert_int_equal(rl_begin(db, RL_READ, &t), RL_OK);
    assert_int_equal(rl_count(t, "t", &n), RL_OK);
    assert_int_equal(n, 250); /* ids 3004..4000 that are multiples of 4 */
    rl_rollback(t);
    assert_int_equal(rl_close(db), RL_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_btree_random),
        cmocka_unit_test(test_btree_sequential),
        cmocka_unit_test(test_btree_finger_after_free),
        cmocka_unit_test(test_btree_id_keys_every_length),
        cmocka_unit_test(test_btree_builder),
        cmocka_unit_test(test_btree_layouts),
        cmocka_unit_test(test_btree_chain_going_back),
        cmocka_unit_test(test_id_keys),
        cmocka_unit_test(test_record_codec),
        cmocka_unit_test(test_index_verify_detects_damage),
        cmocka_unit_test(test_vacuum_of_looped_table_fails),
        cmocka_unit_test(test_vacuum_rebuilds_what_pays),
        cmocka_unit_test(test_vacuum_rebuilds_indexes_from_their_keys),
    };
    tu_setup_dir("schema");
    return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
