/*
** tests/test_blocks_damage.c: the block layer against damaged files. A
** torn or lost root slot, a lost block of a commit, and every kind of
** damage to a block a read or rl__blk_check can meet, each of them
** reported with its code and message, never a crash.
**
** White-box: damage is made by hand with the encoders of
** blocks/blk_int.h, so each test names exactly which byte it breaks.
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

static int read_chain_rc(rl__blk_db *db, uint64_t head, size_t n, char *msg)
{
    rl__blk_txn *t;
    uint8_t *buf = malloc(n + 1);
    int rc = rl__blk_begin(db, 0, &t);
    msg[0] = '\0';
    if (rc == RL_OK) {
        rc = rl__blk_chain_read(t, head, 0, buf, n);
        snprintf(msg, 256, "%s", rl__blk_txn_err(t)->msg);
        rl__blk_rollback(t);
    }
    free(buf);
    return rc;
}

/* Commit one write of n bytes at off into chain head, then close db. */
static void write_and_close(rl__blk_db *db, uint64_t head, uint64_t off, const void *buf, size_t n)
{
    rl__blk_txn *t;
    assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
    assert_int_equal(rl__blk_chain_write(t, head, off, buf, n), RL_OK);
    assert_int_equal(rl__blk_commit(t), RL_OK);
    rl__blk_close(db);
}

static void test_bad_slot_falls_back(void **state)
{
    const char *path = tu_path("fallback.rdb");
    rl__blk_db *db = new_db("fallback.rdb", 512);
    uint64_t head = make_chain(db, 5000, 1);
    uint8_t buf[5000], byte;
    rl__err err;
    int newest;
    (void)state;
    fill(buf, sizeof buf, 2);
    write_and_close(db, head, 0, buf, sizeof buf);
    /* Break one byte of the newest slot: open must use the other. */
    newest = newest_slot(path, 512);
    tu_read_at(path, rl__fmt_slot_offset(512, (unsigned)newest) + 20, &byte, 1);
    byte ^= 0x40;
    tu_write_at(path, rl__fmt_slot_offset(512, (unsigned)newest) + 20, &byte, 1);
    db = open_db(path, 0);
    expect_chain(db, head, 5000, 1);
    rl__blk_close(db);
    /* The one before broken too: RL_CORRUPT, not a fall to an older root
     * whose blocks may have been reused. */
    tu_write_at(path, rl__fmt_slot_offset(512, (unsigned)(newest + 3) % 4) + 20, &byte, 1);
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    assert_non_null(strstr(err.msg, "no valid root slot"));
}

static void test_lost_block_falls_back(void **state)
{
    const char *path = tu_path("lost.rdb");
    rl__blk_db *db = new_db("lost.rdb", 4096);
    uint64_t head = make_chain(db, 10000, 1);
    rl__blk_listed list[RL__SLOT_LIST_CAP];
    rl__blk_root r;
    uint8_t buf[100], zero[4096] = {0};
    uint32_t n = 0;
    (void)state;
    fill(buf, sizeof buf, 4);
    write_and_close(db, head, 9000, buf, sizeof buf);
    /* The newest commit lists its blocks; lose one as a crash would. */
    assert_int_equal(read_slot(path, newest_slot(path, 4096), 4096, &r, list, &n), RL_OK);
    assert_true(r.flags & RL__SLOT_LISTED);
    assert_true(n >= 1); /* the block, in the commit area (the freelist is empty) */
    tu_write_at(path, list[0].phys * 4096, zero, sizeof zero);
    db = open_db(path, 0);
    expect_chain(db, head, 10000, 1);
    rl__blk_close(db);
}

static void edit_next(uint8_t *b, void *arg)
{
    rl__fmt_bhdr_set_next(b, *(uint64_t *)arg);
}

static void flip_payload(uint8_t *b, void *arg)
{
    (void)arg;
    b[RL__HDR_SIZE + 30] ^= 1;
}

static void test_corruption_detected(void **state)
{
    const char *path = tu_path("corrupt.rdb");
    uint8_t region[RL__REGION], *file;
    rl__blk_header h;
    rl__blk_db *db;
    rl__err err;
    uint64_t head, p_head, p_mid, p_tail, v;
    size_t n = 20000, fsize;
    char msg[256];
    (void)state;
    /* A chain of 5 blocks of 4096: head, ..., tail. Four more commits so
     * that neither of the two newest root slots lists its blocks (a listed
     * block that fails its CRC makes open fall back, tested in
     * test_lost_block_falls_back): the chain goes into commit area 2, and
     * commit 4 carries it home. */
    db = new_db("corrupt.rdb", 4096);
    head = make_chain(db, n, 8);
    idle_commits(db, 4);
    p_head = phys_of(db, head);
    p_mid = phys_of(db, head + 2);
    p_tail = phys_of(db, head + 4);
    rl__blk_close(db);
    file = tu_read_file(path, &fsize);

    /* Bad magic. */
    tu_write_at(path, 0, "X", 1);
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    assert_non_null(strstr(err.msg, "magic"));
    /* Unknown format version (header otherwise valid). */
    tu_write_at(path, 0, file, fsize);
    assert_int_equal(rl__fmt_header_decode(file, RL__REGION, &h, &err), RL_OK);
    h.version = 99;
    rl__fmt_header_encode(region, &h);
    tu_write_at(path, 0, region, RL__REGION);
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    assert_non_null(strstr(err.msg, "version 99"));
    /* Bad checksum in a data block. */
    tu_write_at(path, 0, file, fsize);
    region[0] = file[p_mid * 4096 + 100] ^ 0xff;
    tu_write_at(path, p_mid * 4096 + 100, region, 1);
    db = open_db(path, 0);
    assert_int_equal(read_chain_rc(db, head, n, msg), RL_CORRUPT);
    assert_non_null(strstr(msg, "checksum"));
    rl__blk_close(db);
    /* A payload change with a valid checksum is not corruption: sanity. */
    tu_write_at(path, 0, file, fsize);
    patch_block(path, 4096, p_mid, flip_payload, NULL);
    db = open_db(path, 0);
    assert_int_equal(read_chain_rc(db, head, n, msg), RL_OK);
    rl__blk_close(db);
    /* A link out of range. */
    tu_write_at(path, 0, file, fsize);
    v = 123456789;
    patch_block(path, 4096, p_head, edit_next, &v);
    db = open_db(path, 0);
    assert_int_equal(read_chain_rc(db, head, n, msg), RL_CORRUPT);
    assert_non_null(strstr(msg, "out of range"));
    rl__blk_close(db);
    /* A cycle: the tail links back to the head. */
    tu_write_at(path, 0, file, fsize);
    v = head;
    patch_block(path, 4096, p_tail, edit_next, &v);
    db = open_db(path, 0);
    assert_int_equal(read_chain_rc(db, head, n, msg), RL_CORRUPT);
    assert_non_null(strstr(msg, "extra link"));
    {
        rl__blk_txn *t;
        assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        assert_int_equal(rl__blk_chain_free(t, head), RL_CORRUPT);
        rl__blk_rollback(t);
    }
    rl__blk_close(db);
    /* A truncated file: the blocks past the cut are gone. */
    tu_write_at(path, 0, file, fsize);
    assert_int_equal(truncate(path, (off_t)(p_mid * 4096)), 0);
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    assert_non_null(strstr(err.msg, "claims"));
    /* Truncated inside the root area. */
    assert_int_equal(truncate(path, 5000), 0);
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    /* A root slot whose links are out of range, in both slots. */
    tu_write_at(path, 0, file, fsize);
    for (int i = 0; i < (int)RL__NSLOTS; i++) {
        rl__blk_root r;
        rl__blk_listed list[RL__SLOT_LIST_CAP];
        uint32_t cnt = 0;
        if (read_slot(path, i, 4096, &r, list, &cnt) != RL_OK)
            continue;
        r.map_root = r.block_count + 10;
        r.map_depth = r.map_depth ? r.map_depth : 1;
        rl__fmt_slot_encode(region, &r, list, cnt);
        tu_write_at(path, rl__fmt_slot_offset(4096, (unsigned)i), region, RL__REGION);
    }
    assert_int_equal(open_rc(path, &err), RL_CORRUPT);
    free(file);
}


static void free_entry_to(uint8_t *b, void *arg)
{
    rl__put64(b + RL__HDR_SIZE, *(uint64_t *)arg); /* first entry of the block */
}

static void test_integrity_walk(void **state)
{
    const char *path = tu_path("walk.rdb");
    rl__blk_db *db = new_db("walk.rdb", 512);
    uint64_t head = make_chain(db, 20000, 4), live, fl;
    rl__blk_txn *t;
    rl__blk_root r;
    uint8_t region[RL__REGION];
    char *report = NULL;
    int problems = -1, slot;
    (void)state;
    /* Rewrites leave free blocks behind. The chain's first 16 blocks went
     * to commit area 2 and commit 4 carries them home; the blocks that
     * commits 3 and 4 change go to areas, whose blocks are never listed
     * free; commit 5 frees blocks in the file. */
    for (int i = 0; i < 3; i++) {
        uint8_t buf[3000];
        fill(buf, sizeof buf, (uint64_t)i);
        assert_int_equal(rl__blk_begin(db, 1, &t), RL_OK);
        assert_int_equal(rl__blk_chain_write(t, head, i < 2 ? 8000 : 0, buf, sizeof buf), RL_OK);
        assert_int_equal(rl__blk_commit(t), RL_OK);
    }
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__blk_check(t, &report, &problems), RL_OK);
    if (problems)
        fail_msg("a healthy file: %s", report);
    fl = t->root.freelist_head;
    assert_true(fl != 0);
    rl__blk_rollback(t);
    live = phys_of(db, head + 30); /* a block in the file, not in an area */
    rl__blk_close(db);
    /* A free entry that names a live block. */
    {
        uint8_t *file;
        size_t n;
        file = tu_read_file(path, &n);
        tu_write_at(path, 0, file, n);
        patch_block(path, 512, fl, free_entry_to, &live);
        /* The freelist block is in the newest commit's list, so open would
         * fall back to the root before: drop the list from that slot. */
        slot = newest_slot(path, 512);
        assert_int_equal(read_slot(path, slot, 512, &r, NULL, NULL), RL_OK);
        r.flags = 0;
        rl__fmt_slot_encode(region, &r, NULL, 0);
        tu_write_at(path, rl__fmt_slot_offset(512, (unsigned)slot), region, RL__REGION);
        db = open_db(path, 0);
        assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
        assert_int_equal(rl__blk_check(t, &report, &problems), RL_OK);
        assert_true(problems >= 1);
        assert_non_null(strstr(report, "is both a data block and free"));
        free(report);
        rl__blk_rollback(t);
        rl__blk_close(db);
        tu_write_at(path, 0, file, n); /* undo */
        free(file);
    }
    /* A block that is neither reachable nor free: the root claims one more. */
    slot = newest_slot(path, 512);
    assert_int_equal(read_slot(path, slot, 512, &r, NULL, NULL), RL_OK);
    r.block_count++;
    r.flags = 0; /* no commit list: open trusts this slot as it is */
    rl__fmt_slot_encode(region, &r, NULL, 0);
    tu_write_at(path, rl__fmt_slot_offset(512, (unsigned)slot), region, RL__REGION);
    assert_int_equal(truncate(path, (off_t)(r.block_count * 512)), 0);
    db = open_db(path, 0);
    assert_int_equal(rl__blk_begin(db, 0, &t), RL_OK);
    assert_int_equal(rl__blk_check(t, &report, &problems), RL_OK);
    assert_int_equal(problems, 1);
    assert_non_null(strstr(report, "neither reachable nor free (leaked)"));
    free(report);
    rl__blk_rollback(t);
    rl__blk_close(db);
}

/* Walk the freelist chain of a closed file's newest root: blocks in the
 * chain, and blocks its runs list. */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_slot_falls_back),
        cmocka_unit_test(test_lost_block_falls_back),
        cmocka_unit_test(test_corruption_detected),
        cmocka_unit_test(test_integrity_walk),
    };
    tu_setup_dir("blocks-damage");
    return cmocka_run_group_tests_name("blocks-damage", tests, NULL, NULL);
}
