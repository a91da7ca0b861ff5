/*
** tests/blkutil.h: helpers of the block-layer tests (test_blocks.c,
** test_blocks_damage.c, test_map.c, test_blocks_stress.c): opening databases, chains of known
** bytes, reading root slots, checking a closed file.
*/
#ifndef RL_BLKUTIL_H
#define RL_BLKUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "blocks/blk_int.h"

/* Assert that a call in transaction t succeeds; on failure say why. */
#define T_OK(t, call)                                                          \
    do {                                                                       \
        int rc_ = (call);                                                      \
        if (rc_ != RL_OK)                                                      \
            fail_msg("%s -> %s: %s", #call, rl_errname(rc_),                   \
                     rl__blk_txn_err(t)->msg);                                 \
    } while (0)

/* Open path with these options (fails the test if it cannot). */
rl__blk_db *open_opts(const char *path, uint32_t bs, unsigned flags, rl__durability dur,
                      size_t cache);
rl__blk_db *open_db(const char *path, uint32_t bs);
/* A fresh database file under name in the test directory. */
rl__blk_db *new_db(const char *name, uint32_t bs);
/* n pseudo-random bytes determined by seed. */
void fill(uint8_t *buf, size_t n, uint64_t seed);
/* A committed chain holding n bytes of pattern seed; returns its head. */
uint64_t make_chain(rl__blk_db *db, size_t n, uint64_t seed);
/* Assert that chain head holds exactly n bytes of pattern seed. */
void expect_chain(rl__blk_db *db, uint64_t head, size_t n, uint64_t seed);
/* Physical number of logical block `logical` in the newest snapshot. */
uint64_t phys_of(rl__blk_db *db, uint64_t logical);
/* Decode root slot i of a closed file. */
int read_slot(const char *path, int i, uint32_t bs, rl__blk_root *r, rl__blk_listed *list,
              uint32_t *n);
/* Index (0 to 3) of the slot holding the newest transaction of a closed file. */
int newest_slot(const char *path, uint32_t bs);
/* Write root r into the newest slot of a closed file, without a commit
 * list (so open trusts it as it is). */
void put_newest_root(const char *path, uint32_t bs, rl__blk_root *r);
/* rl__blk_check's report of a closed file (malloc'd; problems counted). */
char *check_report(const char *path, int *problems);
/* Commit n transactions that change only a meta word. */
void idle_commits(rl__blk_db *db, int n);
/* Read-modify-reseal one block of a closed file. */
void patch_block(const char *path, uint32_t bs, uint64_t phys,
                 void (*edit)(uint8_t *block, void *arg), void *arg);
/* What opening path returns (the handle, if any, closed at once). */
int open_rc(const char *path, rl__err *err);

#endif
