/*
** blocks/blk_int.h: what the files of the block layer share with each
** other and with nobody else: on-disk constants, little-endian helpers,
** and the bodies of the handle structs. Upper layers include blocks.h only.
**
** Files of the layer and what each owns:
**   crc32c.c   CRC32C (hardware when the CPU has it)
**   io_posix.c the real I/O table
**   format.c   encoding and checking of the file header, root slots and
**              block headers (every on-disk byte goes through here)
**   cache.c    the block cache: pages keyed by physical number, a clock,
**              write-out of dirty pages of the open write transaction
**   map.c      the block map: logical -> physical, copy-on-write
**   freelist.c free physical blocks, the reuse rule, the freelist chain
**   txn.c      begin / commit / rollback, readers, locks
**   file.c     create / open / close, choosing the root slot
**   chain.c    chains as byte streams
**   block.c    single blocks (B+tree nodes)
**   compact.c  moving live blocks off the end of the file
**   check.c    the integrity walk
**
** Invariants (numbered; code refers to them as INV n):
**   1. A block reachable from a committed root is never written again.
**      Only blocks whose header carries the running write transaction's id
**      ("fresh" blocks) are modified in place.
**   2. A physical block freed by transaction F is reused only when F <= D
**      (D: the newest root known durable) and F <= S for every open
**      reader snapshot S. A root D known durable is the one a crash falls
**      back to at worst, and it cannot reach what it freed itself; so no
**      root a crash may need, and no reader, can reach a reused block.
**   3. Every page in the cache holds either verified bytes read from the
**      file or bytes built by the running write transaction (dirty).
**   4. db->mu guards the cache, the root, the reader list and the stats;
**      every entry point of the layer takes it, with one exception: a
**      read transaction's single-block reads (rl__blk_block_get) find
**      cached pages without it, and read what the cache missed without
**      it, caching the page only if the lock is free (cache.c, "Readers
**      without the lock"). A read transaction also lets go of it while it
**      reads and checks blocks the cache missed, so readers sharing a
**      handle read the file in parallel; the file needs no lock for that,
**      as readers in other processes show (INV 2).
*/
#ifndef RL_BLK_INT_H
#define RL_BLK_INT_H

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "blocks.h"

/* ---- on-disk constants (docs/format.md) ---------------------------------- */

#define RL__FORMAT_VERSION 5u
#define RL__MAGIC "relatable db\r\n\x1a\n" /* 16 bytes */
#define RL__MAGIC_SIZE 16
#define RL__SLOT_MAGIC "RLSLOT01"
#define RL__REGION 4096u /* the header and each root slot: 4 KiB */
#define RL__NSLOTS 4u    /* root slots, each followed by its commit area */
#define RL__HDR_SIZE 40u            /* block header */
#define RL__MAX_BLOCKNO ((UINT64_C(1) << 48) - 1) /* block numbers are 48-bit */
#define RL__MIN_BLOCK 512u
#define RL__MAX_BLOCK 65536u
#define RL__SLOT_LIST_OFF 152u
#define RL__SLOT_LIST_ENTRY 12u
#define RL__SLOT_LIST_CAP 256u
#define RL__SLOT_DELTA_ENTRY 12u /* map change in a slot: logical u48, phys u48 */
#define RL__SLOT_DELTA_CAP 64u   /* map changes a slot carries at most */
#define RL__SLOT_CRC_OFF (RL__REGION - 4u)
#define RL__SLOT_LISTED 0x1u /* slot flag: the list below proves the commit */
#define RL__SLOT_SYNCED 0x2u /* slot flag: synced after it was written (FULL) */
#define RL__MAP_FREE_BIT (UINT64_C(1) << 63)
#define RL__MAX_MAP_DEPTH 8u
#define RL__CHAIN_HDR 24u /* length, tail, count at the start of a head */
#define RL__FREE_ENTRY 16u /* freelist entry: a run of free blocks, freed-by txn */
#define RL__FREE_RUN_MAX 65536u /* blocks in one freelist entry at the most */

/* Byte-range locks live far past any real end of file: one byte for the
 * writer, and one byte per snapshot a reader holds (2^61 + its txn id). */
#define RL__LOCK_WRITER (UINT64_C(1) << 62)
#define RL__LOCK_READERS (UINT64_C(1) << 61)

/* ---- crc32c.c ---------------------------------------------------------------- */

/* Continue a CRC32C (Castagnoli) over n bytes; start with crc = 0. */
uint32_t rl__crc32c(uint32_t crc, const void *buf, size_t n);

/* For tests: continue *crc with one routine; 0 if this CPU lacks it. */
enum { RL__CRC_SOFT, RL__CRC_HW, RL__CRC_FOLD };
int rl__crc32c_with(int routine, uint32_t *crc, const void *buf, size_t n);

/* ---- format.c: decoded forms of on-disk structures ------------------------- */

/* The fixed file header at offset 0. */
typedef struct rl__blk_header {
    uint32_t version;
    uint32_t block_size;
    uint32_t flags;
    uint8_t file_id[16];
    uint64_t created; /* unix seconds */
} rl__blk_header;

/* A block's header (first RL__HDR_SIZE bytes of every non-root block). */
typedef struct rl__blk_bhdr {
    uint8_t type;
    uint8_t flags; /* map nodes: level (0 = leaf) */
    uint32_t used; /* payload bytes in use */
    uint64_t self; /* physical number */
    uint64_t logical; /* logical number, 0 if not in the map */
    uint64_t txn;
    uint64_t next; /* chains: next logical; freelist: next physical */
    uint64_t owner; /* chains: logical number of the head */
} rl__blk_bhdr;

/* One entry of a root slot's commit list. */
typedef struct rl__blk_listed {
    uint64_t phys;
    uint32_t crc;
} rl__blk_listed;

/* A decoded root slot: everything a snapshot needs. */
typedef struct rl__blk_root {
    uint64_t txn;
    uint64_t block_count; /* file length in blocks */
    uint64_t map_root;    /* physical number of the map's top node, 0 = none */
    uint32_t map_depth;
    uint32_t flags;
    uint64_t logical_limit; /* logical numbers in use are < this (>= 1) */
    uint64_t free_logical;  /* head of the free logical list, 0 = none */
    uint64_t freelist_head; /* physical number, 0 = empty */
    uint64_t free_count;
    uint64_t meta[RL__BLK_META_WORDS];
    /* Blocks of each commit area that commit txn (area txn % 4) or the
     * one before (area (txn - 1) % 4) wrote; 0 for the two areas the
     * newest commits carried home (txn.c, "Commit areas"). */
    uint8_t area_used[RL__NSLOTS];
    /* The map delta (map.c): logical -> physical changes not yet written
     * into the map's nodes, ascending by logical number; each overrides
     * the map's entry, which maps the logical number too. */
    uint32_t ndelta;
    struct rl__blk_delta {
        uint64_t logical, phys;
    } delta[RL__SLOT_DELTA_CAP];
} rl__blk_root;

/* The physical block the delta maps logical to, or 0 (map.c). */
uint64_t rl__map_delta_get(const rl__blk_root *r, uint64_t logical);

void rl__fmt_header_encode(uint8_t *region, const rl__blk_header *h);
int rl__fmt_header_decode(const uint8_t *region, size_t n, rl__blk_header *h,
                          rl__err *err);
/* Encode a slot with its commit list (n entries, n <= RL__SLOT_LIST_CAP). */
void rl__fmt_slot_encode(uint8_t *region, const rl__blk_root *r,
                         const rl__blk_listed *list, uint32_t n);
/* Decode and check a slot; list (may be NULL) receives up to CAP entries. */
int rl__fmt_slot_decode(const uint8_t *region, uint32_t block_size,
                        rl__blk_root *r, rl__blk_listed *list, uint32_t *n,
                        rl__err *err);
void rl__fmt_bhdr_encode(uint8_t *block, const rl__blk_bhdr *h);
void rl__fmt_bhdr_decode(const uint8_t *block, rl__blk_bhdr *h);
/* Change the used count / next link of an encoded header in place. */
void rl__fmt_bhdr_set_used(uint8_t *block, uint32_t used);
void rl__fmt_bhdr_set_next(uint8_t *block, uint64_t next);
/* CRC of a block as stored (the CRC field itself left out). */
uint32_t rl__fmt_block_crc(const uint8_t *block, uint32_t block_size);
/* Set the CRC field of a finished block; returns the CRC. */
uint32_t rl__fmt_block_seal(uint8_t *block, uint32_t block_size);
/* Check a block read from physical number phys: CRC, self, type, used. */
int rl__fmt_block_check(const uint8_t *block, uint32_t block_size,
                        uint64_t phys, rl__err *err);
/* The layout of the root area (docs/format.md): the header region, then
 * four times a slot region followed by its commit area. Regions are
 * rl__fmt_region() bytes (4 KiB, or one block if blocks are larger). */
uint32_t rl__fmt_region(uint32_t block_size);
uint32_t rl__fmt_area_blocks(uint32_t block_size);
uint64_t rl__fmt_slot_offset(uint32_t block_size, unsigned slot);
uint64_t rl__fmt_area_first(uint32_t block_size, unsigned area);
/* The area phys lies in (and its index in it), or -1. */
int rl__fmt_area_of(uint32_t block_size, uint64_t phys, uint32_t *index);
/* First block number after the root area. */
uint64_t rl__fmt_first_block(uint32_t block_size);
/* A block number a root may reach: in a commit area, or past the root
 * area and before block_count. */
int rl__fmt_reachable(uint32_t block_size, uint64_t phys, uint64_t block_count);
int rl__fmt_block_size_ok(uint32_t block_size);
/* A freelist entry: count (1..RL__FREE_RUN_MAX) free blocks from phys up,
 * all freed by txn. */
void rl__fmt_free_encode(uint8_t *e, uint64_t phys, uint64_t count, uint64_t txn);
void rl__fmt_free_decode(const uint8_t *e, uint64_t *phys, uint64_t *count, uint64_t *txn);

/* ---- cache.c ------------------------------------------------------------------ */

typedef struct rl__blk_page rl__blk_page;
struct rl__blk_page {
    uint64_t phys;
    uint8_t *buf;
    rl__blk_page *dprev, *dnext;  /* the dirty pages' list, while dirty */
    size_t slot;                  /* index in the cache's ring */
    /* Atomic: pinned and unpinned without db->mu. Bit RL__PAGE_RETIRED
     * set: the page is not in the cache (free, being filled, or a read
     * transaction's own), and a reader without the lock cannot pin it. */
    unsigned pins;
    uint8_t dirty;
    uint8_t used; /* atomic; the clock's bit: found in the cache since the hand passed */
};

#define RL__CACHE_EMPTY UINT64_MAX /* a free entry of the cache's table */
#define RL__PAGE_RETIRED 0x80000000u

/* Open addressing, linear probing, no tombstones: keys[i] is the phys of
 * entry i (RL__CACHE_EMPTY: none), pages[i] its page. A probe reads keys
 * only, eight to a cache line, until it finds the page it wants. Readers
 * without the lock probe it too, so entries are stored atomically (the
 * page before the key), and a table outgrown stays allocated, on the
 * older list, until the cache is freed. */
typedef struct rl__cache_tab rl__cache_tab;
struct rl__cache_tab {
    size_t mask; /* the table's size - 1 (a power of two, >= 2 * cap) */
    uint64_t *keys;
    rl__blk_page **pages;
    rl__cache_tab *older;
};

/* The cache's doorkeeper (admit.c): block numbers missed lately, one
 * direct-mapped slot each. Touched only under db->mu. */
typedef struct rl__blk_admit {
    uint64_t *seen; /* RL__CACHE_EMPTY or a block number */
    size_t mask;    /* slots - 1 (a power of two) */
} rl__blk_admit;

int rl__admit_init(rl__blk_admit *a, size_t pages);
void rl__admit_free(rl__blk_admit *a);
/* A transaction missed phys: 1 if it was missed lately, so the cache
 * should keep it now; else 0, and it is remembered. */
int rl__admit_missed(rl__blk_admit *a, uint64_t phys);

typedef struct rl__blk_cache {
    rl__cache_tab *tab; /* atomic: the current table */
    /* The clock: every page, in ring[0 .. count); the hand is the next
     * slot to look at when a page must go. */
    rl__blk_page **ring;
    size_t ring_cap, hand;
    size_t count, cap;
    size_t out; /* pages page_get handed out, not yet published or discarded */
    rl__blk_page dirty; /* sentinel of the dirty pages: a flush visits only them */
    /* Page structs out of the cache (RL__PAGE_RETIRED), linked by dnext:
     * never freed before the cache is, because a reader without the lock
     * may still hold a pointer to one it found in the table. */
    rl__blk_page *spare;
    /* Transactions' own pages (cache.c, own_take), given back at
     * their end and lent to the next ones at their begin, so that a
     * handle holds at most RL__OWN_PAGES for each open transaction. */
    rl__blk_page *own_spare;
    /* Counts the cache's writes to the file and its drops: a read-ahead
     * that let go of db->mu keeps the blocks it read only if this did not
     * move meanwhile (cache.c, read_ahead). */
    uint64_t changes;
    rl__blk_admit admit; /* which misses the cache keeps (admit.c) */
    uint32_t block_size;
} rl__blk_cache;

/* ---- the handles ------------------------------------------------------------- */

typedef struct rl__blk_freeent {
    uint64_t phys;
    uint64_t txn; /* transaction that freed it */
} rl__blk_freeent;

/* The writer's view of free space (freelist.c). */
typedef struct rl__blk_free {
    rl__blk_freeent *ready; /* reusable now; sorted by phys, descending */
    size_t nready, capready;
    rl__blk_freeent *pending; /* not yet reusable; ascending txn */
    size_t npending, cappending;
    /* Reusable now too, freed by the transaction that wrote them, in the
     * order freed: merged into ready when ready's order is needed
     * (inserting each into ready would move the array each time). */
    rl__blk_freeent *fresh;
    size_t nfresh, capfresh;
    uint64_t fresh_min; /* the lowest of them (UINT64_MAX: none) */
    uint64_t *chain; /* physical blocks of the on-disk freelist chain */
    size_t nchain, capchain;
    rl__blk_freeent *merged, *scratch; /* rl__free_save: all, by phys */
    size_t capmerged, capscratch;
    int valid;             /* matches the root valid_txn */
    uint64_t valid_txn;
} rl__blk_free;

struct rl__blk_db {
    rl__io *io;
    uint32_t block_size, payload, fanout;
    uint64_t first_block;
    /* The commit areas' geometry (rl__fmt_area_of without its divisions,
     * which showed in every access to an area block): first block of
     * area 0, blocks from one area to the next, blocks per area. */
    uint64_t area_first, area_stride;
    uint32_t area_len;
    rl__blk_header header;
    unsigned flags;
    rl__durability durability;
    int busy_timeout_ms; /* see rl__blk_options */
    pthread_mutex_t mu;        /* INV 4 */
    pthread_mutex_t writer_mu; /* one write transaction per process */
    rl__blk_root root;         /* newest committed root known */
    /* Why the newer root slot was passed over when the root was last read
     * (code 0 if it was not): a commit torn by a crash, or later damage to
     * a block of that commit. rl__blk_check reports it as a note. */
    rl__err passed_over;
    uint64_t passed_over_txn;
    rl__blk_cache cache;
    rl__blk_free free;
    rl__blk_txn *readers; /* open read transactions */
    rl__blk_txn *writer;  /* the open write transaction, if any */
    rl__blk_stats stats;
    uint64_t reads_unlocked; /* atomic: blocks read that no cache kept (cache.c) */
    rl__err err;
    uint8_t *scratch; /* one block of scratch for I/O, guarded by mu */
    uint8_t *commit_buf; /* a slot region and a commit area: the commit's write */
    /* Read-ahead buffers transactions gave back, linked through their
     * first bytes: taken again, not allocated for each transaction (glibc
     * gives a freed 64 KiB back to the system, and a thread's arena pays
     * for that with a TLB flush on every core). Guarded by mu. */
    void *spare_ahead;
    int compact_commits; /* commits left that compact fully (compact.c) */
    int tidy_map;        /* the next commit tidies the block map first (compact.c) */
};

#define RL__READ_AHEAD 16 /* blocks read at once when misses run in order */
#define RL__MAP_MEMO 64   /* entries of a read transaction's map memo */
#define RL__OWN_PAGES 8   /* a read transaction's pages of its own (cache.c) */
/* Internal to the block layer, never returned by an entry point: a read
 * without db->mu needs the lock after all (cache.c). */
#define RL__NEED_LOCK (-1)

struct rl__blk_txn {
    rl__blk_db *db;
    int write;
    int changed;
    rl__blk_root root; /* snapshot (read) or working root (write) */
    uint64_t base_txn; /* root.txn when the transaction began */
    uint64_t orig_block_count;
    uint64_t last_miss;     /* the last block the cache read for t (read-ahead) */
    uint8_t *ahead;         /* RL__READ_AHEAD blocks for read-ahead (NULL until needed;
                               from db->spare_ahead, and back there at the end) */
    /* Recent map lookups, direct-mapped by logical number. A read
     * snapshot never changes; a write transaction's changes to the map
     * forget the entry of the number they change (map.c). */
    struct {
        uint64_t logical, phys; /* logical 0: empty */
    } memo[RL__MAP_MEMO];
    int area_ok;            /* write: may take blocks of its commit area */
    int no_holes;           /* write: the map has no hole below the limit (map.c) */
    uint64_t epoch;         /* logical numbers allocated or freed so far (rl__blk_txn_epoch) */
    uint32_t area_next;     /* the next one it would take */
    rl__blk_listed *listed; /* blocks written so far (write) */
    uint32_t nlisted;
    int list_overflow;
    /* read: set while a single-block read runs without db->mu; own[] are
     * the pages it read for itself when it could not cache them, own_hand
     * the one its next miss tries first (cache.c) */
    int unlocked;
    rl__blk_page *own[RL__OWN_PAGES];
    int own_hand;
    rl__blk_txn *prev, *next; /* reader list */
    rl__err err;
};

/* ---- cross-file internal calls (caller holds db->mu) ------------------------ */

int rl__cache_init(rl__blk_cache *c, uint32_t block_size, size_t cap);
void rl__cache_free(rl__blk_cache *c);
/* Pinned page for phys, read and checked on a miss. */
int rl__cache_get(rl__blk_txn *t, uint64_t phys, rl__blk_page **out);
/* rl__cache_get for a block the caller reads or copies, never changes in
 * place (a B+tree node, through block.c): in a write transaction, a miss
 * the doorkeeper does not admit comes back in one of t's own pages,
 * outside the cache (admit.c). */
int rl__cache_get_once(rl__blk_txn *t, uint64_t phys, rl__blk_page **out);
/* One more pin on a page the caller holds pinned. */
void rl__cache_pin(rl__blk_page *p);
/* Whether the cache's table and ring agree (INV 5), each page found where
 * its probe leads: for tests. */
int rl__cache_consistent(const rl__blk_cache *c);
/* A walk that goes down the file (compaction) is about to read phys: if it
 * is not cached, read it and the blocks below it, down to floor, with one
 * read. A hint: errors are left for the read itself to report. */
void rl__cache_prefetch_down(rl__blk_txn *t, uint64_t phys, uint64_t floor);
/* Pinned page for a fresh block: contents are the caller's to build. */
int rl__cache_fresh(rl__blk_txn *t, uint64_t phys, rl__blk_page **out);
/* rl__cache_fresh with the bytes of src (a whole block) instead of zeros:
 * a copy costs one pass over the page, not two. src must stay pinned. */
int rl__cache_fresh_copy(rl__blk_txn *t, uint64_t phys, const uint8_t *src, rl__blk_page **out);
void rl__cache_unpin(rl__blk_page *p);
/* Lend t own pages that ended transactions gave back (begin), and give
 * them back (end). */
void rl__cache_own_lend(rl__blk_txn *t);
void rl__cache_own_return(rl__blk_txn *t);
void rl__cache_mark_dirty(rl__blk_cache *c, rl__blk_page *p);
/* The page need not be written (it died, or was copied elsewhere). */
void rl__cache_clean(rl__blk_page *p);
/* Write every dirty page (ascending phys) but those in [keep_from, keep_to). */
int rl__cache_flush(rl__blk_txn *t, uint64_t keep_from, uint64_t keep_to);
/* If blocks first..first+n-1 are all dirty pages: seal them, copy them to
 * dst in order, list them as written and mark them clean, returning 1 (the
 * caller writes dst); else 0 and nothing changes. */
int rl__cache_take_run(rl__blk_txn *t, uint64_t first, uint32_t n, uint8_t *dst);
/* Drop dirty pages (rollback). */
void rl__cache_drop_dirty(rl__blk_cache *c);
/* Drop every page (another process changed the file). A pinned page
 * leaves the cache too, but its bytes stay until it is let go. */
void rl__cache_drop_all(rl__blk_cache *c);
/* Drop block phys's page if it is cached (another process wrote it). */
void rl__cache_drop_block(rl__blk_cache *c, uint64_t phys);
/* Give t's read-ahead buffer back to the handle's spares (end of a
 * transaction); rl__cache_ahead_free frees the spares (close). */
void rl__cache_ahead_return(rl__blk_txn *t);
void rl__cache_ahead_free(rl__blk_db *db);
/* A fresh block was freed: its bytes no longer belong to the commit, so
 * the commit list must not ask open to find them (the file may even be
 * truncated before them). */
void rl__cache_list_forget(rl__blk_txn *t, uint64_t phys);
/* Seal and write one page now, recording it in the commit list. */
int rl__cache_write_page(rl__blk_txn *t, rl__blk_page *p);

/* Read one block from the file into buf and check it (no cache). */
int rl__blk_read_raw(rl__blk_db *db, uint64_t phys, uint8_t *buf, rl__err *err);

/* rl__fmt_area_of for db's block size, from its cached geometry: the
 * area phys is in (its block index in *index), or -1. */
static inline int rl__area_of(const rl__blk_db *db, uint64_t phys, uint32_t *index)
{
    uint64_t k;
    if (phys < db->area_first || phys >= db->first_block)
        return -1;
    k = (phys - db->area_first) % db->area_stride;
    if (k >= db->area_len)
        return -1; /* a slot region of a large block size */
    if (index)
        *index = (uint32_t)k;
    return (int)((phys - db->area_first) / db->area_stride);
}

int rl__map_lookup(rl__blk_txn *t, uint64_t logical, uint64_t *phys);
int rl__map_set(rl__blk_txn *t, uint64_t logical, uint64_t value);
int rl__map_alloc_logical(rl__blk_txn *t, uint64_t *logical);
int rl__map_free_logical(rl__blk_txn *t, uint64_t logical);
/* Thread the free logical numbers into one list in ascending order (new
 * blocks then take the lowest), and drop the map's nodes and limit down
 * to the highest number in use (map.c). */
int rl__map_tidy(rl__blk_txn *t);
/* Copy the live map node at phys (header h) to a new place; *moved = 0
 * if phys is not a live node. */
int rl__map_relocate_node(rl__blk_txn *t, uint64_t phys, const rl__blk_bhdr *h,
                          int *moved);
/* A new block: a logical number, a fresh physical block mapped to it, a
 * header with type, txn and owner (0: itself); *out is pinned and dirty
 * with an empty payload (block.c). */
int rl__blk_new(rl__blk_txn *t, uint8_t type, uint64_t owner, uint64_t *logical,
                rl__blk_page **out);
/* Whether logical maps to phys now (*yes); an error only when the map
 * cannot be read (map.c). */
int rl__map_maps_to(rl__blk_txn *t, uint64_t logical, uint64_t phys, int *yes);
/* A writable page for a map node or chain block (copy-on-write, INV 1).
 * A copy goes into the commit area when hot (a block the caller changes:
 * it is likely changed again soon), else into the file. */
int rl__blk_writable(rl__blk_txn *t, uint64_t phys, int hot, uint64_t *new_phys,
                     rl__blk_page **out);
/* rl__blk_writable for a block whose page the caller holds pinned (old),
 * perhaps outside the cache (rl__cache_get_once); the caller's pin stays
 * the caller's to let go. */
int rl__blk_writable_page(rl__blk_txn *t, rl__blk_page *old, int hot, uint64_t *new_phys,
                          rl__blk_page **out);

int rl__free_load(rl__blk_txn *t);
void rl__free_promote(rl__blk_db *db, uint64_t bound);
int rl__free_alloc(rl__blk_txn *t, uint64_t *phys);
/* A block of the transaction's commit area while it may take them and
 * some are left, else rl__free_alloc. Only for blocks a later commit can
 * move home: mapped blocks and the freelist chain, never map nodes. */
int rl__free_alloc_hot(rl__blk_txn *t, uint64_t *phys);
/* Free phys; fresh != 0 when the running transaction wrote it (INV 2). */
int rl__free_release(rl__blk_txn *t, uint64_t phys, int fresh);
/* Free the block of page p (pinned by the caller, unpinned here), whose
 * header names transaction txn. The running transaction's own block is
 * reusable at once and its page need not be written, unless it lies in a
 * commit area, where carrying reads every block a commit took (txn.c, A1,
 * A3). */
int rl__free_page(rl__blk_txn *t, rl__blk_page *p, uint64_t txn);
/* Truncate the free tail and write the freelist chain. */
int rl__free_save(rl__blk_txn *t);
/* Drop free blocks at the end of the file from ready (the file shrinks). */
void rl__free_truncate_tail(rl__blk_txn *t);
/* Lowest ready block, or UINT64_MAX. */
uint64_t rl__free_lowest(const rl__blk_db *db);
/* Blocks reusable now (ready and fresh). */
size_t rl__free_ready_count(const rl__blk_db *db);
int rl__free_tail_ready(const rl__blk_db *db, uint64_t block_count);

/* Move up to budget live blocks from the file's tail into free blocks
 * lower down (compact.c). */
int rl__compact_tail(rl__blk_txn *t, unsigned budget);
/* Move the block at phys into the file if it is live (a mapped block or
 * map node); *moved says whether it was. Not strict, a block that cannot
 * be read counts as not live (compaction may pass over it); strict, it is
 * an error (carrying an area home must not leave a live block behind). */
int rl__compact_move(rl__blk_txn *t, uint64_t phys, int strict, int *moved);
void rl__free_reset(rl__blk_free *f);
void rl__free_destroy(rl__blk_free *f);

/* Lowest reader snapshot, or UINT64_MAX when none (txn.c). */
uint64_t rl__txn_oldest_reader(rl__blk_db *db);
/* Read the root slots and pick the newest that proves itself. */
int rl__file_read_root(rl__blk_db *db, rl__blk_root *out, rl__err *err);
/* rl__blk_begin of a write transaction that does not wait for another
 * writer: RL_BUSY at once (compaction after a vacuum must not make its
 * caller wait for a writer that may be waiting for it). */
int rl__txn_begin_write_now(rl__blk_db *db, rl__blk_txn **out);
/* Whether the newest root on disk is still db->root, from one slot read:
 * the slot the commit after it would take still holds the commit four
 * before that one. No (0) for anything else (a newer commit, a torn or
 * damaged slot, a read error, the file's first commits): the caller then
 * reads all four (rl__file_read_root). Caller holds db->mu. */
int rl__file_root_unchanged(rl__blk_db *db);
/* Another handle or process committed from..to (from < to): drop from the
 * cache every block those commits wrote, as their root slots list them,
 * and return 1; 0 when it cannot tell (a slot already reused by a newer
 * commit, damaged, or written without a list: NORMAL, or a commit of more
 * than RL__SLOT_LIST_CAP blocks): the caller then drops every page.
 * Caller holds db->mu. */
int rl__file_drop_written(rl__blk_db *db, uint64_t from, uint64_t to);
int rl__io_err(rl__err *e, int errnum, const char *what, uint64_t where);

#endif /* RL_BLK_INT_H */
