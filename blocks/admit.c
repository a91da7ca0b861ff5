/*
** blocks/admit.c: the cache's doorkeeper. A transaction's miss of a
** B+tree node enters the block cache only the second time that block is
** missed within a while; the first time, the block is read into one of
** the transaction's own pages and stays there (cache.c: get_unlocked for
** a read transaction, rl__cache_get_once for a write transaction, which
** copies such a block on write straight from its own page).
**
** Why: a random lookup's leaf is read once and not again for a long time.
** Caching it costs an eviction (the clock's sweep, a table removal) and,
** worse, a read into a cold page: the kernel's copy then misses the CPU's
** cache on both sides. Read into the transaction's own pages, which the
** next miss reuses, the copy writes memory the CPU already holds. Blocks
** every lookup passes through (the root, interior nodes, map nodes) miss
** twice at once and are cached from then on. In a write transaction the
** clean original of a leaf it copies no longer takes a page, so its dirty
** pages stay longer: 500,000 deletes in one transaction and their commit
** made 28,466 single-block writes, 19,376 gathered writes and 101,939
** single-block reads before, 12,138, 14,526 and 77,159 after. This is the
** ghost queue of 2Q and the doorkeeper of TinyLFU, kept as small as it can
** be.
**
** The memory: a direct-mapped array of block numbers, one slot per page
** of the cache budget (a power of two). A miss looks at its block's slot:
** holding that block, it admits it and empties the slot; otherwise it
** writes the block there, pushing out whichever block had it. So a block
** is admitted when it is missed again before about as many other misses
** as the cache has pages.
**
** Invariants: a slot holds RL__CACHE_EMPTY or a block number; the array
** is only touched under db->mu. It decides what the cache keeps, never
** what a read returns.
*/
#include <stdlib.h>

#include "blk_int.h"

int rl__admit_init(rl__blk_admit *a, size_t pages)
{
    size_t size = 16;
    while (size < pages)
        size *= 2;
    a->seen = malloc(size * sizeof *a->seen);
    if (!a->seen)
        return RL_NOMEM;
    memset(a->seen, 0xff, size * sizeof *a->seen); /* RL__CACHE_EMPTY */
    a->mask = size - 1;
    return RL_OK;
}

void rl__admit_free(rl__blk_admit *a)
{
    free(a->seen);
    a->seen = NULL;
    a->mask = 0;
}

int rl__admit_missed(rl__blk_admit *a, uint64_t phys)
{
    size_t i = (size_t)((phys * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & a->mask;
    if (a->seen[i] == phys) {
        a->seen[i] = RL__CACHE_EMPTY;
        return 1;
    }
    a->seen[i] = phys;
    return 0;
}
