/*
** blocks/compact.c: moving live blocks off the end of the file, so that
** free space inside the file turns into a shorter file.
**
** Copy-on-write tends to leave live blocks at the end: a transaction that
** cannot reuse anything yet (INV 2) appends, and a vacuum writes its copy
** at the end. Three ways to move them down:
**   - Every commit where enough of the file is free (MIN_READY,
**     READY_FRACTION) looks at the blocks at the end, from the end down,
**     and moves each live one into the lowest ready block below it. The
**     budget grows with the free space (a quarter of the ready blocks, at
**     least the caller's minimum, at most MAX_BUDGET blocks and 32 MiB:
**     big batches cost less per block, as each commit also pays its syncs
**     and a pass over the freelist), so a file that lost most of its rows
**     shrinks within a few commits.
**   - rl__blk_compact_now, after a vacuum's commit, runs those commits at
**     once, with nothing else in them, while there is enough to move or
**     truncate and they make progress: the one-row commits after a 1M-row
**     vacuum used to pay for it (5 commits of 30-77 ms, 0.3 s).
**   - After rl__blk_compact_soon (a whole-database vacuum), the next
**     FORCED_COMMITS commits move every live block they can, with no
**     budget or threshold, until no free block is left, the first of them
**     after tidying the block map (map.c: the old trees' logical numbers
**     are free by then, and the map's nodes past the highest one in use
**     go).
** Moving a block at phys:
**   - a chain block: copied through rl__blk_writable, its map entry set;
**   - a map node: its path is copied (rl__map_relocate_node);
**   - anything else (a freelist block, a block freed but not yet reusable)
**     is passed over: later commits will find it free.
** A moved block's old place is freed by this transaction, so it leaves the
** file at a later commit, when no root or reader can reach it (INV 2).
** Commits also carry the live blocks of an old commit area home through
** rl__compact_move (txn.c, A1), strictly: a block that cannot be read is
** an error there, not a block to pass over.
** Callers of rl__compact_* hold db->mu, inside a write transaction's
** commit; the rl__blk_* entry points take it themselves.
*/
#include <stdlib.h>

#include "blk_int.h"

#define MIN_READY 32     /* compact only with at least this many ready blocks */
#define READY_FRACTION 8 /* ... and at least 1/8 of the file ready */
#define MAX_BUDGET 8192        /* blocks moved by one commit at the most ... */
#define MAX_BUDGET_BYTES (32u << 20) /* ... and bytes */
#define FORCED_COMMITS 8 /* commits that compact fully after rl__blk_compact_soon */
#define MAX_SETTLE_COMMITS 64 /* rl__blk_compact_now: commits at the most */

/* Move a live chain block at phys; *moved = 0 if phys is not live. */
static int move_chain_block(rl__blk_txn *t, uint64_t phys, const rl__blk_bhdr *h, int strict,
                            int *moved)
{
    rl__blk_page *p;
    uint64_t np;
    int rc = RL_OK, live = 0;
    *moved = 0;
    if (h->logical == 0 || h->logical >= t->root.logical_limit)
        return RL_OK;
    rc = rl__map_maps_to(t, h->logical, phys, &live);
    if (rc != RL_OK && strict)
        return rc;
    if (!live) {
        rl__err_clear(&t->err); /* a dead block's stale header: not an error */
        return RL_OK;
    }
    if (h->txn == t->root.txn) { /* fresh: copy by hand, free it at once */
        rl__blk_page *old = NULL;
        rc = rl__cache_get(t, phys, &old);
        if (rc == RL_OK && (rc = rl__free_alloc(t, &np)) == RL_OK)
            rc = rl__cache_fresh_copy(t, np, old->buf, &p);
        if (rc == RL_OK) {
            rl__blk_bhdr nh;
            rl__cache_clean(old);
            rl__fmt_bhdr_decode(p->buf, &nh);
            nh.self = np;
            rl__fmt_bhdr_encode(p->buf, &nh);
            rc = rl__free_release(t, phys, 1);
            rl__cache_unpin(p);
        }
        rl__cache_unpin(old);
    } else {
        rc = rl__blk_writable(t, phys, 0, &np, &p);
        if (rc == RL_OK)
            rl__cache_unpin(p);
    }
    if (rc == RL_OK)
        rc = rl__map_set(t, h->logical, np);
    *moved = rc == RL_OK;
    return rc;
}

int rl__compact_move(rl__blk_txn *t, uint64_t phys, int strict, int *moved)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = rl__cache_get(t, phys, &p);
    *moved = 0;
    if (rc != RL_OK && strict)
        return rc; /* carrying (txn.c, A1) must know */
    if (rc != RL_OK) {
        /* Never written (a hole) or unreadable: nothing live to move. */
        rl__err_clear(&t->err);
        return RL_OK;
    }
    rl__fmt_bhdr_decode(p->buf, &h);
    rl__cache_unpin(p);
    if (h.type == RL__BLK_TYPE_MAP)
        return rl__map_relocate_node(t, phys, &h, moved);
    if (h.type >= RL__BLK_TYPE_CHAIN)
        return move_chain_block(t, phys, &h, strict, moved);
    return RL_OK;
}

/* Worth compacting: enough ready blocks that a steady workload with a few
 * holes does not shuffle blocks at every commit. */
static int worth_it(const rl__blk_txn *t)
{
    uint64_t ready = rl__free_ready_count(t->db);
    return ready >= MIN_READY && ready >= t->root.block_count / READY_FRACTION;
}

/* Which blocks of [from, to) the freelist holds (ready or pending), so
 * that compaction passes over them unread; NULL if memory is short. */
static uint8_t *free_in_window(const rl__blk_db *db, uint64_t from, uint64_t to)
{
    const rl__blk_free *f = &db->free;
    uint8_t *in = calloc(to > from ? to - from : 1, 1);
    for (size_t i = 0; in && i < f->nready; i++)
        if (f->ready[i].phys >= from && f->ready[i].phys < to)
            in[f->ready[i].phys - from] = 1;
    for (size_t i = 0; in && i < f->npending; i++)
        if (f->pending[i].phys >= from && f->pending[i].phys < to)
            in[f->pending[i].phys - from] = 1;
    return in;
}

int rl__compact_tail(rl__blk_txn *t, unsigned budget)
{
    rl__blk_db *db = t->db;
    int force = db->compact_commits > 0;
    uint64_t phys, stop, window;
    uint8_t *free_here;
    if (db->tidy_map) { /* before moving: it frees map nodes to move into */
        int rc = rl__map_tidy(t);
        db->tidy_map = 0;
        if (rc != RL_OK)
            return rc;
    }
    rl__free_truncate_tail(t);
    if (force) {
        budget = UINT32_MAX; /* rl__blk_compact_soon: everything, at once */
        if (--db->compact_commits == 0 || rl__free_ready_count(db) + db->free.npending == 0)
            db->compact_commits = 0;
    } else if (!worth_it(t)) {
        return RL_OK;
    } else if (db->free.nready / 4 > budget) {
        unsigned most = MAX_BUDGET_BYTES / db->block_size < MAX_BUDGET
                            ? MAX_BUDGET_BYTES / db->block_size
                            : MAX_BUDGET;
        budget = (unsigned)(db->free.nready / 4 < most ? db->free.nready / 4 : most);
    }
    window = force ? t->root.block_count : 4 * (uint64_t)budget;
    phys = t->root.block_count;
    stop = phys > db->first_block + window ? phys - window : db->first_block;
    free_here = free_in_window(db, stop, phys);
    while (budget > 0 && phys-- > stop && rl__free_lowest(db) < phys) {
        int moved = 0, rc;
        if (free_here && free_here[phys - stop])
            continue; /* free: nothing to move, no need to read it */
        rl__cache_prefetch_down(t, phys, stop);
        rc = rl__compact_move(t, phys, 0, &moved);
        if (rc != RL_OK) {
            free(free_here);
            return rc;
        }
        budget -= moved != 0;
        db->stats.blocks_moved += moved != 0;
    }
    free(free_here);
    rl__free_truncate_tail(t);
    return RL_OK;
}

void rl__blk_compact_soon(rl__blk_db *db)
{
    pthread_mutex_lock(&db->mu);
    db->compact_commits = FORCED_COMMITS;
    db->tidy_map = 1;
    pthread_mutex_unlock(&db->mu);
}

/* Whether a commit now would move or truncate anything. Caller holds db->mu
 * inside a write transaction that has not changed anything yet. */
static int compaction_due(const rl__blk_txn *t)
{
    const rl__blk_db *db = t->db;
    return db->compact_commits > 0 || db->tidy_map || worth_it(t) ||
           rl__free_tail_ready(db, t->root.block_count);
}

/* One commit of compaction alone; *due = 0 when there was nothing to do,
 * *progress = whether it moved or truncated anything. */
static int compact_commit(rl__blk_db *db, int *due, int *progress)
{
    rl__blk_txn *t;
    uint64_t moved, blocks;
    int rc = rl__txn_begin_write_now(db, &t);
    if (rc != RL_OK)
        return rc;
    pthread_mutex_lock(&db->mu);
    *due = compaction_due(t);
    moved = db->stats.blocks_moved;
    blocks = t->root.block_count;
    t->changed = *due;
    pthread_mutex_unlock(&db->mu);
    if (!*due) {
        rl__blk_rollback(t);
        return RL_OK;
    }
    rc = rl__blk_commit(t);
    pthread_mutex_lock(&db->mu);
    *progress = db->stats.blocks_moved != moved || db->root.block_count != blocks;
    pthread_mutex_unlock(&db->mu);
    return rc;
}

int rl__blk_compact_now(rl__blk_db *db, int whole)
{
    int idle = 0; /* commits in a row that did nothing: the reuse rule may
                     hold freed blocks back one commit, not two */
    if (whole)
        rl__blk_compact_soon(db);
    for (int i = 0; i < MAX_SETTLE_COMMITS && idle < 2; i++) {
        int due = 0, progress = 0, rc = compact_commit(db, &due, &progress);
        if (rc != RL_OK || !due) /* RL_BUSY: another writer came first; its commits compact too */
            return rc;
        idle = progress ? 0 : idle + 1;
    }
    pthread_mutex_lock(&db->mu);
    db->compact_commits = 0; /* the rest is left to later commits, as usual */
    pthread_mutex_unlock(&db->mu);
    return RL_OK;
}

int rl__blk_map_tidy(rl__blk_txn *t)
{
    int rc;
    if (!t || !t->write)
        return RL_MISUSE;
    pthread_mutex_lock(&t->db->mu);
    rc = rl__map_tidy(t);
    pthread_mutex_unlock(&t->db->mu);
    return rc;
}
