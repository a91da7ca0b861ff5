/*
** tests/test_cache.c: the block cache. The clock keeps what is read often
** within its page budget; the doorkeeper (blocks/admit.c) keeps a block
** read once out of the cache, in the transaction's own page, for read and
** write transactions alike.
**
** White-box: the tests look at the cache's count, its pages and the
** handle's read counter.
*/
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "blocks/blk_int.h"
#include "tests/testutil.h"

#include "tests/blkutil.h"

#define CLOCK_BLOCKS 400

/* Read logical block ids[i] in t and check that it holds its own index. */
static void expect_block(rl__blk_txn *t, const uint64_t *ids, int i)
{
    rl__blk_ref ref;
    T_OK(t, rl__blk_block_get(t, ids[i], 0, &ref));
    assert_int_equal(ref.used, sizeof i);
    assert_memory_equal(ref.data, &i, sizeof i);
    rl__blk_block_put(&ref);
}

/* A new file at path with CLOCK_BLOCKS single blocks, ids[i] holding i,
 * committed, open with 512-byte blocks and a 16-page cache. */
static rl__blk_db *open_filled(const char *path, uint64_t *ids)
{
    rl__blk_db *db;
    rl__blk_txn *t;
    unlink(path);
    db = open_opts(path, 512, RL__BLK_CREATE, RL__DURABLE_FULL, 16 * 512);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    for (int i = 0; i < CLOCK_BLOCKS; i++) {
        rl__blk_ref ref;
        T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &ids[i], &ref));
        memcpy(ref.wdata, &i, sizeof i);
        rl__blk_block_set_used(&ref, sizeof i);
        rl__blk_block_put(&ref);
    }
    assert_int_equal(rl__blk_commit(t), RL_OK);
    return db;
}

/* open_filled, closed and opened again with an empty cache of the given
 * number of pages. */
static rl__blk_db *open_filled_cold(const char *path, uint64_t *ids, size_t pages)
{
    rl__blk_close(open_filled(path, ids));
    return open_opts(path, 0, 0, RL__DURABLE_FULL, pages * 512);
}

/* Blocks read by a read transaction since the last look. */
static uint64_t reads_since(rl__blk_db *db, uint64_t *mark)
{
    rl__blk_stats st;
    uint64_t n;
    rl__blk_get_stats(db, &st);
    n = st.blocks_read - *mark;
    *mark = st.blocks_read;
    return n;
}

/* The doorkeeper (admit.c): a read transaction's first miss of a block
 * leaves the cache alone and keeps the block in one of the transaction's
 * own pages; its second use caches the block, from that page while the
 * transaction still has it (no second read), else read again. So blocks
 * read once each, however many, do not push out a block read often. */
static void test_cache_admits_on_second_miss(void **state)
{
    const char *path = tu_path("admit.rdb");
    rl__blk_db *db;
    rl__blk_txn *t;
    uint64_t ids[CLOCK_BLOCKS], mark = 0;
    size_t count;
    (void)state;
    db = open_filled_cold(path, ids, 16);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    reads_since(db, &mark);
    count = db->cache.count;
    expect_block(t, ids, 7);
    assert_true(reads_since(db, &mark) >= 1);
    assert_int_equal(db->cache.count, count); /* read, not kept */
    expect_block(t, ids, 11);
    reads_since(db, &mark);
    count = db->cache.count;
    expect_block(t, ids, 7);
    assert_int_equal(reads_since(db, &mark), 0); /* from the own page */
    assert_int_equal(db->cache.count, count + 1); /* and kept now */
    expect_block(t, ids, 11);
    assert_int_equal(reads_since(db, &mark), 0);
    expect_block(t, ids, 7);
    assert_int_equal(reads_since(db, &mark), 0);
    for (int k = 0; k < 100; k++) /* 100 blocks read once each, out of order */
        expect_block(t, ids, 8 + (37 * k) % 300);
    reads_since(db, &mark);
    expect_block(t, ids, 7);
    assert_int_equal(reads_since(db, &mark), 0);
    assert_true(db->cache.count <= db->cache.cap);
    assert_true(rl__cache_consistent(&db->cache));
    rl__blk_rollback(t);
    rl__blk_close(db);
    unlink(path);
}

/* Read 2 * RL__OWN_PAGES blocks from ids[first] on, each once and none
 * next to the one before (which would read ahead into the cache): a read
 * transaction's own pages turn over. */
static void turn_own_pages(rl__blk_txn *t, const uint64_t *ids, int first)
{
    for (int k = 0; k < 2 * RL__OWN_PAGES; k++)
        expect_block(t, ids, first + 3 * k);
}

/* A block used a second time after the transaction's own pages have
 * turned over is read again and cached then; a third use finds it in the
 * cache. (A 256-page cache: its doorkeeper remembers the first miss
 * across the turnover.) */
static void test_cache_admits_after_own_pages_turn(void **state)
{
    const char *path = tu_path("admit-turn.rdb");
    rl__blk_db *db;
    rl__blk_txn *t;
    uint64_t ids[CLOCK_BLOCKS], mark = 0;
    size_t count;
    (void)state;
    db = open_filled_cold(path, ids, 256);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    expect_block(t, ids, 9);
    turn_own_pages(t, ids, 200);
    count = db->cache.count;
    reads_since(db, &mark);
    expect_block(t, ids, 9);
    assert_int_equal(reads_since(db, &mark), 1); /* missed again */
    assert_int_equal(db->cache.count, count + 1); /* and kept */
    turn_own_pages(t, ids, 300);
    reads_since(db, &mark);
    expect_block(t, ids, 9);
    assert_int_equal(reads_since(db, &mark), 0);
    assert_true(rl__cache_consistent(&db->cache));
    rl__blk_rollback(t);
    rl__blk_close(db);
    unlink(path);
}

/* Whether ref's page is one of its transaction's own, outside the cache. */
static int outside_cache(const rl__blk_ref *ref)
{
    return (((const rl__blk_page *)ref->page_)->pins & RL__PAGE_RETIRED) != 0;
}

/* In a write transaction too, a node missed once stays in the
 * transaction's own page: read again from there, copied on write from
 * there. A block the transaction wrote early and reads back is cached, as
 * it may change in place. */
static void test_write_txn_reads_into_own_pages(void **state)
{
    const char *path = tu_path("admit-w.rdb");
    rl__blk_db *db;
    rl__blk_txn *t;
    rl__blk_ref ref;
    uint64_t ids[CLOCK_BLOCKS], fresh[40], mark = 0, phys;
    int v;
    (void)state;
    db = open_filled_cold(path, ids, 16);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    expect_block(t, ids, 0); /* the map's nodes, missed twice, cached */
    expect_block(t, ids, 0);
    reads_since(db, &mark);
    T_OK(t, rl__blk_block_get(t, ids[5], 0, &ref));
    assert_true(outside_cache(&ref));
    rl__blk_block_put(&ref);
    assert_int_equal(reads_since(db, &mark), 1);
    T_OK(t, rl__blk_block_get(t, ids[5], 1, &ref)); /* copied from the own page */
    assert_int_equal(reads_since(db, &mark), 0);
    assert_false(outside_cache(&ref));
    v = 5005;
    memcpy(ref.wdata, &v, sizeof v);
    rl__blk_block_put(&ref);
    /* 40 new blocks through a 16-page cache: the first ones go out early. */
    for (int i = 0; i < 40; i++) {
        T_OK(t, rl__blk_block_alloc(t, RL__BLK_TYPE_USER + 1, 0, &fresh[i], &ref));
        memcpy(ref.wdata, &i, sizeof i);
        rl__blk_block_set_used(&ref, sizeof i);
        rl__blk_block_put(&ref);
    }
    reads_since(db, &mark);
    T_OK(t, rl__blk_block_get(t, fresh[0], 0, &ref));
    assert_true(reads_since(db, &mark) >= 1); /* read back from the file */
    assert_false(outside_cache(&ref));
    phys = ((rl__blk_page *)ref.page_)->phys;
    rl__blk_block_put(&ref);
    T_OK(t, rl__blk_block_get(t, fresh[0], 1, &ref));
    assert_int_equal(((rl__blk_page *)ref.page_)->phys, phys); /* changed in place */
    v = 7007;
    memcpy(ref.wdata, &v, sizeof v);
    rl__blk_block_put(&ref);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    assert_true(rl__cache_consistent(&db->cache));
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    T_OK(t, rl__blk_block_get(t, ids[5], 0, &ref));
    assert_memory_equal(ref.data, &(int){5005}, sizeof v);
    rl__blk_block_put(&ref);
    T_OK(t, rl__blk_block_get(t, fresh[0], 0, &ref));
    assert_memory_equal(ref.data, &(int){7007}, sizeof v);
    rl__blk_block_put(&ref);
    rl__blk_rollback(t);
    rl__blk_close(db);
    unlink(path);
}

/* The block cache under churn: a 16-page cache serving 400 blocks read
 * at random (each miss a removal from its table and an insertion); more
 * pages pinned at once than it holds (its ring and table grow), after
 * which it shrinks back to its budget; and the clock keeping a block that
 * is read again and again while blocks read once stream past it. */
static void test_cache_clock(void **state)
{
    const char *path = tu_path("clock.rdb");
    rl__blk_db *db;
    rl__blk_txn *t;
    rl__blk_ref pinned[100];
    uint64_t ids[CLOCK_BLOCKS], x = 88172645463325252ULL, before;
    (void)state;
    db = open_filled(path, ids);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    for (int k = 0; k < 20000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        expect_block(t, ids, (int)(x % CLOCK_BLOCKS));
    }
    assert_true(db->cache.count <= db->cache.cap);
    assert_true(rl__cache_consistent(&db->cache));
    for (int i = 0; i < 100; i++)
        T_OK(t, rl__blk_block_get(t, ids[3 * i], 0, &pinned[i]));
    /* All pinned: over the budget (a read transaction's own pages hold the
     * first misses, the cache the rest). */
    assert_true(db->cache.count + RL__OWN_PAGES >= 100);
    assert_true(db->cache.count > db->cache.cap);
    assert_true(rl__cache_consistent(&db->cache));
    for (int i = 0; i < 100; i++) {
        int want = 3 * i;
        assert_memory_equal(pinned[i].data, &want, sizeof want);
        rl__blk_block_put(&pinned[i]);
    }
    /* Missed twice, block 1 enters the cache, which gives back what it owes. */
    expect_block(t, ids, 1);
    expect_block(t, ids, 1);
    assert_true(db->cache.count <= db->cache.cap);
    assert_true(rl__cache_consistent(&db->cache));
    /* Block 0, read between every four blocks read once, stays cached. */
    expect_block(t, ids, 0);
    for (int i = 0; i < 200; i++) {
        expect_block(t, ids, 2 + (37 * i) % (CLOCK_BLOCKS - 2));
        if (i % 4 == 3) {
            before = db->stats.blocks_read;
            expect_block(t, ids, 0);
            assert_int_equal(db->stats.blocks_read, before);
        }
    }
    /* Every page used since the hand passed: a miss still finds one to go. */
    for (size_t i = 0; i < db->cache.count; i++)
        db->cache.ring[i]->used = 1;
    expect_block(t, ids, 399);
    assert_true(db->cache.count <= db->cache.cap);
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* Page structs the cache holds: in it, spare, or lent to transactions. */
static size_t pages_held(const rl__blk_cache *c)
{
    size_t n = c->count;
    for (const rl__blk_page *p = c->spare; p; p = p->dnext)
        n++;
    for (const rl__blk_page *p = c->own_spare; p; p = p->dnext)
        n++;
    return n;
}

/* Transactions that read blocks once each (into their own pages) leave
 * those pages to the next transactions: a handle's memory does not grow
 * with the number of transactions it has run. */
static void test_own_pages_are_reused(void **state)
{
    const char *path = tu_path("own.rdb");
    rl__blk_db *db;
    rl__blk_txn *t;
    uint64_t ids[CLOCK_BLOCKS];
    size_t after_first;
    (void)state;
    db = open_filled(path, ids);
    after_first = 0;
    for (int k = 0; k < 200; k++) { /* three blocks read once, out of order */
        assert_int_equal(rl__blk_begin(db, k % 2, &t), RL_OK);
        for (int j = 0; j < 3; j++)
            expect_block(t, ids, (int)((k * 3 + j) * 37 % CLOCK_BLOCKS));
        rl__blk_rollback(t);
        if (k == 0)
            after_first = pages_held(&db->cache);
    }
    assert_true(pages_held(&db->cache) <= after_first + 2 * RL__OWN_PAGES);
    assert_true(rl__cache_consistent(&db->cache));
    rl__blk_close(db);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cache_clock),
        cmocka_unit_test(test_cache_admits_on_second_miss),
        cmocka_unit_test(test_cache_admits_after_own_pages_turn),
        cmocka_unit_test(test_write_txn_reads_into_own_pages),
        cmocka_unit_test(test_own_pages_are_reused),
    };
    tu_setup_dir("cache");
    return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
