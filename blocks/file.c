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
** Choosing the root (rl__file_read_root): decode both slots; among the
** valid ones take the newest whose commit list (if it has one) proves that
** every block of its transaction reached the disk; else the other one,
** remembering why the newer was passed over (db->passed_over) so that the
** check can say so: a torn last commit and a damaged one look alike.
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
        if (list[i].phys < db->first_block || list[i].phys >= r->block_count)
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

int rl__file_read_root(rl__blk_db *db, rl__blk_root *out, rl__err *err)
{
    uint8_t *slots = malloc(2 * RL__REGION);
    rl__blk_listed *list = malloc(RL__SLOT_LIST_CAP * sizeof *list);
    rl__blk_root r[2];
    rl__err why[2];
    int ok[2], rc = RL_OK, e;
    size_t got = 0;
    uint64_t file_size = 0, size_after = 0;
    if (!slots || !list) {
        rc = RL__FAIL(err, RL_NOMEM, "no memory to read the root");
        goto done;
    }
    /* The size before and after the slots: a writer extends the file
     * before it writes a slot and shrinks it after, so the larger of the
     * two covers whichever slot this read caught (no false "claims"). */
    e = db->io->size(db->io, &file_size);
    if (!e)
        e = db->io->read(db->io, slots, 2 * RL__REGION, RL__REGION, &got);
    if (!e)
        e = db->io->size(db->io, &size_after);
    if (size_after > file_size)
        file_size = size_after;
    if (e) {
        rc = rl__io_err(err, e, "read root slots", RL__REGION);
        goto done;
    }
    if (got < 2 * RL__REGION) {
        rc = RL__CORRUPT(err, "file truncated inside its root area (%zu bytes)",
                         got + RL__REGION);
        goto done;
    }
    for (int i = 0; i < 2; i++) {
        rl__err_clear(&why[i]);
        ok[i] = 0;
    }
    /* Decode both first, then verify the newer first. */
    for (int i = 0; i < 2; i++)
        ok[i] = rl__fmt_slot_decode(slots + i * RL__REGION, db->block_size, &r[i],
                                    NULL, NULL, &why[i]) == RL_OK;
    int first = (ok[0] && ok[1]) ? (r[1].txn > r[0].txn) : ok[1];
    rl__err_clear(&db->passed_over);
    for (int k = 0; k < 2; k++) {
        int i = k == 0 ? first : !first;
        if (ok[i] && slot_trusted(db, slots + i * RL__REGION, file_size, &r[i], list,
                                  &why[i])) {
            *out = r[i];
            goto done;
        }
        if (ok[i] && k == 0) {
            db->passed_over = why[i];
            db->passed_over_txn = r[i].txn;
        }
        ok[i] = 0;
    }
    rc = RL__CORRUPT(err, "no valid root slot (slot 0: %s; slot 1: %s)",
                     why[0].code ? why[0].msg : "ok", why[1].code ? why[1].msg : "ok");
done:
    free(slots);
    free(list);
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
    rl__fmt_slot_encode(area + RL__REGION * (1 + r.txn % 2), &r, NULL, 0);
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
    db->scratch = malloc(db->block_size > RL__REGION ? db->block_size : RL__REGION);
    if (!db->scratch)
        return RL__FAIL(err, RL_NOMEM, "no memory");
    if (rl__cache_init(&db->cache, db->block_size, cache / db->block_size) != RL_OK)
        return RL__FAIL(err, RL_NOMEM, "no memory for the block cache");
    return rl__file_read_root(db, &db->root, err);
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
    pthread_mutex_init(&db->mu, NULL);
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
    if (db->cache.buckets)
        rl__cache_free(&db->cache);
    rl__free_destroy(&db->free);
    if (db->io)
        db->io->close(db->io);
    pthread_mutex_destroy(&db->mu);
    pthread_mutex_destroy(&db->writer_mu);
    free(db->scratch);
    free(db->ahead);
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
}

const rl__err *rl__blk_last_error(const rl__blk_db *db)
{
    return &db->err;
}
