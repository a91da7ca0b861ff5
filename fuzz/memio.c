/*
** fuzz/memio.c: see memio.h. Test and fuzz code only.
*/
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz/memio.h"

static int grow(memimage *m, size_t size)
{
    if (size > m->cap) {
        size_t cap = m->cap ? m->cap : 4096;
        uint8_t *p;
        while (cap < size)
            cap *= 2;
        p = realloc(m->data, cap);
        if (!p)
            return ENOMEM;
        m->data = p;
        m->cap = cap;
    }
    if (size > m->size)
        memset(m->data + m->size, 0, size - m->size);
    m->size = size;
    return 0;
}

static int m_read(rl__io *io, void *buf, size_t n, uint64_t off, size_t *got)
{
    memimage *m = io->ctx;
    size_t k = off >= m->size ? 0 : (m->size - off < n ? m->size - off : n);
    if (k)
        memcpy(buf, m->data + off, k);
    *got = k;
    return 0;
}

static int m_write(rl__io *io, const void *buf, size_t n, uint64_t off)
{
    memimage *m = io->ctx;
    if (off + n > ((size_t)1 << 31))
        return EFBIG; /* keep a fuzzed "huge file" from eating memory */
    if (off + n > m->size && grow(m, off + n))
        return ENOMEM;
    memcpy(m->data + off, buf, n);
    return 0;
}

static int m_sync(rl__io *io)
{
    (void)io;
    return 0;
}

static int m_truncate(rl__io *io, uint64_t size)
{
    memimage *m = io->ctx;
    if (size > ((size_t)1 << 31))
        return EFBIG;
    if (size < m->size) {
        m->size = size;
        return 0;
    }
    return grow(m, size);
}

static int m_size(rl__io *io, uint64_t *size)
{
    *size = ((memimage *)io->ctx)->size;
    return 0;
}

static int m_lock(rl__io *io, uint64_t off, uint64_t len, int type, int wait)
{
    (void)io, (void)off, (void)len, (void)type, (void)wait;
    return 0;
}

static int m_probe(rl__io *io, uint64_t off, uint64_t len, uint64_t *held)
{
    (void)io, (void)off, (void)len;
    *held = UINT64_MAX; /* one process: nobody else holds locks */
    return 0;
}

static void m_close(rl__io *io)
{
    free(io);
}

int memio_open(void *arg, const char *path, int flags, int mode, rl__io **out)
{
    rl__io *io = calloc(1, sizeof *io);
    (void)path, (void)flags, (void)mode;
    if (!io)
        return ENOMEM;
    io->read = m_read;
    io->write = m_write;
    io->sync = m_sync;
    io->truncate = m_truncate;
    io->size = m_size;
    io->lock = m_lock;
    io->probe = m_probe;
    io->close = m_close;
    io->fd = -1;
    io->ctx = arg;
    *out = io;
    return 0;
}

void memimage_free(memimage *m)
{
    free(m->data);
    memset(m, 0, sizeof *m);
}
