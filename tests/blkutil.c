/*
** tests/blkutil.c: see blkutil.h. Test code only.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/blkutil.h"
#include "tests/testutil.h"



rl__blk_db *open_opts(const char *path, uint32_t bs, unsigned flags,
                             rl__durability dur, size_t cache)
{
    rl__blk_options o;
    rl__blk_db *db = NULL;
    rl__err err;
    memset(&o, 0, sizeof o);
    o.flags = flags;
    o.block_size = bs;
    o.durability = dur;
    o.cache_bytes = cache;
    if (rl__blk_open(path, &o, &db, &err) != RL_OK)
        fail_msg("open %s: %s", path, err.msg);
    return db;
}

rl__blk_db *open_db(const char *path, uint32_t bs)
{
    return open_opts(path, bs, RL__BLK_CREATE, RL__DURABLE_FULL, 0);
}

/* A fresh database file under name. */
rl__blk_db *new_db(const char *name, uint32_t bs)
{
    unlink(tu_path(name));
    return open_db(tu_path(name), bs);
}

void fill(uint8_t *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(tu_rand(&s) >> 56);
}

/* Create a chain holding n bytes of pattern seed, committed. */
uint64_t make_chain(rl__blk_db *db, size_t n, uint64_t seed)
{
    rl__blk_txn *t;
    uint64_t head;
    uint8_t *buf = malloc(n + 1);
    assert_non_null(buf);
    fill(buf, n, seed);
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_create(t, RL__BLK_TYPE_CHAIN, &head), RL_OK);
    assert_int_equal(rl__blk_chain_append(t, head, buf, n), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    free(buf);
    return head;
}

/* Assert that chain head holds exactly n bytes of pattern seed. */
void expect_chain(rl__blk_db *db, uint64_t head, size_t n, uint64_t seed)
{
    rl__blk_txn *t;
    uint64_t len = 0;
    uint8_t *want = malloc(n + 1), *got = malloc(n + 1);
    assert_non_null(want);
    assert_non_null(got);
    fill(want, n, seed);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__blk_chain_length(t, head, &len), RL_OK);
    assert_int_equal(len, n);
    assert_int_equal(rl__blk_chain_read(t, head, 0, got, n), RL_OK);
    assert_memory_equal(want, got, n);
    rl__blk_rollback(t);
    free(want);
    free(got);
}

/* Read a whole chain; the error message (if any) goes to msg. */
/* Physical number of logical block `logical` in the newest snapshot. */
uint64_t phys_of(rl__blk_db *db, uint64_t logical)
{
    rl__blk_txn *t;
    uint64_t phys = 0;
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__map_lookup(t, logical, &phys), RL_OK);
    rl__blk_rollback(t);
    return phys;
}

/* Decode root slot i of a closed file. */
int read_slot(const char *path, int i, uint32_t bs, rl__blk_root *r,
                     rl__blk_listed *list, uint32_t *n)
{
    uint8_t region[RL__REGION];
    rl__err err;
    tu_read_at(path, rl__fmt_slot_offset(bs, (unsigned)i), region, RL__REGION);
    return rl__fmt_slot_decode(region, bs, r, list, n, &err);
}

/* Index (0 to 3) of the slot holding the newest transaction. */
int newest_slot(const char *path, uint32_t bs)
{
    rl__blk_root r, best;
    int at = -1;
    for (int i = 0; i < (int)RL__NSLOTS; i++)
        if (read_slot(path, i, bs, &r, NULL, NULL) == RL_OK && (at < 0 || r.txn > best.txn)) {
            best = r;
            at = i;
        }
    return at;
}

/* Check report of a closed file (problems counted into *problems). */
char *check_report(const char *path, int *problems)
{
    rl__blk_db *db = open_db(path, 0);
    rl__blk_txn *t;
    char *report = NULL;
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__blk_check(t, &report, problems), RL_OK);
    rl__blk_rollback(t);
    rl__blk_close(db);
    return report;
}

/* Write root r into the newest slot of a closed file, without a commit
 * list (so open trusts it as it is). */
void put_newest_root(const char *path, uint32_t bs, rl__blk_root *r)
{
    uint8_t region[RL__REGION];
    int slot = newest_slot(path, bs);
    r->flags = 0;
    rl__fmt_slot_encode(region, r, NULL, 0);
    tu_write_at(path, rl__fmt_slot_offset(bs, (unsigned)slot), region, RL__REGION);
}

/* Commit n transactions that change only a meta word. */
void idle_commits(rl__blk_db *db, int n)
{
    for (int i = 0; i < n; i++) {
        rl__blk_txn *t;
        assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        assert_int_equal(rl__blk_meta_set(t, 7, (uint64_t)i + 1000), RL_OK);
        assert_int_equal(rl__blk_commit(t), RL_OK);
    }
}

/* Read-modify-reseal one block of a closed file. */
void patch_block(const char *path, uint32_t bs, uint64_t phys,
                        void (*edit)(uint8_t *block, void *arg), void *arg)
{
    uint8_t *b = malloc(bs);
    tu_read_at(path, phys * bs, b, bs);
    edit(b, arg);
    rl__fmt_block_seal(b, bs);
    tu_write_at(path, phys * bs, b, bs);
    free(b);
}

int open_rc(const char *path, rl__err *err)
{
    rl__blk_db *db = NULL;
    int rc = rl__blk_open(path, NULL, &db, err);
    rl__blk_close(db);
    return rc;
}
