/*
** blocks/file.c: creating, opening and closing a database file, and
** choosing the root slot to trust.
**
** A new file is built whole in a temporary file next to the target,
** synced, then linked into place with link(2), which fails if the name
** exists: a crash during creation never leaves a half-made database under
** the real name, and two processes creating the same file at once agree
** on one. The temporary name is removed right after.
**
** Choosing the root (rl__file_read_root): decode the four slots; take the
** newest valid one if its commit list (if it has one) proves that every
** block of its transaction reached the disk, else the slot of the commit
** just before it (txn.c, rule 2 and A4), remembering why the newer was
** passed over (db->passed_over) so that the check can say so: a torn last
** commit and a damaged one look alike. Two damaged slots (not just never
** written) make the file unopenable: nothing older is safe to fall to.
** Every transaction's begin first asks rl__file_root_unchanged, which
** reads only the slot the next commit would write: if it still holds the
** commit four before that one, nobody has committed since this handle
** last looked, and the four slots need not be read and decoded again.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "blk_int.h"

#define DEFAULT_BLOCK 4096u
#define DEFAULT_CACHE (8u * 1024u * 1024u)

/* The code for an errno met while opening: out of memory stays RL_NOMEM. */
static int open_failed(rl__err *err, int e, const char *path)
{
    if (e == ENOMEM)
        return RL__FAIL(err, RL_NOMEM, "no memory to open %s", path);
    return RL__FAIL(err, RL_CANTOPEN, "cannot open %s: %s", path, strerror(e));
}

static int io_open(const rl__blk_options *o, const char *path, int flags,
                   rl__io **io)
{
    if (o->io_open)
        return o->io_open(o->io_arg, path, flags, 0644, io);
    return rl__io_posix_open(path, flags, 0644, io);
}

/* Does every listed block read back with its recorded CRC? If not, why
 * names the first one that does not. */
static int list_holds(rl__blk_db *db, const rl__blk_root *r,
                      const rl__blk_listed *list, uint32_t n, rl__err *why)
{
    rl__err ignored;
    for (uint32_t i = 0; i < n; i++) {
        const char *bad = NULL;
        if (!rl__fmt_reachable(db->block_size, list[i].phys, r->block_count))
            bad = "lies outside the file";
        else if (rl__blk_read_raw(db, list[i].phys, db->scratch, &ignored) != RL_OK)
            bad = "cannot be read or fails its checksum";
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
        else if (rl__fmt_block_crc(db->scratch, db->block_size) != list[i].crc)
            bad = "does not hold what was committed";
#endif
        if (bad) {
            RL__CORRUPT(why, "txn %llu: block %llu of its commit %s",
                        (unsigned long long)r->txn, (unsigned long long)list[i].phys, bad);
            return 0;
        }
    }
    return 1;
}

static int slot_trusted(rl__blk_db *db, const uint8_t *region, uint64_t file_size,
                        rl__blk_root *r, rl__blk_listed *list, rl__err *why)
{
    uint32_t n = 0;
    if (rl__fmt_slot_decode(region, db->block_size, r, list, &n, why) != RL_OK)
        return 0;
    /* Commit extends the file before it writes the slot (txn.c), so a
     * slot claiming more blocks than the file holds is not trusted. This
     * also bounds every walk by the real size of the file. */
    if (r->block_count > file_size / db->block_size) {
        RL__CORRUPT(why, "root slot %llu claims %llu blocks but the file holds %llu",
                    (unsigned long long)r->txn, (unsigned long long)r->block_count,
                    (unsigned long long)(file_size / db->block_size));
        return 0;
    }
    if (r->txn == db->root.txn && r->block_count == db->root.block_count)
        return 1; /* already verified when we adopted it */
    return n == 0 || list_holds(db, r, list, n, why);
}

/* Read the four slot regions (rl__fmt_region bytes each) into slots. */
static int read_slots(rl__blk_db *db, uint8_t *slots, uint64_t *file_size, rl__err *err)
{
    uint32_t region = rl__fmt_region(db->block_size);
    uint64_t size_after = 0;
    int e = db->io->size(db->io, file_size);
    /* The size before and after the slots: a writer extends the file
     * before it writes a slot and shrinks it after, so the larger of the
     * two covers whichever slot this read caught (no false "claims"). */
    for (unsigned i = 0; !e && i < RL__NSLOTS; i++) {
        uint64_t off = rl__fmt_slot_offset(db->block_size, i);
        size_t got = 0;
        e = db->io->read(db->io, slots + (size_t)i * region, region, off, &got);
        if (!e && got < region)
            return RL__CORRUPT(err, "file truncated inside its root area (%llu bytes)",
                               (unsigned long long)(off + got));
    }
    if (!e)
        e = db->io->size(db->io, &size_after);
    if (e)
        return rl__io_err(err, e, "read root slots", RL__REGION);
    if (size_after > *file_size)
        *file_size = size_after;
    return RL_OK;
}

/* A slot region of zeros was never written (a new file's unused slots). */
static int never_written(const uint8_t *region, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (region[i])
            return 0;
    return 1;
}

/* One attempt of rl__file_read_root; *seen: the newest txn among the
 * valid slots it read (0: none). */
static int choose_root(rl__blk_db *db, rl__blk_root *out, rl__err *err, uint64_t *seen)
{
    uint32_t region = rl__fmt_region(db->block_size);
    uint8_t *slots = malloc((size_t)RL__NSLOTS * region);
    rl__blk_listed *list = malloc(RL__SLOT_LIST_CAP * sizeof *list);
    rl__blk_root r[RL__NSLOTS];
    rl__err why[RL__NSLOTS];
    int ok[RL__NSLOTS], newest = -1, before = -1, damaged = 0, rc = RL_OK;
    uint64_t file_size = 0;
    if (!slots || !list) {
        rc = RL__FAIL(err, RL_NOMEM, "no memory to read the root");
        goto done;
    }
    rc = read_slots(db, slots, &file_size, err);
    if (rc != RL_OK)
        goto done;
    for (unsigned i = 0; i < RL__NSLOTS; i++) {
        const uint8_t *at = slots + (size_t)i * region;
        rl__err_clear(&why[i]);
        ok[i] = rl__fmt_slot_decode(at, db->block_size, &r[i], NULL, NULL, &why[i]) == RL_OK;
        damaged += !ok[i] && !never_written(at, RL__REGION);
        if (ok[i] && (newest < 0 || r[i].txn > r[newest].txn))
            newest = (int)i;
    }
    for (unsigned i = 0; newest >= 0 && i < RL__NSLOTS; i++) /* the commit before it */
        if (ok[i] && r[i].txn + 1 == r[newest].txn)
            before = (int)i;
    *seen = newest >= 0 ? r[newest].txn : 0;
    /* A torn slot write damages one slot. Two damaged ones: the newest
     * valid slot may be older than the commit before the last, and its
     * blocks may have been reused (A4): refuse rather than guess. */
    if (damaged >= 2) {
        rc = RL__CORRUPT(err, "no valid root slot: %d of the %u root slots are damaged", damaged,
                         RL__NSLOTS);
        goto done;
    }
    rl__err_clear(&db->passed_over);
    if (newest >= 0 &&
        slot_trusted(db, slots + (size_t)newest * region, file_size, &r[newest], list, &why[newest])) {
        *out = r[newest];
        goto done;
    }
    if (newest >= 0) {
        db->passed_over = why[newest];
        db->passed_over_txn = r[newest].txn;
    }
    if (before >= 0 &&
        slot_trusted(db, slots + (size_t)before * region, file_size, &r[before], list, &why[before])) {
        *out = r[before];
        goto done;
    }
    rc = RL__CORRUPT(err, "no valid root slot (newest: %s; the one before: %s)",
                     newest < 0 ? "none decodes" : why[newest].msg,
                     before < 0 ? "none" : why[before].msg);
done:
    free(slots);
    free(list);
    return rc;
}

/* Reading the slots and verifying their lists takes a while with no lock
 * held (open, and a reader before it registers its snapshot): writers of
 * other processes may commit meanwhile, writing a slot as it is read, or
 * reusing a block the read slot lists. So a failed attempt after which a
 * newer commit appeared is tried again; damage fails every attempt. */
/* Read and decode the slot transaction txn would take (with its commit
 * list when list is not NULL); 0 if it cannot be read or is not valid. */
static int slot_for(rl__blk_db *db, uint64_t txn, rl__blk_root *r, rl__blk_listed *list,
                    uint32_t *n)
{
    uint32_t region = rl__fmt_region(db->block_size);
    size_t got = 0;
    rl__err why;
    if (db->io->read(db->io, db->scratch, region,
                     rl__fmt_slot_offset(db->block_size, (unsigned)(txn % RL__NSLOTS)), &got) != 0 ||
        got < region)
        return 0;
    return rl__fmt_slot_decode(db->scratch, db->block_size, r, list, n, &why) == RL_OK;
}

int rl__file_root_unchanged(rl__blk_db *db)
{
    uint64_t next = db->root.txn + 1;
    rl__blk_root r;
    if (next < 2 * RL__NSLOTS) /* early in a file's life: not worth a special case */
        return 0;
    return slot_for(db, next, &r, NULL, NULL) && r.txn + RL__NSLOTS == next;
}

/* Why a cache may keep what other commits did not list: a commit lists
 * every block it wrote (cache.c records each write) but those it allocated
 * and freed itself, and a rolled-back transaction lists nothing. Such a
 * block is free after that commit, so no root from then on reaches it
 * until a commit writes it again, and that commit lists it: whoever
 * crosses that commit drops it. */
int rl__file_drop_written(rl__blk_db *db, uint64_t from, uint64_t to)
{
    rl__blk_listed list[RL__SLOT_LIST_CAP];
    if (to - from > RL__NSLOTS)
        return 0; /* the slots of the oldest ones are gone */
    for (uint64_t txn = from + 1; txn <= to; txn++) {
        rl__blk_root r;
        uint32_t n = 0;
        if (!slot_for(db, txn, &r, list, &n) || r.txn != txn || !(r.flags & RL__SLOT_LISTED))
            return 0;
        for (uint32_t i = 0; i < n; i++)
            rl__cache_drop_block(&db->cache, list[i].phys);
    }
    return 1;
}

int rl__file_read_root(rl__blk_db *db, rl__blk_root *out, rl__err *err)
{
    uint64_t seen = 0, before = 0;
    int rc = RL_OK;
    for (int attempt = 0; attempt < 16; attempt++) {
        rc = choose_root(db, out, err, &seen);
        if (rc != RL_CORRUPT || (attempt > 0 && seen == before))
            return rc; /* chosen, or the same newest commit failed twice: damage */
        before = seen;
    }
    return rc;
}

/* The bytes of a brand-new database: header, one root slot (txn 1). */
static int build_new(rl__io *io, uint32_t bs, rl__err *err)
{
    uint64_t size = rl__fmt_first_block(bs) * bs;
    uint8_t *area = calloc(1, size);
    rl__blk_header h;
    rl__blk_root r;
    int e;
    if (!area)
        return RL__FAIL(err, RL_NOMEM, "no memory to create a database");
    memset(&h, 0, sizeof h);
    h.version = RL__FORMAT_VERSION;
    h.block_size = bs;
    h.created = (uint64_t)time(NULL);
    if (getrandom(h.file_id, sizeof h.file_id, 0) != (ssize_t)sizeof h.file_id)
        for (unsigned i = 0; i < sizeof h.file_id; i++) /* no entropy: time */
            h.file_id[i] = (uint8_t)(h.created >> (8 * (i % 8))) ^ (uint8_t)i;
    rl__fmt_header_encode(area, &h);
    memset(&r, 0, sizeof r);
    r.txn = 1;
    r.block_count = rl__fmt_first_block(bs);
    r.logical_limit = 1;
    r.flags = RL__SLOT_SYNCED; /* written and synced before anyone sees it */
    rl__fmt_slot_encode(area + rl__fmt_slot_offset(bs, (unsigned)(r.txn % RL__NSLOTS)), &r, NULL, 0);
    e = io->write(io, area, size, 0);
    if (!e)
        e = io->sync(io);
    free(area);
    return e ? rl__io_err(err, e, "write new database", 0) : RL_OK;
}

/* Sync the directory holding path, so a new name survives a crash. */
static void sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    int fd;
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        return;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Create a new temporary file next to path, mode 0666 less the umask
 * (like any file the user creates); its name goes to tmp (n bytes). */
static int create_temp(const char *path, char *tmp, size_t n, rl__err *err)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        uint32_t r = 0;
        int fd;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint32_t)getpid() * 2654435761u + (uint32_t)attempt;
        snprintf(tmp, n, "%s.new-%08x", path, r);
        fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0) {
            close(fd);
            return RL_OK;
        }
        if (errno != EEXIST)
            break;
    }
    return RL__FAIL(err, RL_CANTOPEN, "cannot create a file next to %s: %s", path,
                    strerror(errno));
}

/* Create path atomically. RL_EXISTS if another file got there first. */
static int create_file(const char *path, const rl__blk_options *o, rl__err *err)
{
    size_t n = strlen(path) + 24;
    char *tmp = malloc(n);
    rl__io *io = NULL;
    int rc, e;
    if (!tmp)
        return RL__FAIL(err, RL_NOMEM, "no memory");
    rc = create_temp(path, tmp, n, err);
    if (rc != RL_OK) {
        free(tmp);
        return rc;
    }
    e = io_open(o, tmp, O_RDWR, &io);
    rc = e ? open_failed(err, e, tmp)
           : build_new(io, o->block_size ? o->block_size : DEFAULT_BLOCK, err);
    if (io)
        io->close(io);
    if (rc == RL_OK && link(tmp, path) != 0)
        rc = errno == EEXIST ? RL_EXISTS
                             : RL__FAIL(err, RL_CANTOPEN, "cannot create %s: %s", path,
                                        strerror(errno));
    unlink(tmp);
    if (rc == RL_OK)
        sync_dir(path);
    free(tmp);
    return rc;
}

static int options_check(const rl__blk_options *o, rl__err *err)
{
    if (o->block_size && !rl__fmt_block_size_ok(o->block_size))
        return RL__FAIL(err, RL_INVALID,
                        "block size %u is not a power of two from 512 to 65536",
                        o->block_size);
    if ((unsigned)o->durability > RL__DURABLE_OFF)
        return RL__FAIL(err, RL_INVALID, "unknown durability %d", (int)o->durability);
    return RL_OK;
}

/* Open the file, creating it first if asked to and it is missing. */
static int open_io(const char *path, const rl__blk_options *o, rl__io **io,
                   rl__err *err)
{
    int flags = (o->flags & RL__BLK_READONLY) ? O_RDONLY : O_RDWR;
    int e = io_open(o, path, flags, io), rc;
    if (e == 0) {
        if ((o->flags & RL__BLK_EXCL) && (o->flags & RL__BLK_CREATE)) {
            (*io)->close(*io);
            *io = NULL;
            return RL__FAIL(err, RL_EXISTS, "%s already exists", path);
        }
        return RL_OK;
    }
    if (e != ENOENT || !(o->flags & RL__BLK_CREATE) || (o->flags & RL__BLK_READONLY))
        return open_failed(err, e, path);
    rc = create_file(path, o, err);
    if (rc == RL_EXISTS && (o->flags & RL__BLK_EXCL))
        return RL__FAIL(err, RL_EXISTS, "%s already exists", path);
    if (rc != RL_OK && rc != RL_EXISTS)
        return rc;
    e = io_open(o, path, flags, io);
    return e ? open_failed(err, e, path) : RL_OK;
}

static int read_header(rl__blk_db *db, rl__err *err)
{
    uint8_t *region = malloc(RL__REGION);
    size_t got = 0;
    int e, rc;
    if (!region)
        return RL__FAIL(err, RL_NOMEM, "no memory");
    e = db->io->read(db->io, region, RL__REGION, 0, &got);
    rc = e ? rl__io_err(err, e, "read header", 0)
           : rl__fmt_header_decode(region, got, &db->header, err);
    free(region);
    return rc;
}

static int db_setup(rl__blk_db *db, const rl__blk_options *o, rl__err *err)
{
    size_t cache = o->cache_bytes ? o->cache_bytes : DEFAULT_CACHE;
    int rc = read_header(db, err);
    if (rc != RL_OK)
        return rc;
    db->block_size = db->header.block_size;
    db->payload = db->block_size - RL__HDR_SIZE;
    db->fanout = db->payload / 8;
    db->first_block = rl__fmt_first_block(db->block_size);
    db->area_first = rl__fmt_area_first(db->block_size, 0);
    db->area_stride = rl__fmt_area_first(db->block_size, 1) - db->area_first;
    db->area_len = rl__fmt_area_blocks(db->block_size);
    db->scratch = malloc(rl__fmt_region(db->block_size));
    db->commit_buf = malloc(rl__fmt_region(db->block_size) +
                            (size_t)rl__fmt_area_blocks(db->block_size) * db->block_size);
    if (!db->scratch || !db->commit_buf)
        return RL__FAIL(err, RL_NOMEM, "no memory");
    if (rl__cache_init(&db->cache, db->block_size, cache / db->block_size) != RL_OK)
        return RL__FAIL(err, RL_NOMEM, "no memory for the block cache");
    return rl__file_read_root(db, &db->root, err);
}

/* db->mu is held for short stretches by every thread of a shared handle
 * (a block's lookup, a pin): a waiter spins a little before it sleeps, as
 * sleeping and waking cost more than the wait. */
static void init_db_mutex(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
}

int rl__blk_open(const char *path, const rl__blk_options *opt,
                 rl__blk_db **out, rl__err *err)
{
    rl__blk_options defaults;
    rl__blk_db *db;
    int rc;
    *out = NULL;
    rl__err_clear(err);
    if (!opt) {
        memset(&defaults, 0, sizeof defaults);
        opt = &defaults;
    }
    if (!path)
        return RL__FAIL(err, RL_INVALID, "path is NULL");
    rc = options_check(opt, err);
    if (rc != RL_OK)
        return rc;
    db = calloc(1, sizeof *db);
    if (!db)
        return RL__FAIL(err, RL_NOMEM, "no memory");
    db->flags = opt->flags;
    db->durability = opt->durability;
    db->busy_timeout_ms = opt->busy_timeout_ms;
    init_db_mutex(&db->mu);
    pthread_mutex_init(&db->writer_mu, NULL);
    rc = open_io(path, opt, &db->io, err);
    if (rc == RL_OK)
        rc = db_setup(db, opt, err);
    if (rc != RL_OK) {
        rl__blk_close(db);
        return rc;
    }
    *out = db;
    return RL_OK;
}

void rl__blk_close(rl__blk_db *db)
{
    if (!db)
        return;
    if (db->cache.tab)
        rl__cache_free(&db->cache);
    rl__free_destroy(&db->free);
    if (db->io)
        db->io->close(db->io);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->writer_mu);
    free(db->scratch);
    free(db->commit_buf);
    rl__cache_ahead_free(db);
    free(db);
}

uint32_t rl__blk_block_size(const rl__blk_db *db)
{
    return db->block_size;
}

uint32_t rl__blk_payload_size(const rl__blk_db *db)
{
    return db->payload;
}

void rl__blk_get_stats(rl__blk_db *db, rl__blk_stats *out)
{
    pthread_mutex_lock(&db->mu);
    *out = db->stats;
    pthread_mutex_unlock(&db->mu);
    out->blocks_read += __atomic_load_n(&db->reads_unlocked, __ATOMIC_RELAXED);
}

const rl__err *rl__blk_last_error(const rl__blk_db *db)
{
    return &db->err;
}
