/*
** blocks/io_posix.c: the real I/O table over a POSIX file descriptor, and
** the error helpers of the layer.
**
** Reads and writes loop over short transfers and EINTR. Locks are
** open-file-description locks (F_OFD_SETLK), so two handles on the same
** file in one process exclude each other like two processes do, and
** closing one descriptor never drops the locks of another. Reads do not
** update the file's access time where the system lets the file's owner
** say so (O_NOATIME): every read would otherwise look at the clock.
*/
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "blk_int.h"

int rl__err_set(rl__err *e, int code, const char *file, int line,
                const char *fmt, ...)
{
    va_list ap;
    if (!e)
        return code;
    e->code = code;
    e->file = file;
    e->line = line;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return code;
}

void rl__err_clear(rl__err *e)
{
    e->code = RL_OK;
    e->msg[0] = '\0';
    e->file = NULL;
    e->line = 0;
}

int rl__io_err(rl__err *e, int errnum, const char *what, uint64_t where)
{
    int code = (errnum == ENOSPC || errnum == EFBIG || errnum == EDQUOT)
                   ? RL_FULL
                   : RL_IOERR;
    return RL__FAIL(e, code, "%s at offset %llu: %s", what,
                    (unsigned long long)where, strerror(errnum));
}

static int px_read(rl__io *io, void *buf, size_t n, uint64_t off, size_t *got)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(io->fd, (char *)buf + done, n - done,
                          (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    *got = done;
    return 0;
}

/* One preadv; a short read stays short (the caller keeps whole runs). */
static int px_readv(rl__io *io, uint8_t *const *bufs, size_t nbufs, size_t each, uint64_t off,
                    size_t *got)
{
    struct iovec iov[64];
    ssize_t r;
    if (nbufs > 64)
        nbufs = 64;
    for (size_t i = 0; i < nbufs; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = each;
    }
    do
        r = preadv(io->fd, iov, (int)nbufs, (off_t)off);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno;
    *got = (size_t)r;
    return 0;
}

static int px_write(rl__io *io, const void *buf, size_t n, uint64_t off)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = pwrite(io->fd, (const char *)buf + done, n - done,
                           (off_t)(off + done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        done += (size_t)r;
    }
    return 0;
}

/* pwritev in batches of up to 64 buffers; what a short write leaves is
 * written with px_write. */
static int px_writev(rl__io *io, const uint8_t *const *bufs, size_t nbufs, size_t each,
                     uint64_t off)
{
    struct iovec iov[64];
    while (nbufs > 0) {
        size_t k = nbufs < 64 ? nbufs : 64, done;
        ssize_t r;
        for (size_t i = 0; i < k; i++) {
            iov[i].iov_base = (void *)bufs[i];
            iov[i].iov_len = each;
        }
        do
            r = pwritev(io->fd, iov, (int)k, (off_t)off);
        while (r < 0 && errno == EINTR);
        if (r < 0)
            return errno;
        done = (size_t)r;
        for (size_t i = 0; i < k && done < k * each; i++) {
            size_t start = i * each, skip = done > start ? done - start : 0;
            int e;
            if (skip >= each)
                continue;
            e = px_write(io, bufs[i] + skip, each - skip, off + start + skip);
            if (e)
                return e;
            done = start + each;
        }
        bufs += k;
        nbufs -= k;
        off += k * each;
    }
    return 0;
}

static int px_sync(rl__io *io)
{
    while (fdatasync(io->fd) != 0)
        if (errno != EINTR)
            return errno;
    return 0;
}

static int px_truncate(rl__io *io, uint64_t size)
{
    while (ftruncate(io->fd, (off_t)size) != 0)
        if (errno != EINTR)
            return errno;
    return 0;
}

/* The size through lseek, not fstat: since Linux 6.13 a stat marks the
 * inode's change time as seen, so the next write stamps a fine-grained
 * time and dirties the inode, and on ext4 the next fdatasync writes the
 * inode too: about 50 us more per commit (docs/performance.md, phase 7).
 * Reads and writes never use the descriptor's offset. */
static int px_size(rl__io *io, uint64_t *size)
{
    off_t end = lseek(io->fd, 0, SEEK_END);
    if (end < 0)
        return errno;
    *size = (uint64_t)end;
    return 0;
}

static int px_lock(rl__io *io, uint64_t off, uint64_t len, int type, int wait)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = type == 'r' ? F_RDLCK : type == 'w' ? F_WRLCK : F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)off;
    fl.l_len = (off_t)len;
    for (;;) {
        if (fcntl(io->fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl) == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return (errno == EACCES) ? EAGAIN : errno;
    }
}

static int px_probe(rl__io *io, uint64_t off, uint64_t len, uint64_t *held)
{
    struct flock fl;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = (off_t)off;
    fl.l_len = (off_t)len;
    while (fcntl(io->fd, F_OFD_GETLK, &fl) != 0)
        if (errno != EINTR)
            return errno;
    *held = fl.l_type == F_UNLCK ? UINT64_MAX : (uint64_t)fl.l_start;
    return 0;
}

static void px_close(rl__io *io)
{
    if (io->fd >= 0)
        close(io->fd);
    free(io);
}

/* O_NOATIME on fd if this process may set it (it owns the file); a refusal
 * only leaves access times to the mount's rule. */
static void no_atime(int fd)
{
#ifdef O_NOATIME
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl | O_NOATIME);
#else
    (void)fd;
#endif
}

int rl__io_posix_open(const char *path, int flags, int mode, rl__io **out)
{
    rl__io *io;
    int fd;
    *out = NULL;
    do
        fd = open(path, flags | O_CLOEXEC, mode);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return errno;
    no_atime(fd);
    io = calloc(1, sizeof *io);
    if (!io) {
        close(fd);
        return ENOMEM;
    }
    io->read = px_read;
    io->write = px_write;
    io->sync = px_sync;
    io->truncate = px_truncate;
    io->size = px_size;
    io->lock = px_lock;
    io->probe = px_probe;
    io->close = px_close;
    io->readv = px_readv;
    io->writev = px_writev;
    io->fd = fd;
    *out = io;
    return 0;
}
