/*
** tests/simio.c: see simio.h. Test code only.
**
** Every write and truncate since the last sync is kept in order as a
** pending change; a sync makes the live file durable. Writes, truncates
** and syncs are counted; at the crash point the operation in progress is
** kept as a pending change (it may have reached the disk, wholly or in
** part) and every later operation fails with EIO, as if the process had
** died there.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/simio.h"
#include "tests/testutil.h"

#define SECTOR 512

static void grow(uint8_t **p, size_t *size, size_t *cap, size_t want)
{
    if (want > *cap) {
        size_t c = *cap ? *cap : 65536;
        while (c < want)
            c *= 2;
        *p = realloc(*p, c);
        if (!*p)
            abort();
        *cap = c;
    }
    if (want > *size)
        memset(*p + *size, 0, want - *size);
    *size = want;
}

void simdisk_init(simdisk *d)
{
    memset(d, 0, sizeof *d);
    d->dtrunc = UINT64_MAX;
}

static void clear_pending(simdisk *d)
{
    for (size_t i = 0; i < d->npending; i++)
        free(d->pending[i].data);
    d->npending = 0;
}

void simdisk_free(simdisk *d)
{
    clear_pending(d);
    free(d->pending);
    free(d->durable);
    free(d->live);
    memset(d, 0, sizeof *d);
}

/* Record a pending change: data NULL means a truncate to off. */
static void pend(simdisk *d, uint64_t off, const void *data, size_t n)
{
    simwrite *w;
    if (d->npending == d->cappending) {
        d->cappending = d->cappending ? 2 * d->cappending : 64;
        d->pending = realloc(d->pending, d->cappending * sizeof *d->pending);
        if (!d->pending)
            abort();
    }
    w = &d->pending[d->npending++];
    w->off = off;
    w->n = n;
    w->data = NULL;
    if (data) {
        w->data = malloc(n ? n : 1);
        if (!w->data)
            abort();
        memcpy(w->data, data, n);
    }
}

/* Count an operation: 0 to go on, else the errno to fail it with. Sets
 * *crash when this operation is the crash point. */
static int count(simdisk *d, int *crash)
{
    *crash = 0;
    if (d->crashed)
        return EIO;
    d->ops++;
    /* SIMIO_TRACE=1: the operations around the failing one; with
     * SIMIO_TRACE_ALL=1 too, every operation of a run that fails one */
    if (getenv("SIMIO_TRACE") && d->fail_at &&
        (getenv("SIMIO_TRACE_ALL") || (d->ops >= d->fail_at - 6 && d->ops <= d->fail_at + 3)))
        fprintf(stderr, "simio op %ld: %s\n", d->ops, d->trace_what);
    if (d->crash_at && d->ops == d->crash_at) {
        d->crashed = 1;
        *crash = 1;
        return EIO;
    }
    if (d->fail_at && (d->ops == d->fail_at || (d->fail_sticky && d->ops > d->fail_at)))
        return d->fail_errno;
    return 0;
}

static int s_read(rl__io *io, void *buf, size_t n, uint64_t off, size_t *got)
{
    simdisk *d = io->ctx;
    size_t k = off >= d->lsize ? 0 : (d->lsize - off < n ? d->lsize - off : n);
    if (k)
        memcpy(buf, d->live + off, k);
    *got = k;
    return 0;
}

static void apply_write(uint8_t **p, size_t *size, size_t *cap, uint64_t off, const void *buf,
                        size_t n)
{
    if (off + n > *size)
        grow(p, size, cap, off + n);
    memcpy(*p + off, buf, n);
}

static int s_write(rl__io *io, const void *buf, size_t n, uint64_t off)
{
    simdisk *d = io->ctx;
    int crash, e;
    snprintf(d->trace_what, sizeof d->trace_what, "write %zu at %llu (block %llu)", n,
             (unsigned long long)off, (unsigned long long)off / 512);
    e = count(d, &crash);
    if (crash)
        pend(d, off, buf, n); /* it may have reached the disk, in part */
    if (e)
        return e;
    pend(d, off, buf, n);
    apply_write(&d->live, &d->lsize, &d->lcap, off, buf, n);
    return 0;
}

/* A writev is one write of the runs put together: one operation to count,
 * crash in or tear, as one pwritev is for the kernel. (There is no readv:
 * reads take the library's plain path, so both paths are tested.) */
static int s_writev(rl__io *io, const uint8_t *const *bufs, size_t nbufs, size_t each,
                    uint64_t off)
{
    uint8_t *all = malloc(nbufs * each);
    int e;
    if (!all)
        return ENOMEM;
    for (size_t i = 0; i < nbufs; i++)
        memcpy(all + i * each, bufs[i], each);
    e = s_write(io, all, nbufs * each, off);
    free(all);
    return e;
}

static int s_sync(rl__io *io)
{
    simdisk *d = io->ctx;
    int crash, e;
    snprintf(d->trace_what, sizeof d->trace_what, "sync");
    e = count(d, &crash);
    if (e)
        return e; /* a crash in a sync: the pending writes may or may not be out */
    grow(&d->durable, &d->dsize, &d->dcap, d->lsize);
    memcpy(d->durable, d->live, d->lsize);
    d->dsize = d->lsize;
    clear_pending(d);
    return 0;
}

static int s_truncate(rl__io *io, uint64_t size)
{
    simdisk *d = io->ctx;
    int crash, e;
    snprintf(d->trace_what, sizeof d->trace_what, "truncate to %llu", (unsigned long long)size);
    e = count(d, &crash);
    if (crash)
        pend(d, size, NULL, 0);
    if (e)
        return e;
    pend(d, size, NULL, 0);
    if (size < d->lsize)
        d->lsize = (size_t)size;
    else
        grow(&d->live, &d->lsize, &d->lcap, (size_t)size);
    return 0;
}

static int s_size(rl__io *io, uint64_t *size)
{
    *size = ((simdisk *)io->ctx)->lsize;
    return 0;
}

static int s_lock(rl__io *io, uint64_t off, uint64_t len, int type, int wait)
{
    (void)io, (void)off, (void)len, (void)type, (void)wait;
    return 0;
}

static int s_probe(rl__io *io, uint64_t off, uint64_t len, uint64_t *held)
{
    (void)io, (void)off, (void)len;
    *held = UINT64_MAX;
    return 0;
}

static void s_close(rl__io *io)
{
    free(io);
}

int simdisk_open(void *arg, const char *path, int flags, int mode, rl__io **out)
{
    rl__io *io = calloc(1, sizeof *io);
    (void)path, (void)flags, (void)mode;
    if (!io)
        return ENOMEM;
    io->read = s_read;
    io->write = s_write;
    io->writev = s_writev;
    io->sync = s_sync;
    io->truncate = s_truncate;
    io->size = s_size;
    io->lock = s_lock;
    io->probe = s_probe;
    io->close = s_close;
    io->fd = -1;
    io->ctx = arg;
    *out = io;
    return 0;
}

/* Apply pending change w to the recovered image, whole or by sectors. */
static void recover_one(simdisk *d, const simwrite *w, int policy, int last, uint64_t *rs)
{
    size_t sectors, keep;
    if (!w->data) { /* a truncate: all or nothing */
        if (policy == SIM_KEEP_ALL || policy == SIM_TEAR_LAST ||
            (policy == SIM_RANDOM_SECTORS && tu_rand(rs) % 2)) {
            if (w->off < d->dsize)
                d->dsize = (size_t)w->off;
            else
                grow(&d->durable, &d->dsize, &d->dcap, (size_t)w->off);
        }
        return;
    }
    sectors = (w->n + SECTOR - 1) / SECTOR;
    keep = last ? (size_t)(tu_rand(rs) % (sectors + 1)) : sectors; /* the torn one's sectors */
    for (size_t s = 0; s < sectors; s++) {
        size_t from = s * SECTOR, len = w->n - from < SECTOR ? w->n - from : SECTOR;
        int take;
        if (policy == SIM_KEEP_ALL)
            take = 1;
        else if (policy == SIM_TEAR_LAST)
            take = s < keep;
        else
            take = (int)(tu_rand(rs) % 2);
        if (take)
            apply_write(&d->durable, &d->dsize, &d->dcap, w->off + from, w->data + from, len);
    }
}

void simdisk_recover(simdisk *d, int policy, uint64_t seed)
{
    uint64_t rs = seed * 2654435761u + 7;
    if (policy != SIM_LOSE_ALL)
        for (size_t i = 0; i < d->npending; i++)
            recover_one(d, &d->pending[i], policy, i + 1 == d->npending, &rs);
    clear_pending(d);
    grow(&d->live, &d->lsize, &d->lcap, d->dsize);
    memcpy(d->live, d->durable, d->dsize);
    d->lsize = d->dsize;
    d->ops = 0;
    d->crash_at = 0;
    d->fail_at = 0;
    d->crashed = 0;
}
