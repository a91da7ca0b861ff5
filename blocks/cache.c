/*
** blocks/cache.c: the block cache. Pages are keyed by physical block
** number in an open-addressing table, replaced by a clock, and bounded by
** a page budget fixed at open.
**
** A lookup probes an array of block numbers (eight to a cache line) and
** touches only the page it finds: a hit sets the page's used bit and
** moves nothing. When a page must go, the clock's hand sweeps the ring of
** all pages: a used page loses its bit and stays, the first unused and
** unpinned one goes. A new page starts unused, so a block read once (a
** random lookup's leaf) goes before the interior nodes every lookup
** passes through.
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
** Admission: a transaction's miss of a B+tree node enters the cache only
** on that block's second miss lately (the doorkeeper, admit.c); the first
** time it stays in one of the transaction's own pages (get_unlocked,
** rl__cache_get_once), so a leaf read once pushes nothing out. The own
** pages are taken in turn, and a block used again while one of them
** still holds it is found there (own_find) and cached from that page,
** not read a second time.
**
** Invariants:
**   1. A pinned page is never evicted or reused; pins last one call. (A
**      page dropped while pinned leaves the table, but its struct and
**      bytes are reused only once the pin is let go.)
**   2. A page read from the file passed rl__fmt_block_check (INV 3).
**   3. count <= cap unless every page is pinned.
**   4. A page is on the dirty list exactly when its dirty flag is set
**      (rl__cache_mark_dirty and rl__cache_clean change both).
**   5. The table and the ring hold the same pages, count of them;
**      ring[p->slot] == p. Pages handed out by page_get and not yet
**      published or discarded number c->out, and the ring and the table
**      always have room for all of them (the table stays at most half
**      full), so publishing cannot fail.
**   6. A page in the table is never retired (RL__PAGE_RETIRED); every
**      other page struct is. Page structs and outgrown tables are freed
**      only with the cache, so a reader without the lock never follows a
**      pointer into freed memory.
** Callers hold db->mu, except for a read transaction's reads with
** t->unlocked set ("Readers without the lock", below). For a read
** transaction, rl__cache_get lets go of it while it reads and checks what
** it missed (io_begin), so a caller keeps nothing across the call that it
** has not pinned (as it must anyway: the call may evict any unpinned
** page); two readers that miss the same block both read it, and the
** second keeps the first one's page.
*/
#include <stdlib.h>

#include "blk_int.h"

static size_t home_of(const rl__cache_tab *tab, uint64_t phys)
{
    return (size_t)((phys * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & tab->mask;
}

/* Pins (INV 1). Pins under db->mu are counted on pages in the cache; a
 * reader without the lock pins only a page not retired (try_pin), and a
 * page leaves the cache only when claim() finds no pin and retires it in
 * the same step, so a pinned page never leaves. rl__cache_unpin needs no
 * lock; the release of the last unpin orders its reads of the page before
 * the page's reuse. */
static int pinned(rl__blk_page *p)
{
    return (__atomic_load_n(&p->pins, __ATOMIC_ACQUIRE) & ~RL__PAGE_RETIRED) != 0;
}

static void pin(rl__blk_page *p)
{
    __atomic_add_fetch(&p->pins, 1, __ATOMIC_RELAXED);
}

static int try_pin(rl__blk_page *p)
{
    unsigned n = __atomic_load_n(&p->pins, __ATOMIC_RELAXED);
    do {
        if (n & RL__PAGE_RETIRED)
            return 0;
    } while (!__atomic_compare_exchange_n(&p->pins, &n, n + 1, 1, __ATOMIC_ACQUIRE,
                                          __ATOMIC_RELAXED));
    return 1;
}

/* Take unpinned page p out of readers' reach (it is about to leave the
 * cache); 0 if it is pinned. Caller holds db->mu. */
static int claim(rl__blk_page *p)
{
    unsigned zero = 0;
    return __atomic_compare_exchange_n(&p->pins, &zero, RL__PAGE_RETIRED, 0, __ATOMIC_ACQUIRE,
                                       __ATOMIC_RELAXED);
}

static void set_used(rl__blk_page *p, uint8_t used)
{
    __atomic_store_n(&p->used, used, __ATOMIC_RELAXED);
}

/* A retired page struct kept for reuse (c->spare). */
static void spare_put(rl__blk_cache *c, rl__blk_page *p)
{
    p->dnext = c->spare;
    c->spare = p;
}

/* A spare page no reader still holds a pin on, or NULL. */
static rl__blk_page *spare_take(rl__blk_cache *c)
{
    for (rl__blk_page **at = &c->spare; *at; at = &(*at)->dnext)
        if (!pinned(*at)) {
            rl__blk_page *p = *at;
            *at = p->dnext;
            return p;
        }
    return NULL;
}

/* A new page struct with room for a block: clean, retired, unpinned. */
static rl__blk_page *page_new(uint32_t block_size)
{
    rl__blk_page *p = malloc(sizeof *p + block_size);
    if (!p)
        return NULL;
    memset(p, 0, sizeof *p);
    p->buf = (uint8_t *)(p + 1);
    p->pins = RL__PAGE_RETIRED;
    return p;
}

/* A clean page struct, retired, pinned once (by whoever asked for it): a
 * spare, or new. */
static rl__blk_page *page_alloc(rl__blk_cache *c)
{
    rl__blk_page *p = spare_take(c);
    if (!p && !(p = page_new(c->block_size)))
        return NULL;
    __atomic_store_n(&p->pins, RL__PAGE_RETIRED | 1, __ATOMIC_RELAXED);
    return p;
}

/* A table of size entries (a power of two), all empty. */
static rl__cache_tab *table_alloc(size_t size)
{
    rl__cache_tab *tab = malloc(sizeof *tab);
    uint64_t *keys = malloc(size * sizeof *keys);
    rl__blk_page **pages = calloc(size, sizeof *pages);
    if (!tab || !keys || !pages) {
        free(tab);
        free(keys);
        free(pages);
        return NULL;
    }
    memset(keys, 0xff, size * sizeof *keys); /* RL__CACHE_EMPTY */
    tab->mask = size - 1;
    tab->keys = keys;
    tab->pages = pages;
    tab->older = NULL;
    return tab;
}

static void table_free(rl__cache_tab *tab)
{
    free(tab->keys);
    free(tab->pages);
    free(tab);
}

int rl__cache_init(rl__blk_cache *c, uint32_t block_size, size_t cap)
{
    size_t size = 64;
    memset(c, 0, sizeof *c);
    c->block_size = block_size;
    c->cap = cap < 16 ? 16 : cap;
    while (size < c->cap * 2)
        size *= 2;
    c->ring_cap = c->cap + RL__READ_AHEAD;
    c->ring = malloc(c->ring_cap * sizeof *c->ring);
    c->tab = table_alloc(size);
    if (!c->ring || !c->tab || rl__admit_init(&c->admit, c->cap) != RL_OK) {
        free(c->ring);
        c->ring = NULL;
        if (c->tab)
            table_free(c->tab);
        c->tab = NULL;
        rl__admit_free(&c->admit);
        return RL_NOMEM;
    }
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

/* Under db->mu: nothing changes the table meanwhile, so plain reads. */
static rl__blk_page *table_find(const rl__blk_cache *c, uint64_t phys)
{
    const rl__cache_tab *tab = c->tab;
    size_t i = home_of(tab, phys);
    for (;;) {
        uint64_t k = tab->keys[i];
        if (k == phys)
            return tab->pages[i];
        if (k == RL__CACHE_EMPTY)
            return NULL;
        i = (i + 1) & tab->mask;
    }
}

/* Entry i becomes (key, p): the page first, so that a reader without the
 * lock that sees the key (acquire) sees a page at least that new. */
static void entry_set(rl__cache_tab *tab, size_t i, uint64_t key, rl__blk_page *p)
{
    __atomic_store_n(&tab->pages[i], p, __ATOMIC_RELAXED);
    __atomic_store_n(&tab->keys[i], key, __ATOMIC_RELEASE);
}

static void table_put(rl__cache_tab *tab, rl__blk_page *p)
{
    size_t i = home_of(tab, p->phys);
    while (tab->keys[i] != RL__CACHE_EMPTY)
        i = (i + 1) & tab->mask;
    entry_set(tab, i, p->phys, p);
}

/* Remove phys's entry, moving back the entries after it that may live in
 * the hole (an entry may, unless its home lies after the hole), so that a
 * probe still stops only at an empty entry: no tombstones. A reader
 * without the lock may miss an entry while it moves: it then takes the
 * lock, which is always right. */
static void table_remove(rl__blk_cache *c, uint64_t phys)
{
    rl__cache_tab *tab = c->tab;
    size_t i = home_of(tab, phys);
    while (tab->keys[i] != phys)
        i = (i + 1) & tab->mask;
    for (size_t j = (i + 1) & tab->mask; tab->keys[j] != RL__CACHE_EMPTY; j = (j + 1) & tab->mask)
        if (((j - home_of(tab, tab->keys[j])) & tab->mask) >= ((j - i) & tab->mask)) {
            entry_set(tab, i, tab->keys[j], tab->pages[j]);
            i = j;
        }
    __atomic_store_n(&tab->keys[i], RL__CACHE_EMPTY, __ATOMIC_RELEASE);
}

/* Make room for one more page handed out (INV 5): a longer ring, or a
 * table twice the size with every page put again. */
static int make_room(rl__blk_cache *c)
{
    size_t want = c->count + c->out + 1;
    if (want > c->ring_cap) {
        rl__blk_page **ring = realloc(c->ring, 2 * c->ring_cap * sizeof *ring);
        if (!ring)
            return RL_NOMEM;
        c->ring = ring;
        c->ring_cap *= 2;
    }
    if (want * 2 > c->tab->mask + 1) {
        rl__cache_tab *tab = table_alloc(2 * (c->tab->mask + 1));
        if (!tab)
            return RL_NOMEM;
        for (size_t i = 0; i < c->count; i++)
            table_put(tab, c->ring[i]);
        tab->older = c->tab;
        __atomic_store_n(&c->tab, tab, __ATOMIC_RELEASE);
    }
    return RL_OK;
}

/* Take p out of the ring: the last page takes its slot. */
static void ring_remove(rl__blk_cache *c, rl__blk_page *p)
{
    rl__blk_page *last = c->ring[--c->count];
    c->ring[p->slot] = last;
    last->slot = p->slot;
}

/* Remove page p, claimed (retired) by the caller, from the cache. */
static void page_remove(rl__blk_cache *c, rl__blk_page *p)
{
    rl__cache_clean(p);
    table_remove(c, p->phys);
    ring_remove(c, p);
    spare_put(c, p);
}

/* A page from page_get that is not to be published after all. */
static void page_discard(rl__blk_cache *c, rl__blk_page *p)
{
    if (!p)
        return;
    c->out--;
    __atomic_store_n(&p->pins, RL__PAGE_RETIRED, __ATOMIC_RELEASE);
    spare_put(c, p);
}

void rl__cache_free(rl__blk_cache *c)
{
    for (size_t i = 0; i < c->count; i++)
        free(c->ring[i]);
    while (c->spare) {
        rl__blk_page *p = c->spare;
        c->spare = p->dnext;
        free(p);
    }
    while (c->own_spare) {
        rl__blk_page *p = c->own_spare;
        c->own_spare = p->dnext;
        free(p);
    }
    while (c->tab) {
        rl__cache_tab *tab = c->tab;
        c->tab = tab->older;
        table_free(tab);
    }
    free(c->ring);
    c->ring = NULL;
    c->count = 0;
    rl__admit_free(&c->admit);
}

int rl__cache_consistent(const rl__blk_cache *c)
{
    size_t used = 0;
    for (size_t i = 0; i <= c->tab->mask; i++)
        used += c->tab->keys[i] != RL__CACHE_EMPTY;
    if (used != c->count || c->count > c->ring_cap ||
        2 * (c->count + c->out) > c->tab->mask + 1)
        return 0;
    for (size_t i = 0; i < c->count; i++)
        if (c->ring[i]->slot != i || table_find(c, c->ring[i]->phys) != c->ring[i] ||
            (__atomic_load_n(&c->ring[i]->pins, __ATOMIC_RELAXED) & RL__PAGE_RETIRED))
            return 0;
    return 1;
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
    int e;
    db->cache.changes++;
    e = db->io->write(db->io, p->buf, db->block_size, off);
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
    db->cache.changes++;
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
    while (hi - lo + 1 < RUN_MAX && lo > 0 && (q = table_find(c, lo - 1)) && q->dirty && !pinned(q))
        lo--;
    while (hi - lo + 1 < RUN_MAX && (q = table_find(c, hi + 1)) && q->dirty && !pinned(q))
        hi++;
    for (uint64_t b = lo; b <= hi; b++)
        run[n++] = b == p->phys ? p : table_find(c, b);
    return write_run(t, run, n);
}

/* Find an unpinned page to give up, writing it first if dirty (unless
 * clean_only: then dirty pages stay, and *victim may come back NULL). The
 * clock: two turns of the hand at most, the first clearing used bits. */
static int evict_one(rl__blk_txn *t, rl__blk_page **victim, int clean_only)
{
    rl__blk_cache *c = &t->db->cache;
    *victim = NULL;
    for (size_t step = 0; step < 2 * c->count; step++) {
        rl__blk_page *p;
        if (c->hand >= c->count)
            c->hand = 0;
        p = c->ring[c->hand++];
        if (pinned(p) || (clean_only && p->dirty))
            continue;
        if (__atomic_load_n(&p->used, __ATOMIC_RELAXED)) {
            set_used(p, 0);
            continue;
        }
        if (p->dirty) {
            rl__blk_txn *w = t->db->writer ? t->db->writer : t;
            int rc = write_with_neighbours(w, p);
            if (rc != RL_OK) {
                if (w != t)
                    t->err = w->err;
                return rc;
            }
        }
        if (!claim(p))
            continue; /* a reader without the lock pinned it meanwhile */
        table_remove(c, p->phys);
        ring_remove(c, p);
        *victim = p;
        return RL_OK;
    }
    return RL_OK;
}

/* Make room for a page about to be published: evict while the cache is
 * full (more than one page when pins had kept it over). With clean_only,
 * a full cache gives up only a clean page (RL_FULL if none). */
static int room_for_one(rl__blk_txn *t, int clean_only)
{
    rl__blk_cache *c = &t->db->cache;
    while (c->count >= c->cap) {
        rl__blk_page *victim;
        int rc = evict_one(t, &victim, clean_only);
        if (rc != RL_OK)
            return rc;
        if (!victim)
            break;
        spare_put(c, victim);
    }
    if (clean_only && c->count >= c->cap)
        return RL_FULL;
    if (make_room(c) != RL_OK)
        return RL__FAIL(&t->err, RL_NOMEM, "no memory for the block cache's index");
    return RL_OK;
}

/* A page struct for phys, not yet in the table: recycled or new, to be
 * published or discarded. With clean_only, a full cache gives up only a
 * clean page (RL_FULL if none). */
static int page_get(rl__blk_txn *t, uint64_t phys, int clean_only, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *p;
    int rc = room_for_one(t, clean_only);
    if (rc != RL_OK)
        return rc;
    p = page_alloc(c);
    if (!p)
        return RL__FAIL(&t->err, RL_NOMEM, "no memory for a %u-byte block", c->block_size);
    p->phys = phys;
    p->dirty = 0;
    set_used(p, 0);
    c->out++;
    *out = p;
    return RL_OK;
}

static int page_obtain(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    return page_get(t, phys, 0, out);
}

/* Put page p (from page_get, its bytes ready) in the cache: readers
 * without the lock may pin it from now on. */
static void page_publish(rl__blk_cache *c, rl__blk_page *p)
{
    table_put(c->tab, p);
    p->slot = c->count;
    c->ring[c->count++] = p;
    c->out--;
    __atomic_and_fetch(&p->pins, ~RL__PAGE_RETIRED, __ATOMIC_RELEASE);
}

/* Count a block read from the file (caller holds db->mu). */
static void count_read(rl__blk_db *db)
{
    db->stats.blocks_read++;
}

/* Read block phys into buf and check it; counts nothing, so a reader may
 * call it without db->mu. */
static int read_checked(rl__blk_db *db, uint64_t phys, uint8_t *buf, rl__err *err)
{
    uint64_t off = phys * db->block_size;
    size_t got = 0;
    int e = db->io->read(db->io, buf, db->block_size, off, &got);
    if (e)
        return rl__io_err(err, e, "read", off);
    if (got < db->block_size)
        return RL__CORRUPT(err, "block %llu lies past the end of the file (truncated?)",
                           (unsigned long long)phys);
    return rl__fmt_block_check(buf, db->block_size, phys, err);
}

int rl__blk_read_raw(rl__blk_db *db, uint64_t phys, uint8_t *buf, rl__err *err)
{
    int rc = read_checked(db, phys, buf, err);
    if (rc == RL_OK)
        count_read(db);
    return rc;
}

/* A read transaction lets go of db->mu while it reads the file: readers
 * sharing a handle then read in parallel. Nothing the caller holds can
 * go meanwhile (its pages are pinned, the pages being read are handed
 * out and not yet published: INV 5), and the file needs no lock, as
 * readers in other processes show. A write transaction keeps the lock:
 * its commit's steps must not interleave with other threads' use of the
 * cache. */
static void io_begin(rl__blk_txn *t)
{
    if (!t->write)
        pthread_mutex_unlock(&t->db->mu);
}

static void io_end(rl__blk_txn *t)
{
    if (!t->write)
        pthread_mutex_lock(&t->db->mu);
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

/* t's read-ahead buffer: a spare one of the handle's, or a new one (NULL
 * when memory is short). */
static uint8_t *ahead_take(rl__blk_txn *t)
{
    rl__blk_db *db = t->db;
    if (t->ahead)
        return t->ahead;
    if (db->spare_ahead) {
        t->ahead = db->spare_ahead;
        memcpy(&db->spare_ahead, t->ahead, sizeof db->spare_ahead);
    } else {
        t->ahead = malloc(RL__READ_AHEAD * (size_t)db->block_size);
    }
    return t->ahead;
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
    if (n < 2 || !ahead_take(t))
        return 0;
    return n;
}

void rl__cache_ahead_return(rl__blk_txn *t)
{
    if (!t->ahead)
        return;
    memcpy(t->ahead, &t->db->spare_ahead, sizeof t->db->spare_ahead);
    t->db->spare_ahead = t->ahead;
    t->ahead = NULL;
}

void rl__cache_ahead_free(rl__blk_db *db)
{
    while (db->spare_ahead) {
        void *next;
        memcpy(&next, db->spare_ahead, sizeof next);
        free(db->spare_ahead);
        db->spare_ahead = next;
    }
}

/* Cache block phys, read into b and checked, unless it is cached already;
 * with p (a page whose buffer is b) publish it, else copy into a clean
 * page. Never write a dirty page here: a dirty page is cached, and b
 * holds the file as it was before that write. */
static void keep_ahead(rl__blk_txn *t, uint64_t phys, const uint8_t *b, rl__blk_page *p)
{
    rl__blk_db *db = t->db;
    if (table_find(&db->cache, phys)) {
        page_discard(&db->cache, p);
        return;
    }
    if (!p && page_get(t, phys, 1, &p) != RL_OK) {
        rl__err_clear(&t->err);
        return;
    }
    if (p->buf != b)
        memcpy(p->buf, b, db->block_size);
    __atomic_store_n(&p->pins, RL__PAGE_RETIRED, __ATOMIC_RELAXED);
    page_publish(&db->cache, p);
    count_read(db);
}

/* Read blocks phys.. (ahead_count) with one read, and cache each that
 * checks, is not cached yet and cannot have changed since it was read. With the I/O's readv the blocks go
 * straight into clean pages (one copy, not two), and a block cached
 * before the read into t->ahead, to be dropped; without it all go
 * through t->ahead. Not an error when it keeps none: the caller then
 * reads phys alone. */
static int read_ahead(rl__blk_txn *t, uint64_t phys)
{
    rl__blk_db *db = t->db;
    rl__blk_page *pages[RL__READ_AHEAD] = {0};
    uint8_t *bufs[RL__READ_AHEAD];
    int fine[RL__READ_AHEAD] = {0};
    uint64_t n = ahead_count(t, phys), off = phys * db->block_size, changes;
    size_t got = 0;
    rl__err ignore;
    int e;
    if (n == 0)
        return RL_NOMEM;
    for (uint64_t i = 0; i < n; i++) {
        bufs[i] = t->ahead + i * db->block_size;
        if (!db->io->readv || table_find(&db->cache, phys + i))
            continue;
        if (page_get(t, phys + i, 1, &pages[i]) == RL_OK)
            bufs[i] = pages[i]->buf;
        else
            rl__err_clear(&t->err);
    }
    changes = db->cache.changes;
    io_begin(t);
    e = db->io->readv ? db->io->readv(db->io, bufs, (size_t)n, db->block_size, off, &got)
                      : db->io->read(db->io, t->ahead, (size_t)n * db->block_size, off, &got);
    for (uint64_t i = 0; !e && i < n && i < got / db->block_size; i++)
        fine[i] = (pages[i] || !db->io->readv) &&
                  rl__fmt_block_check(bufs[i], db->block_size, phys + i, &ignore) == RL_OK;
    io_end(t);
    /* While the lock was let go, the writer may have taken a block past
     * phys (free in t's snapshot), written it and let its page go, or
     * another transaction may have dropped one another process wrote:
     * then the bytes read of them may be old. phys itself is t's. */
    for (uint64_t i = 1; db->cache.changes != changes && i < n; i++)
        fine[i] = 0;
    for (uint64_t i = 0; i < n; i++) {
        if (fine[i])
            keep_ahead(t, phys + i, bufs[i], pages[i]);
        else
            page_discard(&db->cache, pages[i]);
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
    if (phys >= t->root.block_count || from < t->db->first_block || table_find(&t->db->cache, phys))
        return;
    if (read_ahead(t, from) != RL_OK)
        rl__err_clear(&t->err);
}

/* ---- Readers without the lock ----------------------------------------------
 * A read transaction's single-block reads run without db->mu
 * (rl__blk_block_get sets t->unlocked). A cached page is found through
 * the table's atomic entries and pinned with try_pin, and its block
 * number is checked once it is pinned (the entry may have moved). A miss
 * is read into one of the transaction's own pages (retired: nobody else
 * can pin it). Then, if db->mu is free and the doorkeeper admits the
 * block (its second miss lately: admit.c), the page joins the cache as a
 * locked read would have put it there, and a spare takes its place among
 * the transaction's pages. Otherwise (a first miss, or the lock held by a
 * writer inserting or committing) the page stays the transaction's own
 * until its misses have used all its pages in turn; a use of the block
 * before then finds it there (own_find), a later one reads it again.
 * So a reader never waits for a writer, and a leaf read once costs no
 * eviction and no copy into cold memory. A transaction's own pages are
 * lent at its begin from those ended transactions gave back, so a handle
 * holds RL__OWN_PAGES at most for each transaction open at once.
 * Misses in order (a scan) take the lock, for their read-ahead.
 */

/* Block phys's page, pinned, if the cache holds it; else NULL. */
static rl__blk_page *peek(rl__blk_cache *c, uint64_t phys)
{
    const rl__cache_tab *tab = __atomic_load_n(&c->tab, __ATOMIC_ACQUIRE);
    size_t i = home_of(tab, phys);
    for (size_t n = 0; n <= tab->mask; n++, i = (i + 1) & tab->mask) {
        uint64_t k = __atomic_load_n(&tab->keys[i], __ATOMIC_ACQUIRE);
        rl__blk_page *p;
        if (k == RL__CACHE_EMPTY)
            return NULL;
        if (k != phys)
            continue;
        p = __atomic_load_n(&tab->pages[i], __ATOMIC_RELAXED);
        if (!p || !try_pin(p))
            return NULL;
        if (p->phys == phys) {
            set_used(p, 1);
            return p;
        }
        rl__cache_unpin(p);
        return NULL;
    }
    return NULL;
}

/* One of t's own pages that nothing pins, pinned once, its index in
 * *slot; NULL if all are in use or memory is short. An own page's phys is
 * the block it holds, read by t, or RL__CACHE_EMPTY. The pages are taken
 * in turn, so the last few blocks read stay for own_find. */
static rl__blk_page *own_take(rl__blk_txn *t, int *slot)
{
    for (int k = 0; k < RL__OWN_PAGES; k++) {
        int i = (t->own_hand + k) % RL__OWN_PAGES;
        rl__blk_page *p = t->own[i];
        if (!p && (p = t->own[i] = page_new(t->db->block_size)) != NULL)
            p->phys = RL__CACHE_EMPTY;
        if (!p)
            return NULL;
        if (!pinned(p)) {
            __atomic_store_n(&p->pins, RL__PAGE_RETIRED | 1, __ATOMIC_RELAXED);
            t->own_hand = (i + 1) % RL__OWN_PAGES;
            *slot = i;
            return p;
        }
    }
    return NULL;
}

/* Read block phys into t's own page p (from own_take) and check it; on
 * failure p is let go and holds no block. */
static int own_read(rl__blk_txn *t, rl__blk_page *p, uint64_t phys)
{
    int rc;
    p->phys = phys;
    t->last_miss = phys;
    rc = read_checked(t->db, phys, p->buf, &t->err);
    if (rc != RL_OK) {
        p->phys = RL__CACHE_EMPTY;
        rl__cache_unpin(p);
    }
    return rc;
}

/* Put t's own page p (read, checked, pinned by the caller, its block not
 * cached) in the cache, a spare taking its place among t's pages. On
 * failure p stays t's own. Caller holds db->mu. */
static int publish_own(rl__blk_txn *t, int slot, rl__blk_page *p)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *q;
    int rc = room_for_one(t, 0);
    if (rc != RL_OK)
        return rc;
    if (!(q = page_alloc(c)))
        return RL__FAIL(&t->err, RL_NOMEM, "no memory for a %u-byte block", c->block_size);
    __atomic_store_n(&q->pins, RL__PAGE_RETIRED, __ATOMIC_RELAXED);
    q->phys = RL__CACHE_EMPTY;
    t->own[slot] = q;
    c->out++; /* page_publish counts it back */
    page_publish(c, p);
    return RL_OK;
}

/* Block phys's page, pinned and marked used, if the cache holds it. Caller
 * holds db->mu. */
static rl__blk_page *cached(rl__blk_cache *c, uint64_t phys)
{
    rl__blk_page *p = table_find(c, phys);
    if (p) {
        set_used(p, 1);
        pin(p);
    }
    return p;
}

/* A read transaction's page p of its own, read and checked, goes into the
 * cache if it can; the page to use. Caller holds db->mu. */
static rl__blk_page *adopt(rl__blk_txn *t, int slot, rl__blk_page *p)
{
    rl__blk_page *q = cached(&t->db->cache, p->phys);
    if (q) { /* another reader cached it meanwhile */
        rl__cache_unpin(p);
        return q;
    }
    if (publish_own(t, slot, p) != RL_OK)
        rl__err_clear(&t->err);
    return p;
}

/* t's own page holding block phys, pinned once more, its index in *slot;
 * NULL if none does. A committed block does not change while t may reach
 * it, so the page is as good as the file. */
static rl__blk_page *own_find(rl__blk_txn *t, uint64_t phys, int *slot)
{
    for (int i = 0; i < RL__OWN_PAGES; i++)
        if (t->own[i] && t->own[i]->phys == phys) {
            pin(t->own[i]);
            *slot = i;
            return t->own[i];
        }
    return NULL;
}

/* A read transaction t has used its own page p (index slot) for a block,
 * read from the file just now if was_read, else found among its pages
 * (the block's second use). With db->mu at hand, count the read and cache
 * the block if the doorkeeper admits it; else it stays t's own. The page
 * to use. */
static rl__blk_page *own_used(rl__blk_txn *t, int slot, rl__blk_page *p, int was_read)
{
    rl__blk_db *db = t->db;
    if (pthread_mutex_trylock(&db->mu) != 0) {
        if (was_read)
            __atomic_add_fetch(&db->reads_unlocked, 1, __ATOMIC_RELAXED);
        return p;
    }
    if (was_read)
        count_read(db);
    if (rl__admit_missed(&db->cache.admit, p->phys))
        p = adopt(t, slot, p);
    pthread_mutex_unlock(&db->mu);
    return p;
}

static int get_unlocked(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    rl__blk_page *p = peek(&t->db->cache, phys);
    int slot, rc;
    if (p) {
        *out = p;
        return RL_OK;
    }
    if ((p = own_find(t, phys, &slot)) != NULL) {
        *out = own_used(t, slot, p, 0);
        return RL_OK;
    }
    if (phys == t->last_miss + 1 || !(p = own_take(t, &slot)))
        return RL__NEED_LOCK;
    if ((rc = own_read(t, p, phys)) != RL_OK)
        return rc;
    *out = own_used(t, slot, p, 1);
    return RL_OK;
}

/* rl__cache_get after a miss, with db->mu: read ahead when the misses go
 * in order, else read the block into a cache page. */
static int get_missed(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *p, *q;
    int rc;
    if (phys == t->last_miss + 1 && phys >= t->db->first_block && read_ahead(t, phys) == RL_OK &&
        (p = table_find(c, phys)) != NULL) {
        pin(p);
        *out = p;
        return RL_OK;
    }
    t->last_miss = phys;
    rc = page_obtain(t, phys, &p);
    if (rc != RL_OK)
        return rc;
    io_begin(t);
    rc = read_checked(t->db, phys, p->buf, &t->err);
    io_end(t);
    if (rc != RL_OK) {
        page_discard(c, p);
        return rc;
    }
    count_read(t->db);
    if ((q = cached(c, phys)) != NULL) { /* another reader cached it meanwhile */
        page_discard(c, p);
        *out = q;
        return RL_OK;
    }
    page_publish(c, p);
    *out = p;
    return RL_OK;
}

int rl__cache_get(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    int rc = check_range(t, phys);
    if (rc != RL_OK)
        return rc;
    if (t->unlocked)
        return get_unlocked(t, phys, out);
    if ((*out = cached(&t->db->cache, phys)) != NULL)
        return RL_OK;
    return get_missed(t, phys, out);
}

int rl__cache_get_once(rl__blk_txn *t, uint64_t phys, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_bhdr h;
    rl__blk_page *p;
    int slot, rc;
    if (!t->write)
        return rl__cache_get(t, phys, out);
    if ((rc = check_range(t, phys)) != RL_OK)
        return rc;
    if ((*out = cached(c, phys)) != NULL || (*out = own_find(t, phys, &slot)) != NULL)
        return RL_OK;
    if (phys == t->last_miss + 1 || rl__admit_missed(&c->admit, phys) || !(p = own_take(t, &slot)))
        return get_missed(t, phys, out);
    if ((rc = own_read(t, p, phys)) != RL_OK)
        return rc;
    count_read(t->db);
    rl__fmt_bhdr_decode(p->buf, &h);
    if (h.txn == t->root.txn && /* t wrote it early: it may change in place */
        (rc = publish_own(t, slot, p)) != RL_OK) {
        p->phys = RL__CACHE_EMPTY;
        rl__cache_unpin(p);
        return rc;
    }
    *out = p;
    return RL_OK;
}

void rl__cache_pin(rl__blk_page *p)
{
    pin(p);
}

/* rl__cache_fresh, with the page's bytes copied from src (NULL: zeros). */
static int fresh_page(rl__blk_txn *t, uint64_t phys, const uint8_t *src, rl__blk_page **out)
{
    rl__blk_cache *c = &t->db->cache;
    rl__blk_page *p = table_find(c, phys);
    if (p) {
        /* A stale copy of a block now free (INV 2): nobody can reach it. */
        pin(p);
    } else {
        int rc = page_obtain(t, phys, &p);
        if (rc != RL_OK)
            return rc;
        page_publish(c, p);
    }
    set_used(p, 1); /* a block being written: the writer comes back to it */
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
        __atomic_sub_fetch(&p->pins, 1, __ATOMIC_RELEASE);
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
        rl__blk_page *p = table_find(c, first + j);
        if (!p || !p->dirty)
            return 0;
    }
    for (uint32_t j = 0; j < n; j++) {
        rl__blk_page *p = table_find(c, first + j);
        uint32_t crc = rl__fmt_block_seal(p->buf, bs);
        memcpy(dst + (size_t)j * bs, p->buf, bs);
        list_record(t, p->phys, crc);
        t->db->stats.blocks_written++;
        rl__cache_clean(p);
    }
    return 1;
}

/* Remove page p from the cache even if it is pinned. A pin on a page
 * that must go is a reader's without the lock, held for a moment on a
 * page it found where another used to be (it lets go when it sees the
 * block number), or one of a reader whose snapshot reaches the block,
 * whose bytes then stay as they are (INV 2); either way the page goes to
 * the spares and is reused only once the pin is let go (spare_take). */
static void page_drop(rl__blk_cache *c, rl__blk_page *p)
{
    c->changes++;
    __atomic_or_fetch(&p->pins, RL__PAGE_RETIRED, __ATOMIC_ACQUIRE);
    page_remove(c, p);
}

void rl__cache_drop_dirty(rl__blk_cache *c)
{
    while (c->dirty.dnext != &c->dirty)
        page_drop(c, c->dirty.dnext);
}

void rl__cache_drop_block(rl__blk_cache *c, uint64_t phys)
{
    rl__blk_page *p = table_find(c, phys);
    if (p)
        page_drop(c, p);
}

void rl__cache_drop_all(rl__blk_cache *c)
{
    while (c->count > 0)
        page_drop(c, c->ring[c->count - 1]);
}

void rl__cache_own_lend(rl__blk_txn *t)
{
    rl__blk_cache *c = &t->db->cache;
    t->own_hand = 0;
    for (int i = 0; i < RL__OWN_PAGES && c->own_spare; i++) {
        t->own[i] = c->own_spare;
        c->own_spare = t->own[i]->dnext;
        t->own[i]->phys = RL__CACHE_EMPTY;
    }
}

void rl__cache_own_return(rl__blk_txn *t)
{
    rl__blk_cache *c = &t->db->cache;
    for (int i = 0; i < RL__OWN_PAGES; i++) {
        if (!t->own[i])
            continue;
        t->own[i]->dnext = c->own_spare;
        c->own_spare = t->own[i];
        t->own[i] = NULL;
    }
}
