/*
** blocks/map.c: the block map, which turns logical block numbers (the ones
** chains link through) into physical block numbers.
**
** The map is a radix tree of MAP blocks. Each node holds F = payload / 8
** little-endian u64 entries; a tree of depth d covers logical numbers
** [0, F^d). Interior entries hold the physical number of a child node (0 =
** none yet). Leaf entries hold:
**   0                    never used
**   RL__MAP_FREE_BIT | n the logical number is free; n is the next free one
**   p                    the physical block holding that logical block
** Free logical numbers thus form a list threaded through the leaves, with
** its head in the root slot: allocating or freeing one touches one path.
** Tidying (rl__map_tidy, at a vacuum) rethreads the list in ascending
** order, so new blocks take the lowest numbers, drops the nodes past the
** highest number in use, lowering the logical limit, and drops the leaves
** below it whose numbers are all free, leaving holes (parent entry 0): a
** hole's numbers are free but on no list, and allocation refills the free
** list from the lowest hole before it takes the limit. After a vacuum the
** map covers the live numbers only (195 -> 67 map blocks for the
** benchmark's file after its automatic vacuum).
**
** Nodes are copy-on-write like any block (INV 1): changing an entry copies
** the nodes on its path that the running transaction has not yet copied,
** so replacing a chain block costs that block plus at most depth nodes.
**
** The delta: replacing a block moves its logical number to a new physical
** block, and writing that into the nodes would cost a commit of one block
** a leaf and its parents too. So such a change goes into the root's delta
** instead (up to RL__SLOT_DELTA_CAP entries, ascending by logical number),
** which the root slot carries (docs/format.md, "The map delta"); lookups
** read it first. The delta is written into the nodes ("flushed") when it
** is full, or at once for a number whose leaf this transaction has copied
** already. Invariants:
**   D1. A logical number in the delta is mapped by its leaf too (to an
**       older block, which is free or pending): new numbers, freed numbers
**       and map nodes always go into the nodes.
**   D2. At most one delta entry per logical number; the delta wins.
** Callers hold db->mu.
*/
#include <stdlib.h>

#include "blk_int.h"

/* F^depth, saturating at UINT64_MAX. */
static uint64_t map_capacity(uint32_t fanout, uint32_t depth)
{
    uint64_t cap = 1;
    for (uint32_t i = 0; i < depth; i++) {
        if (cap > UINT64_MAX / fanout)
            return UINT64_MAX;
        cap *= fanout;
    }
    return cap;
}

static unsigned map_digit(uint64_t logical, uint32_t level, uint32_t fanout)
{
    for (uint32_t i = 0; i < level; i++)
        logical /= fanout;
    return (unsigned)(logical % fanout);
}

static uint8_t *entry_at(rl__blk_page *p, unsigned idx)
{
    return p->buf + RL__HDR_SIZE + 8u * idx;
}

/* Check that a page really is a map node of the expected level. */
static int node_check(rl__blk_txn *t, rl__blk_page *p, uint32_t level)
{
    rl__blk_bhdr h;
    rl__fmt_bhdr_decode(p->buf, &h);
    if (h.type != RL__BLK_TYPE_MAP || h.flags != level)
        return RL__CORRUPT(&t->err, "block %llu: expected a level-%u map node, found type %u level %u",
                           (unsigned long long)p->phys, level, h.type, h.flags);
    if (h.txn > t->root.txn)
        return RL__CORRUPT(&t->err, "block %llu: written by future transaction %llu",
                           (unsigned long long)p->phys, (unsigned long long)h.txn);
    return RL_OK;
}

/* node_check, and that the node's first logical number is base: a node
 * named in two places of a damaged map fails it in one of them. */
static int node_check_at(rl__blk_txn *t, rl__blk_page *p, uint32_t level, uint64_t base)
{
    rl__blk_bhdr h;
    int rc = node_check(t, p, level);
    rl__fmt_bhdr_decode(p->buf, &h);
    if (rc == RL_OK && h.logical != base)
        return RL__CORRUPT(&t->err, "block %llu: a map node for logical numbers from %llu, found where those from %llu go",
                           (unsigned long long)p->phys, (unsigned long long)h.logical,
                           (unsigned long long)base);
    return rc;
}

/* The raw leaf entry of a logical number. */
static int map_get_raw(rl__blk_txn *t, uint64_t logical, uint64_t *entry)
{
    rl__blk_db *db = t->db;
    uint64_t node = t->root.map_root;
    if (logical == 0 || logical >= t->root.logical_limit)
        return RL__CORRUPT(&t->err, "logical block %llu out of range (limit %llu)",
                           (unsigned long long)logical,
                           (unsigned long long)t->root.logical_limit);
    for (uint32_t level = t->root.map_depth; level-- > 0;) {
        rl__blk_page *p;
        int rc = rl__cache_get(t, node, &p);
        if (rc != RL_OK)
            return rc;
        rc = node_check(t, p, level);
        if (rc == RL_OK)
            node = rl__get64(entry_at(p, map_digit(logical, level, db->fanout)));
        rl__cache_unpin(p);
        if (rc != RL_OK)
            return rc;
        if (node == 0 && level > 0)
            break; /* a hole: tidying dropped the nodes of free numbers only */
    }
    *entry = node;
    return RL_OK;
}

/* ---- the delta ------------------------------------------------------------ */

/* Index of logical in r's delta, or where it would go (*found = 0). */
static uint32_t delta_pos(const rl__blk_root *r, uint64_t logical, int *found)
{
    uint32_t lo = 0, hi = r->ndelta;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (r->delta[mid].logical < logical)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < r->ndelta && r->delta[lo].logical == logical;
    return lo;
}

uint64_t rl__map_delta_get(const rl__blk_root *r, uint64_t logical)
{
    int found;
    uint32_t i = delta_pos(r, logical, &found);
    return found ? r->delta[i].phys : 0;
}

static void delta_remove(rl__blk_root *r, uint32_t i)
{
    memmove(&r->delta[i], &r->delta[i + 1], (r->ndelta - i - 1) * sizeof r->delta[0]);
    r->ndelta--;
}

static int base_set(rl__blk_txn *t, uint64_t logical, uint64_t value);

/* Write every delta entry into the nodes, emptying the delta. */
static int delta_flush(rl__blk_txn *t)
{
    int rc = RL_OK;
    while (t->root.ndelta > 0 && rc == RL_OK) {
        struct rl__blk_delta d = t->root.delta[t->root.ndelta - 1];
        rc = base_set(t, d.logical, d.phys);
        if (rc == RL_OK)
            t->root.ndelta--;
    }
    return rc;
}

int rl__map_maps_to(rl__blk_txn *t, uint64_t logical, uint64_t phys, int *yes)
{
    uint64_t e = rl__map_delta_get(&t->root, logical);
    int rc = e != 0 ? RL_OK : map_get_raw(t, logical, &e);
    *yes = rc == RL_OK && e == phys; /* a free entry has its bit set: never phys */
    return rc;
}

/* A write transaction changes the map: every change forgets the memo's
 * entry for its number (base_set, rl__map_set). */
static void memo_forget(rl__blk_txn *t, uint64_t logical)
{
    unsigned m = (unsigned)(logical % RL__MAP_MEMO);
    if (t->memo[m].logical == logical)
        t->memo[m].logical = 0;
}

int rl__map_lookup(rl__blk_txn *t, uint64_t logical, uint64_t *phys)
{
    unsigned m = (unsigned)(logical % RL__MAP_MEMO);
    uint64_t e;
    int rc;
    if (t->memo[m].logical == logical && logical != 0) {
        *phys = t->memo[m].phys;
        return RL_OK;
    }
    e = rl__map_delta_get(&t->root, logical);
    rc = e != 0 ? RL_OK : map_get_raw(t, logical, &e);
    if (rc != RL_OK)
        return rc;
    if (e == 0 || (e & RL__MAP_FREE_BIT))
        return RL__CORRUPT(&t->err, "logical block %llu is %s", (unsigned long long)logical,
                           e ? "free" : "unused");
    t->memo[m].logical = logical;
    t->memo[m].phys = e;
    *phys = e;
    return RL_OK;
}

int rl__blk_writable_page(rl__blk_txn *t, rl__blk_page *old, int hot, uint64_t *new_phys,
                          rl__blk_page **out)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    uint64_t np;
    int rc;
    rl__fmt_bhdr_decode(old->buf, &h);
    if (h.txn == t->root.txn) { /* fresh: ours to change in place (always cached) */
        rl__cache_pin(old);
        rl__cache_mark_dirty(&t->db->cache, old);
        *new_phys = old->phys;
        *out = old;
        return RL_OK;
    }
    rc = hot ? rl__free_alloc_hot(t, &np) : rl__free_alloc(t, &np);
    if (rc == RL_OK)
        rc = rl__cache_fresh_copy(t, np, old->buf, &p);
    if (rc != RL_OK)
        return rc;
    h.self = np;
    h.txn = t->root.txn;
    rl__fmt_bhdr_encode(p->buf, &h);
    t->db->stats.cow_copies++;
    rc = rl__free_release(t, old->phys, 0);
    if (rc != RL_OK) {
        rl__cache_unpin(p);
        return rc;
    }
    *new_phys = np;
    *out = p;
    return RL_OK;
}

int rl__blk_writable(rl__blk_txn *t, uint64_t phys, int hot, uint64_t *new_phys,
                     rl__blk_page **out)
{
    rl__blk_page *old;
    int rc = rl__cache_get(t, phys, &old);
    if (rc != RL_OK)
        return rc;
    rc = rl__blk_writable_page(t, old, hot, new_phys, out);
    rl__cache_unpin(old);
    return rc;
}

/* A new, empty map node of the given level; returns its physical number. */
static int node_create(rl__blk_txn *t, uint32_t level, uint64_t first,
                       uint64_t *phys)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = rl__free_alloc(t, phys);
    if (rc == RL_OK)
        rc = rl__cache_fresh(t, *phys, &p);
    if (rc != RL_OK)
        return rc;
    memset(&h, 0, sizeof h);
    h.type = RL__BLK_TYPE_MAP;
    h.flags = (uint8_t)level;
    h.used = t->db->fanout * 8u;
    h.self = *phys;
    h.logical = first;
    h.txn = t->root.txn;
    rl__fmt_bhdr_encode(p->buf, &h);
    rl__cache_unpin(p);
    return RL_OK;
}

/* Grow the tree until it covers logical. */
static int ensure_depth(rl__blk_txn *t, uint64_t logical)
{
    while (logical >= map_capacity(t->db->fanout, t->root.map_depth)) {
        uint64_t top;
        rl__blk_page *p;
        int rc;
        if (t->root.map_depth == RL__MAX_MAP_DEPTH)
            return RL__FAIL(&t->err, RL_FULL, "block map is full");
        rc = node_create(t, t->root.map_depth, 0, &top);
        if (rc == RL_OK && t->root.map_depth > 0) {
            rc = rl__cache_get(t, top, &p);
            if (rc == RL_OK) {
                rl__put64(entry_at(p, 0), t->root.map_root);
                rl__cache_mark_dirty(&t->db->cache, p);
                rl__cache_unpin(p);
            }
        }
        if (rc != RL_OK)
            return rc;
        t->root.map_root = top;
        t->root.map_depth++;
    }
    return RL_OK;
}

/* Set logical's leaf entry, copying the nodes on its path as needed. */
static int base_set(rl__blk_txn *t, uint64_t logical, uint64_t value)
{
    rl__blk_page *parent = NULL, *p = NULL;
    unsigned pidx = 0;
    uint64_t node;
    int rc = ensure_depth(t, logical);
    memo_forget(t, logical);
    if (rc != RL_OK)
        return rc;
    node = t->root.map_root;
    for (uint32_t level = t->root.map_depth; level-- > 0;) {
        uint64_t np, child;
        unsigned idx = map_digit(logical, level, t->db->fanout);
        rc = rl__blk_writable(t, node, 0, &np, &p); /* map nodes never in an area */
        if (rc == RL_OK)
            rc = node_check(t, p, level);
        if (rc != RL_OK)
            break;
        if (parent)
            rl__put64(entry_at(parent, pidx), np);
        else
            t->root.map_root = np;
        rl__cache_unpin(parent);
        parent = NULL;
        if (level == 0) {
            rl__put64(entry_at(p, idx), value);
            break;
        }
        child = rl__get64(entry_at(p, idx));
        if (child == 0) {
            uint64_t span = map_capacity(t->db->fanout, level);
            rc = node_create(t, level - 1, logical - logical % span, &child);
            if (rc != RL_OK)
                break;
            rl__put64(entry_at(p, idx), child);
        }
        parent = p;
        p = NULL;
        pidx = idx;
        node = child;
    }
    rl__cache_unpin(parent);
    rl__cache_unpin(p);
    t->changed = 1;
    return rc;
}

/* The leaf entry of logical as the nodes hold it (0 when no node covers
 * it yet), and whether this transaction has copied that leaf already. */
static int base_entry(rl__blk_txn *t, uint64_t logical, uint64_t *e, int *fresh)
{
    uint64_t node = t->root.map_root;
    *e = 0;
    *fresh = 0;
    if (logical >= map_capacity(t->db->fanout, t->root.map_depth))
        return RL_OK;
    for (uint32_t level = t->root.map_depth; level-- > 0 && node != 0;) {
        rl__blk_page *p;
        rl__blk_bhdr h;
        int rc = rl__cache_get(t, node, &p);
        if (rc != RL_OK)
            return rc;
        rc = node_check(t, p, level);
        rl__fmt_bhdr_decode(p->buf, &h);
        node = rl__get64(entry_at(p, map_digit(logical, level, t->db->fanout)));
        rl__cache_unpin(p);
        if (rc != RL_OK)
            return rc;
        if (level == 0) {
            *e = node;
            *fresh = h.txn == t->root.txn;
        }
    }
    return RL_OK;
}

int rl__map_set(rl__blk_txn *t, uint64_t logical, uint64_t value)
{
    uint64_t e;
    int found, fresh, rc;
    uint32_t i = delta_pos(&t->root, logical, &found);
    t->changed = 1;
    memo_forget(t, logical);
    if (found) {
        t->root.delta[i].phys = value;
        return RL_OK;
    }
    rc = base_entry(t, logical, &e, &fresh);
    if (rc != RL_OK)
        return rc;
    if (fresh || e == 0 || (e & RL__MAP_FREE_BIT) || (value & RL__MAP_FREE_BIT) ||
        value == 0) /* D1: only a moved block goes into the delta */
        return base_set(t, logical, value);
    if (t->root.ndelta == RL__SLOT_DELTA_CAP) {
        rc = delta_flush(t);
        return rc == RL_OK ? base_set(t, logical, value) : rc;
    }
    memmove(&t->root.delta[i + 1], &t->root.delta[i], (t->root.ndelta - i) * sizeof t->root.delta[0]);
    t->root.delta[i].logical = logical;
    t->root.delta[i].phys = value;
    t->root.ndelta++;
    return RL_OK;
}

/* The physical number of the level-`level` node on the path to logical,
 * or 0 if the tree has no such node. */
static int node_on_path(rl__blk_txn *t, uint64_t logical, uint32_t level,
                        uint64_t *phys)
{
    uint64_t node = t->root.map_root;
    for (uint32_t lv = t->root.map_depth; lv-- > level + 1 && node != 0;) {
        rl__blk_page *p;
        int rc = rl__cache_get(t, node, &p);
        if (rc != RL_OK)
            return rc;
        rc = node_check(t, p, lv);
        node = rl__get64(entry_at(p, map_digit(logical, lv, t->db->fanout)));
        rl__cache_unpin(p);
        if (rc != RL_OK)
            return rc;
    }
    *phys = level < t->root.map_depth ? node : 0;
    return RL_OK;
}

int rl__map_relocate_node(rl__blk_txn *t, uint64_t phys, const rl__blk_bhdr *h,
                          int *moved)
{
    uint64_t at = 0, e = 0;
    int rc = node_on_path(t, h->logical, h->flags, &at);
    *moved = 0;
    if (rc != RL_OK || at != phys)
        return rc; /* not a live node: leave it */
    /* Rewriting the leaf entry of the node's first logical number copies
     * every node on its path that this transaction has not copied yet. */
    if (h->logical != 0 && h->logical < t->root.logical_limit)
        rc = map_get_raw(t, h->logical, &e);
    if (rc == RL_OK)
        rc = base_set(t, h->logical, e); /* the nodes themselves: never the delta */
    *moved = rc == RL_OK;
    return rc;
}

/* The first number of the lowest hole below the logical limit under the
 * node at phys (level, covering numbers from base), or 0 if none. Reads
 * interior nodes only. */
static int lowest_hole(rl__blk_txn *t, uint64_t phys, uint32_t level, uint64_t base,
                       uint64_t *budget, uint64_t *hole)
{
    uint32_t fanout = t->db->fanout;
    uint64_t span = map_capacity(fanout, level);
    rl__blk_page *p;
    int rc;
    *hole = 0;
    if ((*budget)-- == 0)
        return RL__CORRUPT(&t->err, "the block map names more nodes than the file has blocks");
    rc = rl__cache_get(t, phys, &p);
    if (rc != RL_OK)
        return rc;
    rc = node_check_at(t, p, level, base);
    for (uint32_t i = 0; rc == RL_OK && i < fanout && !*hole; i++) {
        uint64_t child = rl__get64(entry_at(p, i)), child_base = base + i * span;
        if (child_base >= t->root.logical_limit)
            break;
        if (child == 0)
            *hole = child_base ? child_base : 1;
        else if (level > 1)
            rc = lowest_hole(t, child, level - 1, child_base, budget, hole);
    }
    rl__cache_unpin(p);
    return rc;
}

/* The free list is empty: give it the numbers of the lowest hole below the
 * logical limit, if there is one, as a new leaf whose numbers are all free
 * and linked in ascending order. */
static int refill_from_hole(rl__blk_txn *t)
{
    uint32_t fanout = t->db->fanout;
    uint64_t first = 0, end, budget = t->root.block_count;
    int rc = RL_OK;
    if (t->no_holes || t->root.map_depth < 2)
        return RL_OK;
    rc = lowest_hole(t, t->root.map_root, t->root.map_depth - 1, 0, &budget, &first);
    if (rc != RL_OK || first == 0) {
        t->no_holes = rc == RL_OK;
        return rc;
    }
    end = first - first % fanout + fanout;
    end = end < t->root.logical_limit ? end : t->root.logical_limit;
    for (uint64_t l = end; rc == RL_OK && l-- > first;) /* the last first, so each links up */
        rc = base_set(t, l, RL__MAP_FREE_BIT | (l + 1 < end ? l + 1 : 0));
    if (rc == RL_OK)
        t->root.free_logical = first;
    return rc;
}

int rl__map_alloc_logical(rl__blk_txn *t, uint64_t *logical)
{
    uint64_t head, e;
    int rc = t->root.free_logical == 0 ? refill_from_hole(t) : RL_OK;
    t->epoch++;
    if (rc != RL_OK)
        return rc;
    head = t->root.free_logical;
    if (head == 0) {
        if (t->root.logical_limit >= RL__MAX_BLOCKNO)
            return RL__FAIL(&t->err, RL_FULL, "no logical block numbers left");
        *logical = t->root.logical_limit++;
        return RL_OK;
    }
    rc = map_get_raw(t, head, &e);
    if (rc != RL_OK)
        return rc;
    if (!(e & RL__MAP_FREE_BIT) || (e & ~RL__MAP_FREE_BIT) >= t->root.logical_limit)
        return RL__CORRUPT(&t->err, "free logical list: entry %llu is not free",
                           (unsigned long long)head);
    t->root.free_logical = e & ~RL__MAP_FREE_BIT;
    *logical = head;
    return RL_OK;
}

int rl__map_free_logical(rl__blk_txn *t, uint64_t logical)
{
    int found, rc;
    uint32_t i = delta_pos(&t->root, logical, &found);
    t->epoch++;
    if (found) /* D1: a free number lives in its leaf only */
        delta_remove(&t->root, i);
    rc = base_set(t, logical, RL__MAP_FREE_BIT | t->root.free_logical);
    if (rc == RL_OK)
        t->root.free_logical = logical;
    return rc;
}

/* ---- tidying: the free list in order, the unused tail dropped ------------ */

/* Free the map subtree at phys, a node of level covering numbers from
 * base, and every node under it. */
static int free_subtree(rl__blk_txn *t, uint64_t phys, uint32_t level, uint64_t base)
{
    uint32_t fanout = t->db->fanout;
    uint64_t span = map_capacity(fanout, level); /* numbers under one entry */
    uint64_t *children = NULL;
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = rl__cache_get(t, phys, &p);
    if (rc != RL_OK)
        return rc;
    rc = node_check_at(t, p, level, base);
    rl__fmt_bhdr_decode(p->buf, &h);
    if (rc == RL_OK && level > 0) {
        children = malloc(fanout * sizeof *children);
        if (!children)
            rc = RL__FAIL(&t->err, RL_NOMEM, "no memory to tidy the block map");
        for (uint32_t i = 0; children && i < fanout; i++)
            children[i] = rl__get64(entry_at(p, i));
    }
    if (rc != RL_OK) {
        rl__cache_unpin(p);
        return rc;
    }
    rc = rl__free_page(t, p, h.txn);
    for (uint32_t i = 0; rc == RL_OK && children && i < fanout; i++)
        if (children[i] != 0)
            rc = free_subtree(t, children[i], level - 1, base + i * span);
    free(children);
    return rc;
}

/* Free the one map node at phys (its children are someone else's care). */
static int free_node(rl__blk_txn *t, uint64_t phys)
{
    rl__blk_page *p;
    rl__blk_bhdr h;
    int rc = rl__cache_get(t, phys, &p);
    if (rc != RL_OK)
        return rc;
    rl__fmt_bhdr_decode(p->buf, &h);
    return rl__free_page(t, p, h.txn);
}

/* Whether the node at phys has a nonzero entry from index from on. */
static int has_entries_from(rl__blk_txn *t, uint64_t phys, uint32_t level, unsigned from,
                            int *any)
{
    rl__blk_page *p;
    int rc = rl__cache_get(t, phys, &p);
    *any = 0;
    if (rc != RL_OK)
        return rc;
    rc = node_check(t, p, level);
    for (unsigned i = from; rc == RL_OK && i < t->db->fanout && !*any; i++)
        *any = rl__get64(entry_at(p, i)) != 0;
    rl__cache_unpin(p);
    return rc;
}

/* Clear every entry of the subtree at *phys (a node of level whose first
 * logical number is base) that covers only numbers >= top, freeing the
 * nodes under them; the nodes that change are copied and *phys follows. */
static int drop_above(rl__blk_txn *t, uint64_t *phys, uint32_t level, uint64_t base,
                      uint64_t top)
{
    uint32_t fanout = t->db->fanout;
    uint64_t span = map_capacity(fanout, level); /* numbers under one entry */
    uint64_t skip = top > base ? (top - base) / span : 0;
    unsigned from = skip < fanout ? (unsigned)skip : fanout;
    rl__blk_page *p = NULL;
    int any, rc = has_entries_from(t, *phys, level, from, &any);
    if (rc != RL_OK || !any)
        return rc;
    rc = rl__blk_writable(t, *phys, 0, phys, &p);
    for (unsigned i = from; rc == RL_OK && i < fanout; i++) {
        uint64_t e = rl__get64(entry_at(p, i)), child_base = base + i * span;
        if (e == 0)
            continue;
        if (level > 0 && child_base < top) { /* the child that straddles top */
            rc = drop_above(t, &e, level - 1, child_base, top);
        } else {
            if (level > 0)
                rc = free_subtree(t, e, level - 1, child_base);
            e = 0;
        }
        if (rc == RL_OK)
            rl__put64(entry_at(p, i), e);
    }
    rl__cache_unpin(p);
    return rc;
}

/* A walk over the map's leaves in order of their numbers (ascending, or
 * descending with down), skipping absent subtrees and numbers at or past
 * the logical limit; fn gets each leaf's first number and a copy of its
 * entries, and ends the walk by returning RL_DONE. A damaged map that
 * names more nodes than the file has blocks is RL_CORRUPT, not a walk
 * without end. */
typedef int (*leaf_fn)(rl__blk_txn *t, uint64_t first, const uint64_t *e, void *arg);

typedef struct leaf_walk {
    int down;
    uint64_t budget; /* nodes left to visit */
    leaf_fn fn;
    void *arg;
} leaf_walk;

static int walk_leaves(rl__blk_txn *t, leaf_walk *w, uint64_t phys, uint32_t level,
                       uint64_t base)
{
    uint32_t fanout = t->db->fanout;
    uint64_t span = map_capacity(fanout, level), *e = malloc(fanout * sizeof *e);
    rl__blk_page *p;
    int rc = e ? RL_OK : RL__FAIL(&t->err, RL_NOMEM, "no memory to tidy the block map");
    if (rc == RL_OK && w->budget-- == 0)
        rc = RL__CORRUPT(&t->err, "the block map names more nodes than the file has blocks");
    if (rc == RL_OK)
        rc = rl__cache_get(t, phys, &p);
    if (rc == RL_OK) {
        rc = node_check_at(t, p, level, base);
        for (uint32_t i = 0; rc == RL_OK && i < fanout; i++)
            e[i] = rl__get64(entry_at(p, i));
        rl__cache_unpin(p);
    }
    if (rc == RL_OK && level == 0)
        rc = w->fn(t, base, e, w->arg);
    for (uint32_t k = 0; rc == RL_OK && level > 0 && k < fanout; k++) {
        uint32_t i = w->down ? fanout - 1 - k : k;
        uint64_t child_base = base + i * span;
        if (e[i] != 0 && child_base < t->root.logical_limit)
            rc = walk_leaves(t, w, e[i], level - 1, child_base);
    }
    free(e);
    return rc;
}

static int each_leaf(rl__blk_txn *t, int down, leaf_fn fn, void *arg)
{
    leaf_walk w = {down, t->root.block_count, fn, arg};
    int rc = t->root.map_depth == 0 ? RL_OK
                                    : walk_leaves(t, &w, t->root.map_root, t->root.map_depth - 1, 0);
    return rc == RL_DONE ? RL_OK : rc;
}

static int in_use(uint64_t e)
{
    return e != 0 && !(e & RL__MAP_FREE_BIT);
}

/* live_top's leaf_fn: the leaf's highest number in use, if any. */
static int top_in_leaf(rl__blk_txn *t, uint64_t first, const uint64_t *e, void *arg)
{
    uint64_t *top = arg, limit = t->root.logical_limit;
    for (uint64_t l = first + t->db->fanout < limit ? first + t->db->fanout : limit; l-- > first;)
        if (l > 0 && in_use(e[l - first])) {
            *top = l + 1;
            return RL_DONE;
        }
    return RL_OK;
}

/* One past the highest logical number in use (1 if none is). */
static int live_top(rl__blk_txn *t, uint64_t *top)
{
    *top = 1;
    return each_leaf(t, 1, top_in_leaf, top);
}

typedef struct relink {
    uint64_t top, prev, prev_e, head;
} relink;

/* relink_ascending's leaf_fn: link each free number to the one before. */
static int relink_leaf(rl__blk_txn *t, uint64_t first, const uint64_t *e, void *arg)
{
    relink *r = arg;
    uint64_t end = first + t->db->fanout < r->top ? first + t->db->fanout : r->top;
    int rc = RL_OK;
    if (first >= r->top)
        return RL_DONE;
    for (uint64_t l = first ? first : 1; rc == RL_OK && l < end; l++) {
        if (!(e[l - first] & RL__MAP_FREE_BIT))
            continue;
        if (r->prev == 0)
            r->head = l;
        else if (r->prev_e != (RL__MAP_FREE_BIT | l))
            rc = base_set(t, r->prev, RL__MAP_FREE_BIT | l);
        r->prev = l;
        r->prev_e = e[l - first];
    }
    return rc;
}

/* Thread the free numbers below top into one list in ascending order,
 * rewriting only the entries that change. */
static int relink_ascending(rl__blk_txn *t, uint64_t top)
{
    relink r = {top, 0, 0, 0};
    int rc = each_leaf(t, 0, relink_leaf, &r);
    if (rc == RL_OK && r.prev != 0 && r.prev_e != RL__MAP_FREE_BIT)
        rc = base_set(t, r.prev, RL__MAP_FREE_BIT);
    if (rc == RL_OK)
        t->root.free_logical = r.head;
    return rc;
}

/* Whether the leaf at phys (its first number base) has no number below top
 * in use. */
static int leaf_all_free(rl__blk_txn *t, uint64_t phys, uint64_t base, uint64_t top, int *yes)
{
    rl__blk_page *p;
    uint64_t end = base + t->db->fanout < top ? base + t->db->fanout : top;
    int rc = rl__cache_get(t, phys, &p);
    *yes = 0;
    if (rc != RL_OK)
        return rc;
    rc = node_check_at(t, p, 0, base);
    *yes = rc == RL_OK;
    for (uint64_t l = base; rc == RL_OK && l < end && *yes; l++)
        *yes = !in_use(rl__get64(entry_at(p, (unsigned)(l - base))));
    rl__cache_unpin(p);
    return rc;
}

/* Turn every leaf under the node at *phys (level >= 1, covering numbers
 * from base) whose numbers below top are all free into a hole: its entry
 * becomes 0 and the leaf is freed (an interior node left with no child
 * below top goes too: *gone). Nodes are copied only where they change;
 * *phys follows. *budget bounds the nodes visited (a damaged map). */
static int drop_free_leaves(rl__blk_txn *t, uint64_t *phys, uint32_t level, uint64_t base,
                            uint64_t top, uint64_t *budget, int *gone)
{
    uint32_t fanout = t->db->fanout;
    uint64_t span = map_capacity(fanout, level), *e = malloc(fanout * sizeof *e);
    rl__blk_page *p = NULL;
    int rc = e ? RL_OK : RL__FAIL(&t->err, RL_NOMEM, "no memory to tidy the block map");
    int changed = 0, kept = 0;
    *gone = 0;
    if (rc == RL_OK && (*budget)-- == 0)
        rc = RL__CORRUPT(&t->err, "the block map names more nodes than the file has blocks");
    if (rc == RL_OK && (rc = rl__cache_get(t, *phys, &p)) == RL_OK) {
        rc = node_check_at(t, p, level, base);
        for (uint32_t i = 0; rc == RL_OK && i < fanout; i++)
            e[i] = rl__get64(entry_at(p, i));
        rl__cache_unpin(p);
    }
    for (uint32_t i = 0; rc == RL_OK && i < fanout; i++) {
        uint64_t child_base = base + i * span, was = e[i];
        int drop = 0;
        if (e[i] == 0 || child_base >= top)
            continue;
        if (level == 1 && (*budget)-- == 0)
            rc = RL__CORRUPT(&t->err, "the block map names more nodes than the file has blocks");
        else if (level == 1)
            rc = leaf_all_free(t, e[i], child_base, top, &drop);
        else
            rc = drop_free_leaves(t, &e[i], level - 1, child_base, top, budget, &drop);
        if (rc == RL_OK && drop && level == 1)
            rc = free_node(t, e[i]);
        if (drop)
            e[i] = 0;
        changed |= e[i] != was;
        kept |= e[i] != 0;
    }
    if (rc == RL_OK && !kept && base > 0) { /* nothing left below top: all of it goes */
        *gone = 1;
        rc = free_node(t, *phys);
    } else if (rc == RL_OK && changed) {
        rc = rl__blk_writable(t, *phys, 0, phys, &p);
        for (uint32_t i = 0; rc == RL_OK && i < fanout; i++)
            rl__put64(entry_at(p, i), e[i]);
        if (rc == RL_OK)
            rl__cache_unpin(p);
    }
    free(e);
    return rc;
}

/* Make holes of the leaves with no number below top in use (tidying). */
static int make_holes(rl__blk_txn *t, uint64_t top)
{
    uint64_t root = t->root.map_root, budget = t->root.block_count;
    int gone = 0, rc;
    if (t->root.map_depth < 2)
        return RL_OK;
    rc = drop_free_leaves(t, &root, t->root.map_depth - 1, 0, top, &budget, &gone);
    if (rc == RL_OK && root != t->root.map_root) {
        t->root.map_root = root;
        t->changed = 1;
    }
    t->no_holes = 0;
    return rc;
}

int rl__map_tidy(rl__blk_txn *t)
{
    uint64_t top = 0, root;
    int rc;
    memset(t->memo, 0, sizeof t->memo); /* (it holds numbers in use only; to be plain) */
    rc = live_top(t, &top);
    if (rc == RL_OK)
        rc = make_holes(t, top);
    if (rc == RL_OK)
        rc = relink_ascending(t, top);
    root = t->root.map_root; /* the relinking may have copied it */
    if (rc == RL_OK && top < t->root.logical_limit && t->root.map_depth > 0) {
        rc = drop_above(t, &root, t->root.map_depth - 1, 0, top);
        if (rc == RL_OK) {
            t->root.map_root = root;
            t->root.logical_limit = top;
            t->changed = 1;
        }
    }
    return rc;
}
