/*
** blocks/cache.c: the block cache. Pages are keyed by physical block
** number, kept in a hash table and an LRU list, and bounded by a page
** budget fixed at open.
**
** Dirty pages belong to the running write transaction and are always
** fresh blocks (INV 1), so the cache may write one out early to make room:
** no committed root can reach it. That keeps a huge transaction within the
** budget. Every page written is recorded in the transaction's commit list
** (physical number and CRC) until the list overflows. Dirty pages are
** also on a list of their own, so a flush visits only them, and pages
** with adjacent block numbers are written with one writev (a page written
** to make room takes its dirty neighbours along).
**
** Read-ahead: when a transaction misses the block right after the one it
** missed last (a scan over leaves a vacuum or a bulk load laid out in
** order), the cache reads the next RL__READ_AHEAD blocks with one read
** and keeps those that pass their checks and are not cached already (a
** cached page may be newer than the file). A block that fails is simply
** not kept: only the block asked for can fail the call.
**
** Invariants:
**   1. A pinned page is never evicted or reused; pins last one call.
**   2. A page read from the file passed rl__fmt_block_check (INV 3).
**   3. count <= cap unless every page is pinned.
**   4. A page is on the dirty list exactly when its dirty flag is set
**      (rl__cache_mark_dirty and rl__cache_clean change both).
** Callers hold db->mu.
*/
#include <stdlib.h>

#include "blk_int.h"

static size_t bucket_of(const rl__blk_cache *c, uint64_t phys)
{
    return (size_t)((phys * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (c->nbuckets - 1);
}

int rl__cache_init(rl__blk_cache *c, uint32_t block_size, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->block_size = block_size;
    c->cap = cap < 16 ? 16 : cap;
    c->nbuckets = 64;
    while (c->nbuckets < c->cap * 2)
        c->nbuckets *= 2;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (!c->buckets)
        return RL_NOMEM;
    c->lru.lnext = c->lru.lprev = &c->lru;
    c->dirty.dnext = c->dirty.dprev = &c->dirty;
    return RL_OK;
}

void rl__cache_mark_dirty(rl__blk_cache *c, rl__blk_page *p)
{
    if (p->dirty)
        return;
    p->dirty = 1;
    p->dnext = c->dirty.dnext;
    p->dprev = &c->dirty;
    c->dirty.dnext->dprev = p;
    c->dirty.dnext = p;
}

void rl__cache_clean(rl__blk_page *p)
{
    if (!p->dirty)
        return;
    p->dirty = 0;
    p->dprev->dnext = p->dnext;
    p->dnext->dprev = p->dprev;
}

static void lru_unlink(rl__blk_page *p)
{
    p->lprev->lnext = p->lnext;
    p->lnext->lprev = p->lprev;
}

static void lru_push_front(rl__blk_cache *c, rl__blk_page *p)
{
    p->lnext = c->lru.lnext;
    p->lprev = &c->lru;
    c->lru.lnext->lprev = p;
    c->lru.lnext = p;
}

static rl__blk_page *hash_find(const rl__blk_cache *c, uint64_t phys)
{
    rl__blk_page *p = c->buckets[bucket_of(c, phys)];
    while (p && p->phys != phys)
        p = p->hnext;
    return p;
}

static void hash_remove(rl__blk_cache *c, rl__blk_page *p)
{
    rl__blk_page **pp = &c->buckets[bucket_of(c, p->phys)];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
}

static void hash_insert(rl__blk_cache *c, rl__blk_page *p)
{
    size_t b = bucket_of(c, p->phys);
    p->hnext = c->buckets[b];
    c->buckets[b] = p;
}

static void page_remove(rl__blk_cache *c, rl__blk_page *p)
{
    rl__cache_clean(p);
    hash_remove(c, p);
    lru_unlink(p);
    c->count--;
    free(p);
}

void rl__cache_free(rl__blk_cache *c)
{
    while (c->lru.lnext && c->lru.lnext != &c->lru)
        page_remove(c, c->lru.lnext);
    free(c->buckets);
    c->buckets = NULL;
}

/* Record that the running transaction wrote phys with crc (commit list). */
static void list_record(rl__blk_txn *t, uint64_t phys, uint32_t crc)
{
    if (t->list_overflow)
        return;
    for (uint32_t i = 0; i < t->nlisted; i++)
        if (t->listed[i].phys == phys) {
            t->listed[i].crc = crc;
            return;
        }
    if (t->nlisted == RL__SLOT_LIST_CAP) {
        t->list_overflow = 1;
        return;
    }
    t->listed[t->nlisted].phys = phys;
    t->listed[t->nlisted].crc = crc;
    t->nlisted++;
}

void rl__cache_list_forget(rl__blk_txn *t, uint64_t phys)
{
    for (uint32_t i = 0; i < t->nlisted; i++)
        if (t->listed[i].phys == phys) {
            t->listed[i] = t->listed[--t->nlisted];
            return;
        }
}

int rl__cache_write_page(rl__blk_txn *t, rl__blk_page *p)
{
    rl__blk_db *db = t->db;
    uint32_t crc = rl__fmt_block_seal(p->buf, db->block_size);
    uint64_t off = p->phys * db->block_size;
    int e = db->io->write(db->io, p->buf, db->block_size, off);
    if (e)
        return rl__io_err(&t->err, e, "write", off);
    db->stats.blocks_written++;
    list_record(t, p->phys, crc);
    rl__cache_clean(p);
    return RL_OK;
}

#define RUN_MAX 64 /* pages written by one writev at the most */

/* Write n dirty pages with consecutive block numbers, sealed and recorded
 * in the commit list: one writev when the I/O has it. */
static int write_run(rl__blk_txn *t, rl__blk_page **pages, size_t n)
{
    rl__blk_db *db = t->db;
    const uint8_t *bufs[RUN_MAX] = {NULL};
    uint32_t crcs[RUN_MAX];
    uint64_t off = pages[0]->phys * db->block_size;
    int e;
    if (n == 1 || !db->io->writev) {
        for (size_t i = 0; i < n; i++) {
            int rc = rl__cache_write_page(t, pages[i]);
            if (rc != RL_OK)
                return rc;
        }
        return RL_OK;
    }
    for (size_t i = 0; i < n; i++) {
        crcs[i] = rl__fmt_block_seal(pages[i]->buf, db->block_size);
        bufs[i] = pages[i]->buf;
    }
    e = db->io->writev(db->io, bufs, n, db->block_size, off);
    if (e)
        return rl__io_err(&t->err, e, "write", off);
    for (size_t i = 0; i < n; i++) {
        db->stats.blocks_written++;
        list_record(t, pages[i]->phys, crcs[i]);
        rl__cache_clean(pages[i]);
    }
    return RL_OK;
}

/* A dirty page written to make room takes its dirty, unpinned neighbours
 * along in the same write: blocks a big transaction wrote one after the
 * other (a bulk insert's leaves) go out as runs, not one by one. */
static int write_with_neighbours(rl__blk_txn *t, rl__blk_page *p)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *run[RUN_MAX], *q;
    uint64_t lo = p->phys, hi = p->phys;
    size_t n = 0;
    if (!t->db->io->writev)
        return rl__cache_write_page(t, p);
    while (hi - lo + 1 < RUN_MAX && lo > 0 && (q = hash_find(c, lo - 1)) && q->dirty && !q->pins)
        lo--;
    while (hi - lo + 1 < RUN_MAX && (q = hash_find(c, hi + 1)) && q->dirty && !q->pins)
        hi++;
    for (uint64_t b = lo; b <= hi; b++)
        run[n++] = b == p->phys ? p : hash_find(c, b);
    return write_run(t, run, n);
}

/* Find an unpinned page to give up, writing it first if dirty (unless
 * clean_only: then dirty pages stay, and *victim may come back NULL). */
static int evict_one(rl__blk_txn *t, rl__blk_page **victim, int clean_only)
{
    rl__blk_cache *c = &t->db->cache;
    *victim = NULL;
    for (rl__blk_page *p = c->lru.lprev; p != &c->lru; p = p->lprev) {
        if (p->pins || (clean_only && p->dirty))
            continue;
        if (p->dirty) {
            rl__blk_txn *w = t->db->writer ? t->db->writer : t;
            int rc = write_with_neighbours(w, p);
            if (rc != RL_OK) {
                if (w != t)
                    t->err = w->err;
                return rc;
            }
        }
        hash_remove(c, p);
        lru_unlink(p);
        c->count--;
        *victim = p;
        return RL_OK;
    }
    return RL_OK;
}

/* A page struct for phys, not yet in the table: recycled or new. With
 * clean_only, a full cache gives up only a clean page (RL_FULL if none). */
static int page_get(rl__blk_txn *t, uint64_t phys, int clean_only, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *p = NULL;
    if (c->count >= c->cap) {
        int rc = evict_one(t, &p, clean_only);
        if (rc != RL_OK)
            return rc;
        if (!p && clean_only)
            return RL_FULL;
    }
    if (!p) {
        p = malloc(sizeof *p + c->block_size);
        if (!p)
            return RL__FAIL(&t->err, RL_NOMEM, "no memory for a %u-byte block",
                            c->block_size);
        p->buf = (uint8_t *)(p + 1);
    }
    p->phys = phys;
    p->pins = 1;
    p->dirty = 0;
    *out = p;
    return RL_OK;
}

static int page_obtain(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    return page_get(t, phys, 0, out);
}

static void page_publish(rl__blk_cache *c, rl__blk_page *p)
{
    hash_insert(c, p);
    lru_push_front(c, p);
    c->count++;
}

int rl__blk_read_raw(rl__blk_db *db, uint64_t phys, uint8_t *buf, rl__err *err)
{
    uint64_t off = phys * db->block_size;
    size_t got = 0;
    int e = db->io->read(db->io, buf, db->block_size, off, &got);
    if (e)
        return rl__io_err(err, e, "read", off);
    if (got < db->block_size)
        return RL__CORRUPT(err, "block %llu lies past the end of the file (truncated?)",
                           (unsigned long long)phys);
    db->stats.blocks_read++;
    return rl__fmt_block_check(buf, db->block_size, phys, err);
}

static int check_range(rl__blk_txn *t, uint64_t phys)
{
    if (phys >= t->db->first_block && phys < t->root.block_count)
        return RL_OK; /* the common case, without the areas' arithmetic */
    if (rl__area_of(t->db, phys, NULL) < 0)
        return RL__CORRUPT(&t->err, "link to block %llu out of range [%llu, %llu) "
                           "and not in a commit area",
                           (unsigned long long)phys,
                           (unsigned long long)t->db->first_block,
                           (unsigned long long)t->root.block_count);
    return RL_OK;
}

/* How many blocks from phys on to read ahead: up to RL__READ_AHEAD, not
 * past the snapshot's end, and a quarter of the cache at most (a small
 * cache keeps what it has); 0 if too few or no buffer. */
static uint64_t ahead_count(rl__blk_txn *t, uint64_t phys)
{
    rl__blk_db *db = t->db;
    uint64_t n = t->root.block_count - phys;
    if (n > RL__READ_AHEAD)
        n = RL__READ_AHEAD;
    if (n > db->cache.cap / 4)
        n = db->cache.cap / 4;
    if (n < 2 || (!db->ahead && !(db->ahead = malloc(RL__READ_AHEAD * (size_t)db->block_size))))
        return 0;
    return n;
}

/* Cache block phys + i read into b, unless it is cached already or does
 * not check; with p (a page whose buffer is b) publish it, else copy into
 * a clean page. Never write a dirty page here: a dirty page is cached, and
 * b holds the file as it was before that write. */
static void keep_ahead(rl__blk_txn *t, uint64_t phys, const uint8_t *b, rl__blk_page *p)
{
    rl__blk_db *db = t->db;
    rl__err ignore;
    if (hash_find(&db->cache, phys) || rl__fmt_block_check(b, db->block_size, phys, &ignore)) {
        free(p);
        return;
    }
    if (!p && page_get(t, phys, 1, &p) != RL_OK) {
        rl__err_clear(&t->err);
        return;
    }
    if (p->buf != b)
        memcpy(p->buf, b, db->block_size);
    p->pins = 0;
    page_publish(&db->cache, p);
    db->stats.blocks_read++;
}

/* Read blocks phys.. (ahead_count) with one read, and cache each that
 * checks and is not cached yet. With the I/O's readv the blocks go
 * straight into clean pages (one copy, not two); else through db->ahead.
 * Not an error when it keeps none: the caller then reads phys alone. */
static int read_ahead(rl__blk_txn *t, uint64_t phys)
{
    rl__blk_db *db = t->db;
    rl__blk_page *pages[RL__READ_AHEAD] = {0};
    uint8_t *bufs[RL__READ_AHEAD];
    uint64_t n = ahead_count(t, phys), off = phys * db->block_size;
    size_t got = 0;
    int e;
    if (n == 0)
        return RL_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        bufs[i] = db->ahead + i * db->block_size;
        if (!db->io->readv || hash_find(&db->cache, phys + i))
            continue;
        if (page_get(t, phys + i, 1, &pages[i]) == RL_OK)
            bufs[i] = pages[i]->buf;
        else
            rl__err_clear(&t->err);
    }
    e = db->io->readv ? db->io->readv(db->io, bufs, (size_t)n, db->block_size, off, &got)
                      : db->io->read(db->io, db->ahead, (size_t)n * db->block_size, off, &got);
    for (uint64_t i = 0; i < n; i++) {
        if (!e && i < got / db->block_size)
            keep_ahead(t, phys + i, bufs[i], pages[i]);
        else
            free(pages[i]);
    }
    if (e)
        return RL_IOERR;
    n = got / db->block_size;
    if (n > 0)
        t->last_miss = phys + n - 1;
    return RL_OK;
}

void rl__cache_prefetch_down(rl__blk_txn *t, uint64_t phys, uint64_t floor)
{
    uint64_t from = phys + 1 >= floor + RL__READ_AHEAD ? phys + 1 - RL__READ_AHEAD : floor;
    if (phys >= t->root.block_count || from < t->db->first_block || hash_find(&t->db->cache, phys))
        return;
    if (read_ahead(t, from) != RL_OK)
        rl__err_clear(&t->err);
}

int rl__cache_get(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *p;
    int rc = check_range(t, phys);
    if (rc != RL_OK)
        return rc;
    p = hash_find(c, phys);
    if (p) {
        lru_unlink(p);
        lru_push_front(c, p);
        p->pins++;
        *out = p;
        return RL_OK;
    }
    if (phys == t->last_miss + 1 && phys >= t->db->first_block && read_ahead(t, phys) == RL_OK &&
        (p = hash_find(c, phys)) != NULL) {
        lru_unlink(p);
        lru_push_front(c, p);
        p->pins++;
        *out = p;
        return RL_OK;
    }
    t->last_miss = phys;
    rc = page_obtain(t, phys, &p);
    if (rc != RL_OK)
        return rc;
    rc = rl__blk_read_raw(t->db, phys, p->buf, &t->err);
    if (rc != RL_OK) {
        free(p);
        return rc;
    }
    page_publish(c, p);
    *out = p;
    return RL_OK;
}

/* rl__cache_fresh, with the page's bytes copied from src (NULL: zeros). */
static int fresh_page(rl__blk_txn *t, uint64_t phys, const uint8_t *src, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *p = hash_find(c, phys);
    if (p) {
        /* A stale copy of a block now free (INV 2): nobody can reach it. */
        lru_unlink(p);
        lru_push_front(c, p);
        p->pins++;
    } else {
        int rc = page_obtain(t, phys, &p);
        if (rc != RL_OK)
            return rc;
        page_publish(c, p);
    }
    if (src)
        memcpy(p->buf, src, c->block_size);
    else
        memset(p->buf, 0, c->block_size);
    rl__cache_mark_dirty(c, p);
    *out = p;
    return RL_OK;
}

int rl__cache_fresh(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    return fresh_page(t, phys, NULL, out);
}

int rl__cache_fresh_copy(rl__blk_txn *t, uint64_t phys, const uint8_t *src, rl__blk_page **out)
{
    return fresh_page(t, phys, src, out);
}

void rl__cache_unpin(rl__blk_page *p)
{
    if (p)
        p->pins--;
}

static int cmp_page_phys(const void *a, const void *b)
{
    uint64_t x = (*(rl__blk_page *const *)a)->phys;
    uint64_t y = (*(rl__blk_page *const *)b)->phys;
    return x < y ? -1 : x > y;
}

int rl__cache_flush(rl__blk_txn *t, uint64_t keep_from, uint64_t keep_to)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page **dirty = malloc((c->count + 1) * sizeof *dirty);
    size_t n = 0;
    int rc = RL_OK;
    if (!dirty)
        return RL__FAIL(&t->err, RL_NOMEM, "no memory to flush the cache");
    for (rl__blk_page *p = c->dirty.dnext; p != &c->dirty; p = p->dnext)
        if (p->phys < keep_from || p->phys >= keep_to)
            dirty[n++] = p;
    qsort(dirty, n, sizeof *dirty, cmp_page_phys);
    for (size_t i = 0, j; i < n && rc == RL_OK; i = j) {
        for (j = i + 1; j < n && j - i < RUN_MAX && dirty[j]->phys == dirty[j - 1]->phys + 1; j++)
            ;
        rc = write_run(t, dirty + i, j - i); /* adjacent blocks: one write */
    }
    free(dirty);
    return rc;
}

int rl__cache_take_run(rl__blk_txn *t, uint64_t first, uint32_t n, uint8_t *dst)
{
    rl__blk_cache *c = &t->db->cache;
    uint32_t bs = t->db->block_size;
    for (uint32_t j = 0; j < n; j++) {
        rl__blk_page *p = hash_find(c, first + j);
        if (!p || !p->dirty)
            return 0;
    }
    for (uint32_t j = 0; j < n; j++) {
        rl__blk_page *p = hash_find(c, first + j);
        uint32_t crc = rl__fmt_block_seal(p->buf, bs);
        memcpy(dst + (size_t)j * bs, p->buf, bs);
        list_record(t, p->phys, crc);
        t->db->stats.blocks_written++;
        rl__cache_clean(p);
    }
    return 1;
}

void rl__cache_drop_dirty(rl__blk_cache *c)
{
    while (c->dirty.dnext != &c->dirty)
        page_remove(c, c->dirty.dnext);
}

void rl__cache_drop_all(rl__blk_cache *c)
{
    rl__blk_page *p = c->lru.lnext;
    while (p != &c->lru) {
        rl__blk_page *next = p->lnext;
        if (!p->pins)
            page_remove(c, p);
        p = next;
    }
}
