/*
** blocks/txn.c: transactions. Begin takes a snapshot of the newest root;
** commit T publishes a write transaction by writing root slot T mod 4;
** rollback forgets every block written.
**
** Commit protocol (docs/format.md, "Commit protocol"), numbered rules:
**   1. Every changed block was written to a block no committed root or
**      reader can reach (INV 1, INV 2); the freelist chain is rewritten
**      the same way.
**   2. FULL, with at most RL__SLOT_LIST_CAP blocks written: write all
**      blocks, then the root slot listing each block and its CRC, then ONE
**      sync. At open a listed slot counts only if every listed block reads
**      back with that CRC; otherwise open uses the slot of T-1, whose blocks
**      this transaction never touched (rule 1).
**   3. FULL, larger transactions: write blocks, sync, write the slot (no
**      list), sync.
**   4. NORMAL: write blocks, sync, write the slot, no sync: a crash may lose
**      this last commit, never an earlier one (the next commit's first sync
**      makes it durable before any of its blocks can be reused).
**   5. OFF: no sync at all; see docs/format.md for what that risks.
**   6. Before the freelist is written, up to COMPACT_BUDGET live blocks
**      move from the end of the file into free blocks lower down; after
**      the slot is written, free blocks at the end of the file are
**      truncated away (unreachable from the two newest slots, INV 2).
**
** Commit areas (docs/format.md, "Commit areas"): each slot is followed by
** an area of a few blocks. Commit T takes the blocks it changes (mapped
** blocks and the freelist chain) from area T mod 4 first, so that a small
** commit writes its slot and its blocks in ONE write, then syncs once.
**   A1. Commit T carries home every block of area (T-2) mod 4 that root T
**       still reaches (moves it into the file, like compaction), and sets
**       that area's count in the root to 0: root T and later reach
**       nothing in it. The freelist chain needs no carrying: each commit
**       rewrites it.
**   A2. So area T mod 4, carried by commit T-2, is reachable only from
**       roots older than T-2: commit T may write it when blocks freed by
**       T-2 may be reused (INV 2, the same reuse bound). Otherwise (an old
**       reader, NORMAL's lag) commit T allocates as if there were no area.
**   A3. Freeing an area block is a no-op; area blocks never enter the
**       freelist, and compaction never moves into one. Every block a
**       commit takes from its area is written, even one freed at once, so
**       carrying can read each and tell a dead one from damage.
**   A4. Open considers only the two newest valid slots (the newest, else
**       the one before it), as rule 2 needs: an older root may reach
**       blocks that have been reused since.
**
** Readers of other handles and processes are seen through byte-range
** locks on the file (register_snapshot, outside_readers): no lock file,
** no shared memory.
** Lock order: db->writer_mu, then the file's writer lock, then db->mu.
*/
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "blk_int.h"

/* Live blocks moved off the end of the file per commit (compact.c). */
#define COMPACT_BUDGET 16

uint64_t rl__txn_oldest_reader(rl__blk_db *db)
{
    uint64_t oldest = UINT64_MAX;
    for (rl__blk_txn *r = db->readers; r; r = r->next)
        if (r->base_txn < oldest)
            oldest = r->base_txn;
    return oldest;
}

/* Adopt the newest root on disk; if another handle or process committed
 * since we last looked, drop the cached pages of the blocks it wrote (all
 * pages when the root slots cannot tell which). Caller holds db->mu, no
 * writer active. */
static int refresh_root(rl__blk_db *db, rl__err *err)
{
    rl__blk_root r;
    int rc;
    if (rl__file_root_unchanged(db))
        return RL_OK; /* one slot read instead of four, and no decoding them */
    rc = rl__file_read_root(db, &r, err);
    if (rc != RL_OK)
        return rc;
    if (r.txn != db->root.txn || r.block_count != db->root.block_count) {
        if (r.txn <= db->root.txn || !rl__file_drop_written(db, db->root.txn, r.txn))
            rl__cache_drop_all(&db->cache);
        db->free.valid = 0;
        db->root = r;
    }
    return RL_OK;
}

static void reader_link(rl__blk_db *db, rl__blk_txn *t)
{
    t->prev = NULL;
    t->next = db->readers;
    if (db->readers)
        db->readers->prev = t;
    db->readers = t;
}

static void reader_unlink(rl__blk_db *db, rl__blk_txn *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        db->readers = t->next;
    if (t->next)
        t->next->prev = t->prev;
}

/* Readers of other handles and processes: each holds a shared lock on
 * RL__LOCK_READERS + its snapshot. Lower bound until no such lock lies
 * below it (usually one probe). */
static uint64_t outside_readers(rl__blk_db *db, uint64_t bound)
{
    for (int i = 0; i < 64 && bound > 0; i++) {
        uint64_t held;
        if (db->io->probe(db->io, RL__LOCK_READERS, bound, &held) != 0 || held == UINT64_MAX)
            return bound;
        if (held < RL__LOCK_READERS || held - RL__LOCK_READERS + 1 >= bound)
            return bound; /* not one of ours: nothing to learn from it */
        bound = held - RL__LOCK_READERS + 1;
    }
    return bound;
}

/* The reuse bound of INV 2: blocks freed by F < bound may be reused. D is
 * the base root itself when its slot says a FULL commit synced it (then
 * what the base freed is reusable at once); otherwise the root before, or
 * the one before that under NORMAL, whose next commit's first sync made
 * it durable. A slot written by another handle without a sync may still
 * sit in the page cache only, so its flag is what counts. */
static uint64_t reuse_bound(rl__blk_db *db, uint64_t base)
{
    uint64_t bound = (db->root.txn == base && (db->root.flags & RL__SLOT_SYNCED))
                         ? base + 1
                         : db->durability == RL__DURABLE_NORMAL ? base - 1 : base;
    uint64_t oldest = rl__txn_oldest_reader(db);
    if (oldest != UINT64_MAX && oldest + 1 < bound)
        bound = oldest + 1;
    return outside_readers(db, bound);
}

/* Another reader of this handle already holds snapshot snap's lock? */
static int snapshot_shared(rl__blk_db *db, const rl__blk_txn *self, uint64_t snap)
{
    for (const rl__blk_txn *r = db->readers; r; r = r->next)
        if (r != self && r->base_txn == snap)
            return 1;
    return 0;
}

/* Take a snapshot other processes can see (INV 2): lock it, then check
 * that it is still the newest root; a writer that looks after the lock
 * will spare it, and one that looked before reused nothing it can reach.
 * Caller holds db->mu. */
static int register_snapshot(rl__blk_db *db, rl__err *err)
{
    for (int tries = 0; tries < 1000; tries++) {
        uint64_t snap;
        rl__blk_root now;
        int rc = db->writer ? RL_OK : refresh_root(db, err), e;
        if (rc != RL_OK)
            return rc;
        snap = db->root.txn;
        if (snapshot_shared(db, NULL, snap))
            return RL_OK; /* already locked by this handle */
        e = db->io->lock(db->io, RL__LOCK_READERS + snap, 1, 'r', 0);
        if (e)
            return rl__io_err(err, e, "lock snapshot", RL__LOCK_READERS + snap);
        if (db->writer) /* it holds the writer lock: nothing can commit */
            return RL_OK;
        rc = rl__file_read_root(db, &now, err);
        if (rc == RL_OK && now.txn == snap)
            return RL_OK;
        db->io->lock(db->io, RL__LOCK_READERS + snap, 1, 'u', 0);
        if (rc != RL_OK)
            return rc;
    }
    return RL__FAIL(err, RL_BUSY, "the database changed under every attempt to take a snapshot");
}

static void unregister_snapshot(rl__blk_db *db, const rl__blk_txn *t)
{
    if (!snapshot_shared(db, t, t->base_txn))
        db->io->lock(db->io, RL__LOCK_READERS + t->base_txn, 1, 'u', 0);
}

static int begin_read(rl__blk_db *db, rl__blk_txn *t)
{
    int rc;
    pthread_mutex_lock(&db->mu);
    rc = register_snapshot(db, &db->err);
    if (rc == RL_OK) {
        t->root = db->root;
        t->base_txn = db->root.txn;
        reader_link(db, t);
        rl__cache_own_lend(t);
    }
    pthread_mutex_unlock(&db->mu);
    return rc;
}

/* now + ms as an absolute CLOCK_REALTIME time (for timed waits). */
static struct timespec deadline_in(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int past(const struct timespec *d)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return now.tv_sec > d->tv_sec || (now.tv_sec == d->tv_sec && now.tv_nsec >= d->tv_nsec);
}

/* The in-process writer mutex, then the file's writer lock, each waited
 * for as ms says (as rl__blk_options.busy_timeout_ms). */
static int writer_lock(rl__blk_db *db, int ms)
{
    int e;
    struct timespec until = deadline_in(ms > 0 ? ms : 0), nap = {0, 1000000L};
    e = ms == 0 ? pthread_mutex_lock(&db->writer_mu)
        : ms < 0 ? pthread_mutex_trylock(&db->writer_mu)
                 : pthread_mutex_timedlock(&db->writer_mu, &until);
    if (e)
        return RL__FAIL(&db->err, RL_BUSY, "another writer of this handle holds the database");
    for (;;) {
        e = db->io->lock(db->io, RL__LOCK_WRITER, 1, 'w', ms == 0);
        if (e != EAGAIN || ms < 0 || past(&until))
            break;
        nanosleep(&nap, NULL); /* poll: a blocking wait cannot time out */
        if (nap.tv_nsec < 16000000L)
            nap.tv_nsec *= 2;
    }
    if (e) {
        pthread_mutex_unlock(&db->writer_mu);
        return e == EAGAIN ? RL__FAIL(&db->err, RL_BUSY, "another writer holds the database")
                           : rl__io_err(&db->err, e, "lock", RL__LOCK_WRITER);
    }
    return RL_OK;
}

static void writer_unlock(rl__blk_db *db)
{
    db->io->lock(db->io, RL__LOCK_WRITER, 1, 'u', 0);
    pthread_mutex_unlock(&db->writer_mu);
}

static int begin_write(rl__blk_db *db, rl__blk_txn *t, int wait_ms)
{
    int rc;
    if (db->flags & RL__BLK_READONLY)
        return RL__FAIL(&db->err, RL_READONLY, "the database was opened read-only");
    t->listed = malloc(RL__SLOT_LIST_CAP * sizeof *t->listed);
    if (!t->listed)
        return RL__FAIL(&db->err, RL_NOMEM, "no memory for a transaction");
    rc = writer_lock(db, wait_ms);
    if (rc != RL_OK)
        return rc;
    pthread_mutex_lock(&db->mu);
    rc = refresh_root(db, &db->err);
    if (rc == RL_OK) {
        t->root = db->root;
        t->base_txn = db->root.txn;
        t->root.txn = t->base_txn + 1;
        t->root.flags = 0;
        t->orig_block_count = t->root.block_count;
        rc = rl__free_load(t);
        if (rc != RL_OK)
            db->err = t->err;
    }
    if (rc == RL_OK) {
        uint64_t bound = reuse_bound(db, t->base_txn);
        rl__free_promote(db, bound);
        t->area_ok = t->root.txn >= 2 && t->root.txn - 2 < bound && /* A2 */
                     t->root.area_used[t->root.txn % RL__NSLOTS] == 0;
        t->area_next = 0;
        db->writer = t;
        rl__cache_own_lend(t);
    }
    pthread_mutex_unlock(&db->mu);
    if (rc != RL_OK)
        writer_unlock(db);
    return rc;
}

static int begin(rl__blk_db *db, int write, int wait_ms, rl__blk_txn **out)
{
    rl__blk_txn *t;
    int rc;
    *out = NULL;
    t = calloc(1, sizeof *t);
    if (!t)
        return RL__FAIL(&db->err, RL_NOMEM, "no memory for a transaction");
    t->db = db;
    t->write = write != 0;
    rc = t->write ? begin_write(db, t, wait_ms) : begin_read(db, t);
    if (rc != RL_OK) {
        free(t->listed);
        free(t);
        return rc;
    }
    *out = t;
    return RL_OK;
}

int rl__blk_begin(rl__blk_db *db, int write, rl__blk_txn **out)
{
    return begin(db, write, db->busy_timeout_ms, out);
}

int rl__txn_begin_write_now(rl__blk_db *db, rl__blk_txn **out)
{
    return begin(db, 1, -1, out);
}

/* Forget a write transaction's work. Caller holds db->mu. */
static void abandon_write(rl__blk_txn *t, int truncate_back)
{
    rl__blk_db *db = t->db;
    rl__cache_drop_dirty(&db->cache);
    db->free.valid = 0;
    if (truncate_back && t->root.block_count > t->orig_block_count)
        db->io->truncate(db->io, t->orig_block_count * db->block_size);
}

static void end_txn(rl__blk_txn *t)
{
    rl__blk_db *db = t->db;
    rl__cache_ahead_return(t);
    rl__cache_own_return(t);
    if (t->write) {
        db->writer = NULL;
        pthread_mutex_unlock(&db->mu);
        writer_unlock(db);
    } else {
        unregister_snapshot(db, t);
        reader_unlink(db, t);
        pthread_mutex_unlock(&db->mu);
    }
    free(t->listed);
    free(t);
}

void rl__blk_rollback(rl__blk_txn *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&t->db->mu);
    if (t->write)
        abandon_write(t, 1);
    end_txn(t);
}

/* Sync the file without db->mu: readers of this handle go on meanwhile
 * (a sync is most of a small commit's time). What they can do is safe:
 * every block is written and clean by now, so an eviction writes nothing;
 * a reader that begins takes db->root, the base root, which this commit
 * changes only after its last sync; and every block it reaches stays as
 * it is (INV 2), as for a reader in another process. */
static int do_sync(rl__blk_txn *t)
{
    rl__blk_db *db = t->db;
    int e;
    pthread_mutex_unlock(&db->mu);
    e = db->io->sync(db->io);
    pthread_mutex_lock(&db->mu);
    db->stats.syncs++;
    return e ? rl__io_err(&t->err, e, "sync", 0) : RL_OK;
}

/* Write the slot, followed in the same write by the area blocks already
 * in db->commit_buf when with_area (rule 2 with A1-A4). */
static int write_slot(rl__blk_txn *t, int listed, int with_area)
{
    rl__blk_db *db = t->db;
    uint32_t region = rl__fmt_region(db->block_size);
    uint64_t off = rl__fmt_slot_offset(db->block_size, (unsigned)(t->root.txn % RL__NSLOTS));
    size_t n = region + (with_area ? (size_t)t->area_next * db->block_size : 0);
    int e;
    t->root.flags = (listed ? RL__SLOT_LISTED : 0) |
                    (db->durability == RL__DURABLE_FULL ? RL__SLOT_SYNCED : 0);
    memset(db->commit_buf, 0, region);
    rl__fmt_slot_encode(db->commit_buf, &t->root, t->listed, listed ? t->nlisted : 0);
    e = db->io->write(db->io, db->commit_buf, n, off);
    db->stats.root_writes++;
    return e ? rl__io_err(&t->err, e, "write root slot", off) : RL_OK;
}

/* Write the area blocks held in db->commit_buf on their own. */
static int write_area(rl__blk_txn *t)
{
    rl__blk_db *db = t->db;
    unsigned a = (unsigned)(t->root.txn % RL__NSLOTS);
    uint64_t off = rl__fmt_area_first(db->block_size, a) * db->block_size;
    int e = db->io->write(db->io, db->commit_buf + rl__fmt_region(db->block_size),
                          (size_t)t->area_next * db->block_size, off);
    return e ? rl__io_err(&t->err, e, "write commit area", off) : RL_OK;
}

/* The file must hold every block the root counts (open checks it): a
 * block allocated but never written leaves a hole at the end. */
static int extend_file(rl__blk_txn *t)
{
    rl__blk_db *db = t->db;
    uint64_t want = t->root.block_count * db->block_size, have = 0;
    int e = db->io->size(db->io, &have);
    if (!e && have < want)
        e = db->io->truncate(db->io, want);
    return e ? rl__io_err(&t->err, e, "extend file", want) : RL_OK;
}

/* Write every changed block, holding back the commit area's blocks in
 * db->commit_buf (*held) when they are all still in the cache. */
static int write_blocks(rl__blk_txn *t, int *held)
{
    rl__blk_db *db = t->db;
    uint64_t first = rl__fmt_area_first(db->block_size, (unsigned)(t->root.txn % RL__NSLOTS));
    int rc = rl__cache_flush(t, first, first + t->area_next);
    *held = 0;
    if (rc == RL_OK && t->area_next > 0)
        *held = rl__cache_take_run(t, first, t->area_next,
                                   db->commit_buf + rl__fmt_region(db->block_size));
    if (rc == RL_OK && !*held)
        rc = rl__cache_flush(t, 0, 0);
    return rc;
}

/* Rules 2 to 5: make the written blocks and the new slot durable. */
static int publish(rl__blk_txn *t, int *slot_written)
{
    rl__blk_db *db = t->db;
    int held = 0, listed, rc = write_blocks(t, &held);
    listed = !t->list_overflow && t->nlisted > 0 && db->durability != RL__DURABLE_NORMAL;
    if (rc == RL_OK)
        rc = extend_file(t);
    if (rc == RL_OK && held && !listed) { /* the slot may not come with them */
        rc = write_area(t);
        held = 0;
    }
    if (rc != RL_OK)
        return rc;
    if (!listed && db->durability != RL__DURABLE_OFF)
        rc = do_sync(t);
    if (rc == RL_OK) {
        *slot_written = 1;
        rc = write_slot(t, listed, held);
    }
    if (rc == RL_OK && db->durability == RL__DURABLE_FULL)
        rc = do_sync(t);
    return rc;
}

/* A1: move home what root T still reaches in area (T-2) mod 4. */
static int carry_area_home(rl__blk_txn *t)
{
    uint32_t bs = t->db->block_size;
    unsigned a = (unsigned)((t->root.txn + RL__NSLOTS - 2) % RL__NSLOTS);
    uint64_t first = rl__fmt_area_first(bs, a);
    for (uint32_t j = 0; j < t->root.area_used[a]; j++) {
        int moved, rc = rl__compact_move(t, first + j, 1, &moved);
        if (rc != RL_OK)
            return rc;
    }
    t->root.area_used[a] = 0;
    return RL_OK;
}

static int commit_write(rl__blk_txn *t)
{
    rl__blk_db *db = t->db;
    int slot_written = 0;
    int rc = carry_area_home(t);
    if (rc == RL_OK)
        rc = rl__compact_tail(t, COMPACT_BUDGET);
    if (rc == RL_OK)
        rc = rl__free_save(t);
    t->root.area_used[t->root.txn % RL__NSLOTS] = (uint8_t)t->area_next;
    if (rc == RL_OK)
        rc = publish(t, &slot_written);
    if (rc != RL_OK) {
        abandon_write(t, !slot_written);
        return rc;
    }
    if (t->root.block_count < t->orig_block_count) /* rule 6 */
        db->io->truncate(db->io, t->root.block_count * db->block_size);
    db->root = t->root;
    db->free.valid = 1;
    db->free.valid_txn = t->root.txn;
    db->stats.commits++;
    return RL_OK;
}

int rl__blk_commit(rl__blk_txn *t)
{
    rl__blk_db *db;
    int rc = RL_OK;
    if (!t)
        return RL_MISUSE;
    db = t->db;
    pthread_mutex_lock(&db->mu);
    if (t->write && t->changed)
        rc = commit_write(t);
    if (rc != RL_OK)
        db->err = t->err;
    end_txn(t);
    return rc;
}

uint64_t rl__blk_txn_id(const rl__blk_txn *t)
{
    return t->root.txn;
}

uint64_t rl__blk_txn_epoch(const rl__blk_txn *t)
{
    return t->epoch;
}

int rl__blk_txn_is_write(const rl__blk_txn *t)
{
    return t->write;
}

rl__err *rl__blk_txn_err(rl__blk_txn *t)
{
    return &t->err;
}

uint32_t rl__blk_payload_of(const rl__blk_txn *t)
{
    return t->db->payload;
}

uint64_t rl__blk_block_count(const rl__blk_txn *t)
{
    return t->root.block_count;
}

rl__blk_db *rl__blk_txn_db(rl__blk_txn *t)
{
    return t->db;
}

uint64_t rl__blk_meta_get(rl__blk_txn *t, unsigned i)
{
    return i < RL__BLK_META_WORDS ? t->root.meta[i] : 0;
}

int rl__blk_meta_set(rl__blk_txn *t, unsigned i, uint64_t value)
{
    if (i >= RL__BLK_META_WORDS)
        return RL__FAIL(&t->err, RL_INVALID, "meta word %u out of range", i);
    if (!t->write)
        return RL__FAIL(&t->err, RL_READONLY, "meta_set in a read transaction");
    t->root.meta[i] = value;
    t->changed = 1;
    return RL_OK;
}
