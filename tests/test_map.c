/*
** tests/test_map.c: the block layer's logical numbers and its space: the
** block map's delta, tidying and holes, and the compaction that follows a
** vacuum (blocks/map.c, blocks/compact.c).
*/
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "blocks/blk_int.h"
#include "tests/testutil.h"

#include "tests/blkutil.h"

/* n new single blocks, block i holding the number i; lg gets their
 * logical numbers (ascending: fresh numbers come from the limit). */
static void alloc_numbered(rl__blk_txn *t, uint64_t *lg, int n)
{
    rl__blk_ref ref;
    for (int i = 0; i < n; i++) {
        T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &lg[i], &ref));
        rl__put32(ref.wdata, (uint32_t)i);
        rl__blk_block_set_used(&ref, 4);
        rl__blk_block_put(&ref);
        assert_true(i == 0 || lg[i] > lg[i - 1]);
    }
}

/* Block lg[i] (of alloc_numbered) still holds i, as t sees it. */
static void expect_numbered(rl__blk_txn *t, const uint64_t *lg, int i)
{
    rl__blk_ref ref;
    T_OK(t, rl__blk_block_get(t, lg[i], 0, &ref));
    assert_int_equal(rl__get32(ref.data), (uint32_t)i);
    rl__blk_block_put(&ref);
}

/* The integrity walk finds nothing wrong with the closed file at path. */
static void expect_clean(const char *path)
{
    int problems;
    char *report = check_report(path, &problems);
    if (problems)
        fail_msg("%s", report);
    free(report);
}

/* Tidying the map: the free logical numbers are threaded in ascending
 * order (new blocks take the lowest), the map past the highest number in
 * use goes, and a reader of an older snapshot still reads every block it
 * saw. */
static void test_map_tidy(void **state)
{
    const char *path = tu_path("tidy.rdb");
    rl__blk_db *db = new_db("tidy.rdb", 512);
    enum { N = 2000, KEPT = N / 4 };
    uint64_t lg[N], seed = 5, got;
    int freed[N] = {0};
    rl__blk_txn *t, *r;
    rl__blk_ref ref;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    alloc_numbered(t, lg, N);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK); /* sees all N */
    /* Free the top three quarters and every third block below, in a
     * random order: the free list is threaded in that order. */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (int k = 0; k < 3 * N; k++) {
        int i = k < 2 * N ? (int)(tu_rand(&seed) % N) : k - 2 * N;
        if (!freed[i] && (i >= KEPT || i % 3 == 0)) {
            T_OK(t, rl__blk_block_free(t, lg[i]));
            freed[i] = 1;
        }
    }
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(t->root.logical_limit, lg[N - 1] + 1);
    T_OK(t, rl__blk_map_tidy(t));
    /* the highest number in use is block KEPT - 1's (KEPT - 1 is not a multiple of 3) */
    assert_int_equal(t->root.logical_limit, lg[KEPT - 1] + 1);
    for (int i = 0; i < 12; i += 3) { /* the lowest free numbers first, in order */
        T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &got, &ref));
        rl__blk_block_put(&ref);
        assert_int_equal(got, lg[i]);
    }
    assert_int_equal(rl__blk_block_get(t, lg[N - 1], 0, &ref), RL_CORRUPT); /* past the limit */
    assert_int_equal(rl__blk_commit(t), RL_OK);
    for (int i = 0; i < N; i++) /* the reader's snapshot is whole */
        expect_numbered(r, lg, i);
    rl__blk_rollback(r);
    /* Tidy again right away: nothing to do, nothing changes. */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    got = t->root.logical_limit;
    T_OK(t, rl__blk_map_tidy(t));
    assert_int_equal(t->root.logical_limit, got);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    expect_clean(path);
    /* Reopened, the blocks kept read back and new ones go on from there. */
    db = open_db(path, 0);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (int i = 0; i < KEPT; i++)
        if (!freed[i])
            expect_numbered(t, lg, i);
    T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &got, &ref));
    rl__blk_block_put(&ref);
    assert_int_equal(got, lg[12]);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
}

/* Entry i of the map's root node, as transaction t sees it. */
static uint64_t map_root_entry(rl__blk_txn *t, unsigned i)
{
    rl__blk_page *p;
    uint64_t e;
    pthread_mutex_lock(&t->db->mu);
    assert_int_equal(rl__cache_get(t, t->root.map_root, &p), RL_OK);
    e = rl__get64(p->buf + RL__HDR_SIZE + 8u * i);
    rl__cache_unpin(p);
    pthread_mutex_unlock(&t->db->mu);
    return e;
}

/* Tidying drops the map leaves whose numbers are all free (holes), and
 * new numbers fill the lowest hole before the logical limit grows. */
static void test_map_holes(void **state)
{
    const char *path = tu_path("holes.rdb");
    rl__blk_db *db = new_db("holes.rdb", 512);
    enum { N = 600, F = (512 - 40) / 8 }; /* 59 numbers a leaf: 11 leaves */
    uint64_t lg[N], got, limit;
    rl__blk_txn *t, *r;
    rl__blk_ref ref;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    alloc_numbered(t, lg, N);
    assert_int_equal(t->root.map_depth, 2);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 0, &r), RL_OK); /* sees all N */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK); /* leaves 2 to 5 lose every number */
    for (int i = 0; i < N; i++)
        if (lg[i] / F >= 2 && lg[i] / F <= 5)
            T_OK(t, rl__blk_block_free(t, lg[i]));
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (unsigned leaf = 0; leaf < 11; leaf++)
        assert_true(map_root_entry(t, leaf) != 0);
    limit = t->root.logical_limit;
    T_OK(t, rl__blk_map_tidy(t));
    assert_int_equal(t->root.logical_limit, limit); /* the top is in use */
    for (unsigned leaf = 0; leaf < 11; leaf++)
        assert_int_equal(map_root_entry(t, leaf) == 0, leaf >= 2 && leaf <= 5);
    for (uint64_t want = 2 * F; want < 6 * F + 3; want++) { /* the holes first, lowest first */
        T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &got, &ref));
        rl__put32(ref.wdata, (uint32_t)got);
        rl__blk_block_put(&ref);
        assert_int_equal(got, want < 6 * F ? want : limit + (want - 6 * F));
    }
    assert_int_equal(rl__blk_commit(t), RL_OK);
    for (int i = 0; i < N; i++) /* the reader's snapshot is whole */
        expect_numbered(r, lg, i);
    rl__blk_rollback(r);
    /* A hole left behind survives reopening, and is filled after it. */
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (uint64_t l = 3 * F; l < 4 * F; l++)
        T_OK(t, rl__blk_block_free(t, l));
    T_OK(t, rl__blk_map_tidy(t));
    assert_int_equal(map_root_entry(t, 3), 0);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    expect_clean(path);
    db = open_db(path, 0);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (int i = 0; i < N; i++)
        if (lg[i] / F < 2 || lg[i] / F > 5)
            expect_numbered(t, lg, i);
    T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &got, &ref));
    rl__blk_block_put(&ref);
    assert_int_equal(got, 3 * F);
    assert_int_equal(rl__blk_block_get(t, 3 * F + 1, 0, &ref), RL_CORRUPT); /* free: no block */
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    expect_clean(path);
}

/* The map delta: small commits put their moves there (the map's nodes
 * keep the old blocks), it survives reopening, and the integrity walk
 * reads it, so a delta that points wrong is damage it reports. */
static void test_map_delta(void **state)
{
    const char *path = tu_path("delta.rdb");
    rl__blk_db *db = new_db("delta.rdb", 512);
    uint64_t head = make_chain(db, 20000, 4), gone = make_chain(db, 2000, 5), moved;
    rl__blk_txn *t;
    rl__blk_root r;
    uint8_t buf[100];
    char *report;
    int problems = -1;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_free(t, gone), RL_OK); /* its numbers: free */
    assert_int_equal(rl__blk_commit(t), RL_OK);
    fill(buf, sizeof buf, 9);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_write(t, head, 5000, buf, sizeof buf), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
    assert_int_equal(read_slot(path, newest_slot(path, 512), 512, &r, NULL, NULL), RL_OK);
    assert_int_equal(r.ndelta, 1); /* the one block that moved */
    moved = r.delta[0].phys;
    report = check_report(path, &problems);
    if (problems)
        fail_msg("a healthy file with a delta: %s", report);
    free(report);
    db = open_db(path, 0); /* read back through the delta */
    assert_int_equal(phys_of(db, r.delta[0].logical), moved);
    {
        uint8_t got[100];
        assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
        assert_int_equal(rl__blk_chain_read(t, head, 5000, got, sizeof got), RL_OK);
        assert_memory_equal(got, buf, sizeof buf);
        rl__blk_rollback(t);
    }
    rl__blk_close(db);
    /* A delta entry for a free logical number breaks rule D1. */
    r.delta[r.ndelta].logical = gone;
    r.delta[r.ndelta].phys = moved;
    r.ndelta++;
    for (uint32_t i = r.ndelta - 1; i > 0 && r.delta[i].logical < r.delta[i - 1].logical; i--) {
        struct rl__blk_delta d = r.delta[i];
        r.delta[i] = r.delta[i - 1];
        r.delta[i - 1] = d;
    }
    put_newest_root(path, 512, &r);
    report = check_report(path, &problems);
    assert_true(problems >= 1);
    assert_non_null(strstr(report, "map changes name logical numbers the map does not hold"));
    free(report);
}

/* Compaction after a vacuum never waits for another writer (it may be
 * waiting for the vacuum's caller): with a write transaction open on the
 * handle, rl__blk_compact_now answers RL_BUSY at once instead of locking
 * itself out; once the writer is gone, it compacts. */
static void test_compact_now_does_not_wait(void **state)
{
    const char *path = tu_path("cnow.rdb");
    rl__blk_db *db = new_db("cnow.rdb", 512);
    uint64_t head = make_chain(db, 200000, 3), full;
    rl__blk_txn *t;
    (void)state;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    T_OK(t, rl__blk_chain_free(t, head));
    assert_int_equal(rl__blk_commit(t), RL_OK);
    full = tu_file_size(path);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_compact_now(db, 1), RL_BUSY);
    rl__blk_rollback(t);
    assert_int_equal(tu_file_size(path), full);
    assert_int_equal(rl__blk_compact_now(db, 1), RL_OK);
    print_message("a freed chain of 200,000 bytes: %llu bytes, %llu after rl__blk_compact_now\n",
                  (unsigned long long)full, (unsigned long long)tu_file_size(path));
    assert_true(tu_file_size(path) < full / 4);
    rl__blk_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_delta),
        cmocka_unit_test(test_map_tidy),
        cmocka_unit_test(test_map_holes),
        cmocka_unit_test(test_compact_now_does_not_wait),
    };
    tu_setup_dir("map");
    return cmocka_run_group_tests_name("map", tests, NULL, NULL);
}
