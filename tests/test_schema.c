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

typedef struct kv {
    uint64_t k, v;
} kv;

static int kv_find(const kv *m, size_t n, uint64_t k)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].k == k)
            return (int)i;
    return -1;
}

static void btree_run(uint32_t bs, long steps, uint64_t seed)
{
    rl__blk_db *db = new_db("bt.rdb", bs);
    rl__blk_txn *t;
    kv *model = calloc((size_t)steps + 1, sizeof *model);
    size_t n = 0;
    uint64_t root, rs = seed, nodes, entries;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__bt_create(t, &root), RL_OK);
    for (long s = 0; s < steps; s++) {
        uint64_t op = tu_rand(&rs) % 10, k, v = tu_rand(&rs), got;
        k = tu_rand(&rs) % (uint64_t)(steps * 2);
        if (op < 6) { /* insert */
            int at = kv_find(model, n, k);
            int rc = rl__bt_put(t, &root, k, v, 0);
            assert_int_equal(rc, at >= 0 ? RL_DUPLICATE : RL_OK);
            if (at < 0)
                model[n++] = (kv){k, v};
        } else if (op < 7 && n > 0) { /* replace */
            size_t i = tu_rand(&rs) % n;
            assert_int_equal(rl__bt_put(t, &root, model[i].k, v, 1), RL_OK);
            model[i].v = v;
        } else if (op < 9 && n > 0) { /* delete */
            size_t i = tu_rand(&rs) % n;
            assert_int_equal(rl__bt_delete(t, root, model[i].k), RL_OK);
            assert_int_equal(rl__bt_delete(t, root, model[i].k), RL_NOTFOUND);
            model[i] = model[--n];
        } else if (n > 0) { /* look up a present and maybe absent key */
            size_t i = tu_rand(&rs) % n;
            assert_int_equal(rl__bt_get(t, root, model[i].k, &got), RL_OK);
            assert_int_equal(got, model[i].v);
            k = tu_rand(&rs);
            assert_int_equal(rl__bt_get(t, root, k, &got),
                             kv_find(model, n, k) >= 0 ? RL_OK : RL_NOTFOUND);
        }
        if (s % 997 == 0) { /* commit now and then: nodes get copied on write */
            assert_int_equal(rl__blk_commit(t), RL_OK);
            assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t got;
        assert_int_equal(rl__bt_get(t, root, model[i].k, &got), RL_OK);
        assert_int_equal(got, model[i].v);
    }
    assert_int_equal(rl__bt_stats(t, root, &nodes, &entries), RL_OK);
    assert_int_equal(entries, n);
    print_message("B+tree, %u-byte blocks, random keys: %zu keys in %llu nodes\n", bs, n,
                  (unsigned long long)nodes);
    assert_int_equal(rl__bt_free(t, root), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    free(model);
}

static void test_btree_random(void **state)
{
    (void)state;
    btree_run(512, tu_scale(20000), 7);
    btree_run(4096, tu_scale(20000), 8);
}

static void test_btree_sequential(void **state)
{
    rl__blk_db *db = new_db("btseq.rdb", 512);
    rl__blk_txn *t;
    uint64_t root, nodes, entries, n = (uint64_t)tu_scale(20000), got, leaves;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__bt_create(t, &root), RL_OK);
    for (uint64_t k = 1; k <= n; k++)
        assert_int_equal(rl__bt_put(t, &root, k, k * 3, 0), RL_OK);
    assert_int_equal(rl__bt_stats(t, root, &nodes, &entries), RL_OK);
    assert_int_equal(entries, n);
    /* (512 - 56 - 16) / 16 = 27 entries per node: ascending keys fill every
     * leaf and interior node, so the tree is the leaves plus about 1/27. */
    leaves = (n + 26) / 27;
    print_message("%llu ascending keys: %llu nodes over %llu full leaves\n",
                  (unsigned long long)n, (unsigned long long)nodes, (unsigned long long)leaves);
    assert_true(nodes <= leaves + leaves / 20 + 4);
    for (uint64_t k = 1; k <= n; k += 37) {
        assert_int_equal(rl__bt_get(t, root, k, &got), RL_OK);
        assert_int_equal(got, k * 3);
    }
    assert_int_equal(rl__bt_get(t, root, n + 1, &got), RL_NOTFOUND);
    assert_int_equal(rl__bt_get(t, root, 0, &got), RL_NOTFOUND);
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* ---- records ---------------------------------------------------------------- */

static void test_record_codec(void **state)
{
    rl_column cols[] = {{"i", RL_TINTEGER, 0, 0, NULL}, {"r", RL_TREAL, 0, 0, NULL},
                        {"c", RL_TCHAR, 8, 0, NULL},    {"t", RL_TTEXT, 0, 0, NULL},
                        {"b", RL_TBLOB, 0, 0, NULL},    {"n", RL_TTEXT, 0, 0, NULL}};
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
    assert_int_equal(f[0].i, INT64_MIN);
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_btree_random),
        cmocka_unit_test(test_btree_sequential),
        cmocka_unit_test(test_record_codec),
    };
    tu_setup_dir("schema");
    return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
