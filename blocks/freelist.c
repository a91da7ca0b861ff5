/*
** blocks/freelist.c: free physical blocks.
**
** In memory (rl__blk_free, owned by the writer) free blocks are split in
** two: `ready`, reusable now, sorted by physical number descending so the
** lowest block is taken first (keeping the file dense and its tail free);
** and `pending`, blocks freed by transaction F that some root or reader may
** still reach, in ascending F. At the start of each write transaction
** rl__free_promote moves every pending block with F below the reuse bound
** into ready (INV 2).
**
** On disk the freelist is a chain of FREELIST blocks linked by PHYSICAL
** number (it is rewritten whole at every commit, so it needs no map):
** 16-byte entries, each a run of adjacent blocks freed by one txn (first
** block u48 and length-1 u16, freed-by txn u64), so the whole space a
** vacuum frees takes a few entries, not one per block. At commit, free
** blocks at the very end of the file are dropped from the list and the
** file shrinks.
**
** A block freed by the transaction that wrote it ("fresh") was never
** reachable from a committed root, so it is reusable at once: it goes to
** the `fresh` array, unsorted, which is merged into ready (settle) only
** when ready's order matters: when the lowest free block is a fresh one,
** and before the tail is cut or the list saved. (Inserting each into
** ready kept it sorted, but freeing a 31,000-block tree the transaction
** had just written moved the whole array each time: a seventh of a
** 500,000-row delete.)
** Blocks of the commit areas are never listed: the commit that writes an
** area takes its blocks in order (rl__free_alloc_hot), and freeing one is
** a no-op (txn.c says when an area may be written again).
** Callers hold db->mu; only the writer touches this state.
*/
#include <stdlib.h>

#include "blk_int.h"

void rl__free_reset(rl__blk_free *f)
{
    f->nready = f->npending = f->nchain = f->nfresh = 0;
    f->fresh_min = UINT64_MAX;
    f->valid = 0;
    f->valid_txn = 0;
}

void rl__free_destroy(rl__blk_free *f)
{
    free(f->ready);
    free(f->pending);
    free(f->fresh);
    free(f->chain);
    free(f->merged);
    free(f->scratch);
    memset(f, 0, sizeof *f);
}

/* Grow an array to hold at least need elements of size sz. */
static int reserve(void **arr, size_t *cap, size_t need, size_t sz)
{
    size_t ncap = *cap ? *cap : 64;
    void *p;
    if (need <= *cap)
        return RL_OK;
    while (ncap < need)
        ncap *= 2;
    p = realloc(*arr, ncap * sz);
    if (!p)
        return RL_NOMEM;
    *arr = p;
    *cap = ncap;
    return RL_OK;
}

static int push_pending(rl__blk_free *f, uint64_t phys, uint64_t txn)
{
    if (reserve((void **)&f->pending, &f->cappending, f->npending + 1,
                sizeof *f->pending) != RL_OK)
        return RL_NOMEM;
    f->pending[f->npending].phys = phys;
    f->pending[f->npending].txn = txn;
    f->npending++;
    return RL_OK;
}

static int cmp_txn_asc(const void *a, const void *b)
{
    const rl__blk_freeent *x = a, *y = b;
    if (x->txn != y->txn)
        return x->txn < y->txn ? -1 : 1;
    return x->phys < y->phys ? -1 : x->phys > y->phys;
}

static int cmp_phys_desc(const void *a, const void *b)
{
    const rl__blk_freeent *x = a, *y = b;
    return x->phys > y->phys ? -1 : x->phys < y->phys;
}

/* Read one freelist block's runs into pending, one entry per block. */
static int load_block(rl__blk_txn *t, rl__blk_page *p, uint64_t *next)
{
    rl__blk_db *db = t->db;
    rl__blk_free *f = &db->free;
    rl__blk_bhdr h;
    rl__fmt_bhdr_decode(p->buf, &h);
    if (h.type != RL__BLK_TYPE_FREELIST || h.used % RL__FREE_ENTRY != 0)
        return RL__CORRUPT(&t->err, "block %llu: expected a freelist block (type %u, %u bytes)",
                           (unsigned long long)p->phys, h.type, h.used);
    for (uint32_t off = 0; off < h.used; off += RL__FREE_ENTRY) {
        uint64_t phys, count, txn;
        rl__fmt_free_decode(p->buf + RL__HDR_SIZE + off, &phys, &count, &txn);
        if (phys < db->first_block || phys + count > t->root.block_count || txn > t->root.txn)
            return RL__CORRUPT(&t->err,
                               "block %llu: freelist entry (%llu blocks from %llu, txn %llu) out of range",
                               (unsigned long long)p->phys, (unsigned long long)count,
                               (unsigned long long)phys, (unsigned long long)txn);
        if (f->npending + count > t->root.free_count)
            return RL__CORRUPT(&t->err, "freelist holds more than the %llu blocks the root slot says",
                               (unsigned long long)t->root.free_count);
        if (reserve((void **)&f->pending, &f->cappending, f->npending + count, sizeof *f->pending))
            return RL__FAIL(&t->err, RL_NOMEM, "no memory for the freelist");
        for (uint64_t i = 0; i < count; i++)
            (void)push_pending(f, phys + i, txn); /* room reserved above */
    }
    *next = h.next;
    return RL_OK;
}

int rl__free_load(rl__blk_txn *t)
{
    rl__blk_free *f = &t->db->free;
    uint64_t phys = t->root.freelist_head;
    if (f->valid && f->valid_txn == t->base_txn)
        return RL_OK;
    rl__free_reset(f);
    while (phys != 0) {
        rl__blk_page *p;
        int rc;
        if (f->nchain >= t->root.block_count)
            return RL__CORRUPT(&t->err, "freelist chain loops (at block %llu)",
                               (unsigned long long)phys);
        if (reserve((void **)&f->chain, &f->capchain, f->nchain + 1, sizeof *f->chain))
            return RL__FAIL(&t->err, RL_NOMEM, "no memory for the freelist");
        f->chain[f->nchain++] = phys;
        rc = rl__cache_get(t, phys, &p);
        if (rc != RL_OK)
            return rc;
        rc = load_block(t, p, &phys);
        rl__cache_unpin(p);
        if (rc != RL_OK)
            return rc;
    }
    if (f->npending != t->root.free_count)
        return RL__CORRUPT(&t->err, "freelist holds %zu blocks, root slot says %llu",
                           f->npending, (unsigned long long)t->root.free_count);
    if (f->npending > 1)
        qsort(f->pending, f->npending, sizeof *f->pending, cmp_txn_asc);
    f->valid = 1;
    f->valid_txn = t->base_txn;
    return RL_OK;
}

/* Merge the sorted (descending) src[0..k) into ready, whose room for them
 * is reserved. */
static void merge_into_ready(rl__blk_free *f, const rl__blk_freeent *src, size_t k)
{
    for (size_t i = f->nready, j = k, w = f->nready + k; j > 0;) {
        if (i > 0 && f->ready[i - 1].phys < src[j - 1].phys)
            f->ready[--w] = f->ready[--i];
        else
            f->ready[--w] = src[--j];
    }
    f->nready += k;
}

/* Move the fresh blocks into ready, in order. */
static int settle(rl__blk_free *f)
{
    if (f->nfresh == 0)
        return RL_OK;
    if (reserve((void **)&f->ready, &f->capready, f->nready + f->nfresh, sizeof *f->ready))
        return RL_NOMEM;
    qsort(f->fresh, f->nfresh, sizeof *f->fresh, cmp_phys_desc);
    merge_into_ready(f, f->fresh, f->nfresh);
    f->nfresh = 0;
    f->fresh_min = UINT64_MAX;
    return RL_OK;
}

void rl__free_promote(rl__blk_db *db, uint64_t bound)
{
    rl__blk_free *f = &db->free;
    size_t k = 0;
    while (k < f->npending && f->pending[k].txn < bound)
        k++;
    if (k == 0)
        return;
    if (reserve((void **)&f->ready, &f->capready, f->nready + k, sizeof *f->ready)) {
        return; /* out of memory: the blocks simply stay pending */
    }
    /* Sort only the k promoted ones, then merge them in from the end (both
     * descending): a commit after a vacuum may hold tens of thousands of
     * ready blocks, and sorting all of them at every begin showed up as a
     * quarter of such commits' time. */
    qsort(f->pending, k, sizeof *f->pending, cmp_phys_desc);
    merge_into_ready(f, f->pending, k);
    memmove(f->pending, f->pending + k, (f->npending - k) * sizeof *f->pending);
    f->npending -= k;
}

int rl__free_alloc(rl__blk_txn *t, uint64_t *phys)
{
    rl__blk_free *f = &t->db->free;
    t->changed = 1;
    if (f->nfresh > 0 && (f->nready == 0 || f->fresh_min < f->ready[f->nready - 1].phys) &&
        settle(f) != RL_OK)
        return RL__FAIL(&t->err, RL_NOMEM, "no memory for the freelist");
    if (f->nready > 0) {
        *phys = f->ready[--f->nready].phys;
        return RL_OK;
    }
    if (t->root.block_count >= RL__MAX_BLOCKNO ||
        t->root.block_count >= (UINT64_MAX / 2) / t->db->block_size)
        return RL__FAIL(&t->err, RL_FULL, "the database file has reached its largest size");
    *phys = t->root.block_count++;
    return RL_OK;
}

/* A block reusable at once (settle sorts it into ready later). */
static int push_fresh(rl__blk_free *f, uint64_t phys, uint64_t txn)
{
    if (reserve((void **)&f->fresh, &f->capfresh, f->nfresh + 1, sizeof *f->fresh))
        return RL_NOMEM;
    f->fresh[f->nfresh].phys = phys;
    f->fresh[f->nfresh].txn = txn;
    f->nfresh++;
    if (phys < f->fresh_min)
        f->fresh_min = phys;
    return RL_OK;
}

int rl__free_alloc_hot(rl__blk_txn *t, uint64_t *phys)
{
    if (!t->area_ok || t->area_next >= rl__fmt_area_blocks(t->db->block_size))
        return rl__free_alloc(t, phys);
    t->changed = 1;
    *phys = rl__fmt_area_first(t->db->block_size, (unsigned)(t->root.txn % RL__NSLOTS)) +
            t->area_next++;
    return RL_OK;
}

int rl__free_release(rl__blk_txn *t, uint64_t phys, int fresh)
{
    rl__blk_free *f = &t->db->free;
    int rc;
    t->changed = 1;
    if (rl__area_of(t->db, phys, NULL) >= 0)
        return RL_OK; /* areas are reused by turn (txn.c), never listed */
    rc = fresh ? push_fresh(f, phys, t->root.txn) : push_pending(f, phys, t->root.txn);
    if (fresh)
        rl__cache_list_forget(t, phys);
    if (rc != RL_OK)
        return RL__FAIL(&t->err, RL_NOMEM, "no memory for the freelist");
    return RL_OK;
}

int rl__free_page(rl__blk_txn *t, rl__blk_page *p, uint64_t txn)
{
    uint64_t phys = p->phys;
    int fresh = txn == t->root.txn;
    if (fresh && rl__area_of(t->db, phys, NULL) < 0)
        rl__cache_clean(p); /* never reached a root: nothing to write */
    rl__cache_unpin(p);
    return rl__free_release(t, phys, fresh);
}

uint64_t rl__free_lowest(const rl__blk_db *db)
{
    const rl__blk_free *f = &db->free;
    uint64_t ready = f->nready ? f->ready[f->nready - 1].phys : UINT64_MAX;
    uint64_t fresh = f->nfresh ? f->fresh_min : UINT64_MAX;
    return ready < fresh ? ready : fresh;
}

size_t rl__free_ready_count(const rl__blk_db *db)
{
    return db->free.nready + db->free.nfresh;
}

/* Whether the file's last block is ready (a commit would truncate it). */
int rl__free_tail_ready(const rl__blk_db *db, uint64_t block_count)
{
    const rl__blk_free *f = &db->free;
    return f->nready > 0 && f->ready[0].phys + 1 == block_count;
}

/* Drop ready blocks that form the tail of the file. */
void rl__free_truncate_tail(rl__blk_txn *t)
{
    rl__blk_free *f = &t->db->free;
    size_t k = 0;
    if (settle(f) != RL_OK)
        return; /* out of memory: the tail stays in the file for now */
    while (k < f->nready && f->ready[k].phys == t->root.block_count - 1) {
        t->root.block_count--;
        k++;
    }
    if (k == 0)
        return;
    memmove(f->ready, f->ready + k, (f->nready - k) * sizeof *f->ready);
    f->nready -= k;
}

/* Merge the sorted segments of src (bounds seg[0..nseg], ascending phys)
 * into one, using dst as scratch; returns the array that holds the result. */
static rl__blk_freeent *merge_segments(rl__blk_freeent *src, rl__blk_freeent *dst, size_t *seg,
                                       size_t nseg)
{
    while (nseg > 1) {
        size_t out = 0;
        for (size_t s = 0; s < nseg; s += 2) {
            size_t i = seg[s], mid = seg[s + 1], end = s + 1 < nseg ? seg[s + 2] : mid;
            size_t j = mid, w = i;
            while (i < mid || j < end)
                dst[w++] = j >= end || (i < mid && src[i].phys < src[j].phys) ? src[i++] : src[j++];
            seg[out++] = seg[s];
        }
        seg[out] = seg[nseg];
        nseg = out;
        rl__blk_freeent *tmp = src;
        src = dst;
        dst = tmp;
    }
    return src;
}

/* Every free block, ready and pending, in one array by block number: ready
 * (descending) reversed, then each pending txn's blocks (ascending), merged.
 * NULL if memory is short. */
static rl__blk_freeent *merged_by_phys(rl__blk_free *f, size_t *n)
{
    size_t total = f->nready + f->npending, nseg = 0, *seg;
    *n = total;
    if (f->nfresh > 0) /* settled by rl__free_truncate_tail unless memory is short */
        return NULL;
    if (reserve((void **)&f->merged, &f->capmerged, total + 1, sizeof *f->merged) ||
        reserve((void **)&f->scratch, &f->capscratch, total + 1, sizeof *f->scratch))
        return NULL;
    seg = malloc((f->npending + 2) * sizeof *seg);
    if (!seg)
        return NULL;
    for (size_t i = 0; i < f->nready; i++)
        f->merged[i] = f->ready[f->nready - 1 - i];
    seg[nseg++] = 0;
    for (size_t i = 0; i < f->npending; i++) {
        if (i == 0 || f->pending[i].txn != f->pending[i - 1].txn ||
            f->pending[i].phys < f->pending[i - 1].phys)
            seg[nseg++] = f->nready + i; /* a new ascending segment */
        f->merged[f->nready + i] = f->pending[i];
    }
    seg[nseg] = total;
    rl__blk_freeent *all = merge_segments(f->merged, f->scratch, seg, nseg);
    free(seg);
    return all;
}

/* Runs of all[i..]: adjacent blocks, as one entry; the entry names the
 * newest txn among them, which can only delay reuse after a reload (a
 * block ready now stays reusable by every later transaction). */
static size_t run_at(const rl__blk_freeent *all, size_t n, size_t i, uint64_t *txn)
{
    size_t j = i + 1;
    *txn = all[i].txn;
    for (; j < n && j - i < RL__FREE_RUN_MAX && all[j].phys == all[i].phys + (j - i); j++)
        if (all[j].txn > *txn)
            *txn = all[j].txn;
    return j - i;
}

static size_t count_runs(const rl__blk_freeent *all, size_t n)
{
    size_t runs = 0;
    uint64_t txn;
    for (size_t i = 0; i < n; runs++)
        i += run_at(all, n, i, &txn);
    return runs;
}

static int write_chain(rl__blk_txn *t, const uint64_t *chain, size_t k,
                       const rl__blk_freeent *all, size_t n)
{
    size_t per = t->db->payload / RL__FREE_ENTRY, i = 0;
    for (size_t b = 0; b < k; b++) {
        rl__blk_page *p;
        rl__blk_bhdr h;
        size_t cnt = 0;
        int rc = rl__cache_fresh(t, chain[b], &p);
        if (rc != RL_OK)
            return rc;
        for (; cnt < per && i < n; cnt++) {
            uint64_t txn;
            size_t len = run_at(all, n, i, &txn);
            rl__fmt_free_encode(p->buf + RL__HDR_SIZE + cnt * RL__FREE_ENTRY, all[i].phys, len,
                                txn);
            i += len;
        }
        memset(&h, 0, sizeof h);
        h.type = RL__BLK_TYPE_FREELIST;
        h.used = (uint32_t)(cnt * RL__FREE_ENTRY);
        h.self = chain[b];
        h.txn = t->root.txn;
        h.next = b + 1 < k ? chain[b + 1] : 0;
        rl__fmt_bhdr_encode(p->buf, &h);
        rl__cache_unpin(p);
    }
    return RL_OK;
}

static int cmp_phys_asc(const void *a, const void *b)
{
    const rl__blk_freeent *x = a, *y = b;
    return x->phys < y->phys ? -1 : x->phys > y->phys;
}

/* What this transaction freed is pending in the order it was freed; sort
 * it by block, so that it is saved as runs. */
static void sort_own_pending(rl__blk_txn *t)
{
    rl__blk_free *f = &t->db->free;
    size_t k = f->npending;
    while (k > 0 && f->pending[k - 1].txn == t->root.txn)
        k--;
    if (f->npending - k > 1)
        qsort(f->pending + k, f->npending - k, sizeof *f->pending, cmp_phys_asc);
}

/* Drop from all (ascending) the blocks in taken[0..k) (descending). */
static size_t drop_taken(rl__blk_freeent *all, size_t n, const rl__blk_freeent *taken, size_t k)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        while (k > 0 && taken[k - 1].phys < all[i].phys)
            k--;
        if (k > 0 && taken[k - 1].phys == all[i].phys)
            continue;
        all[w++] = all[i];
    }
    return w;
}

/* Save the freelist as a new chain of runs. Its own blocks come out of the
 * commit area or the lowest ready blocks, and taking one may split a run,
 * so the runs are counted again until the chain is long enough (a block
 * or two more at the most). */
int rl__free_save(rl__blk_txn *t)
{
    rl__blk_free *f = &t->db->free;
    size_t per = t->db->payload / RL__FREE_ENTRY, k = 0, n, nold = f->nchain;
    rl__blk_freeent *all;
    int rc = RL_OK;
    for (size_t i = 0; i < nold && rc == RL_OK; i++)
        rc = rl__free_release(t, f->chain[i], 0);
    if (rc != RL_OK)
        return rc;
    f->nchain = 0;
    rl__free_truncate_tail(t);
    sort_own_pending(t);
    all = merged_by_phys(f, &n);
    if (!all)
        return RL__FAIL(&t->err, RL_NOMEM, "no memory for the freelist");
    for (;;) {
        size_t need = (count_runs(all, n) + per - 1) / per, before = f->nready;
        if (need <= k)
            break;
        if (reserve((void **)&f->chain, &f->capchain, need + 1, sizeof *f->chain))
            return RL__FAIL(&t->err, RL_NOMEM, "no memory for the freelist");
        while (k < need && rc == RL_OK)
            rc = rl__free_alloc_hot(t, &f->chain[k++]); /* rewritten whole each commit */
        if (rc != RL_OK)
            return rc;
        /* rl__free_alloc pops the lowest ready blocks: they are still in
         * the array, just past its end. */
        if (before > f->nready)
            n = drop_taken(all, n, f->ready + f->nready, before - f->nready);
    }
    rc = write_chain(t, f->chain, k, all, n);
    if (rc != RL_OK)
        return rc;
    f->nchain = k;
    t->root.freelist_head = k ? f->chain[0] : 0;
    t->root.free_count = f->nready + f->npending;
    return RL_OK;
}
